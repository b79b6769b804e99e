"""Incrementality from lift tests, and channel credit calibrated with them.

A **lift test** withholds one channel from a randomised holdout (persons, or whole
cities for a channel that cannot be withheld per person) during a window; the
difference in conversions between the exposed and the held-out persons is what
the channel caused. This is how brands measure incrementality in practice
(conversion-lift studies, ghost ads, withheld pushes, geo holdouts) and what
observational attribution models cannot do: they share out the conversions that
happened after touches, whether or not the touches caused them.

:func:`lift` estimates one test; :func:`calibrated` turns always-on model credit
into incremental credit with whatever lift results exist; :func:`lift_plan` says
how large a holdout and how long a test must be for a given precision.

The simulator writes lift tests with a dataset (``lift_tests:`` in a scenario,
see :mod:`privdomain.simulate.lift`): assignments ``lift_<channel>`` with arms
``treatment`` / ``holdout``, the windows in the manifest, and the true effect in
``truth/lift.parquet`` (:func:`score_lift` compares).

Examples
--------
>>> from privdomain.attribution.lift import experiment_of
>>> experiment_of("sms")
'lift_sms'
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import events as events_layer
from .. import schema
from ..contract import Duration, events_input
from ..errors import PrivdomainError, UsageError

PREFIX = "lift_"
LIFT_COLUMNS = ["channel", "metric", "unit", "start", "end", "n_treatment", "n_holdout", "holdout_share",
                "clusters", "mean_treatment", "mean_holdout", "effect_per_person", "std_error", "ci_low",
                "ci_high", "incremental", "incremental_low", "incremental_high", "total_treatment",
                "incremental_share", "incremental_share_se", "alpha"]


class LiftError(PrivdomainError, ValueError):
    """A lift test that cannot be estimated (no assignments, one arm empty...)."""


def experiment_of(channel: str) -> str:
    """The ``assignments.experiment`` name of a channel's lift test."""
    return PREFIX + channel


def _manifest_tests(data: Any) -> dict[str, dict]:
    if isinstance(data, (str, os.PathLike)) and Path(os.fspath(data)).is_dir():
        from ..io import read_manifest

        try:
            return dict(read_manifest(data).get("lift_tests", {}) or {})
        except (OSError, ValueError):
            return {}
    return {}


@events_input
def lift_channels(events: Any, *, con: Any | None = None) -> list[str]:
    """The channels with a lift test in a dataset (from its assignments; none without them).

    >>> import pandas as pd
    >>> lift_channels(pd.DataFrame({"experiment": ["lift_sms", "coupon_tiers"], "person_id": [1, 2]}))
    ['sms']
    """
    if isinstance(events, (str, os.PathLike)) and Path(os.fspath(events)).is_dir():
        from ..io import read_manifest

        if "assignments" not in read_manifest(events).get("row_counts", {}):
            return []
    a = events_layer.table(events, "assignments", con=con)
    if "experiment" not in a.columns:  # events given without an assignments table
        return []
    names = a.select("experiment").distinct().execute()["experiment"].astype(str).tolist()
    return sorted(n[len(PREFIX):] for n in names if n.startswith(PREFIX))


def _outcomes(data: Any, start: pd.Timestamp, end: pd.Timestamp, con: Any | None) -> pd.DataFrame:
    """Per person: paid purchases and revenue (yuan) with the pay in ``[start, end)`` (Beijing time)."""
    t = events_layer.read(data, con=con, columns=["person_id", "touchpoint", "amount_fen"])
    t = t.filter((t.touchpoint == schema.PURCHASE) & (t.ts >= start.to_pydatetime()) & (t.ts < end.to_pydatetime()))
    agg = t.group_by("person_id").agg(conversions=t.count(), revenue=t.amount_fen.cast("float64").sum() / 100.0)
    return agg.execute()


