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

from .. import backend, schema
from .. import events as events_layer
from ..contract import Duration, events_input, interval
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


# --------------------------------------------------------------------------- recruitment
#: Membership joins (touchpoint -> the channel joined): a follow of the Official Account,
#: a group join, a WeCom add by a guide.
JOIN_TOUCHPOINTS: dict[str, str] = {"oa_follow": "official_account", "group_join": "group", "wecom_add": "guide"}
RECRUITMENT_COLUMNS = ["channel", "recruiter", "members", "recruited", "share"]


@events_input(renamed={"days": "window"})
def recruitment(events: Any, *, window: Duration = "7D", con: Any | None = None,
                marketing_channels: Sequence[str] | None = None) -> pd.DataFrame:
    """Which marketing channel recruited the members of each membership channel.

    A person's first join of a membership channel (a ``wecom_add``, ``oa_follow``
    or ``group_join``) is credited to the channel of her last marketing touch at
    or before the join and at most ``window`` earlier, other than the joined
    channel itself and other joins (a touch that carries ``referrer_person_id``
    is a ``fission`` touch, as in the path tables; the Mini Program and the
    checkout steps are not marketing, see :mod:`privdomain.attribution.paths`).
    A join with no such touch is recruited by nobody (``direct``, not listed).
    Ties at the same instant go to the alphabetically first channel
    (deterministic). In WeChat the source of a WeCom add or a follow is usually
    recorded (channel QR codes, 渠道活码); the last touch before the join is what
    events without it allow.

    Returns
    -------
    pandas.DataFrame
        ``channel`` (joined), ``recruiter``, ``members`` (persons who joined
        ``channel``), ``recruited`` (of them, by ``recruiter``), ``share`` =
        ``recruited / members``; sorted by channel and recruiter.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "store_visit"), (1, "2024-05-01 10:00", "wecom_add"),
    ...                    (2, "2024-05-01 10:00", "sms"), (2, "2024-05-03 10:00", "wecom_add")])
    >>> recruitment(ev)[["channel", "recruiter", "members", "share"]].values.tolist()
    [['guide', 'sms', 2, 0.5], ['guide', 'store', 2, 0.5]]
    """
    import ibis

    from .paths import NON_TOUCHES, REFERRED_CHANNEL, marketing_filter

    lo_by = interval(window)
    t = events_layer.read(events, con=con, columns=["person_id", "touchpoint", "channel"])
    joins = list(JOIN_TOUCHPOINTS)
    j = t.filter(t.touchpoint.isin(joins))
    j = j.select("person_id", jts=j.ts, joined=j.channel)
    j = j.group_by(["person_id", "joined"]).aggregate(jts=j.jts.min())
    channel = t.channel
    if "referrer_person_id" in t.columns:
        channel = ibis.cases((t.referrer_person_id.notnull(), REFERRED_CHANNEL), else_=t.channel)
    m = t.filter(t.touchpoint.notin([*NON_TOUCHES, *joins])).select(mperson=t.person_id, mts=t.ts, recruiter=channel)
    m = m.filter(marketing_filter(m.recruiter, marketing_channels))
    lo = j.jts - lo_by
    x = j.join(m, (j.person_id == m.mperson) & (m.mts <= j.jts) & (m.mts >= lo) & (m.recruiter != j.joined))
    w = ibis.window(group_by=[x.person_id, x.joined], order_by=[ibis.desc(x.mts), x.recruiter])
    x = x.mutate(rn=ibis.row_number().over(w))
    x = x.filter(x.rn == 0)
    got = x.group_by(["joined", "recruiter"]).aggregate(recruited=x.count()).execute()
    members = j.group_by("joined").aggregate(members=j.count()).execute().set_index("joined")["members"]
    if got.empty:
        return pd.DataFrame(columns=RECRUITMENT_COLUMNS)
    got["joined"] = got["joined"].astype(str)
    got["recruiter"] = got["recruiter"].astype(str)
    got["members"] = got["joined"].map(members).astype("int64")
    got["recruited"] = got["recruited"].astype("int64")
    got["share"] = got["recruited"] / got["members"]
    got = got.rename(columns={"joined": "channel"})[RECRUITMENT_COLUMNS]
    return got.sort_values(["channel", "recruiter"], kind="stable").reset_index(drop=True)


