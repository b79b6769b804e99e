"""The events layer: every metric reads its events through :func:`read`, which checks them first.

A metric given events (a pandas frame, a dataset folder, a :class:`privdomain.io.Dataset`
or an Ibis table) calls :func:`read`, which resolves the input to an Ibis table and,
before any metric runs, refuses what would make the metric silently wrong:

* **a dataset folder** must have its manifest, and its Parquet files must be the ones
  the manifest lists, with the row counts it records (:func:`privdomain.io.verify_files`,
  from the Parquet footers alone); a missing, stray or truncated part is named;
* **timestamps** must be timestamps with a time zone. A naive column is refused unless
  its zone is stated (:func:`assume_timezone`); text and integer (epoch) columns are
  refused;
* **key columns** (``event_id``, ``ts``, ``person_id``, ``touchpoint``) must be
  non-null, ``event_id`` unique (a file loaded twice is caught);
* **every touchpoint and channel** in the data must be known (the WeChat vocabulary of
  :mod:`privdomain.schema`, plus any the dataset's manifest declares), and every step,
  touchpoint or channel name a caller passes must be known too (:func:`require_known`,
  with a "did you mean" suggestion);
* **purchase amounts** (``amount_fen``) must be whole numbers of fen, non-negative, and
  present on every ``pay`` row.

A broken rule raises one :class:`privdomain.errors.DataError` naming the table, the
column, the rule, how many rows break it and a few examples.

What it costs: two small group-by queries (and, for event ids, one read of the
``event_id`` column) per input. A dataset folder is checked once per version of its
files: the result is kept, keyed by the files' paths, sizes and modification times, in
the process and in ``$PRIVDOMAIN_CACHE_DIR`` (default ``~/.cache/privdomain``), so ten
metrics in a notebook, or the notebooks of a report run in their own kernels, pay for
the full check once; later metrics check only the manifest and the Parquet footers.
An Ibis table is checked once per process (:func:`clear_cache` forgets it, for data
that changed behind a database table); a pandas frame is checked on every call.
docs/benchmarks.md records the cost on 20M events.

Time inside metrics
-------------------
Days and weeks are those of **the dataset's time zone** (:func:`timezone_of`): the zone
its manifest declares (``source_timezone`` written by an import, else ``timezone``), a
zone the caller passes as ``tz=`` (for a frame or an Ibis table, which carry no
manifest), else Asia/Shanghai. :func:`read` returns ``ts`` as **naive wall-clock time in
that zone** (Beijing, UTC+08:00, by default), so ``ts.date()`` and ``ts.truncate("W")``
are the dataset's days and weeks on every engine (see :mod:`privdomain.backend`). With
``localise=False`` the instants are kept, typed with the dataset's zone, for day-level
work that computes day numbers from epoch time (:func:`day`).

Examples
--------
>>> import pandas as pd
>>> from privdomain import events
>>> from privdomain.examples import events_frame
>>> ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"),
...                    (1, "2024-05-01 10:05", "pay", {"order_id": 1, "amount_fen": 9900})])
>>> events.read(ev).count().execute()
2
>>> events.read(pd.concat([ev, ev]))  # a frame loaded twice
Traceback (most recent call last):
...
privdomain.errors.DataError: events: column 'event_id' must be unique: 2 row(s) break it (e.g. 0, 1); a table loaded twice?
>>> naive = ev.assign(ts=ev.ts.dt.tz_localize(None))
>>> events.read(naive)
Traceback (most recent call last):
...
privdomain.errors.DataError: events: column 'ts' must be timezone-aware: 2 row(s) break it; state the zone of naive times with privdomain.events.assume_timezone(events, "UTC") (or "Asia/Shanghai")
>>> events.read(events.assume_timezone(naive, "Asia/Shanghai")).count().execute()
2
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from . import backend, io, schema
from .backend import TableLike
from .errors import DataError, DatasetError, UsageError

__all__ = [
    "read",
    "person_part",
    "person_partitions",
    "sum_over_partitions",
    "sample_persons",
    "BYTES_PER_EVENT",
    "table",
    "check",
    "clear_cache",
    "EventsCheck",
    "assume_timezone",
    "from_transactions",
    "known_touchpoints",
    "known_channels",
    "require_known",
    "with_us",
    "day",
    "timezone_of",
    "OFFSET_HOURS",
    "KEYS",
    "NoPurchasesWarning",
]

OFFSET_HOURS = schema.UTC_OFFSET_HOURS
"""Beijing time is UTC+08:00 all year (no daylight saving since 1991)."""
_US = 1_000_000

KEYS = ("event_id", "ts", "person_id", "touchpoint")
"""Columns that must never be null where they are present."""

CHECK_VERSION = 1
"""Bumped whenever a rule changes, so results kept on disk by an older version are not reused."""
_CACHE: dict[tuple, EventsCheck] = {}
_CACHE_MAX = 32


@dataclass(frozen=True)
class EventsCheck:
    """What :func:`check` found: the events passed every rule, and these are their totals.

    Attributes
    ----------
    rows : int
        Number of events.
    touchpoints : dict
        Rows per touchpoint.
    first, last : pandas.Timestamp or None
        The earliest and latest event (Beijing time, naive), None without rows.
    columns : tuple of str
        The columns of the table.
    pay_without_amount : int
        Purchase rows with no ``amount_fen``: an error for every metric that reads amounts.
    """

    rows: int
    touchpoints: dict[str, int] = field(default_factory=dict)
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    columns: tuple[str, ...] = ()
    pay_without_amount: int = 0


# --------------------------------------------------------------------------------------
# vocabulary
# --------------------------------------------------------------------------------------


def _manifest_of(source: Any) -> dict[str, Any]:
    if isinstance(source, io.Dataset):
        source = source.path
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        try:
            return io.read_manifest(source)
        except (FileNotFoundError, ValueError):
            return {}
    return {}


def known_touchpoints(source: Any = None) -> dict[str, str]:
    """The touchpoints events may carry, each with its channel family.

    The WeChat vocabulary of :data:`privdomain.schema.CHANNEL_OF`, plus the touchpoints a
    dataset folder's manifest declares under ``"touchpoints"`` (``{name: channel}``).

    >>> known_touchpoints()["pay"]
    'mini_program'
    """
    out = dict(schema.CHANNEL_OF)
    manifest = _manifest_of(source)
    declared = manifest.get("touchpoints") or {}
    if isinstance(declared, Mapping):
        out.update({str(k): str(v) for k, v in declared.items()})
    for key, canonical in _EVENT_KEYS.items():
        name = manifest.get(key)
        if isinstance(name, str) and name and name not in out:
            out[name] = schema.CHANNEL_OF[canonical]
    return out


_EVENT_KEYS = {"purchase_event": schema.PURCHASE, "refund_event": "refund", "order_event": "order"}


def _canonical_events(t: ir.Table, source: Any) -> ir.Table:
    """Declared purchase, refund and order event names (manifest) under the names metrics use."""
    manifest = _manifest_of(source)
    renames = {manifest[k]: v for k, v in _EVENT_KEYS.items()
               if isinstance(manifest.get(k), str) and manifest[k] and manifest[k] != v}
    if not renames or "touchpoint" not in t.columns:
        return t
    tp = t.touchpoint
    for name, canonical in renames.items():
        tp = ibis.ifelse(t.touchpoint == name, canonical, tp)
    return t.mutate(touchpoint=tp)


def known_channels(source: Any = None) -> list[str]:
    """The channel families events may carry (:data:`privdomain.schema.CHANNELS` plus declared ones).

    >>> "official_account" in known_channels()
    True
    """
    return list(dict.fromkeys([*schema.CHANNELS, *known_touchpoints(source).values()]))


def require_known(kind: str, names: Any, known: Iterable[str]) -> None:
    """Raise :class:`privdomain.errors.UsageError` for a name not in ``known`` ("did you mean").

    ``names`` is one name or a collection of names; ``kind`` says what they are
    (``"touchpoint"``, ``"step"``, ``"channel"``) in the message.

    >>> require_known("step", ["mp_visit", "payy"], known_touchpoints())
    Traceback (most recent call last):
    ...
    privdomain.errors.UsageError: unknown step 'payy'; did you mean 'pay'? Known: add_to_cart, ...
    """
    known = list(known)
    pool = set(known)
    values = [names] if isinstance(names, str) or not isinstance(names, Iterable) else list(names)
    for v in values:
        if v not in pool:
            err = UsageError.unknown(kind, v, known)
            msg = str(err)
            head, _, listed = msg.partition(" Known: ")
            if len(known) > 12:  # keep the message to a line: the suggestion and a few names
                listed = ", ".join(sorted(known)[:1]) + ", ..."
            raise UsageError(f"{head} Known: {listed}")


# --------------------------------------------------------------------------------------
# time zones
# --------------------------------------------------------------------------------------


def _fixed_offset_hours(zone: str, what: str = "assume_timezone") -> float | None:
    """The zone's UTC offset in hours when it has been constant since 1992, else None."""
    if zone.upper() in ("UTC", "Z", "GMT"):
        return 0.0
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        raise UsageError(f"{what}: unknown time zone {zone!r} (use an IANA name such as 'UTC')") from e
    return backend.fixed_offset_hours(zone)


