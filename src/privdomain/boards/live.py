"""Live-stream board (直播看板): exposure, viewers, interactions, visits, orders and GMV per live session.

Every event carrying a ``live_id`` belongs to that session: announcements before it
(warm-up), views, interactions, Mini Program visits and product views from the
stream, and orders/pays placed in it.

Definitions per ``live_id``
---------------------------
* ``exposure`` = persons with any event of the session;
* ``viewers`` / ``views`` = persons with / count of ``live_view`` events;
* ``interacting`` / ``interactions`` = persons with / count of ``live_interact``;
* ``visitors`` / ``mp_visits`` = persons with / count of ``mp_visit`` or
  ``product_view`` events of the session;
* ``buyers`` / ``orders`` / ``gmv`` = persons with / count of / sum of
  ``amount_fen`` / 100 of the session's ``pay`` events; ``conversion_rate`` =
  buyers / viewers;
* with the ``lives`` table (start, end): ``warmup_persons`` (events before the
  start), ``during_persons`` (from start to end inclusive) and ``replay_persons``
  (after the end), with the matching ``*_events`` counts.

Examples
--------
>>> from privdomain.examples import events_frame
>>> from privdomain.boards.live import live_board
>>> ev = events_frame([(1, "2024-05-01 20:05", "live_view", {"live_id": 3}),
...     (1, "2024-05-01 20:20", "pay", {"live_id": 3, "order_id": 1, "amount_fen": 12900, "channel": "live"}),
...     (2, "2024-05-01 20:10", "live_view", {"live_id": 3})])
>>> live_board(ev)[["live_id", "viewers", "buyers", "gmv", "conversion_rate"]].values.tolist()
[[3.0, 2.0, 1.0, 129.0, 0.5]]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ibis
import pandas as pd

from .. import events as events_layer
from ..backend import TableLike, execute
from ..schema import PURCHASE

__all__ = ["VISITS", "live_board", "live_products"]


VISITS = ["mp_visit", "product_view"]


def _lives_frame(events: TableLike, lives: TableLike | None, con: Any | None) -> pd.DataFrame | None:
    from ..io import Dataset

    if lives is None:
        src = events.path if isinstance(events, Dataset) else events
        if isinstance(src, (str, Path)) and Path(src).is_dir() and (Path(src) / "lives.parquet").exists():
            lives = src
        else:
            return None
    lt = events_layer.table(lives, "lives", con=con)
    df = execute(lt.select("live_id", "start", "end"), con=con)
    if df.empty:
        return None
    epoch = pd.Timestamp("1970-01-01")
    return pd.DataFrame({
        "_lid": df["live_id"].astype("int64"),
        "_start": ((pd.to_datetime(df["start"]) - epoch) // pd.Timedelta(microseconds=1)).astype("int64"),
        "_end": ((pd.to_datetime(df["end"]) - epoch) // pd.Timedelta(microseconds=1)).astype("int64"),
    })


def live_board(events: TableLike, lives: TableLike | None = None, *, con: Any | None = None) -> pd.DataFrame:
    """One row per live session: reach, viewing, interaction, visits, orders, GMV and phases.

    Parameters
    ----------
    events
        Events as a pandas frame, dataset path or Ibis table.
    lives
        The lives table (``live_id``, ``start``, ``end``); read from the dataset when
        ``events`` is a dataset path. Without it the phase columns are absent.

    Returns
    -------
    pandas.DataFrame
        ``live_id``, ``exposure``, ``viewers``, ``views``, ``interacting``,
        ``interactions``, ``visitors``, ``mp_visits``, ``buyers``, ``orders``, ``gmv``,
        ``conversion_rate`` and, with the lives table, ``warmup_persons``,
        ``during_persons``, ``replay_persons``, ``warmup_events``, ``during_events``,
        ``replay_events``; sorted by ``live_id``.

    Examples
    --------
    >>> import pandas as pd
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 12:00", "sms", {"live_id": 1}),
    ...     (1, "2024-05-01 20:05", "live_view", {"live_id": 1})])
    >>> lives = pd.DataFrame({"live_id": [1], "start": pd.to_datetime(["2024-05-01 20:00"]).tz_localize("Asia/Shanghai"),
    ...     "end": pd.to_datetime(["2024-05-01 22:00"]).tz_localize("Asia/Shanghai")})
    >>> live_board(ev, lives)[["warmup_persons", "during_persons", "replay_persons"]].values.tolist()
    [[1, 1, 0]]
    """
    t = events_layer.read(events, con=con, columns=("person_id", "touchpoint", "live_id", "amount_fen"), micros=True)
    e = t.filter(t.live_id.notnull())
    phases = _lives_frame(events, lives, con)
    if phases is not None:
        lt = ibis.memtable(phases)
        e = e.left_join(lt, e.live_id == lt._lid).drop("_lid")
    tp = e.touchpoint
    is_pay = tp == PURCHASE
    agg: dict[str, Any] = dict(
        exposure=e.person_id.nunique(),
        viewers=e.person_id.nunique(where=tp == "live_view"),
        views=(tp == "live_view").cast("int64").sum(),
        interacting=e.person_id.nunique(where=tp == "live_interact"),
        interactions=(tp == "live_interact").cast("int64").sum(),
        visitors=e.person_id.nunique(where=tp.isin(VISITS)),
        mp_visits=tp.isin(VISITS).cast("int64").sum(),
        buyers=e.person_id.nunique(where=is_pay),
        orders=is_pay.cast("int64").sum(),
        _gmv_fen=ibis.ifelse(is_pay, e.amount_fen, 0).sum(),
    )
    if phases is not None:
        before, after = e._us < e._start, e._us > e._end
        during = ~before & ~after
        agg.update(
            warmup_persons=e.person_id.nunique(where=before), during_persons=e.person_id.nunique(where=during),
            replay_persons=e.person_id.nunique(where=after), warmup_events=before.cast("int64").sum(),
            during_events=during.cast("int64").sum(), replay_events=after.cast("int64").sum(),
        )
    out = execute(e.group_by("live_id").aggregate(**agg), con=con)
    counts = [c for c in out.columns if c not in ("live_id", "_gmv_fen")]
    for c in counts:
        out[c] = pd.to_numeric(out[c]).fillna(0).astype("int64")
    out["live_id"] = out["live_id"].astype("int64")
    out["gmv"] = pd.to_numeric(out["_gmv_fen"]).fillna(0).astype("float64") / 100
    out["conversion_rate"] = (out["buyers"] / out["viewers"].where(out["viewers"] > 0)).astype("float64")
    cols = ["live_id", "exposure", "viewers", "views", "interacting", "interactions", "visitors", "mp_visits",
            "buyers", "orders", "gmv", "conversion_rate"]
    if phases is not None:
        cols += ["warmup_persons", "during_persons", "replay_persons", "warmup_events", "during_events",
                 "replay_events"]
    return out[cols].sort_values("live_id").reset_index(drop=True)


def live_products(events: TableLike, *, con: Any | None = None) -> pd.DataFrame:
    """Product click and order rankings per live session.

    ``clicks`` = ``product_view`` events of the session for the product, ``orders`` =
    its ``pay`` events, ``gmv`` their amount in yuan. ``click_rank`` ranks by clicks,
    ``order_rank`` by orders then GMV (1 = first; ties by product id).

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 20:05", "product_view", {"live_id": 1, "product_id": 8}),
    ...     (1, "2024-05-01 20:06", "pay", {"live_id": 1, "product_id": 9, "order_id": 1, "amount_fen": 100})])
    >>> live_products(ev)[["product_id", "clicks", "orders", "click_rank", "order_rank"]].values.tolist()
    [[8, 1, 0, 1, 2], [9, 0, 1, 2, 1]]
    """
    t = events_layer.read(events, con=con)
    e = t.filter(t.live_id.notnull() & t.product_id.notnull() & t.touchpoint.isin(["product_view", PURCHASE]))
    is_pay = e.touchpoint == PURCHASE
    agg = e.group_by(["live_id", "product_id"]).aggregate(
        clicks=(e.touchpoint == "product_view").cast("int64").sum(), orders=is_pay.cast("int64").sum(),
        _gmv_fen=ibis.ifelse(is_pay, e.amount_fen, 0).sum())
    cw = ibis.window(group_by="live_id", order_by=[agg.clicks.desc(), agg.product_id.asc()])
    ow = ibis.window(group_by="live_id", order_by=[agg.orders.desc(), agg._gmv_fen.desc(), agg.product_id.asc()])
    ranked = agg.mutate(click_rank=ibis.row_number().over(cw) + 1, order_rank=ibis.row_number().over(ow) + 1)
    out = execute(ranked, con=con)
    out["gmv"] = pd.to_numeric(out["_gmv_fen"]).fillna(0).astype("float64") / 100
    out = out.astype({"live_id": "int64", "product_id": "int64", "clicks": "int64", "orders": "int64",
                      "click_rank": "int64", "order_rank": "int64"})
    out = out[["live_id", "product_id", "clicks", "orders", "gmv", "click_rank", "order_rank"]]
    return out.sort_values(["live_id", "product_id"]).reset_index(drop=True)