ACQUISITION_COLUMNS = ["channel", "acquirer", "journeys", "acquired", "share", "value_share"]


@events_input(renamed={"window_days": "window"})
def acquisition(events: Any, *, window: Duration = "30D", con: Any | None = None,
                marketing_channels: Sequence[str] | None = None, partitions: int | None = None) -> pd.DataFrame:
    """Which marketing channel acquired the customers on each channel's converting journeys.

    A customer's **acquirer** is the channel of her first marketing touch at or
    before her first paid purchase (a touch that carries ``referrer_person_id`` is
    a ``fission`` touch, as in the path tables; membership joins, ``wecom_add``,
    ``oa_follow``, ``group_join``, are results of a touch, not touches that bring
    a customer, and the Mini Program and the checkout steps are not marketing, see
    :mod:`privdomain.attribution.paths`). A customer without a marketing touch
    before her first purchase is acquired by nobody (``direct``, not listed).
    Ties at the same instant go to the alphabetically first channel
    (deterministic). The converting journeys are those of the path tables
    (:func:`privdomain.attribution.journey_touches` with the same ``window``).
    ``partitions``: run by person-hash partition, the counts added up
    (:func:`privdomain.events.sum_over_partitions`; None: enough for the DuckDB
    memory limit, :func:`privdomain.events.person_partitions`); the result does not
    depend on it.

    Returns
    -------
    pandas.DataFrame
        ``channel`` (a channel on converting journeys), ``acquirer``,
        ``journeys`` (converting journeys with a touch of ``channel``),
        ``acquired`` (of them, made by customers ``acquirer`` acquired),
        ``share = acquired / journeys`` and ``value_share`` (the same by the
        journeys' purchase value); sorted by channel and acquirer.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "store_visit"), (1, "2024-05-01 10:05", "pay",
    ...                     {"order_id": 1, "amount_fen": 900}), (1, "2024-05-20 09:00", "sms"),
    ...                    (1, "2024-05-20 10:00", "pay", {"order_id": 2, "amount_fen": 300}),
    ...                    (2, "2024-05-02 10:00", "sms"), (2, "2024-05-02 11:00", "pay",
    ...                     {"order_id": 3, "amount_fen": 100})])
    >>> acquisition(ev)[["channel", "acquirer", "journeys", "share", "value_share"]].values.tolist()
    [['sms', 'sms', 2, 0.5, 0.25], ['sms', 'store', 2, 0.5, 0.75], ['store', 'store', 1, 1.0, 1.0]]
    """
    import ibis

    from .paths import NON_TOUCHES, REFERRED_CHANNEL, journey_touches, marketing_filter

    t0 = events_layer.read(events, con=con, columns=["person_id", "touchpoint", "channel"])
    k = events_layer.person_partitions(events, partitions, con=con)

    def cells(part: tuple[int, int]) -> pd.DataFrame:
        """Converting journeys and their value per (channel, acquirer) of one person partition;
        ``acquirer`` null: every journey of the channel (its total)."""
        t = t0.filter(events_layer.person_part(t0.person_id, *part)) if part[1] > 1 else t0
        channel = t.channel
        if "referrer_person_id" in t.columns:
            channel = ibis.cases((t.referrer_person_id.notnull(), REFERRED_CHANNEL), else_=t.channel)
        m = t.filter(t.touchpoint.notin([*NON_TOUCHES, *JOIN_TOUCHPOINTS])).select(mperson=t.person_id, mts=t.ts,
                                                                                   acquirer=channel)
        m = m.filter(marketing_filter(m.acquirer, marketing_channels))
        p = t.filter(t.touchpoint == schema.PURCHASE)
        p = p.group_by(p.person_id).aggregate(first_pay=p.ts.min())
        x = p.join(m, (p.person_id == m.mperson) & (m.mts <= p.first_pay))
        w = ibis.window(group_by=x.person_id, order_by=[x.mts, x.acquirer])
        x = x.mutate(rn=ibis.row_number().over(w))
        x = x.filter(x.rn == 0).select(aperson=x.person_id, acquirer=x.acquirer.cast("string"))
        j = journey_touches(events, window, con=con, marketing_channels=marketing_channels, part=part)
        j = j.filter(j.converted == 1)
        j = j.group_by([j.person_id, j.journey, j.channel]).aggregate(value=j.value_fen.max())
        tot = j.group_by(channel=j.channel.cast("string")).aggregate(
            acquirer=ibis.null("string"), journeys=j.count(), value=j.value.sum())
        y = j.join(x, j.person_id == x.aperson)
        got = y.group_by(channel=y.channel.cast("string"), acquirer=y.acquirer).aggregate(
            journeys=y.count(), value=y.value.sum())
        return backend.execute(tot.union(got), con=con)

    both = events_layer.sum_over_partitions(cells, k, ["channel", "acquirer"])
    is_total = both["acquirer"].isna()
    tot = both[is_total].rename(columns={"value": "total_value"}).set_index("channel")
    got = both[~is_total].rename(columns={"journeys": "acquired"}).reset_index(drop=True)
    if got.empty:
        return pd.DataFrame(columns=ACQUISITION_COLUMNS)
    got["channel"] = got["channel"].astype(str)
    got["acquirer"] = got["acquirer"].astype(str)
    got["journeys"] = got["channel"].map(tot["journeys"]).astype("int64")
    got["acquired"] = got["acquired"].astype("int64")
    got["share"] = got["acquired"] / got["journeys"]
    tv = got["channel"].map(tot["total_value"]).astype(float)
    got["value_share"] = np.where(tv > 0, got["value"].astype(float) / tv.where(tv > 0, 1.0), got["share"])
    got = got[ACQUISITION_COLUMNS]
    return got.sort_values(["channel", "acquirer"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- calibration
@events_input(renamed={"window_days": "window"})
def calibrated(events: Any, base: str = "markov", lifts: pd.DataFrame | None = None, *, draws: int = 2000,
               alpha: float = 0.05, seed: int = 0, window: Duration = "30D", con: Any | None = None,
               attribution: pd.DataFrame | None = None, mediation: bool | pd.DataFrame = True,
               recruit_window: Duration = "7D", acquisition: bool | pd.DataFrame = True) -> pd.DataFrame:
    """Channel credit calibrated with lift tests: incremental where tested, rescaled elsewhere.

    Every channel's credit is an estimate of its **incremental** conversions over
    the whole period: what would be lost without the channel (the estimand of the
    simulator's ``truth/incrementality.parquet``). Because channels complement
    each other (a guide recruited in a store), these removal effects need not
    add up to the conversions; shares are ``I_c / sum I``.

    Method
    ------
    1. Run the observational ``base`` model (any model of
       :func:`privdomain.attribution.attribute`; or pass its output as
       ``attribution``) on the journeys: credit ``A_c`` (conversions, value) per
       marketing channel (``direct`` is not a channel and gets none).
    2. **Tested channels** take their lift estimate. In the test window the
       held-out persons already live without the channel, so what the channel
       adds there is the test's own ``incremental`` (effect per person times the
       exposed persons, :func:`lift`); outside the window everyone is exposed and
       the test's incremental fraction ``f_c = incremental / total_treatment`` is
       applied to the conversions there, ``C_out``:
       ``I_c = f_c * (total_treatment_c + C_out_c)`` (= ``incremental`` for a test
       over the whole period).
    3. **Recruitment (mediation).** A channel that recruits persons into a tested
       membership channel (a store whose staff add customers on WeCom, an ad that
       brings followers) also causes the tested channel's effect on them: without
       the recruiter they would not have joined. With ``m_{u,t}`` the share of
       ``t``'s members recruited by ``u`` (:func:`recruitment`), the effect of the
       tests mediated by ``u`` is ``Med_u = sum_t m_{u,t} I_t``, and a channel's
       direct effect is its total effect minus what it mediates,
       ``D_c = max(I_c - Med_c, 0)`` for a tested channel.
    4. **Untested channels: the credit the tests move.** A tested channel's base
       credit beyond its direct effect, ``A_t - D_t``, is credit for purchases
       the test shows it did not cause (short of it, ``A_t < D_t``: purchases it
       caused that the base credited elsewhere). A purchase a retouch channel
       (an SMS, a push, an article) did not cause was made possible by whatever
       brought the customer to the brand, so that credit goes to the channel that
       **acquired** the customers on whose journeys it was given
       (:func:`acquisition`: the first marketing touch at or before a customer's
       first purchase). With ``W_{t,a}`` the share of ``t``'s converting journeys
       made by customers ``a`` acquired, an untested channel gets
       ``I_u = max(A_u + sum_tested (A_t - D_t) W_{t,u}, 0) + Med_u``
       (``acquired``: the moved part). The shares that fall on customers a tested
       channel acquired stay out: its lift test withholds the acquisition, so its
       estimate already holds everything those customers buy; those of customers
       no marketing touch brought (a first purchase through the Mini Program)
       stay out too. With no test at all the result is the base model, and
       ``source`` says so. ``acquisition=False`` keeps the earlier proportional
       rule: the untested channels share ``R = sum_c A_c - sum_tested D_c`` in the
       base model's proportions, ``I_u = R * A_u / sum_untested A + Med_u`` (when
       ``R <= 0``, ``I_u = k * A_u + Med_u`` with ``k = sum_tested D_c /
       sum_tested A_c``); it lets every test's sampling error land on the
       untested channels and hands uncaused credit to channels that brought none
       of the customers concerned.
    5. Intervals come from a parametric bootstrap: ``draws`` draws of every
       ``f_c ~ Normal(f_c, se_c)`` (tests are independent randomisations) pushed
       through steps 2-4; the percentile interval of each channel's share and
       incremental conversions is reported. The base model's credit and the
       recruitment and acquirer shares are held fixed: their error is not a sampling error
       and no interval can show it, which is why ``source`` says which channels
       rest on the observational model.

    Assumptions: a test's incremental fraction holds over the whole period (run
    tests long enough, or repeat them); **direct** effects are roughly additive
    (overlap through recruitment is handled by step 3, other overlap is not); a
    tested channel's effect per member is the same for the members each channel
    recruited, and a member recruited by ``u`` would not have joined without ``u``
    (no other recruiter takes its place: an upper bound when one would); the
    recruiter is the channel of the last marketing touch in the ``recruit_window``
    before the join (the recorded source of the join is better where a brand has
    it); the credit a tested channel did not earn belongs to the acquirer of the
    customers it was given on, in proportion to its converting journeys (not to
    the base model's per-journey split, which Markov and Shapley do not report),
    and a customer an untested channel acquired would not have come without it
    (an upper bound where another channel would have brought her); the base model
    credits the untested channels' own journeys right (the weakest link: test the
    channels that matter); no interference between arms beyond what the holdout
    design allows (e.g. a held-out friend of an exposed customer).

    References: Google Meridian (calibrating media effects with experiment-based
    ROI priors) and Meta Robyn (``calibration_input``: lift results constrain the
    model); B. R. Gordon, F. Zettelmeyer, N. Bhargava, D. Chapsky, "A comparison of
    approaches to advertising measurement: evidence from big field experiments at
    Facebook", Marketing Science 38(2), 2019 (observational methods miss
    experimental lift by large factors); G. Johnson, R. Lewis, E. Nubbemeyer,
    "Ghost ads", Journal of Marketing Research 54(6), 2017; for step 3, direct and
    indirect (mediated) effects: R. M. Baron, D. A. Kenny, "The moderator-mediator
    variable distinction", Journal of Personality and Social Psychology 51(6),
    1986; J. Pearl, "Direct and indirect effects", UAI 2001; T. J. VanderWeele,
    *Explanation in Causal Inference: Methods for Mediation and Interaction*,
    Oxford University Press, 2015; for step 4, crediting a customer's later
    purchases to the channel that acquired her (customer value by acquisition
    channel): S. Gupta, D. R. Lehmann, J. A. Stuart, "Valuing customers",
    Journal of Marketing Research 41(1), 2004; P. C. Verhoef, B. Donkers, "The
    effect of acquisition channels on customer loyalty and cross-buying",
    Journal of Interactive Marketing 19(2), 2005; J. Villanueva, S. Yoo, D. M.
    Hanssens, "The impact of marketing-induced versus word-of-mouth customer
    acquisition on customer equity growth", Journal of Marketing Research 45(1),
    2008.

    Parameters
    ----------
    events
        A dataset (folder) or events with assignments.
    base
        The observational model for untested channels (``"markov"``, ``"shapley"``,
        ``"last_non_direct"``...).
    lifts
        Results of :func:`lift` (stacked; both metrics); default: every lift test
        of the dataset (:func:`lifts`); an empty frame means none.
    draws, alpha, seed
        Bootstrap draws, 1 - interval level, and the generator seed (deterministic).
    mediation, recruit_window
        Step 3: ``True`` computes the recruitment shares from the events
        (:func:`recruitment` with ``window=recruit_window``), a frame gives them
        (its columns ``channel``, ``recruiter``, ``share``), ``False`` skips the
        step.
    acquisition
        Step 4: ``True`` computes the acquirer shares from the events
        (:func:`acquisition` with the same ``window``), a frame gives them (its
        columns ``channel``, ``acquirer``, ``share``, optionally ``value_share``:
        a brand's recorded acquisition source is better evidence), ``False``
        keeps the proportional rule.

    Returns
    -------
    pandas.DataFrame
        ``channel``, ``model`` (``"calibrated"``), ``conversions`` and ``value``
        (incremental, whole period), ``share``, ``share_value``, ``share_low``,
        ``share_high``, ``share_value_low``, ``share_value_high``,
        ``conversions_low``, ``conversions_high``, ``source`` (``"lift test"`` or
        ``"<base> rescaled"``: the untested channels rest on the observational
        model), ``base_share``, ``mediated`` (conversions credited through the
        tested channels the channel recruits into; 0 for a tested channel),
        ``acquired`` (conversions moved to an untested channel in step 4 from
        the tested channels' credit on its customers' journeys; 0 for a tested
        channel).

    Examples
    --------
    >>> import pandas as pd
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "sms"), (1, "2024-05-01 10:08", "pay",
    ...                     {"order_id": 1, "amount_fen": 900})])
    >>> calibrated(ev, base="last_non_direct", draws=10)[["channel", "share", "source"]].values.tolist()
    [['sms', 1.0, 'last_non_direct rescaled']]
    """
    from .compare import attribute
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
    pays = events_layer.read(events, con=con, columns=["touchpoint", "amount_fen"])
    pays = pays.filter(pays.touchpoint == schema.PURCHASE)

    def totals(start: Any = None, end: Any = None) -> tuple[float, float]:
        t = pays
        if start is not None:
            s, e = (x.tz_convert(schema.TIMEZONE).tz_localize(None) if x.tzinfo else x
                    for x in (pd.Timestamp(start), pd.Timestamp(end)))
            t = t.filter((t.ts >= s.to_pydatetime()) & (t.ts < e.to_pydatetime()))
        r = t.aggregate(c=t.count(), v=t.amount_fen.cast("float64").sum()).execute().iloc[0]
        return float(r["c"]), float(r["v"] if r["v"] == r["v"] and r["v"] is not None else 0.0) / 100.0

    C, V = totals()
    chans = list(got.index)
    for c in lifts["channel"].unique() if len(lifts) else []:
        if c not in chans:
            chans.append(c)
    A = {m: got.reindex(chans)[col].fillna(0.0).to_numpy(float) for m, col in
         (("conversions", "conversions"), ("revenue", "value"))}
    tested = np.zeros(len(chans), bool)
    f = {m: np.zeros(len(chans)) for m in A}
    se = {m: np.zeros(len(chans)) for m in A}
    reach = {m: np.zeros(len(chans)) for m in A}
    for i, c in enumerate(chans):
        r = lifts[lifts["channel"] == c] if len(lifts) else lifts
        if r.empty:
            continue
        tested[i] = True
        first = r.iloc[0]
        c_in, v_in = totals(first["start"], first["end"])
        for m, (tot, inside) in (("conversions", (C, c_in)), ("revenue", (V, v_in))):
            row = r[r["metric"] == m].iloc[0]
            f[m][i] = float(row["incremental_share"]) if row["total_treatment"] else 0.0
            se[m][i] = float(row["incremental_share_se"]) if row["total_treatment"] else 0.0
            reach[m][i] = float(row["total_treatment"]) + max(tot - inside, 0.0)
    M = _recruitment_matrix(events, chans, tested, mediation, recruit_window, con)
    acq = _acquisition_table(events, tested, acquisition, window, con)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((draws, len(chans)))
    out = pd.DataFrame({"channel": chans, "model": "calibrated"})
    for m in ("conversions", "revenue"):
        W = _acquisition_matrix(acq, chans, "share" if m == "conversions" else "value_share")
        point, med = _calibrate(f[m], A[m], tested, reach[m], M, W)
        sims = np.array([_calibrate(f[m] + se[m] * z[d], A[m], tested, reach[m], M, W)[0] for d in range(draws)])
        sums = sims.sum(axis=1, keepdims=True)
        shares = sims / np.where(sums != 0, sums, 1.0)
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
            out["mediated"] = med
            out["acquired"] = (np.where(tested, 0.0, point - med - A[m]) if W is not None
                               else np.zeros(len(chans)))
    base_tot = A["conversions"].sum()
    out["base_share"] = A["conversions"] / base_tot if base_tot else 0.0
    out["source"] = np.where(tested, "lift test", f"{base} rescaled")
    out = out[["channel", "model", "conversions", "value", "share", "share_value", "share_low", "share_high",
               "share_value_low", "share_value_high", "conversions_low", "conversions_high", "source",
               "base_share", "mediated", "acquired"]]
    out.attrs = {"base": base, "tested": [c for c, t_ in zip(chans, tested) if t_], "draws": draws,
                 "alpha": alpha, "conversions_total": C, "value_total": V,
                 "mediation": bool(M.any()), "acquisition": acq is not False}
    return out


def _acquisition_table(events: Any, tested: np.ndarray, acquisition_: bool | pd.DataFrame, window: Duration,
                       con: Any | None) -> bool | pd.DataFrame:
    """Step 4's acquirer shares: computed once (``False`` keeps the proportional rule)."""
    if isinstance(acquisition_, pd.DataFrame):
        missing = {"channel", "acquirer", "share"} - set(acquisition_.columns)
        if missing:
            raise UsageError(f"acquisition: the frame needs columns channel, acquirer, share (missing "
                             f"{', '.join(sorted(missing))})")
        return acquisition_
    if not acquisition_:
        return False
    if not tested.any():
        return pd.DataFrame(columns=ACQUISITION_COLUMNS)
    return acquisition(events, window=window, con=con)


def _recruitment_matrix(events: Any, chans: list[str], tested: np.ndarray, mediation: bool | pd.DataFrame,
                        window: Duration, con: Any | None) -> np.ndarray:
    """``M[u, t]``: the share of tested channel ``t``'s members recruited by channel ``u`` (step 3)."""
    M = np.zeros((len(chans), len(chans)))
    if mediation is False or mediation is None or not tested.any():
        return M
    targets = [c for c, t_ in zip(chans, tested) if t_ and c in JOIN_TOUCHPOINTS.values()]
    if isinstance(mediation, pd.DataFrame):
        rec = mediation
    elif not targets:
        return M
    else:
        rec = recruitment(events, window=window, con=con)
    idx = {c: i for i, c in enumerate(chans)}
    for r in rec.itertuples():
        u, t = str(r.recruiter), str(r.channel)
        if u in idx and t in idx and u != t and tested[idx[t]]:
            M[idx[u], idx[t]] = float(r.share)
    return M


def _calibrate(f: np.ndarray, A: np.ndarray, tested: np.ndarray, reach: np.ndarray,
               M: np.ndarray | None = None, W: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Steps 2-4 of :func:`calibrated`: incremental credit per channel, and the mediated part of it.

    ``W[t, a]``: the share of channel ``t``'s converting journeys made by customers
    that channel ``a`` acquired (step 4); ``None`` spreads the remainder over the
    untested channels in the base model's proportions instead.

    >>> import numpy as np
    >>> inc, med = _calibrate(np.array([0.5, 0.0]), np.array([40.0, 60.0]), np.array([True, False]),
    ...                       np.array([100.0, 0.0]), np.array([[0.0, 0.0], [1.0, 0.0]]))
    >>> inc.tolist(), med.tolist()
    ([50.0, 100.0], [0.0, 50.0])
    >>> inc, _ = _calibrate(np.array([0.1, 0.0]), np.array([40.0, 60.0]), np.array([True, False]),
    ...                     np.array([100.0, 0.0]), W=np.array([[0.25, 0.75], [0.0, 1.0]]))
    >>> inc.tolist()  # the ad's 40 - 10 = 30 uncaused credit: 3/4 on the store's customers
    [10.0, 82.5]
    """
    A = A.astype(float)
    if not tested.any():
        return A.copy(), np.zeros_like(A)
    inc = np.where(tested, np.clip(f, 0.0, None) * reach, 0.0)
    med = M @ inc if M is not None else np.zeros_like(A)
    direct = np.where(tested, np.clip(inc - med, 0.0, None), 0.0)
    untested = ~tested
    if W is not None:
        # the base credit of a tested channel beyond (short of) its direct effect goes to (comes from)
        # the untested channels that acquired the customers on whose journeys it was credited
        moved = np.where(tested, A - direct, 0.0) @ W
        return np.where(tested, inc, np.clip(A + moved, 0.0, None) + med), np.where(tested, 0.0, med)
    rest = A.sum() - direct.sum()
    au = A[untested].sum()
    if untested.any() and rest > 0 and au > 0:
        return np.where(tested, inc, rest * A / au + med), np.where(tested, 0.0, med)
    at = A[tested].sum()
    k = direct.sum() / at if at > 0 else 1.0
    return np.where(tested, inc, k * A + med), np.where(tested, 0.0, med)


def _acquisition_matrix(acq: bool | pd.DataFrame, chans: list[str], column: str) -> np.ndarray | None:
    """``W[t, a]`` of step 4 from the acquirer shares (``column``: ``share`` or ``value_share``);
    ``None`` (no shares: ``acquisition=False``) for the proportional rule."""
    if acq is False:
        return None
    W = np.zeros((len(chans), len(chans)))
    col = column if column in acq.columns else "share"
    idx = {c: i for i, c in enumerate(chans)}
    for r in acq.itertuples():
        t, a = str(r.channel), str(r.acquirer)
        if t in idx and a in idx and t != a:
            W[idx[t], idx[a]] = float(getattr(r, col))
    return W


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


__all__ = ["ACQUISITION_COLUMNS", "JOIN_TOUCHPOINTS", "LIFT_COLUMNS", "LiftError", "RECRUITMENT_COLUMNS", "acquisition",
           "calibrated", "experiment_of",
           "lift", "lift_channels", "lift_plan", "lifts", "recruitment", "score_lift"]

