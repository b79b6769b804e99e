"""Channels are marketing channels (golden journeys), lift estimates and lift-calibrated credit."""

from __future__ import annotations

import pandas as pd
import pytest

from privdomain import attribution, schema
from privdomain.attribution import build_paths
from privdomain.attribution.lift import LIFT_COLUMNS
from privdomain.errors import UsageError
from privdomain.examples import events_frame


def pay(order_id, fen):
    return {"order_id": order_id, "amount_fen": fen}


# --------------------------------------------------------------------------- channel mapping
def test_a_pay_after_only_mini_program_visits_is_direct():
    ev = events_frame([
        (1, "2024-05-01 10:00", "mp_visit"),
        (1, "2024-05-01 10:05", "product_view", {"product_id": 1}),
        (1, "2024-05-01 10:06", "add_to_cart", {"product_id": 1}),
        (1, "2024-05-01 10:07", "order", pay(1, 900)),
        (1, "2024-05-01 10:08", "pay", pay(1, 900)),
    ])
    pt = build_paths(ev)
    assert pt.values.tolist() == [["direct", 1, 9.0, 0]]
    assert pt.attrs["purchases_without_touch"] == 1


def test_the_checkout_is_never_credited_by_any_model():
    ev = events_frame([
        (1, "2024-05-01 10:00", "moments_ad_click"), (1, "2024-05-01 10:01", "mp_visit"),
        (1, "2024-05-01 10:05", "product_view", {"product_id": 1}), (1, "2024-05-01 10:08", "pay", pay(1, 900)),
        (2, "2024-05-01 10:00", "mp_visit"), (2, "2024-05-01 11:00", "pay", pay(2, 500)),
        (3, "2024-05-01 10:00", "moments_ad_view"), (3, "2024-05-02 10:00", "mp_visit"),
    ])
    r = attribution.attribute(ev)
    assert "mini_program" not in set(r["channel"])
    assert set(r["channel"]) == {"moments_ad", "direct"}
    # every model: the ad's conversion goes to the ad, the checkout-only pay to direct
    for _, g in r.groupby("model"):
        assert g["conversions"].sum() == pytest.approx(2.0)


def test_a_friends_product_view_is_a_step_of_her_purchase_not_a_fission_touch():
    # the referrer id rides on the friend's checkout steps; only her arrival is a fission touch
    ev = events_frame([
        (2, "2024-05-02 10:30", "product_view", {"referrer_person_id": 1, "product_id": 1}),
        (2, "2024-05-02 10:31", "add_to_cart", {"referrer_person_id": 1, "product_id": 1}),
        (2, "2024-05-02 10:33", "pay", {**pay(2, 2000), "referrer_person_id": 1}),
        (3, "2024-05-02 10:00", "mp_visit", {"referrer_person_id": 1}),
        (3, "2024-05-03 10:00", "sms"),
    ])
    pt = build_paths(ev).set_index("path")
    # person 2 converted with no arrival touch: direct, not a 100%-converting fission path
    assert pt.loc["direct", "total_conversions"] == 1
    assert pt.loc["fission > sms", "total_null"] == 1
    assert "fission" not in pt.index


def test_marketing_channels_is_configurable_and_recorded():
    ev = events_frame([(1, "2024-05-01 10:00", "sms"), (1, "2024-05-01 10:01", "mp_visit"),
                       (1, "2024-05-01 10:08", "pay", pay(1, 900))])
    assert build_paths(ev)["path"].tolist() == ["sms"]
    pt = build_paths(ev, marketing_channels=schema.CHANNELS)
    assert pt["path"].tolist() == ["sms > mini_program"]
    assert pt.attrs["marketing_channels"] == sorted(schema.CHANNELS)
    assert build_paths(ev, marketing_channels=["official_account"])["path"].tolist() == ["direct"]
    with pytest.raises(TypeError, match="marketing_channels"):
        build_paths(ev, marketing_channels="sms")


def test_store_visitors_who_do_not_buy_make_non_converting_store_paths():
    ev = events_frame([
        (1, "2024-05-01 10:00", "store_visit", {"store_id": 1}),
        (1, "2024-05-01 10:10", "pay", {**pay(1, 900), "store_id": 1}),
        (2, "2024-05-01 10:00", "store_visit", {"store_id": 1}),
        (2, "2024-05-03 10:00", "mp_visit"),  # a checkout visit does not hide the store path
    ])
    pt = build_paths(ev).set_index("path")
    assert pt.loc["store", ["total_conversions", "total_null"]].tolist() == [1, 1]


