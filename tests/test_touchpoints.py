"""Touchpoint map, channel cube and live board: golden journeys and per-person references."""

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privdomain import io, schema
from privdomain.boards.channel_cube import channel_cube, channel_products
from privdomain.boards.live import live_board, live_products
from privdomain.boards.touchpoints import touchpoint_flows, touchpoint_nodes
from privdomain.examples import events_frame
from privdomain.testing import reference


def pay(person, ts, fen, **extra):
    return (person, ts, "pay", {"order_id": abs(hash((person, ts))) % 10**9, "amount_fen": fen, **extra})


# ---------------------------------------------------------------- touchpoint map


def test_flows_join_consecutive_events_within_the_session_gap():
    ev = events_frame([(1, "2024-05-01 10:00", "oa_article_open"), (1, "2024-05-01 10:01", "mp_click"),
                       (1, "2024-05-01 11:00", "mp_visit"),  # 59 minutes later: a new session at 30 min
                       (2, "2024-05-01 10:00", "oa_article_open"), (2, "2024-05-01 10:10", "mp_click")])
    out = touchpoint_flows(ev, gap="30min")
    assert out[["source", "target", "transitions", "persons"]].values.tolist() == [
        ["oa_article_open", "mp_click", 2, 2]]
    assert len(touchpoint_flows(ev, gap="1h")) == 2


def test_flows_with_entry_and_exit_close_every_session():
    ev = events_frame([(1, "2024-05-01 10:00", "sms"), (1, "2024-05-01 10:05", "mp_visit"),
                       (1, "2024-05-02 10:00", "mp_visit")])
    out = touchpoint_flows(ev, entry_exit=True)
    got = {(r.source, r.target): r.transitions for r in out.itertuples()}
    assert got == {("(entry)", "sms"): 1, ("sms", "mp_visit"): 1, ("mp_visit", "(exit)"): 2,
                   ("(entry)", "mp_visit"): 1}


def test_flows_between_channels_and_share_of_source():
    ev = events_frame([(1, "2024-05-01 10:00", "oa_push"), (1, "2024-05-01 10:05", "oa_article_open"),
                       (1, "2024-05-01 10:06", "mp_visit")])
    out = touchpoint_flows(ev, level="channel")
    got = {(r.source, r.target): r.share_of_source for r in out.itertuples()}
    assert got == {("official_account", "official_account"): 0.5, ("official_account", "mini_program"): 0.5}


def _random_events(rng, n, tps=("sms", "mp_visit", "oa_push", "store_visit", "pay", "live_view")):
    start = pd.Timestamp("2024-05-01", tz=schema.TIMEZONE)
    rows = []
    for p, s, tp in zip(rng.integers(0, 6, n), rng.integers(0, 60, n) * 3600 * 6, rng.choice(list(tps), n)):
        extra = {"order_id": int(s), "amount_fen": int(s) % 997 + 1, "product_id": int(s) % 3} if tp == "pay" else {}
        rows.append((int(p), start + pd.Timedelta(seconds=int(s)), str(tp), extra))
    return events_frame(rows)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 60), st.sampled_from(["6h", "1D"]))
def test_flows_equal_the_per_person_reference(seed, n, gap):
    ev = _random_events(np.random.default_rng(seed), n)
    pd.testing.assert_frame_equal(touchpoint_flows(ev, gap), reference.touchpoint_flows(ev, gap), check_dtype=False)


def test_node_rates_count_persons_who_went_on_within_the_window():
    ev = events_frame([(1, "2024-05-01 10:00", "sms"), (1, "2024-05-01 10:05", "mp_visit"),
                       pay(1, "2024-05-09 10:06", 100),  # 8 days after the sms
                       (2, "2024-05-01 10:00", "sms"), (2, "2024-05-02 10:00", "mp_click"), pay(2, "2024-05-02 11:00", 100),
                       (3, "2024-05-01 10:00", "sms")])
    out = touchpoint_nodes(ev, window="7D").set_index("node")
    assert out.loc["sms", "persons"] == 3 and out.loc["sms", "clicked_through"] == 2
    assert out.loc["sms", "converted"] == 1
    # a node's own event does not count for itself: a visit followed by nothing is not a click-through
    assert out.loc["mp_visit", "clicked_through"] == 0


