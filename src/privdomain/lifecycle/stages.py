"""Customer lifecycle: stages, the lifecycle board (用户生命周期大盘) and flows between stages.

Stages are evaluated per **calendar day** of the dataset's time zone (Beijing by default), at
the end of the day: a purchase made at 23:59 counts for that day. A person enters the population on the day of their
first event of any kind (first touch) and stays in it from then on, so at every date

    sum over stages of persons(stage, date) = persons first touched on or before date.

Two stage models are offered.

Purchase model (:class:`StageModel`, the default)
-------------------------------------------------
A *purchase day* is a day with at least one ``pay`` event; purchase frequency counts
purchase days (several orders on one day are one purchase occasion) and purchase value
sums ``amount_fen`` of the pay events (a pay event without an amount counts as a purchase
of value 0; ``order`` and ``refund`` events do not change stages, they are touches). At day ``d`` let ``p1`` be the first purchase day,
``L`` the last purchase day on or before ``d``, ``r = d - L`` the recency in days,
``c`` the number of purchase days up to ``L`` and ``v`` their value. The stage is the
first rule that holds:

=============  =====================================================================
stage          rule (defaults in brackets)
=============  =====================================================================
prospect       touched, no purchase yet (no pay event on or before ``d``)
churned        ``r >= churn_days`` (180): no purchase in the last ``churn_days`` days
dormant        ``r >= dormant_days`` (90): no purchase in the last ``dormant_days`` days
new            one purchase day so far (``c = 1``) and ``d - p1 < new_days`` (30): a
               first-time buyer; a second purchase day ends ``new``
resurrected    ``L`` was a *returning* purchase (``L - previous purchase day >=
               resurrect_gap_days``, by default ``dormant_days``: the person was
               dormant or churned when buying) and ``r < resurrected_days`` (30);
               ``resurrected_days=None`` switches the stage off
loyal          repeat buyer: ``c >= loyal_purchases`` (3) or ``v >= loyal_value_fen``
               (off by default)
active         any other recent buyer
=============  =====================================================================

AIPL model (:class:`AIPLModel`)
-------------------------------
Alibaba's AIPL from touchpoint behaviour over a trailing window of ``window_days`` (90)
days ending on ``d``: **loyalty** if the window holds at least ``loyalty_purchases`` (2)
purchase days, else **purchase** if it holds a pay event, else **interest** if it holds
an active touch (a click, follow, article open, visit, add to cart, chat, live view,
store visit, share...: :data:`INTEREST_TOUCHPOINTS`), else **awareness** if it holds any
other touch (ad views, pushes received, SMS, group messages...), else **lapsed** (touched
before, nothing in the window).

Interval method
---------------
Stages are computed as stage-change intervals ``[valid_from, valid_to)`` per person in
Ibis (windows over purchase days: previous and next purchase, running count and value),
never as a person x day table. The board counts persons per stage at each snapshot by a
sweep (+1 where an interval starts covering snapshots, -1 after it stops, cumulative sum),
and the flows pair each person's consecutive intervals.

Examples
--------
>>> from privdomain.examples import events_frame
>>> from privdomain.lifecycle import stage_intervals
>>> ev = events_frame([(1, "2024-01-01 09:00", "mp_visit"),
...                    (1, "2024-01-05 10:00", "pay", {"order_id": 1, "amount_fen": 990})])
>>> stage_intervals(ev)[["stage", "valid_from"]].astype(str).values.tolist()
[['prospect', '2024-01-01'], ['new', '2024-01-05'], ['active', '2024-02-04'], ['dormant', '2024-04-04'], ['churned', '2024-07-03']]
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field
from typing import Any, Union

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .. import events as events_layer
from .._days import DateLike, day, day_number, person_ids, raw_events
from ..backend import TableLike, execute
from ..contract import events_input
from ..schema import AD_VIEWS, PURCHASE

__all__ = [
    "STAGES",
    "AIPL_STAGES",
    "ENTRY",
    "INTEREST_TOUCHPOINTS",
    "StageModel",
    "AIPLModel",
    "gap_thresholds",
    "data_stage_model",
    "stage_intervals",
    "stages_at",
    "lifecycle_board",
    "stage_flows",
    "flow_matrix",
    "stage_agreement",
]

#: Stages of the purchase model, in display order (early to late in the life).
STAGES: tuple[str, ...] = ("prospect", "new", "active", "loyal", "resurrected", "dormant", "churned")
#: Stages of the AIPL model, in display order.
AIPL_STAGES: tuple[str, ...] = ("awareness", "interest", "purchase", "loyalty", "lapsed")
#: Pseudo-stage of :func:`stage_flows`: persons not yet in the population at the previous snapshot.
ENTRY = "(entry)"
#: Touchpoints that count as active interest in the AIPL model (a pay event counts as purchase;
#: every other touchpoint, e.g. ad views, pushes received, SMS, group messages, is awareness).
INTEREST_TOUCHPOINTS: tuple[str, ...] = (
    "moments_ad_click",
    "search_ad_click",
    "channels_ad_click",
    "oa_follow",
    "oa_article_open",
    "mp_click",
    "group_join",
    "wecom_add",
    "wecom_chat",
    "live_view",
    "live_interact",
    "store_visit",
    "qr_scan",
    "mp_visit",
    "product_view",
    "add_to_cart",
    "order",
    "share",
)
assert not set(INTEREST_TOUCHPOINTS) & set(AD_VIEWS)

_OPEN = 10_000_000  # day number standing for "open" (no end), far beyond any real date


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer number of days, got {value!r}")


@dataclass(frozen=True)
class StageModel:
    """Thresholds of the purchase-based stage model (see the module docstring).

    Parameters
    ----------
    new_days
        A first-time buyer (one purchase day so far) is ``new`` while
        ``day - first purchase day < new_days``.
    dormant_days
        ``dormant`` once ``dormant_days`` days have passed without a purchase.
    churn_days
        ``churned`` once ``churn_days`` days have passed without a purchase (> dormant_days).
    loyal_purchases
        A recent buyer with at least this many purchase days is ``loyal``.
    loyal_value_fen
        Or with at least this cumulative paid amount (fen); None = not used.
    resurrected_days
        A returning buyer is ``resurrected`` for this many days; None = no such stage.
    resurrect_gap_days
        A purchase is *returning* when at least this many days passed since the previous
        one; None = ``dormant_days`` (the buyer was dormant or churned).

    Examples
    --------
    >>> StageModel(new_days=14).stages[:3]
    ('prospect', 'new', 'active')
    >>> StageModel(resurrected_days=None).stages
    ('prospect', 'new', 'active', 'loyal', 'dormant', 'churned')
    """

    new_days: int = 30
    dormant_days: int = 90
    churn_days: int = 180
    loyal_purchases: int = 3
    loyal_value_fen: int | None = None
    resurrected_days: int | None = 30
    resurrect_gap_days: int | None = None

    def __post_init__(self) -> None:
        for name in ("new_days", "dormant_days", "churn_days", "loyal_purchases"):
            _positive(name, getattr(self, name))
        for name in ("loyal_value_fen", "resurrected_days", "resurrect_gap_days"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        if self.churn_days <= self.dormant_days:
            raise ValueError(
                f"churn_days ({self.churn_days}) must be greater than dormant_days ({self.dormant_days})"
            )

    @property
    def gap(self) -> int:
        """Days since the previous purchase that make a purchase *returning*."""
        return self.resurrect_gap_days if self.resurrect_gap_days is not None else self.dormant_days

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this model can produce, in display order."""
        return tuple(s for s in STAGES if s != "resurrected" or self.resurrected_days is not None)


