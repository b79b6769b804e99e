"""Profile tags (用户标签): one row per person, the tag families of Youshu's audience tools.

Every tag is evaluated **as of the end of Beijing day** ``as_of``: events after that day
are left out, and a person is in the tag table when they have at least one event on or
before it (the same population as :func:`privdomain.lifecycle.stages_at`).

Tag families (see docs/audiences.md for the definitions):

* **basic** (基础属性) from the ``persons`` table where it has the column: ``gender``,
  ``age_band``, ``province``, ``city``, ``city_tier``, ``occupation``, ``device``;
* **CRM** (会员标签) where present: ``member_level``, ``crm_join_date``,
  ``acquisition_channel`` (the CRM snapshot as the dataset holds it);
* **asset** (资产标签): ``stage`` (lifecycle stage, :func:`privdomain.lifecycle.stages_at`),
  ``rfm_segment`` (:func:`privdomain.clv.rfm.rfm_segments`, scheme ``"rf"``, over buyers),
  ``buyer_type`` (non_buyer / new / returning / lapsed), ``repeat_buyer``, ``purchase_days``;
* **behaviour** (行为标签): ``first_active``, ``last_active``, ``days_since_active``,
  ``touchpoints_{7,30,90}d`` and ``channels_{7,30,90}d`` (distinct touchpoints/channels
  used in the last N days), ``preferred_channel``, ``days_since_<touchpoint>`` for every
  touchpoint of the vocabulary (0 = on ``as_of``, null = never), ``article_reader``,
  ``live_viewer``, ``guide_added``.

The event-level work is Ibis aggregates over the checked events
(:func:`privdomain.events.read`): one per person, touchpoint and channel (first and last
day, recent active touches), from which per-person aggregates over the (person,
touchpoint) and (person, channel) rows give the behaviour tags and the preferred channel
with sums of flags (no distinct counts, whose per-group hash sets dominated the memory),
and one over the distinct purchase days; only per-person rows come back to pandas.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd

from .. import events as events_layer
from .. import io
from .._days import DateLike, day, day_number, raw_events
from ..backend import TableLike, execute
from ..clv import rfm
from ..errors import UsageError
from ..lifecycle import stages as lifecycle
from ..schema import AD_VIEWS, PURCHASE, is_text_ids

__all__ = [
    "BASIC_TAGS",
    "CRM_TAGS",
    "WINDOWS",
    "RECENT_DAYS",
    "PASSIVE_TOUCHPOINTS",
    "is_dataset",
    "tags",
    "touchpoint_column",
    "write_tags",
    "read_tags_meta",
    "CHUNK_PERSONS",
    "id_array",
    "id_isin",
]

#: Basic attributes copied from ``persons`` when the column is there.
BASIC_TAGS: tuple[str, ...] = ("gender", "age_band", "province", "city", "city_tier", "occupation", "device")
#: The brand's CRM fields copied from ``persons`` when the column is there.
CRM_TAGS: tuple[str, ...] = ("member_level", "crm_join_date", "acquisition_channel")
#: Trailing windows (days, ending on ``as_of``) of the touchpoint and channel counts.
WINDOWS: tuple[int, ...] = (7, 30, 90)
#: The window of ``preferred_channel``, ``article_reader``, ``live_viewer`` and ``buyer_type``.
RECENT_DAYS = 90
#: Person ids per chunk of :func:`write_tags` (about 1 GB of working memory at a million persons).
CHUNK_PERSONS = 1_000_000
#: Touches the brand sends rather than the person chooses: not counted for ``preferred_channel``.
PASSIVE_TOUCHPOINTS: tuple[str, ...] = ("oa_push", "sms", *AD_VIEWS)


def id_array(ids: Any) -> np.ndarray:
    """Person ids as a numpy array of their own kind: int64 for integer ids, object (str) for text ids.

    Ids are never cast between kinds: text ids (:func:`privdomain.schema.is_text_ids`)
    stay strings, so sorting, :func:`numpy.unique` and :func:`numpy.isin` work on them as on numbers.

    >>> id_array(pd.Series([2, 1])).dtype.name, id_array(pd.Series(["u2", "u10"])).tolist()
    ('int64', ['u2', 'u10'])
    """
    s = ids if isinstance(ids, pd.Series) else pd.Series(np.asarray(ids))
    if is_text_ids(s):
        return s.to_numpy(dtype=object)
    return s.to_numpy(dtype="int64")


def id_isin(ids: np.ndarray, among: np.ndarray) -> np.ndarray:
    """``numpy.isin(ids, among)`` for person ids of either kind.

    :func:`numpy.isin` compares object arrays (text ids) element by element against every
    value, so text ids go through a pandas hash lookup instead.

    >>> id_isin(np.array(["u1", "u2"], dtype=object), np.array(["u2"], dtype=object)).tolist()
    [False, True]
    """
    if ids.dtype == object or np.asarray(among).dtype == object:
        return pd.Series(ids, dtype=object).isin(pd.Series(among, dtype=object)).to_numpy(dtype=bool)
    return np.isin(ids, among)


def touchpoint_column(touchpoint: str) -> str:
    """The tag column of a touchpoint's recency: ``days_since_<touchpoint>``.

    >>> touchpoint_column("live_view")
    'days_since_live_view'
    """
    return f"days_since_{touchpoint}"


def _touches(t: Any, d0: int) -> Any:
    """Per person, touchpoint and channel: first and last day, active touches in the recent window.

    A cheap first aggregate (no distinct counts): every behaviour tag is exact from it, as a
    touchpoint (or channel) was used in a window ending on ``as_of`` exactly when its last
    day falls in the window.
    """
    active = (t._d > d0 - RECENT_DAYS) & ~t.touchpoint.isin(list(PASSIVE_TOUCHPOINTS))
    return t.group_by(["person_id", "touchpoint", "channel"]).aggregate(
        _min=t._d.min(), _max=t._d.max(), _active=active.cast("int64").sum())


def _per_touchpoint(u: Any, touchpoints: Sequence[str]) -> Any:
    """(person, touchpoint) rows with the touchpoint's index in ``touchpoints`` and its first/last day.

    The per-person pivot of these rows is done in numpy (:func:`_behaviour`): on DuckDB a
    per-person aggregate with one ``max`` per touchpoint took several GB at a million persons.
    """
    v = u.group_by(["person_id", "touchpoint"]).aggregate(_lo=u._min.min(), _hi=u._max.max())
    codes = ibis.memtable(pd.DataFrame({"touchpoint": list(touchpoints), "_k": np.arange(len(touchpoints))}))
    v = v.join(codes, "touchpoint")
    return v.select("person_id", "_k", "_lo", "_hi").order_by("person_id")


def _behaviour(v: pd.DataFrame, d0: int, n_touchpoints: int) -> dict[str, Any]:
    pid = id_array(v["person_id"])
    k = v["_k"].to_numpy(dtype="int64")
    lo = v["_lo"].to_numpy(dtype="int64")
    hi = v["_hi"].to_numpy(dtype="int64")
    ids, start = np.unique(pid, return_index=True)
    row = np.searchsorted(ids, pid)
    out: dict[str, Any] = {"person_id": ids}
    if len(ids):
        out["_first"], out["_last"] = np.minimum.reduceat(lo, start), np.maximum.reduceat(hi, start)
    else:
        out["_first"] = out["_last"] = np.zeros(0, dtype="int64")
    for w in WINDOWS:
        out[f"touchpoints_{w}d"] = np.bincount(row, weights=(hi > d0 - w), minlength=len(ids)).astype("int64")
    for i in range(n_touchpoints):
        sel = k == i
        since = np.zeros(len(ids), dtype="int64")
        since[row[sel]] = d0 - hi[sel]
        has = np.zeros(len(ids), dtype=bool)
        has[row[sel]] = True
        out[f"_tp{i}"] = pd.arrays.IntegerArray(since, ~has)
    return out


def _by_channel(u: Any) -> Any:
    return u.group_by(["person_id", "channel"]).aggregate(_hi=u._max.max(), _n=u._active.sum())


def _channels(c: Any, d0: int) -> Any:
    return c.group_by("person_id").aggregate(
        **{f"channels_{w}d": (c._hi > d0 - w).cast("int64").sum() for w in WINDOWS})


def _purchases(t: Any, d0: int) -> Any:
    pays = t.filter(t.touchpoint == PURCHASE).select("person_id", "_d").distinct()
    return pays.group_by("person_id").aggregate(
        purchase_days=pays.count(), _first_pay=pays._d.min(),
        _pay_before=(pays._d <= d0 - RECENT_DAYS).cast("int64").sum())


def _preferred(c: Any) -> Any:
    per = c.filter(c._n > 0)
    rank = ibis.row_number().over(ibis.window(group_by=per.person_id, order_by=[ibis.desc(per._n), per.channel]))
    per = per.mutate(_r=rank)
    return per.filter(per._r == 0).select("person_id", preferred_channel=per.channel)


def _persons(events: TableLike, persons: Any, con: Any | None) -> pd.DataFrame | None:
    if persons is None:
        if not is_dataset(events):
            return None
        persons = events
    p = events_layer.table(persons, "persons", con=con)
    if "person_id" not in p.columns:
        raise UsageError(f"persons: needs a person_id column (columns: {list(p.columns)})")
    cols = [c for c in (*BASIC_TAGS, *CRM_TAGS) if c in p.columns]
    p = p.select("person_id", *cols)
    if not is_dataset(events):
        # events that are a table of their own (a sample of persons, a filtered table) may hold far
        # fewer persons than the persons table: fetch only theirs (the rest would be dropped anyway)
        seen = raw_events(events, con, ("person_id",)).select("person_id").distinct()
        p = p.semi_join(seen, "person_id")
    return execute(p, con=con)


def is_dataset(data: Any) -> bool:
    """Whether ``data`` is a dataset (a folder or :class:`privdomain.io.Dataset`), not a single table."""
    if isinstance(data, io.Dataset):
        return True
    return isinstance(data, (str, os.PathLike)) and Path(data).is_dir()


def _rfm_segment(events: TableLike, as_of: DateLike, con: Any | None) -> pd.DataFrame:
    summary = rfm.rfm_summary(events, as_of=as_of, con=con)
    if summary.empty:
        return pd.DataFrame({"person_id": pd.Series([], dtype="int64"), "rfm_segment": pd.Series([], dtype=object)})
    seg = rfm.rfm_segments(summary, scheme="rf")
    return pd.DataFrame({"person_id": id_array(seg["person_id"]),
                         "rfm_segment": seg["segment"].astype(object).to_numpy()})


def _aligned(ids: np.ndarray, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The columns of ``frame`` (keyed by ``person_id``) in the order of ``ids``; nulls where absent."""
    key = id_array(frame["person_id"])
    if len(np.unique(key)) != len(key):  # a guard: every frame aligned here has one row per person
        raise UsageError(f"persons: person_id must be unique; {len(key) - len(np.unique(key))} repeat(s)")
    order = np.argsort(key, kind="stable")
    pos = np.searchsorted(key[order], ids)
    pos = np.minimum(pos, max(len(key) - 1, 0))
    hit = (key[order][pos] == ids) if len(key) else np.zeros(len(ids), dtype=bool)
    take = order[pos] if len(key) else pos
    out = {}
    for c in frame.columns:
        if c == "person_id":
            continue
        col = frame[c]
        if len(key):
            v = col.take(take).reset_index(drop=True)
        else:
            v = pd.Series([None] * len(ids), dtype=object)
        if not hit.all():
            kind = v.dtype.kind
            if kind in "iu":
                v = v.astype("Int64")
            elif kind == "b":
                v = v.astype("boolean")
            v = v.where(pd.Series(hit), None) if v.dtype == object else v.mask(~pd.Series(hit))
        out[c] = v.array
    return out