def timezone_of(source: Any = None, tz: str | None = None) -> str:
    """The time zone whose days and weeks the metrics count for ``source``: the one place that decides it.

    In order: ``tz`` when the caller passes one; the zone a dataset folder's manifest
    declares (``source_timezone``, written by :mod:`privdomain.importers` from ``--tz``,
    else ``timezone``); Asia/Shanghai. A pandas frame or an Ibis table carries no
    manifest: pass ``tz=`` for it (the zone of a frame's ``ts`` dtype is only how its
    instants are shown, not a declaration).

    Parameters
    ----------
    source
        A dataset folder, a :class:`privdomain.io.Dataset`, a frame, an Ibis table or None.
    tz
        An IANA zone name (``"UTC"``, ``"Asia/Shanghai"``, ``"Europe/Berlin"``).

    Returns
    -------
    str
        An IANA zone name (``"UTC"`` for UTC, Z and GMT).

    Raises
    ------
    privdomain.errors.UsageError
        An unknown zone.

    >>> import tempfile
    >>> timezone_of(), timezone_of(tz="utc")
    ('Asia/Shanghai', 'UTC')
    >>> timezone_of(io.write_dataset(tempfile.mkdtemp(), {}, meta={"source_timezone": "Europe/Berlin"}))
    'Europe/Berlin'
    """
    zone = tz
    if zone is None:
        manifest = _manifest_of(source)
        zone = manifest.get("source_timezone") or manifest.get("timezone") or schema.TIMEZONE
    if not isinstance(zone, str) or not zone:
        raise UsageError(f"tz: a time zone name is text such as 'UTC', got {zone!r}")
    if zone.upper() in ("UTC", "Z", "GMT"):
        return "UTC"
    _fixed_offset_hours(zone, "tz")
    return zone