@dataclass(frozen=True)
class AIPLModel:
    """The AIPL stage model (awareness, interest, purchase, loyalty; lapsed when idle).

    Parameters
    ----------
    window_days
        Length of the trailing window (days, ending on the evaluated day).
    loyalty_purchases
        Purchase days within the window that make a person ``loyalty``.
    interest_touchpoints
        Touchpoints that count as interest; other non-pay touchpoints are awareness.

    Examples
    --------
    >>> AIPLModel(window_days=30).stages
    ('awareness', 'interest', 'purchase', 'loyalty', 'lapsed')
    """

    window_days: int = 90
    loyalty_purchases: int = 2
    interest_touchpoints: tuple[str, ...] = field(default=INTEREST_TOUCHPOINTS)

    def __post_init__(self) -> None:
        _positive("window_days", self.window_days)
        _positive("loyalty_purchases", self.loyalty_purchases)
        if PURCHASE in self.interest_touchpoints:
            raise ValueError(f"interest_touchpoints must not contain {PURCHASE!r} (it is the purchase level)")

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this model can produce, in display order."""
        return AIPL_STAGES


Model = Union[StageModel, AIPLModel]


# ----------------------------------------------------------------------------- thresholds from the data


def gap_thresholds(
    events: TableLike,
    *,
    dormant_quantile: float = 0.80,
    churn_quantile: float = 0.95,
    min_dormant_days: int = 14,
    min_churn_days: int = 30,
    con: Any | None = None,
    tz: str | None = None,
) -> dict[str, Any]:
    """Dormant and churn thresholds from the inter-purchase gap distribution.

    A *gap* is the number of days between two consecutive purchase days of a buyer
    (Beijing days; several orders on one day are one purchase day). Then

    * ``dormant_days = max(min_dormant_days, ceil(P_dormant_quantile(gap)))`` (80th percentile),
    * ``churn_days = max(min_churn_days, dormant_days + 1, ceil(P_churn_quantile(gap)))`` (95th),

    percentiles by linear interpolation (``numpy.quantile``). A tea shop bought from weekly
    goes dormant after weeks, an optician after a year or more. Without any repeat
    purchase the defaults of :class:`StageModel` (90 / 180) are returned with
    ``source = "default"``.

    Returns ``dormant_days``, ``churn_days``, ``gaps`` (number of gaps), ``dormant_gap`` and
    ``churn_gap`` (the raw percentiles, NaN without gaps), the quantiles and floors, and ``source``
    (``"data"`` or ``"default"``).

    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, f"2024-01-{d:02d} 10:00", "pay", {"order_id": d, "amount_fen": 100})
    ...                    for d in (1, 8, 15, 22, 29)])
    >>> th = gap_thresholds(ev, min_dormant_days=1, min_churn_days=1)
    >>> th["dormant_days"], th["churn_days"], th["gaps"]
    (7, 8, 4)
    """
    if not (0 < dormant_quantile < churn_quantile < 1):
        raise ValueError(f"need 0 < dormant_quantile < churn_quantile < 1, got {dormant_quantile}, {churn_quantile}")
    _positive("min_dormant_days", min_dormant_days)
    _positive("min_churn_days", min_churn_days)
    t = raw_events(events, con, ("person_id", "ts", "touchpoint"), needs=(PURCHASE,), tz=tz)
    pay = t.filter(t.touchpoint == PURCHASE)
    pdays = pay.select("person_id", day=day(pay.ts)).distinct()
    w = ibis.window(group_by="person_id", order_by="day")
    g = pdays.mutate(gap=pdays.day - pdays.day.lag().over(w))
    gaps = execute(g.filter(g.gap.notnull()).select("gap"), con=con)["gap"].to_numpy(dtype="float64")
    out: dict[str, Any] = {"dormant_quantile": dormant_quantile, "churn_quantile": churn_quantile,
                           "min_dormant_days": min_dormant_days, "min_churn_days": min_churn_days,
                           "gaps": int(len(gaps))}
    if len(gaps) == 0:
        d = StageModel()
        return {**out, "dormant_days": d.dormant_days, "churn_days": d.churn_days, "dormant_gap": float("nan"),
                "churn_gap": float("nan"), "source": "default"}
    q80, q95 = (float(v) for v in np.quantile(gaps, [dormant_quantile, churn_quantile]))
    dormant = max(int(min_dormant_days), int(np.ceil(q80)))
    churn = max(int(min_churn_days), dormant + 1, int(np.ceil(q95)))
    return {**out, "dormant_days": dormant, "churn_days": churn, "dormant_gap": q80, "churn_gap": q95,
            "source": "data"}


def data_stage_model(
    events: TableLike,
    dormant_days: int | None = None,
    churn_days: int | None = None,
    *,
    con: Any | None = None,
    **options: Any,
) -> tuple[StageModel, dict[str, Any]]:
    """A :class:`StageModel` whose thresholds come from the data unless given.

    ``dormant_days`` / ``churn_days`` given explicitly are used as they are (the model is
    then exactly ``StageModel(dormant_days=..., churn_days=...)``); the missing ones come
    from :func:`gap_thresholds` (``options`` are passed to it). Returns the model and the
    thresholds record, whose ``source`` is ``"argument"`` when both were given,
    ``"data"``/``"default"`` otherwise.

    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-01-01 10:00", "pay", {"order_id": 1, "amount_fen": 100})])
    >>> data_stage_model(ev, 60, 120)[0] == StageModel(dormant_days=60, churn_days=120)
    True
    """
    if dormant_days is not None and churn_days is not None:
        m = StageModel(dormant_days=dormant_days, churn_days=churn_days)
        return m, {"dormant_days": dormant_days, "churn_days": churn_days, "source": "argument"}
    th = gap_thresholds(events, con=con, **options)
    d = dormant_days if dormant_days is not None else th["dormant_days"]
    c = churn_days if churn_days is not None else max(th["churn_days"], d + 1)
    th = {**th, "dormant_days": d, "churn_days": c,
          "source": th["source"] if dormant_days is None and churn_days is None else "argument and " + th["source"]}
    return StageModel(dormant_days=d, churn_days=c), th


# ----------------------------------------------------------------------------- helpers


def _model(model: Model | None) -> Model:
    if model is None:
        return StageModel()
    if not isinstance(model, (StageModel, AIPLModel)):
        raise TypeError(f"model must be a StageModel or an AIPLModel, got {type(model).__name__}")
    return model


def _to_dates(days: np.ndarray | pd.Series) -> pd.Series:
    """Day numbers -> naive datetime64[ns] Beijing midnights (``_OPEN`` -> NaT)."""
    arr = np.asarray(days, dtype="int64")
    out = pd.to_datetime(np.where(arr >= _OPEN, np.iinfo("int64").min, arr * 86_400_000_000_000), unit="ns")
    return pd.Series(out)


# ----------------------------------------------------------------------------- intervals


def _purchase_intervals(t: ir.Table, m: StageModel) -> ir.Table:
    """Unmerged stage pieces ``person_id, stage, start, end`` (day numbers, end exclusive)."""
    first = t.group_by("person_id").agg(first_ts=t.ts.min())
    first = first.select("person_id", first_day=day(first.first_ts))
    pay = t.filter(t.touchpoint == PURCHASE)
    pay = pay.mutate(day=day(pay.ts))
    pdays = pay.group_by(["person_id", "day"]).agg(fen=pay.amount_fen.sum().fill_null(0).cast("int64"))
    w = ibis.window(group_by="person_id", order_by="day")
    cw = ibis.cumulative_window(group_by="person_id", order_by="day")
    p = pdays.mutate(
        prev=pdays.day.lag().over(w),
        nxt=pdays.day.lead().over(w).fill_null(_OPEN),
        cnt=ibis.row_number().over(w) + 1,
        cum_fen=pdays.fen.sum().over(cw),
        p1=pdays.day.min().over(ibis.window(group_by="person_id")),
    )
    recent_end = ibis.least(p.nxt, p.day + m.dormant_days)
    new_end = p.p1 + m.new_days
    loyal = p.cnt >= m.loyal_purchases
    if m.loyal_value_fen is not None:
        loyal = loyal | (p.cum_fen >= m.loyal_value_fen)
    base_stage = ibis.ifelse(loyal, "loyal", "active")
    # only the first purchase opens a "new" piece; a second purchase day ends it
    base_start = ibis.ifelse(p.cnt == 1, ibis.greatest(p.day, new_end), p.day)
    first_rows = p.filter(p.cnt == 1)
    pieces = [
        first_rows.select("person_id", stage=ibis.literal("new"), start=first_rows.day,
                          end=ibis.least(ibis.least(first_rows.nxt, first_rows.day + m.dormant_days),
                                         first_rows.p1 + m.new_days)),
    ]
    if m.resurrected_days is not None:
        returning = (p.day - p.prev >= m.gap).fill_null(False)
        res_end = p.day + m.resurrected_days
        pieces.append(
            p.filter(returning).select(
                "person_id",
                stage=ibis.literal("resurrected"),
                start=p.day,
                end=ibis.least(recent_end, res_end),
            )
        )
        base_start = ibis.ifelse(returning, ibis.greatest(base_start, res_end), base_start)
    pieces += [
        p.select("person_id", stage=base_stage, start=base_start, end=recent_end),
        p.select("person_id", stage=ibis.literal("dormant"), start=recent_end,
                 end=ibis.least(p.nxt, p.day + m.churn_days)),
        p.select("person_id", stage=ibis.literal("churned"), start=p.day + m.churn_days, end=p.nxt),
    ]
    p1 = pdays.group_by("person_id").agg(p1=pdays.day.min())
    f = first.left_join(p1, "person_id")
    pieces.append(
        f.select(first.person_id, stage=ibis.literal("prospect"), start=f.first_day, end=f.p1.fill_null(_OPEN))
    )
    u = ibis.union(*[x.cast({"start": "int64", "end": "int64"}) for x in pieces], distinct=False)
    return u.filter(u.start < u.end)


def _aipl_intervals(t: ir.Table, m: AIPLModel) -> ir.Table:
    """Merged AIPL intervals ``person_id, stage, start, end`` (day numbers, end exclusive)."""
    t = t.mutate(day=day(t.ts))
    level = (
        ibis.cases(
            (t.touchpoint == PURCHASE, 3),
            (t.touchpoint.isin(list(m.interest_touchpoints)), 2),
            else_=1,
        )
    ).cast("int64")
    t = t.mutate(level=level, paid=(t.touchpoint == PURCHASE).cast("int64"))
    daily = t.group_by(["person_id", "day"]).agg(level=t.level.max(), paid=t.paid.max())
    expiry = daily.select("person_id", day=daily.day + m.window_days, level=ibis.literal(0, "int64"),
                          paid=ibis.literal(0, "int64"))
    u = ibis.union(daily, expiry, distinct=False)
    rw = ibis.range_window(group_by="person_id", order_by="day", preceding=m.window_days - 1, following=0)
    u = u.mutate(mx=u.level.max().over(rw), npay=u.paid.sum().over(rw))
    stage = ibis.cases(
        (u.npay >= m.loyalty_purchases, "loyalty"),
        (u.mx == 3, "purchase"),
        (u.mx == 2, "interest"),
        (u.mx == 1, "awareness"),
        else_="lapsed",
    )
    cp = u.select("person_id", "day", stage=stage).distinct()
    w = ibis.window(group_by="person_id", order_by="day")
    cp = cp.mutate(changed=(cp.stage != cp.stage.lag().over(w)).fill_null(True))
    ch = cp.filter(cp.changed)
    w2 = ibis.window(group_by="person_id", order_by="day")
    return ch.select("person_id", "stage", start=ch.day, end=ch.day.lead().over(w2).fill_null(_OPEN))


def _merge(u: ir.Table) -> ir.Table:
    """Merge a person's consecutive pieces that have the same stage."""
    w = ibis.window(group_by="person_id", order_by="start")
    u = u.mutate(changed=(u.stage != u.stage.lag().over(w)).fill_null(True).cast("int64"))
    u = u.mutate(grp=u.changed.sum().over(ibis.cumulative_window(group_by="person_id", order_by="start")))
    return u.group_by(["person_id", "grp", "stage"]).agg(start=u.start.min(), end=u.end.max()).drop("grp")


