"""Plain per-person Python versions of the metrics: slow, obviously correct.

Used by the tests (property tests hold the fast Ibis versions equal to these) and
by teaching notebooks. Never call these on large data.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from .schema import TIMEZONE


def _local_day(ts: pd.Timestamp):
    return ts.tz_convert(TIMEZONE).date()


def daily_volume(events: pd.DataFrame) -> pd.DataFrame:
    """Reference for :func:`privdomain.touchpoints.daily_volume`: a loop over rows."""
    counts: dict[tuple, int] = defaultdict(int)
    people: dict[tuple, set] = defaultdict(set)
    for ts, person, tp in zip(events["ts"], events["person_id"], events["touchpoint"]):
        key = (_local_day(ts), tp)
        counts[key] += 1
        people[key].add(person)
    rows = [(day, tp, counts[(day, tp)], len(people[(day, tp)])) for (day, tp) in sorted(counts)]
    return pd.DataFrame(rows, columns=["day", "touchpoint", "events", "persons"]).astype(
        {"events": "int64", "persons": "int64"}
    )
