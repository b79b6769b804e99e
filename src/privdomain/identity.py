"""ID unification (ID 打通): join the ids each surface sees into one person.

Each WeChat surface gives the same person a different id: an openid per Official
Account and per Mini Program, a unionid across one company's apps, a WeCom
``external_userid``, a phone number in the CRM. An ``id_links`` row says two ids
belong to one person (the platform links openid and unionid; a membership sign-up
links unionid and phone). Unification is the connected components of the graph
whose nodes are ``(id_type, id_value)`` pairs and whose edges are the links.

Examples
--------
>>> import pandas as pd
>>> from privdomain.identity import unify
>>> links = pd.DataFrame({"id_type_a": ["mp_openid", "unionid"], "id_value_a": ["m1", "u1"],
...                       "id_type_b": ["unionid", "phone_hash"], "id_value_b": ["u1", "p1"],
...                       "source": ["platform", "crm"]})
>>> ids = pd.DataFrame({"id_type": ["mp_openid", "phone_hash", "oa_openid"], "id_value": ["m1", "p1", "o9"]})
>>> unify(ids, links)["unified_id"].tolist()
[0, 0, 1]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from . import events as events_layer
from .backend import TableLike, execute_arrow, partitions_for, require_columns

__all__ = ["observed_ids", "unify", "attach", "score"]

#: Peak DuckDB memory of ``SELECT DISTINCT id_type, id_value`` per event row, with a margin
#: (measured: the distinct ids of 189.7M events, 19.1M of them, filled a 6 GB limit in one
#: pass); sets how many id-hash partitions :func:`observed_ids` runs in.
DISTINCT_BYTES_PER_EVENT = 40.0
_ID_SCHEMA = pa.schema([("id_type", pa.large_string()), ("id_value", pa.large_string())])


def _strings(s: pd.Series) -> list[pa.Array]:
    """A column as Arrow large-string arrays (its chunks, not copied into one), nulls as ``"None"`` (``str(None)``)."""
    arr = pa.chunked_array(pa.array(s, from_pandas=True))
    if pa.types.is_dictionary(arr.type):
        arr = pa.chunked_array([c.dictionary_decode() for c in arr.chunks], type=arr.type.value_type)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pa.chunked_array(pa.array(s.astype(str), type=pa.large_string()))
    if arr.null_count:
        arr = pc.fill_null(arr, "None")
    return [c.cast(pa.large_string()) for c in arr.chunks]


def _node_codes(types: list[pd.Series], values: list[pd.Series]) -> list[np.ndarray]:
    """One int64 code per ``(id_type, id_value)`` pair, the same pair the same code across the columns.

    Codes are numbered in order of first appearance over the columns taken in turn. The
    pairs are never joined into Python strings: the types are dictionary-encoded in Arrow
    (the columns as chunks of one array, so they share one dictionary without being
    copied into one), then the values of each type in turn, and the pair is
    ``offset of its type + index of its value among that type's values``.
    """
    sizes = [len(x) for x in values]
    t_enc = pa.chunked_array([c for x in types for c in _strings(x)], type=pa.large_string()).dictionary_encode()
    chunks = [c for c in t_enc.chunks if len(c)]  # (empty chunks may be dropped)
    if not chunks:
        return [np.zeros(n, dtype=np.int64) for n in sizes]
    t_idx = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks])
    n_types = len(chunks[0].dictionary)  # one dictionary for every chunk
    del t_enc, chunks
    vals = pa.chunked_array([c for x in values for c in _strings(x)], type=pa.large_string())
    # one id type at a time: the values of one type in one dictionary (its hash table is the
    # large transient: 3.5 GB for all 19.1M ids of 10M persons at once); key = offset + index
    key = np.empty(len(t_idx), dtype=np.int64)
    offset = 0
    for k in range(n_types):
        mask = t_idx == k
        enc = vals.filter(pa.array(mask)).dictionary_encode()
        parts = [c for c in enc.chunks if len(c)]
        if parts:
            key[mask] = offset + np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in parts])
            offset += len(parts[0].dictionary)
        del enc, parts, mask
        pa.default_memory_pool().release_unused()
    del vals, t_idx
    codes, _ = pd.factorize(key)
    del key
    return np.split(codes.astype(np.int64, copy=False), np.cumsum(sizes)[:-1])


def observed_ids(events: TableLike, *, con: Any | None = None, partitions: int | None = None) -> pd.DataFrame:
    """The distinct ``(id_type, id_value)`` pairs the events saw, sorted: the nodes :func:`unify` needs.

    The distinct runs in the engine, by id-hash partition when the DuckDB memory limit
    needs it: partition ``i`` of ``k`` holds the ids with
    ``((hash(id_value) % k) + k) % k == i``, so every pair falls in exactly one partition
    and the partitions' distinct ids together are the distinct ids. Only the distinct
    pairs come back (19.1M for 189.7M events at 10M simulated persons), never the events.

    Parameters
    ----------
    events
        A pandas frame, a dataset folder, a :class:`privdomain.io.Dataset` or an Ibis
        table with ``id_type`` and ``id_value`` (checked by :func:`privdomain.events.read`).
    con
        Ibis connection (keyword-only; the default DuckDB one if None).
    partitions
        Number of id-hash partitions; None picks enough for the DuckDB memory limit
        (:func:`privdomain.backend.partitions_for`, :data:`DISTINCT_BYTES_PER_EVENT`),
        1 on other engines.

    Returns
    -------
    pandas.DataFrame
        ``id_type`` (categorical) and ``id_value`` (string), one row per distinct pair,
        sorted by both (the same order on every engine and for every ``partitions``);
        pairs with a null ``id_value`` are left out (they name no one).

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "sms"), (1, "2024-05-02 10:00", "sms")])
    >>> ev["id_type"], ev["id_value"] = "phone_hash", "p1"
    >>> observed_ids(ev)
          id_type id_value
    0  phone_hash       p1
    """
    t = events_layer.read(events, con=con, columns=("id_type", "id_value"), localise=False)
    t = t.select(id_type=t.id_type.cast("string"), id_value=t.id_value.cast("string"))
    t = t.filter(t.id_value.notnull())
    if partitions is None:
        k = partitions_for(events_layer.check(events, con=con).rows, DISTINCT_BYTES_PER_EVENT, t, con)
    elif int(partitions) != partitions or partitions < 1:
        raise ValueError(f"partitions must be a whole number >= 1, got {partitions!r}")
    else:
        k = int(partitions)
    # the person-hash partition rule, on the id: an id falls in exactly one partition
    parts = [execute_arrow(t.filter(events_layer.person_part(t.id_value, i, k)).distinct(), con=con) for i in range(k)]
    ids = pa.concat_tables([p.select(["id_type", "id_value"]).cast(_ID_SCHEMA) for p in parts])
    del parts
    ids = ids.take(pc.sort_indices(ids, [("id_type", "ascending"), ("id_value", "ascending")]))
    # compact strings (one Arrow buffer, no Python object per id); a few types as categories
    out = pd.DataFrame({"id_type": ids["id_type"].dictionary_encode().to_pandas(),
                        "id_value": ids["id_value"].to_pandas(types_mapper=pd.ArrowDtype)})
    del ids
    pa.default_memory_pool().release_unused()  # the partitions' results and the sort (1.3 GB at 19M ids)
    return out


def unify(ids: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    """Give every observed id a ``unified_id``: its connected component over the links.

    Parameters
    ----------
    ids
        Frame with ``id_type`` and ``id_value`` (e.g. an events table, or its distinct ids).
    links
        The ``id_links`` table: ``id_type_a, id_value_a, id_type_b, id_value_b``.

    Returns
    -------
    pandas.DataFrame
        The distinct ``id_type, id_value`` pairs of ``ids`` (in order of first
        appearance) with ``unified_id`` (int64, 0..k-1, numbered in order of first
        appearance) and ``component_size`` (how many distinct ids the person has
        across ``ids`` and ``links``).

    Notes
    -----
    Memory: the ids are coded as integers (Arrow dictionary encoding, no Python string
    per pair), so 19M distinct ids and 13M links (10M simulated persons) fit in a few GB;
    pass the distinct ids (:func:`observed_ids`) rather than every event.
    """
    require_columns(ids, ("id_type", "id_value"), "ids")
    require_columns(links, ("id_type_a", "id_value_a", "id_type_b", "id_value_b"), "id_links")
    nulls = int(links[["id_value_a", "id_value_b"]].isna().any(axis=1).sum())
    if nulls:
        raise ValueError(f"id_links: {nulls} rows have a null id_value_a or id_value_b (rule: links join two ids)")
    pa.default_memory_pool().release_unused()  # what earlier work freed, before the large transients
    seen, ia, ib = _node_codes([ids["id_type"], links["id_type_a"], links["id_type_b"]],
                               [ids["id_value"], links["id_value_a"], links["id_value_b"]])
    # codes are numbered in order of first appearance and the ids come first: the distinct
    # ids are codes 0..m-1, and np.unique's first indices are in that order
    _, first = np.unique(seen, return_index=True)
    m = len(first)
    n = int(max(seen.max(initial=-1), ia.max(initial=-1), ib.max(initial=-1))) + 1
    graph = coo_matrix((np.ones(len(ia), dtype=np.int8), (ia, ib)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    sizes = np.bincount(label)
    seen_label = label[:m]
    # renumber components in order of first appearance among the observed ids
    _, first_of = np.unique(seen_label, return_index=True)
    order = np.argsort(first_of)
    renumber = np.full(label.max() + 1 if n else 0, -1, dtype=np.int64)
    renumber[np.unique(seen_label)[order]] = np.arange(len(order))
    out = ids[["id_type", "id_value"]].iloc[first].reset_index(drop=True)
    out["unified_id"] = renumber[seen_label]
    out["component_size"] = sizes[seen_label].astype(np.int64)
    return out


def attach(events: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``events`` with a ``unified_id`` column from :func:`unify`."""
    mapping = unify(events, links)[["id_type", "id_value", "unified_id"]]
    return events.merge(mapping, on=["id_type", "id_value"], how="left", validate="many_to_one")