# --------------------------------------------------------------------------- lift and calibration
def _assignments(arms: dict[int, str]) -> pd.DataFrame:
    return pd.DataFrame({"person_id": pd.Series(list(arms), dtype="int64"), "experiment": "lift_sms",
                         "arm": list(arms.values()),
                         "assigned_at": pd.Timestamp("2024-05-01", tz=schema.TIMEZONE)})


def test_lift_is_the_difference_in_means_inside_the_window():
    rows, oid = [], 0
    buys = {1: 3, 2: 1, 3: 2, 4: 0, 5: 1, 6: 0}  # persons 1-3 exposed, 4-6 held out
    for p, k in buys.items():
        rows.append((p, "2024-05-01 09:00", "mp_visit"))
        for _ in range(k):
            oid += 1
            rows.append((p, "2024-05-10 10:00", "pay", pay(oid, 1000)))
    oid += 1
    rows.append((4, "2024-07-01 10:00", "pay", pay(oid, 1000)))  # after the window: not counted
    ev = events_frame(rows)
    arms = {1: "treatment", 2: "treatment", 3: "treatment", 4: "holdout", 5: "holdout", 6: "holdout"}
    r = attribution.lift(ev, "sms", assignments=_assignments(arms), start="2024-05-01", end="2024-06-01")
    conv = r.set_index("metric").loc["conversions"]
    assert conv["effect_per_person"] == pytest.approx(2.0 - 1 / 3)
    assert conv["incremental"] == pytest.approx(3 * (2.0 - 1 / 3))
    assert conv["incremental_share"] == pytest.approx(3 * (2.0 - 1 / 3) / 6)
    assert conv["ci_low"] < conv["effect_per_person"] < conv["ci_high"]
    rev = r.set_index("metric").loc["revenue"]
    assert rev["effect_per_person"] == pytest.approx(10.0 * (2.0 - 1 / 3))  # yuan


def test_lift_without_assignments_for_the_channel_names_the_experiment_and_the_tests_found():
    ev = events_frame([(1, "2024-05-01 09:00", "sms")])
    with pytest.raises(attribution.LiftError) as e:
        attribution.lift(ev, "live", assignments=_assignments({1: "treatment"}))
    assert "'lift_live'" in str(e.value) and "sms" in str(e.value)
    with pytest.raises(attribution.LiftError, match="needs both arms"):
        attribution.lift(ev, "sms", assignments=_assignments({1: "treatment"}), start="2024-05-01",
                         end="2024-06-01")


@pytest.fixture(scope="module")
def tea(tmp_path_factory):
    from privdomain.simulate import simulate

    return simulate("tea", persons=4000, seed=7, out=tmp_path_factory.mktemp("cal") / "tea", truth=False)


def test_calibrated_takes_the_lift_estimate_for_tested_channels_and_adds_what_the_store_recruits(tea):
    lf = attribution.lifts(tea)
    assert sorted(lf["channel"].unique()) == ["fission", "official_account", "sms"]
    base = attribution.attribute(tea, models=["markov"])
    cal = attribution.calibrated(tea, base="markov", lifts=lf, attribution=base, draws=200)
    c = cal.set_index("channel")
    for ch in ("official_account", "sms"):
        f = lf[(lf.channel == ch) & (lf.metric == "conversions")].iloc[0]
        assert c.loc[ch, "source"] == "lift test"
        # a test over the whole period: the credit is the test's own incremental conversions
        assert c.loc[ch, "conversions"] == pytest.approx(max(f["incremental"], 0))
        assert c.loc[ch, "mediated"] == 0
    assert c.loc["store", "source"] == "markov rescaled"
    marketing = base[~base.channel.isin(["direct", "mini_program"])]["conversions"].sum()
    # without mediation, and with the proportional rule for the untested channels (acquisition=False), the
    # credits share out the base model's marketing total
    prop = attribution.calibrated(tea, base="markov", lifts=lf, attribution=base, draws=50, mediation=False,
                                  acquisition=False)
    assert prop["conversions"].sum() == pytest.approx(marketing) and (prop["mediated"] == 0).all()
    assert (prop["acquired"] == 0).all() and not prop.attrs["acquisition"]
    flat = attribution.calibrated(tea, base="markov", lifts=lf, attribution=base, draws=50, mediation=False)
    assert (flat["mediated"] == 0).all() and flat.attrs["acquisition"]
    # with it, the untested store adds the share of the tested channels' members it recruited
    rec = attribution.recruitment(tea)
    oa = rec[(rec.channel == "official_account") & (rec.recruiter == "store")]["share"].iloc[0]
    inc_oa = c.loc["official_account", "conversions"]
    assert c.loc["store", "mediated"] == pytest.approx(oa * inc_oa)
    # the tested channels' direct effects are at most their totals: the store's direct credit can only grow
    assert c.loc["store", "conversions"] - c.loc["store", "mediated"] >= \
        flat.set_index("channel").loc["store", "conversions"] - 1e-9
    assert c["share"].sum() == pytest.approx(1.0)
    assert ((c["share_low"] <= c["share"] + 1e-12) & (c["share"] <= c["share_high"] + 1e-12)).all()
    again = attribution.calibrated(tea, base="markov", lifts=lf, attribution=base, draws=200)
    pd.testing.assert_frame_equal(cal, again)