def _dates(days: pd.Series) -> pd.Series:
    v = pd.to_numeric(days, errors="coerce")
    return pd.to_datetime(v, unit="D", origin="unix").dt.date.where(v.notna(), None).astype(object)


def tags(events: TableLike, *, as_of: DateLike, persons: Any = None, con: Any | None = None,
         model: lifecycle.StageModel | None = None, out: str | os.PathLike | None = None,
         chunk_persons: int = CHUNK_PERSONS) -> pd.DataFrame | Path:
    """One row per person with the profile tags as of the end of Beijing day ``as_of``.

    Parameters
    ----------
    events
        A dataset folder, :class:`privdomain.io.Dataset`, events frame or Ibis table,
        read through :func:`privdomain.events.read`.
    as_of
        The day the tags describe (its end, Beijing time); later events are left out.
    persons
        The persons table (a frame, folder or Ibis table) for the basic and CRM tags.
        Default: the dataset's own ``persons`` when ``events`` is a folder or Dataset,
        else none (the tag table then has no basic or CRM columns). Every persons column
        but ``person_id`` is optional: a missing column is absent from the result.
        ``name`` and ``phone`` are never read.
    con
        Optional Ibis connection.
    model
        Stage model for ``stage`` (default :class:`privdomain.lifecycle.StageModel`).
    out
        Write the tag table to this Parquet file instead of returning it, computed in
        chunks of ``chunk_persons`` consecutive person ids (bounded memory: one chunk's
        tags are held at a time; see :func:`write_tags`). :func:`privdomain.audience.select`
        reads such a file, only the columns a condition needs.
    chunk_persons
        Person ids per chunk when writing to ``out``.

    Returns
    -------
    pandas.DataFrame or pathlib.Path
        Sorted by ``person_id``; the columns of the module docstring. ``attrs`` holds
        ``as_of`` and the ``touchpoints`` that have a ``days_since_`` column. With ``out``:
        the path of the file written (the same rows; ``as_of`` and ``touchpoints`` in
        its schema metadata, :func:`read_tags_meta`).

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "live_view"), (1, "2024-05-03 10:00", "mp_visit"),
    ...                    (2, "2024-05-02 10:00", "oa_article_open"),
    ...                    (2, "2024-05-02 11:00", "pay", {"order_id": 1, "amount_fen": 990})])
    >>> tg = tags(ev, as_of="2024-05-03")
    >>> tg[["person_id", "days_since_live_view", "live_viewer", "article_reader", "buyer_type"]].values.tolist()
    [[1, 2, True, False, 'non_buyer'], [2, <NA>, False, True, 'new']]
    """
    try:
        d0 = day_number(as_of, "as_of")
    except ValueError as e:
        raise UsageError(f"tags: as_of must be a date, got {as_of!r}") from e
    touchpoints = list(events_layer.known_touchpoints(events))
    if out is not None:
        return write_tags(events, out, as_of=as_of, persons=persons, con=con, model=model,
                          chunk_persons=chunk_persons)
    return _tags_frame(events, d0, as_of, persons, con, model, touchpoints)


