"""Beijing day numbers and checked events for the lifecycle, repurchase and cohort modules."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Union

import ibis.expr.types as ir
import pandas as pd

from . import events as events_layer
from .backend import TableLike
from .schema import TIMEZONE

DateLike = Union[str, _dt.date, pd.Timestamp]
_EPOCH = pd.Timestamp("1970-01-01")


def _day_number(value: DateLike, name: str) -> int:
    """A date-like as a Beijing day number (days since 1970-01-01)."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: cannot read {value!r} as a date") from e
    if ts is pd.NaT:
        raise ValueError(f"{name} must be a date, got NaT")
    if ts.tzinfo is not None:
        ts = ts.tz_convert(TIMEZONE).tz_localize(None)
    return int((ts.normalize() - _EPOCH).days)


_day = events_layer.day


def _raw_events(events: TableLike, con: Any | None, needed: tuple[str, ...]) -> ir.Table:
    """Checked events (:func:`privdomain.events.read`) for day-level work, instants kept as they are.

    Use :func:`_day` on ``ts`` (not wall-clock accessors): an instant gives its Beijing
    day from epoch time, without a per-row time-zone cast.
    """
    cols = [c for c in needed if c != "ts"]
    return events_layer.read(events, con=con, columns=cols, localise=False)
