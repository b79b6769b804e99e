"""Score CLV predictions against the simulator's truth (or any known outcome).

A simulated dataset's ``truth/stages.parquet`` records, per person, the latent dropout:
the ``churned`` stage starts at :math:`\\tau`, after which the person never buys again
(:mod:`privdomain.simulate.truth`). :func:`truth_alive` reads it as "truly alive at time
t" (:math:`t < \\tau`), the event a purchase-count model's P(alive) forecasts.

* :func:`p_alive_score` -- Brier score of P(alive) against the truth, the Brier score of
  the best constant forecast (the true alive share) and the skill between them; mean
  P(alive) beside the true alive share;
* :func:`p_alive_calibration` -- reliability table: bins of P(alive) with n, mean
  forecast, true alive share and its Wilson interval;
* :func:`purchase_score` -- predicted vs actual purchases per customer (e.g. in a
  holdout period): totals, mean absolute error, RMSE, correlation.

References: Brier, G. W. (1950), "Verification of forecasts expressed in terms of
probability", *Monthly Weather Review* 78(1); Murphy, A. H. (1973), "A new vector
partition of the probability score", *J. Applied Meteorology* 12; Fader, Hardie and Lee
(2005), "Counting Your Customers the Easy Way", *Marketing Science* 24(2).

Examples
--------
>>> import numpy as np
>>> from privdomain.clv.scoring import p_alive_score
>>> round(float(p_alive_score(np.array([0.9, 0.8, 0.2, 0.1]), np.array([True, True, False, False]))["brier"]), 3)
0.025
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..errors import DatasetError

__all__ = ["truth_alive", "p_alive_score", "p_alive_calibration", "purchase_score"]


def truth_alive(dataset: Any, at: str | pd.Timestamp, person_ids: Any | None = None) -> pd.Series:
    """Whether each person is truly alive (has not dropped out for good) at time ``at``.

    A person is alive at :math:`t` when their truth has no ``churned`` stage starting at
    or before :math:`t` (the simulator's latent dropout time :math:`\\tau > t`).

    Parameters
    ----------
    dataset
        A simulated dataset (:class:`privdomain.io.Dataset` or its folder) with ``truth/``.
    at
        The time; a naive time or a date is read as Beijing time (e.g. the end of the
        calibration period, ``"2025-01-01"`` for the end of 2024-12-31).
    person_ids
        The persons to return, in this order (e.g. ``summary["person_id"]``). Default:
        every person of ``truth/persons.parquet``.

    Returns
    -------
    pandas.Series
        Boolean, indexed by ``person_id``, named ``alive``.

    Raises
    ------
    privdomain.errors.DatasetError
        When the dataset has no ``truth/stages.parquet`` (not simulated with truth), or a
        requested person is not in the truth.
    """
    root = Path(os.fspath(getattr(dataset, "path", dataset)))
    path = root / "truth" / "stages.parquet"
    if not path.exists():
        raise DatasetError(root, "no truth/stages.parquet: the dataset was not simulated with truth "
                                 "(privdomain simulate --truth), so P(alive) cannot be scored")
    at = pd.Timestamp(at)
    at = at.tz_localize("Asia/Shanghai") if at.tz is None else at
    st = pd.read_parquet(path, columns=["person_id", "stage", "valid_from"])
    gone = st.loc[(st["stage"] == "churned") & (st["valid_from"] <= at), "person_id"].unique()
    if person_ids is None:
        pp = root / "truth" / "persons.parquet"
        ids = pd.read_parquet(pp, columns=["person_id"])["person_id"] if pp.exists() else st["person_id"].unique()
        ids = pd.Index(ids)
    else:
        ids = pd.Index(np.asarray(person_ids))
        known = pd.Index(st["person_id"].unique())
        missing = ids.difference(known)
        if len(missing):
            raise DatasetError(root, f"truth/stages.parquet has no row for {len(missing)} requested person(s) "
                                     f"(e.g. {', '.join(map(str, missing[:3]))})")
    return pd.Series(~ids.isin(gone), index=ids.rename("person_id"), name="alive")


def _check_pair(p: Any, y: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype="float64").ravel()
    y = np.asarray(y, dtype="float64").ravel()
    if len(p) != len(y):
        raise ValueError(f"{where}: {len(p)} forecasts but {len(y)} outcomes")
    if len(p) == 0:
        raise ValueError(f"{where}: nothing to score (no rows)")
    if not np.isfinite(p).all() or not np.isfinite(y).all():
        raise ValueError(f"{where}: forecasts and outcomes must be finite; "
                         f"{int((~np.isfinite(p)).sum() + (~np.isfinite(y)).sum())} value(s) break it")
    return p, y


def p_alive_score(p_alive: Any, alive: Any) -> pd.Series:
    """Brier score of P(alive) forecasts against the true alive status.

    .. math::

        \\mathrm{BS} = \\frac{1}{n}\\sum_i (p_i - o_i)^2,\\qquad
        \\mathrm{BS}_{\\mathrm{ref}} = \\bar o (1 - \\bar o),\\qquad
        \\mathrm{skill} = 1 - \\mathrm{BS}/\\mathrm{BS}_{\\mathrm{ref}}

    with :math:`o_i \\in \\{0, 1\\}` (1: alive) and :math:`\\bar o` the true alive share:
    :math:`\\mathrm{BS}_{\\mathrm{ref}}` is the score of the best constant forecast, so a
    skill :math:`\\le 0` means the model's P(alive) ranks and sizes no better than
    knowing the share. ``mean_p_alive - alive_share`` is the calibration-in-the-large
    error (BG/NBD's P(alive) is 1 for every customer without a repeat purchase, so it
    overstates the alive share where many buyers buy once and leave).

    Returns
    -------
    pandas.Series
        ``n``, ``mean_p_alive``, ``alive_share``, ``bias`` (mean P(alive) - alive share),
        ``brier``, ``brier_reference``, ``brier_skill`` (NaN when every outcome is the
        same: no reference to beat), ``log_loss`` (P clipped to [1e-6, 1 - 1e-6]).
    """
    p, o = _check_pair(p_alive, alive, "p_alive_score")
    if ((p < 0) | (p > 1)).any():
        raise ValueError(f"p_alive_score: P(alive) must be in [0, 1]; {int(((p < 0) | (p > 1)).sum())} value(s) break it")
    if not np.isin(o, (0.0, 1.0)).all():
        raise ValueError("p_alive_score: outcomes must be True/False (1/0)")
    bs = float(np.mean((p - o) ** 2))
    share = float(o.mean())
    ref = share * (1 - share)
    pc = np.clip(p, 1e-6, 1 - 1e-6)
    ll = float(-np.mean(o * np.log(pc) + (1 - o) * np.log1p(-pc)))
    return pd.Series({"n": float(len(p)), "mean_p_alive": float(p.mean()), "alive_share": share,
                      "bias": float(p.mean()) - share, "brier": bs, "brier_reference": ref,
                      "brier_skill": 1 - bs / ref if ref > 0 else float("nan"), "log_loss": ll})


def p_alive_calibration(p_alive: Any, alive: Any, bins: int | list[float] = 5, level: float = 0.95) -> pd.DataFrame:
    """Reliability table of P(alive): per bin of the forecast, the true alive share.

    For bin :math:`g` with :math:`n_g` customers, mean forecast :math:`\\bar p_g` and true
    alive share :math:`\\bar o_g`, the interval is Wilson's score interval
    :math:`\\frac{\\bar o + z^2/2n \\pm z\\sqrt{\\bar o(1-\\bar o)/n + z^2/4n^2}}{1 + z^2/n}`.
    A calibrated forecast has :math:`\\bar o_g \\approx \\bar p_g` in every bin.

    Parameters
    ----------
    bins
        Number of equal-width bins on [0, 1] or their edges (a forecast of exactly 1
        falls in the last bin). Empty bins are left out.

    Returns
    -------
    pandas.DataFrame
        ``bin`` (label such as ``"80-100%"``), ``n``, ``mean_p_alive``, ``alive_share``,
        ``lower_95``, ``upper_95`` (named after ``level``).
    """
    p, o = _check_pair(p_alive, alive, "p_alive_calibration")
    edges = np.linspace(0, 1, int(bins) + 1) if np.isscalar(bins) else np.asarray(bins, dtype="float64")
    if len(edges) < 2 or (np.diff(edges) <= 0).any():
        raise ValueError(f"p_alive_calibration: bins must be a count >= 1 or increasing edges, got {bins!r}")
    g = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    z = float(norm.ppf(0.5 + level / 2))
    rows = []
    for k in np.unique(g):
        m = g == k
        n = int(m.sum())
        share = float(o[m].mean())
        centre = (share + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        rows.append({"bin": f"{edges[k]:.0%}-{edges[k + 1]:.0%}", "n": n, "mean_p_alive": float(p[m].mean()),
                     "alive_share": share, "lower": min(max(centre - half, 0.0), share),
                     "upper": max(min(centre + half, 1.0), share)})
    pct = f"{level * 100:g}"
    return pd.DataFrame(rows).rename(columns={"lower": f"lower_{pct}", "upper": f"upper_{pct}"})


def purchase_score(predicted: Any, actual: Any) -> pd.Series:
    """Predicted vs actual purchases per customer.

    .. math::

        \\mathrm{MAE} = \\frac{1}{n}\\sum_i |\\hat y_i - y_i|,\\qquad
        \\mathrm{RMSE} = \\sqrt{\\frac{1}{n}\\sum_i (\\hat y_i - y_i)^2}

    beside the totals :math:`\\sum \\hat y_i`, :math:`\\sum y_i` (the aggregate forecast
    FHL 2005 track week by week) and Pearson's correlation (NaN when either side is
    constant).

    Returns
    -------
    pandas.Series
        ``n``, ``predicted_total``, ``actual_total``, ``total_error`` (predicted / actual -
        1; NaN when nothing was bought), ``mae``, ``rmse``, ``correlation``.
    """
    yhat, y = _check_pair(predicted, actual, "purchase_score")
    tot, act = float(yhat.sum()), float(y.sum())
    corr = float(np.corrcoef(yhat, y)[0, 1]) if yhat.std() > 0 and y.std() > 0 else float("nan")
    return pd.Series({"n": float(len(y)), "predicted_total": tot, "actual_total": act,
                      "total_error": tot / act - 1 if act > 0 else float("nan"),
                      "mae": float(np.mean(np.abs(yhat - y))), "rmse": float(np.sqrt(np.mean((yhat - y) ** 2))),
                      "correlation": corr})
