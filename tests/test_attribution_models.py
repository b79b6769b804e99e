"""Multi-touch models on path tables: rule-based, Markov (exact), Shapley (exact)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privdomain import attribution
from privdomain.attribution import markov, parse, rule_based, shapley
from privdomain.attribution.markov import removal_effects
from privdomain.attribution.shapley import shapley_values, zeta
from privdomain.testing import reference


def table(rows):
    return pd.DataFrame(rows, columns=["path", "total_conversions", "total_conversion_value", "total_null"])


@st.composite
def path_tables(draw, max_channels=5, max_len=6, max_rows=12):
    n = draw(st.integers(1, max_channels))
    chans = [f"c{i}" for i in range(n)]
    rows = draw(st.lists(
        st.tuples(st.lists(st.sampled_from(chans), min_size=1, max_size=max_len),
                  st.integers(0, 20), st.integers(0, 5000), st.integers(0, 20)),
        min_size=1, max_size=max_rows))
    rows = [(" > ".join(p), c, float(v) if c else 0.0, nl) for p, c, v, nl in rows]
    if all(c + nl == 0 for _, c, _, nl in rows):
        rows[0] = (rows[0][0], 1, 10.0, 0)
    if sum(c for _, c, _, _ in rows) == 0:
        rows.append((rows[0][0], 1, 10.0, 0))
    return table(rows)


# --------------------------------------------------------------------------- parsing
def test_parse_keeps_channels_sorted_and_paths_in_order():
    j = parse(table([("b > a > b", 1, 5.0, 0), ("c", 0, 0.0, 3)]))
    assert j.channels == ["a", "b", "c"]
    assert j.codes.tolist() == [1, 0, 1, 2]
    assert j.starts.tolist() == [0, 3, 4]
    assert j.null.tolist() == [0, 3]


def test_parse_rejects_negative_counts_naming_the_column():
    with pytest.raises(ValueError, match=r"total_null.*non-negative.*1 row"):
        parse(table([("a", 1, 1.0, -1), ("b", 1, 1.0, 0)]))


def test_parse_rejects_empty_paths_and_dangling_separators():
    with pytest.raises(ValueError, match=r"empty channel name.*2 rows"):
        parse(table([("", 1, 1.0, 0), ("a > ", 1, 1.0, 0), ("a", 1, 1.0, 0)]))


def test_parse_requires_the_path_column():
    with pytest.raises(ValueError, match="'path'"):
        parse(pd.DataFrame({"total_conversions": [1]}))


def test_rows_without_journeys_are_counted_not_silently_dropped():
    j = parse(table([("a", 0, 0.0, 0), ("b", 1, 1.0, 0)]))
    assert j.attrs["rows_without_journeys"] == 1
    assert j.channels == ["b"]


def test_missing_value_and_null_columns_default_to_zero():
    j = parse(pd.DataFrame({"path": ["a > b"], "total_conversions": [2]}))
    assert j.value.tolist() == [0.0] and j.null.tolist() == [0.0]


# --------------------------------------------------------------------------- rules
def test_rule_based_on_a_hand_built_path_table():
    pt = table([("oa > guide > mini_program", 10, 1000.0, 0), ("guide", 2, 100.0, 5)])
    r = rule_based(pt).set_index(["model", "channel"])
    assert r.loc[("first_touch", "oa"), "conversions"] == 10
    assert r.loc[("last_touch", "mini_program"), "conversions"] == 10
    # the last non-direct touch of the first path is the guide
    assert r.loc[("last_non_direct", "guide"), "conversions"] == 12
    assert r.loc[("last_non_direct", "mini_program"), "conversions"] == 0
    assert r.loc[("linear", "guide"), "value"] == pytest.approx(1000 / 3 + 100)
    assert r.loc[("position_based", "oa"), "conversions"] == pytest.approx(4.0)
    assert r.loc[("position_based", "guide"), "conversions"] == pytest.approx(2.0 + 2.0)
    # time decay with half-life 7 steps: weights 2^(-2/7), 2^(-1/7), 1 normalised
    w = np.exp2(-np.array([2, 1, 0]) / 7)
    assert r.loc[("time_decay", "oa"), "conversions"] == pytest.approx(10 * w[0] / w.sum())


def test_position_based_weights_are_a_parameter_and_two_touch_paths_split_first_last():
    pt = table([("a > b", 10, 0.0, 0), ("a > b > c > d", 10, 0.0, 0)])
    r = rule_based(pt, models=["position_based"], position_weights=(0.3, 0.4, 0.3)).set_index("channel")
    assert r.loc["a", "conversions"] == pytest.approx(5 + 3)
    assert r.loc["b", "conversions"] == pytest.approx(5 + 2)
    assert r.loc["c", "conversions"] == pytest.approx(2)


def test_last_non_direct_falls_back_to_last_touch_when_all_touches_are_direct():
    r = rule_based(table([("mini_program > mini_program", 3, 3.0, 0)]), models=["last_non_direct"])
    assert r["conversions"].tolist() == [3.0]


def test_unknown_model_is_rejected():
    with pytest.raises(ValueError, match="unknown rule-based model"):
        rule_based(table([("a", 1, 1.0, 0)]), models=["u_shape"])


@settings(max_examples=50, deadline=None)
@given(path_tables())
def test_every_rule_based_model_credits_sum_to_total_conversions_and_value(pt):
    r = rule_based(pt)
    for model, g in r.groupby("model"):
        assert g["conversions"].sum() == pytest.approx(pt["total_conversions"].sum(), rel=1e-12), model
        assert g["value"].sum() == pytest.approx(pt["total_conversion_value"].sum(), rel=1e-12, abs=1e-9), model


@settings(max_examples=40, deadline=None)
@given(path_tables())
def test_rule_based_models_equal_the_per_path_reference(pt):
    r = rule_based(pt, half_life=2.5, position_weights=(0.5, 0.1, 0.4), direct=("c0",))
    for model, g in r.groupby("model"):
        ref = reference.attribution_rule(pt, model, half_life=2.5, position_weights=(0.5, 0.1, 0.4),
                                         direct=("c0",))
        got = g.set_index("channel")
        for ch, (conv, value) in ref.items():
            assert got.loc[ch, "conversions"] == pytest.approx(conv, abs=1e-9), (model, ch)
            assert got.loc[ch, "value"] == pytest.approx(value, abs=1e-7), (model, ch)


# --------------------------------------------------------------------------- Markov
def test_markov_order_1_by_hand():
    # start->a 3/4, start->b 1/4; a->b 1/3, a->conv 1/3, a->null 1/3; b->conv 1/2, b->null 1/2
    # P(conv|b) = 1/2, P(conv|a) = 1/3 * 1/2 + 1/3 = 1/2, p = 1/2
    # without a: 1/4 * 1/2 = 1/8 -> RE 3/4; without b: 3/4 * 1/3 = 1/4 -> RE 1/2
    pt = table([("a > b", 1, 1.0, 0), ("a", 1, 1.0, 1), ("b", 0, 0.0, 1)])
    r = markov(pt)
    assert r["conversion_probability"].tolist() == pytest.approx([0.5, 0.5])  # the chain's, on every row
    assert r.attrs["conversion_probability"] == r["conversion_probability"].iloc[0]  # kept for one release
    # expected value: a converts with value 1.0 on both converting paths, so E[value] = p * 1.0
    assert r["expected_value"].iloc[0] == pytest.approx(0.5)
    assert r["removal_effect"].tolist() == pytest.approx([0.75, 0.5])
    assert r["conversions"].tolist() == pytest.approx([2 * 0.75 / 1.25, 2 * 0.5 / 1.25])


def test_markov_order_2_sees_which_channel_came_before():
    # a > b converts, c > b does not. Order 1 cannot tell a from c; order 2 can.
    pt = table([("a > b", 1, 10.0, 0), ("c > b", 0, 0.0, 1)])
    r1 = markov(pt, order=1).set_index("channel")["removal_effect"]
    assert r1.to_dict() == pytest.approx({"a": 0.5, "b": 1.0, "c": 0.5})
    r2 = markov(pt, order=2).set_index("channel")
    assert r2["removal_effect"].to_dict() == pytest.approx({"a": 1.0, "b": 1.0, "c": 0.0})
    assert r2.loc["c", "conversions"] == 0
    assert r2.attrs["states"] == 4  # (a), (c), (a, b), (c, b)


def test_markov_order_3_on_hand_built_paths_matches_power_iteration():
    pt = table([("a > b > c > a", 3, 30.0, 1), ("b > a > c", 1, 5.0, 4), ("c > c > c > b", 0, 0.0, 2),
                ("a > c > b", 2, 8.0, 0)])
    for order in (2, 3):
        got = markov(pt, order=order).set_index("channel")["removal_effect"]
        ref = reference.markov_removal_effects(pt, order=order)
        assert got.to_dict() == pytest.approx(ref["removal"], abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(path_tables(max_channels=4, max_len=4, max_rows=8), st.sampled_from([1, 2]))
def test_markov_removal_effects_equal_power_iteration_within_1e_9(pt, order):
    got = markov(pt, order=order)
    ref = reference.markov_removal_effects(pt, order=order)
    assert got["conversion_probability"].iloc[0] == pytest.approx(ref["p"], abs=1e-9)
    re = got.set_index("channel")["removal_effect"]
    for ch, x in ref["removal"].items():
        assert abs(re[ch] - x) <= 1e-9, (ch, re[ch], x)


@settings(max_examples=30, deadline=None)
@given(path_tables())
def test_markov_credits_sum_to_totals(pt):
    r = markov(pt)
    assert r["conversions"].sum() == pytest.approx(pt["total_conversions"].sum())
    assert r["value"].sum() == pytest.approx(pt["total_conversion_value"].sum(), abs=1e-9)


def test_markov_value_removal_effect_weights_conversions_by_their_value():
    # the conversion through a is worth 100, through b 1: removing a loses most value
    pt = table([("a", 1, 100.0, 1), ("b", 1, 1.0, 1)])
    r = markov(pt).set_index("channel")
    assert r["removal_effect"].tolist() == pytest.approx([0.5, 0.5])
    assert r["removal_effect_value"].tolist() == pytest.approx([100 / 101, 1 / 101])
    assert r["value"].tolist() == pytest.approx([100.0, 1.0])


def test_markov_sparse_and_dense_solves_agree(monkeypatch):
    rng = np.random.default_rng(3)
    rows = []
    for _ in range(400):
        n = rng.integers(1, 7)
        rows.append((" > ".join(f"c{x}" for x in rng.integers(0, 9, n)), int(rng.integers(0, 3)), 0.0,
                     int(rng.integers(0, 3))))
    pt = table(rows)
    pt.loc[pt["total_conversions"] + pt["total_null"] == 0, "total_null"] = 1
    j = parse(pt)
    dense = removal_effects(j, order=2)
    monkeypatch.setattr(sys.modules["privdomain.attribution.markov"], "_DENSE_MAX", 0)
    sparse = removal_effects(j, order=2)
    assert dense["states"] > 50
    np.testing.assert_allclose(sparse["removal_effect"], dense["removal_effect"], atol=1e-12)


# --------------------------------------------------------------------------- Shapley
def test_shapley_three_channels_by_hand():
    # channel sets and conversions: {a}: 10, {b}: 5, {a,b}: 6, {a,b,c}: 9, {c}: 0 (4 nulls)
    pt = table([("a", 10, 100.0, 5), ("b > b", 5, 50.0, 5), ("b > a", 6, 60.0, 2),
                ("c > a > b > c", 9, 90.0, 1), ("c", 0, 0.0, 4)])
    # v(S) = conversions of journeys whose channel set is inside S:
    # v()=0 v(a)=10 v(b)=5 v(c)=0 v(ab)=21 v(ac)=10 v(bc)=5 v(abc)=30
    # phi_a = 1/3 [v(a)-v()] + 1/6 [v(ab)-v(b)] + 1/6 [v(ac)-v(c)] + 1/3 [v(abc)-v(bc)]
    #       = 10/3 + 16/6 + 10/6 + 25/3 = 16
    # phi_b = 5/3 + 11/6 + 5/6 + 20/3 = 11 ; phi_c = 0 + 0 + 0 + 9/3 = 3
    r = shapley(pt).set_index("channel")
    assert r["conversions"].to_dict() == pytest.approx({"a": 16.0, "b": 11.0, "c": 3.0})
    assert r["value"].to_dict() == pytest.approx({"a": 160.0, "b": 110.0, "c": 30.0})
    # the rate game: v(S) = conversion rate of the journeys inside S
    # v(a)=10/15 v(b)=5/10 v(c)=0 v(ab)=21/33 v(ac)=10/19 v(bc)=5/14 v(abc)=30/47
    v = {"": 0, "a": 10 / 15, "b": 0.5, "c": 0.0, "ab": 21 / 33, "ac": 10 / 19, "bc": 5 / 14, "abc": 30 / 47}
    phi_a = (v["a"] - v[""]) / 3 + (v["ab"] - v["b"]) / 6 + (v["ac"] - v["c"]) / 6 + (v["abc"] - v["bc"]) / 3
    phi_c = (v["c"] - v[""]) / 3 + (v["ac"] - v["a"]) / 6 + (v["bc"] - v["b"]) / 6 + (v["abc"] - v["ab"]) / 3
    rr = shapley(pt, coalition="rate")
    raw = dict(zip(rr["channel"], rr.attrs["shapley_raw"]))
    assert raw["a"] == pytest.approx(phi_a) and raw["c"] == pytest.approx(phi_c)
    assert phi_c < 0  # journeys with c convert worse: the rate game can give negative credit
    assert rr["conversions"].sum() == pytest.approx(30.0)


@settings(max_examples=40, deadline=None)
@given(path_tables(max_channels=5), st.sampled_from(["conversions", "rate"]))
def test_shapley_is_efficient_and_equals_the_permutation_reference(pt, coalition):
    r = shapley(pt, coalition=coalition)
    raw = np.array(r.attrs["shapley_raw"])
    assert raw.sum() == pytest.approx(r.attrs["grand_coalition"], abs=1e-12)
    assert r["conversions"].sum() == pytest.approx(pt["total_conversions"].sum())
    ref = reference.shapley_permutations(pt, coalition=coalition)
    assert dict(zip(r["channel"], raw)) == pytest.approx(ref, abs=1e-12)


def test_zeta_transform_equals_direct_subset_sums():
    rng = np.random.default_rng(0)
    n = 6
    f = rng.random(1 << n)
    g = zeta(f, n)
    for s in range(1 << n):
        assert g[s] == pytest.approx(sum(f[t] for t in range(1 << n) if t & s == t))


def test_shapley_values_of_a_unanimity_game_split_equally():
    n = 4
    v = np.array([1.0 if (m & 0b0111) == 0b0111 else 0.0 for m in range(1 << n)])
    assert shapley_values(v, n).tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0])


def test_shapley_handles_15_channels_and_long_journeys_without_truncation():
    chans = [f"k{i:02d}" for i in range(15)]
    pt = table([(" > ".join(chans * 3), 3, 30.0, 0), ("k00", 1, 1.0, 2)])
    r = shapley(pt).set_index("channel")
    assert r.loc["k14", "conversions"] == pytest.approx(3 / 15)
    assert r.loc["k00", "conversions"] == pytest.approx(1 + 3 / 15)


def test_too_many_channels_are_refused_with_a_clear_message():
    pt = table([(" > ".join(f"k{i}" for i in range(21)), 1, 1.0, 0)])
    with pytest.raises(ValueError, match="up to 20 channels"):
        shapley(pt)


def test_ordered_shapley_splits_credit_by_first_touch_position_and_sums_to_unordered():
    pt = table([("a > b > a", 4, 40.0, 0), ("b > a", 2, 20.0, 1), ("a", 1, 1.0, 0)])
    o = shapley(pt, ordered=True)
    got = {(c, p): x for c, p, x in zip(o["channel"], o["position"], o["conversions"])}
    assert got == pytest.approx({("a", 1): 2 + 1, ("b", 2): 2, ("b", 1): 1, ("a", 2): 1})
    u = shapley(pt).set_index("channel")["conversions"]
    assert o.groupby("channel")["conversions"].sum().to_dict() == pytest.approx(u.to_dict())
    with pytest.raises(ValueError, match="ordered"):
        shapley(pt, ordered=True, coalition="rate")


# --------------------------------------------------------------------------- all models
def test_attribute_stacks_every_model_and_each_sums_to_the_totals():
    pt = table([("a > b > c", 5, 50.0, 3), ("b > c", 2, 30.0, 6), ("c", 1, 5.0, 9), ("a", 0, 0.0, 4)])
    r = attribution.attribute(pt, models=[*attribution.RULES, "markov", "markov_2", "shapley", "shapley_rate"])
    assert set(r["model"]) == {*attribution.RULES, "markov_1", "markov_2", "shapley", "shapley_rate"}
    sums = r.groupby("model")[["conversions", "value", "share"]].sum()
    assert np.allclose(sums["conversions"], 8) and np.allclose(sums["value"], 85) and np.allclose(sums["share"], 1)
    assert r.loc[r.model != "markov_1", "removal_effect"].isna().sum() == len(r) - 2 * 3


def test_spaces_around_the_separator_are_optional():
    a = parse(table([("a>b", 1, 1.0, 0), ("a > b", 1, 1.0, 0), (" b >a ", 0, 0.0, 1)]))
    assert a.channels == ["a", "b"]
    assert a.codes.tolist() == [0, 1, 0, 1, 1, 0]
