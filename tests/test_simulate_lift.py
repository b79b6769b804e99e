"""Lift tests in the simulator: deterministic holdouts that are really never exposed, and their truth."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pandas as pd
import pytest

from privdomain import attribution
from privdomain.simulate import simulate
from privdomain.simulate.journeys import make_block
from privdomain.simulate.lift import TESTABLE
from privdomain.simulate.scenario import ScenarioError, load_scenario, parse_scenario

#: a short beauty-like year with a test of every kind: per person, a window, a geo test, fission
TESTS = {
    "moments_ad": {"holdout": 0.3},
    "official_account": {"holdout": 0.3, "start": dt.date(2024, 3, 1), "days": 90},
    "live": {"holdout": 0.3, "unit": "city"},
    "fission": {"holdout": 0.3},
}


def scenario(tests=TESTS, **over):
    raw = load_scenario("beauty").to_dict()
    raw.pop("channels")
    raw["lift_tests"] = tests
    raw.update(over)
    return parse_scenario(raw, source="test")


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("lift") / "beauty"
    return simulate(scenario(block_size=1500), persons=3000, seed=11, out=root, truth=True, shapley_sample=300)


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_the_holdout_is_never_exposed_to_the_tested_channel_in_the_window(ds):
    ev = ds.read("events")
    asg = ds.read("assignments")
    for ch, meta in ds.manifest["lift_tests"].items():
        held = set(asg.loc[(asg.experiment == f"lift_{ch}") & (asg.arm == "holdout"), "person_id"])
        assert len(held) > 100
        s = pd.Timestamp(meta["start"], tz="Asia/Shanghai")
        e = pd.Timestamp(meta["end"], tz="Asia/Shanghai")
        inwin = (ev.ts >= s) & (ev.ts < e) & ev.person_id.isin(held)
        if ch == "fission":  # a held-out friend is not brought by a share: no referred event at all
            exposed = inwin & ev.referrer_person_id.notna()
        else:
            exposed = inwin & (ev.channel == ch)  # no touch, no join, no order placed through it
        assert int(exposed.sum()) == 0, f"{ch}: {int(exposed.sum())} exposures of held-out persons"
        # while the treated are exposed, and the held out are exposed outside the window
        treated = (ev.ts >= s) & (ev.ts < e) & ~ev.person_id.isin(held)
        chan = ev.referrer_person_id.notna() if ch == "fission" else ev.channel == ch
        assert int((treated & chan).sum()) > 0
        if ch == "official_account":
            outside = ev.person_id.isin(held) & ((ev.ts < s) | (ev.ts >= e)) & (ev.touchpoint == "oa_push")
            assert int(outside.sum()) > 0


def test_assignments_are_written_per_test_with_both_arms_and_geo_tests_hold_out_whole_cities(ds):
    asg = ds.read("assignments")
    persons = ds.read("persons")[["person_id", "city"]]
    for ch in TESTS:
        a = asg[asg.experiment == f"lift_{ch}"]
        assert len(a) == 3000 and set(a.arm) == {"treatment", "holdout"}
    live = asg[asg.experiment == "lift_live"].merge(persons, on="person_id")
    arms_per_city = live.groupby("city")["arm"].nunique()
    assert int((arms_per_city > 1).sum()) == 0
    assert live.groupby("city")["arm"].first().eq("holdout").sum() >= 2


def test_lift_assignment_is_deterministic_and_does_not_depend_on_blocks():
    sc = scenario()
    whole = make_block(sc, seed=4, block=0, n=400, offset=0)
    part = make_block(sc, seed=4, block=1, n=200, offset=200)
    for ch in ("moments_ad", "official_account", "fission"):
        np.testing.assert_array_equal(whole["lift"][ch]["held"][200:], part["lift"][ch]["held"])
    again = make_block(sc, seed=4, block=0, n=400, offset=0)
    for ch in TESTS:
        np.testing.assert_array_equal(whole["lift"][ch]["held"], again["lift"][ch]["held"])
    other = make_block(sc, seed=5, block=0, n=400, offset=0)
    assert not np.array_equal(whole["lift"]["moments_ad"]["held"], other["lift"]["moments_ad"]["held"])


def test_same_seed_same_bytes_with_lift_tests(tmp_path, ds):
    b = simulate(scenario(block_size=1500), persons=3000, seed=11, out=tmp_path / "b", truth=True,
                 shapley_sample=300, workers=2)
    for rel in ("assignments.parquet", "truth/lift.parquet", "events/part-00001.parquet"):
        assert sha(ds.path / rel) == sha(b.path / rel), rel


def test_truth_holds_the_incremental_effect_of_each_test(ds):
    t = pd.read_parquet(ds.path / "truth" / "lift.parquet").set_index("channel")
    assert sorted(t.index) == sorted(TESTS)
    assert (t["treated"] + t["held_out"] == 3000).all()
    # ads and lives bring purchases: a positive effect; the holdout buys less than the exposed
    assert t.loc["moments_ad", "incremental_conversions"] > 0
    rate_t = t["conversions_treated"] / t["treated"]
    rate_h = t["conversions_held_out"] / t["held_out"]
    assert rate_t["moments_ad"] > rate_h["moments_ad"]


def test_the_lift_estimate_covers_the_true_effect(ds):
    lf = attribution.lifts(ds)
    assert sorted(lf["channel"].unique()) == sorted(TESTS)
    sc = attribution.score_lift(lf, ds)
    assert len(sc) == 2 * len(TESTS)
    # each interval is a 95% interval: with 8 of them, at most one miss is expected by chance
    assert int(sc["covered"].sum()) >= 7, sc.to_string()
    geo = lf[lf.channel == "live"].iloc[0]
    assert geo["unit"] == "city" and 2 <= geo["clusters"] < 100


@pytest.mark.parametrize("tests,key,rule", [
    ({"store": {"holdout": 0.1}}, "lift_tests.store", "cannot hold out store"),
    ({"sms": {"holdout": 0.1}}, "lift_tests.sms", "does not have (sms)"),
    ({"live": {"holdout": 0.0}}, "lift_tests.live.holdout", "strictly between 0 and 1"),
    ({"live": {"holdout": 0.2, "unit": "store"}}, "lift_tests.live.unit", "person or city"),
    ({"live": {"holdout": 0.2, "start": dt.date(2030, 1, 1)}}, "lift_tests.live.start", "must lie between"),
])
def test_bad_lift_tests_are_refused_naming_the_key(tests, key, rule):
    with pytest.raises(ScenarioError) as e:
        scenario(tests)
    assert key in str(e.value) and rule in str(e.value)


def test_every_testable_channel_is_a_switchable_channel_and_presets_test_only_those():
    from privdomain.simulate.scenario import SWITCHABLE, list_scenarios

    assert set(TESTABLE) <= set(SWITCHABLE) and "store" not in TESTABLE
    for name in list_scenarios():
        sc = load_scenario(name)
        assert sc.lift_tests, name
        for ch, t in sc.lift_tests.items():
            assert ch in TESTABLE and ch in sc.channels and 0.05 <= t["holdout"] <= 0.2
