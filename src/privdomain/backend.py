"""Turn any supported input into an Ibis table, and run Ibis expressions.

Every metric in privdomain accepts

* a pandas DataFrame,
* a dataset folder written by :func:`privdomain.io.write_dataset` (or one Parquet
  file / glob),
* an Ibis table on any backend (DuckDB, PySpark, ClickHouse, ...); a dataset path
  with ``con=`` an Ibis PySpark connection is read by Spark (:func:`spark_instants`),

calls :func:`to_table` on it and builds an Ibis expression. :func:`execute` runs the
expression (on DuckDB in-process unless the table is bound to another backend) and
returns a small pandas frame.

Time inside expressions
-----------------------
Stored timestamps are timezone-aware instants (see :mod:`privdomain.schema`).
:func:`to_table` turns every timezone-aware timestamp column into **naive Beijing
wall-clock time** (UTC+08:00; China has no daylight saving), so ``ts.date()`` and
``ts.truncate("W")`` inside a metric are Beijing days and weeks on every engine.
Timestamps in metric outputs are therefore naive Beijing time. A dataset that declares
another zone (its manifest's ``source_timezone`` or ``timezone``) is read in that zone
instead: :func:`privdomain.events.read` passes it as ``zone`` (:func:`zone_offset_us`
gives the offset inside an expression, fixed or with daylight saving).

Examples
--------
>>> import pandas as pd
>>> from privdomain import backend
>>> df = pd.DataFrame({"person_id": [1, 2], "ts": pd.to_datetime(
...     ["2024-01-01 23:30", "2024-01-02 00:30"]).tz_localize("Asia/Shanghai")})
>>> t = backend.to_table(df)
>>> backend.execute(t.group_by(day=t.ts.date()).agg(n=t.count()).order_by("day"))["n"].tolist()
[1, 1]
"""

from __future__ import annotations

import bisect
import datetime as _dt
import functools
import os
import zoneinfo
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Union

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pandas as pd

from .schema import TIMEZONE

__all__ = [
    "TableLike",
    "MEMORY_LIMIT",
    "default_settings",
    "spill_directory",
    "connect",
    "require_columns",
    "to_table",
    "spark_instants",
    "epoch_us",
    "backend_name",
    "localise_table",
    "execute",
]


TableLike = Union[pd.DataFrame, str, os.PathLike, ir.Table, "Any"]

_DEFAULT_CON = None


MEMORY_LIMIT: str | None = None
"""Default DuckDB ``memory_limit`` of :func:`connect`: None keeps DuckDB's own (80% of the
machine's memory); ``PRIVDOMAIN_MEMORY_LIMIT`` sets one for the process."""


def spill_directory(base: str | os.PathLike | None = None) -> Path:
    """A spill folder of its own for one DuckDB connection, under ``base``.

    ``base`` defaults to ``$PRIVDOMAIN_TEMP_DIRECTORY`` or ``privdomain_duckdb`` under the
    system temporary folder. DuckDB (1.4) names its spill files by size class and index
    only (``duckdb_temp_storage_DEFAULT-0.tmp``), so two connections spilling into one
    folder, in two processes (two notebooks of ``privdomain report --jobs 2``, two test
    workers) or in one, write over each other's files, and the first to close deletes
    the other's (duckdb/duckdb#15173). Each connection therefore gets
    ``<base>/<pid>-<random>``, which DuckDB creates when it first spills and empties when
    the connection closes. Folders left by processes that are gone (a crash, a kill) are
    removed here, so they do not pile up on disk.

    >>> import tempfile
    >>> base = tempfile.mkdtemp()
    >>> a, b = spill_directory(base), spill_directory(base)
    >>> a != b and a.parent == b.parent == Path(base) and a.name.startswith(f"{os.getpid()}-")
    True
    """
    import secrets
    import tempfile

    root = Path(base if base is not None else os.environ.get(
        "PRIVDOMAIN_TEMP_DIRECTORY", Path(tempfile.gettempdir()) / "privdomain_duckdb"))
    _sweep_spill_folders(root)
    return root / f"{os.getpid()}-{secrets.token_hex(4)}"


