"""Conversion funnels: ordered, strict, any-order and unordered, with exclusions, breakdowns and trends.

A funnel asks how many persons went through a sequence of steps within a time
window. A step is a touchpoint (``"mp_visit"``), a filter on event columns
(``{"touchpoint": "pay", "channel": "live"}``), a callable ``f(t) -> boolean
column`` over the Ibis events table, or a :class:`Step` that names one of those.
docs/funnels.md lists every convention, its default, the reason for it and the
product-analytics tool it follows.

Semantics
---------
Events of a person are ordered by ``(ts, event_id)``; "after" and "between" refer
to that order, so two events with the same timestamp are ordered by event id.
With ``ties="simultaneous"`` events with the same timestamp are simultaneous (as
in Amplitude): within one timestamp they are put in funnel-step order (by the
first step each matches, then event id), so a same-second step satisfies the
order, and an excluded event at the same timestamp as a step is not "between".

**Attempts and re-entry.** With ``attempts="every"`` (the default) every event
that matches step 1 starts an attempt (re-entry: a person who comes back after a
failed attempt gets a new chance, with its own window). With ``attempts="first"``
only the person's first step-1 event starts one. In ``any_order`` and
``unordered`` modes an attempt may start at an event matching any step.

**Window.** Measured from the attempt's step-1 event (any-order and unordered:
from the attempt's first event); an event exactly ``window`` after it is still
inside.

**Modes.**

* ``ordered``: step ``k+1`` is the first step-``k+1`` event after the attempt's
  step-``k`` event, within the window; other events may come between. (Taking the
  earliest match at each step is optimal: no other choice reaches further.)
* ``strict``: step ``k+1`` must be the person's very next event (any touchpoint)
  after the step-``k`` event, within the window.
* ``any_order`` (PostHog's "any order", Amplitude's and Mixpanel's "any order"):
  an attempt reaches ``k`` steps when ``k`` of the steps, whichever they are, have
  matching events in its window, each event serving one step only (a maximum
  matching of steps to events). Step ``k`` of the output counts the persons who
  completed at least ``k`` steps; it is completed at the first event after which
  ``k`` steps can be served.
* ``unordered`` (privdomain's earlier meaning, kept): an attempt starting at event
  ``a`` reaches step ``k`` when each of steps ``1..k`` has a matching event in
  ``[a, a + window]``, in any order. One event may satisfy several steps whose
  filters it matches. Step ``k`` is completed by the latest of the first matching
  events of steps ``1..k``.

**Exclusions.** ``Exclusion(where, from_step=i, to_step=j)`` drops an attempt when
an event matching ``where`` lies after its step-``i`` event and before its
step-``j`` event; if the attempt never reaches step ``j``, any such event after
step ``i`` within the window drops it. In ``any_order`` mode ``i`` and ``j`` count
steps completed (the ``i``-th and ``j``-th completions, whichever steps they
were). A dropped attempt counts nowhere; a person whose every attempt was dropped
is left out and counted in the ``excluded_persons`` column. (``unordered`` refuses
exclusions: its completions are not in time order.)

**Which attempt is reported.** Conversion is per person: a person counts at step
``k`` when the reported attempt reached step ``k``. The reported attempt is the one
reaching the furthest step; among those, the one that started first
(``reported="first_start"``, the default), or the one completing that step first,
started at the latest step-1 event before that completion
(``reported="latest_start"``, the rule of PostHog's time to convert). Its
completion times and breakdown values are the ones shown.

**Breakdowns.** ``breakdown`` names an event column or a persons column (then
``persons`` or a dataset path supplies the persons table). An event column's value
is taken, per ``attribution``, at the attempt's first event (``"first_touch"``),
at the event of the furthest step reached (``"last_touch"``), at each step's own
event (``"per_step"``: a person is counted at step ``k`` under the value of their
step-``k`` event, so ``conversion_from_previous`` compares different groups of
persons and may exceed 1), at step ``attribution_step`` (``"step"``: persons who
never reach that step drop out of the breakdown), or per value (``"all_steps"``:
the funnel runs on each value's events separately, every step's event carrying
that value, so a person is counted under each value they went through the funnel
with; null values are left out). First and last touch skip nulls
(``breakdown_nulls="skip"``: the first/last non-null value among the attempt's
step events) unless ``breakdown_nulls="keep"``. A persons column has one value
per person.

**Time to convert.** For each person reaching step ``k >= 2``, the time from the
step-``k-1`` completion to the step-``k`` completion, summarised by its quantiles
(exact, linear interpolation) and mean in seconds; :func:`time_to_convert` gives
the histogram.

**Trends and audiences.** :func:`funnel_trends` gives conversion by cohort of
entry (day, week or month) with Wilson intervals; :func:`funnel_persons` with
``converted_to=k`` or ``dropped_at=k`` and :func:`funnel_audience` give the persons
who converted to or dropped at a step.

Examples
--------
>>> from privdomain.examples import events_frame
>>> from privdomain.boards.funnel import funnel
>>> ev = events_frame([
...     (1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:05", "add_to_cart"),
...     (1, "2024-05-01 10:09", "pay", {"order_id": 1, "amount_fen": 990}),
...     (2, "2024-05-01 11:00", "mp_visit"), (2, "2024-05-09 11:00", "add_to_cart")])
>>> funnel(ev, ["mp_visit", "add_to_cart", "pay"])[["step_name", "persons"]].values.tolist()
[['mp_visit', 2], ['add_to_cart', 1], ['pay', 1]]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Union

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .. import events as events_layer
from ..backend import TableLike, execute
from ..errors import UsageError

__all__ = [
    "Exclusion",
    "Step",
    "as_exclusions",
    "as_steps",
    "funnel",
    "funnel_audience",
    "funnel_persons",
    "funnel_trends",
    "parse_window",
    "predicate",
    "time_to_convert",
    "wilson_interval",
]

MODES = ("ordered", "strict", "unordered", "any_order")
ATTEMPTS = ("every", "first")
ATTRIBUTIONS = ("first_touch", "last_touch", "per_step", "step", "all_steps")
TIES = ("event_id", "simultaneous")
NULLS = ("skip", "keep")
REPORTED = ("first_start", "latest_start")
FREQS = {"D": "D", "W": "W", "M": "M"}
ANY_ORDER_MAX_FILTERS = 6  # distinct non-touchpoint step filters an any-order funnel accepts (2**k counts)
QUANTILES = {"p25": 0.25, "median": 0.5, "p75": 0.75, "p90": 0.9}

Where = Union[str, Mapping[str, Any], Callable[[ir.Table], ir.BooleanColumn]]


@dataclass(frozen=True)
class Step:
    """A funnel step: a filter on events and the name shown in the output.

    ``where`` is a touchpoint string, a mapping ``{column: value or list of
    values}`` (all must hold), or a callable taking the Ibis events table and
    returning a boolean column.

    >>> Step({"touchpoint": "pay", "channel": "live"}, name="live pay").label(0)
    'live pay'
    """

    where: Where
    name: str | None = None

    def label(self, index: int) -> str:
        if self.name:
            return self.name
        w = self.where
        if isinstance(w, str):
            return w
        if isinstance(w, Mapping):
            return "&".join(f"{k}={v}" for k, v in w.items())
        return getattr(w, "__name__", f"step {index + 1}")


@dataclass(frozen=True)
class Exclusion:
    """Drop an attempt with a matching event between steps ``from_step`` and ``to_step`` (1-based).

    >>> Exclusion("refund", 1, 3).to_step
    3
    """

    where: Where
    from_step: int
    to_step: int


def as_steps(steps: Sequence[Where | Step]) -> list[Step]:
    """Normalise step specifications to :class:`Step` objects.

    >>> [s.label(i) for i, s in enumerate(as_steps(["mp_visit", {"touchpoint": "pay"}]))]
    ['mp_visit', 'touchpoint=pay']
    """
    out = [s if isinstance(s, Step) else Step(s) for s in steps]
    if not out:
        raise ValueError("steps: a funnel needs at least one step, got none")
    return out


def as_exclusions(exclusions: Sequence[Exclusion | tuple], n_steps: int) -> list[Exclusion]:
    """Normalise exclusions given as :class:`Exclusion` or ``(where, from_step, to_step)`` tuples."""
    out = [e if isinstance(e, Exclusion) else Exclusion(*e) for e in exclusions]
    for e in out:
        if not (1 <= e.from_step < e.to_step <= n_steps):
            raise ValueError(
                f"exclusions: from_step/to_step must satisfy 1 <= from_step < to_step <= {n_steps} "
                f"(the number of steps), got {e.from_step}, {e.to_step}"
            )
    return out


def parse_window(window: str | pd.Timedelta | Any) -> pd.Timedelta:
    """A positive :class:`pandas.Timedelta` from ``"7D"``, ``"36h"``, a timedelta...

    >>> parse_window("7D")
    Timedelta('7 days 00:00:00')
    """
    try:
        w = pd.Timedelta(window)
    except (TypeError, ValueError) as err:
        raise ValueError(f"window: cannot read {window!r} as a duration (e.g. '7D', '12h')") from err
    if pd.isna(w) or w <= pd.Timedelta(0):
        raise ValueError(f"window: must be a positive duration, got {window!r}")
    return w


def _interval(w: pd.Timedelta) -> ir.IntervalScalar:
    us = int(w / pd.Timedelta(microseconds=1))
    if us % 1_000_000 == 0:
        return ibis.interval(seconds=us // 1_000_000)
    return ibis.interval(microseconds=us)


def predicate(t: ir.Table, where: Where) -> ir.BooleanColumn:
    """The boolean column of events matching ``where`` (nulls count as no match).

    >>> import ibis
    >>> t = ibis.table({"touchpoint": "string", "channel": "string"}, name="ev")
    >>> predicate(t, {"touchpoint": ["pay", "order"], "channel": "live"}).type().is_boolean()
    True
    """
    if isinstance(where, Step):
        where = where.where
    if isinstance(where, str):
        cond = t.touchpoint == where
    elif isinstance(where, Mapping):
        if not where:
            raise ValueError("step filter: an empty mapping matches nothing; give at least one column")
        parts = []
        for col, value in where.items():
            if col not in t.columns:
                raise ValueError(f"step filter: column {col!r} is not in the events table")
            if isinstance(value, (list, tuple, set, frozenset)):
                parts.append(t[col].isin(list(value)))
            else:
                parts.append(t[col] == value)
        cond = ibis.and_(*parts)
    elif callable(where):
        cond = where(t)
    else:
        raise ValueError(f"step filter: expected a touchpoint, a mapping or a callable, got {type(where).__name__}")
    return cond.fill_null(False)


_US = 1_000_000
_LEVEL = 2**40  # the attempt key of _best: dropped * _DROPPED + (n - level) * _LEVEL + ordinal
_DROPPED = 2**52


def _require_step_names(steps: Sequence[Step], exclusions: Sequence[Exclusion], t: ir.Table, source: Any) -> None:
    """Refuse a step or exclusion that names an unknown touchpoint or channel (a typo gives 0, not an error)."""
    tps = events_layer.known_touchpoints(source)
    chans = events_layer.known_channels(source)
    for kind, where in [*(("step", s.where) for s in steps), *(("exclusion", e.where) for e in exclusions)]:
        if isinstance(where, Step):
            where = where.where
        if isinstance(where, str):
            events_layer.require_known(kind, where, tps)
        elif isinstance(where, Mapping):
            for col, value in where.items():
                if col not in t.columns:
                    raise ValueError(f"{kind} filter: column {col!r} is not in the events table")
                values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
                if col == "touchpoint":
                    events_layer.require_known(f"{kind} touchpoint", values, tps)
                elif col == "channel":
                    events_layer.require_known(f"{kind} channel", values, chans)


# --------------------------------------------------------------------------------------
# The per-person attempt table (Ibis)
# --------------------------------------------------------------------------------------


@dataclass
class _Spec:
    steps: list[Step]
    exclusions: list[Exclusion]
    window: pd.Timedelta
    mode: str
    attempts: str
    event_breakdown: bool
    ties: str = "event_id"
    reported: str = "first_start"
    every_attempt: bool = False  # keep attempts no person-level report needs (trends report per period)

    @property
    def window_us(self) -> int:
        return int(self.window / pd.Timedelta(microseconds=1))

    @property
    def order(self) -> list[str]:
        """The order of a person's events: by time, then (ties) by step rank or event id."""
        return ["_us", "_rank", "event_id"] if self.ties == "simultaneous" else ["_us", "event_id"]