def _interval_expr(events: TableLike, model: Model, con: Any | None, tz: str | None = None) -> ir.Table:
    if isinstance(model, AIPLModel):
        t = raw_events(events, con, ("person_id", "ts", "touchpoint"), tz=tz)
        return _aipl_intervals(t, model)
    needed = ("person_id", "ts", "touchpoint", "amount_fen")
    if isinstance(events, pd.DataFrame) and "amount_fen" not in events.columns and model.loyal_value_fen is None:
        events = events.assign(amount_fen=pd.array([pd.NA] * len(events), dtype="Int64"))
    t = raw_events(events, con, needed, needs=(PURCHASE,), tz=tz)
    return _purchase_intervals(t, model)


def stage_intervals(
    events: TableLike, model: Model | None = None, *, merge: bool = True, con: Any | None = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """Stage-change intervals of every person.

    Parameters
    ----------
    events
        Events (pandas frame, dataset path or Ibis table) with ``person_id``, ``ts``,
        ``touchpoint`` and, for the purchase model, ``amount_fen``.
    model
        :class:`StageModel` (default) or :class:`AIPLModel`.
    merge
        Merge consecutive intervals of the same stage (e.g. an active buyer who buys
        again stays one ``active`` interval). With False, the purchase model returns its
        raw pieces (one set per purchase day); the stage at each date is the same.
    con
        Optional Ibis connection.
    tz
        Time zone of the days (:func:`privdomain.events.timezone_of`): by default the
        dataset's declared zone, Asia/Shanghai for a frame without one.

    Returns
    -------
    pandas.DataFrame
        ``person_id`` (int64), ``stage`` (str), ``valid_from`` and ``valid_to``
        (datetime64[ns], naive Beijing midnights; the interval is ``[valid_from,
        valid_to)``, ``valid_to`` NaT = still open). Sorted by person and date; the
        intervals of a person tile the days from their first touch on, without gaps.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(7, "2024-03-01 12:00", "oa_push"), (7, "2024-03-02 12:00", "mp_visit")])
    >>> stage_intervals(ev, AIPLModel(window_days=10))[["stage", "valid_from", "valid_to"]].astype(str).values.tolist()
    [['awareness', '2024-03-01', '2024-03-02'], ['interest', '2024-03-02', '2024-03-12'], ['lapsed', '2024-03-12', 'NaT']]
    """
    model = _model(model)
    u = _interval_expr(events, model, con, tz)
    if merge and isinstance(model, StageModel):
        u = _merge(u)
    df = execute(u.order_by(["person_id", "start"]), con=con)
    out = pd.DataFrame(
        {
            "person_id": person_ids(df["person_id"]).to_numpy(),
            "stage": df["stage"].astype(object).to_numpy(),
            "valid_from": _to_dates(df["start"]).to_numpy(),
            "valid_to": _to_dates(df["end"]).to_numpy(),
        }
    )
    out.attrs["model"] = {"kind": type(model).__name__, **asdict(model)}
    return out


@events_input(renamed={"date": "as_of"})
def stages_at(events: TableLike, as_of: DateLike, model: Model | None = None, *, con: Any | None = None,
              tz: str | None = None) -> pd.DataFrame:
    """The stage of every person in the population at the end of day ``as_of`` (the dataset's zone, ``tz``).

    ``as_of`` is a snapshot: the data up to and including that day (``date=`` is its
    old name, for one release).

    Returns
    -------
    pandas.DataFrame
        ``person_id``, ``stage``: one row per person first touched on or before
        ``as_of``; sorted by ``person_id``.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-01-01 09:00", "mp_visit"), (2, "2024-01-03 09:00", "mp_visit"),
    ...                    (1, "2024-01-02 23:59", "pay", {"order_id": 1, "amount_fen": 100})])
    >>> stages_at(ev, "2024-01-02").values.tolist()
    [[1, 'new']]
    """
    model = _model(model)
    u = _interval_expr(events, model, con, tz)
    d = day_number(as_of, "as_of", events_layer.timezone_of(events, tz))
    u = u.filter((u.start <= d) & (u.end > d)).select("person_id", "stage").order_by("person_id")
    df = execute(u, con=con)
    return pd.DataFrame({"person_id": person_ids(df["person_id"]).to_numpy(),
                         "stage": df["stage"].astype(object).to_numpy()})


# ----------------------------------------------------------------------------- board and flows


@dataclass(frozen=True)
class _Snapshots:
    days: np.ndarray  # day number of each snapshot (the last day of its period), ascending
    starts: np.ndarray  # day number of the first day of each period
    freq: str

    @property
    def k(self) -> int:
        return len(self.days)

    @property
    def period_starts(self) -> np.ndarray:
        return self.starts

    def covered(self, start: ir.IntegerValue, end: ir.IntegerValue) -> tuple[ir.IntegerValue, ir.IntegerValue]:
        """First and last snapshot index an interval ``[start, end)`` covers (kf > kl: none)."""
        first, last = int(self.days[0]), int(self.days[-1])
        if self.freq == "M":
            # month ends: the first covered is the end of start's month, the last is the end
            # of the month before end's (end is exclusive); clip first so dates stay in range
            m0 = _month_number(ibis.literal(first))
            kf = _month_number(ibis.greatest(start, first)) - m0
            kl = _month_number(ibis.least(end, last + 1)) - 1 - m0
            return kf, kl
        step = 1 if self.freq == "D" else 7
        kf = (ibis.greatest(start - first, 0) + (step - 1)) // step
        kl = ibis.least((end - 1 - first) // step, self.k - 1)
        return kf, kl


def _month_number(day: ir.IntegerValue) -> ir.IntegerValue:
    """Months since year 0 of a day number (days since 1970-01-01)."""
    d = ibis.date("1970-01-01") + day.as_interval("D")
    return d.year() * 12 + d.month() - 1


_FREQS = "freq must be 'D' (daily), 'W' (ISO weeks) or 'M' (calendar months)"


def _snapshots(start: DateLike, end: DateLike, freq: str) -> _Snapshots:
    s, e = day_number(start, "start"), day_number(end, "end")
    if e < s:
        raise ValueError(f"end ({end}) is before start ({start})")
    f = str(freq).upper()
    if f == "D":
        days = np.arange(s, e + 1, dtype="int64")
        return _Snapshots(days, days, "D")
    if f == "W":
        # weeks are ISO weeks (Monday-Sunday); day 0 (1970-01-01) was a Thursday
        t0 = s + (6 - (s + 3) % 7) % 7
        if t0 > e:
            raise ValueError(f"no week ends (Sunday) between {start} and {end}: widen the range or use freq='D'")
        days = np.arange(t0, e + 1, 7, dtype="int64")
        return _Snapshots(days, days - 6, "W")
    if f == "M":
        epoch = np.datetime64("1970-01-01", "D")
        months = np.arange(np.datetime64(int(s), "D").astype("datetime64[M]"),
                           np.datetime64(int(e), "D").astype("datetime64[M]") + 1)
        firsts = (months.astype("datetime64[D]") - epoch).astype("int64")
        lasts = ((months + 1).astype("datetime64[D]") - epoch).astype("int64") - 1
        keep = (lasts >= s) & (lasts <= e)
        if not keep.any():
            raise ValueError(f"no month ends between {start} and {end}: widen the range or use freq='D' or 'W'")
        return _Snapshots(lasts[keep], firsts[keep], "M")
    raise ValueError(f"{_FREQS}, got {freq!r}")


def _covering(u: ir.Table, snap: _Snapshots) -> ir.Table:
    """Intervals that cover at least one snapshot, with the first/last snapshot index covered."""
    first, last = int(snap.days[0]), int(snap.days[-1])
    u = u.filter((u.end - 1 >= first) & (u.start <= last))
    kf, kl = snap.covered(u.start, u.end)
    u = u.mutate(kf=kf.cast("int64"), kl=kl.cast("int64"))
    return u.filter(u.kf <= u.kl)


def _sweep(counts: pd.DataFrame, stages: tuple[str, ...], k: int, lo: str, hi: str) -> np.ndarray:
    """Stage x snapshot matrix from (stage, lo, hi, n) rows: +n on lo..hi inclusive."""
    idx = {s: i for i, s in enumerate(stages)}
    delta = np.zeros((len(stages), k + 1), dtype="int64")
    if len(counts):
        si = counts["stage"].map(idx).to_numpy()
        if np.isnan(si.astype(float)).any():
            bad = sorted(set(counts["stage"]) - set(stages))
            raise ValueError(f"intervals hold stages {bad} that the model does not define")
        si = si.astype("int64")
        n = counts["n"].to_numpy("int64")
        np.add.at(delta, (si, counts[lo].to_numpy("int64")), n)
        np.add.at(delta, (si, counts[hi].to_numpy("int64") + 1), -n)
    return np.cumsum(delta, axis=1)[:, :k]


def _board_frame(mat: np.ndarray, snap: _Snapshots, stages: tuple[str, ...]) -> pd.DataFrame:
    pop = mat.sum(axis=0)
    periods = _to_dates(snap.period_starts).to_numpy()
    out = pd.DataFrame(
        {
            "period": np.repeat(periods, len(stages)),
            "stage": np.tile(np.array(stages, dtype=object), snap.k),
            "persons": mat.T.reshape(-1),
            "population": np.repeat(pop, len(stages)),
        }
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share"] = np.where(out["population"] > 0, out["persons"] / np.maximum(out["population"], 1), 0.0)
    return out


def lifecycle_board(
    events: TableLike,
    start: DateLike,
    end: DateLike,
    freq: str = "D",
    model: Model | None = None,
    *,
    con: Any | None = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """Persons per stage per day, week or month: the lifecycle board (用户生命周期大盘).

    Stage counts are taken at each snapshot: the end of every day (the dataset's zone, Beijing by default) in
    ``[start, end]`` (``freq="D"``), the end (Sunday) of every ISO week whose Sunday
    lies in ``[start, end]`` (``freq="W"``) or the last day of every calendar month
    whose last day lies in ``[start, end]`` (``freq="M"``). Computed from stage-change
    intervals by a sweep (no person x day table).

    Parameters
    ----------
    events
        Events (pandas frame, dataset path or Ibis table).
    start, end
        First and last day of the range (dates or date strings; days of the dataset's zone).
    freq
        ``"D"``, ``"W"`` or ``"M"``.
    model
        :class:`StageModel` (default) or :class:`AIPLModel`.
    con
        Optional Ibis connection.
    tz
        Time zone of the days (:func:`privdomain.events.timezone_of`): by default the
        dataset's declared zone, Asia/Shanghai for a frame without one.

    Returns
    -------
    pandas.DataFrame
        One row per period and stage (zeros included, stages in display order):
        ``period`` (datetime64: the day, the Monday of the week or the first day of the
        month), ``stage``, ``persons`` (int64), ``population`` (persons first touched on
        or before the snapshot: the sum of ``persons`` over stages), ``share`` = persons /
        population.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-01-01 09:00", "mp_visit"),
    ...                    (1, "2024-01-02 10:00", "pay", {"order_id": 1, "amount_fen": 100})])
    >>> b = lifecycle_board(ev, "2024-01-01", "2024-01-02")
    >>> b[b.persons > 0][["period", "stage", "persons"]].astype(str).values.tolist()
    [['2024-01-01', 'prospect', '1'], ['2024-01-02', 'new', '1']]
    """
    model = _model(model)
    snap = _snapshots(start, end, freq)
    u = _covering(_interval_expr(events, model, con, tz), snap)
    counts = execute(u.group_by(["stage", "kf", "kl"]).agg(n=u.count()), con=con)
    mat = _sweep(counts, model.stages, snap.k, "kf", "kl")
    out = _board_frame(mat, snap, model.stages)
    out.attrs.update(freq=snap.freq, model={"kind": type(model).__name__, **asdict(model)})
    return out


def stage_flows(
    events: TableLike,
    start: DateLike,
    end: DateLike,
    freq: str = "W",
    model: Model | None = None,
    *,
    con: Any | None = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """Flows between stages per period: a transition matrix per day, week or month, long format.

    For each period after the first snapshot, a person counts once, from the stage they
    had at the previous snapshot to the stage they have at this one (``from_stage ==
    to_stage`` = stayed; stages visited and left between two snapshots are skipped).
    Persons who entered the population since the previous snapshot come from
    :data:`ENTRY`. Hence, for every period and stage,
    ``sum(persons where from_stage == s)`` = the board's count of ``s`` at the previous
    snapshot and ``sum(persons where to_stage == s)`` = its count at this snapshot.

    Parameters are those of :func:`lifecycle_board` (``freq`` defaults to weekly).

    Returns
    -------
    pandas.DataFrame
        ``period`` (datetime64: the day, the Monday of the week or the first day of the
        month the flow happened in),
        ``from_stage``, ``to_stage``, ``persons`` (int64, > 0 only); sorted by period,
        then stage order. See :func:`flow_matrix` for one period as a square matrix.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-01-01 09:00", "mp_visit"),
    ...                    (1, "2024-01-02 10:00", "pay", {"order_id": 1, "amount_fen": 100})])
    >>> stage_flows(ev, "2024-01-01", "2024-01-02", freq="D").values.tolist()[0][1:]
    ['prospect', 'new', 1]
    """
    model = _model(model)
    snap = _snapshots(start, end, freq)
    u = _covering(_interval_expr(events, model, con, tz), snap)
    w = ibis.window(group_by="person_id", order_by="kf")
    u = u.mutate(prev_stage=u.stage.lag().over(w).fill_null(ENTRY))
    # one query: counts per (previous stage, stage, first and last snapshot covered)
    both = execute(u.group_by(["prev_stage", "stage", "kf", "kl"]).agg(n=u.count()), con=con)
    moves = both[both["kf"] >= 1].groupby(["kf", "prev_stage", "stage"], as_index=False)["n"].sum()
    stays = both[both["kl"] > both["kf"]].groupby(["stage", "kf", "kl"], as_index=False)["n"].sum()
    stays = stays.assign(kf=stays["kf"] + 1)
    stay_mat = _sweep(stays, model.stages, snap.k, "kf", "kl")
    order = {s: i for i, s in enumerate((ENTRY, *model.stages))}
    parts = [moves.rename(columns={"kf": "k", "prev_stage": "from_stage", "stage": "to_stage"})]
    ks, ss = np.nonzero(stay_mat.T)
    if len(ks):
        st = np.array(model.stages, dtype=object)[ss]
        parts.append(pd.DataFrame({"k": ks, "from_stage": st, "to_stage": st, "n": stay_mat.T[ks, ss]}))
    allf = pd.concat(parts, ignore_index=True)
    allf = allf.groupby(["k", "from_stage", "to_stage"], as_index=False)["n"].sum()
    allf = allf[allf["n"] > 0]
    allf = allf.assign(fo=allf["from_stage"].map(order), to=allf["to_stage"].map(order))
    allf = allf.sort_values(["k", "fo", "to"], kind="stable")
    periods = _to_dates(snap.period_starts).to_numpy()
    out = pd.DataFrame(
        {
            "period": periods[allf["k"].to_numpy("int64")] if len(allf) else np.array([], dtype="datetime64[ns]"),
            "from_stage": allf["from_stage"].astype(object).to_numpy(),
            "to_stage": allf["to_stage"].astype(object).to_numpy(),
            "persons": allf["n"].to_numpy("int64"),
        }
    )
    out.attrs.update(freq=snap.freq, model={"kind": type(model).__name__, **asdict(model)})
    return out


def flow_matrix(flows: pd.DataFrame, period: DateLike | None = None, stages: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One period's flows (or all periods summed) as a from x to matrix.

    Parameters
    ----------
    flows
        Output of :func:`stage_flows`.
    period
        The period to select (its day or Monday); None sums all periods.
    stages
        Stage order; default: the purchase model's :data:`STAGES`, or the AIPL stages if
        the flows hold AIPL stages.

    Returns
    -------
    pandas.DataFrame
        Rows ``from_stage`` (with :data:`ENTRY` first), columns ``to_stage``; int64 counts.

    Examples
    --------
    >>> f = pd.DataFrame({"period": pd.to_datetime(["2024-01-01"] * 2), "from_stage": ["active", "active"],
    ...                   "to_stage": ["active", "dormant"], "persons": [5, 2]})
    >>> int(flow_matrix(f).loc["active", "dormant"])
    2
    """
    f = flows
    if period is not None:
        f = f[f["period"] == pd.Timestamp(period)]
    if stages is None:
        seen = set(f["from_stage"]) | set(f["to_stage"])
        stages = AIPL_STAGES if seen & set(AIPL_STAGES) else STAGES
    m = f.pivot_table(index="from_stage", columns="to_stage", values="persons", aggfunc="sum", fill_value=0)
    return m.reindex(index=[ENTRY, *stages], columns=list(stages), fill_value=0).astype("int64")


@events_input(renamed={"dates": "as_of"})
def stage_agreement(
    events: TableLike,
    truth: pd.DataFrame | str | Any,
    as_of: Any,
    model: Model | None = None,
    *,
    con: Any | None = None,
) -> pd.DataFrame:
    """Confusion counts of computed stages against true stage intervals (e.g. the simulator's truth).

    Parameters
    ----------
    events
        Events (pandas frame, dataset path or Ibis table).
    truth
        ``person_id, stage, valid_from, valid_to`` intervals (timezone-aware instants,
        ``valid_to`` null = open), or a dataset folder holding ``truth/stages.parquet``.
    as_of
        The day, or the days, to compare on (the dataset's days, Beijing by default);
        the true stage is read at the end of each day (the last instant before
        midnight), the computed one for that day. (``dates=`` is its old name.)
    model
        The stage model to compute (default :class:`StageModel`).

    Returns
    -------
    pandas.DataFrame
        ``date``, ``true_stage``, ``stage``, ``persons``: counts of persons per pair of
        stages (``"(absent)"`` when a person is in one population and not the other);
        ``agrees`` (true_stage == stage) and ``agreement``, the share of the date's
        persons whose stages agree (一致率) = Σ persons where agrees / Σ persons, per date.
        The pooled share over all dates is
        ``conf.loc[conf.agrees, "persons"].sum() / conf["persons"].sum()``
        (also, for one release, ``.attrs["agreement"]``; ``.attrs["agreement_by_date"]``
        is the ``agreement`` column per date).

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-01-01 09:00", "mp_visit")])
    >>> tr = pd.DataFrame({"person_id": [1], "stage": ["prospect"],
    ...     "valid_from": pd.to_datetime(["2024-01-01 09:00"]).tz_localize("Asia/Shanghai"), "valid_to": pd.NaT})
    >>> conf = stage_agreement(ev, tr, ["2024-01-05"])
    >>> conf[["true_stage", "stage", "persons", "agrees", "agreement"]].values.tolist()
    [['prospect', 'prospect', 1, True, 1.0]]
    """
    import os
    from pathlib import Path

    from ..io import Dataset

    if isinstance(truth, Dataset):
        truth = truth.path
    if isinstance(truth, (str, os.PathLike)):
        p = Path(truth)
        truth = pd.read_parquet(p / "truth" / "stages.parquet" if p.is_dir() else p)
    vf, vt = truth["valid_from"], truth["valid_to"]
    if not isinstance(vf.dtype, pd.DatetimeTZDtype):
        raise ValueError("truth: valid_from must be timezone-aware instants")
    zone = events_layer.timezone_of(events)
    vf = vf.dt.tz_convert(zone).dt.tz_localize(None).to_numpy()
    vt = pd.to_datetime(vt, utc=True).dt.tz_convert(zone).dt.tz_localize(None).to_numpy()
    ours = stage_intervals(events, model, con=con)
    parts, by_date = [], {}
    days = [as_of] if isinstance(as_of, (str, _dt.date, np.datetime64)) else list(as_of)
    for d in pd.to_datetime(days):
        on_day = d.tz_convert(zone).tz_localize(None).normalize() if d.tzinfo else d.normalize()
        end = np.datetime64(on_day + pd.Timedelta(days=1) - pd.Timedelta(1, "ns"))
        tmask = (vf <= end) & (np.isnat(vt) | (vt > end))
        t_at = pd.DataFrame({"person_id": truth["person_id"].to_numpy()[tmask],
                             "true_stage": truth["stage"].to_numpy()[tmask]})
        omask = (ours["valid_from"] <= on_day) & (ours["valid_to"].isna() | (ours["valid_to"] > on_day))
        o_at = ours.loc[omask, ["person_id", "stage"]]
        m = t_at.merge(o_at, on="person_id", how="outer").fillna({"true_stage": "(absent)", "stage": "(absent)"})
        by_date[on_day] = float((m["true_stage"] == m["stage"]).mean()) if len(m) else np.nan
        parts.append(m.groupby(["true_stage", "stage"], as_index=False).size().rename(columns={"size": "persons"})
                     .assign(date=on_day))
    out = pd.concat(parts, ignore_index=True)[["date", "true_stage", "stage", "persons"]]
    out["agrees"] = out["true_stage"] == out["stage"]
    out["agreement"] = out["date"].map(by_date).astype(float)
    total = out["persons"].sum()
    out.attrs["agreement"] = float(out.loc[out.true_stage == out.stage, "persons"].sum() / total) if total else np.nan
    out.attrs["agreement_by_date"] = pd.Series(by_date, name="agreement")
    return out
