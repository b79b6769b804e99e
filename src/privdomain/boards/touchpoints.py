"""Touchpoint volumes and flows (Youshu's touchpoint map, 触点地图).

Examples
--------
>>> import pandas as pd
>>> from privdomain.boards.touchpoints import daily_volume
>>> ev = pd.DataFrame({"person_id": [1, 1, 2],
...     "touchpoint": ["mp_visit", "mp_visit", "pay"],
...     "ts": pd.to_datetime(["2024-05-01 09:00", "2024-05-01 10:00", "2024-05-02 08:00"]).tz_localize("Asia/Shanghai")})
>>> daily_volume(ev)[["day", "touchpoint", "events", "persons"]].values.tolist()[0][1:]
['mp_visit', 2, 1]
"""

from __future__ import annotations

from typing import Any

import ibis
import pandas as pd

from .. import events as events_layer
from ..backend import TableLike, execute, require_columns

__all__ = ["daily_volume", "MP_ENTRY", "touchpoint_flows", "touchpoint_nodes"]


def daily_volume(events: TableLike, *, con: Any | None = None, tz: str | None = None) -> pd.DataFrame:
    """Events and distinct persons per touchpoint per calendar day of the dataset's zone (Beijing by default).

    Parameters
    ----------
    events
        Events as a pandas frame, dataset path or Ibis table (needs ``ts``,
        ``person_id``, ``touchpoint``).
    con
        Optional Ibis connection to run on.
    tz
        Time zone of the days (:func:`privdomain.events.timezone_of`): by default the
        dataset's declared zone, Asia/Shanghai for a frame without one.

    Returns
    -------
    pandas.DataFrame
        ``day`` (date), ``touchpoint``, ``events``, ``persons``; sorted by day, touchpoint.
    """
    t = events_layer.read(events, con=con, tz=tz)
    expr = (
        t.group_by(day=t.ts.date(), touchpoint=t.touchpoint)
        .agg(events=t.count(), persons=t.person_id.nunique())
        .order_by(["day", "touchpoint"])
    )
    out = execute(expr, con=con)
    out["day"] = pd.to_datetime(out["day"]).dt.date
    return out.astype({"events": "int64", "persons": "int64"}).reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Touchpoint map (触点地图): flows between touchpoints and per-node rates
# --------------------------------------------------------------------------------------

ENTRY, EXIT = "(entry)", "(exit)"
#: Touchpoints that mean "went on into the Mini Program".
MP_ENTRY = ("mp_click", "mp_visit")


def _node_column(t, level: str):
    if level not in ("touchpoint", "channel"):
        raise ValueError(f"level: must be 'touchpoint' or 'channel', got {level!r}")
    require_columns(t, [level])
    return t[level]


def _part_of(t: ibis.Table, part: tuple[int, int]) -> ibis.Table:
    """The events of person-hash partition ``part = (i, k)`` (all of them when ``k`` is 1)."""
    return t.filter(events_layer.person_part(t.person_id, *part)) if part[1] > 1 else t


def touchpoint_flows(
    events: TableLike,
    gap: str | pd.Timedelta = "30min",
    *,
    level: str = "touchpoint",
    entry_exit: bool = False,
    con: Any | None = None,
    partitions: int | None = None,
) -> pd.DataFrame:
    """Flows between touchpoints: transitions from one event to the person's next one.

    Events of a person are ordered by ``(ts, event_id)``. Consecutive events form a
    transition ``from -> to`` when the second comes at most ``gap`` after the first
    (the same session); a longer pause ends the session. With ``entry_exit`` each
    session also contributes ``(entry) -> first node`` and ``last node -> (exit)``.

    Parameters
    ----------
    events
        Events as a pandas frame, dataset path or Ibis table.
    gap
        Session gap (``"30min"``, ``"1D"``...).
    level
        ``"touchpoint"`` or ``"channel"`` nodes.
    entry_exit
        Add session entry and exit flows (for a Sankey figure).
    partitions
        Run the per-person windows in this many person-hash partitions, one after the
        other, and add up their counts (:func:`privdomain.events.sum_over_partitions`);
        None picks enough for the DuckDB memory limit
        (:func:`privdomain.events.person_partitions`). The result does not depend on it.

    Returns
    -------
    pandas.DataFrame
        ``source``, ``target``, ``transitions`` (count), ``persons`` (distinct persons
        making that move), ``share_of_source`` = transitions / all transitions out of
        ``source``; sorted by transitions descending, then source, target.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "oa_article_open"), (1, "2024-05-01 10:01", "mp_click"),
    ...     (1, "2024-05-01 10:02", "mp_visit"), (1, "2024-05-03 10:00", "mp_visit")])
    >>> touchpoint_flows(ev)[["source", "target", "transitions"]].values.tolist()
    [['mp_click', 'mp_visit', 1], ['oa_article_open', 'mp_click', 1]]
    """
    from .funnel import parse_window

    g = parse_window(gap)
    g_us = int(g / pd.Timedelta(microseconds=1))

    k = events_layer.person_partitions(events, partitions, con=con)
    t0 = events_layer.read(events, con=con, micros=True)
    _node_column(t0, level)
    out = events_layer.sum_over_partitions(
        lambda part: execute(_flow_counts(_part_of(t0, part), level, g_us, entry_exit), con=con), k, ["source", "target"])
    out = out.astype({"transitions": "int64", "persons": "int64"})
    out["share_of_source"] = out["transitions"] / out.groupby("source")["transitions"].transform("sum")
    out = out.sort_values(["transitions", "source", "target"], ascending=[False, True, True], kind="stable")
    out.attrs.update({"gap": str(g), "level": level, "partitions": k})
    return out.reset_index(drop=True)