def assume_timezone(events: TableLike, zone: str, column: str = "ts") -> TableLike:
    """State the time zone of naive timestamps: the same events with ``column`` timezone-aware.

    Naive timestamps are ambiguous: an export may write UTC or Beijing wall-clock time
    without saying so, and reading UTC as Beijing time moves every event by eight hours
    (and 1 in 3 of them to another day). Metrics refuse naive times; this function is
    how a caller says what they are. It never changes its input.

    Parameters
    ----------
    events
        A pandas frame or an Ibis table whose ``column`` is naive.
    zone
        An IANA time zone (``"UTC"``, ``"Asia/Shanghai"``, ``"Europe/Berlin"``). For
        Ibis tables the zone must have a fixed offset (no daylight saving); convert
        such data in pandas.
    column
        The time column.

    Returns
    -------
    The same kind of input with ``column`` as instants.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"ts": pd.to_datetime(["2024-05-01 16:30"])})
    >>> str(assume_timezone(df, "UTC")["ts"].dt.tz_convert("Asia/Shanghai")[0])
    '2024-05-02 00:30:00+08:00'
    """
    if isinstance(events, pd.DataFrame):
        if column not in events.columns:
            raise UsageError(f"assume_timezone: no column {column!r}; got {list(events.columns)}")
        s = events[column]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            raise UsageError(f"assume_timezone: column {column!r} already has a time zone ({s.dtype.tz})")
        if not pd.api.types.is_datetime64_dtype(s.dtype):
            raise DataError("events", column, "must be a timestamp", len(s), s.head(3).tolist())
        _fixed_offset_hours(zone)  # validates the name
        try:
            aware = s.dt.tz_localize(zone, ambiguous="raise", nonexistent="raise")
        except Exception as e:  # noqa: BLE001 - pytz/zoneinfo raise several kinds
            raise DataError("events", column, f"must be a valid local time in {zone}", 1,
                            hint=str(e)[:200]) from None
        return events.assign(**{column: aware})
    if isinstance(events, ir.Table):
        dtype = events[column].type()
        if not dtype.is_timestamp() or dtype.timezone is not None:
            raise UsageError(f"assume_timezone: column {column!r} must be a naive timestamp, got {dtype}")
        hours = _fixed_offset_hours(zone)
        if hours is None:
            raise UsageError(f"assume_timezone: {zone} has daylight saving; convert such data in pandas")
        utc = events[column] - ibis.interval(seconds=int(hours * 3600))
        return events.mutate(**{column: utc.cast(ibis.dtype("timestamp('UTC')"))})
    raise UsageError("assume_timezone: give a pandas frame or an Ibis table (load a dataset folder first)")


def from_transactions(frame: pd.DataFrame, *, person: str = "person_id", time: str = "ts",
                      value: str | None = None, unit: str = "yuan", order: str | None = None,
                      event: str = schema.PURCHASE, tz: str | None = None) -> pd.DataFrame:
    """A transaction table with its own column names as privdomain events: how any table reaches a metric.

    Metrics take no column arguments (docs/architecture.md, "The API contract"): they
    read the event schema's columns. A purchase log whose columns are called
    ``customer``, ``date`` and ``dollars`` is mapped onto that schema here, once, and
    then checked by every rule of this layer (:func:`check`), so what a metric reads
    is the same whichever table it came from. Row ``i`` becomes one event:

    * ``event_id`` = ``i`` (the row number), ``person_id`` = ``frame[person]``;
    * ``ts`` = ``frame[time]`` as instants: timezone-aware times as they are; calendar
      dates (``datetime.date`` values, or naive times all at midnight) as midnight in
      ``tz`` (default Asia/Shanghai, the zone metrics count a frame's days in, so each
      purchase stays on its day); other naive times need ``tz`` (their zone), as in
      :func:`assume_timezone`;
    * ``touchpoint`` = ``event`` (``"pay"``: every row is a purchase) and ``channel``
      its channel family;
    * ``order_id`` = ``frame[order]``, or ``i`` (each row its own order) without one;
    * ``amount_fen`` = ``frame[value]`` in whole fen: :math:`100 v` for ``unit="yuan"``
      (any currency's main unit with two decimals: yuan, dollars), :math:`v` for
      ``unit="fen"``. A value with a fraction of a fen is refused, not rounded away.

    Other columns are left out. The input is never changed.

    Parameters
    ----------
    frame
        One row per transaction.
    person, time, value
        The frame's person id, time and spend columns (``value=None``: no amounts).
    unit
        ``"yuan"`` (default) or ``"fen"``: the unit of ``value``.
    order
        The frame's order id column, if it has one.
    event
        The touchpoint every row becomes (a known one: :func:`known_touchpoints`).
    tz
        The zone of naive times (and of calendar dates). Pass the same ``tz=`` to the
        metrics when it is not Asia/Shanghai.

    Returns
    -------
    pandas.DataFrame
        ``event_id``, ``person_id``, ``ts``, ``touchpoint``, ``channel``, ``order_id``
        and, with a value, ``amount_fen`` (nullable Int64), in the frame's row order.

    Raises
    ------
    privdomain.errors.UsageError
        A column that is not in the frame, an unknown unit or event.
    privdomain.errors.DataError
        A rule of the events layer is broken (null person or time, naive times without
        ``tz``, a fraction of a fen, a negative amount...).

    Examples
    --------
    >>> import pandas as pd
    >>> from privdomain.clv import rfm
    >>> tx = pd.DataFrame({"cust": [7, 7, 7], "day": pd.to_datetime(["1997-01-01", "1997-01-15", "1997-01-29"]),
    ...                    "usd": [10.0, 30.0, 50.25]})
    >>> ev = from_transactions(tx, person="cust", time="day", value="usd")
    >>> ev[["person_id", "touchpoint", "amount_fen"]].values.tolist()
    [[7, 'pay', 1000], [7, 'pay', 3000], [7, 'pay', 5025]]
    >>> rfm.rfm_summary(ev, as_of="1997-02-12", time_unit="W")[["frequency", "t_x", "T", "monetary_value"]].iloc[0].tolist()
    [2.0, 4.0, 6.0, 40.125]
    """
    if not isinstance(frame, pd.DataFrame):
        raise UsageError(f"from_transactions: give a pandas DataFrame, got {type(frame).__name__}")
    if unit not in ("yuan", "fen"):
        raise UsageError(f"from_transactions: unit must be 'yuan' or 'fen', got {unit!r}")
    vocab = known_touchpoints()
    require_known("event", event, vocab)
    cols = {"person": person, "time": time, **({"value": value} if value is not None else {}),
            **({"order": order} if order is not None else {})}
    missing = [f"{k}={c!r}" for k, c in cols.items() if c not in frame.columns]
    if missing:
        raise UsageError(f"from_transactions: {', '.join(missing)} not in the frame; columns: {list(frame.columns)}")
    n = len(frame)
    ts = frame[time]
    if ts.dtype == object and len(ts) and {type(v).__name__ for v in ts.dropna().head(1000)} <= {"date"}:
        ts = pd.to_datetime(ts)  # calendar dates: midnight, made instants below
    if pd.api.types.is_datetime64_dtype(ts.dtype) and not isinstance(ts.dtype, pd.DatetimeTZDtype):
        stamps = ts.dropna()
        timed = stamps[stamps != stamps.dt.normalize()]
        if tz is None and len(timed):
            raise DataError("transactions", time, "must be timezone-aware (or calendar dates)", len(timed),
                            timed.head(3).astype(str).tolist(),
                            hint=f"pass the zone of these times: from_transactions(..., tz=\"UTC\") "
                                 f"(or \"{schema.TIMEZONE}\")")
        ts = assume_timezone(pd.DataFrame({"ts": ts}), tz or schema.TIMEZONE)["ts"]
    out = pd.DataFrame({
        "event_id": np.arange(n, dtype="int64"),
        "person_id": frame[person].to_numpy(),
        "ts": ts.to_numpy() if not isinstance(ts.dtype, pd.DatetimeTZDtype) else ts.array,
        "touchpoint": np.array([event], dtype=object).repeat(n),
        "channel": np.array([vocab[event]], dtype=object).repeat(n),
        "order_id": frame[order].to_numpy() if order is not None else np.arange(n, dtype="int64"),
    })
    if value is not None:
        out["amount_fen"] = _fen(frame[value], value, unit)
    check(out)
    return out