def _base(t: ir.Table, spec: _Spec, breakdown: str | None) -> ir.Table:
    wheres = [s.where for s in spec.steps] + [x.where for x in spec.exclusions]
    if spec.mode != "strict":
        # only events matching a step or an exclusion matter; filtering first lets the engine push it
        # down into the scan (touchpoint steps as one IN list, which Parquet readers evaluate cheaply)
        touchpoints = list(dict.fromkeys(w for w in wheres if isinstance(w, str)))
        parts = [predicate(t, w) for w in wheres if not isinstance(w, str)]
        if touchpoints:
            # (wrapped in fill_null, DuckDB evaluates it inside the Parquet scan, before it decodes
            # the other columns; a bare IN list is only used there to skip row groups)
            parts.append(t.touchpoint.isin(touchpoints).fill_null(False))
        t = t.filter(ibis.or_(*parts))
    preds = [predicate(t, w) for w in wheres]
    cols: dict[str, Any] = {"person_id": t.person_id, "event_id": t.event_id, "_us": t._us}
    n = len(spec.steps)
    for k in range(1, n + 1):
        cols[f"_m{k}"] = preds[k - 1]
    for e in range(len(spec.exclusions)):
        cols[f"_x{e}"] = preds[n + e]
    if spec.event_breakdown:
        cols["_b"] = t[breakdown]
    if spec.ties == "simultaneous":
        # within one timestamp, events are put in funnel-step order (by the first step they match)
        cols["_rank"] = ibis.cases(*[(preds[k], k + 1) for k in range(n)], else_=n + 1)
    return t.select(**cols)


def _exclusion_counts(base: ir.Table, spec: _Spec, flag: ir.BooleanColumn, e: int) -> dict[str, Any]:
    """Per row: ``_cx`` the ordinal count of excluded events at or before it (in the person's order),
    ``_xi`` the count an exclusion *from* this row starts after, ``_xj`` the count one *to* this row ends before.

    With ``ties="event_id"`` both follow the row order; with ``"simultaneous"`` they follow time only, so an
    excluded event with the same timestamp as either step is not between them.
    """
    cw = ibis.window(group_by="person_id", order_by=spec.order, rows=(None, 0))
    cx = base.person_id.count(where=flag).over(cw)
    if spec.ties == "simultaneous":
        at = ibis.window(group_by="person_id", order_by="_us", range=(None, 0))
        before = ibis.window(group_by="person_id", order_by="_us", range=(None, -1))
        return {f"_cx{e}": cx, f"_xi{e}": base.person_id.count(where=flag).over(at),
                f"_xj{e}": base.person_id.count(where=flag).over(before)}
    return {f"_cx{e}": cx, f"_xi{e}": cx, f"_xj{e}": cx - _count(flag)}


def _null_like(col: ir.Value) -> ir.Value:
    return ibis.null(col.type())


def _keep(ok: ir.BooleanValue, col: ir.Value) -> ir.Value:
    return ibis.ifelse(ok, col, _null_like(col))


def _count(flag: ir.BooleanColumn) -> ir.IntegerColumn:
    return flag.cast("int64")


def _ordered(base: ir.Table, spec: _Spec) -> ir.Table:
    """Ordered and strict attempts via running counts.

    ``_c{k}`` = number of step-``k`` events at or before a row (per person, in
    ``(ts, event_id)`` order), so the first step-``k`` event after row ``p`` is the
    step-``k`` event with ordinal ``_c{k}(p) + 1``: each step is one equi-join.
    Four named builders: the running counts (:func:`_running_counts`), the attempts
    of the strict mode (:func:`_strict_attempts`, the next events by ``lead``) or of
    the ordered mode (:func:`_ordered_attempts`, one join per step), then the
    exclusions (:func:`_exclusion_drops`).
    """
    n = len(spec.steps)
    rel, post = _running_counts(base, spec)
    cur = _strict_attempts(rel, spec) if spec.mode == "strict" else _ordered_attempts(rel, spec, post)
    cur, dropped = _exclusion_drops(cur, rel, spec)
    level = sum(cur[f"_u{k}"].notnull().cast("int64") for k in range(1, n + 1))
    return _attempts(cur, n, spec.event_breakdown, level=level, startu=cur._u1, dropped=dropped)


def _running_counts(base: ir.Table, spec: _Spec) -> tuple[ir.Table, bool]:
    """The events with their running step counts ``_c{k}`` (and the exclusions' counts).

    Returns the table and ``post``: whether ``_t2`` (the person's step-2 events in all)
    was added, which lets the ordered mode drop attempts that cannot reach step 2.
    """
    n = len(spec.steps)
    excl = spec.exclusions
    cw = ibis.window(group_by="person_id", order_by=spec.order, rows=(None, 0))

    def running(flag: ir.BooleanColumn) -> ir.IntegerColumn:
        # COUNT(...) FILTER (WHERE flag) is about twice as fast in DuckDB's window operator as a
        # running SUM(CAST(flag AS BIGINT)); person_id is never null (checked), so it counts rows
        return base.person_id.count(where=flag).over(cw)

    counts: dict[str, Any] = {"_c1": running(base._m1)}
    if spec.mode == "ordered":
        for k in range(2, n + 1):
            counts[f"_c{k}"] = running(base[f"_m{k}"])
    for e in range(len(excl)):
        counts.update(_exclusion_counts(base, spec, base[f"_x{e}"], e))
    post = spec.mode == "ordered" and not excl and n >= 2 and spec.attempts == "every" and not spec.every_attempt
    if post:
        # the person's step-2 events in all (same partition and order: the same pass of the engine)
        whole = ibis.window(group_by="person_id", order_by=spec.order, rows=(None, None))
        counts["_t2"] = base.person_id.count(where=base._m2).over(whole)
    return base.mutate(**counts), post


