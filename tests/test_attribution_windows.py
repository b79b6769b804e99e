"""Windowed ad attribution, fission credit and multi-level ROI on hand-built journeys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from privdomain.attribution.windows import ad_attribution, multi_level_roi, roi_curve
from privdomain.examples import events_frame
from privdomain.testing import reference


def pay(order_id, fen):
    return {"order_id": order_id, "amount_fen": fen}


def click(campaign):
    return {"campaign_id": campaign}


def row(r, campaign, window):
    got = r[(r.level == "campaign") & (r.campaign_id == campaign) & (r.window == window)]
    assert len(got) == 1
    return got.iloc[0]


CAMPAIGNS = pd.DataFrame({"campaign_id": [7, 8], "name": ["spring", "summer"],
                          "channel": ["moments_ad", "search_ad"], "spend_fen": [10_000, 5_000]})


def test_an_order_on_day_8_is_in_the_15_day_window_but_not_the_7_day_one():
    ev = events_frame([
        (1, "2024-05-01 23:00", "moments_ad_click", click(7)),
        (1, "2024-05-08 01:00", "pay", pay(1, 9900)),   # day 8 counting the click day as day 1
    ])
    r = ad_attribution(ev)
    assert [row(r, 7, w).direct_orders for w in (0, 7, 15, 30, 90)] == [0, 0, 1, 1, 1]


def test_an_order_on_day_7_is_in_the_7_day_window_and_same_day_means_the_calendar_day():
    ev = events_frame([
        (1, "2024-05-01 23:00", "moments_ad_click", click(7)),
        (1, "2024-05-01 23:30", "pay", pay(1, 100)),
        (1, "2024-05-02 00:30", "pay", pay(2, 200)),   # next calendar day, 90 minutes later
        (1, "2024-05-07 22:00", "pay", pay(3, 400)),   # day 7
    ])
    r = ad_attribution(ev)
    assert row(r, 7, 0).direct_revenue == 1.0
    assert row(r, 7, 7).direct_revenue == 7.0
    assert row(r, 7, 7).direct_orders == 3


def test_the_latest_ad_touch_before_the_pay_takes_the_credit():
    ev = events_frame([
        (1, "2024-05-01 10:00", "moments_ad_click", click(7)),
        (1, "2024-05-03 10:00", "search_ad_click", click(8)),
        (1, "2024-05-04 10:00", "pay", pay(1, 5000)),
    ])
    r = ad_attribution(ev)
    assert row(r, 8, 7).direct_orders == 1
    assert row(r, 7, 90).direct_orders == 0


def test_an_ad_touch_after_the_pay_earns_nothing():
    ev = events_frame([(1, "2024-05-01 10:00", "pay", pay(1, 5000)),
                       (1, "2024-05-01 11:00", "moments_ad_click", click(7))])
    r = ad_attribution(ev)
    assert r["orders"].sum() == 0 and r.attrs["unattributed_purchases"] == 1


def test_a_friends_order_through_a_share_counts_as_fission_not_direct():
    ev = events_frame([
        (1, "2024-05-01 10:00", "moments_ad_click", click(7)),
        (1, "2024-05-01 10:05", "share", click(7)),
        (2, "2024-05-02 09:00", "mp_visit", {"referrer_person_id": 1}),   # friend arrives via the share
        (2, "2024-05-05 09:00", "pay", pay(1, 30000)),
    ])
    r = ad_attribution(ev)
    x = row(r, 7, 7)
    assert (x.direct_orders, x.fission_orders, x.fission_revenue) == (0, 1, 300.0)
    # the window for the friend runs from their arrival day (May 2): May 5 is day 4
    assert row(r, 7, 0).fission_orders == 0


def test_a_friend_who_clicks_the_ad_themselves_is_direct():
    ev = events_frame([
        (1, "2024-05-01 10:00", "moments_ad_click", click(7)),
        (1, "2024-05-01 10:05", "share", click(7)),
        (2, "2024-05-02 09:00", "mp_visit", {"referrer_person_id": 1}),
        (2, "2024-05-03 09:00", "search_ad_click", click(8)),
        (2, "2024-05-05 09:00", "pay", pay(1, 30000)),
    ])
    r = ad_attribution(ev)
    assert row(r, 8, 7).direct_orders == 1
    assert row(r, 7, 7).fission_orders == 0


def test_fission_follows_referral_chains_up_to_the_documented_depth():
    rows = [(1, "2024-05-01 10:00", "moments_ad_click", click(7)),
            (1, "2024-05-01 10:05", "share", click(7))]
    for friend in range(2, 7):  # 2 <- 1, 3 <- 2, 4 <- 3, 5 <- 4, 6 <- 5
        rows.append((friend, f"2024-05-0{friend} 09:00", "mp_visit", {"referrer_person_id": friend - 1}))
        rows.append((friend, f"2024-05-0{friend} 12:00", "pay", pay(friend, 100 * friend)))
    ev = events_frame(rows)
    r3 = ad_attribution(ev, fission_depth=3)
    assert row(r3, 7, 7).fission_orders == 3          # persons 2, 3, 4 (depths 1, 2, 3)
    assert row(r3, 7, 7).fission_revenue == 9.0
    assert row(ad_attribution(ev, fission_depth=5), 7, 7).fission_orders == 5
    assert ad_attribution(ev, fission_depth=0)["orders"].sum() == 0


def test_a_share_without_a_campaign_carries_the_sharers_latest_ad_and_needs_an_ad_touch():
    ev = events_frame([
        (1, "2024-05-01 10:00", "search_ad_click", click(8)),
        (1, "2024-05-01 10:05", "share"),                                 # no campaign on the share
        (2, "2024-05-02 09:00", "mp_visit", {"referrer_person_id": 1}),
        (2, "2024-05-02 10:00", "pay", pay(1, 1000)),
        (3, "2024-05-01 10:05", "share", click(7)),                       # shared without clicking
        (4, "2024-05-02 09:00", "mp_visit", {"referrer_person_id": 3}),
        (4, "2024-05-02 10:00", "pay", pay(2, 1000)),
    ])
    r = ad_attribution(ev)
    assert row(r, 8, 7).fission_orders == 1
    assert r.loc[r.campaign_id == 7, "orders"].sum() == 0


def test_a_share_after_the_friend_arrived_does_not_count():
    ev = events_frame([
        (2, "2024-05-01 09:00", "mp_visit", {"referrer_person_id": 1}),
        (1, "2024-05-01 10:00", "moments_ad_click", click(7)),
        (1, "2024-05-01 10:05", "share", click(7)),
        (2, "2024-05-02 10:00", "pay", pay(1, 1000)),
    ])
    assert ad_attribution(ev)["fission_orders"].sum() == 0


def test_views_are_credited_separately_from_clicks():
    ev = events_frame([
        (1, "2024-05-01 10:00", "moments_ad_view", click(7)),
        (1, "2024-05-01 10:30", "moments_ad_view", click(7)),
        (1, "2024-05-02 10:00", "pay", pay(1, 2000)),
    ])
    clicks = ad_attribution(ev, touch="click")
    views = ad_attribution(ev, touch="view")
    assert clicks["orders"].sum() == 0
    assert row(views, 7, 7).direct_orders == 1
    assert row(views, 7, 7).exposures == 2 and row(views, 7, 7).clicks == 0
    with pytest.raises(ValueError, match="touch"):
        ad_attribution(ev, touch="hover")


def test_spend_roi_and_channel_rows_come_from_the_campaigns_table():
    ev = events_frame([
        (1, "2024-05-01 10:00", "moments_ad_view", click(7)),
        (1, "2024-05-01 10:01", "moments_ad_click", click(7)),
        (1, "2024-05-01 12:00", "pay", pay(1, 20_000)),
        (2, "2024-05-01 10:00", "search_ad_click", click(8)),
        (2, "2024-05-20 10:00", "pay", pay(2, 10_000)),
    ])
    r = ad_attribution(ev, campaigns=CAMPAIGNS, level="both")
    assert row(r, 7, 0).spend == 100.0 and row(r, 7, 0).roi == 2.0
    assert row(r, 8, 30).roi == 2.0 and row(r, 8, 0).roi == 0.0
    ch = r[(r.level == "channel") & (r.window == 30)].set_index("channel")
    assert ch.loc["moments_ad", "clicks"] == 1 and ch.loc["search_ad", "revenue"] == 100.0
    assert ch["spend"].sum() == 150.0


def test_multi_level_roi_puts_windows_side_by_side_with_repurchase_of_acquired_persons():
    ev = events_frame([
        (1, "2024-05-01 10:00", "moments_ad_click", click(7)),
        (1, "2024-05-01 12:00", "pay", pay(1, 10_000)),     # same day
        (1, "2024-05-05 12:00", "pay", pay(2, 10_000)),     # 7-day
        (1, "2024-05-25 12:00", "pay", pay(3, 20_000)),     # 30-day
        (1, "2024-09-01 12:00", "pay", pay(4, 50_000)),     # beyond 90 days: repurchase only
    ])
    m = multi_level_roi(ev, campaigns=CAMPAIGNS).set_index("campaign_id")
    x = m.loc[7]
    assert (x.roi_same_day, x.roi_7d, x.roi_30d, x.roi_90d) == (1.0, 2.0, 4.0, 4.0)
    assert x.long_over_immediate_30 == 4.0
    assert x.acquired == 1 and x.repurchase_orders == 3 and x.repurchase_revenue == 800.0
    curve = roi_curve(ev, campaigns=CAMPAIGNS, horizon="30D")
    c7 = curve[curve.campaign_id == 7]
    assert c7["revenue"].is_monotonic_increasing
    assert c7.set_index("day").loc[[0, 3, 4, 23, 24], "roi"].tolist() == [1.0, 1.0, 2.0, 2.0, 4.0]


def random_events(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    oid = 0
    persons = 30
    for p in range(persons):
        t = pd.Timestamp("2024-05-01") + pd.Timedelta(hours=6 * p + int(rng.integers(0, 30)))
        ref = {"referrer_person_id": int(rng.integers(0, p))} if p and rng.random() < 0.6 else {}
        rows.append((p, t, "mp_visit", ref))
        if rng.random() < 0.5:  # an early ad touch and share, so later arrivals can be referred
            camp = {"campaign_id": int(rng.integers(1, 4))}
            rows.append((p, t + pd.Timedelta(minutes=20), str(rng.choice(["moments_ad_click", "search_ad_view"])),
                         camp))
            if rng.random() < 0.7:
                rows.append((p, t + pd.Timedelta(minutes=40), "share", camp if rng.random() < 0.6 else {}))
        for _ in range(int(rng.integers(1, 8))):
            t += pd.Timedelta(hours=float(rng.choice([0.5, 5, 30, 24 * 9, 24 * 20])))
            u = rng.random()
            camp = {"campaign_id": int(rng.integers(1, 4))}
            if u < 0.3:
                rows.append((p, t, str(rng.choice(["moments_ad_click", "search_ad_view"])), camp))
            elif u < 0.4:
                rows.append((p, t, "share", camp if rng.random() < 0.6 else {}))
            elif u < 0.7:
                oid += 1
                rows.append((p, t, "pay", pay(oid, int(rng.integers(100, 50_000)))))
            else:
                rows.append((p, t, "oa_article_open"))
    return events_frame(rows)


@pytest.mark.parametrize("seed,touch,depth", [(0, "click", 3), (1, "click", 1), (4, "view", 2), (3, "click", 3)])
def test_ad_attribution_equals_the_per_purchase_reference_on_random_journeys(seed, touch, depth):
    ev = random_events(seed)
    r = ad_attribution(ev, touch=touch, fission_depth=depth)
    ref = reference.ad_attribution(ev, touch=touch, fission_depth=depth)
    got = {(int(c), int(w)): [int(a), round(b * 100), int(f), round(g * 100)]
           for c, w, a, b, f, g in r[["campaign_id", "window", "direct_orders", "direct_revenue", "fission_orders",
                                      "fission_revenue"]].itertuples(index=False)
           if a or f}
    assert got == ref
    assert sum(v[2] for v in ref.values()) > 0 or depth == 1  # the random data exercise fission


def test_a_dataset_folder_gives_the_same_answers_as_the_frames(tmp_path):
    from privdomain import attribution, io

    ev = random_events(3)
    camp = pd.DataFrame({"campaign_id": [1, 2, 3], "name": ["a", "b", "c"],
                         "channel": ["moments_ad", "search_ad", "moments_ad"],
                         "start": pd.to_datetime(["2024-05-01"] * 3).tz_localize("Asia/Shanghai"),
                         "end": pd.to_datetime(["2024-07-01"] * 3).tz_localize("Asia/Shanghai"),
                         "spend_fen": [10_000, 20_000, 30_000]})
    ds = io.write_dataset(tmp_path / "ds", {"events": ev, "campaigns": camp})
    a = ad_attribution(ds, campaigns=ds)
    b = ad_attribution(ev, campaigns=camp)
    pd.testing.assert_frame_equal(a, b)
    assert a["spend"].max() == 300.0
    pd.testing.assert_frame_equal(attribution.build_paths(ds), attribution.build_paths(ev))
    m = multi_level_roi(ds, campaigns=ds)
    assert set(m["campaign_id"]) == {1, 2, 3}


def test_the_roi_curve_counts_fission_revenue_from_the_friends_arrival_day():
    ev = events_frame([
        (1, "2024-05-01 10:00", "moments_ad_click", click(7)),
        (1, "2024-05-01 10:05", "share"),
        (2, "2024-05-03 09:00", "mp_visit", {"referrer_person_id": 1}),
        (2, "2024-05-05 09:00", "pay", pay(1, 50_000)),   # day 2 after the friend's arrival
        (1, "2024-05-04 09:00", "pay", pay(2, 10_000)),   # day 3 after the click
    ])
    c = roi_curve(ev, campaigns=CAMPAIGNS, horizon="5D").query("campaign_id == 7").set_index("day")
    assert c["revenue"].tolist() == [0.0, 0.0, 500.0, 600.0, 600.0]
    assert c.loc[4, "roi"] == 6.0 and np.isnan(c.loc[0, "roi_over_same_day"])
    m = multi_level_roi(ev, campaigns=CAMPAIGNS).set_index("campaign_id").loc[7]
    assert m.acquired == 2 and m.revenue_7d == 600.0 and np.isnan(m.long_over_immediate_30)


def test_multi_level_roi_without_any_ad_touch_is_empty_with_every_column():
    from privdomain.attribution import multi_level_roi
    from privdomain.examples import events_frame

    ev = events_frame([(1, "2024-05-01 10:00", "store_visit"),
                       (1, "2024-05-01 10:05", "pay", {"order_id": 1, "amount_fen": 500})])
    out = multi_level_roi(ev)
    assert out.empty
    assert {"roi_same_day", "roi_30d", "revenue_90d", "long_over_immediate_30"} <= set(out.columns)


@pytest.mark.parametrize("seed,touch,depth", [(0, "click", 3), (3, "click", 2), (4, "view", 3)])
def test_ad_attribution_and_multi_level_roi_in_person_partitions_equal_one_pass(seed, touch, depth):
    ev = random_events(seed)
    camp = pd.DataFrame({"campaign_id": [1, 2, 3], "spend_fen": [10_000, 20_000, 5_000],
                         "channel": ["moments", "search", "moments"]})
    one = ad_attribution(ev, camp, touch=touch, fission_depth=depth, level="both", partitions=1)
    mone = multi_level_roi(ev, camp, touch=touch, fission_depth=depth, partitions=1)
    assert one["orders"].sum() > 0 and one["fission_orders"].sum() > 0 and mone["acquired"].sum() > 0
    assert mone["repurchase_orders"].sum() > 0
    for k in (2, 3):
        many = ad_attribution(ev, camp, touch=touch, fission_depth=depth, level="both", partitions=k)
        assert many.attrs["partitions"] == k
        pd.testing.assert_frame_equal(many, one)
        assert {a: v for a, v in many.attrs.items() if a != "partitions"} == \
            {a: v for a, v in one.attrs.items() if a != "partitions"}
        pd.testing.assert_frame_equal(multi_level_roi(ev, camp, touch=touch, fission_depth=depth, partitions=k),
                                      mone)


@pytest.mark.parametrize("seed", [0, 5])
def test_multi_level_roi_acquisition_and_repurchase_equal_a_per_buyer_loop(seed):
    from privdomain.attribution.windows import credited_purchases
    from privdomain.backend import execute

    ev = random_events(seed)
    cp = execute(credited_purchases(ev)).sort_values(["person_id", "pay_ts", "pay_event_id"])
    acquired, orders, fen = {}, {}, {}
    for _, buys in cp.groupby("person_id"):
        first = buys.iloc[0]  # her first purchase: credited within 90 days, direct ad first
        if pd.notna(first.d_days) and first.d_days < 90:
            camp = int(first.d_campaign)
        elif pd.notna(first.f_days) and first.f_days < 90:
            camp = int(first.f_campaign)
        else:
            continue
        acquired[camp] = acquired.get(camp, 0) + 1
        orders[camp] = orders.get(camp, 0) + len(buys) - 1
        fen[camp] = fen.get(camp, 0) + int(buys["amount_fen"].iloc[1:].sum())
    assert sum(acquired.values()) > 0 and sum(orders.values()) > 0
    m = multi_level_roi(ev).set_index("campaign_id")
    for camp in m.index:
        assert m.loc[camp, "acquired"] == acquired.get(camp, 0)
        assert m.loc[camp, "repurchase_orders"] == orders.get(camp, 0)
        assert m.loc[camp, "repurchase_revenue"] == fen.get(camp, 0) / 100.0
    assert set(acquired) <= set(m.index)
