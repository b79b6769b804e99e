"""Export a segment's ids (人群包): what a brand uploads to WeCom or Tencent Ads.

The ids of each person come from the events' id columns (``person_id``, ``id_type``,
``id_value``: every surface the person was seen on) and, for a dataset, one hop of its
``id_links`` (an id linked to one of the person's ids, e.g. the unionid behind an openid).
With a ``key`` the ids and person ids are replaced by keyed pseudonyms
(:func:`privdomain.privacy.pseudonymise`): the same key gives the same pseudonyms, so two
parties holding it can match their lists without exchanging raw ids.

Files are written atomically (a temporary file in the target folder, then ``os.replace``)
and an existing file is never replaced unless ``overwrite=True``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ibis
import pandas as pd

from .. import events as events_layer
from .. import privacy
from ..backend import execute
from ..errors import UsageError
from ..schema import ALL_ID_TYPES
from .select import Segment
from .tags import id_array, is_dataset

__all__ = ["DEFAULT_ID_TYPES", "FORMATS", "segment_ids", "export"]

#: The ids a brand uploads: WeChat unionid and openids, WeCom external user id, phone hash.
DEFAULT_ID_TYPES: tuple[str, ...] = ("unionid", "mp_openid", "oa_openid", "wecom_external_id", "phone_hash")
FORMATS = ("csv", "parquet")
_COLUMNS = ["person_id", "id_type", "id_value"]


def _id_map(source: Any, ids: pd.Series, types: list[str]) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame) and not {"ts", "touchpoint"} <= set(source.columns):
        missing = [c for c in _COLUMNS if c not in source.columns]
        if missing:
            raise UsageError(f"export: an id map needs the columns {_COLUMNS}; missing {missing}")
        m = source[_COLUMNS]
        return m[m["person_id"].isin(ids)].drop_duplicates()
    t = events_layer.read(source, columns=_COLUMNS)
    wanted = ibis.memtable(pd.DataFrame({"person_id": id_array(ids)}))
    mine = t.select("person_id", "id_type", "id_value").semi_join(wanted, "person_id")
    known = mine.select(person_id=mine.person_id, id_type=mine.id_type.cast("string"),
                        id_value=mine.id_value.cast("string")).distinct()
    known = known.filter(known.id_type.isin(list(types))) if not _has_links(source) else known
    # one scan of the events; what comes back is the segment's own ids (a few per person)
    out = execute(known)
    out = out.assign(person_id=id_array(out["person_id"]), id_type=out["id_type"].astype(object),
                     id_value=out["id_value"].astype(object))
    if not _has_links(source) or out.empty:
        return out
    # one hop of id_links, joined in the engine against the segment's ids (the links table is
    # never brought into memory, and the events are not scanned again)
    k = ibis.memtable(out)
    links = events_layer.table(source, "id_links")
    both = k
    for a, b in (("a", "b"), ("b", "a")):
        j = k.join(links, [k.id_type == links[f"id_type_{a}"].cast("string"),
                           k.id_value == links[f"id_value_{a}"].cast("string")])
        both = both.union(j.select(person_id=j.person_id, id_type=j[f"id_type_{b}"].cast("string"),
                                   id_value=j[f"id_value_{b}"].cast("string")), distinct=True)
    both = both.filter(both.id_type.isin(list(types)))
    out = execute(both)
    return out.assign(person_id=id_array(out["person_id"]), id_type=out["id_type"].astype(object),
                      id_value=out["id_value"].astype(object))


def _has_links(source: Any) -> bool:
    return is_dataset(source) and (Path(getattr(source, "path", source)) / "id_links.parquet").exists()


def segment_ids(segment: Segment, source: Any, *,
                id_types: Sequence[str] = DEFAULT_ID_TYPES, key: bytes | str | None = None) -> pd.DataFrame:
    """The segment's ids: one row per person and id, ``person_id``, ``id_type``, ``id_value``.

    Parameters
    ----------
    segment
        From :func:`privdomain.audience.select`.
    source
        A dataset folder or :class:`privdomain.io.Dataset` (events' ids plus one hop of
        ``id_links``), an events frame or table (its ids), or an id map: a frame with
        ``person_id``, ``id_type``, ``id_value``.
    id_types
        The id types to keep (of :data:`privdomain.schema.ALL_ID_TYPES`).
    key
        Pseudonymise ``person_id`` and ``id_value`` with this key (at least 16 bytes);
        None keeps raw ids.

    Returns
    -------
    pandas.DataFrame
        Sorted by person, id type and value. Persons of the segment with none of the id
        types are absent (``attrs["persons_without_ids"]`` counts them).
    """
    if not isinstance(segment, Segment):
        raise UsageError(f"export: segment must be a Segment (from audience.select), got {type(segment).__name__}")
    types = [id_types] if isinstance(id_types, str) else list(id_types)
    for t in types:
        if t not in ALL_ID_TYPES:
            raise UsageError.unknown("id type", t, ALL_ID_TYPES)
    ids = segment.ids()
    m = _id_map(source, ids, types)
    m = m[m["id_type"].isin(types)]
    m = m.assign(person_id=id_array(m["person_id"]))
    order = {t: i for i, t in enumerate(types)}
    m = (m.assign(_o=m["id_type"].map(order)).sort_values(["person_id", "_o", "id_value"], kind="stable")
         .drop(columns="_o").reset_index(drop=True))
    missing = int((~ids.isin(m["person_id"])).sum())
    if key is not None:
        m = privacy.pseudonymise(m, ["person_id", "id_value"], key)
    m.attrs = {"persons_without_ids": missing, "pseudonymised": key is not None, "condition": segment.condition}
    return m


def export(segment: Segment, source: Any, *, id_types: Sequence[str] = DEFAULT_ID_TYPES,
           key: bytes | str | None = None, path: str | os.PathLike | None = None, format: str = "csv",
           overwrite: bool = False) -> pd.DataFrame:
    """The segment's ids (:func:`segment_ids`), written to ``path`` when given.

    Parameters
    ----------
    segment, source, id_types, key
        See :func:`segment_ids`.
    path
        File to write (None: only return the frame). Its folder must exist.
    format
        ``"csv"`` (UTF-8, header ``person_id,id_type,id_value``) or ``"parquet"``.
    overwrite
        Replace an existing file; without it an existing ``path`` is refused.

    Returns
    -------
    pandas.DataFrame
        The rows written.

    Raises
    ------
    privdomain.errors.UsageError
        An unknown format or id type, an existing file without ``overwrite=True``, a
        missing folder.
    """
    if format not in FORMATS:
        raise UsageError.unknown("format", format, list(FORMATS))
    target = None
    if path is not None:
        target = Path(path)
        if not target.parent.is_dir():
            raise UsageError(f"export: folder {str(target.parent)!r} does not exist")
        if target.exists() and not overwrite:
            raise UsageError(f"export: {str(target)!r} exists; pass overwrite=True to replace it")
        if target.is_dir():
            raise UsageError(f"export: {str(target)!r} is a folder, not a file")
    out = segment_ids(segment, source, id_types=id_types, key=key)
    if target is not None:
        _write(out, target, format)
    return out


def _write(frame: pd.DataFrame, target: Path, format: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        if format == "csv":
            frame.to_csv(tmp, index=False, encoding="utf-8")
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