def _strict_attempts(rel: ir.Table, spec: _Spec) -> ir.Table:
    """Strict mode: step ``k`` must be the ``(k-1)``-th next event, read with ``lead``."""
    n = len(spec.steps)
    W = spec.window_us
    has_b = spec.event_breakdown
    excl = spec.exclusions
    lw = ibis.window(group_by="person_id", order_by=spec.order)
    leads: dict[str, Any] = {}
    for k in range(2, n + 1):
        leads[f"_lm{k}"] = rel[f"_m{k}"].lead(k - 1).over(lw)
        leads[f"_lu{k}"] = rel._us.lead(k - 1).over(lw)
        if has_b:
            leads[f"_lb{k}"] = rel._b.lead(k - 1).over(lw)
    for e, x in enumerate(excl):
        if x.from_step > 1:
            leads[f"_lci{e}"] = rel[f"_xi{e}"].lead(x.from_step - 1).over(lw)
        leads[f"_lcj{e}"] = rel[f"_xj{e}"].lead(x.to_step - 1).over(lw)
    rel = rel.mutate(**leads) if leads else rel
    a = rel.filter(rel._m1)
    if spec.attempts == "first":
        a = a.filter(a._c1 == 1)
    cols: dict[str, Any] = {"person_id": a.person_id, "_a": a._c1, "_u1": a._us}
    if has_b:
        cols["_b1"] = a._b
    ok = ibis.literal(True)
    oks = {1: ok}
    for k in range(2, n + 1):
        ok = ok & a[f"_lm{k}"].fill_null(False) & (a[f"_lu{k}"] <= a._us + W).fill_null(False)
        oks[k] = ok
        cols[f"_u{k}"] = _keep(ok, a[f"_lu{k}"])
        if has_b:
            cols[f"_b{k}"] = _keep(ok, a[f"_lb{k}"])
    for e, x in enumerate(excl):
        ci = a[f"_xi{e}"] if x.from_step == 1 else a[f"_lci{e}"]
        cols[f"_ci{e}"] = _keep(oks[x.from_step], ci)
        cols[f"_cj{e}"] = _keep(oks[x.to_step], a[f"_lcj{e}"])
    return a.select(**cols)


def _ordered_attempts(rel: ir.Table, spec: _Spec, post: bool) -> ir.Table:
    """Ordered mode: each next step is the first step-``k`` event after the previous one (one join per step)."""
    n = len(spec.steps)
    W = spec.window_us
    has_b = spec.event_breakdown
    excl = spec.exclusions
    a = rel.filter(rel._m1)
    if spec.attempts == "first":
        a = a.filter(a._c1 == 1)
    if post:
        # an attempt with no step-2 event after it reaches step 1 only; such an attempt is
        # reported only when every attempt of the person does, and then it is the first one
        a = a.filter((a._c2 < a._t2) | (a._c1 == 1))
    cols = {"person_id": a.person_id, "_a": a._c1, "_u1": a._us}
    if n >= 2:
        cols["_k2"] = a._c2
    if has_b:
        cols["_b1"] = a._b
    for e, x in enumerate(excl):
        if x.from_step == 1:
            cols[f"_ci{e}"] = a[f"_xi{e}"]
    cur = a.select(**cols)
    for k in range(2, n + 1):
        s = rel.filter(rel[f"_m{k}"])
        scols: dict[str, Any] = {"_p": s.person_id, "_o": s[f"_c{k}"], "_su": s._us}
        if k < n:
            scols["_sk"] = s[f"_c{k + 1}"]
        if has_b:
            scols["_sb"] = s._b
        for e, x in enumerate(excl):
            if x.from_step == k:
                scols[f"_sci{e}"] = s[f"_xi{e}"]
            if x.to_step == k:
                scols[f"_scj{e}"] = s[f"_xj{e}"]
        s = s.select(**scols).view()
        j = cur.left_join(s, [cur.person_id == s._p, s._o == cur[f"_k{k}"] + 1, s._su <= cur._u1 + W])
        new: dict[str, Any] = {c: j[c] for c in cur.columns if c != f"_k{k}"}
        new[f"_u{k}"] = j._su
        if k < n:
            new[f"_k{k + 1}"] = j._sk
        if has_b:
            new[f"_b{k}"] = j._sb
        for e, x in enumerate(excl):
            if x.from_step == k:
                new[f"_ci{e}"] = j[f"_sci{e}"]
            if x.to_step == k:
                new[f"_cj{e}"] = j[f"_scj{e}"]
        cur = j.select(**new).view()
    return cur


def _exclusion_drops(cur: ir.Table, rel: ir.Table, spec: _Spec) -> tuple[ir.Table, ir.BooleanColumn]:
    """Attempts with an excluded event between their two steps, inside the window."""
    W = spec.window_us
    excl = spec.exclusions
    dropped = ibis.literal(False)
    for e in range(len(excl)):
        # an attempt that never reached to_step: is the next excluded event after from_step inside the window?
        xs = rel.filter(rel[f"_x{e}"])
        xs = xs.select(_xp=xs.person_id, _xo=xs[f"_cx{e}"], _xu=xs._us).view()
        j = cur.left_join(xs, [cur.person_id == xs._xp, xs._xo == cur[f"_ci{e}"] + 1, xs._xu <= cur._u1 + W])
        cur = j.select(*[j[c] for c in cur.columns], **{f"_xw{e}": j._xu.notnull()}).view()
    for e in range(len(excl)):
        ci, cj = cur[f"_ci{e}"], cur[f"_cj{e}"]
        hit = ibis.ifelse(cj.notnull(), (cj - ci) > 0, cur[f"_xw{e}"])
        dropped = dropped | (ci.notnull() & hit).fill_null(False)
    return cur, dropped


def _unordered(base: ir.Table, spec: _Spec) -> ir.Table:
    if spec.exclusions:
        raise ValueError(
            "exclusions: mode='unordered' (steps 1..k in any order) has no 'between two steps'; "
            "use mode='any_order', where exclusions run between the i-th and j-th steps completed"
        )
    n = len(spec.steps)
    W = spec.window_us
    w = ibis.window(group_by="person_id", order_by=spec.order)
    rel = base.mutate(_g=ibis.row_number().over(w))
    fw = ibis.window(group_by="person_id", order_by="_g", rows=(0, None))
    has_b = spec.event_breakdown
    firsts: dict[str, Any] = {}
    for k in range(1, n + 1):
        m = rel[f"_m{k}"]
        firsts[f"_fg{k}"] = ibis.ifelse(m, rel._g, None).min().over(fw)
        firsts[f"_fu{k}"] = ibis.ifelse(m, rel._us, None).min().over(fw)
        if has_b:
            firsts[f"_fb{k}"] = (
                ibis.ifelse(m, ibis.struct({"v": rel._b}), None).argmin(ibis.ifelse(m, rel._g, None)).over(fw)
            )
    a = rel.mutate(**firsts)
    if spec.attempts == "first":
        a = a.filter(a._g == 0)
    cols: dict[str, Any] = {"person_id": a.person_id, "_a": a._g}
    ok = ibis.literal(True)
    comp_g = comp_u = comp_b = None
    start_g = start_b = None
    starts: list[tuple[Any, Any]] = []
    levels = []
    for k in range(1, n + 1):
        ok = ok & (a[f"_fu{k}"] <= a._us + W).fill_null(False)
        fg, fu = a[f"_fg{k}"], a[f"_fu{k}"]
        fb = a[f"_fb{k}"]["v"] if has_b else None
        if comp_g is None:
            comp_g, comp_u, comp_b = fg, fu, fb
            start_g, start_b = fg, fb
        else:
            later = fg > comp_g
            comp_g = ibis.ifelse(later, fg, comp_g)
            comp_u = ibis.ifelse(later, fu, comp_u)
            comp_b = ibis.ifelse(later, fb, comp_b) if has_b else None
            earlier = fg < start_g
            start_g = ibis.ifelse(earlier, fg, start_g)
            start_b = ibis.ifelse(earlier, fb, start_b) if has_b else None
        cols[f"_u{k}"] = _keep(ok, comp_u)
        if has_b:
            cols[f"_b{k}"] = _keep(ok, comp_b)
        starts.append((start_g, start_b))
        levels.append(ok)
    level = sum(x.cast("int64") for x in levels)
    cols["_level"] = level
    # the attempt's first event: the earliest first match among the steps reached
    cols["_sg"] = ibis.cases(*[(level == k, starts[k - 1][0]) for k in range(1, n + 1)], else_=None)
    if has_b:
        cols["_bstart"] = ibis.cases(*[(level == k, starts[k - 1][1]) for k in range(1, n + 1)], else_=None)
    start_u = None
    for k in range(1, n + 1):
        uk = a[f"_fu{k}"]
        start_u = uk if start_u is None else ibis.least(start_u, ibis.ifelse(levels[k - 1], uk, start_u))
    cur = a.select(**cols, _startu=start_u)
    cur = cur.filter(cur._level > 0)
    return cur.mutate(_dropped=ibis.literal(False))