def _fen(values: pd.Series, column: str, unit: str) -> pd.Series:
    """``values`` in whole fen (nullable Int64); a fraction of a fen is a DataError."""
    if not (pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)):
        raise DataError("transactions", column, "must be numbers (an amount)", int(values.notna().sum()),
                        values.dropna().head(3).tolist())
    v = values.to_numpy(dtype="float64", na_value=np.nan)
    fen = v * 100.0 if unit == "yuan" else v
    whole = np.round(fen)
    bad = ~np.isfinite(fen) & ~np.isnan(fen) | (np.abs(fen - whole) > 1e-6 * np.maximum(1.0, np.abs(fen)))
    bad &= ~np.isnan(fen)
    if bad.any():
        raise DataError("transactions", column, "must be whole fen (at most two decimals in yuan)" if unit == "yuan"
                        else "must be whole numbers of fen", int(bad.sum()), v[bad][:3].tolist(),
                        hint="round the amounts on purpose before, if that is what you mean")
    return pd.Series(whole, index=values.index).astype("Int64").reset_index(drop=True)


# --------------------------------------------------------------------------------------
# resolving and checking
# --------------------------------------------------------------------------------------


def _folder(data: Any) -> Path | None:
    if isinstance(data, io.Dataset):
        return Path(data.path)
    if isinstance(data, (str, os.PathLike)):
        p = Path(data)
        if p.is_dir():
            return p
        if not p.exists() and "*" not in str(p):
            raise DatasetError(p, "does not exist")
    return None


def _verify_folder(root: Path, table: str = "events") -> None:
    """The folder's manifest exists and the table's files match it (Parquet footers only)."""
    try:
        io.verify_files(root, [table])
    except io.ManifestMissing:
        raise DatasetError(root, f"not a dataset folder: no {io.MANIFEST} (the output of an interrupted run?)") from None


def table(data: TableLike, name: str, *, con: Any | None = None) -> ir.Table:
    """Another table of a dataset (``persons``, ``campaigns``, ``articles``...) as an Ibis table.

    A dataset folder is checked against its manifest first (as :func:`read` does for
    events); a frame or an Ibis table is taken as it is. Timestamps come back as naive
    Beijing time.

    >>> import pandas as pd
    >>> table(pd.DataFrame({"person_id": [1]}), "persons").count().execute()
    1
    """
    root = _folder(data)
    if root is not None:
        _verify_folder(root, name)
        return backend.to_table(root, name, con=con)
    return backend.to_table(data, name, con=con)