def _sweep_spill_folders(root: Path) -> None:
    """Remove ``<pid>-<hex>`` spill folders under ``root`` whose process is gone."""
    import re
    import shutil

    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for d in entries:
        m = re.fullmatch(r"(\d+)-[0-9a-f]{8}", d.name)
        if not m or not d.is_dir():
            continue
        pid = int(m.group(1))
        try:
            os.kill(pid, 0)
            continue  # alive (or alive under another user): not ours to remove
        except ProcessLookupError:
            pass
        except OSError:
            continue
        shutil.rmtree(d, ignore_errors=True)


def default_settings() -> dict[str, str]:
    """The DuckDB settings :func:`connect` applies unless told otherwise.

    * ``temp_directory``: a folder of its own (:func:`spill_directory`) under
      ``$PRIVDOMAIN_TEMP_DIRECTORY`` or ``privdomain_duckdb`` in the system temporary
      folder (:func:`tempfile.gettempdir`): where DuckDB spills large sorts, joins and
      aggregates (an in-memory DuckDB connection has no spill folder of its own, or
      writes ``.tmp`` into the working directory; a folder shared by two connections
      corrupts their spills). Each call gives a new folder.
    * ``memory_limit``: only when ``$PRIVDOMAIN_MEMORY_LIMIT`` is set (e.g. ``"2GB"``
      on a small laptop); otherwise DuckDB's default, 80% of the memory. A low limit
      makes DuckDB spill where it can; window operators cannot spill, so the journey
      windows of :func:`privdomain.attribution.build_paths` run one person-hash partition
      at a time, as many as the limit needs (:func:`partitions_for`; 5 partitions and
      0.8 GB peak on 20.7M events under a 2 GB limit, docs/scale.md). No limit is
      imposed by default. The funnels and boards stay under 3 GB on 20M events without
      one (docs/benchmarks.md).

    >>> import os
    >>> "temp_directory" in default_settings()
    True
    """
    out = {"temp_directory": str(spill_directory())}
    limit = os.environ.get("PRIVDOMAIN_MEMORY_LIMIT", MEMORY_LIMIT)
    if limit and limit.lower() != "none":
        out["memory_limit"] = limit
    return out


def connect(**kwargs: Any) -> Any:
    """The default in-process DuckDB connection (created once per process).

    Keyword arguments are passed to :func:`ibis.duckdb.connect` on first use (or
    make a new default connection when given later). Unless given, the DuckDB
    settings of :func:`default_settings` apply: a spill folder in the system
    temporary folder and DuckDB's own memory limit. Override them per process with
    the environment variables ``PRIVDOMAIN_MEMORY_LIMIT`` /
    ``PRIVDOMAIN_TEMP_DIRECTORY``, per connection with
    ``connect(memory_limit="8GB", temp_directory="/scratch/duckdb")``, or on the
    live connection with ``connect().raw_sql("SET memory_limit = '8GB'")``.

    >>> con = connect()
    >>> con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0] != ""
    True
    """
    global _DEFAULT_CON
    if _DEFAULT_CON is None or kwargs:
        _DEFAULT_CON = ibis.duckdb.connect(**{**default_settings(), **kwargs})
        try:  # keep logs clean; inside Jupyter DuckDB refuses the setting without ipywidgets
            _DEFAULT_CON.raw_sql("SET enable_progress_bar = false")
        except Exception:  # noqa: BLE001 - duckdb raises InvalidInputException there
            pass
    return _DEFAULT_CON


_UNITS = {"": 1, "b": 1, "bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str) -> int | None:
    """Bytes of a size such as DuckDB writes it (``"1.8 GiB"``, ``"8GB"``, ``"512 MiB"``); None if not a size.

    >>> parse_bytes("2GB"), parse_bytes("1.5 KiB"), parse_bytes("none")
    (2000000000, 1536, None)
    """
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if m is None or m.group(2).lower() not in _UNITS:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def memory_limit_bytes(con: Any | None = None) -> int | None:
    """The DuckDB ``memory_limit`` of ``con`` (default: :func:`connect`) in bytes; None for another engine."""
    con = connect() if con is None else con
    if getattr(con, "name", None) != "duckdb":
        return None
    value = con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0]
    return parse_bytes(value)