def _tags_frame(events: TableLike, d0: int, as_of: DateLike, persons: Any, con: Any | None,
                model: lifecycle.StageModel | None, touchpoints: list[str],
                rfm_all: pd.DataFrame | None = None) -> pd.DataFrame:
    t = raw_events(events, con, ("person_id", "ts", "touchpoint", "channel"))
    t = t.mutate(_d=day(t.ts))
    t = t.filter(t._d <= d0)
    u = _touches(t, d0)
    beh = _behaviour(execute(_per_touchpoint(u, touchpoints), con=con), d0, len(touchpoints))
    by_channel = _by_channel(u)
    pref = execute(_preferred(by_channel), con=con)
    chan = execute(_channels(by_channel, d0), con=con)
    pays = execute(_purchases(t, d0), con=con)
    ids = beh["person_id"]
    del t, u

    # every other frame is aligned on the behaviour rows' ids, and the result is built once
    # (no chain of merges, each of which would copy the growing table)
    cols: dict[str, Any] = {"person_id": ids}
    persons_df = _persons(events, persons, con)
    if persons_df is not None:
        for c, v in _aligned(ids, persons_df).items():
            cols[c] = v
        del persons_df

    # asset tags
    cols["stage"] = _aligned(ids, lifecycle.stages_at(events, as_of, model, con=con))["stage"]
    pay = _aligned(ids, pays)
    pay_days = pd.to_numeric(pd.Series(pay["purchase_days"])).fillna(0).to_numpy(dtype="int64")
    if pay_days.any():
        seg = rfm_all if rfm_all is not None else _rfm_segment(events, as_of, con)
        cols["rfm_segment"] = _aligned(ids, seg)["rfm_segment"]
    else:
        cols["rfm_segment"] = np.full(len(ids), None, dtype=object)
    first_pay = pd.to_numeric(pd.Series(pay["_first_pay"])).to_numpy(dtype="float64", na_value=np.nan)
    before = pd.to_numeric(pd.Series(pay["_pay_before"])).fillna(0).to_numpy(dtype="int64")
    recent = pay_days > before
    buyer = np.where(pay_days == 0, "non_buyer",
                     np.where(~recent, "lapsed",
                              np.where(first_pay > d0 - RECENT_DAYS, "new", "returning")))
    cols["buyer_type"] = buyer.astype(object)
    cols["repeat_buyer"] = pay_days >= 2
    cols["purchase_days"] = pay_days

    # behaviour tags
    cols["first_active"] = _dates(pd.Series(beh["_first"])).to_numpy()
    cols["last_active"] = _dates(pd.Series(beh["_last"])).to_numpy()
    cols["days_since_active"] = d0 - beh["_last"]
    for w in WINDOWS:
        cols[f"touchpoints_{w}d"] = beh[f"touchpoints_{w}d"]
    for w, v in _aligned(ids, chan).items():
        cols[w] = np.asarray(v, dtype="int64")
    cols["preferred_channel"] = _aligned(ids, pref)["preferred_channel"]
    for i, tp in enumerate(touchpoints):
        cols[touchpoint_column(tp)] = beh.pop(f"_tp{i}")
    out = pd.DataFrame(cols, copy=False)
    since = {tp: out[touchpoint_column(tp)] for tp in ("oa_article_open", "live_view", "wecom_add")}
    out["article_reader"] = (since["oa_article_open"] < RECENT_DAYS).fillna(False).astype(bool)
    out["live_viewer"] = (since["live_view"] < RECENT_DAYS).fillna(False).astype(bool)
    out["guide_added"] = since["wecom_add"].notna().to_numpy()
    out.attrs = {"as_of": str(pd.Timestamp(as_of).date()), "touchpoints": touchpoints}
    return out


