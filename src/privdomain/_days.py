"""Beijing day numbers and input checks shared by the lifecycle, repurchase and cohort modules."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any, Union

import ibis.expr.types as ir
import pandas as pd

from . import backend
from .backend import TableLike, backend_name, epoch_us
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
    backend.require_columns(events, needed)
    for c in ("person_id", "ts"):
        n = int(events[c].isna().sum())
        if n:
            raise ValueError(f"events: column {c!r} must not be null; {n} row(s) are null")
    if len(events) and not isinstance(events["ts"].dtype, pd.DatetimeTZDtype):
        raise ValueError("events: column 'ts' must be timezone-aware (Asia/Shanghai); it is naive or not a timestamp")


def _day(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Beijing day number of a timestamp inside an Ibis expression.

    A timezone-aware column (an instant) is turned into its Beijing day from its epoch
    seconds plus the fixed UTC+08:00 offset, which avoids a per-row time-zone cast (the
    dominant cost on large Parquet tables); a naive column is Beijing wall-clock time
    already (see :func:`privdomain.backend.to_table`).
    """
    if ts.type().timezone is not None:
        if backend_name(ts) == "duckdb":
            return ((epoch_us(ts) + 8 * 3600 * 1_000_000) // 86_400_000_000).cast("int64")
        return ((ts.epoch_seconds() + 8 * 3600) // 86400).cast("int64")
    return (ts.epoch_seconds() // 86400).cast("int64")


def _raw_events(events: TableLike, con: Any | None, needed: tuple[str, ...]) -> ir.Table:
    """Events as an Ibis table for day-level work, checked for the needed columns.

    Unlike :func:`privdomain.backend.to_table`, Parquet sources and Ibis tables keep a
    timezone-aware ``ts`` as is (use :func:`_day` on it, not wall-clock accessors).
    """
    from .io import Dataset

    _check_events(events, needed)
    if isinstance(events, Dataset):
        events = events.path
    if isinstance(events, ir.Table):
        t = events
    elif isinstance(events, (str, os.PathLike)):
        c = con or backend.connect()
        t = c.read_parquet(backend._parquet_source(Path(events), "events"))
    else:
        t = backend.to_table(events, "events", con=con)
    backend.require_columns(t, needed)
    return t