def partitions_for(rows: int, bytes_per_row: float, expr: ir.Expr | None = None, con: Any | None = None) -> int:
    """How many person partitions a query of ``rows`` rows needs to fit the DuckDB memory limit.

    ``k = ceil(rows * bytes_per_row / (limit / 2))``, at least 1: each partition's
    working set stays under half the limit, which leaves room for DuckDB's own
    buffers. ``bytes_per_row`` is the query's measured peak per input row. A query bound
    to another engine (Spark, a warehouse), or a limit that cannot be read, gives 1: those
    engines spill or distribute on their own.

    >>> partitions_for(0, 200.0)
    1
    """
    if con is None and expr is not None:
        name = backend_name(expr)
        if name is not None and name != "duckdb":
            return 1
        try:
            con = expr._find_backend(use_default=False)
        except Exception:  # noqa: BLE001 - unbound expression: runs on the default connection
            con = None
    try:
        limit = memory_limit_bytes(con)
    except Exception:  # noqa: BLE001 - a connection without current_setting
        return 1
    if not limit or rows <= 0:
        return 1
    return max(1, -(-int(rows * bytes_per_row) // (limit // 2)))


def require_columns(table: pd.DataFrame | ir.Table, columns: Iterable[str], what: str = "events",
                    why: str = "") -> None:
    """Raise a ValueError naming every column of ``columns`` that ``table`` lacks.

    ``table`` is a pandas frame or an Ibis table; ``what`` names it in the message and
    ``why`` (optional) says what the columns are needed for.

    >>> require_columns(pd.DataFrame({"a": [1]}), ["a", "b"], "frame")
    Traceback (most recent call last):
    ...
    ValueError: frame: missing column(s) ['b']; got ['a']
    """
    missing = [c for c in columns if c not in table.columns]
    if missing:
        need = f" ({why})" if why else ""
        raise ValueError(f"{what}: missing column(s) {missing}{need}; got {list(table.columns)}")


def _parquet_source(path: Path, table: str) -> str:
    if path.is_dir():
        folder = path / table
        if folder.is_dir():
            return str(folder / "*.parquet")
        single = path / f"{table}.parquet"
        if single.exists():
            return str(single)
        raise FileNotFoundError(f"dataset {path} has no table {table!r} ({folder}/ or {single.name})")
    if path.suffix == ".parquet" or "*" in str(path):
        return str(path)
    raise FileNotFoundError(f"{path} is neither a dataset folder nor a Parquet file")


def to_table(data: TableLike, table: str = "events", con: Any | None = None, localise: bool = True,
             zone: str = TIMEZONE) -> ir.Table:
    """Return ``data`` as an Ibis table with timestamps in naive Beijing time.

    This is the raw reader: it resolves the input and checks nothing. Metrics read
    events through :func:`privdomain.events.read`, which checks them first.

    Parameters
    ----------
    data
        A pandas DataFrame, a dataset folder / Parquet path, an Ibis table or a
        :class:`privdomain.io.Dataset`.
    table
        Which table of a dataset folder to open (``events``, ``persons``, ...).
    con
        Ibis connection used to read Parquet paths; the default DuckDB one if None.
    localise
        Turn timezone-aware timestamps into naive Beijing time (see the module
        docstring); False keeps them as they are.
    zone
        The time zone naive wall-clock time is given in (default Asia/Shanghai).
    """
    if isinstance(data, ir.Table):
        t = data
    elif isinstance(data, pd.DataFrame):
        return ibis.memtable(_localise_frame(data, zone) if localise else _plain_frame(data))
    elif isinstance(data, (str, os.PathLike)):  # a path, or a privdomain.io.Dataset (os.PathLike)
        con = con or connect()
        source = _parquet_source(Path(data), table)
        t = con.read_parquet(source)
        if getattr(con, "name", "") == "pyspark":
            t = spark_instants(t, source)
    else:
        raise TypeError(
            f"expected a pandas DataFrame, a dataset path or an Ibis table, got {type(data).__name__}"
        )
    return localise_table(t, zone) if localise else t


def spark_instants(t: ir.Table, source: str | os.PathLike) -> ir.Table:
    """A Parquet table read by Spark, with its instant columns typed as UTC instants.

    Spark reads a Parquet ``TIMESTAMP(isAdjustedToUTC=true)`` column (an instant, as
    privdomain writes them) as its ``TimestampType``, which Ibis types without a zone
    and shows in the session time zone, UTC under Ibis (``ibis.pyspark.connect`` sets
    ``spark.sql.session.timeZone`` to UTC). This marks those columns as UTC instants,
    as the file's own schema says, so :func:`localise_table` and the events checks see
    instants, as on DuckDB. Columns the file stores without a zone stay naive.

    Parameters
    ----------
    t
        The Ibis PySpark table read from ``source``.
    source
        The Parquet file, or a glob of files (the first one's schema is read).
    """
    import glob

    import pyarrow.parquet as pq

    files = sorted(glob.glob(str(source))) or [str(source)]
    schema = pq.read_schema(files[0])
    changes = {}
    for name, dtype in t.schema().items():
        if not dtype.is_timestamp() or dtype.timezone is not None or name not in schema.names:
            continue
        arrow = schema.field(name).type
        if getattr(arrow, "tz", None) is not None:
            changes[name] = t[name].cast(dt.Timestamp(timezone="UTC"))
    return t.mutate(**changes) if changes else t


def _plain_frame(df: pd.DataFrame) -> pd.DataFrame:
    cat_cols = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)]
    return df.assign(**{c: df[c].astype(object) for c in cat_cols}) if cat_cols else df


