"""Simulator realism: browsing that buys nothing, abandoned carts, live-stream traffic, store visits.

Every rate is measured by brute force on the events (plain pandas), not with the
package's metric modules, and compared with the scenario's ``browsing`` parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from privdomain.boards.live import live_board, live_products
from privdomain.simulate import ScenarioError, load_scenario, simulate

STEPS = ["mp_visit", "product_view", "add_to_cart", "order", "pay"]


def _events(ds) -> pd.DataFrame:
    ev = ds.read("events")
    for c in ("touchpoint", "channel"):
        ev[c] = ev[c].astype(str)
    return ev.sort_values(["ts", "event_id"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def beauty(tmp_path_factory):
    ds = simulate("beauty", persons=6000, seed=5, out=tmp_path_factory.mktemp("beauty") / "d", truth=False, progress=False)
    return ds, _events(ds)


def _variant(tmp_path_factory, name: str, **browsing):
    sc = load_scenario("beauty").replace(browsing=browsing)
    ds = simulate(sc, persons=6000, seed=5, out=tmp_path_factory.mktemp(name) / "d", truth=False, progress=False)
    return sc, _events(ds)


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    """Beauty with browsing rates far from the defaults and no abandoned carts before purchases."""
    return _variant(tmp_path_factory, "custom", view_rate=0.3, cart_rate=0.4, checkout_rate=1.0,
                    live_visit_rate=0.6, live_click_rate=0.25, warmup_rate=0.5, warmup_hours=6.0)


@pytest.fixture(scope="module")
def buyers_only(tmp_path_factory):
    """Beauty where visits never browse: every Mini Program cart is a buyer's."""
    return _variant(tmp_path_factory, "buyers", view_rate=0.0, checkout_rate=0.25)


def _followed(a: pd.DataFrame, b: pd.DataFrame, within: str, by: list[str]) -> np.ndarray:
    """For each row of ``a``: is there a row of ``b`` with the same ``by`` keys in (ts, ts + within]?"""
    a = a.reset_index(drop=True).assign(_i=lambda d: np.arange(len(d)))
    b = b[[*by, "ts"]].rename(columns={"ts": "_tb"})
    left = a.sort_values("ts")
    right = b.sort_values("_tb")
    m = pd.merge_asof(left, right, left_on="ts", right_on="_tb", by=by, direction="forward",
                      allow_exact_matches=False)
    ok = m["_tb"].notna() & ((m["_tb"] - m["ts"]) <= pd.Timedelta(within))
    out = np.zeros(len(a), bool)
    out[m["_i"].to_numpy()] = ok.to_numpy()
    return out


def _browsing_views(ev: pd.DataFrame, live: bool) -> pd.DataFrame:
    """Product views not followed by an order of the product within 5 minutes (a purchase's view is)."""
    pv = ev[(ev.touchpoint == "product_view") & (ev.live_id.notna() == live)]
    orders = ev[ev.touchpoint == "order"]
    return pv[~_followed(pv, orders, "5min", ["person_id", "product_id"])]


def _measured_rates(ev: pd.DataFrame) -> tuple[float, float]:
    visits = ev[(ev.touchpoint == "mp_visit") & ev.live_id.isna()]
    views = _browsing_views(ev, live=False)
    view_rate = _followed(visits, views, "60min", ["person_id"]).mean()
    carts = ev[(ev.touchpoint == "add_to_cart") & ev.live_id.isna()]
    cart_rate = _followed(views, carts, "60min", ["person_id", "product_id"]).mean()
    return float(view_rate), float(cart_rate)


def test_a_visit_views_a_product_and_a_view_fills_a_cart_at_the_configured_rates(custom):
    sc, ev = custom
    view_rate, cart_rate = _measured_rates(ev)
    # a visit can be followed by another visit's view within the hour: a small excess is allowed
    assert sc.browsing["view_rate"] - 0.02 < view_rate < sc.browsing["view_rate"] + 0.05
    assert abs(cart_rate - sc.browsing["cart_rate"]) < 0.03


