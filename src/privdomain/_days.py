"""Day numbers in the dataset's zone and checked events for the lifecycle, repurchase and cohort modules."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Union

import ibis.expr.types as ir
import pandas as pd

from . import events as events_layer
from .backend import TableLike, execute
from .schema import PURCHASE, TIMEZONE

__all__ = ["DateLike", "day_number", "day", "raw_events", "segment_events", "as_of_day"]


DateLike = Union[str, _dt.date, pd.Timestamp]
_EPOCH = pd.Timestamp("1970-01-01")


def day_number(value: DateLike, name: str, zone: str | None = None) -> int:
    """A date-like as a day number (days since 1970-01-01); a timezone-aware one is read in ``zone`` (default Beijing)."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: cannot read {value!r} as a date") from e
    if ts is pd.NaT:
        raise ValueError(f"{name} must be a date, got NaT")
    if ts.tzinfo is not None:
        ts = ts.tz_convert(zone or TIMEZONE).tz_localize(None)
    return int((ts.normalize() - _EPOCH).days)


day = events_layer.day


def raw_events(events: TableLike, con: Any | None, needed: tuple[str, ...], needs: tuple[str, ...] = (),
               tz: str | None = None) -> ir.Table:
    """Checked events (:func:`privdomain.events.read`) for day-level work, instants kept, typed with the dataset's zone.

    Use :func:`day` on ``ts`` (not wall-clock accessors): an instant gives its day in
    the dataset's zone (:func:`privdomain.events.timezone_of`, or ``tz``) from epoch
    time, without a per-row time-zone cast.
    """
    cols = [c for c in needed if c != "ts"]
    return events_layer.read(events, con=con, columns=cols, localise=False, needs=needs, tz=tz)


def person_ids(s: pd.Series) -> pd.Series:
    """Person ids as the engine returned them: int64 for integer ids, text ids as they are."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("int64")
    return s.astype(object)


def zone_of(t: ir.Table) -> str | None:
    """The zone :func:`raw_events` typed ``ts`` with (None for a naive column)."""
    return t.ts.type().timezone if "ts" in t.columns else None


def segment_events(events: TableLike, con: Any | None, by: str | None, persons: TableLike | None,
                   needs: tuple[str, ...] = (PURCHASE,), tz: str | None = None) -> ir.Table:
    """Checked events for a per-segment metric: the segment column ``by`` is needed unless ``persons`` has it."""
    needed = ("person_id", "ts", "touchpoint")
    if by is not None and persons is None:
        needed = (*needed, by)
    return raw_events(events, con, needed, needs, tz)


def as_of_day(t: ir.Table, as_of: DateLike | None, con: Any | None) -> int:
    """``as_of`` as a day number in the events' zone; by default the day of the last event."""
    if as_of is not None:
        return day_number(as_of, "as_of", zone_of(t))
    last = execute(t.select(d=day(t.ts)).d.max(), con=con)
    if last is None or pd.isna(last):
        raise ValueError("events: no rows, so as_of cannot default to the last event day; pass as_of")
    return int(last)