def test_calibrated_without_lift_tests_is_the_base_model_and_says_so(tea):
    base = attribution.attribute(tea, models=["shapley"])
    cal = attribution.calibrated(tea, base="shapley", lifts=pd.DataFrame(columns=LIFT_COLUMNS),
                                   attribution=base, draws=50)
    b = base[~base.channel.isin(["direct", "mini_program"])].set_index("channel")
    c = cal.set_index("channel")
    assert (c["source"] == "shapley rescaled").all()
    assert c["share"].round(12).to_dict() == (b["conversions"] / b["conversions"].sum()).round(12).to_dict()


def test_lift_plan_needs_fewer_days_with_a_larger_holdout(tea):
    r = attribution.lift(tea, "sms")
    plan = attribution.lift_plan(r, precision=0.05, holdouts=(0.05, 0.1, 0.2))
    assert plan["days_needed"].is_monotonic_decreasing
    assert (plan["persons_needed"] > 0).all() and (plan["holdout_share"] == [0.05, 0.1, 0.2]).all()
    with pytest.raises(UsageError, match="precision"):
        attribution.lift_plan(r, precision=0)


# --------------------------------------------------------------------------- advice from evidence
def _cal(source_top: str) -> pd.DataFrame:
    return pd.DataFrame({"channel": ["store", "sms"], "share": [0.8, 0.2], "share_low": [0.7, 0.1],
                         "share_high": [0.9, 0.3], "source": [source_top, "lift test"]})


def _scores(model: str, worse: bool) -> pd.DataFrame:
    return pd.DataFrame({"model": [model], "truth": ["incremental"], "metric": ["conversions"],
                         "worse_than_uniform": [worse]})


def test_advice_protects_a_budget_only_when_a_lift_test_measured_it():
    from privdomain.reports import cases

    lines = cases.channel_advice(_cal("lift test"))
    assert "protect its budget" in lines[0] and "80% (95% interval 70% to 90%)" in lines[0]
    lines = cases.channel_advice(_cal("markov rescaled"))
    assert "protect" not in " ".join(lines)
    assert "correlation is not causation" in lines[0] and "markov rescaled" in lines[0]
    assert lines[1] == "Untested channels (their credit rests on an observational model): **门店 store**."


def test_advice_says_how_much_of_an_untested_channels_credit_a_lift_test_measured():
    from privdomain import cases

    cal = _cal("markov rescaled").assign(conversions=[80.0, 20.0], mediated=[60.0, 0.0])
    lines = cases.channel_advice(cal)
    assert "(75% of it is the lift-tested effect of the channels it recruits members into" in lines[0]
    assert "protect" not in " ".join(lines) and "correlation is not causation" in lines[0]
    acq = cases.channel_advice(cal.assign(acquired=[8.0, 0.0]))
    assert ("members into; 10% is credit the lift tests showed the channels retouching the customers it "
            "acquired did not cause; the rest is the observational model's)") in acq[0]


