"""Path tables built from events: conversion windows, journeys cut at purchases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from privdomain import attribution, schema
from privdomain.attribution import build_paths, rule_based
from privdomain.examples import events_frame
from privdomain.testing import reference


def pay(order_id, fen):
    return {"order_id": order_id, "amount_fen": fen}


def test_touches_older_than_the_window_are_left_out_of_the_path_and_counted():
    ev = events_frame([
        (1, "2024-05-01 10:00", "moments_ad_click"),       # 32 days before the pay: outside 30
        (1, "2024-05-20 10:00", "oa_article_open"),
        (1, "2024-06-02 10:00", "pay", pay(1, 5000)),
    ])
    pt = build_paths(ev, window="30D")
    assert pt.values.tolist() == [["official_account", 1, 50.0, 0]]
    assert pt.attrs["touches_outside_window"] == 1
    assert build_paths(ev, window="40D")["path"].tolist() == ["moments_ad > official_account"]


def test_each_purchase_closes_a_journey_and_touches_after_the_last_one_make_a_null_path():
    ev = events_frame([
        (7, "2024-05-01 10:00", "search_ad_click"),
        (7, "2024-05-01 11:00", "pay", pay(1, 1000)),
        (7, "2024-05-03 10:00", "group_message"),
        (7, "2024-05-03 10:30", "wecom_chat"),
        (7, "2024-05-04 10:00", "order", pay(2, 2000)),  # order/refund rows are not touches
        (7, "2024-05-04 10:01", "pay", pay(2, 2000)),
        (7, "2024-05-09 10:00", "sms"),
    ])
    pt = build_paths(ev).set_index("path")
    assert pt.loc["search_ad", "total_conversions"] == 1
    assert pt.loc["group > guide", "total_conversion_value"] == 20.0
    assert pt.loc["sms", "total_null"] == 1
    assert pt["total_conversions"].sum() == 2


def test_a_touch_at_the_same_instant_as_the_pay_counts_before_it():
    ev = events_frame([(1, "2024-05-01 10:00", "pay", pay(1, 100)), (1, "2024-05-01 10:00", "sms")])
    assert build_paths(ev)["path"].tolist() == ["sms"]


def test_a_purchase_without_any_touch_in_its_window_is_direct_and_counted():
    ev = events_frame([
        (1, "2024-05-01 10:00", "pay", pay(1, 100)),
        (2, "2024-05-01 09:00", "live_view"),
        (2, "2024-05-01 10:00", "pay", pay(2, 300)),
    ])
    pt = build_paths(ev)
    assert pt.values.tolist() == [["direct", 1, 1.0, 0], ["live", 1, 3.0, 0]]
    assert pt.attrs["purchases"] == 2 and pt.attrs["purchases_without_touch"] == 1


def random_events(seed: int, persons: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    touch = [t for t in schema.TOUCHPOINTS if t not in schema.ORDER_TOUCHPOINTS]
    rows = []
    oid = 0
    for p in range(persons):
        t0 = pd.Timestamp("2024-05-01") + pd.Timedelta(hours=int(rng.integers(0, 100)))
        for _ in range(int(rng.integers(1, 12))):
            t0 += pd.Timedelta(hours=float(rng.choice([0.0, 1, 30, 24 * 12, 24 * 40])))
            if rng.random() < 0.25:
                oid += 1
                rows.append((p, t0, "pay", pay(oid, int(rng.integers(100, 90000)))))
            else:
                rows.append((p, t0, str(rng.choice(touch))))
    return events_frame(rows)


@pytest.mark.parametrize("seed,window", [(0, 30), (1, 7), (2, 0.5)])
def test_build_paths_equals_the_per_person_reference_on_random_events(seed, window):
    ev = random_events(seed)
    got = build_paths(ev, window=pd.Timedelta(days=window))
    ref = reference.attribution_paths(ev, window_days=window)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), ref, check_dtype=False)


def test_models_from_events_equal_models_from_the_built_path_table():
    ev = random_events(5, persons=60)
    pt = build_paths(ev)
    a = attribution.attribute(ev, models=["linear", "markov", "shapley"])
    b = attribution.attribute(pt, models=["linear", "markov", "shapley"])
    pd.testing.assert_frame_equal(a, b)


def test_time_decay_from_events_uses_touch_age_in_days():
    ev = events_frame([
        (1, "2024-05-01 10:00", "moments_ad_click"),
        (1, "2024-05-08 10:00", "oa_article_open"),
        (1, "2024-05-08 10:00", "sms"),
        (1, "2024-05-08 10:00", "pay", pay(1, 3000)),
    ])
    r = rule_based(ev, models=["time_decay"], half_life=7).set_index("channel")
    # ages 7, 0, 0 days -> weights 1/2, 1, 1
    assert r.loc["moments_ad", "conversions"] == pytest.approx(0.5 / 2.5)
    assert r.loc["official_account", "value"] == pytest.approx(30 * 1 / 2.5)
    assert r["conversions"].sum() == pytest.approx(1.0)


def test_attribute_on_events_uses_touch_ages_for_time_decay_like_rule_based():
    ev = random_events(7)
    a = attribution.attribute(ev, models=["time_decay"], half_life=3.0)
    b = rule_based(ev, models=["time_decay"], half_life=3.0)
    assert a["conversions"].round(12).tolist() == b["conversions"].round(12).tolist()
    assert a["conversions"].sum() == pytest.approx(build_paths(ev)["total_conversions"].sum())


def test_a_touch_through_a_friends_share_is_a_fission_touch_and_the_share_itself_is_no_touch():
    ev = events_frame([
        (1, "2024-05-01 10:00", "moments_ad_click", {"campaign_id": 3}),
        (1, "2024-05-01 11:00", "pay", pay(1, 1000)),
        (1, "2024-05-01 11:05", "share"),
        (2, "2024-05-02 10:00", "mp_visit", {"referrer_person_id": 1}),
        (2, "2024-05-02 10:30", "product_view"),
        (2, "2024-05-02 11:00", "pay", pay(2, 2000)),
    ])
    pt = build_paths(ev).set_index("path")
    assert pt.index.tolist() == ["fission", "moments_ad"]  # the product view is a step of the purchase
    assert pt.loc["fission", "total_conversion_value"] == 20.0
    ref = reference.attribution_paths(ev)
    assert ref["path"].tolist() == pt.index.tolist()


def test_a_journey_longer_than_the_first_path_words_is_built_whole_and_matches_the_reference():
    # 60 touches in one converting journey: more than the 4 int64 words (48 touches) tried first
    channels = ["moments_ad_click", "oa_article_open", "sms", "live_view", "wecom_chat"]
    rows = [(1, pd.Timestamp("2024-05-01 08:00") + pd.Timedelta(minutes=7 * i), channels[(i * i) % 5])
            for i in range(60)]
    rows += [(1, "2024-05-01 20:00", "pay", pay(1, 4200)), (2, "2024-05-01 09:00", "sms"),
             (2, "2024-05-01 09:00", "live_view")]  # two touches at one instant: event_id breaks the tie
    ev = events_frame(rows)
    pt = build_paths(ev)
    ref = reference.attribution_paths(ev)
    assert pt["path"].tolist() == ref["path"].tolist()
    assert pt["total_conversions"].tolist() == ref["total_conversions"].tolist()
    assert len(pt["path"].iloc[0 if pt["total_conversions"].iloc[0] else 1].split(" > ")) == 60
    assert pt.attrs["touches_outside_window"] == 0


def test_the_old_window_days_keyword_and_bare_days_still_work_with_a_warning():
    ev = random_events(3, persons=40)
    new = build_paths(ev, window="7D")
    with pytest.warns(DeprecationWarning, match=r"build_paths\(window_days=...\) is deprecated; use window="):
        old = build_paths(ev, window_days=7)
    with pytest.warns(DeprecationWarning, match="window=7 as a number of days is deprecated"):
        bare = build_paths(ev, 7)
    pd.testing.assert_frame_equal(old, new)
    pd.testing.assert_frame_equal(bare, new)
    assert build_paths(ev, window="36h").equals(build_paths(ev, window=pd.Timedelta(hours=36)))


@pytest.mark.parametrize("seed,parts", [(0, 2), (3, 3), (4, 7)])
def test_paths_built_partition_by_partition_equal_the_paths_built_at_once(seed, parts):
    ev = random_events(seed, persons=80)
    whole = build_paths(ev, partitions=1)
    split = build_paths(ev, partitions=parts)
    pd.testing.assert_frame_equal(split, whole)
    assert {k: v for k, v in split.attrs.items() if k != "partitions"} == \
        {k: v for k, v in whole.attrs.items() if k != "partitions"}
    assert (whole.attrs["partitions"], split.attrs["partitions"]) == (1, parts)
    ref = reference.attribution_paths(ev, window_days=30)
    pd.testing.assert_frame_equal(split.reset_index(drop=True), ref, check_dtype=False)


def test_person_partitions_hold_every_person_exactly_once():
    import ibis

    from privdomain.backend import execute
    from privdomain.events import person_part

    ids = pd.DataFrame({"person_id": np.r_[np.arange(-50, 950), 2**62, -(2**62)].astype("int64")})
    t = ibis.memtable(ids)
    seen = [execute(t.filter(person_part(t.person_id, i, 4)))["person_id"].tolist() for i in range(4)]
    flat = sorted(x for part in seen for x in part)
    assert flat == sorted(ids["person_id"].tolist())  # disjoint and complete
    assert min(map(len, seen)) > 150  # and not all in one partition (1,002 ids over 4)


def test_a_long_journey_in_one_partition_is_built_whole_when_the_others_are_short():
    channels = ["moments_ad_click", "oa_article_open", "sms", "live_view", "wecom_chat"]
    rows = [(1, pd.Timestamp("2024-05-01 08:00") + pd.Timedelta(minutes=7 * i), channels[(i * i) % 5])
            for i in range(60)]
    rows += [(1, "2024-05-01 20:00", "pay", pay(1, 4200))]
    rows += [(p, "2024-05-02 09:00", "sms") for p in range(2, 12)]
    ev = events_frame(rows)
    pd.testing.assert_frame_equal(build_paths(ev, partitions=3), build_paths(ev, partitions=1))
    assert build_paths(ev, partitions=3)["path"].str.count(" > ").max() == 59


def test_partitions_must_be_a_whole_number_of_at_least_one():
    ev = random_events(0, persons=3)
    for bad in (0, 1.5, -2):
        with pytest.raises(ValueError, match="partitions"):
            build_paths(ev, partitions=bad)


def test_time_decay_on_events_partition_by_partition_equals_it_at_once():
    from privdomain.attribution.rules import time_decay_events

    ev = random_events(9, persons=80)
    pt = build_paths(ev)
    whole = time_decay_events(ev, 3.0, "30D", ["sms"], con=None, paths=pt, partitions=1)
    split = time_decay_events(ev, 3.0, "30D", ["sms"], con=None, paths=pt, partitions=4)
    assert split["channel"].tolist() == whole["channel"].tolist()
    np.testing.assert_allclose(split["conversions"], whole["conversions"], rtol=1e-12)
    np.testing.assert_allclose(split["value"], whole["value"], rtol=1e-12)
    assert split["conversions"].sum() == pytest.approx(pt["total_conversions"].sum())
