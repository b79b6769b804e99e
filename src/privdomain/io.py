"""Read and write dataset folders, and import CSV exports.

A dataset folder holds one Parquet table per entity and a small manifest::

    dataset/
      dataset.json          schema version, scenario, seed, row counts, files
      events/part-00000.parquet, part-00001.parquet, ...   (written in blocks)
      persons.parquet  id_links.parquet  campaigns.parquet  products.parquet ...
      truth/                ground truth of a simulated dataset (optional)

The manifest is the authority on what the dataset holds. ``row_counts`` names its
tables (schema tables only: a name that is a path is refused) and ``files`` lists
every Parquet file, ``truth/`` included, with its row count (relative POSIX paths).
Readers go through :func:`verify_files`, which compares the folder with the manifest
from the Parquet footers alone (milliseconds: about 2 ms for a 1M-event dataset): a
missing, stray, truncated or rewritten file is named, never silently read or skipped.
No function here opens a file outside the dataset folder because of what a manifest
says (paths are checked, symlinks out of the folder are refused). Writers call
:func:`write_manifest` last, after every table and ``truth/`` are written; a second
call refreshes ``files``. A manifest without ``files`` (written by an older
privdomain) is checked by table totals alone.

Examples
--------
>>> import tempfile, pandas as pd
>>> from privdomain import io, schema
>>> d = tempfile.mkdtemp()
>>> ds = io.write_dataset(d, {"products": pd.DataFrame({"product_id": [1], "name": ["tea"],
...     "category": ["drink"], "price_fen": [1900]})}, meta={"seed": 1})
>>> io.read_manifest(d)["row_counts"], io.read_manifest(d)["files"]
({'products': 1}, {'products.parquet': 1})
>>> io.verify_files(d)
{'products': 1}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import schema
from .errors import DatasetError, PrivdomainError, UsageError, short_repr

__all__ = ["MANIFEST", "Dataset", "TableSink", "EventWriter", "writer_options", "write_dataset", "write_manifest",
           "read_manifest", "open_dataset", "verify_files", "check_files", "table_files", "read_table",
           "read_dataset", "file_table", "read_events_csv", "null_counts", "column_stats", "ManifestMissing", "ManifestError",
           "FilesError", "FilesMissing", "FileProblem", "CSVImportError", "DatasetError"]

MANIFEST = "dataset.json"
NEWLINE = b"\n"
PARTITIONED = {"events"}


@dataclass(frozen=True)
class Dataset:
    """A dataset folder on disk."""

    path: Path

    @property
    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.path)

    def tables(self) -> list[str]:
        return list(self.manifest.get("row_counts", {}))

    def read(self, table: str = "events", columns: list[str] | None = None) -> pd.DataFrame:
        """Load one table into pandas."""
        return read_table(self.path, table, columns=columns)

    def table(self, table: str = "events", con: Any | None = None):
        """Open one table as an Ibis table without loading it (times as wall-clock time in the dataset's zone)."""
        from .backend import to_table

        m = self.manifest
        zone = m.get("source_timezone") or m.get("timezone") or schema.TIMEZONE
        return to_table(self.path, table, con=con, zone="UTC" if str(zone).upper() in ("UTC", "Z", "GMT") else zone)

    def __fspath__(self) -> str:
        return str(self.path)


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


def writer_options(table_schema: pa.Schema) -> dict[str, Any]:
    """The fixed Parquet writer settings (the same table always gives the same bytes).

    Dictionary encoding for text and dictionary columns only; integers and timestamps
    are delta-encoded, which is smaller than dictionary or plain for ids, times and
    sparse keys and skips the dictionary attempt that high-cardinality columns abandon.
    zstd compresses the pages of text, timestamps and floats; delta-encoded integers
    are left uncompressed, as zstd takes less than 3% off them (measured on simulated
    events: 4% more bytes in all, 12% less write time). Statistics (min/max, null
    counts: :func:`null_counts` answers key checks from them, engines prune row groups
    with them) are kept for every column but text, where min/max strings cost a third
    of the write time and prune nothing. Timestamps are stored in microseconds (Parquet
    ``TIMESTAMP(MICROS)``, which Spark and every warehouse read; nanoseconds they refuse);
    a value finer than a microsecond is an error, never silently truncated.

    >>> opts = writer_options(pa.schema([("id", pa.int64()), ("name", pa.string())]))
    >>> opts["compression"], opts["use_dictionary"], opts["write_statistics"]
    ({'id': 'none', 'name': 'zstd'}, ['name'], ['id'])
    """
    text, delta, stats, codec = [], {}, [], {}
    for f in table_schema:
        codec[f.name] = "zstd"
        if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            text.append(f.name)
            continue
        stats.append(f.name)
        if pa.types.is_integer(f.type):
            codec[f.name] = "none"
        if pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type):
            delta[f.name] = "DELTA_BINARY_PACKED"
    return {"compression": codec, "use_dictionary": text, "column_encoding": delta, "write_statistics": stats,
            "store_schema": True, "coerce_timestamps": "us"}