def _step_classes(steps: Sequence[Step]) -> list[list[int]]:
    """Steps grouped by identical filters (0-based indices), in first-appearance order."""
    keys: dict[Any, list[int]] = {}
    for i, st_ in enumerate(steps):
        w = st_.where.where if isinstance(st_.where, Step) else st_.where
        if isinstance(w, str):
            key: Any = ("touchpoint", w)
        elif isinstance(w, Mapping):
            key = ("mapping", repr(sorted((k, sorted(v) if isinstance(v, (list, tuple, set, frozenset)) else v)
                                          for k, v in w.items())))
        else:
            key = ("callable", id(w))
        keys.setdefault(key, []).append(i)
    return list(keys.values())


def _any_order(base: ir.Table, spec: _Spec) -> ir.Table:
    """Any-order attempts: the most steps that distinct events in the window can serve.

    An attempt starts at every event matching a step (``attempts="first"``: the
    person's first such event) and takes the events from it (in the person's order)
    to its time plus the window. Each event serves at most one step, so the number
    of steps completed by a set of events is a maximum matching between steps and
    events. Steps with the same filter form a class; by Hall's theorem the matching
    is ``min over sets T of classes of (n - steps(T) + events matching a class in T)``,
    which is additive (``sum over classes of min(size, events)``) when every step is
    a touchpoint name (distinct touchpoints never match the same event). Running
    counts give the events of each kind between the attempt's start and any later
    event, so the matching after each event is known, and the ``k``-th step is
    completed at the first event after which it reaches ``k``.
    """
    n = len(spec.steps)
    W = spec.window_us
    has_b = spec.event_breakdown
    excl = spec.exclusions
    classes = _step_classes(spec.steps)
    additive = all(isinstance(st_.where, str) for st_ in spec.steps)
    if not additive and len(classes) > ANY_ORDER_MAX_FILTERS:
        raise ValueError(
            f"steps: an any-order funnel with filters other than touchpoint names takes at most "
            f"{ANY_ORDER_MAX_FILTERS} distinct step filters, got {len(classes)}"
        )
    flags = [ibis.or_(*[base[f"_m{i + 1}"] for i in c]) for c in classes]
    if additive:
        kinds = [(flag, len(c), (j,)) for j, (flag, c) in enumerate(zip(flags, classes))]
    else:
        kinds = []
        for mask in range(1, 2 ** len(classes)):
            members = [j for j in range(len(classes)) if mask >> j & 1]
            kinds.append((ibis.or_(*[flags[j] for j in members]), sum(len(classes[j]) for j in members),
                          tuple(members)))
    cw = ibis.window(group_by="person_id", order_by=spec.order, rows=(None, 0))
    any_step = ibis.or_(*[base[f"_m{k}"] for k in range(1, n + 1)])
    cols: dict[str, Any] = {"_g": base.person_id.count().over(cw), "_any": any_step,
                            "_anyc": base.person_id.count(where=any_step).over(cw)}
    for q, (flag, _, _) in enumerate(kinds):
        cols[f"_q{q}"] = base.person_id.count(where=flag).over(cw)
        cols[f"_z{q}"] = _count(flag)
    for e in range(len(excl)):
        cols.update(_exclusion_counts(base, spec, base[f"_x{e}"], e))
    rel = base.mutate(**cols)
    a = rel.filter(rel._any)
    if spec.attempts == "first":
        a = a.filter(a._anyc == 1)
    acols = {"_ap": a.person_id, "_ag": a._g, "_au": a._us}
    acols.update({f"_aq{q}": a[f"_q{q}"] - a[f"_z{q}"] for q in range(len(kinds))})
    a = a.select(**acols).view()
    ev = rel.view()
    j = a.join(ev, [a._ap == ev.person_id, ev._g >= a._ag, ev._us <= a._au + W])
    inside = [j[f"_q{q}"] - j[f"_aq{q}"] for q in range(len(kinds))]
    if additive:
        served = sum(ibis.least(size, c) for c, (_, size, _) in zip(inside, kinds))
    else:
        served = ibis.least(n, *[n - size + c for c, (_, size, _) in zip(inside, kinds)])
    pcols: dict[str, Any] = {"person_id": j._ap, "_a": j._ag, "_au": j._au, "_eg": j._g, "_eu": j._us,
                             "_served": served}
    if has_b:
        pcols["_eb"] = j._b
    for e in range(len(excl)):
        pcols[f"_xi{e}"] = j[f"_xi{e}"]
        pcols[f"_xj{e}"] = j[f"_xj{e}"]
    pairs = j.select(**pcols)
    agg: dict[str, Any] = {"_level": pairs._served.max(), "_startu": pairs._au.min()}
    for k in range(1, n + 1):
        done = pairs._served >= k
        agg[f"_u{k}"] = pairs._eu.min(where=done)
        if has_b:
            agg[f"_b{k}"] = pairs._eb.argmin(pairs._eg, where=done)
    for e, x in enumerate(excl):
        agg[f"_ci{e}"] = pairs[f"_xi{e}"].argmin(pairs._eg, where=pairs._served >= x.from_step)
        agg[f"_cj{e}"] = pairs[f"_xj{e}"].argmin(pairs._eg, where=pairs._served >= x.to_step)
        agg[f"_xw{e}"] = pairs[f"_xi{e}"].max()
    cur = pairs.group_by(["person_id", "_a"]).aggregate(**agg)
    dropped = ibis.literal(False)
    for e, x in enumerate(excl):
        ci, cj = cur[f"_ci{e}"], cur[f"_cj{e}"]
        hit = ibis.ifelse(cur._level >= x.to_step, cj - ci > 0, cur[f"_xw{e}"] - ci > 0)
        dropped = dropped | ((cur._level >= x.from_step) & hit).fill_null(False)
    return _attempts(cur, n, has_b, level=cur._level, startu=cur._startu, dropped=dropped)


def _attempts(cur: ir.Table, n: int, has_b: bool, *, level: ir.Value, startu: ir.Value,
              dropped: ir.Value) -> ir.Table:
    """The attempt table every mode hands to :func:`_best`: keys, level, start, step times (and breakdowns)."""
    out: dict[str, Any] = {"person_id": cur.person_id, "_a": cur._a, "_sg": cur._a, "_level": level,
                           "_startu": startu, "_dropped": dropped}
    for k in range(1, n + 1):
        out[f"_u{k}"] = cur[f"_u{k}"]
        if has_b:
            out[f"_b{k}"] = cur[f"_b{k}"]
    if has_b:
        out["_bstart"] = cur._b1
    return cur.select(**out)


def _best(cur: ir.Table, spec: _Spec, keys: Sequence[str] = ("person_id",)) -> ir.Table:
    """One row per person (per ``keys``): the reported attempt.

    ``reported="first_start"``: kept attempts first, then the furthest step, then the
    earliest start. ``"latest_start"``: kept first, then the furthest step, then the
    earliest completion of that step, then the latest start (the latest step-1 event
    before the conversion).
    """
    n = len(spec.steps)
    if spec.mode in ("ordered", "strict") and spec.reported == "first_start" and tuple(keys) == ("person_id",):
        # _a (the anchor's ordinal among the person's step-1 events) follows the start time, so one
        # int64 key orders attempts: kept first, then furthest step, then earliest start. One
        # group-by takes the key's minimum and the attempt's columns at it (arg_min), and the
        # flags packed in the key are read back from the minimum: no join back to the attempts.
        key = _count(cur._dropped) * _DROPPED + (n - cur._level) * _LEVEL + cur._a
        cur = cur.mutate(_key=key)
        values = [c for c in cur.columns if c.startswith(("_u", "_b"))]
        agg: dict[str, Any] = {"_kmin": cur._key.min()}
        agg.update({c: cur[c].argmin(cur._key) for c in values})
        b = cur.group_by("person_id").aggregate(**agg)
        a = b._kmin % _LEVEL
        out: dict[str, Any] = {"person_id": b.person_id, "_a": a, "_sg": a,
                               "_level": n - (b._kmin % _DROPPED) // _LEVEL, "_startu": b._u1,
                               "_dropped": b._kmin >= _DROPPED}
        out.update({c: b[c] for c in cur.columns if c not in out and c != "_key"})
        return b.select(**out)
    order: list[Any] = [cur._dropped.asc(), cur._level.desc()]
    if spec.reported == "latest_start":
        reached = ibis.cases(*[(cur._level == k, cur[f"_u{k}"]) for k in range(1, n + 1)], else_=None)
        order += [reached.asc(), cur._startu.desc(), cur._sg.desc(), cur._a.desc()]
    else:
        order += [cur._startu.asc(), cur._sg.asc(), cur._a.asc()]
    w = ibis.window(group_by=list(keys), order_by=order)
    ranked = cur.mutate(_rank_=ibis.row_number().over(w))
    return ranked.filter(ranked._rank_ == 0).drop("_rank_")