def _localise_frame(df: pd.DataFrame, zone: str = TIMEZONE) -> pd.DataFrame:
    tz_cols = [c for c in df.columns if isinstance(df[c].dtype, pd.DatetimeTZDtype)]
    cat_cols = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)]
    if not tz_cols and not cat_cols:
        return df
    out = df.copy(deep=False)
    for c in tz_cols:
        out[c] = out[c].dt.tz_convert(zone).dt.tz_localize(None)
    for c in cat_cols:
        out[c] = out[c].astype(object)
    return out


@ibis.udf.scalar.builtin(name="epoch_us")
def epoch_us(ts) -> dt.int64:  # type: ignore[empty-body]
    """DuckDB's ``epoch_us``: microseconds since 1970-01-01 of a timestamp (no time-zone cast).

    On an instant (timezone-aware column) that is UTC microseconds; on a naive column
    (Beijing wall-clock time inside metrics) it is Beijing wall-clock microseconds.
    DuckDB only: check :func:`backend_name` first.
    """


@ibis.udf.scalar.builtin(name="make_timestamp")
def _duckdb_make_timestamp(us: dt.int64) -> dt.Timestamp():  # type: ignore[empty-body]
    """DuckDB's make_timestamp(microseconds): a naive timestamp."""


def backend_name(expr: ir.Expr) -> str | None:
    """Name of the backend an expression is bound to (``"duckdb"``, ``"pyspark"``...), None if unbound."""
    try:
        backend = expr._find_backend(use_default=False)
    except Exception:  # noqa: BLE001 - unbound expression
        return None
    return getattr(backend, "name", None)


def _is_duckdb(t: ir.Table) -> bool:
    return backend_name(t) == "duckdb"


