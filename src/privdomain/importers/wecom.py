"""``wecom-contacts``: WeCom external-contact records into ``wecom_add`` events and id links.

Reads the records WeCom's external-contact API returns, as JSON lines or a JSON
document:

* ``externalcontact/get``: ``{"external_contact": {...}, "follow_user": [{...}, ...]}``;
* ``externalcontact/batch/get_by_user``: ``{"external_contact_list": [{"external_contact":
  {...}, "follow_info": {...}}, ...]}`` (or one such item per line);

or a CSV with one row per contact and guide: ``external_userid``, ``unionid``
(optional), ``userid``, ``createtime``, ``add_way`` and ``state`` (optional).

Each (contact, guide) pair becomes a ``wecom_add`` event at ``createtime`` (epoch
seconds) on the ``guide`` channel, with the contact's ``external_userid`` as its
``wecom_external_id`` and ``guide_id`` from the guide's ``userid`` (a whole number is
kept, other text is hashed to a stable id; the manifest's ``guides`` maps each
``userid`` to its ``guide_id``). A contact's ``unionid`` links it to the person's
other WeChat ids. ``add_way`` (how the contact was added: 1 QR code, 3 search by
phone...) and ``state`` (the channel code of a "contact me" QR code) are counted in
the manifest.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import DataError
from ._core import (
    CHUNK_ROWS,
    DatasetBuilder,
    ImportResult,
    Source,
    check_columns,
    parse_times,
    read_chunks,
    stable_id,
    text_column,
)

__all__ = ["import_wecom_contacts"]


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _rows(chunk: pd.DataFrame) -> pd.DataFrame:
    """One row per (contact, guide) from API records (nested) or a flat CSV."""
    if "external_userid" in chunk.columns:  # a flat CSV
        return chunk
    recs = []
    for rec in chunk.to_dict("records"):
        contact = {k.removeprefix("external_contact."): v for k, v in rec.items() if k.startswith("external_contact.")}
        follows = rec.get("follow_user")
        if _is_missing(follows) or follows is None:
            info = {k.removeprefix("follow_info."): v for k, v in rec.items() if k.startswith("follow_info.")}
            follows = [info] if info else []
        if not isinstance(follows, (list, tuple, np.ndarray)):
            follows = []
        if not follows:
            recs.append({"external_userid": contact.get("external_userid"), "unionid": contact.get("unionid"),
                         "userid": None, "createtime": None, "add_way": None, "state": None})
        for f in follows:
            f = f if isinstance(f, dict) else {}
            recs.append({"external_userid": contact.get("external_userid"), "unionid": contact.get("unionid"),
                         "userid": f.get("userid"), "createtime": f.get("createtime"), "add_way": f.get("add_way"),
                         "state": f.get("state")})
    return pd.DataFrame(recs, columns=["external_userid", "unionid", "userid", "createtime", "add_way", "state"])


def import_wecom_contacts(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    encoding: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportResult:
    """Import WeCom external-contact records into a dataset folder (``wecom_add`` events, id links).

    Parameters
    ----------
    sources
        JSON lines / JSON of ``externalcontact/get`` or ``batch/get_by_user`` results, or
        a flat CSV.
    out
        The dataset folder to write.
    encoding
        Text encoding (default: detected).

    Raises
    ------
    DataError
        A record without ``external_userid`` or a ``createtime`` that is not epoch
        seconds (column and row count named).
    """
    vocab = schema.vocabulary()
    builder = DatasetBuilder(out, vocab, "wecom-contacts")
    files = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    add_way: Counter[str] = Counter()
    state: Counter[str] = Counter()
    guides: dict[str, int] = {}
    try:
        for f in files:
            src = Source(Path(f), encoding=encoding)
            n_file = 0
            for chunk in read_chunks(src, chunk_rows):
                where = src.path.name
                n_file += len(chunk)
                rows = _rows(chunk.reset_index(drop=True))
                check_columns(where, {"external_userid": "external_userid", "createtime": "createtime",
                                      "userid": "userid"}, list(rows.columns), "a WeCom external contact")
                builder.rows_read += len(rows)
                ext = text_column(rows["external_userid"])
                if ext.isna().any():
                    raise DataError(where, "external_userid", "must be present on every contact",
                                    int(ext.isna().sum()))
                guide = text_column(rows["userid"])
                no_guide = guide.isna()
                builder.drop("contact without a follow_user (no guide, no add time)", int(no_guide.sum()))
                keep = ~no_guide.to_numpy()
                rows, ext, guide = rows[keep].reset_index(drop=True), ext[keep].reset_index(drop=True), \
                    guide[keep].reset_index(drop=True)
                builder.rows_kept += len(rows)
                ts = parse_times(rows["createtime"], tz="UTC", fmt="epoch_s", where=where, column="createtime")
                gid = stable_id(guide)
                guides.update(dict(zip(guide, gid.astype("int64").tolist())))
                add_way.update(text_column(rows["add_way"]).dropna().tolist() if "add_way" in rows else [])
                state.update(text_column(rows["state"]).dropna().tolist() if "state" in rows else [])
                block = pd.DataFrame({"ts": ts, "id_type": "wecom_external_id", "id_value": ext,
                                      "touchpoint": "wecom_add", "channel": "guide"})
                block["guide_id"] = gid.to_numpy()
                union = text_column(rows["unionid"]) if "unionid" in rows else pd.Series([None] * len(rows), dtype=object)
                have = union.notna()
                links = pd.DataFrame({"id_type_a": "wecom_external_id", "id_value_a": ext[have],
                                      "id_type_b": "unionid", "id_value_b": union[have], "source": "wecom"})
                builder.add(block, links)
            builder.add_source(src.path, n_file)
        return builder.finish({"guides": dict(sorted(guides.items())), "add_way": dict(add_way),
                               "state": dict(state)})
    except BaseException:
        import shutil

        shutil.rmtree(builder.tmp, ignore_errors=True)
        raise
