"""Channels are marketing channels (golden journeys), lift estimates and lift-calibrated credit."""

from __future__ import annotations

import pytest

from privdomain import attribution, schema
from privdomain.attribution import build_paths
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