def _fit(y: np.ndarray, treat: np.ndarray, groups: np.ndarray | None, alpha: float) -> tuple[float, float]:
    import statsmodels.api as sm

    X = sm.add_constant(treat.astype(float), has_constant="add")
    model = sm.OLS(y.astype(float), X)
    if groups is not None:
        res = model.fit(cov_type="cluster", cov_kwds={"groups": groups})
    else:
        res = model.fit(cov_type="HC1")
    return float(res.params[1]), float(res.bse[1])


@events_input
def lift(events: Any, channel: str, *, start: Any = None, end: Any = None, unit: str | None = None,
         alpha: float = 0.05, assignments: Any = None, persons: Any = None,
         con: Any | None = None) -> pd.DataFrame:
    """Incremental conversions and revenue of a channel's lift test, with a confidence interval.

    Parameters
    ----------
    data
        A dataset (folder / :class:`privdomain.io.Dataset`) or events; events are
        read through :mod:`privdomain.events`.
    channel
        The tested channel: the assignments of experiment ``lift_<channel>``
        (arms ``treatment`` and ``holdout``) are used.
    start, end
        The test window ``[start, end)`` (dates or timestamps, Beijing time).
        Default: the manifest's ``lift_tests`` entry, else the assignment time and
        the last event.
    unit
        ``"person"`` (heteroskedasticity-robust HC1 errors) or ``"city"`` (a geo
        test: errors clustered by ``persons.city``). Default: the manifest's, else
        person.
    alpha
        1 - confidence level of the intervals.
    assignments, persons
        Tables to use instead of the dataset's.

    Returns
    -------
    pandas.DataFrame
        :data:`LIFT_COLUMNS`, one row per metric (``conversions``: paid purchases;
        ``revenue``: yuan). ``effect_per_person`` is the difference in means
        (treatment - holdout) from OLS on the arm indicator;
        ``incremental = effect_per_person * n_treatment`` is what the channel
        added to the exposed persons during the test, with its interval;
        ``incremental_share = incremental / total_treatment`` the fraction of the
        exposed persons' conversions (revenue) it caused.

    Raises
    ------
    LiftError
        No assignments for the test, an arm is empty, or a geo test without cities.
    """
    if not 0 < alpha < 1:
        raise UsageError(f"alpha: must lie between 0 and 1 (got {alpha})")
    meta = _manifest_tests(events).get(channel, {})
    a = events_layer.table(assignments if assignments is not None else events, "assignments", con=con)
    name = experiment_of(channel)
    a = a.filter(a.experiment == name).select("person_id", "arm", "assigned_at").execute()
    if a.empty:
        known = lift_channels(assignments if assignments is not None else events, con=con)
        raise LiftError(f"lift: no assignments for experiment {name!r} (lift tests found: "
                        f"{', '.join(known) or 'none'})")
    bad = sorted(set(a["arm"]) - {"treatment", "holdout"})
    if bad:
        raise LiftError(f"lift: experiment {name!r} has arms {bad}; a lift test has 'treatment' and 'holdout'")
    if a["person_id"].duplicated().any():
        raise LiftError(f"lift: {int(a['person_id'].duplicated().sum())} person(s) assigned twice in {name!r}")
    unit = unit or meta.get("unit", "person")
    if unit not in ("person", "city"):
        raise UsageError(f"unit: must be 'person' or 'city' (got {unit!r})")
    s = pd.Timestamp(start if start is not None else meta.get("start", a["assigned_at"].min()))
    if end is not None or meta.get("end"):
        e = pd.Timestamp(end if end is not None else meta["end"])
    else:
        t = events_layer.read(events, con=con)
        e = pd.Timestamp(t.ts.max().execute()) + pd.Timedelta(seconds=1)
    s, e = (x.tz_convert(schema.TIMEZONE).tz_localize(None) if x.tzinfo else x for x in (s, e))
    if not s < e:
        raise UsageError(f"lift: the window must end after it starts (start {s}, end {e})")
    y = _outcomes(events, s, e, con)
    df = a.merge(y, on="person_id", how="left").fillna({"conversions": 0.0, "revenue": 0.0})
    df = df.sort_values("person_id", kind="stable").reset_index(drop=True)
    treat = (df["arm"] == "treatment").to_numpy()
    nt, nh = int(treat.sum()), int((~treat).sum())
    if nt == 0 or nh == 0:
        raise LiftError(f"lift: experiment {name!r} needs both arms (treatment {nt}, holdout {nh})")
    groups = None
    clusters = nt + nh
    if unit == "city":
        p = events_layer.table(persons if persons is not None else events, "persons", con=con)
        p = p.select("person_id", "city").execute()
        df = df.merge(p, on="person_id", how="left")
        if df["city"].isna().any():
            raise LiftError(f"lift: {int(df['city'].isna().sum())} assigned person(s) without a city for a geo test")
        groups = pd.factorize(df["city"])[0]
        clusters = int(groups.max()) + 1
    from scipy.stats import norm

    z = float(norm.ppf(1 - alpha / 2))
    rows = []
    for metric in ("conversions", "revenue"):
        yv = df[metric].to_numpy(dtype=float)
        est, se = _fit(yv, treat, groups, alpha)
        total_t = float(yv[treat].sum())
        inc = est * nt
        rows.append({"channel": channel, "metric": metric, "unit": unit, "start": s, "end": e,
                     "n_treatment": nt, "n_holdout": nh, "holdout_share": nh / (nt + nh), "clusters": clusters,
                     "mean_treatment": float(yv[treat].mean()), "mean_holdout": float(yv[~treat].mean()),
                     "effect_per_person": est, "std_error": se, "ci_low": est - z * se, "ci_high": est + z * se,
                     "incremental": inc, "incremental_low": (est - z * se) * nt,
                     "incremental_high": (est + z * se) * nt, "total_treatment": total_t,
                     "incremental_share": inc / total_t if total_t else float("nan"),
                     "incremental_share_se": se * nt / total_t if total_t else float("nan"), "alpha": alpha})
    return pd.DataFrame(rows, columns=LIFT_COLUMNS)


