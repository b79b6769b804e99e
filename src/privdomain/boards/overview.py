"""The overview board (数据概览): the headline numbers of an events table.

The first cell of every report (:mod:`privdomain.reports`) and the first thing to
look at in a new dataset: events, persons, buyers, orders, GMV and the days covered.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import events as events_layer
from ..backend import execute
from ..contract import events_input
from ..schema import PURCHASE

__all__ = ["overview"]


@events_input
def overview(events: Any, *, con: Any | None = None) -> dict[str, Any]:
    """Headline numbers of an events table: the first cell of every report.

    * ``events``: rows; ``persons``: distinct persons with any event;
    * ``buyers``: persons with a ``pay`` event; ``orders``: distinct paid ``order_id``;
    * ``gmv_yuan`` (成交额 GMV) = sum(``amount_fen`` of ``pay``) / 100;
    * ``buyer_rate`` (购买转化率 buyer conversion rate) = buyers / persons;
    * ``aov_yuan`` (客单价 average order value) = GMV / orders;
    * ``orders_per_buyer`` = orders / buyers; ``first_day``, ``last_day``, ``days``.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"),
    ...     (1, "2024-05-01 10:05", "pay", {"order_id": 1, "amount_fen": 9900}),
    ...     (2, "2024-05-03 09:00", "mp_visit")])
    >>> o = overview(ev)
    >>> o["buyers"], o["gmv_yuan"], o["buyer_rate"], o["days"]
    (1, 99.0, 0.5, 3)
    """
    t = events_layer.read(events, con=con, columns=("person_id", "touchpoint", "order_id", "amount_fen"))
    pay = t.touchpoint == PURCHASE
    expr = t.aggregate(events=t.count(), persons=t.person_id.nunique(), buyers=t.person_id.nunique(where=pay),
                       orders=t.order_id.nunique(where=pay), gmv_fen=t.amount_fen.sum(where=pay),
                       first=t.ts.min(), last=t.ts.max())
    row = execute(expr, con=con).iloc[0]
    persons, buyers, orders = int(row["persons"]), int(row["buyers"]), int(row["orders"])
    gmv = 0.0 if pd.isna(row["gmv_fen"]) else float(row["gmv_fen"]) / 100
    first, last = pd.Timestamp(row["first"]).date(), pd.Timestamp(row["last"]).date()
    return {
        "events": int(row["events"]), "persons": persons, "buyers": buyers, "orders": orders, "gmv_yuan": gmv,
        "buyer_rate": buyers / persons if persons else float("nan"),
        "aov_yuan": gmv / orders if orders else float("nan"),
        "orders_per_buyer": orders / buyers if buyers else float("nan"),
        "first_day": first.isoformat(), "last_day": last.isoformat(), "days": (last - first).days + 1,
    }
