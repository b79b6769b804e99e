"""Score attribution models against the simulator's ground truth.

The simulator knows what no observational model can see: for every channel, the
conversions and revenue that would be lost without it (``truth/incrementality.parquet``,
the true removal effect, re-simulating the same persons with the channel switched
off) and the true Shapley credit (``truth/shapley.parquet``, from re-simulations
over channel coalitions). :func:`score` compares each model's channel shares with
those true shares.

Metric
------
For a model ``m`` and a truth ``T`` (incremental or Shapley) over the channels
``C`` of the truth table::

    MAE(m, T) = 100 / |C| * sum_{c in C} |share_m(c) - share_T(c)|   (percentage points)

Model shares are renormalised over ``C`` (a model can credit channels that have
no counterfactual in the truth, such as plain Mini Program visits); the share a
model puts outside ``C`` is reported as ``share_outside_truth`` so nothing is
hidden. ``max_abs_pp`` and ``worst_channel`` show where a model is furthest off;
``rank_corr`` (Spearman) whether it at least orders the channels right;
:func:`channel_gaps` lists every channel's gap.
A model scoring worse than ``uniform`` (every channel ``1/|C|``) has learned
nothing useful about incrementality, and the table says so.

:func:`score_scenarios` also scores ``calibrated`` (Markov credit calibrated with
the dataset's lift tests, :func:`privdomain.attribution.calibrated`) when the
dataset has lift tests; :func:`privdomain.attribution.score_lift` scores each lift
estimate and its interval against ``truth/lift.parquet``.

Examples
--------
>>> import pandas as pd
>>> from privdomain.attribution.scoring import score
>>> model = pd.DataFrame({"channel": ["a", "b"], "model": "m", "share": [0.7, 0.3], "share_value": [0.5, 0.5]})
>>> truth = {"incrementality": pd.DataFrame({"channel": ["a", "b"], "share_conversions": [0.5, 0.5],
...                                          "share_revenue": [0.5, 0.5]})}
>>> s = score(model, truth)
>>> s.loc[(s.metric == "conversions") & (s.model == "m"), ["truth", "mae_pp", "worse_than_uniform"]].values.tolist()
[['incremental', 20.0, True]]
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..contract import Duration, events_input

TRUTHS = {"incremental": "incrementality", "shapley": "shapley"}
COLUMNS = ["scenario", "model", "truth", "metric", "mae_pp", "max_abs_pp", "worst_channel", "rank_corr",
           "channels", "share_outside_truth", "worse_than_uniform"]


def load_truth(data: Any) -> dict[str, pd.DataFrame]:
    """The truth tables of a simulated dataset (folder, :class:`privdomain.io.Dataset`, or a dict).

    >>> import pandas as pd
    >>> list(load_truth({"shapley": pd.DataFrame({"channel": ["a"]})}))
    ['shapley']
    """
    if isinstance(data, Mapping):
        return {k: v for k, v in data.items() if isinstance(v, pd.DataFrame)}
    path = Path(os.fspath(data))
    folder = path / "truth" if (path / "truth").is_dir() else path
    out = {}
    for name in TRUTHS.values():
        f = folder / f"{name}.parquet"
        if f.exists():
            out[name] = pd.read_parquet(f)
    if not out:
        raise ValueError(f"no truth tables (incrementality.parquet, shapley.parquet) under {folder}")
    return out


def _truth_shares(table: pd.DataFrame, metric: str) -> pd.Series:
    col = "share_conversions" if metric == "conversions" else "share_revenue"
    if col not in table.columns or "channel" not in table.columns:
        raise ValueError(f"truth table needs 'channel' and {col!r} columns (has {list(table.columns)})")
    s = table.set_index("channel")[col].astype(float)
    return s / s.sum() if s.sum() else s


def _truth_shares_each(truth: Any, metrics: Sequence[str]):
    """``(truth name, metric, true shares by channel)`` for each truth table present and metric."""
    tables = load_truth(truth)
    for tname, fname in TRUTHS.items():
        if fname in tables:
            for metric in metrics:
                yield tname, metric, _truth_shares(tables[fname], metric)


def _within(shares: pd.Series, channels: Sequence[str]) -> pd.Series:
    """A model's shares on the truth's channels, renormalised to sum to 1 there."""
    inside = shares.astype(float).reindex(channels).fillna(0.0)
    return inside / inside.sum() if inside.sum() else inside


def channel_gaps(attribution: pd.DataFrame, truth: Any, metrics: Sequence[str] = ("conversions", "revenue")
                 ) -> pd.DataFrame:
    """Per channel: each model's share next to the true shares (where a model is off).

    Returns ``model``, ``truth``, ``metric``, ``channel``, ``model_share`` (renormalised
    over the truth's channels as in :func:`score`), ``true_share``, ``gap_pp``
    (model minus truth, percentage points).

    Examples
    --------
    >>> import pandas as pd
    >>> model = pd.DataFrame({"channel": ["a", "b"], "model": "m", "share": [0.7, 0.3], "share_value": [0.5, 0.5]})
    >>> truth = {"shapley": pd.DataFrame({"channel": ["a", "b"], "share_conversions": [0.5, 0.5],
    ...                                   "share_revenue": [0.5, 0.5]})}
    >>> channel_gaps(model, truth, metrics=["conversions"])["gap_pp"].round(6).tolist()
    [20.0, -20.0]
    """
    rows = []
    for tname, metric, t in _truth_shares_each(truth, metrics):
        col = "share" if metric == "conversions" else "share_value"
        for m, g in attribution.groupby("model", sort=True):
            norm = _within(g.set_index("channel")[col], t.index)
            for ch in t.index:
                rows.append({"model": m, "truth": tname, "metric": metric, "channel": ch,
                             "model_share": float(norm[ch]), "true_share": float(t[ch]),
                             "gap_pp": float((norm[ch] - t[ch]) * 100)})
    return pd.DataFrame(rows, columns=["model", "truth", "metric", "channel", "model_share", "true_share", "gap_pp"])


def score(attribution: pd.DataFrame, truth: Any, scenario: str = "", metrics: Sequence[str] = ("conversions",
          "revenue")) -> pd.DataFrame:
    """Mean absolute error (percentage points) of each model's shares against the truth.

    Parameters
    ----------
    attribution
        Tidy model output (``channel``, ``model``, ``share``, ``share_value``), e.g.
        from :func:`privdomain.attribution.attribute`.
    truth
        A simulated dataset folder / Dataset, or a dict with ``incrementality`` and/or
        ``shapley`` frames.
    scenario
        Label copied to the ``scenario`` column.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`, one row per model, truth and metric, including a
        ``uniform`` baseline model; sorted by truth, metric, mae_pp.
    """
    for col in ("channel", "model", "share"):
        if col not in attribution.columns:
            raise ValueError(f"attribution output needs a {col!r} column")
    rows = []
    for tname, metric, t in _truth_shares_each(truth, metrics):
        chans = list(t.index)
        models = [(m, g.set_index("channel")["share" if metric == "conversions" else "share_value"])
                  for m, g in attribution.groupby("model", sort=True)]
        models.append(("uniform", pd.Series(1.0 / len(chans), index=chans)))
        errs = {}
        for m, s in models:
            s = s.astype(float)
            outside = float(s.drop(index=[c for c in chans if c in s.index]).sum())
            norm = _within(s, chans)
            diff = (norm - t).abs() * 100
            errs[m] = float(diff.mean())
            ra, rb = norm.rank(), t.rank()
            ok = len(chans) > 1 and m != "uniform" and ra.nunique() > 1 and rb.nunique() > 1
            rank = ra.corr(rb) if ok else float("nan")  # undefined when either side is constant
            rows.append({"scenario": scenario, "model": m, "truth": tname, "metric": metric,
                         "mae_pp": float(diff.mean()), "max_abs_pp": float(diff.max()),
                         "worst_channel": str(diff.idxmax()), "rank_corr": float(rank), "channels": len(chans),
                         "share_outside_truth": outside})
        for r in rows:
            if r["truth"] == tname and r["metric"] == metric:
                r["worse_than_uniform"] = bool(r["mae_pp"] > errs["uniform"] + 1e-12)
    out = pd.DataFrame(rows, columns=COLUMNS)
    return out.sort_values(["truth", "metric", "mae_pp", "model"]).reset_index(drop=True)


@events_input(renamed={"window_days": "window"})
def score_scenarios(datasets: Mapping[str, Any], models: Sequence[str] | None = None, window: Duration = "30D",
                    **kwargs: Any) -> pd.DataFrame:
    """Run :func:`privdomain.attribution.attribute` on each simulated dataset and score it.

    ``datasets`` maps a scenario name to a dataset folder (with ``truth/``). Returns
    the stacked :func:`score` tables, one block per scenario; a dataset with lift
    tests also gets a ``calibrated`` model (Markov calibrated with its lifts).
    """
    from .compare import MODELS, attribute
    from .lift import calibrated, lift_channels

    frames = []
    for name, path in datasets.items():
        res = attribute(path, models=models or MODELS, window=window, **kwargs)
        if lift_channels(path):
            base = res[res["model"] == "markov_1"] if "markov_1" in set(res["model"]) else None
            cal = calibrated(path, base="markov", attribution=base, window=window)
            res = pd.concat([res, cal[[c for c in res.columns if c in cal.columns]]], ignore_index=True)
        frames.append(score(res, path, scenario=name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Wide view: MAE (pp) per model (rows) and scenario x truth x metric (columns).

    >>> import pandas as pd
    >>> s = pd.DataFrame({"scenario": ["x", "x"], "model": ["m", "uniform"], "truth": "shapley",
    ...                   "metric": "conversions", "mae_pp": [2.0, 5.0]})
    >>> summary(s).index.tolist()
    ['m', 'uniform']
    """
    wide = scores.pivot_table(index="model", columns=["scenario", "truth", "metric"], values="mae_pp")
    return wide.sort_values(wide.columns[0]) if len(wide.columns) else wide


__all__ = ["COLUMNS", "channel_gaps", "load_truth", "score", "score_scenarios", "summary"]