def test_a_buyer_abandons_carts_before_the_one_she_orders_at_the_checkout_rate(buyers_only):
    sc, ev = buyers_only
    r = sc.browsing["checkout_rate"]
    online = ev.live_id.isna()
    orders = ev[(ev.touchpoint == "order") & (ev.channel == "mini_program")]
    carts = ev[(ev.touchpoint == "add_to_cart") & online]
    abandoned = carts[~_followed(carts, orders, "5min", ["person_id", "product_id"])]
    # buyers of exactly one Mini Program order whose first event came a day or more before it (room for
    # earlier sessions)
    one = orders.groupby("person_id").filter(lambda g: len(g) == 1).set_index("person_id")["ts"]
    first = ev.groupby("person_id")["ts"].min()
    room = one[(one - first.reindex(one.index)) > pd.Timedelta("1D")]
    n_ab = abandoned[abandoned.person_id.isin(room.index)].groupby("person_id").size().reindex(room.index,
                                                                                                 fill_value=0)
    assert len(room) > 200
    expected = (1 - r) / r * (1 - (1 - r) ** 20)  # a geometric count of failures, capped at 20
    assert abs(n_ab.mean() - expected) < 3 * n_ab.std() / np.sqrt(len(n_ab))
    # every abandoned cart comes before the order, in a session of its own that starts with a visit
    late = abandoned.merge(room.rename("order_ts"), left_on="person_id", right_index=True)
    assert (late.ts < late.order_ts - pd.Timedelta("5min")).all()
    pv = ev[(ev.touchpoint == "product_view") & online]
    visits = ev[ev.touchpoint == "mp_visit"]
    assert _followed(visits, pv, "1min", ["person_id"]).sum() >= len(abandoned)
    # without browsing, Mini Program carts are the buyers': about checkout_rate of them are ordered (a little
    # more: an order within minutes of the buyer's first event has no room for earlier carts)
    assert r - 0.01 < len(orders) / len(carts) < r + 0.06


def test_every_mini_program_step_loses_people(beauty):
    ev = beauty[1]
    persons = {s: set(ev.loc[ev.touchpoint == s, "person_id"]) for s in STEPS}
    events = {s: int((ev.touchpoint == s).sum()) for s in STEPS}
    for a, b in zip(STEPS, STEPS[1:]):
        reached = persons[a] & persons[b]
        assert 0 < len(reached) < len(persons[a]), (a, b)
        assert events[b] < events[a], (a, b)
    # event rates a shop would recognise: half the visits view a product, most carts are abandoned
    assert 0.4 < events["product_view"] / events["mp_visit"] < 0.7
    assert 0.15 < events["add_to_cart"] / events["product_view"] < 0.4
    online_orders = int(((ev.touchpoint == "order") & ev.channel.isin(["mini_program", "live"])).sum())
    assert 0.2 < online_orders / events["add_to_cart"] < 0.45  # 55-80% of carts abandoned


def test_an_abandoned_cart_has_no_order_and_a_purchase_still_has_its_cart(beauty):
    ev = beauty[1]
    carts = ev[ev.touchpoint == "add_to_cart"]
    orders = ev[ev.touchpoint == "order"]
    ordered = _followed(carts, orders, "5min", ["person_id", "product_id"])
    assert 0.55 < (~ordered).mean() < 0.8  # abandoned carts
    online = orders[orders.channel.isin(["mini_program", "live"])]
    had_cart = _followed(online.assign(ts=online.ts - pd.Timedelta("3min")), carts, "3min",
                         ["person_id", "product_id"])
    assert had_cart.all()