def test_advice_never_moves_budget_on_a_model_worse_than_uniform():
    from privdomain.reports import cases

    lines = cases.channel_advice(_cal("lift test"), _scores("calibrated", True))
    assert "no budget move is recommended" in lines[0] and "protect" not in " ".join(lines)
    shap = pd.Series({"store": 0.6, "sms": 0.4})
    lines = cases.channel_advice(None, None, observational_share=shap)
    assert len(lines) == 1 and "correlation is not causation" in lines[0] and "protect" not in lines[0]
    sc = pd.concat([_scores("calibrated", False), _scores("shapley", True)], ignore_index=True)
    lines = cases.channel_advice(_cal("lift test"), sc)
    assert lines[-1].startswith("The 沙普利值 Shapley value model scores worse than equal credit")


def test_calibrated_on_events_without_any_lift_test_is_the_base_model():
    ev = events_frame([(1, "2024-05-01 10:00", "sms"), (1, "2024-05-01 10:08", "pay", pay(1, 900)),
                       (2, "2024-05-01 10:00", "live_view"), (2, "2024-05-02 10:08", "pay", pay(2, 300))])
    cal = attribution.calibrated(ev, base="last_non_direct", draws=20)
    assert cal.set_index("channel")["share"].to_dict() == {"live": 0.5, "sms": 0.5}
    assert (cal["source"] == "last_non_direct rescaled").all() and cal.attrs["tested"] == []


# --------------------------------------------------------------------------- recruitment and mediation
def _lift_rows(channel: str, f: float, total: float, start: str, end: str) -> pd.DataFrame:
    rows = []
    for metric in ("conversions", "revenue"):
        r = {c: float("nan") for c in LIFT_COLUMNS}
        r.update({"channel": channel, "metric": metric, "unit": "person", "start": pd.Timestamp(start),
                  "end": pd.Timestamp(end), "incremental_share": f, "incremental_share_se": 0.0,
                  "total_treatment": total if metric == "conversions" else total * 9.0, "holdout_share": 0.1})
        rows.append(r)
    return pd.DataFrame(rows, columns=LIFT_COLUMNS)


def _recruited_events(pay_day: str = "2024-05-01"):
    return events_frame([
        (1, "2024-05-01 10:00", "store_visit"), (1, "2024-05-01 10:00", "wecom_add"),
        (1, f"{pay_day} 12:00", "pay", pay(1, 900)),
        (2, "2024-05-01 10:00", "store_visit"), (2, "2024-05-01 10:00", "wecom_add"),
        (2, f"{pay_day} 12:00", "pay", pay(2, 900)),
        (3, "2024-05-01 09:00", "sms"), (3, "2024-05-02 10:00", "wecom_add"), (3, "2024-05-10 12:00", "pay", pay(3, 900)),
        (4, "2024-05-01 09:00", "mp_visit"), (4, "2024-05-10 12:00", "pay", pay(4, 900)),
    ])


def _credit(**conv) -> pd.DataFrame:
    return pd.DataFrame({"channel": list(conv), "model": "m", "conversions": list(conv.values()),
                         "value": [9.0 * v for v in conv.values()]})


def test_recruitment_credits_a_join_to_the_last_marketing_touch_before_it():
    ev = events_frame([
        (1, "2024-05-01 10:00", "store_visit"), (1, "2024-05-01 10:00", "wecom_add"),
        (2, "2024-05-01 10:00", "sms"), (2, "2024-05-01 11:00", "mp_visit"),  # the checkout recruits nobody
        (2, "2024-05-03 10:00", "wecom_add"), (2, "2024-05-04 10:00", "wecom_add"),  # her first join counts
        (3, "2024-04-01 10:00", "sms"), (3, "2024-05-01 10:00", "wecom_add"),  # 30 days before: nobody
        (4, "2024-05-01 10:00", "mp_visit", {"referrer_person_id": 1}), (4, "2024-05-01 11:00", "oa_follow"),
        (5, "2024-05-01 09:00", "wecom_chat"), (5, "2024-05-01 10:00", "oa_follow"),
    ])
    r = attribution.recruitment(ev)
    assert r[["channel", "recruiter", "members", "recruited"]].values.tolist() == [
        ["guide", "sms", 3, 1], ["guide", "store", 3, 1],
        ["official_account", "fission", 2, 1], ["official_account", "guide", 2, 1]]
    assert r["share"].tolist() == [1 / 3, 1 / 3, 0.5, 0.5]
    assert attribution.recruitment(ev, window="40D").query("recruiter == 'sms'")["recruited"].tolist() == [2]
    with pytest.raises(UsageError, match="window"):
        attribution.recruitment(ev, window="0D")


