"""What every importer shares: reading sources in chunks, exact money, times, and the writer.

An importer turns each chunk of its source into a *staged block*: a frame with
``ts`` (UTC instants), ``id_type``, ``id_value``, ``touchpoint``, ``channel``,
``order_id``, ``amount_fen``, the other id columns, ``referrer_value`` (the referrer's id,
of the row's id type) and, optionally, id links. The
:class:`DatasetBuilder` stages the blocks as Parquet, runs identity unification
(:func:`privdomain.identity.unify`) over every id and link once all chunks are read,
then writes the dataset folder (events in blocks, ``persons``, ``id_links``, the
manifest). Memory holds one chunk and the distinct ids, never the whole source.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import identity, io, schema
from ..errors import DataError, DatasetError, PrivdomainError, UsageError, short_repr

__all__ = ["ImporterError", "CHUNK_ROWS", "ENCODINGS", "Source", "detect_encoding", "read_chunks", "to_minor_units",
           "parse_times", "stable_id", "phone_hash", "DatasetBuilder", "ImportResult", "sha256_file",
           "check_columns"]

#: Rows read at a time from a source (bounded memory: one chunk and the distinct ids).
CHUNK_ROWS = 200_000
#: Encodings tried, in order, when a CSV's encoding is not declared.
ENCODINGS = ("utf-8-sig", "gb18030")
GENERATOR = "privdomain import"
_IDS = ["order_id", "amount_fen", "product_id", "guide_id", "campaign_id", "article_id", "live_id", "store_id"]
_STAGED = ["ts", "id_type", "id_value", "touchpoint", "channel", *_IDS, "referrer_value"]
_LINKS = ["id_type_a", "id_value_a", "id_type_b", "id_value_b", "source"]


class ImporterError(PrivdomainError, ValueError):
    """A source that cannot be imported as asked (a wrong mapping, option or file)."""


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- reading


def detect_encoding(path: str | os.PathLike, declared: str | None = None) -> str:
    """The text encoding of a file: ``declared`` if given (checked), else UTF-8 (with or without BOM) or GB18030.

    The whole file is decoded incrementally (1 MiB at a time) so a bad byte deep in a
    large file is found before any row is imported.

    Raises
    ------
    ImporterError
        The file is not valid text in the declared encoding (the byte offset is named),
        or in none of :data:`ENCODINGS`.
    """
    candidates = [declared] if declared else list(ENCODINGS)
    last: tuple[str, int] | None = None
    for enc in candidates:
        try:
            dec = codecs.getincrementaldecoder(enc)()
        except LookupError:
            raise UsageError(f"unknown text encoding {enc!r} (e.g. utf-8, gb18030, gbk, utf-16)") from None
        offset = 0
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    dec.decode(block)
                    offset += len(block)
                dec.decode(b"", final=True)
            return enc
        except UnicodeDecodeError as e:
            last = (enc, offset + e.start)
    enc, at = last or ("?", 0)
    tried = f"declared encoding {enc}" if declared else f"any of {', '.join(ENCODINGS)}"
    raise ImporterError(f"{path}: not valid text in {tried}: byte {at} cannot be decoded; declare the encoding "
                       f"(--encoding)")


@dataclass(frozen=True)
class Source:
    """One source file and how to read it."""

    path: Path
    encoding: str | None = None
    sep: str | None = None
    columns: tuple[str, ...] | None = None  # names for a file without a header row
    sheet: str | int | None = None

    @property
    def kind(self) -> str:
        s = self.path.suffix.lower()
        if s in (".parquet", ".pq"):
            return "parquet"
        if s in (".xlsx", ".xlsm"):
            return "excel"
        if s in (".jsonl", ".ndjson", ".json"):
            return "json"
        return "csv"


def _require_exists(p: Path) -> None:
    if not p.exists():
        raise FileNotFoundError(2, "No such file or directory", str(p))
    if p.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(p))
    if p.stat().st_size == 0:
        raise ImporterError(f"{p}: the file is empty (0 bytes)")


def read_chunks(src: Source, rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """The source's rows, ``rows`` at a time, every column as read (CSV: text, never converted).

    CSV and JSON-lines files are streamed; Parquet by record batches; Excel (openpyxl)
    is read whole (a worksheet holds at most about a million rows).
    """
    p = src.path
    _require_exists(p)
    kind = src.kind
    if kind == "parquet":
        try:
            pf = pq.ParquetFile(p)
        except (pa.ArrowException, OSError) as e:
            raise ImporterError(f"{p}: not a readable Parquet file ({short_repr(str(e), 120)})") from None
        for batch in pf.iter_batches(batch_size=rows):
            yield batch.to_pandas()
        return
    if kind == "excel":
        try:
            import openpyxl  # noqa: F401
        except ImportError:
            raise ImporterError(f"{p}: reading Excel needs openpyxl (pip install 'privdomain[excel]'), or export "
                               f"the sheet as CSV") from None
        df = pd.read_excel(p, sheet_name=src.sheet or 0, dtype=object)
        for start in range(0, max(len(df), 1), rows):
            yield df.iloc[start:start + rows].reset_index(drop=True)
        return
    enc = detect_encoding(p, src.encoding)
    if kind == "json":
        yield from _json_chunks(p, enc, rows)
        return
    sep = src.sep or ","
    kw: dict[str, Any] = {"dtype": str, "keep_default_na": False, "na_values": [""], "encoding": enc,
                          "chunksize": rows}
    if sep in (" ", r"\s+", "whitespace"):
        kw["sep"] = r"\s+"
    else:
        kw["sep"] = sep
    if src.columns:
        kw.update(header=None, names=list(src.columns))
    try:
        with pd.read_csv(p, **kw) as reader:
            yield from reader
    except pd.errors.EmptyDataError:
        raise ImporterError(f"{p}: no header row (the file holds only blank lines)") from None
    except pd.errors.ParserError as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise ImporterError(f"{p}: not a valid CSV file: {short_repr(msg, 160)}") from None


def _json_chunks(p: Path, enc: str, rows: int) -> Iterator[pd.DataFrame]:
    """JSON lines (one object per line), or one JSON document: a list, or ``{"orders": [...]}``."""
    with open(p, encoding=enc) as fh:
        head = fh.read(4096).lstrip()
    if head.startswith("[") or (head.startswith("{") and p.suffix.lower() == ".json"):
        with open(p, encoding=enc) as fh:
            try:
                doc = json.load(fh)
            except json.JSONDecodeError as e:
                raise ImporterError(f"{p}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        records = doc
        if isinstance(doc, dict):
            key = next((k for k in ("orders", "external_contact_list", "list") if isinstance(doc.get(k), list)), None)
            records = doc[key] if key else [doc]
        for start in range(0, len(records), rows):
            yield pd.json_normalize(records[start:start + rows])
        return
    buf: list[dict] = []
    with open(p, encoding=enc) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ImporterError(f"{p}: line {lineno} is not a JSON object: {e.msg} (column {e.colno})") from None
            if not isinstance(rec, dict):
                raise ImporterError(f"{p}: line {lineno} is not a JSON object (got {type(rec).__name__})")
            buf.append(rec)
            if len(buf) >= rows:
                yield pd.json_normalize(buf)
                buf = []
    if buf:
        yield pd.json_normalize(buf)


def check_columns(where: str, wanted: Mapping[str, str], present: Sequence[str], fmt: str = "") -> None:
    """Every mapped source column is in the file, else a did-you-mean naming the field and column.

    ``fmt``: the name of a fixed format (``a Youshu order file``) whose columns are required.
    """
    cols = [str(c) for c in present]
    for target, col in wanted.items():
        if col not in cols:
            msg = str(UsageError.unknown("column", col, cols)).replace("unknown column", "column", 1)
            if fmt:
                raise ImporterError(f"{where}: no {msg.replace('column ', '', 1)} (rule: {fmt} has the column "
                                   f"{col!r})")
            raise ImporterError(f"{where}: {target} is mapped to {msg} (rule: every mapped column must be in the file)")


# ----------------------------------------------------------------------------- values


_NUM = re.compile(r"^([+-]?)(\d*)(?:\.(\d*))?$")
_MONEY_JUNK = re.compile(r"[\s,¥￥$€£]|RMB|CNY|USD|元")


def to_minor_units(values: pd.Series, *, digits: int, unit: str, where: str, column: str) -> pd.Series:
    """Exact integer minor units (fen, cents) from money text or numbers; no float arithmetic.

    Parameters
    ----------
    values
        Money as text (``"29.33"``, ``"1,299.00"``, ``"¥19.9"``) or numbers. Floats are
        read through their shortest decimal text (``29.33`` is ``"29.33"``).
    digits
        Decimal digits of the currency's minor unit (2 for CNY and USD).
    unit
        ``"major"`` (yuan, dollars: scaled by ``10**digits``) or ``"minor"`` (fen,
        cents: must be whole).

    Raises
    ------
    DataError
        A value that is not a number, is negative, or has more decimals than the minor
        unit holds (fractional fen): the column, the rule and the row count are named.

    >>> to_minor_units(pd.Series(["29.33", "1,299", None]), digits=2, unit="major", where="f", column="c").tolist()
    [2933, 129900, <NA>]
    """
    if unit not in ("major", "minor"):
        raise UsageError.unknown("money unit", unit, ["major", "minor"])
    import pyarrow.compute as pc

    present = values.notna().to_numpy()
    if pd.api.types.is_float_dtype(values.dtype):
        text = values[present].map(repr)
    else:
        text = values[present].astype(str)
    arr = pa.array(text.to_numpy(dtype=object), type=pa.string())
    arr = pc.replace_substring_regex(arr, _MONEY_JUNK.pattern, "")
    expo = pc.match_substring_regex(arr, "^[+-]?[0-9]*[.]?[0-9]*[eE][+-]?[0-9]+$").to_numpy(zero_copy_only=False)
    if expo.any():  # scientific notation (rare): expanded exactly by decimal
        py = arr.to_pylist()
        arr = pa.array([_expand_text(t) if e else t for t, e in zip(py, expo)], type=pa.string())
    parts = pc.extract_regex(arr, r"^(?P<sign>[+-]?)(?P<whole>[0-9]*)(?:[.](?P<frac>[0-9]*))?$")
    matched = parts.is_valid().to_numpy(zero_copy_only=False)
    sign, whole, frac = (pc.fill_null(pc.struct_field(parts, i), "") for i in range(3))
    nonempty = pc.or_(pc.greater(pc.utf8_length(whole), 0), pc.greater(pc.utf8_length(frac), 0))
    ok = matched & pc.fill_null(nonempty, False).to_numpy(zero_copy_only=False)
    given = values[present]
    if not ok.all():
        bad = given[~ok]
        raise DataError(where, column, "must be an amount of money (a number)", len(bad), bad.head(5).tolist())
    neg = pc.equal(sign, "-").to_numpy(zero_copy_only=False)
    if neg.any():
        bad = given[neg]
        raise DataError(where, column, "must not be negative", int(neg.sum()), bad.head(5).tolist(),
                        hint="a refund is its own refund event with a positive amount")
    scale = digits if unit == "major" else 0
    extra = pc.utf8_slice_codeunits(frac, scale, 1 << 30)
    fractional = pc.match_substring_regex(extra, "[1-9]").to_numpy(zero_copy_only=False)
    if fractional.any():
        bad = given[fractional]
        what = f"1/{10 ** digits} of the currency" if unit == "major" else "the minor unit"
        raise DataError(where, column, f"must be whole minor units (at most {scale} decimals: {what})",
                        int(fractional.sum()), bad.head(5).tolist(),
                        hint="an amount is never rounded or truncated on import; check --unit")
    whole = pc.if_else(pc.equal(whole, ""), "0", whole)
    if scale:
        head = pc.utf8_rpad(pc.utf8_slice_codeunits(frac, 0, scale), width=scale, padding="0")
        digits_text = pc.binary_join_element_wise(whole, head, "")
    else:
        digits_text = whole
    long = pc.greater(pc.utf8_length(pc.utf8_ltrim(digits_text, characters="0")), 18).to_numpy(
        zero_copy_only=False)
    if long.any():
        raise DataError(where, column, "must be below 10**18 minor units", int(long.sum()),
                        given[long].head(5).tolist())
    ints = pc.cast(digits_text, pa.int64()).to_numpy(zero_copy_only=False)
    out = pd.array(np.zeros(len(values), dtype="int64"), dtype="Int64")
    out[~present] = pd.NA
    out[present] = ints
    return pd.Series(out, index=values.index, name=column)


def _expand_text(text: str) -> str:
    from decimal import Decimal, InvalidOperation

    try:
        return format(Decimal(text), "f")
    except InvalidOperation:
        return text


def parse_times(values: pd.Series, *, tz: str, fmt: str | None, where: str, column: str) -> pd.Series:
    """Instants (UTC) from time text, numbers or timestamps; wall-clock values are read in ``tz``.

    ``fmt``: a ``strftime`` format (``%Y%m%d``), ``epoch_ms`` or ``epoch_s``; default:
    ISO 8601 text (an offset, when present, wins over ``tz``).

    Raises
    ------
    DataError
        Values that do not parse (column, format, row count and examples), or wall-clock
        times that do not exist in ``tz`` (a daylight-saving gap).
    """
    s = values
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(s.dtype):
        parsed = s
    elif fmt in ("epoch_ms", "epoch_s"):
        num = pd.to_numeric(s, errors="coerce")
        bad = s.notna() & num.isna()
        if bad.any():
            raise DataError(where, column, f"must be a time ({fmt}: whole numbers)", int(bad.sum()),
                            s[bad].head(5).tolist())
        return pd.to_datetime(num, unit="ms" if fmt == "epoch_ms" else "s", utc=True)
    else:
        text = s.astype("string").str.strip() if not pd.api.types.is_numeric_dtype(s.dtype) else \
            s.astype("Int64").astype("string")
        try:
            if fmt:
                parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=False)
            else:
                offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False)
                if offset.all() and len(text):
                    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
                    bad = s.notna() & parsed.isna()
                    if bad.any():
                        raise DataError(where, column, "must be a time (ISO 8601)", int(bad.sum()),
                                        s[bad].head(5).tolist())
                    return parsed
                if offset.any():
                    raise DataError(where, column, "must carry a UTC offset on every row or on none",
                                    int((~offset & s.notna()).sum()), s[~offset & s.notna()].head(5).tolist())
                parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        except (ValueError, TypeError) as e:
            raise DataError(where, column, f"must be a time ({fmt or 'ISO 8601'})", int(s.notna().sum()),
                            s.dropna().head(5).tolist(), hint=short_repr(str(e), 120)) from None
        bad = s.notna() & parsed.isna()
        if bad.any():
            raise DataError(where, column, f"must be a time ({fmt or 'ISO 8601'})", int(bad.sum()),
                            s[bad].head(5).tolist(), hint="give the format with --time-format (e.g. %Y%m%d)")
    try:
        local = parsed.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    except (ValueError, TypeError) as e:
        raise DataError(where, column, f"must be a valid wall-clock time in {tz}", int(s.notna().sum()),
                        hint=short_repr(str(e), 120)) from None
    gap = parsed.notna() & local.isna()
    if gap.any():
        raise DataError(where, column, f"must be a valid, unambiguous wall-clock time in {tz}", int(gap.sum()),
                        s[gap].head(5).tolist(), hint="a daylight-saving change; export the times in UTC")
    return local.dt.tz_convert("UTC")


def text_column(s: pd.Series | None, n: int | None = None) -> pd.Series:
    """Trimmed text with blanks as None (whole floats read back as integers: ``1.0`` -> ``"1"``).

    ``s=None`` (a column the source lacks) gives ``n`` Nones.

    >>> text_column(pd.Series([" a ", "", None])).tolist(), text_column(pd.Series([3.0, None])).tolist()
    (['a', None, None], ['3', None])
    """
    if s is None:
        return pd.Series([None] * int(n or 0), dtype=object)
    if pd.api.types.is_float_dtype(s.dtype):
        whole = schema.whole_numbers(s)
        s = whole if whole is not None else s
    t = s.astype("string").str.strip()
    ok = (t.notna() & (t != "")).fillna(False).to_numpy(dtype=bool)
    out = t.astype(object).reset_index(drop=True)
    out[~ok] = None
    return out


def stable_id(values: pd.Series) -> pd.Series:
    """Whole-number ids as ``Int64`` (exactly); any other id text as a stable 62-bit hash of it.

    The same text gives the same id in every chunk and every run (blake2b), so an order
    id or a product code needs no table held in memory.

    >>> stable_id(pd.Series(["17", None])).tolist()
    [17, <NA>]
    >>> int(stable_id(pd.Series(["E2024-01"]))[0]) == int(stable_id(pd.Series(["E2024-01"]))[0])
    True
    """
    present = values.notna()
    text = values[present].astype(str).str.strip()
    out = pd.array(np.zeros(len(values), dtype="int64"), dtype="Int64")
    out[~present.to_numpy()] = pd.NA
    if text.str.fullmatch(r"\d{1,18}").all():
        out[present.to_numpy()] = text.astype("int64").to_numpy()
    else:
        out[present.to_numpy()] = np.array(
            [int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "big") >> 2 for t in text],
            dtype="int64")
    return pd.Series(out, index=values.index)


def phone_hash(values: pd.Series) -> pd.Series:
    """sha256 of the digits of a phone number (the raw number is never stored)."""
    return values.map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else
                      hashlib.sha256(re.sub(r"\D", "", str(v)).encode()).hexdigest()[:32])


# ----------------------------------------------------------------------------- writing


@dataclass
class ImportResult:
    """What an import did: the dataset written and its kept/dropped report."""

    dataset: io.Dataset
    rows_read: int
    rows_kept: int
    dropped: dict[str, int]
    events: int
    persons: int
    manifest: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        drops = ", ".join(f"{n:,} {why}" for why, n in self.dropped.items()) or "none"
        return (f"{self.dataset.path}: {self.rows_read:,} source rows read, {self.rows_kept:,} kept, dropped: "
                f"{drops}; {self.events:,} events, {self.persons:,} persons")


def _claim_out(out: Path) -> None:
    """``out`` may be missing, empty, or a dataset an earlier import wrote; anything else is refused untouched."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DatasetError(out, "exists and is not a folder; give a new folder with --out")
    entries = [p for p in out.iterdir()]
    if not entries:
        return
    try:
        manifest = io.read_manifest(out)
    except DatasetError:
        manifest = {}
    if manifest.get("generator") != GENERATOR:
        raise DatasetError(out, "holds files an import did not write; give a new or empty folder with --out "
                                "(nothing was changed)")