def test_live_viewers_visit_click_and_warm_up_at_the_configured_rates(custom):
    sc, ev = custom
    br = sc.browsing
    live = ev[ev.live_id.notna()]
    views = live[live.touchpoint == "live_view"].drop_duplicates(["person_id", "live_id"])  # not the replays
    visits = live[live.touchpoint == "mp_visit"]
    # a stream visit comes minutes after the view, a warm-up visit hours before the start
    lagged = pd.merge_asof(visits.sort_values("ts"), views[["person_id", "live_id", "ts"]]
                           .rename(columns={"ts": "view_ts"}).sort_values("view_ts"),
                           left_on="ts", right_on="view_ts", by=["person_id", "live_id"], direction="backward")
    stream = lagged[lagged.view_ts.notna()]
    warm = lagged[lagged.view_ts.isna()]
    assert abs(len(stream) / len(views) - br["live_visit_rate"]) < 0.03
    assert 0.6 * br["warmup_rate"] < len(warm) / len(views) <= br["warmup_rate"] + 0.02
    clicks = _browsing_views(ev, live=True)
    assert abs(len(clicks) / len(stream) - br["live_click_rate"]) < 0.03


def test_the_live_board_counts_visits_clicks_and_warm_up(beauty):
    ds = beauty[0]
    board = live_board(ds.path)
    watched = board[board.viewers >= 20]
    assert len(watched) >= 10
    for col in ("visitors", "mp_visits", "warmup_persons", "warmup_events"):
        assert (watched[col] > 0).mean() > 0.9, col
    assert (board.visitors <= board.exposure).all()
    products = live_products(ds.path)
    assert (products.clicks > 0).mean() > 0.8
    # products are ranked by real clicks: the top-clicked product of a session has the most clicks
    top = products[products.click_rank == 1].set_index("live_id")["clicks"]
    most = products.groupby("live_id")["clicks"].max()
    assert (top == most.reindex(top.index)).all() and (top > 0).mean() > 0.9
    # a product bought in a stream was clicked in it
    bought = products[products.orders > 0]
    assert (bought.clicks > 0).all()


def test_store_visits_with_and_without_a_purchase(tmp_path):
    ds = simulate("eyewear", persons=3000, seed=5, out=tmp_path / "d", truth=False, progress=False)
    ev = _events(ds)
    visits = ev[ev.touchpoint == "store_visit"]
    store_orders = ev[(ev.touchpoint == "order") & (ev.channel == "store")]
    bought = _followed(visits.assign(ts=visits.ts - pd.Timedelta("1s")), store_orders, "1D", ["person_id"])
    assert len(visits) > 500
    assert 0.05 < bought.mean() < 0.6  # many visits buy nothing, some do
    no_buy = set(visits.person_id) - set(store_orders.person_id)
    assert len(no_buy) > 0.3 * visits.person_id.nunique()


def test_browsing_rates_are_checked_like_every_scenario_key():
    with pytest.raises(ScenarioError) as err:
        load_scenario("beauty").replace(browsing={"view_rate": 1.5})
    assert "browsing.view_rate" in str(err.value)
    with pytest.raises(ScenarioError) as err:
        load_scenario("beauty").replace(browsing={"bounce": 0.5})
    assert "browsing.bounce" in str(err.value)


def test_viewers_watch_replays_and_the_live_board_counts_them(beauty):
    ds, ev = beauty
    lives = ds.read("lives")
    rate = load_scenario("beauty").browsing["replay_rate"]
    live = ev[ev.live_id.notna()].merge(lives[["live_id", "end"]], on="live_id")
    after = live[live.ts > live.end]
    replays = after[after.touchpoint == "live_view"]
    views = live[live.touchpoint == "live_view"]
    first = views.drop_duplicates(["person_id", "live_id"])
    # a replay is a second view of the same session, after its end, at about replay_rate of the viewers
    assert replays.duplicated(["person_id", "live_id"]).sum() == 0
    assert len(views) == len(first) + len(replays)
    assert 0.7 * rate < len(replays) / len(first) <= rate + 0.02
    board = live_board(ds.path).set_index("live_id")
    brute = after.groupby("live_id")["person_id"].nunique()
    assert board["replay_persons"].sum() > 0
    assert board["replay_persons"].to_dict() == brute.reindex(board.index, fill_value=0).to_dict()
    assert board["replay_events"].to_dict() == after.groupby("live_id").size().reindex(board.index, fill_value=0).to_dict()