def test_recruitment_matches_a_per_join_loop_on_simulated_data(tea):
    from privdomain.attribution.lift import JOIN_TOUCHPOINTS
    from privdomain.attribution.paths import NON_TOUCHES
    ev = pd.read_parquet(tea.path / "events")
    ev = ev[["person_id", "ts", "touchpoint", "channel", "referrer_person_id"]]
    joins = ev[ev.touchpoint.isin(list(JOIN_TOUCHPOINTS))].sort_values("ts").drop_duplicates(["person_id", "channel"])
    touch = ev[~ev.touchpoint.isin([*NON_TOUCHES, *JOIN_TOUCHPOINTS])].copy()
    touch["ch"] = touch["channel"].where(touch["referrer_person_id"].isna(), "fission").astype(str)
    touch = touch[touch.ch != "mini_program"]
    by_person = {p: g for p, g in touch.groupby("person_id")}
    counts: dict[tuple[str, str], int] = {}
    for j in joins.itertuples():
        g = by_person.get(j.person_id)
        if g is None:
            continue
        g = g[(g.ts <= j.ts) & (g.ts >= j.ts - pd.Timedelta(days=7)) & (g.ch != j.channel)]
        if g.empty:
            continue
        last = g[g.ts == g.ts.max()].ch.min()
        counts[(str(j.channel), last)] = counts.get((str(j.channel), last), 0) + 1
    r = attribution.recruitment(tea)
    assert {(a, b): n for a, b, n in r[["channel", "recruiter", "recruited"]].values} == counts
    members = joins.groupby("channel", observed=True).size()
    assert r.groupby("channel")["members"].first().to_dict() == {str(k): int(v) for k, v in members.items()}


def test_calibrated_credits_an_untested_recruiter_with_the_tested_effect_it_mediates():
    ev = _recruited_events()
    lf = _lift_rows("guide", f=0.5, total=4.0, start="2024-04-01", end="2024-06-01")
    cal = attribution.calibrated(ev, base="m", lifts=lf, attribution=_credit(store=1.0, guide=2.0, sms=1.0),
                                 draws=20)
    c = cal.set_index("channel")
    # guide: 0.5 x 4 = 2 (the window holds every pay); members: 2 of 3 recruited in the store, 1 by an SMS;
    # direct effects: guide 2, the rest 4 - 2 = 2 split 1:1; plus the mediated 2/3 x 2 and 1/3 x 2
    assert c["conversions"].to_dict() == pytest.approx({"store": 1 + 4 / 3, "guide": 2.0, "sms": 1 + 2 / 3})
    assert c["mediated"].to_dict() == pytest.approx({"store": 4 / 3, "guide": 0.0, "sms": 2 / 3})
    assert c["share"].to_dict() == pytest.approx({"store": 7 / 18, "guide": 6 / 18, "sms": 5 / 18})
    assert c["source"].to_dict() == {"store": "m rescaled", "guide": "lift test", "sms": "m rescaled"}
    flat = attribution.calibrated(ev, base="m", lifts=lf, attribution=_credit(store=1.0, guide=2.0, sms=1.0),
                                  draws=20, mediation=False).set_index("channel")
    assert flat["conversions"].to_dict() == pytest.approx({"store": 1.0, "guide": 2.0, "sms": 1.0})


def test_calibrated_extrapolates_a_short_test_to_the_conversions_outside_its_window():
    ev = _recruited_events(pay_day="2024-05-01")  # pays of persons 1-2 on May 1, of 3-4 on May 10
    lf = _lift_rows("guide", f=0.5, total=2.0, start="2024-04-20", end="2024-05-05")
    cal = attribution.calibrated(ev, lifts=lf, attribution=_credit(store=1.0, guide=2.0, sms=1.0), draws=20,
                                 mediation=False).set_index("channel")
    # in the window the test's incremental, 0.5 x 2; outside it the same fraction of the 2 pays there
    assert cal.loc["guide", "conversions"] == pytest.approx(0.5 * (2.0 + 2.0))
    assert cal.loc["guide", "value"] == pytest.approx(0.5 * (18.0 + 18.0))
    # the same window given in UTC (Beijing 2024-05-05 00:00 is 2024-05-04 16:00 UTC)
    utc = lf.assign(start=pd.Timestamp("2024-04-19 16:00", tz="UTC"), end=pd.Timestamp("2024-05-04 16:00", tz="UTC"))
    again = attribution.calibrated(ev, lifts=utc, attribution=_credit(store=1.0, guide=2.0, sms=1.0), draws=20,
                                   mediation=False).set_index("channel")
    assert again.loc["guide", "conversions"] == pytest.approx(2.0)