def _person_values(t_best: ir.Table, n: int, opts: _Options, has_b: bool) -> dict[int, Any]:
    """Breakdown value shown for each step, per the attribution rule."""
    if not has_b:
        return {}
    attribution = opts.attribution
    if attribution == "per_step":
        return {k: t_best[f"_b{k}"] for k in range(1, n + 1)}
    if attribution == "step":
        return dict.fromkeys(range(1, n + 1), t_best[f"_b{opts.attribution_step}"])
    if attribution == "all_steps":
        return dict.fromkeys(range(1, n + 1), t_best._bv)
    skip = opts.nulls == "skip"
    if attribution == "first_touch":
        v = t_best._bstart
        if skip:
            v = ibis.coalesce(v, *[t_best[f"_b{k}"] for k in range(1, n + 1)]) if n else v
    else:
        def last(k: int) -> Any:
            vals = [t_best[f"_b{i}"] for i in range(k, 0, -1)]
            return ibis.coalesce(*vals) if skip and len(vals) > 1 else vals[0]

        v = ibis.cases(*[(t_best._level == k, last(k)) for k in range(1, n + 1)], else_=None)
    return dict.fromkeys(range(1, n + 1), v)


@dataclass(frozen=True)
class _Options:
    attribution: str = "first_touch"
    attribution_step: int | None = None
    nulls: str = "skip"


@dataclass
class _Prepared:
    spec: _Spec
    best: ir.Table  # one row per person who entered (kept attempts and persons whose attempts were all dropped)
    breakdown: str | None
    person_breakdown: ir.Table | None
    attempts: ir.Table  # every attempt (one row each)
    opts: _Options
    last_us: ir.IntegerScalar  # the latest event time (Beijing wall-clock microseconds)


def _check_choice(kind: str, value: Any, known: Sequence[str]) -> None:
    if value not in known:
        raise UsageError.unknown(kind, value, known)


def _prepare(
    events: TableLike,
    steps: Sequence[Where | Step],
    window: Any,
    mode: str,
    exclusions: Sequence[Exclusion | tuple],
    attempts: str,
    breakdown: str | None,
    attribution: str,
    persons: TableLike | None,
    con: Any | None,
    *,
    attribution_step: int | None = None,
    breakdown_nulls: str = "skip",
    ties: str = "event_id",
    reported: str = "first_start",
    every_attempt: bool = False,
    tz: str | None = None,
    part: tuple[int, int] | None = None,
) -> _Prepared:
    if mode not in MODES:
        raise UsageError(f"mode: must be one of {MODES}, got {mode!r}")
    if attempts not in ATTEMPTS:
        raise UsageError(f"attempts: must be one of {ATTEMPTS}, got {attempts!r}")
    if attribution not in ATTRIBUTIONS:
        raise UsageError(f"attribution: must be one of {ATTRIBUTIONS}, got {attribution!r}")
    _check_choice("ties rule", ties, TIES)
    _check_choice("breakdown_nulls rule", breakdown_nulls, NULLS)
    _check_choice("reported attempt rule", reported, REPORTED)
    steps_ = as_steps(steps)
    n = len(steps_)
    if attribution == "step":
        if not isinstance(attribution_step, (int, np.integer)) or not 1 <= attribution_step <= n:
            raise UsageError(f"attribution_step: attribution='step' needs a step number from 1 to {n}, "
                             f"got {attribution_step!r}")
    elif attribution_step is not None:
        raise UsageError(f"attribution_step: only used with attribution='step', not {attribution!r}")
    excl = as_exclusions(exclusions, n)
    t = events_layer.read(events, con=con, columns=["event_id", "person_id"], micros=True, tz=tz)
    _require_step_names(steps_, excl, t, events)
    if part is not None and part[1] > 1:
        t = t.filter(events_layer.person_part(t.person_id, *part))
    person_table = None
    event_breakdown = False
    if breakdown is not None:
        if breakdown in t.columns:
            event_breakdown = True
        else:
            source = persons if persons is not None else events
            if isinstance(source, (pd.DataFrame, ir.Table)) and source is events:
                raise ValueError(
                    f"breakdown: {breakdown!r} is not an events column; pass the persons table as `persons=`"
                )
            person_table = events_layer.table(source, "persons", con=con)
            if breakdown not in person_table.columns:
                raise ValueError(f"breakdown: {breakdown!r} is neither an events nor a persons column")
            person_table = person_table.select(_pp=person_table.person_id, _pb=person_table[breakdown])
            if attribution in ("step", "all_steps"):
                raise UsageError(f"attribution: {attribution!r} needs an events column; {breakdown!r} is a "
                                 "persons column (one value per person)")
    elif attribution in ("step", "all_steps"):
        raise UsageError(f"attribution: {attribution!r} needs a breakdown column")
    last_us = t._us.max()
    pairs = None
    if event_breakdown and attribution == "all_steps":
        # "all steps": the funnel runs on each value's events separately (the value held constant);
        # a (person, value) pair stands in for the person
        tb = t.filter(t[breakdown].notnull())
        pairs = tb.select(_person=tb.person_id, _bv=tb[breakdown]).distinct()
        pairs = pairs.mutate(_pk=ibis.row_number().over(order_by=[pairs._person, pairs._bv])).view()
        j = tb.join(pairs, [tb.person_id == pairs._person, tb[breakdown] == pairs._bv])
        t = j.mutate(person_id=j._pk).drop("_person", "_bv", "_pk")
    spec = _Spec(steps_, excl, parse_window(window), mode, attempts, event_breakdown, ties, reported, every_attempt)
    base = _base(t, spec, breakdown)
    if mode == "unordered":
        cur = _unordered(base, spec)
    elif mode == "any_order":
        cur = _any_order(base, spec)
    else:
        cur = _ordered(base, spec)
    best = _best(cur, spec)
    if pairs is not None:
        best = best.join(pairs, best.person_id == pairs._pk).drop("_pk")
        cur = cur.join(pairs, cur.person_id == pairs._pk).drop("_pk", "_bv")
        cur = cur.mutate(person_id=cur._person).drop("_person")
    opts = _Options(attribution, attribution_step, breakdown_nulls)
    return _Prepared(spec, best, breakdown, person_table, cur, opts, last_us)


def _partitions(events: TableLike, spec: _Spec, partitions: int | None, con: Any | None) -> int:
    """Person-hash partitions for the funnel's windows: given, or enough for the rows they read."""
    if partitions is not None or spec.mode == "strict":
        return events_layer.person_partitions(events, partitions, con=con)
    from ..backend import partitions_for

    wheres = [s.where for s in spec.steps] + [x.where for x in spec.exclusions]
    checked = events_layer.check(events, con=con)
    rows = (sum(checked.touchpoints.get(w, 0) for w in set(wheres)) if all(isinstance(w, str) for w in wheres)
            else checked.rows)
    return partitions_for(rows, events_layer.BYTES_PER_EVENT, events_layer.read(events, con=con, localise=False), con)


def _seconds(a: ir.IntegerValue, b: ir.IntegerValue) -> ir.FloatingValue:
    return (a - b).cast("float64") / _US


def _with_person_values(prep: _Prepared) -> ir.Table:
    best = prep.best
    if prep.person_breakdown is not None:
        pb = prep.person_breakdown
        best = best.left_join(pb, best.person_id == pb._pp).drop("_pp").view()
    return best


def _totals(prep: _Prepared, con: Any | None) -> tuple[int, int]:
    """Persons who entered and persons whose every attempt was dropped (distinct persons)."""
    best = prep.best
    if prep.opts.attribution == "all_steps" and prep.spec.event_breakdown:
        per = best.group_by("_person").aggregate(_d=best._dropped.min())
        agg = per.aggregate(entered=per.count(), excluded=_count(per._d).sum())
    else:
        agg = best.aggregate(entered=best.count(), excluded=_count(best._dropped).sum())
    totals = execute(agg, con=con)
    return int(totals["entered"].iloc[0] or 0), int(totals["excluded"].iloc[0] or 0)