def score(unified: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Pairwise precision and recall of a unification against the true persons.

    Parameters
    ----------
    unified
        ``id_type, id_value, unified_id`` (from :func:`unify`).
    truth
        ``id_type, id_value, person_id`` (e.g. the distinct ids of simulated events).

    Returns
    -------
    dict
        ``precision`` (share of id pairs put together that are truly one person),
        ``recall`` (share of true same-person pairs put together), ``persons``
        (true persons), ``unified`` (unified ids), ``fragmentation`` (unified ids per
        true person).
    """
    m = unified.merge(truth[["id_type", "id_value", "person_id"]].drop_duplicates(), on=["id_type", "id_value"],
                      how="inner", validate="one_to_one")

    def pairs(counts: pd.Series) -> int:
        c = counts.to_numpy(dtype=np.int64)
        return int((c * (c - 1) // 2).sum())

    both = pairs(m.groupby(["unified_id", "person_id"]).size())
    predicted = pairs(m.groupby("unified_id").size())
    actual = pairs(m.groupby("person_id").size())
    persons = m["person_id"].nunique()
    n_unified = m["unified_id"].nunique()
    return {
        "precision": both / predicted if predicted else 1.0,
        "recall": both / actual if actual else 1.0,
        "persons": float(persons),
        "unified": float(n_unified),
        "fragmentation": n_unified / persons if persons else float("nan"),
    }