def test_on_eyewear_every_guide_member_is_recruited_in_a_store(tmp_path):
    # the preset's guides add customers only in stores, at the visit (join delay 0)
    from privdomain.simulate import simulate

    ds = simulate("eyewear", persons=2000, seed=3, out=tmp_path / "eyewear", truth=False)
    r = attribution.recruitment(ds).set_index(["channel", "recruiter"])
    assert r.loc[("guide", "store"), "share"] == 1.0
    assert r.loc[("guide", "store"), "members"] > 100


# --------------------------------------------------------------------------- acquisition (step 4)
def _acquired_events():
    return events_frame([
        # 1: the store brings her; she buys there, then after an SMS
        (1, "2024-05-01 10:00", "store_visit"), (1, "2024-05-01 10:05", "pay", pay(1, 900)),
        (1, "2024-05-10 09:00", "sms"), (1, "2024-05-10 10:00", "pay", pay(2, 900)),
        # 2: the store brings her (the WeCom add at the visit is a join, not what brought her)
        (2, "2024-05-01 10:00", "wecom_add"), (2, "2024-05-01 10:00", "store_visit"),
        (2, "2024-05-02 09:00", "sms"), (2, "2024-05-02 10:00", "pay", pay(3, 900)),
        # 3: a Moments ad brings her; later an SMS
        (3, "2024-05-01 09:00", "moments_ad_click"), (3, "2024-05-01 10:00", "pay", pay(4, 900)),
        (3, "2024-05-15 09:00", "sms"), (3, "2024-05-15 10:00", "pay", pay(5, 900)),
        # 4: her first purchase has no marketing touch (acquired by nobody); later an SMS
        (4, "2024-05-01 09:00", "mp_visit"), (4, "2024-05-01 10:00", "pay", pay(6, 900)),
        (4, "2024-05-20 09:00", "sms"), (4, "2024-05-20 10:00", "pay", pay(7, 900)),
    ])


def test_acquisition_credits_each_customer_to_her_first_marketing_touch_before_her_first_purchase():
    a = attribution.acquisition(_acquired_events())
    # converting journeys: store (1, 2), sms (1, 2, 3, 4), moments_ad (3), guide (2: her WeCom add is a touch
    # of her journey); person 4 is acquired by nobody
    assert a[["channel", "acquirer", "journeys", "acquired"]].values.tolist() == [
        ["guide", "store", 1, 1], ["moments_ad", "moments_ad", 1, 1], ["sms", "moments_ad", 4, 1],
        ["sms", "store", 4, 2], ["store", "store", 2, 2]]
    assert a["share"].tolist() == [1.0, 1.0, 0.25, 0.5, 1.0]