def _write_parquet(data: pd.DataFrame | pa.Table, path: Path) -> None:
    table = data if isinstance(data, pa.Table) else _to_arrow(data)
    pq.write_table(table, path, **writer_options(table.schema))


class TableSink:
    """Append Arrow tables to one Parquet file in arrival order, in row groups of about ``rows``.

    Lets a producer write a large table block by block, without holding it all, with the
    writer settings of :func:`writer_options`; :meth:`close` returns the rows written.
    Row groups of a quarter of a million rows keep the write left for :meth:`close`
    short (it is the producer's last step) and give readers row groups to share out.
    """

    def __init__(self, path: str | os.PathLike, rows: int = 250_000):
        self.path = Path(path)
        self.rows = rows
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.written = 0
        self.writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        self.buffer.append(table)
        self.buffered += len(table)
        if self.buffered >= self.rows:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        table = pa.concat_tables(self.buffer)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, **writer_options(table.schema))
        self.writer.write_table(table, row_group_size=len(table) or None)
        self.written += len(table)
        self.buffer, self.buffered = [], 0

    def close(self) -> int:
        self._flush()
        if self.writer is not None:
            self.writer.close()
        return self.written


class EventWriter:
    """Append event blocks to ``dataset/events/part-NNNNN.parquet`` (bounded memory)."""

    def __init__(self, root: str | os.PathLike, table: str = "events"):
        self.folder = Path(root) / table
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("part-*.parquet"):
            old.unlink()
        self.parts = 0
        self.rows = 0

    def write(self, block: pd.DataFrame) -> None:
        _write_parquet(block, self.folder / f"part-{self.parts:05d}.parquet")
        self.parts += 1
        self.rows += len(block)


def write_dataset(
    path: str | os.PathLike,
    tables: Mapping[str, pd.DataFrame | Iterable[pd.DataFrame]],
    meta: Mapping[str, Any] | None = None,
) -> Dataset:
    """Write tables (a frame each, or an iterable of blocks for events) and the manifest.

    Parameters
    ----------
    path
        Folder to write; created if missing. Existing tables of the same name are
        replaced.
    tables
        ``{"events": frame or iterable of frames, "persons": frame, ...}``.
    meta
        Extra manifest entries (``scenario``, ``seed``, ...).
    """
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name, data in tables.items():
        if name in PARTITIONED or not isinstance(data, pd.DataFrame):
            writer = EventWriter(root, name)
            for block in [data] if isinstance(data, pd.DataFrame) else data:
                writer.write(block)
            counts[name] = writer.rows
        else:
            _write_parquet(data, root / f"{name}.parquet")
            counts[name] = len(data)
    write_manifest(root, counts, meta)
    return Dataset(root)