def _write(df: pd.DataFrame, path: Path) -> None:
    tbl = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(tbl, path, **io.writer_options(tbl.schema))


class DatasetBuilder:
    """Stage event blocks, unify identities, write the dataset folder (atomically).

    Parameters
    ----------
    out
        The dataset folder: missing, empty, or one an earlier import wrote.
    vocab
        The dataset's vocabulary (declared touchpoints, currency, source time zone).
    kind
        The importer (``table``, ``youshu-orders``...), recorded in the manifest.
    """

    def __init__(self, out: str | os.PathLike, vocab: schema.Vocabulary, kind: str):
        self.out = Path(out)
        _claim_out(self.out)
        self.vocab = vocab
        self.kind = kind
        parent = self.out.resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.import-", dir=parent))
        (self.tmp / "stage").mkdir()
        self.parts = 0
        self.rows_read = 0
        self.rows_kept = 0
        self.dropped: Counter[str] = Counter()
        self.notes: Counter[str] = Counter()
        self.links: list[pd.DataFrame] = []
        self.ids: set[tuple[str, str]] = set()
        self.sources: list[dict[str, Any]] = []

    def add_source(self, path: Path, rows: int) -> None:
        self.sources.append({"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                             "rows": int(rows)})

    def drop(self, reason: str, n: int) -> None:
        if n:
            self.dropped[reason] += int(n)

    def add(self, block: pd.DataFrame, links: pd.DataFrame | None = None) -> None:
        """Stage one block of events (columns of :data:`_STAGED`) and its id links."""
        block = block.reindex(columns=_STAGED)
        if len(block):
            for c in _IDS:
                block[c] = block[c].astype("Int64")
            block["referrer_value"] = block["referrer_value"].astype(object)
            block["ts"] = pd.to_datetime(block["ts"], utc=True)
            tbl = pa.Table.from_pandas(block.reset_index(drop=True), preserve_index=False)
            pq.write_table(tbl, self.tmp / "stage" / f"{self.parts:06d}.parquet")
            self.parts += 1
            distinct = block[["id_type", "id_value"]].astype(str).drop_duplicates()
            self.ids.update(zip(distinct["id_type"], distinct["id_value"]))
            ref = block.loc[block["referrer_value"].notna(), ["id_type", "referrer_value"]].astype(str).drop_duplicates()
            self.ids.update(zip(ref["id_type"], ref["referrer_value"]))
        if links is not None and len(links):
            self.links.append(links[_LINKS].drop_duplicates())

    def finish(self, meta: Mapping[str, Any]) -> ImportResult:
        """Unify identities, write every table and the manifest, and move the folder into place."""
        try:
            return self._finish(meta)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _finish(self, meta: Mapping[str, Any]) -> ImportResult:
        if not self.parts:
            raise ImporterError(f"no events to import: {self.rows_read:,} source rows read, none kept (dropped: "
                               f"{dict(self.dropped) or 'none'})")
        links = pd.concat(self.links, ignore_index=True).drop_duplicates() if self.links else \
            pd.DataFrame({c: pd.Series([], dtype=object) for c in _LINKS})
        same = (links["id_type_a"] == links["id_type_b"]) & (links["id_value_a"] == links["id_value_b"])
        links = links[~same].reset_index(drop=True)
        ids = pd.DataFrame(sorted(self.ids), columns=["id_type", "id_value"])
        unified = identity.unify(ids, links)
        key = pd.Series(unified["unified_id"].to_numpy(), index=pd.MultiIndex.from_frame(unified[["id_type",
                                                                                                    "id_value"]]))
        final = self.tmp / "dataset"
        writer = io.EventWriter(final)
        next_id = 0
        for i in range(self.parts):
            block = pq.read_table(self.tmp / "stage" / f"{i:06d}.parquet").to_pandas()
            idx = pd.MultiIndex.from_frame(block[["id_type", "id_value"]].astype(str))
            block.insert(0, "event_id", np.arange(next_id, next_id + len(block), dtype="int64"))
            next_id += len(block)
            block["person_id"] = key.reindex(idx).to_numpy().astype("int64")
            block["ts"] = block["ts"].dt.tz_convert(schema.TIMEZONE)
            ref = block.pop("referrer_value")
            has = ref.notna().to_numpy()
            referrer = pd.array([pd.NA] * len(block), dtype="Int64")
            if has.any():
                ridx = pd.MultiIndex.from_arrays([block["id_type"].astype(str)[has], ref[has].astype(str)])
                referrer[has] = key.reindex(ridx).to_numpy().astype("int64")
            block["referrer_person_id"] = referrer
            writer.write(schema.conform(block, "events"))
        persons = pd.DataFrame({"person_id": np.arange(int(unified["unified_id"].max()) + 1, dtype="int64")})
        _write(persons, final / "persons.parquet")
        counts = {"events": writer.rows, "persons": len(persons)}
        if len(links):
            _write(links.reset_index(drop=True), final / "id_links.parquet")
            counts["id_links"] = len(links)
        report = {"rows_read": self.rows_read, "rows_kept": self.rows_kept, "dropped": dict(self.dropped),
                  "notes": dict(self.notes), "sources": self.sources}
        manifest_meta = {"generator": GENERATOR, "importer": self.kind, **self.vocab.manifest(),
                         "import": report, **dict(meta)}
        io.write_manifest(final, counts, manifest_meta)
        if self.out.exists():
            old = self.tmp / "old"
            os.replace(self.out, old)
        os.replace(final, self.out)
        return ImportResult(io.Dataset(self.out), self.rows_read, self.rows_kept, dict(self.dropped),
                            writer.rows, len(persons), io.read_manifest(self.out))