_META_KEY = b"privdomain.tags"


def write_tags(events: TableLike, out: str | os.PathLike, *, as_of: DateLike, persons: Any = None,
               con: Any | None = None, model: lifecycle.StageModel | None = None,
               chunk_persons: int = CHUNK_PERSONS) -> Path:
    """Write :func:`tags` to one Parquet file, chunk by chunk of consecutive person ids.

    Every tag of a person depends only on her own events, except ``rfm_segment`` (its
    quintiles are over all buyers): that one is computed once, over every buyer, and the
    rest per chunk of ``chunk_persons`` person ids (events and persons filtered in the
    engine). So the file holds the same rows as ``tags(...)`` while memory holds one
    chunk's tags (and the buyers' RFM segments) at a time. The file is written to a
    temporary name and moved into place. Text person ids (a brand's own ids) have no
    ranges of consecutive ids: their sorted distinct ids are cut every ``chunk_persons``.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    import json
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(chunk_persons, bool) or not isinstance(chunk_persons, int) or chunk_persons < 1:
        raise UsageError(f"tags: chunk_persons must be a whole number >= 1, got {chunk_persons!r}")
    try:
        d0 = day_number(as_of, "as_of")
    except ValueError as e:
        raise UsageError(f"tags: as_of must be a date, got {as_of!r}") from e
    target = Path(out)
    if not target.parent.is_dir():
        raise UsageError(f"tags: folder {str(target.parent)!r} does not exist")
    touchpoints = list(events_layer.known_touchpoints(events))
    base = events_layer.read(events, con=con, columns=("person_id", "touchpoint", "channel"), localise=False)
    base = base.select("person_id", "ts", "touchpoint", "channel", *(["amount_fen"] if "amount_fen" in base.columns
                                                                      else []),
                       *(["order_id"] if "order_id" in base.columns else []))
    if persons is None and is_dataset(events):
        persons = events
    ptab = None
    if persons is not None:
        ptab = events_layer.table(persons, "persons", con=con)
        if "person_id" not in ptab.columns:
            raise UsageError(f"persons: needs a person_id column (columns: {list(ptab.columns)})")
        ptab = ptab.select("person_id", *[c for c in (*BASIC_TAGS, *CRM_TAGS) if c in ptab.columns])
    lo_hi = execute(base.aggregate(lo=base.person_id.min(), hi=base.person_id.max()), con=con)
    rfm_all = _rfm_segment(events, as_of, con)
    meta = {"as_of": str(pd.Timestamp(as_of).date()), "touchpoints": touchpoints}
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    writer = None
    schema_: Any = None
    try:
        for start, end in _chunks(base, lo_hi, chunk_persons, con):
            ev = base.filter(_between(base.person_id, start, end))
            pc = None if ptab is None else ptab.filter(_between(ptab.person_id, start, end))
            part = _tags_frame(ev, d0, as_of, pc, con, model, touchpoints, rfm_all)
            if part.empty:
                continue
            table = pa.Table.from_pandas(part, preserve_index=False)
            if schema_ is None:
                schema_ = table.schema.with_metadata({_META_KEY: json.dumps(meta).encode()})
                writer = pq.ParquetWriter(tmp, schema_)
            writer.write_table(_conform(table, schema_))
            del part, table
        if writer is None:  # no person: an empty file with the frame's columns
            empty = _tags_frame(base.limit(0), d0, as_of, None if ptab is None else ptab.limit(0), con, model,
                                touchpoints, rfm_all)
            table = pa.Table.from_pandas(empty, preserve_index=False)
            pq.write_table(table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()}), tmp)
        else:
            writer.close()
        os.replace(tmp, target)
    except BaseException:
        if writer is not None:
            writer.close()
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _chunks(base: Any, lo_hi: pd.DataFrame, chunk_persons: int, con: Any | None) -> list[tuple[Any, Any]]:
    """Bounds ``[start, end)`` of the chunks of :func:`write_tags` (``end`` None: no upper bound).

    Integer ids: ranges of ``chunk_persons`` consecutive ids. Text ids have no such ranges:
    the sorted distinct ids are cut every ``chunk_persons`` ids, each chunk running from its
    first id up to the next chunk's first.
    """
    if not len(lo_hi) or pd.isna(lo_hi["lo"].iloc[0]):
        return []
    if not isinstance(lo_hi["lo"].iloc[0], str):
        lo, hi = int(lo_hi["lo"].iloc[0]), int(lo_hi["hi"].iloc[0])
        return [(start, start + chunk_persons) for start in range(lo, hi + 1, chunk_persons)]
    ids = execute(base.select("person_id").distinct().order_by("person_id"), con=con)["person_id"]
    starts = id_array(ids.dropna())[::chunk_persons].tolist()
    return list(zip(starts, [*starts[1:], None]))


def _between(col: Any, start: Any, end: Any) -> Any:
    return col >= start if end is None else (col >= start) & (col < end)


def _conform(table: Any, schema_: Any) -> Any:
    """``table`` cast to the first chunk's schema (a column all null in one chunk has no type of its own)."""
    import pyarrow as pa

    cols = []
    for f in schema_:
        c = table.column(f.name)
        if c.type != f.type:
            c = pa.nulls(len(c), f.type) if pa.types.is_null(c.type) else c.cast(f.type)
        cols.append(c)
    return pa.Table.from_arrays(cols, schema=schema_)


def read_tags_meta(path: str | os.PathLike) -> dict[str, Any]:
    """``as_of`` and ``touchpoints`` of a tag file written by :func:`write_tags`."""
    import json

    import pyarrow.parquet as pq

    md = pq.read_schema(path).metadata or {}
    return json.loads(md.get(_META_KEY, b"{}"))