def _aggregate(prep: _Prepared, con: Any | None) -> pd.DataFrame:
    """Per (value, step): persons and time-to-convert statistics, in one pass over the persons."""
    n = len(prep.spec.steps)
    attribution = prep.opts.attribution
    best = _with_person_values(prep)
    has_b = prep.spec.event_breakdown
    if has_b and attribution == "step":
        # persons who never reach the attribution step have no value: they drop out of the breakdown
        best = best.filter(best._level >= prep.opts.attribution_step)
    kept = ~best._dropped
    if prep.breakdown is not None and has_b and attribution == "per_step":
        # a value per step: one row per (person, step reached)
        parts = []
        for k in range(1, n + 1):
            b = best.filter(kept & (best._level >= k))
            row: dict[str, Any] = {"value": b[f"_b{k}"], "step": ibis.literal(k, "int64"),
                                   "dt": _seconds(b[f"_u{k}"], b[f"_u{k - 1}"]) if k > 1 else ibis.null("float64"),
                                   "ds": _seconds(b[f"_u{k}"], b._startu)}
            parts.append(b.select(**row))
        rows = ibis.union(*parts, distinct=False) if n > 1 else parts[0]
        agg = {"persons": rows.count(), "mean_seconds": rows.dt.mean(),
               **{f"{q}_seconds": rows.dt.quantile(v) for q, v in QUANTILES.items()},
               "median_seconds_from_start": rows.ds.quantile(0.5)}
        raw = execute(rows.group_by(["value", "step"]).aggregate(**agg), con=con)
        raw.attrs["entered"], raw.attrs["excluded"] = _totals(prep, con)
        return raw
    keys: list[Any] = []
    if prep.breakdown is not None:
        value = best._pb if prep.person_breakdown is not None else _person_values(best, n, prep.opts, has_b)[1]
        best = best.mutate(value=value)
        keys = ["value"]
    agg: dict[str, Any] = {"_entered": best.count(), "_excluded": _count(best._dropped).sum()}
    for k in range(1, n + 1):
        agg[f"persons_{k}"] = _count(kept & (best._level >= k)).sum()
        uk = _keep(kept, best[f"_u{k}"])
        ds = _seconds(uk, best._startu)
        agg[f"median_seconds_from_start_{k}"] = ds.quantile(0.5)
        if k > 1:
            dt_ = _seconds(uk, best[f"_u{k - 1}"])
            agg[f"mean_seconds_{k}"] = dt_.mean()
            for q, v in QUANTILES.items():
                agg[f"{q}_seconds_{k}"] = dt_.quantile(v)
    wide = execute(best.group_by(keys).aggregate(**agg) if keys else best.aggregate(**agg), con=con)
    entered = int(pd.to_numeric(wide["_entered"]).fillna(0).sum()) if len(wide) else 0
    excluded = int(pd.to_numeric(wide["_excluded"]).fillna(0).sum()) if len(wide) else 0
    recs = []
    for _, r in wide.iterrows():
        for k in range(1, n + 1):
            rec = {"step": k, "persons": int(r[f"persons_{k}"] or 0),
                   "median_seconds_from_start": r[f"median_seconds_from_start_{k}"]}
            for name in ("mean", *QUANTILES):
                rec[f"{name}_seconds"] = r[f"{name}_seconds_{k}"] if k > 1 else np.nan
            if keys:
                rec["value"] = r["value"]
            recs.append(rec)
    raw = pd.DataFrame(recs, columns=[*keys, "step", "persons", "mean_seconds",
                                      *[f"{q}_seconds" for q in QUANTILES], "median_seconds_from_start"])
    if keys:
        # a value whose persons were all excluded does not appear
        raw = raw[raw.groupby("value", dropna=False)["persons"].transform("sum") > 0]
    if has_b and attribution in ("step", "all_steps"):
        entered, excluded = _totals(prep, con)
    raw.attrs.update(entered=entered, excluded=excluded)
    return raw


def funnel(
    events: TableLike,
    steps: Sequence[Where | Step],
    window: str | pd.Timedelta = "7D",
    mode: str = "ordered",
    *,
    exclusions: Sequence[Exclusion | tuple] = (),
    attempts: str = "every",
    breakdown: str | None = None,
    attribution: str = "first_touch",
    persons: TableLike | None = None,
    con: Any | None = None,
    attribution_step: int | None = None,
    breakdown_nulls: str = "skip",
    ties: str = "event_id",
    reported: str = "first_start",
    partitions: int | None = None,
) -> pd.DataFrame:
    """Persons reaching each step of a funnel, conversion rates and time to convert.

    See the module docstring for the exact semantics of modes, windows, attempts,
    exclusions and breakdown attribution.

    Parameters
    ----------
    events
        Events as a pandas frame, dataset path or Ibis table.
    steps
        Touchpoints, filter mappings, callables or :class:`Step` objects, in order.
    window
        Maximum time from an attempt's start to its last step (``"7D"``, ``"2h"``...).
    mode
        ``"ordered"`` (default), ``"strict"``, ``"any_order"`` (any ``k`` of the steps,
        each event serving one step) or ``"unordered"`` (steps ``1..k`` in any order).
    exclusions
        :class:`Exclusion` objects or ``(where, from_step, to_step)`` tuples.
    attempts
        ``"every"`` (each step-1 event starts an attempt) or ``"first"``.
    breakdown
        An events or persons column to break down by.
    attribution
        ``"first_touch"`` (default), ``"last_touch"``, ``"per_step"``, ``"step"`` (the
        value at step ``attribution_step``) or ``"all_steps"`` (the funnel per value,
        the value held constant); the last three for event columns only.
    persons
        The persons table, for a persons-column breakdown when ``events`` is not a
        dataset path.
    con
        Optional Ibis connection.
    attribution_step
        The step whose value ``attribution="step"`` takes (1-based).
    breakdown_nulls
        ``"skip"`` (default): first/last touch take the first/last non-null value
        among the attempt's step events; ``"keep"``: the value at the first/furthest
        event even when null.
    ties
        ``"event_id"`` (default): events with the same timestamp are ordered by event
        id; ``"simultaneous"``: they are simultaneous (put in funnel-step order, and an
        excluded event at the same time as a step is not between steps).
    reported
        ``"first_start"`` (default): among a person's attempts reaching the furthest
        step, the one that started first; ``"latest_start"``: the one completing that
        step first, started at the latest step-1 event before that completion.
    partitions
        Run the per-person windows in this many person-hash partitions, one after the
        other (:func:`privdomain.events.person_part`), keep each person's best attempt
        and aggregate them together (a person is in one partition, so the result does
        not depend on it). None picks enough for the DuckDB memory limit
        (:func:`privdomain.backend.partitions_for` on the rows the windows read: every
        event in strict mode, the step and exclusion events otherwise); 1 on other
        engines.

    Returns
    -------
    pandas.DataFrame
        One row per (breakdown value,) step: ``[breakdown]``, ``step`` (1-based),
        ``step_name``, ``persons``, ``conversion_from_previous`` = persons(k) /
        persons(k-1), ``conversion_from_first`` = persons(k) / persons(1), and the time
        from step ``k-1`` to ``k`` in seconds: ``p25_seconds``, ``median_seconds``,
        ``p75_seconds``, ``p90_seconds``, ``mean_seconds`` (NaN at step 1), and
        ``median_seconds_from_start``; and what the funnel filtered, funnel-wide (the
        same on every row): ``persons_with_step1``, the persons with a step-1 attempt,
        and ``excluded_persons``, those of them whose every attempt an exclusion
        dropped (counted nowhere else). Sorted by breakdown value then step; steps no
        one reached have ``persons`` 0. ``attrs`` holds the conventions used:
        ``mode``, ``window``, ``attempts`` (and, for one release, the two counts).

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "oa_push"), (1, "2024-05-01 10:30", "mp_visit"),
    ...     (1, "2024-05-01 11:00", "oa_article_open"), (2, "2024-05-01 10:00", "oa_push"),
    ...     (2, "2024-05-01 10:10", "oa_article_open")])
    >>> funnel(ev, ["oa_push", "oa_article_open"], mode="strict")["persons"].tolist()
    [2, 1]
    >>> funnel(ev, ["oa_push", "oa_article_open"], mode="ordered")["persons"].tolist()
    [2, 2]
    """
    def prepare(part: tuple[int, int] | None = None) -> _Prepared:
        return _prepare(events, steps, window, mode, exclusions, attempts, breakdown, attribution, persons, con,
                        attribution_step=attribution_step, breakdown_nulls=breakdown_nulls, ties=ties,
                        reported=reported, part=part)

    prep = prepare()
    k = _partitions(events, prep.spec, partitions, con)
    if k > 1:
        # each partition's best attempt per person (a few columns per entrant), then one aggregate
        import pyarrow as pa

        best = pa.concat_tables([prepare((i, k)).best.to_pyarrow() for i in range(k)])
        prep = replace(prep, best=ibis.memtable(best))
    raw = _aggregate(prep, con)
    out = _finish(raw, prep.spec, breakdown)
    # what the funnel filtered, counted in its result (funnel-wide totals, the same on every row)
    out["persons_with_step1"] = np.int64(raw.attrs["entered"])
    out["excluded_persons"] = np.int64(raw.attrs["excluded"])
    out.attrs.update({
        "mode": prep.spec.mode,
        "window": str(prep.spec.window),
        "attempts": prep.spec.attempts,
        "attribution": attribution,
        "ties": ties,
        "reported": reported,
        "persons_with_step1": raw.attrs["entered"],
        "excluded_persons": raw.attrs["excluded"],
    })
    return out