def test_calibrated_moves_a_tested_channels_uncaused_credit_to_the_untested_channel_that_acquired_the_buyers():
    ev = _acquired_events()
    base = _credit(store=2.0, sms=3.0, moments_ad=1.0)  # the six marketing journeys' credit
    lf = pd.concat([_lift_rows("sms", f=0.25, total=4.0, start="2024-04-01", end="2024-06-01"),
                    _lift_rows("moments_ad", f=0.5, total=2.0, start="2024-04-01", end="2024-06-01")],
                   ignore_index=True)
    cal = attribution.calibrated(ev, base="m", lifts=lf, attribution=base, draws=20).set_index("channel")
    # by hand: the SMS test finds 0.25 x 4 = 1 caused purchase of the 3 the base credits to SMS; the other 2
    # fall on journeys of the store's customers (2 of 4 SMS journeys), the ad's (1) and nobody's (1): the store
    # gets 2 x 2/4 = 1 on top of its own 2; the ad is tested (1 = 0.5 x 2: its test already holds its buyers')
    assert cal["conversions"].to_dict() == pytest.approx({"store": 3.0, "sms": 1.0, "moments_ad": 1.0})
    assert cal["acquired"].to_dict() == pytest.approx({"store": 1.0, "sms": 0.0, "moments_ad": 0.0})
    assert cal["value"].to_dict() == pytest.approx({"store": 27.0, "sms": 9.0, "moments_ad": 9.0})
    assert cal.loc["store", "share"] == pytest.approx(0.6)
    # the proportional rule instead gives the store everything the tests left: 6 - 1 - 1
    prop = attribution.calibrated(ev, base="m", lifts=lf, attribution=base, draws=20, acquisition=False)
    assert prop.set_index("channel").loc["store", "conversions"] == pytest.approx(4.0)
    # a frame of acquirer shares replaces the inferred ones
    given = pd.DataFrame({"channel": ["sms"], "acquirer": ["store"], "share": [1.0]})
    g = attribution.calibrated(ev, base="m", lifts=lf, attribution=base, draws=20, acquisition=given)
    assert g.set_index("channel").loc["store", "conversions"] == pytest.approx(2.0 + 2.0)
    with pytest.raises(UsageError, match="acquirer"):
        attribution.calibrated(ev, base="m", lifts=lf, attribution=base, draws=20,
                               acquisition=given.drop(columns="acquirer"))


def test_acquisition_matches_a_per_person_loop_on_simulated_data(tea):
    from privdomain.attribution.lift import JOIN_TOUCHPOINTS
    from privdomain.attribution.paths import NON_TOUCHES
    ev = pd.read_parquet(tea.path / "events")[["person_id", "ts", "touchpoint", "channel", "referrer_person_id",
                                                "event_id"]]
    ev["ch"] = ev["channel"].astype(str).where(ev["referrer_person_id"].isna() | (ev.touchpoint == "pay"),
                                               "fission")
    rows = ev[(ev.touchpoint == "pay") | (~ev.touchpoint.isin(NON_TOUCHES) & (ev.ch != "mini_program"))]
    rows = rows.assign(is_pay=(rows.touchpoint == "pay").astype(int)).sort_values(
        ["person_id", "ts", "is_pay", "event_id"])
    by_person: dict[int, list] = {}
    for r in rows[["person_id", "ts", "ch", "is_pay", "touchpoint"]].itertuples(index=False):
        by_person.setdefault(r.person_id, []).append(r)
    counts: dict[tuple[str, str], int] = {}
    journeys: dict[str, int] = {}
    day = pd.Timedelta(days=1)
    for g in by_person.values():
        pays = [r.ts for r in g if r.is_pay]
        if not pays:
            continue
        first_pay = min(pays)
        # the earliest touch at or before the first pay (joins excluded); a tie goes to the first name
        before = [(r.ts, r.ch) for r in g if not r.is_pay and r.touchpoint not in JOIN_TOUCHPOINTS
                  and r.ts <= first_pay]
        acquirer = min(before)[1] if before else None
        # journeys: cut after each pay and at gaps over 30 days; a converting journey's channels are its
        # touches in the 30 days before its pay
        current: list[tuple[pd.Timestamp, str]] = []
        prev = None
        for r in g:
            if prev is not None and (r.ts - prev) / day > 30:
                current = []
            prev = r.ts
            if r.is_pay:
                for c in {c for ts, c in current if (r.ts - ts) / day <= 30}:
                    journeys[c] = journeys.get(c, 0) + 1
                    if acquirer is not None:
                        counts[(c, acquirer)] = counts.get((c, acquirer), 0) + 1
                current = []
            else:
                current.append((r.ts, r.ch))
    a = attribution.acquisition(tea)
    assert {(c, b): n for c, b, n in a[["channel", "acquirer", "acquired"]].values} == counts
    assert a.groupby("channel")["journeys"].first().to_dict() == {c: n for c, n in journeys.items()
                                                                  if any(k[0] == c for k in counts)}
    assert len(counts) > 5 and counts[("sms", "store")] > 0
    # by person-hash partition the same frame: every count is of distinct persons' journeys
    for k in (2, 5):
        pd.testing.assert_frame_equal(attribution.acquisition(tea, partitions=k), a)
