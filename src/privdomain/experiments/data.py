"""Per-person analysis frames built from a dataset (event work in Ibis, run on DuckDB).

* :func:`campaign_frame`: one row per person assigned in an experiment, with the
  outcomes in a window after assignment and pre-period covariates: the input of
  :mod:`privdomain.experiments.randomised`.
* :func:`touchpoint_frame`: one row per person with 0/1 columns for the
  touchpoints they met before their first purchase, and whether they bought: the
  input of :func:`privdomain.experiments.drivers.purchase_drivers`.
* :func:`rollout_panel`: one row per unit (store, account, ...) and period with
  purchases and GMV, and whether the unit had a change: the input of
  :func:`privdomain.experiments.did.did`.

Purchases are ``pay`` events (:data:`privdomain.schema.PURCHASE`); revenue is the
sum of their ``amount_fen`` / 100 in yuan. Times are Beijing wall-clock times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd

from .. import events as events_layer
from .._days import person_ids
from ..backend import TableLike, execute
from ..contract import Duration, events_input, interval
from ..schema import CHANNEL_OF, ORDER_TOUCHPOINTS, PURCHASE
from .synthetic import coupon_tier

__all__ = ["TEA_TIERS", "campaign_frame", "touchpoint_frame", "rollout_panel"]


#: Default coupon tiers by purchases made before assignment: ``{tier: (min, max)}``
#: (max None = no upper bound), as :func:`privdomain.experiments.synthetic.coupon_tier`.
TEA_TIERS: dict[str, tuple[int, int | None]] = {"first_time": (0, 0), "2-5": (1, 4), "5+": (5, None)}


def _tiers(prior: np.ndarray, tiers: Mapping[str, tuple[int, int | None]] | None) -> np.ndarray:
    if tiers is None:
        return coupon_tier(prior)
    out = np.full(len(prior), None, dtype=object)
    for name, (lo, hi) in tiers.items():
        hit = (prior >= lo) & ((prior <= hi) if hi is not None else True)
        clash = int((hit & (out != None)).sum())  # noqa: E711 - elementwise
        if clash:
            raise ValueError(f"tiers overlap: {clash} person(s) fall in {name!r} and another tier")
        out[hit] = name
    missing = int((out == None).sum())  # noqa: E711
    if missing:
        raise ValueError(f"tiers leave gaps: {missing} person(s) fall in no tier {dict(tiers)}")
    return out


@events_input(renamed={"window_days": "window", "pre_days": "pre_window"})
def campaign_frame(
    events: TableLike,
    experiment: str,
    *,
    window: Duration = "30D",
    pre_window: Duration = "90D",
    tiers: Mapping[str, tuple[int, int | None]] | None = None,
    arm_sep: str | None = ":",
    counts: Sequence[str] = (),
    assignments: TableLike | None = None,
    con: Any | None = None,
) -> pd.DataFrame:
    """One row per person assigned in ``experiment``: arm, outcomes after assignment, pre-period covariates.

    For a person assigned at ``t0``:

    * ``orders`` = pay events in ``[t0, t0 + window)``; ``converted`` = orders >= 1;
    * ``revenue`` = their amount in yuan;
    * ``prior_purchases`` = pay events before ``t0`` (all history);
    * ``repurchased`` = converted and ``prior_purchases + orders >= 2`` (a repeat
      purchase happened in the window);
    * ``pre_purchases``, ``pre_revenue`` = pay events / yuan in ``[t0 - pre_window, t0)``
      (the CUPED covariates);
    * ``segment`` = coupon tier from ``prior_purchases`` (``tiers`` maps a name to
      an inclusive ``(min, max)`` range; default :data:`TEA_TIERS`), unless every
      arm label reads ``"<segment><arm_sep><arm>"`` (e.g. ``"regular:treatment"``,
      arms randomised within tiers, as the simulator writes them): then the label
      is split into ``segment`` and ``arm`` (``attrs["segment_from"]`` says which);
    * ``n_<touchpoint>`` for each touchpoint in ``counts``: its events in the window
      (e.g. ``counts=("oa_article_open", "mp_click")`` for an article click rate per
      open, see :func:`privdomain.experiments.randomised.ratio_effect`).

    Parameters
    ----------
    events
        A dataset (path or :class:`privdomain.io.Dataset`) with ``events`` and
        ``assignments`` tables, or an events frame / Ibis table together with
        ``assignments=``.
    experiment
        Value of ``assignments.experiment`` to analyse.
    window, pre_window
        Durations (``"30D"``, ``"90D"``, :func:`privdomain.contract.duration`) after and
        before the assignment for the outcomes and the covariates.

    Returns
    -------
    pandas.DataFrame
        ``person_id, arm, assigned_at`` (naive Beijing time), ``segment, prior_purchases, pre_purchases,
        pre_revenue, orders, converted, repurchased, revenue`` sorted by person;
        ``attrs["assigned"]`` = persons assigned, ``attrs["arms"]`` = persons per arm.

    Raises
    ------
    ValueError
        If the experiment has no assignments or a person is assigned twice.

    Examples
    --------
    >>> import pandas as pd
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-02 10:00", "pay", {"order_id": 1, "amount_fen": 3000}),
    ...                    (2, "2024-04-20 10:00", "pay", {"order_id": 2, "amount_fen": 1000})])
    >>> asg = pd.DataFrame({"person_id": [1, 2], "experiment": "coupon_tiers", "arm": ["treatment", "holdout"],
    ...     "assigned_at": pd.Timestamp("2024-05-01", tz="Asia/Shanghai")})
    >>> f = campaign_frame(ev, "coupon_tiers", assignments=asg)
    >>> f[["person_id", "segment", "converted", "revenue", "pre_purchases"]].values.tolist()
    [[1, 'first_time', 1, 30.0, 0], [2, '2-5', 0, 0.0, 1]]
    """
    after, before = interval(window, name="window"), interval(pre_window, name="pre_window")
    a = events_layer.table(assignments if assignments is not None else events, "assignments", con=con)
    a = a.filter(a.experiment == experiment).select("person_id", "arm", "assigned_at")
    dup = int(execute(a.group_by("person_id").agg(k=a.count()).filter(lambda t: t.k > 1).count(), con=con))
    if dup:
        raise ValueError(f"assignments: person_id must be assigned once per experiment: {dup} person(s) have more")
    e = events_layer.read(events, con=con)
    pay = e.filter(e.touchpoint == PURCHASE).select(
        pid=e.person_id, ts=e.ts, fen=e.amount_fen.fill_null(0).cast("int64")
    )
    j = a.left_join(pay, a.person_id == pay.pid)
    end = j.assigned_at + after
    start = j.assigned_at - before
    in_win = (j.ts >= j.assigned_at) & (j.ts < end)
    before = j.ts < j.assigned_at
    in_pre = before & (j.ts >= start)
    one = ibis.literal(1)
    zero = ibis.literal(0)
    expr = j.group_by(["person_id", "arm", "assigned_at"]).agg(
        orders=ibis.ifelse(in_win, one, zero).sum().fill_null(0),
        revenue_fen=ibis.ifelse(in_win, j.fen, zero).sum().fill_null(0),
        prior_purchases=ibis.ifelse(before, one, zero).sum().fill_null(0),
        pre_purchases=ibis.ifelse(in_pre, one, zero).sum().fill_null(0),
        pre_revenue_fen=ibis.ifelse(in_pre, j.fen, zero).sum().fill_null(0),
    )
    df = execute(expr, con=con)
    if df.empty:
        raise ValueError(f"assignments: no person is assigned in experiment {experiment!r}")
    df = df.sort_values("person_id").reset_index(drop=True)
    ints = ["orders", "prior_purchases", "pre_purchases"]
    df[ints] = df[ints].astype("int64")
    arm_col = df["arm"].astype(str)
    split = arm_sep is not None and bool(arm_col.str.contains(arm_sep, regex=False).all())
    if split:  # "<segment><sep><arm>": the segment was part of the randomisation (stratified arms)
        parts = arm_col.str.rsplit(arm_sep, n=1, expand=True)
        segment, arm_values = parts[0].to_numpy(dtype=object), parts[1].to_numpy(dtype=object)
    else:
        segment, arm_values = _tiers(df["prior_purchases"].to_numpy(), tiers), df["arm"].to_numpy(dtype=object)
    out = pd.DataFrame({
        "person_id": person_ids(df["person_id"]),  # integer ids, or a brand's own text ids
        "arm": arm_values,
        "assigned_at": pd.to_datetime(df["assigned_at"]),
        "segment": segment,
        "prior_purchases": df["prior_purchases"],
        "pre_purchases": df["pre_purchases"],
        "pre_revenue": df["pre_revenue_fen"].astype("int64") / 100,
        "orders": df["orders"],
        "converted": (df["orders"] >= 1).astype("int64"),
        "repurchased": ((df["orders"] >= 1) & (df["prior_purchases"] + df["orders"] >= 2)).astype("int64"),
        "revenue": df["revenue_fen"].astype("int64") / 100,
    })
    if counts:
        ev = e.filter(e.touchpoint.isin(list(counts))).select(cpid=e.person_id, cts=e.ts, ctp=e.touchpoint)
        cj = a.join(ev, a.person_id == ev.cpid)
        cj = cj.filter((cj.cts >= cj.assigned_at) & (cj.cts < cj.assigned_at + after))
        wide = execute(cj.group_by([cj.person_id, cj.ctp]).agg(k=cj.count()), con=con)
        wide = wide.pivot_table(index="person_id", columns="ctp", values="k", aggfunc="sum", fill_value=0)
        for tp in counts:
            col = wide[tp] if tp in wide.columns else pd.Series(dtype="int64")
            out[f"n_{tp}"] = out["person_id"].map(col).fillna(0).astype("int64").to_numpy()
    out.attrs["assigned"] = len(out)
    out.attrs["segment_from"] = "arm label" if split else "prior purchases"
    out.attrs["arms"] = {str(k): int(v) for k, v in out["arm"].value_counts().sort_index().items()}
    return out


def touchpoint_frame(
    events: TableLike,
    *,
    touchpoints: Sequence[str] | None = None,
    exclude_channels: Sequence[str] = ("mini_program",),
    con: Any | None = None,
) -> pd.DataFrame:
    """Per person: which touchpoints they met before their first purchase, and whether they bought.

    A buyer's touches count if strictly before their first ``pay``; a non-buyer's
    touches all count. Order, pay and refund events are not touchpoints here, and
    by default neither are the Mini Program's own steps (visit, product view, add
    to cart): they are the purchase path itself, nearly everyone who buys passes
    through them, so as "drivers" they only restate the outcome.
    Every person with any event gets a row.

    Parameters
    ----------
    touchpoints
        Touchpoints to keep as columns (default: every one seen, sorted).
    exclude_channels
        Channel families (:data:`privdomain.schema.CHANNEL_OF`) whose touchpoints
        are left out; ``()`` keeps them all.

    Returns
    -------
    pandas.DataFrame
        ``person_id, purchased`` and one 0/1 column per touchpoint;
        ``attrs["touches"]`` = qualifying touches per touchpoint.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 09:00", "oa_article_open"), (1, "2024-05-01 09:30", "mp_visit"),
    ...                    (1, "2024-05-01 10:00", "pay"), (1, "2024-05-02 10:00", "sms"),
    ...                    (2, "2024-05-01 09:00", "sms")])
    >>> touchpoint_frame(ev).values.tolist()
    [[1, 1, 1, 0], [2, 0, 0, 1]]
    """
    e = events_layer.read(events, con=con)
    first = e.filter(e.touchpoint == PURCHASE).group_by("person_id").agg(first_pay=e.ts.min())
    persons = e.select("person_id").distinct()
    skip = list(ORDER_TOUCHPOINTS) + [tp for tp, ch in CHANNEL_OF.items() if ch in set(exclude_channels)]
    touches = e.filter(~e.touchpoint.isin(skip))
    tj = touches.left_join(first, touches.person_id == first.person_id)
    tj = tj.filter(tj.first_pay.isnull() | (tj.ts < tj.first_pay))
    counts = execute(tj.group_by([tj.person_id, tj.touchpoint]).agg(n=tj.count()), con=con)
    pj = persons.left_join(first, persons.person_id == first.person_id)
    people = execute(pj.select(person_id=pj.person_id, purchased=pj.first_pay.notnull().cast("int64")), con=con)
    wide = counts.pivot_table(index="person_id", columns="touchpoint", values="n", aggfunc="sum", fill_value=0)
    cols = sorted(wide.columns) if touchpoints is None else list(touchpoints)
    wide = wide.reindex(columns=cols, fill_value=0)
    out = people.set_index("person_id").join((wide > 0).astype("int64"), how="left").fillna(0)
    out = out.astype("int64").sort_index().reset_index()
    out.columns.name = None
    out.attrs["touches"] = {c: int(wide[c].sum()) for c in cols}
    return out


def rollout_panel(
    events: TableLike,
    rollout: pd.DataFrame,
    *,
    unit: str = "store_id",
    freq: str = "week",
    con: Any | None = None,
) -> pd.DataFrame:
    """Purchases and GMV per unit and period, with the roll-out of a change.

    Parameters
    ----------
    events
        Events; purchases (``pay``) are counted by their ``unit`` column (e.g.
        ``store_id``; rows with a null unit are not counted and their number is
        in ``attrs["no_unit"]``).
    rollout
        ``unit`` and ``first_treated`` (the timestamp/date the unit got the
        change; null = never) for every unit to analyse.
    freq
        ``"day"`` or ``"week"`` (ISO weeks, starting Monday).

    Returns
    -------
    pandas.DataFrame
        A balanced panel ``unit, period`` (period number 0, 1, ...),
        ``period_start``, ``first_treated`` (period number, Int64, null = never),
        ``treated`` (0/1), ``purchases``, ``gmv`` (yuan), ready for
        :func:`privdomain.experiments.did.did` (``outcome="gmv"``).

    Examples
    --------
    >>> import pandas as pd
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-06 10:00", "pay", {"store_id": 1, "amount_fen": 500}),
    ...                    (2, "2024-05-14 10:00", "pay", {"store_id": 2, "amount_fen": 700})])
    >>> ro = pd.DataFrame({"unit": [1, 2], "first_treated": [pd.Timestamp("2024-05-13"), None]})
    >>> p = rollout_panel(ev, ro)
    >>> p["unit"].tolist(), p["period"].tolist(), p["treated"].tolist(), p["gmv"].tolist()
    ([1, 1, 2, 2], [0, 1, 0, 1], [0, 1, 0, 0], [5.0, 0.0, 0.0, 7.0])
    """
    if freq not in ("day", "week"):
        raise ValueError(f"freq must be 'day' or 'week', got {freq!r}")
    if "unit" not in rollout.columns or "first_treated" not in rollout.columns:
        raise ValueError(f"rollout needs columns 'unit' and 'first_treated'; got {list(rollout.columns)}")
    e = events_layer.read(events, con=con)
    pay = e.filter(e.touchpoint == PURCHASE)
    no_unit = int(execute(pay.filter(pay[unit].isnull()).count(), con=con))
    pay = pay.filter(pay[unit].notnull())
    day = pay.ts.date()
    bucket = day.truncate("W") if freq == "week" else day
    agg = execute(
        pay.group_by(unit=pay[unit], period_start=bucket).agg(
            purchases=pay.count(), gmv_fen=pay.amount_fen.fill_null(0).sum()
        ),
        con=con,
    )
    step = pd.Timedelta(days=7 if freq == "week" else 1)

    def to_bucket(s: pd.Series) -> pd.Series:
        d = pd.to_datetime(s)
        if getattr(d.dt, "tz", None) is not None:
            d = d.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
        d = d.dt.normalize()
        return d - pd.to_timedelta(d.dt.weekday, unit="D") if freq == "week" else d

    agg["period_start"] = to_bucket(agg["period_start"])
    if agg.empty:
        raise ValueError("events: no purchase carries a unit: nothing to build a panel from")
    first = agg["period_start"].min()
    last = agg["period_start"].max()
    starts = pd.date_range(first, last, freq=step)
    units = pd.Index(pd.unique(rollout["unit"]))
    grid = pd.MultiIndex.from_product([units, starts], names=["unit", "period_start"]).to_frame(index=False)
    agg = agg[agg["unit"].isin(units)]
    panel = grid.merge(agg, on=["unit", "period_start"], how="left")
    panel["purchases"] = panel["purchases"].fillna(0).astype("int64")
    panel["gmv"] = panel["gmv_fen"].fillna(0).astype("int64") / 100
    panel["period"] = ((panel["period_start"] - first) // step).astype("int64")
    ft = to_bucket(rollout["first_treated"])
    ft_period = ((ft - first) // step).astype("Int64")
    panel = panel.merge(pd.DataFrame({"unit": rollout["unit"], "first_treated": ft_period}), on="unit", how="left")
    panel["treated"] = (panel["first_treated"].notna() & (panel["period"] >= panel["first_treated"])).astype("int64")
    panel["treated"] = panel["treated"].fillna(0).astype("int64")
    out = panel[["unit", "period", "period_start", "first_treated", "treated", "purchases", "gmv"]]
    out = out.sort_values(["unit", "period"]).reset_index(drop=True)
    out.attrs["no_unit"] = no_unit
    return out
