"""Cohort retention and revenue triangles, ARPU and cumulative LTV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privdomain.examples import events_frame
from privdomain.lifecycle.cohorts import cohort_table, cohort_triangle, ltv_curve
from privdomain.testing import reference

D0 = pd.Timestamp("2024-01-01")  # a Monday
DAY0 = (D0 - pd.Timestamp("1970-01-01")).days


def day(n: int, hour: str = "12:00") -> str:
    return f"{(D0 + pd.Timedelta(days=n)).date()} {hour}"


def pay(person: int, n: int, fen: int = 1000, channel: str = "mini_program", hour: str = "12:00"):
    return (person, day(n, hour), "pay", {"order_id": person * 1000 + n, "amount_fen": fen, "channel": channel})


def test_monthly_customer_cohorts_triangle_and_ltv():
    ev = events_frame([pay(1, 0, 1000), pay(1, 40, 500), pay(2, 10, 2000), pay(3, 35, 3000)])
    c = cohort_table(ev, freq="M", as_of="2024-02-29")
    tri = cohort_triangle(c, "retention")
    assert tri.index.astype(str).tolist() == ["2024-01-01", "2024-02-01"]
    assert tri.loc["2024-01-01"].tolist() == [1.0, 0.5]
    assert np.isnan(tri.loc["2024-02-01", 1])
    jan = c[c.cohort == "2024-01-01"]
    assert jan.arpu.tolist() == [15.0, 2.5] and jan.cum_ltv.tolist() == [15.0, 17.5]
    assert c.complete.all()


def test_week_cohorts_start_monday_and_partial_period_is_flagged():
    ev = events_frame([pay(1, 6, hour="23:59"), pay(2, 7, hour="00:01"), pay(1, 8)])
    c = cohort_table(ev, freq="W", as_of=day(9)[:10])
    assert sorted(set(c.cohort.astype(str))) == ["2024-01-01", "2024-01-08"]
    first = c[c.cohort == "2024-01-01"]
    assert first.active.tolist() == [1, 1] and first.complete.tolist() == [True, False]


def test_touch_cohorts_by_acquisition_channel_count_visitors():
    ev = events_frame([(1, day(0), "moments_ad_click"), (1, day(3), "mp_visit"), pay(1, 33),
                       (2, day(1), "store_visit"), (2, day(40), "store_visit")])
    c = cohort_table(ev, freq="M", cohort_on="first_touch", active_on="any", by="channel", as_of=day(45)[:10])
    ads = c[c.segment == "moments_ad"]
    assert ads.cohort_size.tolist() == [1, 1] and ads.active.tolist() == [1, 1] and ads.revenue.tolist() == [0, 10]
    store = c[c.segment == "store"]
    assert store.retention.tolist() == [1.0, 1.0]


def test_ltv_curve_pools_cohorts_by_age():
    ev = events_frame([pay(1, 0, 1000), pay(1, 40, 500), pay(2, 35, 3000)])
    c = cohort_table(ev, freq="M", as_of="2024-03-31")
    lt = ltv_curve(c)
    assert lt.persons.tolist() == [2, 2, 1]
    assert lt.arpu.tolist() == [20.0, 2.5, 0.0] and lt.cum_ltv.tolist() == [20.0, 22.5, 22.5]


def test_bad_arguments():
    ev = events_frame([pay(1, 0)])
    with pytest.raises(ValueError, match="freq"):
        cohort_table(ev, freq="D")
    with pytest.raises(ValueError, match="cohort_on"):
        cohort_table(ev, cohort_on="signup")
    with pytest.raises(ValueError, match="segments"):
        cohort_triangle(pd.DataFrame({"segment": ["a", "b"], "cohort": [D0, D0], "period": [0, 0],
                                      "retention": [1.0, 1.0]}))


@st.composite
def random_events(draw):
    rows = []
    for p in range(draw(st.integers(1, 6))):
        for _ in range(draw(st.integers(1, 5))):
            n = draw(st.integers(0, 100))
            if draw(st.booleans()):
                rows.append(pay(p, n, draw(st.integers(0, 5000)), hour=draw(st.sampled_from(["00:00", "23:59"]))))
            else:
                rows.append((p, day(n), "mp_visit"))
    return events_frame(rows)


@given(ev=random_events(), freq=st.sampled_from(["W", "M"]), cohort_on=st.sampled_from(["first_purchase", "first_touch"]),
       active_on=st.sampled_from(["purchase", "any"]), as_of=st.integers(30, 110))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_cohort_table_equals_the_per_person_reference(ev, freq, cohort_on, active_on, as_of):
    got = cohort_table(ev, freq=freq, cohort_on=cohort_on, active_on=active_on, as_of=day(as_of)[:10])
    ref = reference.cohort_table(ev, freq, cohort_on, active_on, DAY0 + as_of)
    assert len(got) == len(ref)
    assert got.cohort.tolist() == ref.cohort.tolist()
    assert got.period.tolist() == ref.period.tolist()
    assert got.cohort_size.tolist() == ref.cohort_size.tolist()
    assert got.active.tolist() == ref.active.tolist()
    assert np.allclose(got.revenue.to_numpy(float), ref.revenue_fen.to_numpy(float) / 100)
    assert (got.active <= got.cohort_size).all()
