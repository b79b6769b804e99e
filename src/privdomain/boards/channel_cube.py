"""Channel cube (渠道魔方): orders, buyers and GMV each channel touched within 1/7/30 days.

Definitions
-----------
* A **touch** is any event that is not an order, pay or refund
  (:data:`privdomain.schema.ORDER_TOUCHPOINTS`); its channel is the event's
  ``channel`` column (ad surfaces, official_account, group, guide, live, store,
  qr_code, sms, mini_program, fission...).
* A purchase (a ``pay`` event) is **credited** to channel ``C`` at window ``d`` days
  when the buyer had a touch in ``C`` at most ``d`` days before it (``0 <= pay.ts -
  touch.ts <= d``). Credit is not exclusive: one pay counts for every channel
  touched in the window, so channels' GMV may sum to more than the shop's.
* ``orders`` = credited pays, ``buyers`` = their distinct persons, ``gmv`` = the
  sum of their ``amount_fen`` / 100 (yuan).
* **Who converted**, per buyer of a (channel, window) cell, judged at the buyer's
  first credited pay ``P`` in that cell, and ``T`` = the buyer's last touch in the
  channel before ``P`` (the touch that credits it):

  - ``repeat_buyers``: the person had paid before ``P`` (any channel);
  - ``first_visit_buyers``: no earlier pay, and the person's first event of all is
    on the Beijing calendar day of ``T`` (they came on that touch's day);
  - ``returning_visitor_buyers``: no earlier pay, and the person had been seen on
    an earlier day than ``T``'s.

  The three add up to ``buyers``.

Examples
--------
>>> from privdomain.examples import events_frame
>>> from privdomain.boards.channel_cube import channel_cube
>>> ev = events_frame([(1, "2024-05-01 10:00", "sms"),
...     (1, "2024-05-03 10:00", "pay", {"order_id": 1, "amount_fen": 5000})])
>>> channel_cube(ev, windows=(1, 7))[["channel", "window_days", "orders", "gmv"]].values.tolist()
[['sms', 1, 0, 0.0], ['sms', 7, 1, 50.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import pandas as pd

from .. import events as events_layer
from ..backend import TableLike, execute
from ..contract import Duration, events_input, window_days
from ..schema import ORDER_TOUCHPOINTS, PURCHASE

__all__ = ["COLUMNS", "channel_cube", "channel_products", "order_channels", "orders_by_buyer_type", "guide_table"]


_DAY_US = 86400 * 1_000_000
COLUMNS = ["channel", "window_days", "orders", "buyers", "gmv", "first_visit_buyers",
           "returning_visitor_buyers", "repeat_buyers"]


def _windows(windows: Sequence[Any]) -> list[int]:
    ws = sorted(set(window_days(windows)))
    if not ws or ws[0] < 0:
        raise ValueError(f"windows: need one or more non-negative numbers of days, got {list(windows)}")
    return ws


def _credited(events: TableLike, windows: list[int], con: Any | None, tz: str | None = None,
              part: tuple[int, int] | None = None):
    """Ibis table: one row per (pay, channel touched within the largest window).

    ``part=(i, k)``: only the persons of person-hash partition ``i`` of ``k``."""
    t = events_layer.read(events, con=con, columns=("person_id", "event_id", "touchpoint", "channel", "amount_fen"),
                          micros=True, needs=(PURCHASE,), tz=tz)
    if part is not None and part[1] > 1:
        t = t.filter(events_layer.person_part(t.person_id, *part))
    touches = t.filter(~t.touchpoint.isin(ORDER_TOUCHPOINTS))
    touches = touches.select(_tp=touches.person_id, channel=touches.channel, _tu=touches._us)
    pays = t.filter(t.touchpoint == PURCHASE)
    pw = ibis.window(group_by="person_id", order_by=["_us", "event_id"])
    pays = pays.select("person_id", "event_id", "_us", "amount_fen", "product_id",
                       order_channel=pays.channel).mutate(
        _prank=ibis.row_number().over(pw))
    firsts = t.group_by("person_id").aggregate(_first_us=t._us.min())
    firsts = firsts.select(_fp=firsts.person_id, _first_us=firsts._first_us)
    span = max(windows) * _DAY_US
    # only the buyers' touches between their first pay's window and their last pay can credit
    # one: cut the touches to those first (a join against one row per buyer, which streams the
    # events), so the range join below holds a small table instead of every touch (on 10M
    # persons it spilled tens of GB)
    reach = pays.group_by("person_id").aggregate(_lo=pays._us.min() - span, _hi=pays._us.max())
    reach = reach.select(_rp=reach.person_id, _lo=reach._lo, _hi=reach._hi)
    touches = touches.join(reach, [touches._tp == reach._rp, touches._tu >= reach._lo, touches._tu <= reach._hi])
    touches = touches.select("_tp", "channel", "_tu")
    j = pays.join(touches, [pays.person_id == touches._tp, touches._tu <= pays._us, touches._tu >= pays._us - span])
    cred = j.group_by(["person_id", "event_id", "_us", "amount_fen", "product_id", "order_channel", "_prank",
                       "channel"]).aggregate(
        _last_touch=j._tu.max())
    cred = cred.join(firsts, cred.person_id == firsts._fp).drop("_fp")
    return cred


def _cube_cells(cred: Any, ws: list[int], cells: list[str], con: Any | None) -> pd.DataFrame:
    """One row per cell: for each window the credited orders, GMV (fen) and buyers by type."""
    gap = cred._us - cred._last_touch
    # one pass over the credited rows: per (cell, buyer) and window, the buyer's orders, GMV and
    # first credited pay (the smallest pay rank) with the touch that credits it
    per: dict[str, Any] = {"_first_us": cred._first_us.min()}
    for d in ws:
        f = gap <= d * _DAY_US
        per[f"_o{d}"] = f.cast("int64").sum()
        per[f"_g{d}"] = cred.amount_fen.sum(where=f)
        per[f"_r{d}"] = cred._prank.min(where=f)
        per[f"_t{d}"] = cred._last_touch.argmin(cred._prank, where=f)
    pb = cred.group_by([*cells, "person_id"]).aggregate(**per)
    agg: dict[str, Any] = {}
    for d in ws:
        bought = pb[f"_r{d}"].notnull()
        repeat = bought & (pb[f"_r{d}"] > 0)
        fresh = bought & (pb[f"_r{d}"] == 0)
        same_day = (pb._first_us // _DAY_US) == (pb[f"_t{d}"] // _DAY_US)
        agg.update({
            f"orders_{d}": pb[f"_o{d}"].sum(), f"gmv_{d}": pb[f"_g{d}"].sum(),
            f"buyers_{d}": bought.cast("int64").sum(), f"repeat_{d}": repeat.cast("int64").sum(),
            f"first_{d}": (fresh & same_day).cast("int64").sum(),
            f"returning_{d}": (fresh & ~same_day).cast("int64").sum(),
        })
    return execute(pb.group_by(cells).aggregate(**agg), con=con)


def channel_cube(
    events: TableLike,
    windows: Sequence[Duration | int] = ("1D", "7D", "30D"),
    *,
    by_order_channel: bool = False,
    con: Any | None = None,
    tz: str | None = None,
    partitions: int | None = None,
) -> pd.DataFrame:
    """Orders, buyers, GMV and who converted, per channel and attribution window.

    Parameters
    ----------
    events
        Events as a pandas frame, dataset path or Ibis table.
    windows
        Windows between a touch and a pay (default ``("1D", "7D", "30D")``): durations
        in whole days or bare numbers of days (the ``window_days`` column's values).
    by_order_channel
        Also split by where the order happened (the pay event's ``channel``:
        mini_program, live, store, guide...): an ``order_channel`` column after
        ``channel``; then only cells with a credited pay are listed.
    tz
        Time zone of the days that tell first-visit from returning buyers
        (:func:`privdomain.events.timezone_of`): by default the dataset's declared
        zone, Asia/Shanghai for a frame without one.
    partitions
        Credit the pays in this many person-hash partitions, one after the other
        (:func:`privdomain.events.person_part`), and add up the cells (every count is
        per person, and a person is in one partition, so the result does not depend on
        it); None picks enough for the DuckDB memory limit
        (:func:`privdomain.events.person_partitions`), 1 on other engines.

    Returns
    -------
    pandas.DataFrame
        ``channel``, ``window_days``, ``orders``, ``buyers``, ``gmv`` (yuan),
        ``first_visit_buyers``, ``returning_visitor_buyers``, ``repeat_buyers``;
        one row per channel with any touch and per window (zeros where nothing was
        credited), sorted by channel and window. See the module docstring.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "store_visit"),
    ...     (1, "2024-05-01 10:30", "pay", {"order_id": 1, "amount_fen": 990}),
    ...     (1, "2024-05-02 09:00", "store_visit"),
    ...     (1, "2024-05-02 09:30", "pay", {"order_id": 2, "amount_fen": 990})])
    >>> channel_cube(ev, windows=[1])[["buyers", "first_visit_buyers", "repeat_buyers"]].values.tolist()
    [[1, 1, 0]]
    """
    ws = _windows(windows)
    cells = ["channel", "order_channel"] if by_order_channel else ["channel"]
    k = events_layer.person_partitions(events, partitions, con=con)
    wide = events_layer.sum_over_partitions(lambda part: _cube_cells(_credited(events, ws, con, tz, part), ws, cells, con),
                                            k, cells, min_count=1)
    long = []
    for d in ws:
        part = wide[cells].copy()
        part["window_days"] = d
        part["orders"] = wide[f"orders_{d}"]
        part["buyers"] = wide[f"buyers_{d}"]
        part["_gmv_fen"] = wide[f"gmv_{d}"]
        part["first_visit_buyers"] = wide[f"first_{d}"]
        part["returning_visitor_buyers"] = wide[f"returning_{d}"]
        part["repeat_buyers"] = wide[f"repeat_{d}"]
        long.append(part)
    credited = pd.concat(long, ignore_index=True)
    keys = [*cells, "window_days"]
    if by_order_channel:
        credited = credited[pd.to_numeric(credited["orders"]).fillna(0) > 0]
    if by_order_channel:
        out = credited
    else:
        t = events_layer.read(events, con=con, micros=True)
        channels = execute(t.filter(~t.touchpoint.isin(ORDER_TOUCHPOINTS)).select("channel").distinct(), con=con)
        grid = channels.merge(pd.DataFrame({"window_days": ws}), how="cross")
        out = grid.merge(credited, on=keys, how="left")
    for col in ("orders", "buyers", "first_visit_buyers", "returning_visitor_buyers", "repeat_buyers"):
        out[col] = pd.to_numeric(out[col]).fillna(0).astype("int64")
    out["gmv"] = pd.to_numeric(out["_gmv_fen"]).fillna(0).astype("float64") / 100
    cols = COLUMNS[:1] + ["order_channel"] + COLUMNS[1:] if by_order_channel else COLUMNS
    out = out[cols].sort_values(keys, kind="stable").reset_index(drop=True)
    out.attrs.update({"windows": ws})
    return out


def channel_products(
    events: TableLike,
    window: int = 7,
    *,
    top: int = 5,
    con: Any | None = None,
    partitions: int | None = None,
) -> pd.DataFrame:
    """The products each channel sells: the top products by GMV among its credited pays.

    ``partitions``: as in :func:`channel_cube`.

    Returns
    -------
    pandas.DataFrame
        ``channel``, ``rank`` (1 = most GMV; ties by product id), ``product_id``,
        ``orders``, ``buyers``, ``gmv``; at most ``top`` rows per channel.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "sms"),
    ...     (1, "2024-05-01 11:00", "pay", {"order_id": 1, "amount_fen": 500, "product_id": 3}),
    ...     (1, "2024-05-01 12:00", "pay", {"order_id": 2, "amount_fen": 900, "product_id": 4})])
    >>> channel_products(ev)[["channel", "rank", "product_id", "gmv"]].values.tolist()
    [['sms', 1, 4, 9.0], ['sms', 2, 3, 5.0]]
    """
    if top < 1:
        raise ValueError(f"top: must be at least 1, got {top}")
    ws = _windows([window])
    k = events_layer.person_partitions(events, partitions, con=con)

    def products(part: tuple[int, int]) -> pd.DataFrame:
        cred = _credited(events, ws, con, part=part)
        c = cred.filter(cred._us - cred._last_touch <= ws[0] * _DAY_US)
        return execute(c.group_by(["channel", "product_id"]).aggregate(
            orders=c.count(), buyers=c.person_id.nunique(), _gmv_fen=c.amount_fen.sum()), con=con)

    # buyers are distinct persons, and a person is in one partition: the counts add up
    agg = events_layer.sum_over_partitions(products, k, ["channel", "product_id"], min_count=1)
    agg["gmv"] = pd.to_numeric(agg["_gmv_fen"]).fillna(0).astype("float64") / 100
    # rank within each channel: most GMV first, ties by product id
    agg = agg.sort_values(["channel", "_gmv_fen", "product_id"], ascending=[True, False, True], kind="stable",
                          na_position="last")
    agg["rank"] = agg.groupby("channel").cumcount() + 1
    out = agg[agg["rank"] <= top].copy()
    out = out.astype({"rank": "int64", "orders": "int64", "buyers": "int64"})
    out = out[["channel", "rank", "product_id", "orders", "buyers", "gmv"]]
    return out.sort_values(["channel", "rank"], kind="stable").reset_index(drop=True)


@events_input
def order_channels(events: Any, *, con: Any | None = None) -> pd.DataFrame:
    """Where the orders happened: paid orders and GMV by the channel of the ``pay`` event.

    ``channel``, ``orders``, ``gmv`` (yuan), ``order_share`` (下单渠道占比 = orders of the
    channel / all paid orders), ``gmv_share``; sorted by orders, largest first.

    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "pay", {"order_id": 1, "amount_fen": 1000, "channel": "guide"}),
    ...     (2, "2024-05-01 11:00", "pay", {"order_id": 2, "amount_fen": 3000})])
    >>> order_channels(ev)[["channel", "orders", "order_share"]].values.tolist()
    [['guide', 1, 0.5], ['mini_program', 1, 0.5]]
    """
    t = events_layer.read(events, con=con)
    pay = t.filter(t.touchpoint == PURCHASE)
    out = execute(pay.group_by("channel").agg(orders=pay.count(), fen=pay.amount_fen.sum()), con=con)
    out = pd.DataFrame({"channel": out["channel"].astype(object), "orders": out["orders"].astype("int64"),
                        "gmv": out["fen"].fillna(0).astype("float64") / 100})
    out["order_share"] = out["orders"] / out["orders"].sum()
    out["gmv_share"] = out["gmv"] / out["gmv"].sum()
    return out.sort_values(["orders", "channel"], ascending=[False, True]).reset_index(drop=True)


@events_input
def orders_by_buyer_type(events: Any, *, con: Any | None = None) -> pd.DataFrame:
    """Paid orders and GMV per order channel, split into first and repeat purchases.

    A pay event is a **first purchase** (首购) when it is the person's earliest pay
    (ties: lowest event id), else a **repeat purchase** (复购). Returns ``channel``,
    ``buyer_type`` (``first`` / ``repeat``), ``orders``, ``gmv`` (yuan).

    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "pay", {"order_id": 1, "amount_fen": 1000}),
    ...     (1, "2024-05-09 10:00", "pay", {"order_id": 2, "amount_fen": 500, "channel": "guide"})])
    >>> orders_by_buyer_type(ev)[["channel", "buyer_type", "orders"]].values.tolist()
    [['guide', 'repeat', 1], ['mini_program', 'first', 1]]
    """
    t = events_layer.read(events, con=con)
    pay = t.filter(t.touchpoint == PURCHASE)
    w = ibis.window(group_by=pay.person_id, order_by=[pay.ts, pay.event_id])
    pay = pay.mutate(buyer_type=ibis.ifelse(ibis.row_number().over(w) == 0, "first", "repeat"))
    out = execute(pay.group_by(["channel", "buyer_type"]).agg(orders=pay.count(), fen=pay.amount_fen.sum()), con=con)
    out = pd.DataFrame({"channel": out["channel"].astype(object), "buyer_type": out["buyer_type"].astype(object),
                        "orders": out["orders"].astype("int64"), "gmv": out["fen"].fillna(0).astype(float) / 100})
    return out.sort_values(["channel", "buyer_type"]).reset_index(drop=True)


@events_input
def guide_table(events: Any, *, con: Any | None = None) -> pd.DataFrame:
    """Which guides bring the orders: per ``guide_id`` the customers they added (``wecom_add``
    events), the paid orders placed through them (pay events of channel ``guide``) and
    ``orders_per_added`` = orders / added customers. Empty when the events have no ``guide_id``.

    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "wecom_add", {"guide_id": 3}),
    ...     (1, "2024-05-02 10:00", "pay", {"order_id": 1, "amount_fen": 100, "channel": "guide", "guide_id": 3})])
    >>> guide_table(ev)[["guide_id", "added", "orders"]].values.tolist()
    [[3, 1, 1]]
    """
    t = events_layer.read(events, con=con)
    if "guide_id" not in t.columns:
        return pd.DataFrame(columns=["guide_id", "added", "orders", "orders_per_added"])
    t = t.filter(t.guide_id.notnull())
    adds = execute(t.filter(t.touchpoint == "wecom_add").group_by("guide_id").agg(added=t.person_id.nunique()),
                   con=con)
    pays = t.filter((t.touchpoint == PURCHASE) & (t.channel == "guide"))
    orders = execute(pays.group_by("guide_id").agg(orders=pays.count()), con=con)
    out = adds.merge(orders, on="guide_id", how="outer").fillna(0)
    out = out.astype({"guide_id": "int64", "added": "int64", "orders": "int64"})
    out["orders_per_added"] = out["orders"] / out["added"].where(out["added"] > 0)
    return out.sort_values(["orders", "guide_id"], ascending=[False, True]).reset_index(drop=True)