def _finish(raw: pd.DataFrame, spec: _Spec, breakdown: str | None) -> pd.DataFrame:
    n = len(spec.steps)
    names = [s.label(i) for i, s in enumerate(spec.steps)]
    steps = pd.DataFrame({"step": np.arange(1, n + 1, dtype="int64"), "step_name": names})
    raw = raw.copy()
    raw["step"] = raw["step"].astype("int64")
    if breakdown is not None:
        values = raw[["value"]].drop_duplicates().reset_index(drop=True)
        grid = values.merge(steps, how="cross")
        out = grid.merge(raw, on=["value", "step"], how="left")
    else:
        out = steps.merge(raw, on="step", how="left")
    out["persons"] = out["persons"].fillna(0).astype("int64")
    group = out.groupby("value", dropna=False, sort=False)["persons"] if breakdown is not None else out["persons"]
    if breakdown is not None:
        prev = group.shift(1)
        first = group.transform("first")
    else:
        prev = out["persons"].shift(1)
        first = pd.Series(out["persons"].iloc[0] if len(out) else 0, index=out.index)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["conversion_from_previous"] = np.where(out["step"] == 1, np.where(out["persons"] > 0, 1.0, np.nan),
                                                   out["persons"] / prev.where(prev > 0))
        out["conversion_from_first"] = out["persons"] / first.where(first > 0)
    time_cols = ["p25_seconds", "median_seconds", "p75_seconds", "p90_seconds", "mean_seconds",
                 "median_seconds_from_start"]
    for c in time_cols:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    cols = ["step", "step_name", "persons", "conversion_from_previous", "conversion_from_first", *time_cols]
    if breakdown is not None:
        out = out.rename(columns={"value": breakdown})
        out = out.sort_values([breakdown, "step"], na_position="last", kind="stable")
        cols = [breakdown, *cols]
    return out[cols].reset_index(drop=True)


def funnel_persons(
    events: TableLike,
    steps: Sequence[Where | Step],
    window: str | pd.Timedelta = "7D",
    mode: str = "ordered",
    *,
    exclusions: Sequence[Exclusion | tuple] = (),
    attempts: str = "every",
    breakdown: str | None = None,
    attribution: str = "first_touch",
    persons: TableLike | None = None,
    con: Any | None = None,
    attribution_step: int | None = None,
    breakdown_nulls: str = "skip",
    ties: str = "event_id",
    reported: str = "first_start",
    converted_to: int | None = None,
    dropped_at: int | None = None,
) -> pd.DataFrame:
    """The reported attempt of every person who entered the funnel (one row each).

    Same arguments and semantics as :func:`funnel`, plus an audience selection.

    Parameters
    ----------
    converted_to
        Keep only the persons who reached step ``converted_to`` (1-based; excluded
        persons never count).
    dropped_at
        Keep only the persons who reached step ``dropped_at - 1`` but not step
        ``dropped_at`` (2..n): the drop-off at that step.

    Returns
    -------
    pandas.DataFrame
        ``person_id``, ``steps_reached`` (0 when every attempt was dropped by an
        exclusion), ``excluded`` (bool), ``start`` (naive Beijing time of the
        attempt's first event), ``ts_1``..``ts_n`` (completion time of each step,
        NaT beyond ``steps_reached``), and with an events-column breakdown
        ``value_1``..``value_n`` per the attribution rule. Sorted by ``person_id``
        (with ``attribution="all_steps"``, one row per person and value, sorted by
        person then value). :func:`funnel_audience` gives just the ids.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(7, "2024-05-01 10:00", "mp_visit"), (7, "2024-05-02 10:00", "pay")])
    >>> funnel_persons(ev, ["mp_visit", "add_to_cart", "pay"])[["person_id", "steps_reached"]].values.tolist()
    [[7, 1]]
    >>> funnel_persons(ev, ["mp_visit", "add_to_cart", "pay"], dropped_at=2)["person_id"].tolist()
    [7]
    """
    prep = _prepare(events, steps, window, mode, exclusions, attempts, breakdown, attribution, persons, con,
                    attribution_step=attribution_step, breakdown_nulls=breakdown_nulls, ties=ties,
                    reported=reported)
    n = len(prep.spec.steps)
    b = prep.best
    if converted_to is not None and not (isinstance(converted_to, (int, np.integer)) and 1 <= converted_to <= n):
        raise UsageError(f"converted_to: need a step number from 1 to {n}, got {converted_to!r}")
    if dropped_at is not None and not (isinstance(dropped_at, (int, np.integer)) and 2 <= dropped_at <= n):
        raise UsageError(f"dropped_at: need a step number from 2 to {n} (a drop-off follows a step), "
                         f"got {dropped_at!r}")
    all_steps = attribution == "all_steps" and prep.spec.event_breakdown
    reached = ibis.ifelse(b._dropped, 0, b._level)
    cols: dict[str, Any] = {
        "person_id": b._person if all_steps else b.person_id,
        "steps_reached": reached,
        "excluded": b._dropped,
        "start": b._startu,
    }
    for k in range(1, n + 1):
        cols[f"ts_{k}"] = ibis.ifelse(b._dropped, ibis.null("int64"), b[f"_u{k}"])
    values = _person_values(b, n, prep.opts, prep.spec.event_breakdown)
    for k, v in values.items():
        cols[f"value_{k}"] = ibis.ifelse(b._dropped | (b._level < k), _null_like(v), v)
    sel = b.select(**cols, _sort=b._bv) if all_steps else b.select(**cols)
    if converted_to is not None:
        sel = sel.filter(sel.steps_reached >= converted_to)
    if dropped_at is not None:
        sel = sel.filter((sel.steps_reached == dropped_at - 1) & ~sel.excluded)
    out = execute(sel.order_by(["person_id", "_sort"] if all_steps else ["person_id"]), con=con)
    out = out.drop(columns="_sort", errors="ignore")
    for c in ["start", *[f"ts_{k}" for k in range(1, n + 1)]]:
        out[c] = _us_to_timestamp(out[c])
    out["steps_reached"] = out["steps_reached"].astype("int64")
    out["excluded"] = out["excluded"].astype(bool)
    return out.reset_index(drop=True)


def funnel_audience(
    events: TableLike,
    steps: Sequence[Where | Step],
    window: str | pd.Timedelta = "7D",
    mode: str = "ordered",
    *,
    converted_to: int | None = None,
    dropped_at: int | None = None,
    **options: Any,
) -> pd.Series:
    """The ids of the persons who converted to (or dropped at) a step: an audience.

    Exactly one of ``converted_to`` and ``dropped_at``; other keyword arguments as
    :func:`funnel`.

    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 11:00", "pay"),
    ...     (2, "2024-05-01 10:00", "mp_visit")])
    >>> funnel_audience(ev, ["mp_visit", "pay"], dropped_at=2).tolist()
    [2]
    """
    if (converted_to is None) == (dropped_at is None):
        raise UsageError("funnel_audience: give exactly one of converted_to= and dropped_at=")
    out = funnel_persons(events, steps, window, mode, converted_to=converted_to, dropped_at=dropped_at, **options)
    ids = out["person_id"].drop_duplicates().reset_index(drop=True)
    ids.name = "person_id"
    return ids


def _us_to_timestamp(s: pd.Series) -> pd.Series:
    """Int64 Beijing wall-clock microseconds -> naive datetime64[ns] (NaT for nulls)."""
    arr = pd.array(pd.to_numeric(s, errors="coerce"), dtype="Int64")
    ts = pd.Series((arr.fillna(0).to_numpy("int64") * 1000).astype("datetime64[ns]"), index=s.index)
    return ts.mask(np.asarray(arr.isna()))