# ---------------------------------------------------------------- channel cube


def test_a_pay_is_credited_to_every_channel_touched_within_the_window():
    ev = events_frame([(1, "2024-05-01 10:00", "sms"), (1, "2024-05-05 10:00", "store_visit"),
                       pay(1, "2024-05-06 09:00", 10000)])
    out = channel_cube(ev, windows=(1, 7)).set_index(["channel", "window_days"])
    assert out.loc[("store", 1), "orders"] == 1 and out.loc[("sms", 1), "orders"] == 0
    assert out.loc[("sms", 7), "gmv"] == 100.0 and out.loc[("store", 7), "gmv"] == 100.0


def test_who_converted_first_visit_returning_visitor_and_repeat_buyer():
    ev = events_frame([
        (1, "2024-05-01 10:00", "sms"), pay(1, "2024-05-01 12:00", 100),          # first visit: came that day
        (2, "2024-04-20 10:00", "mp_visit"), (2, "2024-05-01 10:00", "sms"),
        pay(2, "2024-05-01 12:00", 100),                                           # returning visitor
        (3, "2024-04-20 10:00", "mp_visit"), pay(3, "2024-04-20 11:00", 100),
        (3, "2024-05-01 10:00", "sms"), pay(3, "2024-05-01 12:00", 100),           # repeat buyer
    ])
    r = channel_cube(ev, windows=[1]).set_index("channel").loc["sms"]
    assert (r.buyers, r.first_visit_buyers, r.returning_visitor_buyers, r.repeat_buyers) == (3, 1, 1, 1)


def test_the_order_channel_says_where_the_credited_order_happened():
    ev = events_frame([(1, "2024-05-01 10:00", "sms"), pay(1, "2024-05-01 11:00", 100, channel="live"),
                       pay(1, "2024-05-01 12:00", 300)])
    out = channel_cube(ev, windows=[1], by_order_channel=True)
    assert out[["channel", "order_channel", "orders", "gmv"]].values.tolist() == [
        ["sms", "live", 1, 1.0], ["sms", "mini_program", 1, 3.0]]


def test_the_buyer_is_judged_at_their_first_credited_pay():
    # two pays after the same sms: the buyer is a first-visit buyer (first pay), not a repeat buyer
    ev = events_frame([(1, "2024-05-01 10:00", "sms"), pay(1, "2024-05-01 11:00", 100), pay(1, "2024-05-02 11:00", 100)])
    r = channel_cube(ev, windows=[7]).set_index("channel").loc["sms"]
    assert (r.orders, r.buyers, r.first_visit_buyers, r.repeat_buyers) == (2, 1, 1, 0)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 50))
def test_channel_cube_equals_the_per_person_reference(seed, n):
    ev = _random_events(np.random.default_rng(seed), n)
    got = channel_cube(ev, windows=(1, 7))
    want = reference.channel_cube(ev, windows=(1, 7))
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_channel_products_rank_by_gmv():
    ev = events_frame([(1, "2024-05-01 10:00", "sms"), pay(1, "2024-05-01 11:00", 300, product_id=1),
                       pay(1, "2024-05-01 12:00", 500, product_id=2), pay(1, "2024-05-01 13:00", 400, product_id=1)])
    out = channel_products(ev, top=1)
    assert out[["channel", "rank", "product_id", "orders", "gmv"]].values.tolist() == [["sms", 1, 1, 2, 7.0]]


def test_channel_cube_inputs_agree(tmp_path):
    ev = _random_events(np.random.default_rng(11), 80)
    a = channel_cube(ev)
    ds = io.write_dataset(tmp_path / "ds", {"events": ev})
    pd.testing.assert_frame_equal(a, channel_cube(ds.path))
    pd.testing.assert_frame_equal(a, channel_cube(ibis.duckdb.connect().create_table("ev", ev)))


# ---------------------------------------------------------------- live board


