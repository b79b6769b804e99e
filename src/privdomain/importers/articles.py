"""``oa-articles``: Official Account article statistics (datacube) into the ``articles_daily`` table.

Reads the per-article, per-day statistics of the Official Account datacube report
``getarticlesummary`` (a JSON document ``{"list": [...]}``, JSON lines, or a CSV with the
same field names): ``ref_date``, ``msgid``, ``title``, ``int_page_read_user``,
``int_page_read_count``, ``ori_page_read_user``, ``ori_page_read_count``, ``share_user``,
``share_count``, ``add_to_fav_user``, ``add_to_fav_count``, and ``target_user``
(delivered users) where the export has it. ``getarticletotal`` records (with
``details``) hold cumulative figures, not daily ones, and are refused.

The statistics are aggregates without person ids, so they are added to a dataset an
import wrote (``--out`` of an earlier ``privdomain import``, whose events they join on
``article_id``): the articles' ``msgid`` becomes ``article_id`` (a whole number is
kept, other text is hashed to a stable id).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import io, schema
from ..errors import DataError
from ._core import (
    CHUNK_ROWS,
    GENERATOR,
    ImporterError,
    ImportResult,
    Source,
    check_columns,
    read_chunks,
    sha256_file,
    stable_id,
    to_minor_units,
)

__all__ = ["import_oa_articles", "ARTICLE_FIELDS"]

#: The datacube statistics read (each a whole number of persons or reads).
ARTICLE_FIELDS = ("target_user", "int_page_read_user", "int_page_read_count", "ori_page_read_user",
                  "ori_page_read_count", "share_user", "share_count", "add_to_fav_user", "add_to_fav_count")


def import_oa_articles(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    encoding: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportResult:
    """Add the ``articles_daily`` table (from datacube article summaries) to an imported dataset.

    Parameters
    ----------
    sources
        ``getarticlesummary`` results: JSON (``{"list": [...]}``), JSON lines or CSV.
    out
        A dataset folder an earlier import wrote (its events are what the articles join).
        An ``articles_daily`` table already there is replaced.
    encoding
        Text encoding (default: detected).

    Raises
    ------
    ImporterError
        ``out`` is not a dataset an import wrote, or a record is a cumulative
        ``getarticletotal`` one.
    DataError
        A statistic that is not a whole non-negative number, a day that is not a date, or
        an article and day given twice (column and row count named).
    """
    root = Path(out)
    try:
        manifest = io.read_manifest(root)
    except io.DatasetError:
        manifest = {}
    if manifest.get("generator") != GENERATOR or "events" not in manifest.get("row_counts", {}):
        raise ImporterError(f"{out}: oa-articles adds article statistics to a dataset an import wrote (they hold no "
                           f"person ids, and join its events on article_id): import your events or orders into "
                           f"{out} first")
    files = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    frames, sources_meta, rows_read = [], [], 0
    for f in files:
        src = Source(Path(f), encoding=encoding)
        n_file = 0
        for chunk in read_chunks(src, chunk_rows):
            where = src.path.name
            chunk = chunk.reset_index(drop=True)
            if "details" in chunk.columns:
                raise ImporterError(f"{where}: getarticletotal records (with details) hold cumulative figures; "
                                   f"import the per-day getarticlesummary report")
            check_columns(where, {"ref_date": "ref_date", "msgid": "msgid"}, list(chunk.columns),
                          "a datacube article summary")
            n_file += len(chunk)
            day = pd.to_datetime(chunk["ref_date"].astype("string").str.strip(), format="%Y-%m-%d", errors="coerce")
            bad = day.isna()
            if bad.any():
                raise DataError(where, "ref_date", "must be a date (YYYY-MM-DD)", int(bad.sum()),
                                chunk.loc[bad, "ref_date"].head(5).tolist())
            msgid = chunk["msgid"].astype("string").str.strip()
            if (msgid.isna() | (msgid == "")).any():
                raise DataError(where, "msgid", "must be present on every row", int((msgid.isna() | (msgid == "")).sum()))
            out_df = pd.DataFrame({"article_id": stable_id(msgid).astype("int64"), "msgid": msgid.astype(object),
                                   "title": chunk["title"].astype("string").astype(object) if "title" in chunk
                                   else None,
                                   "day": day.dt.tz_localize(schema.TIMEZONE)})
            for c in ARTICLE_FIELDS:
                out_df[c] = to_minor_units(chunk[c], digits=0, unit="minor", where=where, column=c) \
                    if c in chunk.columns else pd.array([pd.NA] * len(chunk), dtype="Int64")
            frames.append(out_df)
        rows_read += n_file
        sources_meta.append({"file": src.path.name, "sha256": sha256_file(src.path), "bytes": src.path.stat().st_size,
                             "rows": n_file})
    table = pd.concat(frames, ignore_index=True) if frames else schema.empty("articles_daily")
    table["title"] = table["title"].where(table["title"].notna(), None)
    dup = table.duplicated(["article_id", "day"], keep=False)
    if dup.any():
        raise DataError("articles_daily", "msgid", "must appear once per article and day (a file loaded twice?)",
                        int(dup.sum()), table.loc[dup, "msgid"].head(5).tolist())
    table = schema.conform(table.sort_values(["day", "article_id"]).reset_index(drop=True), "articles_daily")
    tmp = root / ".articles_daily.parquet.tmp"
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(arrow, tmp, **io.writer_options(arrow.schema))
    os.replace(tmp, root / "articles_daily.parquet")
    imports = {"rows_read": rows_read, "rows_kept": len(table), "dropped": {}, "sources": sources_meta}
    io.write_manifest(root, {"articles_daily": len(table)}, {"articles_import": imports})
    man = io.read_manifest(root)
    return ImportResult(io.Dataset(root), rows_read, len(table), {}, int(man["row_counts"]["events"]),
                        int(man["row_counts"].get("persons", 0)), man)
