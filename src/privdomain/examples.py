"""Build small event tables by hand: golden journeys for tests, docs and teaching.

Examples
--------
>>> from privdomain.examples import events_frame
>>> ev = events_frame([
...     (1, "2024-05-01 10:00", "moments_ad_click", {"campaign_id": 7}),
...     (1, "2024-05-01 10:05", "oa_follow"),
...     (1, "2024-05-03 20:00", "pay", {"order_id": 1, "amount_fen": 9900}),
... ])
>>> ev[["person_id", "touchpoint", "channel"]].values.tolist()[0]
[1, 'moments_ad_click', 'moments_ad']
>>> str(ev["ts"].dtype)
'datetime64[ns, Asia/Shanghai]'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from . import schema

__all__ = ["Row", "events_frame"]


Row = Sequence[Any]


def events_frame(rows: Iterable[Row], start_event_id: int = 0) -> pd.DataFrame:
    """Make a schema-valid events frame from ``(person_id, ts, touchpoint[, extras])`` rows.

    ``ts`` is a Beijing wall-clock string or Timestamp; ``extras`` a dict of other
    event columns (``campaign_id``, ``order_id``, ``amount_fen``, ``channel``...).
    The channel defaults to the touchpoint's family; ``id_type``/``id_value``
    default to the person's Mini Program openid. Event ids are assigned in row order.
    """
    records = []
    for i, row in enumerate(rows):
        person, ts, tp = row[0], row[1], row[2]
        extra = dict(row[3]) if len(row) > 3 and row[3] else {}
        rec = {
            "event_id": start_event_id + i,
            "ts": pd.Timestamp(ts),
            "person_id": int(person),
            "id_type": "mp_openid",
            "id_value": f"mp_{person}",
            "touchpoint": tp,
            "channel": schema.CHANNEL_OF.get(tp, "mini_program"),
        }
        rec.update(extra)
        records.append(rec)
    df = pd.DataFrame.from_records(records, columns=None if records else schema.EVENTS.columns)
    if df.empty:
        return schema.empty("events")
    ts = pd.to_datetime(df["ts"])
    df["ts"] = ts.dt.tz_localize(schema.TIMEZONE) if ts.dt.tz is None else ts.dt.tz_convert(schema.TIMEZONE)
    return schema.conform(df, "events")
