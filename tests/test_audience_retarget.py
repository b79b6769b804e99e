"""The retargeting campaign of the simulator (simulate/retarget.py) and its ROI (audience.campaign_roi)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from privdomain import audience
from privdomain.simulate import load_scenario, simulate
from privdomain.simulate import retarget as R
from privdomain.simulate.scenario import ScenarioError, parse_scenario

PERSONS = 4000


@pytest.fixture(scope="module")
def sw(tmp_path_factory):
    return simulate("sportswear", persons=PERSONS, seed=1, out=tmp_path_factory.mktemp("rt") / "ds", truth=True)


@pytest.fixture(scope="module")
def truth(sw):
    return pd.read_parquet(sw.path / "truth" / "retarget.parquet")


def test_response_probabilities_equal_a_per_person_recomputation(sw, truth):
    sc = load_scenario("sportswear")
    r = sc.retarget
    traits = pd.read_parquet(sw.path / "truth" / "persons.parquet")
    mean_interest = sum(traits["interest"]) / len(traits)
    by_id = traits.set_index("person_id")
    start = (r["start"] - sc.start).days
    for row in truth.itertuples():
        interest, tau = by_id.at[row.person_id, "interest"], by_id.at[row.person_id, "dropout_day"]
        p = r["response"] * interest / mean_interest * (1.0 if tau > start else r["reactivation"])
        assert row.p_response == pytest.approx(min(p, 1.0), rel=1e-12)
        assert row.active == (tau > start)
        assert row.revenue_fen == (row.price_fen if row.responds else 0)


def test_the_audiences_hold_the_seed_and_equal_sizes_and_the_arms_are_in_assignments(sw, truth):
    sc = load_scenario("sportswear")
    r = sc.retarget
    ev = sw.read("events")
    ev = ev[ev["ts"] < pd.Timestamp(r["start"].isoformat(), tz="Asia/Shanghai")]
    tagged = ev["person_id"].nunique()
    start_day = pd.Timestamp(r["start"].isoformat())
    seed = set()
    for pid, g in ev[ev["touchpoint"] == "pay"].groupby("person_id"):  # paid within seed_days before the start
        last = g["ts"].dt.tz_localize(None).dt.normalize().max()
        if (start_day - last).days <= r["seed_days"]:
            seed.add(pid)
    look = truth[truth["campaign"] == "lookalike"]
    normal = truth[truth["campaign"] == "normal"]
    assert len(look) == round(r["audience"] * tagged) == len(normal)
    assert seed <= set(look["person_id"]) and set(look.loc[look["in_seed"], "person_id"]) == seed
    assert not set(look["person_id"]) & set(normal["person_id"])
    asg = sw.read("assignments")
    for camp, exp in R.EXPERIMENTS.items():
        a = asg[asg["experiment"] == exp].set_index("person_id")["arm"].astype(str).sort_index()
        t = truth[truth["campaign"] == camp].set_index("person_id")["arm"].sort_index()
        assert a.equals(t.astype(str))
        share = (t == "treatment").mean()
        assert abs(share - r["treat"]) < 0.1


def test_campaign_events_are_the_truths_treated_persons_and_responders(sw, truth):
    ev = sw.read("events")
    assert ev["event_id"].is_unique and ev["order_id"].dropna().groupby(ev["touchpoint"]).size().max() == \
        ev.loc[ev["touchpoint"] == "order", "order_id"].nunique()
    for camp, cid in R.CAMPAIGN_IDS.items():
        t = truth[truth["campaign"] == camp]
        views = ev[(ev["campaign_id"] == cid) & (ev["touchpoint"] == "moments_ad_view")]
        clicks = ev[(ev["campaign_id"] == cid) & (ev["touchpoint"] == "moments_ad_click")]
        treated = t.loc[t["arm"] == "treatment", "person_id"]
        assert sorted(views["person_id"]) == sorted(treated)  # one view per treated person, none for the holdout
        responders = t[(t["arm"] == "treatment") & t["responds"]]
        assert sorted(clicks["person_id"]) == sorted(responders["person_id"])
        # each responder's order and pay come right after the click, for the truth's product and price
        for row in responders.itertuples():
            click = clicks.loc[clicks["person_id"] == row.person_id, "ts"].iloc[0]
            mine = ev[(ev["person_id"] == row.person_id) & (ev["ts"] > click)
                      & (ev["ts"] <= click + pd.Timedelta(minutes=11))]
            pay = mine[mine["touchpoint"] == "pay"]
            assert len(pay) == 1 and int(pay["amount_fen"].iloc[0]) == row.revenue_fen
            assert int(pay["product_id"].iloc[0]) == row.product_id
    spend = sw.read("campaigns").set_index("campaign_id")["spend_fen"]
    roi = R.true_roi(sw)
    for row in roi.itertuples():
        t = truth[(truth["campaign"] == row.campaign) & (truth["arm"] == "treatment")]
        assert row.spend_fen == spend[R.CAMPAIGN_IDS[row.campaign]] == round(1500 * len(t))
        assert row.revenue_fen == t["revenue_fen"].sum()
        assert row.roi == pytest.approx(t["revenue_fen"].sum() / row.spend_fen)


def test_campaign_roi_equals_a_hand_computation_from_arms_and_pays(sw):
    ev = sw.read("events")
    asg = sw.read("assignments")
    camps = sw.read("campaigns").set_index("campaign_id")
    for camp, cid in R.CAMPAIGN_IDS.items():
        got = audience.campaign_roi(sw, R.EXPERIMENTS[camp], cid).iloc[0]
        s, e = camps.at[cid, "start"], camps.at[cid, "end"]
        pays = ev[(ev["touchpoint"] == "pay") & (ev["ts"] >= s) & (ev["ts"] < e)]
        rev = pays.groupby("person_id")["amount_fen"].sum()
        arms = asg[asg["experiment"] == R.EXPERIMENTS[camp]]
        y = {arm: [float(rev.get(p, 0)) for p in g["person_id"]] for arm, g in arms.groupby("arm")}
        diff = np.mean(y["treatment"]) - np.mean(y["holdout"])
        se = np.sqrt(np.var(y["treatment"], ddof=1) / len(y["treatment"]) + np.var(y["holdout"], ddof=1)
                     / len(y["holdout"]))
        assert got["incremental_fen"] == pytest.approx(diff)
        assert got["roi"] == pytest.approx(len(y["treatment"]) * diff / camps.at[cid, "spend_fen"])
        assert got["roi_hi"] - got["roi"] == pytest.approx(1.959964 * se * len(y["treatment"])
                                                           / camps.at[cid, "spend_fen"], rel=1e-5)


def test_the_lookalike_campaigns_true_effect_is_real_and_larger(sw, truth):
    roi = R.true_roi(sw).set_index("campaign")
    assert (roi["responders"] > 0).all()
    assert roi.loc["lookalike", "expected_roi"] > roi.loc["normal", "expected_roi"]
    tr = truth[truth["arm"] == "treatment"]
    assert tr.groupby("campaign")["active"].mean()["lookalike"] > tr.groupby("campaign")["active"].mean()["normal"]


def test_expected_roi_ratio_over_seeds_is_near_the_calibrated_value(sw, tmp_path):
    # the preset is calibrated at 20,000 persons (mean over seeds 1-3: 1.46); at 4,000 persons one
    # seed's ratio varies by about 0.17, so the mean of three seeds is held to 0.25
    sc = load_scenario("sportswear")
    def expected_ratio(data):  # lookalike over normal, from the returned columns
        roi = R.true_roi(data)
        assert roi.attrs["expected_ratio"] == roi.loc[0, "expected_roi"] / roi.loc[1, "expected_roi"]  # one release
        return roi.loc[0, "expected_roi"] / roi.loc[1, "expected_roi"]

    ratios = [expected_ratio(sw)]
    for seed in (2, 3):
        ds = simulate("sportswear", persons=PERSONS, seed=seed, out=tmp_path / f"s{seed}", truth=True)
        ratios.append(expected_ratio(ds))
    assert sc.retarget["target"] == 1.46
    assert abs(np.mean(ratios) - 1.46) < 0.25, ratios


def test_same_seed_same_campaign(tmp_path):
    def digest(path):
        return hashlib.sha256((path / "truth" / "retarget.parquet").read_bytes()).hexdigest()
    a = simulate("sportswear", persons=1500, seed=5, out=tmp_path / "a", truth=True)
    b = simulate("sportswear", persons=1500, seed=5, out=tmp_path / "b", truth=True)
    assert digest(a.path) == digest(b.path)
    assert a.read("events").equals(b.read("events"))


def test_retarget_section_is_checked():
    raw = load_scenario("sportswear").to_dict()
    raw.pop("channels")
    with pytest.raises(ScenarioError, match="retarget.start"):
        parse_scenario({**raw, "retarget": {"start": "2025-02-01"}})
    with pytest.raises(ScenarioError, match="retarget.audience"):
        parse_scenario({**raw, "retarget": {"start": "2024-06-01", "audience": 1.0}})
    with pytest.raises(ScenarioError, match="retarget.budget"):
        parse_scenario({**raw, "retarget": {"start": "2024-06-01", "budget": 3}})
    sc = parse_scenario({**raw, "retarget": {"start": "2024-06-01"}})
    assert sc.retarget["days"] == 14 and sc.replace(persons=10).retarget == sc.retarget


def test_a_population_too_small_for_a_seed_still_simulates(tmp_path):
    ds = simulate("sportswear", persons=3, seed=2, out=tmp_path / "tiny", truth=True)
    roi = R.true_roi(ds)
    assert roi["treated"].tolist() == [0, 0] and roi["spend_fen"].tolist() == [0, 0]
    assert not ds.read("events")["campaign_id"].isin(list(R.CAMPAIGN_IDS.values())).any()