def write_manifest(root: str | os.PathLike, counts: Mapping[str, int], meta: Mapping[str, Any] | None = None) -> None:
    """Write ``dataset.json``: merged row counts, meta, and every Parquet file with its row count.

    ``files`` maps each Parquet file of the dataset (the tables named in the merged
    row counts, and ``truth/*.parquet``) to its row count read from the file's footer,
    as relative POSIX paths (``events/part-00000.parquet``). :func:`verify_files` then
    names a missing, stray or truncated file. Call it **last**, after every table and
    ``truth/`` are written; a second call (``write_manifest(root, {})``) refreshes
    ``files`` after more files were written (for example ``truth/``). The manifest is
    written to a temporary file and renamed into place, so a reader never sees half
    of it.

    Raises
    ------
    DatasetError
        A table name that is not a schema table, a table without files, an unreadable
        file, or files whose rows disagree with ``counts``.
    """
    root = Path(root)
    f = root / MANIFEST
    old = read_manifest(root) if f.exists() else {}
    row_counts = {**old.get("row_counts", {}), **dict(counts)}
    files: dict[str, int] = {}
    for name, n in row_counts.items():
        _check_table_name(f, name, "row_counts")
        found = _found(root, name)
        if not found:
            raise FilesMissing(root, [FileProblem(name, f"{name}.parquet", "missing",
                                                  f"no {name}.parquet or {name}/*.parquet to list")])
        total = 0
        for rel in found:
            rows, prob = _footer_rows(root, rel, name)
            if prob:
                raise FilesError(root, [prob])
            files[rel] = rows
            total += rows
        if total != n:
            raise FilesError(root, [FileProblem(name, name, "rows", f"files hold {total} rows, the counts given "
                                                                    f"say {n}")])
    for rel in _found(root, TRUTH):
        rows, prob = _footer_rows(root, rel, file_table(rel))
        if prob:
            raise FilesError(root, [prob])
        files[rel] = rows
    manifest = {
        "schema_version": schema.SCHEMA_VERSION,
        "timezone": schema.TIMEZONE,
        **{k: v for k, v in old.items() if k not in ("row_counts", "files")},
        **{k: v for k, v in dict(meta or {}).items() if k not in ("row_counts", "files")},
        "row_counts": row_counts,
        "files": dict(sorted(files.items())),
    }
    tmp = root / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, f)


# --- the manifest -------------------------------------------------------------------------

#: Largest manifest read (bytes); a real one is a few kB.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
TRUTH = "truth"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


class ManifestMissing(DatasetError, FileNotFoundError):
    """A folder without ``dataset.json`` (or a path that is not a folder)."""


class ManifestError(DatasetError):
    """A ``dataset.json`` that is not valid JSON, not an object, or holds wrong names or types."""


@dataclass(frozen=True)
class FileProblem:
    """One file of a dataset folder that does not agree with the manifest.

    ``kind`` is one of ``missing``, ``stray``, ``unreadable``, ``rows`` (a row count
    differs from the manifest's) or ``unsafe`` (a file outside the folder).
    """

    table: str
    file: str
    kind: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"


class FilesError(DatasetError):
    """The files of a dataset folder disagree with its manifest; ``.problems`` lists each file."""

    def __init__(self, path: Any, problems: list[FileProblem]):
        self.problems = list(problems)
        n = len(self.problems)
        head = "" if n == 1 else f"{n} file problems: "
        super().__init__(path, head + "; ".join(str(p) for p in self.problems))


class FilesMissing(FilesError, FileNotFoundError):
    """A :class:`FilesError` where at least one file the manifest lists (or a whole table) is missing."""


def _is_pathlike_name(name: str) -> bool:
    return "/" in name or "\\" in name or ".." in name or name.startswith("~") or Path(name).is_absolute() \
        or (len(name) > 1 and name[1] == ":")


def _check_table_name(f: Path, name: Any, where: str) -> str:
    if not isinstance(name, str):
        raise ManifestError(f, f"{where}: table name {short_repr(name)} is not text")
    if name in schema.TABLES:
        return name
    if _is_pathlike_name(name):
        raise ManifestError(f, f"{where}: table name {short_repr(name)} is a path; table names are the schema's "
                               f"tables ({', '.join(schema.TABLES)})")
    raise ManifestError(f, f"{where}: {UsageError.unknown('table', name, list(schema.TABLES))}")


def file_table(rel: str) -> str:
    """The table a manifest file entry belongs to.

    ``events/part-00000.parquet`` -> ``events``, ``persons.parquet`` -> ``persons``,
    ``truth/stages.parquet`` -> ``truth/stages``.

    >>> file_table("events/part-00003.parquet"), file_table("truth/stages.parquet")
    ('events', 'truth/stages')
    """
    head, _, tail = rel.partition("/")
    if not tail:
        return head.removesuffix(".parquet")
    if head == TRUTH:
        return f"{TRUTH}/{tail.removesuffix('.parquet')}"
    return head


