"""Beijing day numbers and input checks shared by the lifecycle, repurchase and cohort modules."""

from __future__ import annotations

import datetime as _dt
from typing import Union

import ibis.expr.types as ir
import pandas as pd

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


def _check_events(events: TableLike, needed: tuple[str, ...]) -> None:
    """Clear errors for pandas input: missing columns and nulls in required columns."""
    if not isinstance(events, pd.DataFrame):
        return
    missing = [c for c in needed if c not in events.columns]
    if missing:
        raise ValueError(f"events: missing column(s) {missing}; lifecycle stages need {list(needed)}")
    for c in ("person_id", "ts"):
        n = int(events[c].isna().sum())
        if n:
            raise ValueError(f"events: column {c!r} must not be null; {n} row(s) are null")
    if len(events) and not isinstance(events["ts"].dtype, pd.DatetimeTZDtype):
        raise ValueError("events: column 'ts' must be timezone-aware (Asia/Shanghai); it is naive or not a timestamp")


def _day(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Beijing day number of a naive Beijing timestamp inside an Ibis expression."""
    return (ts.epoch_seconds() // 86400).cast("int64")