@events_input
def lifts(events: Any, channels: Sequence[str] | None = None, alpha: float = 0.05,
          *, con: Any | None = None) -> pd.DataFrame:
    """:func:`lift` for every lift test of a dataset (or the ``channels`` given), stacked."""
    chans = list(channels) if channels is not None else lift_channels(events, con=con)
    frames = [lift(events, c, alpha=alpha, con=con) for c in chans]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=LIFT_COLUMNS)


_every_lift = lifts  # reachable inside calibrated(), whose argument is called ``lifts``


def lift_plan(result: pd.DataFrame, precision: float, *, holdouts: Sequence[float] = (0.05, 0.1, 0.2, 0.3),
              metric: str = "conversions", alpha: float = 0.05, power: float = 0.8) -> pd.DataFrame:
    """Holdout share and duration a lift test needs to detect an effect of a given size.

    From a finished (or pilot) test: the outcome's standard deviation per person
    is taken from the holdout-and-treatment pooled standard error, the persons
    entering per day from the test's size and window. For each holdout share
    ``h`` it asks :func:`privdomain.experiments.power.sample_size_mean` for the
    persons needed to detect an effect of ``precision`` per person (the holdout
    is the control, ``ratio = (1 - h) / h``) and converts them to days.

    Assumptions: the per-person outcome sd and the effect do not change with the
    window length and persons arrive at a steady rate (a rough plan, not a
    guarantee). For a geo test the persons needed are multiplied by the design
    effect ``(se_cluster / se_person)^2`` implied by the result (1 for person
    tests, as estimated).

    Returns ``holdout_share``, ``persons_needed``, ``holdout_persons``, ``days_needed``,
    ``mde`` (the precision asked), ``metric``.
    """
    from ..experiments.power import sample_size_mean

    if precision <= 0:
        raise UsageError(f"precision: must be > 0 (got {precision})")
    r = result[result["metric"] == metric]
    if r.empty:
        raise UsageError(f"lift_plan: no row with metric {metric!r} in the lift result")
    r = r.iloc[0]
    nt, nh = float(r["n_treatment"]), float(r["n_holdout"])
    # se of a difference in means with a common sd: sd * sqrt(1/nt + 1/nh)
    sd = float(r["std_error"]) / np.sqrt(1 / nt + 1 / nh)
    days = max((pd.Timestamp(r["end"]) - pd.Timestamp(r["start"])).total_seconds() / 86400.0, 1e-9)
    per_day = (nt + nh) / days
    rows = []
    for h in holdouts:
        if not 0 < h < 1:
            raise UsageError(f"holdouts: each share must lie strictly between 0 and 1 (got {h})")
        ss = sample_size_mean(sd, precision, alpha=alpha, power=power, ratio=(1 - h) / h).iloc[0]
        n = float(ss["n_total"])
        rows.append({"metric": metric, "mde": precision, "holdout_share": h, "persons_needed": int(np.ceil(n)),
                     "holdout_persons": int(np.ceil(ss["n_control"])), "days_needed": n / per_day})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- calibration