def time_to_convert(
    events: TableLike,
    steps: Sequence[Where | Step],
    window: str | pd.Timedelta = "7D",
    mode: str = "ordered",
    *,
    from_step: int = 1,
    to_step: int | None = None,
    bins: int | Sequence[float] = 10,
    exclusions: Sequence[Exclusion | tuple] = (),
    attempts: str = "every",
    con: Any | None = None,
    ties: str = "event_id",
    reported: str = "first_start",
) -> pd.DataFrame:
    """Histogram of the time from step ``from_step`` to step ``to_step`` (default: the last).

    Over persons whose reported attempt reached ``to_step``; time = completion of
    ``to_step`` minus completion of ``from_step``, in seconds.

    Which attempt is timed: with ``reported="first_start"`` (the default, as in
    :func:`funnel`) the one that started first among those reaching the furthest
    step; with ``"latest_start"`` the rule of PostHog, Amplitude and Mixpanel: the
    first conversion, timed from the latest step-1 event before it. A person who
    visits on Monday, again on Friday, and pays on Saturday takes 5 days under the
    first rule and 1 day under the second.

    Parameters
    ----------
    bins
        Number of equal-width bins from 0 to the window, or explicit bin edges in
        seconds (left-closed ``[lo, hi)`` bins; the last bin also holds its right edge).

    Returns
    -------
    pandas.DataFrame
        ``bin_start_seconds``, ``bin_end_seconds``, ``persons``, ``share``; ``attrs``
        holds the quantiles (``median_seconds``...) and ``persons``.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:30", "pay"),
    ...     (2, "2024-05-01 10:00", "mp_visit"), (2, "2024-05-01 13:00", "pay")])
    >>> h = time_to_convert(ev, ["mp_visit", "pay"], window="4h", bins=4)
    >>> h["persons"].tolist()
    [1, 0, 0, 1]
    """
    prep = _prepare(events, steps, window, mode, exclusions, attempts, None, "first_touch", None, con,
                    ties=ties, reported=reported)
    n = len(prep.spec.steps)
    to_step = n if to_step is None else to_step
    if not (1 <= from_step < to_step <= n):
        raise ValueError(f"from_step/to_step: need 1 <= from_step < to_step <= {n}, got {from_step}, {to_step}")
    if isinstance(bins, (int, np.integer)):
        if bins < 1:
            raise ValueError(f"bins: need at least one bin, got {bins}")
        edges = np.linspace(0.0, prep.spec.window.total_seconds(), int(bins) + 1)
    else:
        edges = np.asarray(list(bins), dtype="float64")
        if len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("bins: explicit edges must be at least two strictly increasing numbers (seconds)")
    b = prep.best.filter((~prep.best._dropped) & (prep.best._level >= to_step))
    d = b.select(dt=_seconds(b[f"_u{to_step}"], b[f"_u{from_step}"]))
    idx = d.dt.bucket(list(map(float, edges)), closed="left", close_extreme=True)
    binned = d.mutate(bin=idx)
    agg = binned.group_by("bin").aggregate(persons=binned.count())
    counts = execute(agg, con=con)
    stats = execute(
        d.aggregate(n=d.count(), mean=d.dt.mean(), **{k: d.dt.quantile(q) for k, q in QUANTILES.items()}), con=con
    ).iloc[0]
    hist = np.zeros(len(edges) - 1, dtype="int64")
    outside = 0
    for bin_, persons in zip(counts["bin"], counts["persons"]):
        if pd.isna(bin_):
            outside += int(persons)
        else:
            hist[int(bin_)] += int(persons)
    total = int(stats["n"] or 0)
    out = pd.DataFrame({
        "bin_start_seconds": edges[:-1],
        "bin_end_seconds": edges[1:],
        "persons": hist,
        "share": hist / total if total else np.full(len(hist), np.nan),
    })
    out.attrs.update({f"{k}_seconds": float(stats[k]) if total else float("nan") for k in QUANTILES})
    out.attrs.update({"mean_seconds": float(stats["mean"]) if total else float("nan"), "persons": total,
                      "outside_bins": outside, "from_step": from_step, "to_step": to_step})
    return out


_Z95 = 1.959963984540054


def wilson_interval(successes: Any, trials: Any, z: float = _Z95) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of a proportion (95% by default); NaN where ``trials`` is 0.

    >>> lo, hi = wilson_interval(8, 10)
    >>> round(float(lo), 3), round(float(hi), 3)
    (0.49, 0.943)
    """
    k = np.asarray(successes, dtype="float64")
    m = np.asarray(trials, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / m
        denom = 1 + z**2 / m
        centre = (p + z**2 / (2 * m)) / denom
        half = z * np.sqrt(p * (1 - p) / m + z**2 / (4 * m**2)) / denom
    lo = np.where(m > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    hi = np.where(m > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return lo, hi


def funnel_trends(
    events: TableLike,
    steps: Sequence[Where | Step],
    window: str | pd.Timedelta = "7D",
    freq: str = "D",
    mode: str = "ordered",
    *,
    to_step: int | None = None,
    exclusions: Sequence[Exclusion | tuple] = (),
    attempts: str = "every",
    ties: str = "event_id",
    con: Any | None = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """Conversion by cohort of entry: day, ISO week (from Monday) or calendar month.

    A person belongs to the cohort of each period in which one of their attempts
    started (dates in the dataset's zone, ``tz``); within a period their attempt is chosen as in
    :func:`funnel` (kept first, then the furthest step, then the earliest start).
    A person whose every attempt in the period was dropped by an exclusion is
    counted in ``excluded``, not in ``entered``.

    Parameters
    ----------
    freq
        ``"D"``, ``"W"`` or ``"M"``.
    to_step
        The step that counts as converted (default: the last).
    tz
        Time zone of the periods (:func:`privdomain.events.timezone_of`): by default the
        dataset's declared zone, Asia/Shanghai for a frame without one.

    Returns
    -------
    pandas.DataFrame
        ``period`` (the period's first day), ``entered``, ``converted``,
        ``conversion``, ``ci_low`` and ``ci_high`` (95% Wilson interval),
        ``excluded``, and ``complete``: whether every entrant of the period had
        the whole window before the data's last event (a later cohort's rate is
        still rising). Sorted by period; periods with no entrant are absent.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 12:00", "pay"),
    ...     (2, "2024-05-01 10:00", "mp_visit"), (3, "2024-05-02 10:00", "mp_visit"),
    ...     (3, "2024-05-02 11:00", "pay")])
    >>> funnel_trends(ev, ["mp_visit", "pay"], window="1D")[["entered", "converted"]].values.tolist()
    [[2, 1], [1, 1]]
    """
    if freq not in FREQS:
        raise UsageError.unknown("freq", freq, list(FREQS))
    prep = _prepare(events, steps, window, mode, exclusions, attempts, None, "first_touch", None, con, ties=ties,
                    every_attempt=True, tz=tz)
    n = len(prep.spec.steps)
    to_step = n if to_step is None else to_step
    if not (isinstance(to_step, (int, np.integer)) and 1 <= to_step <= n):
        raise UsageError(f"to_step: need a step number from 1 to {n}, got {to_step!r}")
    cur = prep.attempts
    day = ibis.date(1970, 1, 1) + (cur._startu // (86_400 * _US)).as_interval("D")
    period = day if freq == "D" else day.truncate(freq)
    cur = cur.mutate(_period=period)
    best = _best(cur, prep.spec, keys=("person_id", "_period"))
    kept = ~best._dropped
    agg = best.group_by("_period").aggregate(
        entered=_count(kept).sum(),
        converted=_count(kept & (best._level >= to_step)).sum(),
        excluded=_count(best._dropped).sum(),
    )
    raw = execute(agg.order_by("_period"), con=con)
    last = execute(prep.last_us.name("last"), con=con) if len(raw) else None
    period = pd.to_datetime(raw["_period"]).astype("datetime64[ns]")
    out = pd.DataFrame({"period": period.to_numpy()})
    for c in ("entered", "converted", "excluded"):
        out[c] = pd.to_numeric(raw[c]).fillna(0).astype("int64").to_numpy()
    out = out[(out["entered"] > 0) | (out["excluded"] > 0)].reset_index(drop=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["conversion"] = np.where(out["entered"] > 0, out["converted"] / out["entered"], np.nan)
    out["ci_low"], out["ci_high"] = wilson_interval(out["converted"], out["entered"])
    ends = {"D": pd.DateOffset(days=1), "W": pd.DateOffset(days=7), "M": pd.DateOffset(months=1)}[freq]
    if len(out):
        last_ts = pd.Timestamp(int(last), unit="us")
        out["complete"] = (out["period"] + ends + prep.spec.window) <= last_ts
    else:
        out["complete"] = pd.Series(dtype=bool)
    out = out[["period", "entered", "converted", "conversion", "ci_low", "ci_high", "excluded", "complete"]]
    out.attrs.update({"freq": freq, "window": str(prep.spec.window), "mode": mode, "to_step": to_step})
    return out
