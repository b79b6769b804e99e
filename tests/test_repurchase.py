"""Repurchase rate within windows and the repurchase cycle (Kaplan-Meier)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privdomain.examples import events_frame
from privdomain.lifecycle.repurchase import purchase_gaps, repurchase_curve, repurchase_cycle, repurchase_rate
from privdomain.testing import reference

D0 = pd.Timestamp("2024-01-01")
DAY0 = (D0 - pd.Timestamp("1970-01-01")).days


def day(n: int, hour: str = "12:00") -> str:
    return f"{(D0 + pd.Timedelta(days=n)).date()} {hour}"


def pay(person: int, n: int, fen: int = 1000, hour: str = "12:00", channel: str = "mini_program"):
    return (person, day(n, hour), "pay", {"order_id": person * 1000 + n, "amount_fen": fen, "channel": channel})


def test_second_order_on_the_same_day_is_not_a_repurchase():
    ev = events_frame([pay(1, 0), (1, day(0, "18:00"), "pay", {"order_id": 5, "amount_fen": 1})])
    r = repurchase_rate(ev, windows=(30,), as_of=day(60)[:10])
    assert r.repurchasers.tolist() == [0] and r.buyers.tolist() == [1]


def test_repurchase_on_the_last_day_of_the_window_counts():
    ev = events_frame([pay(1, 0), pay(1, 30), pay(2, 0), pay(2, 31)])
    r = repurchase_rate(ev, windows=(30,), as_of=day(90)[:10])
    assert r.repurchasers.tolist() == [1] and r.rate.tolist() == [0.5]


def test_buyers_whose_window_is_not_over_are_excluded_and_counted():
    ev = events_frame([pay(1, 0), pay(2, 50), pay(2, 55)])
    r = repurchase_rate(ev, windows=(7, 30), as_of=day(60)[:10]).set_index("window_days")
    assert r.loc[7, "buyers"] == 2 and r.loc[7, "repurchasers"] == 1
    assert r.loc[30, "buyers"] == 1 and r.loc[30, "not_observable"] == 1 and r.loc[30, "repurchasers"] == 0


def test_purchases_after_as_of_are_ignored_and_counted():
    ev = events_frame([pay(1, 0), pay(1, 20)])
    g = purchase_gaps(ev, as_of=day(10)[:10])
    assert g[["gap_days", "repurchased"]].values.tolist() == [[10, False]]
    assert g.attrs["pays_after_as_of"] == 1
    assert repurchase_rate(ev, windows=(5,), as_of=day(10)[:10]).attrs["pays_after_as_of"] == 1
    assert repurchase_curve(ev, as_of=day(10)[:10]).attrs["pays_after_as_of"] == 1


def test_segment_by_channel_of_first_purchase_and_by_persons_table():
    ev = events_frame([pay(1, 0, channel="live"), pay(1, 5), pay(2, 0, channel="store")])
    r = repurchase_rate(ev, windows=(10,), by="channel", as_of=day(40)[:10])
    assert dict(zip(r.segment, r.rate)) == {"live": 1.0, "store": 0.0}
    persons = pd.DataFrame({"person_id": [1, 2], "member_level": ["gold", "gold"]})
    r2 = repurchase_rate(ev, windows=(10,), by="member_level", persons=persons, as_of=day(40)[:10])
    assert r2.segment.tolist() == ["gold"] and r2.rate.tolist() == [0.5]


def test_km_curve_handles_censoring_textbook_example():
    # gaps 5 (obs), 8 (censored), 10 (obs), 10 (obs): S(5)=3/4, S(10)=3/4 * (1 - 2/2) = 0
    ev = events_frame([pay(1, 0), pay(1, 5), pay(2, 0), pay(3, 0), pay(3, 10), pay(4, 0), pay(4, 10)])
    c = repurchase_curve(ev, which="first", as_of=day(8)[:10])
    # as_of day 8: person 3 and 4 are censored at 8, person 1 observed at 5, person 2 censored at 8
    assert c.days.tolist() == [5] and c.survival.tolist() == [0.75] and c.at_risk.tolist() == [4]
    c2 = repurchase_curve(ev, which="first", as_of=day(12)[:10])
    assert c2.days.tolist() == [5, 10]
    assert np.allclose(c2.survival, [0.75, 0.75 * (1 - 2 / 3)])
    assert (c2.ci_lower <= c2.survival).all() and (c2.survival <= c2.ci_upper).all()


def test_cycle_median_is_first_day_half_have_repurchased():
    ev = events_frame([pay(p, 0) for p in range(4)] + [pay(0, 3), pay(1, 6), pay(2, 9)])
    cyc = repurchase_cycle(ev, which="first", as_of=day(20)[:10])
    assert cyc.median_days.tolist() == [6.0] and cyc.q25_days.tolist() == [3.0] and cyc.q75_days.tolist() == [9.0]


def test_bad_arguments():
    ev = events_frame([pay(1, 0)])
    with pytest.raises(ValueError, match="windows"):
        repurchase_rate(ev, windows=(0,))
    with pytest.raises(ValueError, match="which"):
        repurchase_curve(ev, which="second")
    with pytest.raises(ValueError, match="channel"):
        repurchase_rate(ev.drop(columns="channel"), by="channel")


@st.composite
def random_pays(draw):
    rows = []
    for p in range(draw(st.integers(1, 8))):
        for _ in range(draw(st.integers(0, 5))):
            rows.append(pay(p, draw(st.integers(0, 80)), hour=draw(st.sampled_from(["00:00", "23:59"]))))
        rows.append((p, day(draw(st.integers(0, 80))), "mp_visit"))
    return events_frame(rows)


PROPS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(ev=random_pays(), as_of=st.integers(20, 90))
@PROPS
def test_rate_and_km_equal_the_per_person_reference(ev, as_of):
    windows = [1, 7, 30]
    got = repurchase_rate(ev, windows=windows, as_of=day(as_of)[:10])
    ref = reference.repurchase_rate(ev, windows, DAY0 + as_of)
    if ref.buyers.sum() + ref.not_observable.sum() == 0:
        assert got.empty
        return
    cols = ["window_days", "buyers", "repurchasers", "not_observable"]
    assert got[cols].values.tolist() == ref[cols].values.tolist()
    gaps = reference.purchase_gaps(ev, DAY0 + as_of)
    fast = purchase_gaps(ev, as_of=day(as_of)[:10])
    assert sorted(zip(fast.gap_days, fast.repurchased)) == sorted(gaps)
    km_ref = reference.kaplan_meier([g for g, o in gaps if g > 0 or o], [o for g, o in gaps if g > 0 or o])
    km = repurchase_curve(ev, as_of=day(as_of)[:10])
    assert km.days.tolist() == [t for t, _ in km_ref]
    assert np.allclose(km.survival, [s for _, s in km_ref])
