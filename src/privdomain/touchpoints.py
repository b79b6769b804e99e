"""Touchpoint volumes and flows (Youshu's touchpoint map, 触点地图).

Examples
--------
>>> import pandas as pd
>>> from privdomain.touchpoints import daily_volume
>>> ev = pd.DataFrame({"person_id": [1, 1, 2],
...     "touchpoint": ["mp_visit", "mp_visit", "pay"],
...     "ts": pd.to_datetime(["2024-05-01 09:00", "2024-05-01 10:00", "2024-05-02 08:00"]).tz_localize("Asia/Shanghai")})
>>> daily_volume(ev)[["day", "touchpoint", "events", "persons"]].values.tolist()[0][1:]
['mp_visit', 2, 1]
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .backend import TableLike, execute, to_table


def daily_volume(events: TableLike, con: Any | None = None) -> pd.DataFrame:
    """Events and distinct persons per touchpoint per Beijing calendar day.

    Parameters
    ----------
    events
        Events as a pandas frame, dataset path or Ibis table (needs ``ts``,
        ``person_id``, ``touchpoint``).
    con
        Optional Ibis connection to run on.

    Returns
    -------
    pandas.DataFrame
        ``day`` (date), ``touchpoint``, ``events``, ``persons``; sorted by day, touchpoint.
    """
    t = to_table(events, "events", con=con)
    expr = (
        t.group_by(day=t.ts.date(), touchpoint=t.touchpoint)
        .agg(events=t.count(), persons=t.person_id.nunique())
        .order_by(["day", "touchpoint"])
    )
    out = execute(expr, con=con)
    out["day"] = pd.to_datetime(out["day"]).dt.date
    return out.astype({"events": "int64", "persons": "int64"}).reset_index(drop=True)