def localise_table(t: ir.Table, zone: str = TIMEZONE) -> ir.Table:
    """``t`` with every timezone-aware timestamp column as naive wall-clock time in ``zone`` (default Beijing)."""
    changes = {}
    # DuckDB casts TIMESTAMPTZ to TIMESTAMP through its time-zone machinery (about 30x
    # slower than integer arithmetic on 20M rows); epoch microseconds give the same value
    fast = _is_duckdb(t)
    hours = fixed_offset_hours(zone)
    for name, dtype in t.schema().items():
        if dtype.is_timestamp() and dtype.timezone is not None:
            if fast:
                us = epoch_us(t[name])
                changes[name] = _duckdb_make_timestamp(us + zone_offset_us(us, zone))
                continue
            # the instant as naive UTC wall time (Ibis backends run their sessions in UTC)
            naive = t[name].cast(ibis.dtype("timestamp"))
            if hours is not None:
                changes[name] = naive + ibis.interval(seconds=int(round(hours * 3600)))
            else:
                secs = t[name].epoch_seconds().cast("int64")
                changes[name] = naive + (zone_offset_us(secs * 1_000_000, zone) // 1_000_000).as_interval("s")
    return t.mutate(**changes) if changes else t


_YEARS = (1970, 2038)
"""The span over which a zone with daylight saving has its offset changes tabulated."""


@functools.lru_cache(maxsize=64)
def fixed_offset_hours(zone: str) -> float | None:
    """The UTC offset of ``zone`` in hours when it has not changed since 1992 (UTC: 0, Asia/Shanghai: 8), else None.

    >>> fixed_offset_hours("Asia/Shanghai"), fixed_offset_hours("UTC"), fixed_offset_hours("Europe/Berlin")
    (8.0, 0.0, None)
    """
    if zone.upper() in ("UTC", "Z", "GMT"):
        return 0.0
    tz = zoneinfo.ZoneInfo(zone)
    probes = [_dt.datetime(y, m, 15, 12) for y in (1992, 2000, 2010, 2020, 2024, 2030) for m in (1, 4, 7, 10)]
    offsets = {tz.utcoffset(p) for p in probes}
    if len(offsets) != 1:
        return None
    return offsets.pop().total_seconds() / 3600


@functools.lru_cache(maxsize=16)
def _transitions(zone: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Instants (UTC microseconds) at which ``zone``'s offset changes over :data:`_YEARS`, and the offsets.

    ``offsets[i]`` holds from ``starts[i]`` (``starts[0]`` is -inf) to the next start.
    """
    tz = zoneinfo.ZoneInfo(zone)
    utc = _dt.UTC

    def off(sec: int) -> int:
        return int(_dt.datetime.fromtimestamp(sec, utc).astimezone(tz).utcoffset().total_seconds())

    hours = pd.date_range(f"{_YEARS[0]}-01-01", f"{_YEARS[1]}-01-01", freq="6h", tz="UTC")
    local = hours.tz_convert(zone).tz_localize(None)
    secs = ((local - hours.tz_localize(None)) // pd.Timedelta(seconds=1)).to_numpy()
    grid = (hours.tz_localize(None) - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    grid = grid.to_numpy()
    starts, offsets = [0], [int(secs[0])]
    for k in (secs[1:] != secs[:-1]).nonzero()[0]:  # offsets change at most once in six hours
        x, y, before = int(grid[k]), int(grid[k + 1]), int(secs[k])  # the change lies in (x, y]
        while y - x > 1:
            m = (x + y) // 2
            x, y = (m, y) if off(m) == before else (x, m)
        starts.append(y * 1_000_000)
        offsets.append(off(y))
    return tuple(starts), tuple(o * 1_000_000 for o in offsets)


def zone_offset_us(us: ir.IntegerValue, zone: str) -> ir.IntegerValue:
    """The UTC offset of ``zone`` in microseconds at the instant ``us`` (UTC microseconds), inside an expression.

    A zone with a fixed offset gives a literal; a zone with daylight saving a balanced
    tree of comparisons against its offset changes from 1970 to 2037 (about eight
    comparisons a row), the same on every engine.

    >>> import ibis
    >>> t = ibis.memtable({"us": [1_719_792_000_000_000]})  # 2024-07-01 00:00 UTC
    >>> int(execute(t.select(o=zone_offset_us(t.us, "Europe/Berlin")))["o"][0]) // 3_600_000_000
    2
    """
    hours = fixed_offset_hours(zone)
    if hours is not None:
        return ibis.literal(int(round(hours * 3600)) * 1_000_000, type="int64")
    starts, offsets = _transitions(zone)

    def tree(i: int, j: int) -> ir.IntegerValue:  # offsets[i:j]
        if j - i == 1:
            return ibis.literal(offsets[i], type="int64")
        m = (i + j) // 2
        return ibis.ifelse(us < starts[m], tree(i, m), tree(m, j))

    return tree(0, len(offsets))


def zone_offset_us_py(us: int, zone: str) -> int:
    """:func:`zone_offset_us` for one Python integer (the same table of offset changes)."""
    hours = fixed_offset_hours(zone)
    if hours is not None:
        return int(round(hours * 3600)) * 1_000_000
    starts, offsets = _transitions(zone)
    return offsets[bisect.bisect_right(starts, us) - 1]


def execute(expr: ir.Expr, con: Any | None = None) -> pd.DataFrame:
    """Run an Ibis expression and return a pandas object.

    Unbound expressions (built on pandas memtables) run on ``con`` or the default
    DuckDB connection; expressions bound to a backend run there.
    """
    return _engine_of(expr, con).execute(expr)


def execute_arrow(expr: ir.Expr, con: Any | None = None) -> Any:
    """Run an Ibis table expression as :func:`execute` does, returning a :class:`pyarrow.Table`.

    For large results of strings: Arrow keeps them in one buffer, pandas' object columns
    take a Python object per value.
    """
    return _engine_of(expr, con).to_pyarrow(expr)


def _engine_of(expr: ir.Expr, con: Any | None) -> Any:
    """``con``, else the backend ``expr`` is bound to, else the default connection."""
    if con is None:
        try:
            backend = expr._find_backend(use_default=False)
        except Exception:  # noqa: BLE001 - unbound expression
            backend = None
        con = backend if backend is not None else connect()
    return con
