"""ID unification against a brute-force union-find over random link graphs."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privdomain.identity import attach, score, unify


def union_find(ids, links):
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in links:
        parent[find(a)] = find(b)
    return [find(i) for i in ids]


@st.composite
def graphs(draw):
    n_ids = draw(st.integers(1, 25))
    ids = [("unionid", f"u{i}") for i in range(n_ids)]
    n_links = draw(st.integers(0, 30))
    pairs = [(ids[draw(st.integers(0, n_ids - 1))], ids[draw(st.integers(0, n_ids - 1))]) for _ in range(n_links)]
    return ids, pairs


@settings(max_examples=50, deadline=None)
@given(graphs())
def test_unify_equals_union_find(graph):
    ids, pairs = graph
    frame = pd.DataFrame(ids, columns=["id_type", "id_value"])
    links = pd.DataFrame(
        [(a[0], a[1], b[0], b[1], "x") for a, b in pairs],
        columns=["id_type_a", "id_value_a", "id_type_b", "id_value_b", "source"],
    )
    got = unify(frame, links)["unified_id"].to_numpy()
    roots = union_find(ids, pairs)
    # same partition: ids share a unified id exactly when they share a root
    same_got = got[:, None] == got[None, :]
    same_ref = np.array([[r1 == r2 for r2 in roots] for r1 in roots])
    assert (same_got == same_ref).all()


def test_same_openid_value_under_two_types_stays_two_ids():
    frame = pd.DataFrame({"id_type": ["oa_openid", "mp_openid"], "id_value": ["x", "x"]})
    links = pd.DataFrame(columns=["id_type_a", "id_value_a", "id_type_b", "id_value_b", "source"])
    assert unify(frame, links)["unified_id"].tolist() == [0, 1]


def test_score_and_attach():
    events = pd.DataFrame({
        "id_type": ["mp_openid", "oa_openid", "phone_hash", "mp_openid"],
        "id_value": ["m1", "o1", "p1", "m2"],
        "person_id": [1, 1, 1, 2],
    })
    links = pd.DataFrame({"id_type_a": ["mp_openid"], "id_value_a": ["m1"], "id_type_b": ["phone_hash"],
                          "id_value_b": ["p1"], "source": ["crm"]})
    u = unify(events, links)
    s = score(u, events)
    assert s["precision"] == 1.0
    assert s["recall"] == 1 / 3  # of the 3 true pairs of person 1 only m1-p1 is linked
    assert attach(events, links)["unified_id"].tolist() == [0, 1, 0, 2]


def test_null_link_values_are_an_error():
    links = pd.DataFrame({"id_type_a": ["mp_openid"], "id_value_a": [None], "id_type_b": ["phone_hash"],
                          "id_value_b": ["p1"], "source": ["crm"]})
    try:
        unify(pd.DataFrame({"id_type": ["mp_openid"], "id_value": ["m"]}), links)
    except ValueError as e:
        assert "1 rows" in str(e) and "id_value_a" in str(e)
    else:
        raise AssertionError("expected ValueError")


def _reference_unify(ids, links):
    """Brute force: distinct pairs in order of first appearance, components by union-find."""
    distinct = list(dict.fromkeys(ids))
    nodes = list(dict.fromkeys([*distinct, *[x for ab in links for x in ab]]))
    roots = dict(zip(nodes, union_find(nodes, links)))
    size = {r: sum(1 for n in nodes if roots[n] == r) for r in set(roots.values())}
    number = {}
    for d in distinct:
        number.setdefault(roots[d], len(number))
    return [(t, v, number[roots[(t, v)]], size[roots[(t, v)]]) for t, v in distinct]


def test_unify_with_repeated_ids_several_types_and_any_column_dtype_equals_the_brute_force():
    rng = np.random.default_rng(4)
    types = ["oa_openid", "unionid", "phone_hash"]
    ids = [(types[rng.integers(3)], f"v{rng.integers(40)}") for _ in range(300)]  # repeats, same value two types
    links = [((types[rng.integers(3)], f"v{rng.integers(60)}"), (types[rng.integers(3)], f"v{rng.integers(60)}"))
             for _ in range(70)]  # some link ids are never observed: they count in component_size
    ref = _reference_unify(ids, links)
    frame = pd.DataFrame(ids, columns=["id_type", "id_value"])
    lk = pd.DataFrame([(a[0], a[1], b[0], b[1]) for a, b in links],
                      columns=["id_type_a", "id_value_a", "id_type_b", "id_value_b"])
    for kind in (object, "category", "string[pyarrow]"):
        got = unify(frame.astype(kind), lk.astype(kind))
        assert [(str(t), str(v), u, s) for t, v, u, s in got.itertuples(index=False)] == ref
        assert str(got["id_value"].dtype) == str(frame.astype(kind)["id_value"].dtype)  # the caller's dtype back


def test_observed_ids_are_the_sorted_distinct_ids_of_the_events_in_any_number_of_partitions(tmp_path):
    from privdomain import io, simulate
    from privdomain.identity import observed_ids

    root = tmp_path / "beauty"
    simulate("beauty", persons=800, seed=3, out=root, truth=False)
    ev = io.read_table(root, "events", columns=["id_type", "id_value"])
    # the oracle: every event's pair, distinct in pandas, sorted in Python
    brute = sorted({(str(t), v) for t, v in zip(ev["id_type"], ev["id_value"]) if v is not None})
    assert len(brute) > 500
    for k in (None, 1, 3, 7):
        got = observed_ids(root, partitions=k)
        assert list(got.columns) == ["id_type", "id_value"]
        assert isinstance(got["id_type"].dtype, pd.CategoricalDtype)
        assert list(zip(got["id_type"].astype(str), got["id_value"])) == brute, k
    # unify over the distinct ids gives each id the person it gives over every event
    links = io.read_table(root, "id_links")
    a = unify(observed_ids(root, partitions=3), links)
    b = unify(ev, links)
    key = ["id_type", "id_value"]
    a["id_type"], b["id_type"] = a["id_type"].astype(str), b["id_type"].astype(str)
    m = a.merge(b, on=key, suffixes=("", "_all"), validate="1:1")
    assert len(m) == len(a) == len(b)
    assert (m.groupby("unified_id")["unified_id_all"].nunique() == 1).all()
    assert (m.groupby("unified_id_all")["unified_id"].nunique() == 1).all()
    assert (m["component_size"] == m["component_size_all"]).all()
    with pytest.raises(ValueError, match="partitions"):
        observed_ids(root, partitions=0)