def _check_file_key(f: Path, rel: Any) -> str:
    """A manifest ``files`` key: a relative POSIX path of a table's Parquet file, never outside the folder."""
    if not isinstance(rel, str):
        raise ManifestError(f, f"files: entry {short_repr(rel)} is not text")
    bad = f"files: entry {short_repr(rel)} is not a dataset file"
    parts = rel.split("/")
    if "\\" in rel or rel.startswith("/") or Path(rel).is_absolute() or (len(rel) > 1 and rel[1] == ":"):
        raise ManifestError(f, f"{bad} (an absolute or Windows path)")
    if any(p in ("", ".", "..") or not _NAME.fullmatch(p) for p in parts) or not rel.endswith(".parquet"):
        raise ManifestError(f, f"{bad} (names are <table>.parquet, <table>/<part>.parquet or "
                               f"truth/<name>.parquet, no '..')")
    if len(parts) == 1:
        _check_table_name(f, parts[0].removesuffix(".parquet"), "files")
    elif len(parts) == 2:
        if parts[0] != TRUTH:
            _check_table_name(f, parts[0], "files")
    else:
        raise ManifestError(f, f"{bad} (nested folders)")
    return rel


def _count(f: Path, where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError(f, f"{where}: row count {short_repr(value)} is not a non-negative integer")
    return value


def _check_manifest(f: Path, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ManifestError(f, f"must hold a JSON object, got {type(data).__name__}")
    counts = data.get("row_counts", {})
    if not isinstance(counts, dict):
        raise ManifestError(f, f"row_counts must be an object of table: rows, got {type(counts).__name__}")
    for name, n in counts.items():
        _count(f, f"row_counts.{_check_table_name(f, name, 'row_counts')}", n)
    files = data.get("files")
    if files is not None:
        if not isinstance(files, dict):
            raise ManifestError(f, f"files must be an object of path: rows, got {type(files).__name__}")
        sums: dict[str, int] = {}
        for rel, n in files.items():
            _count(f, f"files.{_check_file_key(f, rel)}", n)
            t = file_table(rel)
            if not t.startswith(TRUTH + "/"):
                if t not in counts:
                    raise ManifestError(f, f"files lists {rel} but row_counts has no table {t!r}")
                sums[t] = sums.get(t, 0) + n
        for t, n in counts.items():
            if sums.get(t, 0) != n:
                raise ManifestError(f, f"row_counts says {n} rows for {t} but its files entries sum to "
                                       f"{sums.get(t, 0)}")
    for key in ("start", "end"):
        if key in data:
            value = data[key]
            ok = isinstance(value, str)
            if ok:
                try:
                    pd.Timestamp(value)
                except (ValueError, TypeError):
                    ok = False
            if not ok:
                raise ManifestError(f, f"{key}: {short_repr(value)} is not a date (YYYY-MM-DD)")
    for key in ("timezone", "schema_version", "scenario"):
        if key in data and not isinstance(data[key], str):
            raise ManifestError(f, f"{key}: {short_repr(data[key])} is not text")
    return data


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``dataset.json`` of a dataset folder.

    Raises
    ------
    ManifestMissing
        No folder, or no ``dataset.json`` in it (also a ``FileNotFoundError``).
    ManifestError
        The file is not UTF-8 JSON, not an object, has a row count that is not a
        non-negative integer, a table name that is not a schema table (a path such
        as ``../x`` is refused), a ``files`` entry outside the folder's tables and
        ``truth/``, or ``files`` entries that disagree with ``row_counts``. The
        message names the file and what is wrong.
    """
    root = Path(path)
    f = root / MANIFEST
    if not root.exists():
        raise ManifestMissing(root, "does not exist")
    if not root.is_dir():
        raise ManifestMissing(root, f"is a file, not a dataset folder (a folder holding {MANIFEST})")
    if not f.is_file():
        raise ManifestMissing(root, f"is not a dataset folder: no {MANIFEST}")
    try:
        size = f.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise ManifestError(f, f"is {size:,} bytes; a manifest is a few kB (limit {MAX_MANIFEST_BYTES:,})")
        raw = f.read_bytes()
    except OSError as e:
        raise ManifestError(f, f"cannot be read: {e.strerror or e}") from None
    if not raw.strip():
        raise ManifestError(f, "is empty (a run killed while writing it?)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(f, f"is not UTF-8 text (byte {e.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(f, f"is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    except RecursionError:
        raise ManifestError(f, "is not a manifest: JSON nested too deeply") from None
    return _check_manifest(f, data)


def open_dataset(path: str | os.PathLike) -> Dataset:
    """Open a dataset folder (checks the manifest exists and is well formed)."""
    read_manifest(path)
    return Dataset(Path(path))


# --- the files of a dataset, against the manifest ------------------------------------------


def _inside(root: Path, rel: str) -> Path | None:
    """``root / rel`` when it resolves inside ``root`` (a symlink out of the folder gives None)."""
    p = root / rel
    try:
        real, base = p.resolve(), root.resolve()
    except (OSError, RuntimeError):
        return None
    return p if real == base or base in real.parents else None


def _found(root: Path, table: str) -> list[str]:
    """Relative paths of the Parquet files on disk that a reader would take as ``table``."""
    out = []
    if table == TRUTH or table.startswith(TRUTH + "/"):
        folder = root / TRUTH
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        if table != TRUTH:
            files = [p for p in files if p.stem == table.partition("/")[2]]
        return [f"{TRUTH}/{p.name}" for p in files if p.is_file() or p.is_symlink()]
    folder = root / table
    if folder.is_dir():
        out += [f"{table}/{p.name}" for p in sorted(folder.glob("*.parquet")) if p.is_file() or p.is_symlink()]
    single = root / f"{table}.parquet"
    if single.is_file() or single.is_symlink():
        out.append(f"{table}.parquet")
    return out


def _footer_rows(root: Path, rel: str, table: str) -> tuple[int | None, FileProblem | None]:
    """Rows of one Parquet file from its footer (no data pages), or the problem reading it."""
    p = _inside(root, rel)
    if p is None:
        return None, FileProblem(table, rel, "unsafe", "resolves outside the dataset folder (a symlink?); not read")
    try:
        size = p.stat().st_size
    except OSError:
        return None, FileProblem(table, rel, "missing", "missing (the manifest lists it)")
    if size == 0:
        return None, FileProblem(table, rel, "unreadable", "is empty (0 bytes): truncated or not written")
    try:
        return pq.read_metadata(p).num_rows, None
    except (pa.ArrowException, OSError, ValueError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        return None, FileProblem(table, rel, "unreadable",
                                 f"is not a readable Parquet file (truncated or corrupt: {short_repr(msg, 120)})")


def _table_names(manifest: Mapping[str, Any], tables: Iterable[str] | None, root: Path) -> list[str]:
    listed = manifest.get("files") or {}
    truth = sorted({file_table(k) for k in listed if k.startswith(TRUTH + "/")})
    every = list(manifest.get("row_counts", {})) + truth
    if tables is None:
        return every
    if isinstance(tables, str):
        tables = [tables]
    names = []
    for t in tables:
        if not isinstance(t, str) or (t not in schema.TABLES and not (t.startswith(TRUTH + "/")
                                                                      and _NAME.fullmatch(t[len(TRUTH) + 1:]))):
            raise UsageError.unknown("table", t, list(schema.TABLES))
        names.append(t)
    return names


def _inspect(root: Path, manifest: Mapping[str, Any], tables: list[str], truth_strays: bool = False
             ) -> tuple[dict[str, int], dict[str, list[str]], list[FileProblem]]:
    """Check ``tables``' files against the manifest from footers; return counts, files and problems.

    ``truth_strays``: also report files of ``truth/`` the manifest does not list (when it lists any).
    """
    counts: dict[str, int] = {}
    files_of: dict[str, list[str]] = {}
    problems: list[FileProblem] = []
    listed = manifest.get("files")
    row_counts = manifest.get("row_counts", {})
    for t in tables:
        truth = t.startswith(TRUTH + "/")
        on_disk = _found(root, t)
        if listed is None:
            expected = None
            if truth:  # an old manifest does not list truth/: the file on disk, if readable
                if not on_disk:
                    problems.append(FileProblem(t, f"{t}.parquet", "missing", "missing"))
                    continue
                n, prob = _footer_rows(root, on_disk[0], t)
                if prob:
                    problems.append(prob)
                else:
                    files_of[t], counts[t] = on_disk, n
                continue
        else:
            expected = {k: v for k, v in listed.items() if file_table(k) == t}
            if truth and not expected:
                problems.append(FileProblem(t, f"{t}.parquet", "missing", f"{MANIFEST} lists no {t}.parquet"))
                continue
        if not truth and t not in row_counts:
            problems.append(FileProblem(t, f"{t}.parquet", "missing",
                                        f"table {t!r} is not in the dataset ({MANIFEST} lists "
                                        f"{', '.join(row_counts) or 'no table'})"))
            continue
        total, ok = 0, True
        if expected is None:  # an old manifest: table totals only
            if not on_disk:
                problems.append(FileProblem(t, f"{t}.parquet", "missing",
                                            f"missing: no {t}.parquet or {t}/*.parquet (the manifest lists {t} "
                                            f"with {row_counts[t]:,} rows)"))
                continue
            for rel in on_disk:
                n, prob = _footer_rows(root, rel, t)
                if prob:
                    problems.append(prob)
                    ok = False
                else:
                    total += n
            if ok and total != row_counts[t]:
                problems.append(FileProblem(t, t, "rows", f"manifest says {row_counts[t]} rows, files hold {total}"))
                ok = False
            files_of[t] = on_disk
        else:
            for rel, want in sorted(expected.items()):
                n, prob = _footer_rows(root, rel, t)
                if prob:
                    problems.append(prob)
                    ok = False
                elif n != want:
                    problems.append(FileProblem(t, rel, "rows", f"holds {n:,} rows, the manifest says {want:,} "
                                                                f"(rewritten or truncated after the manifest)"))
                    ok = False
                else:
                    total += n
            for rel in on_disk:
                if rel not in expected:
                    problems.append(FileProblem(t, rel, "stray", "stray file: the manifest does not list it "
                                                                 "(copied in, or left by another run); remove it"))
                    ok = False
            if not expected and not truth and row_counts[t]:
                problems.append(FileProblem(t, t, "missing", "the manifest lists no file for this table"))
                ok = False
            files_of[t] = sorted(expected)
        if ok:
            counts[t] = total
    if listed is not None and truth_strays:
        known = {k for k in listed if k.startswith(TRUTH + "/")}
        if known:
            for rel in _found(root, TRUTH):
                if rel not in known and not any(p.file == rel for p in problems):
                    problems.append(FileProblem(file_table(rel), rel, "stray",
                                                "stray file: the manifest does not list it (a run killed while "
                                                "writing truth/, or copied in); remove it"))
    return counts, files_of, problems


def check_files(path: str | os.PathLike, tables: Iterable[str] | None = None
                ) -> tuple[dict[str, int], list[FileProblem]]:
    """Like :func:`verify_files`, but return every problem instead of raising.

    The manifest itself must be readable (else :class:`ManifestMissing` or
    :class:`ManifestError` is raised). Returns the verified row count of each table
    whose files all agree with the manifest, and the list of file problems.
    """
    root = Path(path)
    manifest = read_manifest(root)
    names = _table_names(manifest, tables, root)
    counts, _, problems = _inspect(root, manifest, names, truth_strays=tables is None)
    return counts, problems


def verify_files(path: str | os.PathLike, tables: Iterable[str] | None = None) -> dict[str, int]:
    """Check a dataset folder's Parquet files against its manifest, from the footers alone.

    Reads only file metadata (no data pages): milliseconds even on 20M events.
    Checks that the folder has a manifest, that each requested table's files exist,
    that no Parquet file a reader would take as part of a table (``<table>.parquet``,
    ``<table>/*.parquet``) is missing from the manifest (a stray part), that every
    footer is readable (a truncated file is named) and that each file's and each
    table's row count equals the manifest's. A manifest without ``files`` (written by
    privdomain before 1.1) is checked by table totals alone. ``truth/`` files are
    checked when the manifest lists any; then a file of ``truth/`` it does not list
    is stray.

    Parameters
    ----------
    path
        The dataset folder.
    tables
        Schema table names (``"events"``) or truth tables (``"truth/stages"``);
        default: every table the manifest lists, truth included.

    Returns
    -------
    dict
        Verified row count per table (truth tables keyed ``truth/<name>``).

    Raises
    ------
    ManifestMissing, ManifestError
        No manifest, or a corrupt one.
    FilesMissing
        A file the manifest lists, or a requested table, is missing (a
        ``FileNotFoundError`` too); ``.problems`` names every file.
    FilesError
        A stray, unreadable or truncated file or a row count that differs.
    privdomain.errors.UsageError
        A requested table name that is not a schema or truth table.
    """
    counts, problems = check_files(path, tables)
    if problems:
        cls = FilesMissing if any(p.kind == "missing" for p in problems) else FilesError
        raise cls(Path(path), problems)
    return counts


def table_files(path: str | os.PathLike, table: str) -> list[Path]:
    """The Parquet files that hold one table of a dataset folder, checked by :func:`verify_files`.

    ``table`` is a schema table (``events``) or a truth table (``truth/stages``).
    """
    root = Path(path)
    manifest = read_manifest(root)
    names = _table_names(manifest, [table], root)
    _, files_of, problems = _inspect(root, manifest, names)
    if problems:
        cls = FilesMissing if any(p.kind == "missing" for p in problems) else FilesError
        raise cls(root, problems)
    return [root / rel for rel in files_of[table]]


def read_table(path: str | os.PathLike, table: str = "events", columns: list[str] | None = None) -> pd.DataFrame:
    """Load one table of a dataset folder into pandas (timestamps in Asia/Shanghai).

    The table's files are checked against the manifest first (:func:`verify_files`);
    a file whose data pages cannot be read raises :class:`DatasetError` naming it.
    """
    files = table_files(path, table)
    frames = []
    for f in files:
        try:
            frames.append(pq.read_table(f, columns=columns).to_pandas())
        except (pa.ArrowException, OSError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DatasetError(f, f"cannot be read: {short_repr(msg, 160)}") from None
    if not frames:
        spec = schema.TABLES.get(table)
        df = schema.empty(table) if spec is not None else pd.DataFrame()
        return df[columns] if columns is not None and spec is not None else df
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return schema.conform(df, table) if table in schema.TABLES else df


def read_dataset(path: str | os.PathLike, tables: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """Load every table the manifest lists (or the named ones) of a dataset folder into pandas.

    Only schema tables named in the manifest are opened.
    """
    manifest = read_manifest(path)
    listed = list(manifest.get("row_counts", {}))
    names = listed if tables is None else ([tables] if isinstance(tables, str) else list(tables))
    for name in names:
        if name not in listed:
            raise UsageError.unknown("table", name, listed) if name not in schema.TABLES else FilesMissing(
                Path(path), [FileProblem(name, name, "missing", f"table {name!r} is not in the dataset "
                                                               f"({MANIFEST} lists {', '.join(listed)})")])
    return {name: read_table(path, name) for name in names}


class CSVImportError(PrivdomainError, ValueError):
    """A file that cannot be read as an events CSV (empty, not text, not CSV, not UTF-8)."""


_INT_TEXT = re.compile(r"\s*[+-]?\d+(?:\.0*)?\s*")
_MAGIC = {b"PK\x03\x04": "a zip archive or an Excel workbook (.xlsx); export it as CSV (UTF-8)",
          b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls); export it as CSV (UTF-8)",
          b"PAR1": "a Parquet file; give it a .parquet name"}


def read_events_csv(path: str | os.PathLike, encoding: str = "utf-8") -> pd.DataFrame:
    """Import an events table from CSV.

    ``ts`` must carry a UTC offset (``2024-05-01T10:00:00+08:00``); naive or
    unparseable timestamps are reported by :func:`privdomain.validate.validate`,
    which this function does not call, so that every problem is reported at once.
    Id and amount columns are read as text and converted exactly: a column whose
    every value is a whole number becomes ``Int64``; otherwise it is left as text,
    so that validation counts the rows that are not whole numbers (``1989.9999``
    fen is never rounded or truncated). Raises :class:`CSVImportError` for an
    empty file, a binary file (an Excel workbook...), text that is not CSV or a
    file that is not valid ``encoding`` text, naming the byte offset.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise CSVImportError(f"{path}: cannot be read: {e.strerror or e}") from None
    if not raw:
        raise CSVImportError(f"{path}: the file is empty (0 bytes); expected a header row and events")
    for magic, what in _MAGIC.items():
        if raw.startswith(magic):
            raise CSVImportError(f"{path}: not CSV text: this is {what}")
    if b"\x00" in raw[:65536] and not encoding.lower().startswith("utf-16"):
        raise CSVImportError(f"{path}: not CSV text: the file holds binary data (NUL bytes)")
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise CSVImportError(
            f"{path}: not valid {encoding} text: line {raw.count(NEWLINE, 0, e.start) + 1}, byte {e.start} "
            f"({raw[e.start:e.start + 1]!r}) "
            f"cannot be decoded; re-save the file as UTF-8"
        ) from None
    except LookupError:
        raise CSVImportError(f"{path}: unknown text encoding {encoding!r}") from None
    try:
        df = pd.read_csv(p, encoding=encoding, dtype=str, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise CSVImportError(f"{path}: no header row (the file holds only blank lines)") from None
    except (pd.errors.ParserError, ValueError) as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise CSVImportError(f"{path}: not a valid CSV file: {short_repr(msg, 160)}") from None
    id_cols = [c for c, col in schema.EVENTS.columns.items() if str(col.dtype) in ("Int64", "int64")]
    for c in id_cols:
        if c in df.columns:
            df[c] = _exact_int(df[c])
    if "ts" in df.columns:
        df["ts"] = _parse_ts(df["ts"])
    return df


def _exact_int(s: pd.Series) -> pd.Series:
    """Text of whole numbers as ``Int64`` (exactly, no float on the way); anything else left as text."""
    present = s.notna()
    text = s[present].astype(str)
    if not text.str.fullmatch(_INT_TEXT).all():
        return s
    digits = text.str.strip().str.replace(r"\.0*$", "", regex=True)
    try:
        values = [int(v) for v in digits]
    except ValueError:
        return s
    if values and (max(values) > 2**63 - 1 or min(values) < -(2**63)):
        return s
    out = pd.array([pd.NA] * len(s), dtype="Int64")
    out[present.to_numpy()] = values
    return pd.Series(out, index=s.index, name=s.name)


def _parse_ts(s: pd.Series) -> pd.Series:
    """Parse offset-carrying timestamps to Asia/Shanghai; leave the column as text if any fail.

    Rows with different offsets (``+08:00`` and ``Z``) are the instants they name. A
    column that cannot be parsed in full is returned unchanged (strings), so that
    validation can count the unparseable and naive rows.
    """
    text = s.astype("string")
    has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False)
    try:
        parsed = pd.to_datetime(text.where(has_offset), utc=True, errors="coerce", format="ISO8601")
    except (ValueError, OverflowError):
        return s
    if parsed.notna().sum() == s.notna().sum():
        return parsed.dt.tz_convert(schema.TIMEZONE)
    return s


def column_stats(path: str | os.PathLike, table: str, columns: Iterable[str]) -> dict[str, dict[str, Any]] | None:
    """Null count, minimum and maximum of ``columns`` of one dataset table, from the Parquet footers alone.

    Reads only the file metadata (no data pages), so a 20M-row table costs milliseconds.
    Returns ``{column: {"nulls": int, "min": value or None, "max": value or None}}``;
    ``min``/``max`` are None when some row group holding values carries no min/max
    statistics. Returns None when a column is missing or a row group carries no
    null-count statistics; the caller then counts by scanning.
    """
    cols = list(columns)
    out: dict[str, dict[str, Any]] = {c: {"nulls": 0, "min": None, "max": None, "_known": True} for c in cols}
    for f in table_files(path, table):
        meta = pq.ParquetFile(f).metadata
        names = [meta.schema.column(i).path for i in range(meta.num_columns)]
        for c in cols:
            if c not in names:
                return None
            i, acc = names.index(c), out[c]
            for rg in range(meta.num_row_groups):
                group = meta.row_group(rg)
                stats = group.column(i).statistics
                if stats is None or not stats.has_null_count:
                    return None
                acc["nulls"] += stats.null_count
                if stats.has_min_max:
                    acc["min"] = stats.min if acc["min"] is None else min(acc["min"], stats.min)
                    acc["max"] = stats.max if acc["max"] is None else max(acc["max"], stats.max)
                elif group.num_rows > stats.null_count:
                    acc["_known"] = False
    for acc in out.values():
        if not acc.pop("_known"):
            acc["min"] = acc["max"] = None
    return out


def null_counts(path: str | os.PathLike, table: str, columns: Iterable[str]) -> dict[str, int] | None:
    """Null counts of ``columns`` of one dataset table from the Parquet footers alone (:func:`column_stats`).

    Returns None when a column is missing or a row group carries no null-count
    statistics; the caller then counts by scanning.
    """
    stats = column_stats(path, table, columns)
    return None if stats is None else {c: s["nulls"] for c, s in stats.items()}


def vocabulary(path: str | os.PathLike, **overrides: Any) -> schema.Vocabulary:
    """The vocabulary a dataset folder's manifest declares (:func:`privdomain.schema.vocabulary`).

    >>> vocabulary(write_dataset(__import__("tempfile").mkdtemp(), {}, meta={"currency": "USD"}).path).currency
    'USD'
    """
    return schema.vocabulary(read_manifest(path), **overrides)