def _cache_dir() -> Path:
    base = os.environ.get("PRIVDOMAIN_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                          Path.home() / ".cache") / "privdomain"
    return Path(base) / "checks"


def _disk_key(key: tuple) -> str:
    return hashlib.sha256(repr((CHECK_VERSION, key)).encode()).hexdigest()


def _disk_get(key: tuple) -> EventsCheck | None:
    """A folder's check result kept from an earlier process, if its files have not changed since."""
    try:
        d = json.loads((_cache_dir() / f"{_disk_key(key)}.json").read_text())
        return EventsCheck(rows=int(d["rows"]), touchpoints={str(k): int(v) for k, v in d["touchpoints"].items()},
                           first=None if d["first"] is None else pd.Timestamp(d["first"]),
                           last=None if d["last"] is None else pd.Timestamp(d["last"]),
                           columns=tuple(d["columns"]), pay_without_amount=int(d["pay_without_amount"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _disk_put(key: tuple, res: EventsCheck) -> None:
    """Keep a passed check for later processes (a notebook kernel, the next CLI run); best effort."""
    try:
        folder = _cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        d = {"rows": res.rows, "touchpoints": res.touchpoints, "columns": list(res.columns),
             "first": None if res.first is None else res.first.isoformat(),
             "last": None if res.last is None else res.last.isoformat(), "pay_without_amount": res.pay_without_amount}
        tmp = folder / f".{_disk_key(key)}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(d))
        os.replace(tmp, folder / f"{_disk_key(key)}.json")
    except OSError:
        pass


def _fingerprint(root: Path) -> tuple:
    files = []
    for f in sorted([root / io.MANIFEST, *root.glob("events/*.parquet"), *root.glob("events.parquet")]):
        try:
            st = f.stat()
        except FileNotFoundError:
            continue
        files.append((f.name, st.st_size, st.st_mtime_ns))
    return (str(root.resolve()), tuple(files))


def _check_ts_type(t: ir.Table, column: str, dates_ok: bool) -> None:
    dtype = t[column].type()
    if dtype.is_timestamp():
        if dtype.timezone is None:
            n = int(backend.execute(t.count()))
            if n and dates_ok:  # calendar dates stored as midnight timestamps have no zone to get wrong
                n = int(backend.execute(t.filter(t[column] != t[column].truncate("D")).count()))
            if n:
                raise DataError("events", column, "must be timezone-aware", n,
                                hint=f'state the zone of naive times with privdomain.events.assume_timezone(events, "UTC") '
                                     f'(or "{schema.TIMEZONE}")')
        return
    if dates_ok and dtype.is_date():
        return
    n = int(backend.execute(t.count()))
    if not n:
        return
    kind = "integers (epoch numbers?)" if dtype.is_integer() else "text" if dtype.is_string() else str(dtype)
    raise DataError("events", column, "must be a timestamp with a time zone", n,
                    examples=backend.execute(t.select(column).limit(3))[column].tolist(),
                    hint=f"got {kind}; parse it first (pandas.to_datetime(..., utc=True) for epoch seconds or "
                         "ISO text with offsets)")


def _frame_precheck(df: pd.DataFrame, time_col: str, dates_ok: bool) -> pd.DataFrame:
    """Checks that pandas answers better than the engine: text/object times, fractional amounts."""
    if time_col in df.columns:
        s = df[time_col]
        if s.dtype == object and len(s):
            kinds = {type(v).__name__ for v in s.dropna().head(1000)}
            if kinds <= {"Timestamp", "datetime"}:
                try:
                    conv = pd.to_datetime(s, utc=False)
                except (ValueError, TypeError) as e:  # mixed time zones
                    raise DataError("events", time_col, "must be timestamps in one time zone", len(s),
                                    s.head(3).tolist(), hint=str(e)[:120]) from None
                df = df.assign(**{time_col: conv})
            elif not (dates_ok and kinds <= {"date"}):
                raise DataError("events", time_col, "must be a timestamp with a time zone", int(s.notna().sum()),
                                s.dropna().head(3).tolist(),
                                hint="got text; parse it first, e.g. pandas.to_datetime(col, format='ISO8601')")
    if "amount_fen" in df.columns:
        a = df["amount_fen"]
        if pd.api.types.is_float_dtype(a.dtype):
            vals = a.to_numpy(dtype="float64", na_value=np.nan)
            frac = np.isfinite(vals) & (vals != np.round(vals))
            bad = int(frac.sum()) + int(np.isinf(vals).sum())
            if bad:
                raise DataError("events", "amount_fen", "must be whole numbers of fen", bad,
                                vals[frac | np.isinf(vals)][:3].tolist(),
                                hint="money is integer fen (1 yuan = 100 fen); round or convert exactly before")
            df = df.assign(amount_fen=pd.Series(vals, index=df.index).astype("Int64"))
        elif a.dtype == object and len(a):
            raise DataError("events", "amount_fen", "must be whole numbers of fen", int(a.notna().sum()),
                            a.dropna().head(3).tolist(), hint="got text or mixed values")
    return df


def _footer_stats(root: Path, columns: Sequence[str], time_col: str) -> dict[str, Any] | None:
    """Null counts of ``columns`` and the time range of a folder's events from the Parquet footers alone.

    None when a file lacks a column or its statistics (the caller then counts on the engine).
    """
    stats = io.column_stats(root, "events", dict.fromkeys([*columns, time_col]))
    span = None if stats is None else stats[time_col]
    if span is None or span["min"] is None:  # no time range in the footers (or no rows): count on the engine
        return None
    return {"nulls": {c: stats[c]["nulls"] for c in columns}, "first": span["min"], "last": span["max"]}


def _aggregate_check(t: ir.Table, source: Any, time_col: str, con: Any | None, root: Path | None = None) -> EventsCheck:
    """Nulls, vocabulary, amounts and time range: two small group-bys (and the footers of a folder)."""
    cols = set(t.columns)
    if "touchpoint" in cols:
        tp_type = t.touchpoint.type()
        if not (tp_type.is_string() or tp_type.is_null()):  # null: an empty pandas column of objects
            raise DataError("events", "touchpoint", "must be text (a touchpoint name)", 1, hint=f"got {tp_type}")
    nullable = [c for c in dict.fromkeys([*KEYS, time_col]) if c in cols and c != "touchpoint"]
    footers = _footer_stats(root, nullable, time_col) if root is not None and time_col in cols else None
    metrics: dict[str, ir.Value] = {"n": t.count()}
    if footers is None:
        for c in nullable:
            metrics[f"null_{c}"] = t[c].isnull().sum()
    has_amount = "amount_fen" in cols
    pay_without_amount = 0
    if has_amount:
        atype = t.amount_fen.type()
        if not atype.is_integer():
            if atype.is_floating() or atype.is_decimal():
                metrics["frac_amount"] = (t.amount_fen.notnull() & (t.amount_fen != t.amount_fen.round(0))).sum()
            else:
                raise DataError("events", "amount_fen", "must be whole numbers of fen", 1, hint=f"got {atype}")
        metrics["neg_amount"] = (t.amount_fen < 0).fill_null(False).sum()
        metrics["null_amount"] = t.amount_fen.isnull().sum()
    tcol = t[time_col] if time_col in cols else None
    if footers is None and tcol is not None and (tcol.type().is_timestamp() or tcol.type().is_date()):
        metrics["first"] = tcol.min()
        metrics["last"] = tcol.max()
    by = ["touchpoint"] if "touchpoint" in cols else []
    g = backend.execute(t.group_by(by).aggregate(**metrics) if by else t.aggregate(**metrics), con=con)
    rows = int(g["n"].sum()) if len(g) else 0
    null_counts = footers["nulls"] if footers is not None else {
        c: int(g[f"null_{c}"].sum()) for c in nullable}
    for c in nullable:
        if null_counts.get(c):
            raise DataError("events", c, "must not be null", int(null_counts[c]))
    if by:
        n = int(g.loc[g["touchpoint"].isna(), "n"].sum())
        if n:
            raise DataError("events", "touchpoint", "must not be null", n)
        vocab = known_touchpoints(source)
        unknown = g.loc[~g["touchpoint"].isin(list(vocab))]
        if len(unknown):
            names = unknown.set_index("touchpoint")["n"].sort_values(ascending=False)
            first = str(names.index[0])
            hint = str(UsageError.unknown("touchpoint", first, list(vocab))).split(" Known:")[0]
            raise DataError("events", "touchpoint", "must be a known touchpoint", int(names.sum()),
                            list(names.index[:5]),
                            hint=f"{hint.replace('unknown touchpoint', 'for')}; declare your own touchpoints in the "
                                 f"dataset manifest (\"touchpoints\": {{name: channel}})")
    if "channel" in cols:
        gc = backend.execute(t.group_by("channel").aggregate(n=t.count()), con=con)
        chans = known_channels(source)
        bad = gc.loc[gc["channel"].notna() & ~gc["channel"].isin(chans)]
        if len(bad):
            names = bad.set_index("channel")["n"].sort_values(ascending=False)
            raise DataError("events", "channel", "must be a known channel", int(names.sum()), list(names.index[:5]),
                            hint=str(UsageError.unknown("channel", str(names.index[0]), chans)).split(" Known:")[0])
    if has_amount:
        if "frac_amount" in g.columns and int(g["frac_amount"].sum()):
            raise DataError("events", "amount_fen", "must be whole numbers of fen", int(g["frac_amount"].sum()),
                            hint="money is integer fen (1 yuan = 100 fen)")
        n = int(g["neg_amount"].sum())
        if n:
            raise DataError("events", "amount_fen", "must not be negative", n,
                            hint="a refund is its own 'refund' event with a positive amount")
        if by:
            pays = g.loc[g["touchpoint"] == schema.PURCHASE]
            pay_without_amount = int(pays["null_amount"].sum()) if len(pays) else 0
    counts = {str(k): int(v) for k, v in g.set_index("touchpoint")["n"].items()} if by and len(g) else {}
    first, last = (footers["first"], footers["last"]) if footers is not None else (
        (g["first"].min(), g["last"].max()) if "first" in g.columns and len(g) else (None, None))
    first = None if first is None or pd.isna(first) else _beijing(first)
    last = None if last is None or pd.isna(last) else _beijing(last)
    return EventsCheck(rows=rows, touchpoints=counts, first=first, last=last, columns=tuple(t.columns),
                       pay_without_amount=pay_without_amount)


def _beijing(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_convert(schema.TIMEZONE).tz_localize(None) if ts.tzinfo is not None else ts


def _unique_ids_frame(df: pd.DataFrame) -> None:
    if "event_id" not in df.columns or df.empty:
        return
    dup = df["event_id"].duplicated(keep=False) & df["event_id"].notna()
    if dup.any():
        vals = df.loc[dup, "event_id"].drop_duplicates()
        raise DataError("events", "event_id", "must be unique", int(dup.sum()) - len(vals), vals.head(5).tolist(),
                        hint="a table loaded twice?")


def _unique_ids_folder(root: Path, t: ir.Table, con: Any | None) -> None:
    """Event ids of a folder are unique: each file strictly increasing and the files' ranges disjoint.

    That reads one integer column (no hashing of 20M ids); files that are not sorted by
    ``event_id`` fall back to counting distinct ids on the engine.
    """
    import pyarrow.parquet as pq

    files = io.table_files(root, "events")
    ranges = []
    for f in files:
        pf = pq.ParquetFile(f)
        if "event_id" not in pf.schema_arrow.names:
            return
        a = pf.read(columns=["event_id"]).column(0).to_numpy()
        if len(a) and not (np.diff(a) > 0).all():
            return _unique_ids_engine(t, con)
        if len(a):
            ranges.append((int(a[0]), int(a[-1])))
    ranges.sort()
    if any(lo <= prev_hi for (_, prev_hi), (lo, _) in zip(ranges, ranges[1:])):
        return _unique_ids_engine(t, con)


def _unique_ids_engine(t: ir.Table, con: Any | None) -> None:
    dups = t.group_by("event_id").aggregate(k=t.count()).filter(lambda x: x.k > 1)
    res = backend.execute(dups.aggregate(ids=dups.count(), extra=(dups.k - 1).sum()), con=con)
    extra = res["extra"].iloc[0]  # a sum over no rows: None on DuckDB, NaN from Spark
    n = 0 if pd.isna(extra) else int(extra)
    if n:
        ex = backend.execute(dups.select("event_id").limit(5), con=con)["event_id"].tolist()
        raise DataError("events", "event_id", "must be unique", n, ex, hint="a table loaded twice?")


def check(events: TableLike, *, con: Any | None = None, time_col: str = "ts", dates_ok: bool = False,
          needs: Sequence[str] = ()) -> EventsCheck:
    """Check events against every rule of the events layer; return their totals.

    Parameters
    ----------
    events
        A pandas frame, a dataset folder, a :class:`privdomain.io.Dataset` or an Ibis table.
    con
        Ibis connection to read a folder with (the default DuckDB one if None).
    time_col
        The time column (``ts`` for privdomain events).
    dates_ok
        Accept calendar dates as the time column (day-level transaction data): a date
        column, or naive timestamps that are all at midnight.
    needs
        Touchpoints that must be present when there are rows (see :func:`read`).

    Returns
    -------
    EventsCheck

    Raises
    ------
    privdomain.errors.DataError
        A rule is broken (column, rule, row count, examples).
    privdomain.errors.DatasetError
        A dataset folder does not match its manifest.

    >>> from privdomain.examples import events_frame
    >>> check(events_frame([(1, "2024-05-01 10:00", "sms")])).touchpoints
    {'sms': 1}
    """
    _, result, _ = _resolve(events, con=con, time_col=time_col, dates_ok=dates_ok)
    _require_events(result, needs)
    return result


def _resolve(events: TableLike, *, con: Any | None, time_col: str, dates_ok: bool
             ) -> tuple[ir.Table, EventsCheck, pd.DataFrame | None]:
    """The raw (unlocalised) Ibis table of ``events``, its check result and, for a frame, the frame as checked."""
    root = _folder(events)
    if root is not None:
        _verify_folder(root)
        key = _fingerprint(root)
        t = _canonical_events(backend.to_table(root, "events", con=con, localise=False), root)
        hit = _CACHE.get(key) or _disk_get(key)
        if hit is None:
            if time_col in t.columns:
                _check_ts_type(t, time_col, dates_ok)
            hit = _aggregate_check(t, root, time_col, con, root=root)
            if "event_id" in t.columns:
                _unique_ids_folder(root, t, con)
            _disk_put(key, hit)
        _remember(key, hit)
        return t, hit, None
    df = None
    if isinstance(events, pd.DataFrame):
        df = _frame_precheck(events, time_col, dates_ok)
        _unique_ids_frame(df)
        t = backend.to_table(df, "events", localise=False)
    elif isinstance(events, ir.Table):
        t = events
    elif isinstance(events, (str, os.PathLike)):  # one Parquet file or a glob: no manifest to check
        t = backend.to_table(events, "events", con=con, localise=False)
    else:
        raise UsageError(f"events: expected a pandas DataFrame, a dataset folder or an Ibis table, "
                         f"got {type(events).__name__}")
    key = ("ibis", t.op(), time_col, dates_ok) if isinstance(events, ir.Table) else None
    if key is not None and key in _CACHE:
        return t, _CACHE[key], None
    if time_col in t.columns:
        _check_ts_type(t, time_col, dates_ok)
    result = _aggregate_check(t, events, time_col, con)
    if "event_id" in t.columns and not isinstance(events, pd.DataFrame):
        _unique_ids_engine(t, con)
    if key is not None:
        _remember(key, result)
    return t, result, df


def _remember(key: tuple, result: EventsCheck) -> None:
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = result


def clear_cache() -> None:
    """Forget every check result kept in this process (not those kept on disk for folders).

    An Ibis table is checked once per process: call this after changing the data behind
    a database table that metrics have already read.
    """
    _CACHE.clear()


def _require_events(result: EventsCheck, needs: Sequence[str]) -> None:
    """Events with rows but none of ``needs``: an error when orders stand where purchases should, else a warning.

    Orders without a single purchase mean the purchase is recorded under another name (a
    metric would count nobody as a buyer); no order and no purchase at all can be real (a
    new brand's first week), so that only warns.
    """
    missing = [e for e in needs if result.rows and not result.touchpoints.get(e)]
    if not missing or "touchpoint" not in result.columns:
        return
    name = missing[0]
    what = "the purchase" if name == schema.PURCHASE else "an event this metric needs"
    present = ", ".join(sorted(result.touchpoints)[:12])
    msg = (f"events: none of the {result.rows:,} rows is a {name!r} event ({what}); if your data calls it "
           f"otherwise, declare it in the dataset manifest (\"purchase_event\": \"...\") or rename it. "
           f"Touchpoints present: {present}")
    if name == schema.PURCHASE and result.touchpoints.get("order"):
        raise UsageError(msg)
    warnings.warn(msg, NoPurchasesWarning, stacklevel=3)


class NoPurchasesWarning(UserWarning):
    """Events with rows and not one purchase: every person is counted as a non-buyer."""


def read(events: TableLike, *, con: Any | None = None, columns: Sequence[str] = (), localise: bool = True,
         time_col: str = "ts", dates_ok: bool = False, micros: bool = False,
         needs: Sequence[str] = (), tz: str | None = None) -> ir.Table:
    """Checked events as an Ibis table: what every metric reads.

    Parameters
    ----------
    events
        A pandas frame, a dataset folder, a :class:`privdomain.io.Dataset` or an Ibis table.
    con
        Ibis connection to read a folder with (the default DuckDB one if None).
    columns
        Columns the caller needs besides ``time_col`` (a ValueError names missing ones).
    localise
        Return ``time_col`` as naive wall-clock time in the dataset's zone (True), or
        keep the instants, typed with that zone (False; for day arithmetic with
        :func:`day`).
    time_col, dates_ok
        See :func:`check`.
    micros
        Add ``_us``, Beijing time as int64 microseconds (:func:`with_us`).
    needs
        Touchpoints the caller cannot do without (``("pay",)`` for a metric of
        purchases): events with ``order`` rows but no ``pay`` are refused by name
        rather than giving zero buyers; events with neither warn
        (:class:`NoPurchasesWarning`). A dataset whose purchase event has another
        name declares it in its manifest (``"purchase_event": "支付"``), and metrics
        read it as ``pay``.
    tz
        The zone whose days the metric counts (:func:`timezone_of`): wins over the
        manifest; for a frame or an Ibis table the default is Asia/Shanghai.

    Returns
    -------
    ibis.expr.types.Table

    >>> from privdomain.examples import events_frame
    >>> t = read(events_frame([(1, "2024-05-01 23:30", "sms")]), columns=["person_id"])
    >>> str(t.execute()["ts"][0])
    '2024-05-01 23:30:00'
    """
    if isinstance(events, (ir.Table, pd.DataFrame)):
        backend.require_columns(events, [time_col, *columns])
    t, result, frame = _resolve(events, con=con, time_col=time_col, dates_ok=dates_ok)
    backend.require_columns(t, [time_col, *columns])
    _require_events(result, needs)
    if "amount_fen" in columns and result.pay_without_amount:
        raise DataError("events", "amount_fen", f"must be present on every {schema.PURCHASE!r} row",
                        result.pay_without_amount, hint="a purchase without an amount would leave GMV short")
    zone = timezone_of(events, tz)
    if frame is not None:  # pandas localises cheaper than the engine
        t = backend.to_table(frame, "events", localise=localise, zone=zone)
    elif localise:
        t = backend.localise_table(t, zone)
    if not localise:
        t = _label_zone(t, zone)
    return with_us(t, con) if micros else t


def _label_zone(t: ir.Table, zone: str) -> ir.Table:
    """``t`` with its instant columns typed with ``zone``: the same instants (no SQL), so :func:`day` knows the zone."""
    changes = {name: t[name].cast(ibis.dtype(f"timestamp('{zone}')")) for name, dtype in t.schema().items()
               if dtype.is_timestamp() and dtype.timezone is not None and dtype.timezone != zone}
    return t.mutate(**changes) if changes else t


def with_us(t: ir.Table, con: Any | None = None) -> ir.Table:
    """``t`` with ``_us``: its naive Beijing ``ts`` as int64 microseconds (cheap ordering and windows).

    On DuckDB ``epoch_us`` reads it without a time-zone cast; elsewhere epoch seconds.
    """
    on_duckdb = (getattr(con, "name", "") == "duckdb") if con is not None else \
        backend.backend_name(t) in (None, "duckdb")
    if on_duckdb:
        return t.mutate(_us=backend.epoch_us(t.ts))
    return t.mutate(_us=t.ts.epoch_seconds().cast("int64") * _US)


def day(ts: ir.TimestampValue, tz: str | None = None) -> ir.IntegerValue:
    """Day number (days since 1970-01-01) in the dataset's zone of a timestamp inside an Ibis expression.

    An instant column gives its local day from epoch time plus the zone's UTC offset,
    :math:`\\lfloor (t_{utc} + o(t)) / 86400 \\rfloor` (no per-row time-zone cast, the
    dominant cost on large Parquet tables; :func:`privdomain.backend.zone_offset_us`
    gives :math:`o`). The zone is ``tz`` when given, else the zone :func:`read` typed the
    column with (``localise=False``), which is the dataset's (:func:`timezone_of`). A
    naive column is wall-clock time in the dataset's zone already (:func:`read`).

    >>> import pandas as pd
    >>> ev = pd.DataFrame({"event_id": [1], "person_id": [1], "touchpoint": ["sms"],
    ...                    "ts": pd.to_datetime(["2024-05-01 20:00"]).tz_localize("UTC")})
    >>> t = read(ev, localise=False)
    >>> [int(backend.execute(t.select(d=day(t.ts, z)).d.max())) for z in ("UTC", "Asia/Shanghai")]
    [19844, 19845]
    """
    zone = ts.type().timezone
    if zone is None:
        return (ts.epoch_seconds() // 86400).cast("int64")
    zone = timezone_of(tz=tz or zone)
    if backend.backend_name(ts) == "duckdb":
        us = backend.epoch_us(ts)
        return ((us + backend.zone_offset_us(us, zone)) // 86_400_000_000).cast("int64")
    secs = ts.epoch_seconds().cast("int64")
    hours = backend.fixed_offset_hours(zone)
    if hours is not None:
        return ((secs + int(round(hours * 3600))) // 86400).cast("int64")
    return ((secs * _US + backend.zone_offset_us(secs * _US, zone)) // 86_400_000_000).cast("int64")


# --------------------------------------------------------------------------- person partitions
def person_part(person_id: Any, part: int, parts: int) -> Any:
    """Ibis boolean: ``person_id`` falls in partition ``part`` of ``parts`` (by its hash).

    ``((hash(person_id) % parts) + parts) % parts == part``: every person is in exactly one
    partition, on every engine (the hash differs between engines, the partitioning holds).
    """
    if parts <= 1:
        return ibis.literal(True)
    return ((person_id.hash() % parts) + parts) % parts == part


#: Peak DuckDB memory of per-person windows (attribution's journeys) per event row (measured:
#: about 2.7 GB on 20.7M events, docs/scale.md), with a margin; sets the automatic number of partitions.
BYTES_PER_EVENT = 200.0


def sample_persons(events: TableLike, max_persons: int, *, con: Any | None = None) -> tuple[Any, int, int]:
    """The events of about ``max_persons`` persons, every event of each: for notebooks on large data.

    When ``events`` hold more than ``max_persons`` distinct persons, keep person-hash
    partition 0 of ``k = ceil(persons / max_persons)`` (:func:`person_part`): a sample of
    about ``persons / k`` persons, each with all of her events, so per-person results
    (tags, stages, segments) are those of the full data for the persons in it, and
    shares estimated on it are those of a random sample (the hash is unrelated to
    behaviour). Otherwise the events are returned as they are. Deterministic on one engine.

    Returns
    -------
    (events, persons, k)
        The events to use (an Ibis table when sampled), the number of distinct persons
        in all the events, and ``k`` (1: not sampled).

    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(p, "2024-05-01 10:00", "sms") for p in range(100)])
    >>> sample, persons, k = sample_persons(ev, 30)
    >>> persons, k, 10 < sample.count().execute() < 50
    (100, 4, True)
    """
    if int(max_persons) < 1:
        raise UsageError(f"max_persons must be at least 1, got {max_persons!r}")
    t = read(events, con=con, columns=("person_id",), localise=False)
    persons = int(backend.execute(t.person_id.nunique(), con=con))
    if persons <= max_persons:
        return events, persons, 1
    k = -(-persons // int(max_persons))
    return t.filter(person_part(t.person_id, 0, k)), persons, k


def person_partitions(events: TableLike, partitions: int | None = None, *, con: Any | None = None) -> int:
    """How many person-hash partitions (:func:`person_part`) per-person windows run in.

    ``partitions`` if given, else enough for the DuckDB memory limit
    (:func:`privdomain.backend.partitions_for`; 1 on other engines).
    """
    if partitions is not None:
        if int(partitions) != partitions or partitions < 1:
            raise ValueError(f"partitions must be a whole number >= 1, got {partitions!r}")
        return int(partitions)
    t = read(events, con=con, localise=False)
    return backend.partitions_for(check(events, con=con).rows, BYTES_PER_EVENT, t, con)


def sum_over_partitions(aggregate: Callable[[tuple[int, int]], pd.DataFrame], parts: int, keys: Sequence[str],
                        *, min_count: int = 0) -> pd.DataFrame:
    """``aggregate((i, parts))`` for each person-hash partition in turn, the counts added up by ``keys``.

    For aggregates whose every column but ``keys`` is additive over persons (counts of
    events, of persons, sums of money): a person falls in one partition
    (:func:`person_part`), so a count of distinct persons in a cell is the sum of the
    partitions' counts. With ``parts == 1`` the one aggregate is returned as it is.
    ``min_count``: as in :meth:`pandas.DataFrame.sum` (1 keeps a cell no partition
    filled null).

    >>> import pandas as pd
    >>> frames = {0: pd.DataFrame({"node": ["a", "b"], "persons": [2, 1]}), 1: pd.DataFrame({"node": ["a"], "persons": [3]})}
    >>> sum_over_partitions(lambda part: frames[part[0]], 2, ["node"]).values.tolist()
    [['a', 5], ['b', 1]]
    """
    outs = [aggregate((i, parts)) for i in range(parts)]
    if parts == 1:
        return outs[0]
    out = pd.concat(outs, ignore_index=True)
    if not len(out):
        return out
    values = [c for c in out.columns if c not in keys]
    return out.groupby(list(keys), as_index=False, dropna=False, sort=True)[values].sum(min_count=min_count)