def test_live_board_counts_each_session_and_its_phases():
    ev = events_frame([
        (1, "2024-05-01 12:00", "sms", {"live_id": 1}),                # warm-up
        (1, "2024-05-01 20:05", "live_view", {"live_id": 1}),
        (1, "2024-05-01 20:06", "live_interact", {"live_id": 1}),
        (1, "2024-05-01 20:07", "product_view", {"live_id": 1, "product_id": 5}),
        pay(1, "2024-05-01 20:10", 9900, live_id=1, product_id=5, channel="live"),
        (2, "2024-05-01 20:30", "live_view", {"live_id": 1}),
        (3, "2024-05-02 09:00", "live_view", {"live_id": 1}),           # replay
        (3, "2024-05-02 09:00", "live_view", {"live_id": 2}),
        (4, "2024-05-01 20:30", "mp_visit"),                             # not part of any session
    ])
    lives = pd.DataFrame({"live_id": [1, 2], "start": pd.to_datetime(["2024-05-01 20:00", "2024-05-02 20:00"]),
                          "end": pd.to_datetime(["2024-05-01 22:00", "2024-05-02 22:00"])})
    for c in ("start", "end"):
        lives[c] = lives[c].dt.tz_localize(schema.TIMEZONE)
    r = live_board(ev, lives).set_index("live_id").loc[1]
    assert (r.exposure, r.viewers, r.views, r.interacting, r.visitors, r.buyers, r.gmv) == (3, 3, 3, 1, 1, 1, 99.0)
    assert r.conversion_rate == 1 / 3
    assert (r.warmup_persons, r.during_persons, r.replay_persons) == (1, 2, 1)
    assert "warmup_persons" not in live_board(ev).columns
    prods = live_products(ev)
    assert prods[["live_id", "product_id", "clicks", "orders", "gmv"]].values.tolist() == [[1, 5, 1, 1, 99.0]]


def test_every_board_gives_the_same_result_from_pandas_a_dataset_path_and_an_ibis_table(tmp_path):
    rng = np.random.default_rng(4)
    ev = _random_events(rng, 90, tps=("sms", "mp_visit", "live_view", "product_view", "pay", "mp_click"))
    ev["live_id"] = pd.array(np.where(ev["touchpoint"].isin(["live_view", "product_view", "pay"]), 1, None),
                             dtype="Int64")
    ev["product_id"] = pd.array(np.where(ev["touchpoint"].isin(["product_view", "pay"]), 2, None), dtype="Int64")
    ds = io.write_dataset(tmp_path / "ds", {"events": ev})
    table = ibis.duckdb.connect().create_table("ev", ev)
    for fn in (touchpoint_flows, touchpoint_nodes, live_board, live_products, channel_products):
        a = fn(ev)
        pd.testing.assert_frame_equal(a, fn(ds.path))
        pd.testing.assert_frame_equal(a, fn(table))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_touchpoint_map_in_person_partitions_equals_one_pass(seed):
    ev = _random_events(np.random.default_rng(seed), 200)
    for k in (2, 3):
        for entry_exit in (False, True):
            one = touchpoint_flows(ev, "1D", entry_exit=entry_exit, partitions=1)
            many = touchpoint_flows(ev, "1D", entry_exit=entry_exit, partitions=k)
            assert many.attrs["partitions"] == k
            pd.testing.assert_frame_equal(many, one, check_dtype=False)
        one, many = touchpoint_nodes(ev, "2D", partitions=1), touchpoint_nodes(ev, "2D", partitions=k)
        assert one["persons"].sum() > 0 and many.attrs["partitions"] == k
        pd.testing.assert_frame_equal(many, one, check_dtype=False)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_channel_cube_and_its_products_in_person_partitions_equal_one_pass(seed):
    ev = _random_events(np.random.default_rng(seed), 300)
    ev["person_id"] = np.random.default_rng(seed + 10).integers(0, 40, len(ev))
    for by in (False, True):
        one = channel_cube(ev, windows=(1, 7, 30), by_order_channel=by, partitions=1)
        assert one["orders"].sum() > 0
        for k in (2, 5):
            pd.testing.assert_frame_equal(channel_cube(ev, windows=(1, 7, 30), by_order_channel=by, partitions=k),
                                          one, check_dtype=False)
    one = channel_products(ev, window=7, top=2, partitions=1)
    assert len(one) > 0
    pd.testing.assert_frame_equal(channel_products(ev, window=7, top=2, partitions=3), one, check_dtype=False)