@events_input(renamed={"window_days": "window"})
def calibrated(events: Any, base: str = "markov", lifts: pd.DataFrame | None = None, *, draws: int = 2000,
               alpha: float = 0.05, seed: int = 0, window: Duration = "30D", con: Any | None = None,
               attribution: pd.DataFrame | None = None) -> pd.DataFrame:
    """Channel credit calibrated with lift tests: incremental where tested, rescaled elsewhere.

    Method
    ------
    1. Run the observational ``base`` model (any model of
       :func:`privdomain.attribution.attribute`; or pass its output as
       ``attribution``) on the journeys: credit ``A_c`` (conversions, value) per
       marketing channel (``direct`` is not a channel and gets none).
    2. A tested channel ``c`` takes its lift estimate: the fraction of the exposed
       persons' conversions it caused in the test, ``f_c`` (``incremental_share``
       of :func:`lift`), applied to the conversions of the whole period:
       ``I_c = f_c * C * (1 - h_c * w_c)``, where ``C`` is every paid purchase in
       the data, ``h_c`` the holdout share and ``w_c`` the share of the period the
       test ran (the held-out persons got no increment while held out).
    3. Untested channels share what the base model credits to marketing beyond
       what the tests found: ``R = sum_c A_c - sum_tested I_c`` (the base
       model's credits sum to the purchases with a marketing touch; ``direct``
       is out), split in the base model's proportions, ``I_u = R * A_u / sum_untested A``.
       When the tests explain more than the base model credits (``R <= 0``: the
       tested channels overlap) the base model is rescaled by the calibration
       multiplier the tests reveal, ``k = sum_tested I_c / sum_tested A_c``:
       ``I_u = k * A_u``. With no test at all the result is the base model, and
       ``source`` says so.
    4. Shares are ``I_c / sum I``. Intervals come from a parametric bootstrap:
       ``draws`` draws of every ``f_c ~ Normal(f_c, se_c)`` (tests are independent
       randomisations) pushed through steps 2-4; the percentile interval of each
       channel's share and incremental conversions is reported. The base
       model's credit is held fixed: its error is not a sampling error and no
       interval can show it, which is why ``source`` says which channels rest on
       the observational model.

    Assumptions: a test's incremental fraction holds over the whole period (run
    tests long enough, or repeat them); credit is roughly additive (channels
    whose effects overlap, such as a guide recruited in a store, make the
    remainder too small for the untested one); the base model splits the
    untested channels' credit in the right proportions (the weakest link: test
    the channels that matter); no interference between arms beyond what the
    holdout design allows (e.g. a held-out friend of an exposed customer).

    References: Google Meridian (calibrating media effects with experiment-based
    ROI priors) and Meta Robyn (``calibration_input``: lift results constrain the
    model); B. R. Gordon, F. Zettelmeyer, N. Bhargava, D. Chapsky, "A comparison of
    approaches to advertising measurement: evidence from big field experiments at
    Facebook", Marketing Science 38(2), 2019 (observational methods miss
    experimental lift by large factors); G. Johnson, R. Lewis, E. Nubbemeyer,
    "Ghost ads", Journal of Marketing Research 54(6), 2017.

    Parameters
    ----------
    data
        A dataset (folder) or events with assignments.
    base
        The observational model for untested channels (``"markov"``, ``"shapley"``,
        ``"last_non_direct"``...).
    lifts
        Results of :func:`lift` (stacked; both metrics); default: every lift test
        of the dataset (:func:`lifts`); an empty frame means none.
    draws, alpha, seed
        Bootstrap draws, 1 - interval level, and the generator seed (deterministic).

    Returns
    -------
    pandas.DataFrame
        ``channel``, ``model`` (``"calibrated"``), ``conversions`` and ``value``
        (incremental, whole period), ``share``, ``share_value``, ``share_low``,
        ``share_high``, ``share_value_low``, ``share_value_high``,
        ``conversions_low``, ``conversions_high``, ``source`` (``"lift test"`` or
        ``"<base> rescaled"``: the untested channels rest on the observational
        model), ``base_share``.
    """
    from . import attribute
    from .paths import DIRECT_PATH
    from .rules import DIRECT

    if draws < 1:
        raise UsageError(f"draws: must be >= 1 (got {draws})")
    if attribution is None:
        model = "markov" if base in ("markov", "markov_1") else base
        attribution = attribute(events, models=[model], window=window, con=con)
    got = attribution.copy()
    if "model" in got.columns and got["model"].nunique() > 1:
        raise UsageError("attribution: give one model's output (it has several)")
    got = got[~got["channel"].isin([DIRECT_PATH, *DIRECT])].set_index("channel")
    if lifts is None:
        lifts = _every_lift(events, con=con) if lift_channels(events, con=con) else pd.DataFrame(columns=LIFT_COLUMNS)
    t = events_layer.read(events, con=con, columns=["touchpoint", "amount_fen"])
    t = t.filter(t.touchpoint == schema.PURCHASE)
    tot = t.aggregate(c=t.count(), v=t.amount_fen.cast("float64").sum()).execute().iloc[0]
    C, V = float(tot["c"]), float(tot["v"] or 0.0) / 100.0
    period = events_layer.read(events, con=con)
    span = period.aggregate(a=period.ts.min(), b=period.ts.max()).execute().iloc[0]
    period_days = max((pd.Timestamp(span["b"]) - pd.Timestamp(span["a"])).total_seconds() / 86400.0, 1e-9)
    chans = list(got.index)
    for c in lifts["channel"].unique() if len(lifts) else []:
        if c not in chans:
            chans.append(c)
    A = {m: got.reindex(chans)[col].fillna(0.0).to_numpy(float) for m, col in
         (("conversions", "conversions"), ("revenue", "value"))}
    tested = np.zeros(len(chans), bool)
    f = {m: np.zeros(len(chans)) for m in A}
    se = {m: np.zeros(len(chans)) for m in A}
    scale = np.ones(len(chans))
    for i, c in enumerate(chans):
        r = lifts[lifts["channel"] == c] if len(lifts) else lifts
        if r.empty:
            continue
        tested[i] = True
        for m in A:
            row = r[r["metric"] == m].iloc[0]
            f[m][i] = float(row["incremental_share"])
            se[m][i] = float(row["incremental_share_se"])
        first = r.iloc[0]
        w = min(1.0, (pd.Timestamp(first["end"]) - pd.Timestamp(first["start"])).total_seconds() / 86400.0
                / period_days)
        scale[i] = 1.0 - float(first["holdout_share"]) * w
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((draws, len(chans)))
    out = pd.DataFrame({"channel": chans, "model": "calibrated"})
    for m, total in (("conversions", C), ("revenue", V)):
        point = _calibrate(f[m], A[m], tested, scale, total)
        sims = np.array([_calibrate(f[m] + se[m] * z[d], A[m], tested, scale, total) for d in range(draws)])
        shares = sims / np.where(sims.sum(axis=1, keepdims=True) != 0, sims.sum(axis=1, keepdims=True), 1.0)
        lo, hi = np.percentile(shares, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
        clo, chi = np.percentile(sims, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
        tot_p = point.sum()
        name = "conversions" if m == "conversions" else "value"
        sh = "share" if m == "conversions" else "share_value"
        out[name] = point
        out[sh] = point / tot_p if tot_p else np.zeros_like(point)
        out[f"{sh}_low"], out[f"{sh}_high"] = lo, hi
        if m == "conversions":
            out["conversions_low"], out["conversions_high"] = clo, chi
    base_tot = A["conversions"].sum()
    out["base_share"] = A["conversions"] / base_tot if base_tot else 0.0
    out["source"] = np.where(tested, "lift test", f"{base} rescaled")
    out.attrs = {"base": base, "tested": [c for c, t_ in zip(chans, tested) if t_], "draws": draws,
                 "alpha": alpha, "conversions_total": C, "value_total": V}
    return out


def _calibrate(f: np.ndarray, A: np.ndarray, tested: np.ndarray, scale: np.ndarray, total: float) -> np.ndarray:
    """Steps 2-3 of :func:`calibrated`: incremental credit per channel."""
    inc = np.where(tested, np.clip(f, 0.0, None) * total * scale, 0.0)
    if not tested.any():
        return A.astype(float).copy()
    untested = ~tested
    rest = A.sum() - inc[tested].sum()
    au = A[untested].sum()
    if untested.any() and rest > 0 and au > 0:
        return np.where(tested, inc, rest * A / au)
    at = A[tested].sum()
    k = inc[tested].sum() / at if at > 0 else 1.0
    return np.where(tested, inc, k * A)


def score_lift(result: pd.DataFrame, truth: Any) -> pd.DataFrame:
    """Each lift estimate next to the simulator's true incremental effect (``truth/lift.parquet``).

    Returns ``channel``, ``metric``, ``estimate``, ``ci_low``, ``ci_high``, ``truth``
    (conversions; revenue in yuan), ``error``, ``covered``.
    """
    if isinstance(truth, Mapping):
        t = truth["lift"]
    else:
        path = Path(os.fspath(truth))
        f = (path / "truth" / "lift.parquet") if (path / "truth").is_dir() else path / "lift.parquet"
        if not f.exists():
            raise LiftError(f"no lift truth ({f})")
        t = pd.read_parquet(f)
    t = t.set_index("channel")
    rows = []
    for r in result.itertuples():
        if r.channel not in t.index:
            continue
        tr = t.loc[r.channel]
        # the estimand: the average effect per person times the exposed persons
        per = tr["effect_conversions_per_person"] if r.metric == "conversions" else \
            tr["effect_revenue_fen_per_person"] / 100.0
        true_inc = float(per) * r.n_treatment
        rows.append({"channel": r.channel, "metric": r.metric, "estimate": r.incremental,
                     "ci_low": r.incremental_low, "ci_high": r.incremental_high, "truth": true_inc,
                     "error": r.incremental - true_inc,
                     "covered": bool(r.incremental_low <= true_inc <= r.incremental_high)})
    return pd.DataFrame(rows, columns=["channel", "metric", "estimate", "ci_low", "ci_high", "truth", "error",
                                       "covered"])


__all__ = ["LIFT_COLUMNS", "LiftError", "calibrated", "experiment_of", "lift", "lift_plan", "lifts", "score_lift",
           "lift_channels"]