def _flow_counts(t: Any, level: str, g_us: int, entry_exit: bool) -> Any:
    """Ibis: transitions and distinct persons per (source, target) of the persons in ``t``."""
    node = _node_column(t, level).cast("string")
    w = ibis.window(group_by="person_id", order_by=["_us", "event_id"])
    rel = t.select(person_id=t.person_id, _us=t._us, node=node, event_id=t.event_id)
    rel = rel.mutate(_nn=rel.node.lead().over(w), _nu=rel._us.lead().over(w), _pu=rel._us.lag().over(w))
    moves = rel.filter(rel._nu.notnull() & (rel._nu - rel._us <= g_us))
    parts = [moves.select(person_id=moves.person_id, source=moves.node, target=moves._nn)]
    if entry_exit:
        starts = rel.filter(rel._pu.isnull() | (rel._us - rel._pu > g_us))
        ends = rel.filter(rel._nu.isnull() | (rel._nu - rel._us > g_us))
        parts.append(starts.select(person_id=starts.person_id, source=ibis.literal(ENTRY), target=starts.node))
        parts.append(ends.select(person_id=ends.person_id, source=ends.node, target=ibis.literal(EXIT)))
    flows = ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]
    return flows.group_by(["source", "target"]).aggregate(transitions=flows.count(),
                                                          persons=flows.person_id.nunique())


def touchpoint_nodes(
    events: TableLike,
    window: str | pd.Timedelta = "7D",
    *,
    level: str = "touchpoint",
    through: tuple[str, ...] = MP_ENTRY,
    con: Any | None = None,
    partitions: int | None = None,
) -> pd.DataFrame:
    """Per-node volume, click-through rate and conversion rate.

    For each node (touchpoint or channel): ``events``, ``persons``;
    ``click_through_rate`` = share of the node's persons who had a later event in
    ``through`` (default: a Mini Program click or visit) at most ``window`` after one
    of their touches of the node; ``conversion_rate`` = share who had a later
    purchase (``pay``) within ``window`` after a touch. "Later" follows
    ``(ts, event_id)`` order, so a node's own event never counts for itself.

    Parameters
    ----------
    partitions
        As in :func:`touchpoint_flows` (:func:`privdomain.events.sum_over_partitions`).

    Returns
    -------
    pandas.DataFrame
        ``node``, ``events``, ``persons``, ``clicked_through``, ``converted``,
        ``click_through_rate``, ``conversion_rate``; sorted by events descending.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "sms"), (1, "2024-05-01 10:05", "mp_visit"),
    ...     (1, "2024-05-01 10:09", "pay", {"order_id": 1, "amount_fen": 990}), (2, "2024-05-01 10:00", "sms")])
    >>> touchpoint_nodes(ev).set_index("node").loc["sms", ["persons", "click_through_rate", "conversion_rate"]].tolist()
    [2.0, 0.5, 0.5]
    """
    from .funnel import parse_window

    w = parse_window(window)
    w_us = int(w / pd.Timedelta(microseconds=1))

    k = events_layer.person_partitions(events, partitions, con=con)
    t0 = events_layer.read(events, con=con, micros=True)
    _node_column(t0, level)
    cols = ["events", "persons", "clicked_through", "converted"]

    def counts(part: tuple[int, int]) -> pd.DataFrame:
        out = execute(_node_counts(_part_of(t0, part), level, through, w_us), con=con)
        return out.astype({c: "float64" for c in cols}).fillna({c: 0 for c in cols}).astype({c: "int64" for c in cols})

    out = events_layer.sum_over_partitions(counts, k, ["node"])
    out["click_through_rate"] = out["clicked_through"] / out["persons"]
    out["conversion_rate"] = out["converted"] / out["persons"]
    out = out.sort_values(["events", "node"], ascending=[False, True], kind="stable").reset_index(drop=True)
    out.attrs.update({"window": str(w), "level": level, "through": list(through), "partitions": k})
    return out


def _node_counts(t: Any, level: str, through: tuple[str, ...], w_us: int) -> Any:
    """Ibis: per node events, distinct persons, clicked-through and converted persons of the persons in ``t``."""
    from ..schema import PURCHASE

    node = _node_column(t, level).cast("string")
    fw = ibis.window(group_by="person_id", order_by=["_us", "event_id"], rows=(1, None))
    is_through = t.touchpoint.isin(list(through))
    is_pay = t.touchpoint == PURCHASE
    rel = t.select(person_id=t.person_id, node=node,
                   _nt=ibis.ifelse(is_through, t._us, None).min().over(fw) - t._us,
                   _np=ibis.ifelse(is_pay, t._us, None).min().over(fw) - t._us)
    ct = (rel._nt <= w_us).fill_null(False)
    cv = (rel._np <= w_us).fill_null(False)
    return rel.group_by("node").aggregate(
        events=rel.count(), persons=rel.person_id.nunique(),
        clicked_through=rel.person_id.nunique(where=ct), converted=rel.person_id.nunique(where=cv),
    )
