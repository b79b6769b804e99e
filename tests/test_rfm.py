"""RFM summary, scores and segments: golden journeys, the CDNOW summary, a per-person
reference and property tests."""

from __future__ import annotations

from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privdomain.clv.rfm import RF_SEGMENTS, calibration_and_holdout_data, rfm_scores, rfm_segments, rfm_summary
from privdomain.events import from_transactions
from privdomain.examples import events_frame
from privdomain.testing import reference

CDNOW = Path(__file__).parent / "data" / "cdnow_sample.txt"


def tx_table(rows):
    return pd.DataFrame(rows, columns=["person_id", "ts", "amount"]).assign(ts=lambda d: pd.to_datetime(d.ts, format="ISO8601").dt.tz_localize("Asia/Shanghai"))


def tx_frame(rows):
    """A purchase log (person, time, amount in yuan) as events."""
    return from_transactions(tx_table(rows), value="amount")


def row(summary, person):
    return summary.set_index("person_id").loc[person]


def read_cdnow() -> pd.DataFrame:
    cd = pd.read_csv(CDNOW, sep=r"\s+", header=None, names=["master_id", "customer", "date", "cds", "dollars"])
    cd["date"] = pd.to_datetime(cd["date"].astype(str), format="%Y%m%d")
    return cd


def cdnow_events() -> pd.DataFrame:
    return from_transactions(read_cdnow(), person="customer", time="date", value="dollars")


# -- golden journeys ---------------------------------------------------------------------

def test_two_purchases_on_the_same_day_are_one_purchase_and_frequency_counts_repeat_days():
    s = rfm_summary(tx_frame([(1, "2024-01-01 09:00", 10), (1, "2024-01-01 20:00", 5), (1, "2024-01-05", 7)]),
                    as_of="2024-01-10")
    r = row(s, 1)
    assert r.frequency == 1  # two distinct days -> one repeat purchase
    assert r.n_purchases == 3  # rows before merging
    assert r.total_value == 22


def test_t_x_is_last_since_first_purchase_while_time_since_last_runs_to_observation_end():
    s = rfm_summary(tx_frame([(1, "2024-01-01", 1), (1, "2024-01-08", 1)]),
                    as_of="2024-01-31")
    r = row(s, 1)
    assert r.t_x == 7  # BG/NBD recency (lifetimes' `recency`)
    assert r.time_since_last == 23  # RFM-marketing recency
    assert r["T"] == 30
    assert r.t_x + r.time_since_last == r["T"]


def test_a_one_time_buyer_has_t_x_zero_and_is_as_old_as_their_time_since_last():
    s = rfm_summary(tx_frame([(5, "2024-01-03", 4)]), as_of="2024-01-10")
    r = row(s, 5)
    assert (r.frequency, r.t_x, r["T"], r.time_since_last, r.monetary_value) == (0, 0, 7, 7, 0)


def test_monetary_value_is_the_mean_of_repeat_days_excluding_the_first_purchase():
    tx = tx_frame([(1, "2024-01-01", 100), (1, "2024-01-02", 10), (1, "2024-01-02", 20), (1, "2024-01-04", 50)])
    rep = row(rfm_summary(tx, as_of="2024-01-05"), 1)
    assert rep.monetary_value == pytest.approx((30 + 50) / 2)
    every = row(rfm_summary(tx, as_of="2024-01-05", monetary="all"), 1)
    assert every.monetary_value == pytest.approx(180 / 3)


def test_weeks_are_days_divided_by_seven():
    s = rfm_summary(tx_frame([(1, "2024-01-01", 1), (1, "2024-01-04", 1)]),
                    as_of="2024-01-15", time_unit="W")
    r = row(s, 1)
    assert r.t_x == pytest.approx(3 / 7) and r["T"] == pytest.approx(2.0)


def test_purchases_after_observation_end_are_left_out_and_counted():
    tx = tx_frame([(1, "2024-01-01", 1), (1, "2024-01-10 23:59", 1), (1, "2024-01-11", 1), (2, "2024-02-01", 9)])
    s = rfm_summary(tx, as_of="2024-01-10")
    assert s.person_id.tolist() == [1]  # person 2's first purchase is after the end
    assert row(s, 1).frequency == 1  # the purchase late on the end day is inside
    assert s.attrs["n_after_observation_end"] == 2


def test_without_merging_every_row_is_a_purchase_with_exact_times():
    tx = tx_frame([(1, "2024-01-01 00:00", 1), (1, "2024-01-01 12:00", 1)])
    s = rfm_summary(tx, as_of="2024-01-02 00:00", merge_period=None)
    r = row(s, 1)
    assert r.frequency == 1 and r.t_x == pytest.approx(0.5) and r["T"] == pytest.approx(1.0)


def test_events_keep_only_pay_rows_count_the_rest_and_report_yuan():
    ev = events_frame([
        (1, "2024-05-01 10:00", "mp_visit"),
        (1, "2024-05-01 10:05", "order", {"order_id": 1, "amount_fen": 9900}),
        (1, "2024-05-01 10:06", "pay", {"order_id": 1, "amount_fen": 9900}),
        (1, "2024-05-03 10:06", "pay", {"order_id": 2, "amount_fen": 2500}),
        (1, "2024-05-04 10:00", "refund", {"order_id": 2, "amount_fen": 2500}),
    ])
    s = rfm_summary(ev, as_of="2024-05-10")
    r = row(s, 1)
    assert r.frequency == 1 and r.total_value == pytest.approx(124.0) and r.monetary_value == pytest.approx(25.0)
    assert s.attrs["n_non_purchase"] == 3 and s.attrs["n_rows"] == 5


def test_purchase_days_are_beijing_days_for_timezone_aware_times():
    # 23:30 and 00:30 Beijing are two days (in UTC they would be the same day)
    ev = events_frame([
        (1, "2024-05-01 23:30", "pay", {"order_id": 1, "amount_fen": 100}),
        (1, "2024-05-02 00:30", "pay", {"order_id": 2, "amount_fen": 100}),
    ])
    assert row(rfm_summary(ev, as_of="2024-05-02"), 1).frequency == 1


def test_bad_input_names_the_column_and_the_number_of_rows():
    tx = tx_table([(1, "2024-01-01", -5), (2, "2024-01-01", -1), (3, "2024-01-02", 1)])
    with pytest.raises(ValueError, match=r"'amount_fen' must not be negative.*2 row"):
        from_transactions(tx, value="amount")
    with pytest.raises(ValueError, match=r"value='spend' not in the frame"):
        from_transactions(tx, value="spend")
    with pytest.raises(ValueError, match="time_unit"):
        rfm_summary(from_transactions(tx.assign(amount=1), value="amount"), time_unit="fortnight")
    nulls = tx.astype({"person_id": "Int64"})
    nulls.loc[0, "person_id"] = pd.NA
    with pytest.raises(ValueError, match=r"'person_id' must not be null.*1 row"):
        from_transactions(nulls.assign(amount=1), value="amount")
    with pytest.warns(DeprecationWarning, match="from_transactions"), \
            pytest.raises(ValueError, match=r"'amount' must be >= 0.*2 row"):
        rfm_summary(tx, value_col="amount")  # the column arguments of earlier releases check as before


def test_the_column_arguments_of_earlier_releases_give_the_same_summary_with_one_warning():
    cd = read_cdnow()
    with pytest.warns(DeprecationWarning) as caught:
        old = rfm_summary(cd, "customer", "date", "dollars", "1997-09-30", time_unit="W")
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert messages == ["rfm_summary(observation_end=...) is deprecated; use as_of=",
                        "rfm_summary(person_col=..., time_col=..., value_col=...) is deprecated; map the table's "
                        "columns onto the event schema first: rfm_summary(privdomain.events.from_transactions("
                        "frame, person=..., time=..., value=...))"]
    new = rfm_summary(cdnow_events(), as_of="1997-09-30", time_unit="W")
    cols = ["frequency", "t_x", "T", "time_since_last", "n_purchases", "total_value", "monetary_value"]
    assert old["customer"].tolist() == new["person_id"].tolist()
    pd.testing.assert_frame_equal(old[cols], new[cols], rtol=1e-12)
    with pytest.warns(DeprecationWarning):
        split = calibration_and_holdout_data(cd, "1997-09-30", "1998-06-30", "customer", "date", "dollars")
    assert split["frequency_holdout"].tolist() == calibration_and_holdout_data(
        cdnow_events(), "1997-09-30", "1998-06-30")["frequency_holdout"].tolist()
    with pytest.raises(TypeError, match="both observation_end= and as_of="):
        rfm_summary(cdnow_events(), observation_end="1997-09-30", as_of="1997-09-30")


def test_input_is_not_mutated_and_an_ibis_table_gives_the_same_summary():
    tx = tx_frame([(1, "2024-01-01", 3), (1, "2024-01-09", 4), (2, "2024-01-02", 5)])
    before = tx.copy()
    a = rfm_summary(tx, as_of="2024-01-20")
    b = rfm_summary(ibis.memtable(tx), as_of="2024-01-20")
    pd.testing.assert_frame_equal(tx, before)
    pd.testing.assert_frame_equal(a, b)


# -- the CDNOW summary ---------------------------------------------------------------------

def test_cdnow_calibration_summary_matches_the_published_counts():
    s = rfm_summary(cdnow_events(), as_of="1997-09-30", time_unit="W")
    assert len(s) == 2357
    assert int((s.frequency > 0).sum()) == 946  # the Gamma-Gamma sample
    first = s.set_index("person_id").loc[1]  # the worked example of the papers
    assert (first.frequency, round(first.t_x, 2), round(first["T"], 2)) == (2, 30.43, 38.86)
    assert first.monetary_value == pytest.approx(22.345)  # (29.73 + 14.96) / 2: the repeat days only
    assert s["T"].max() == pytest.approx(272 / 7)  # 1997-01-01 to 1997-09-30
    assert s.attrs["n_after_as_of"] == int((read_cdnow().date > "1997-09-30").sum())


def test_cdnow_summary_equals_the_per_person_reference():
    cd = read_cdnow()
    fast = rfm_summary(cdnow_events(), as_of="1997-09-30", time_unit="W").rename(columns={"person_id": "customer"})
    slow = reference.rfm_summary(cd, "customer", "date", "dollars", "1997-09-30", unit_days=7.0)
    cols = ["customer", "frequency", "t_x", "T", "time_since_last", "total_value", "monetary_value"]
    pd.testing.assert_frame_equal(fast[cols].astype(float), slow[cols].astype(float), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(0, 40), st.integers(0, 23), st.integers(0, 500)),
                min_size=1, max_size=40))
def test_summary_equals_reference_on_random_logs(rows):
    tx = pd.DataFrame({
        "person_id": [r[0] for r in rows],
        "ts": [pd.Timestamp("2024-03-01", tz="Asia/Shanghai") + pd.Timedelta(days=r[1], hours=r[2]) for r in rows],
        "amount": [float(r[3]) for r in rows],
    })
    fast = rfm_summary(from_transactions(tx, value="amount"), as_of="2024-04-01")
    slow = reference.rfm_summary(tx, "person_id", "ts", "amount", "2024-04-01")
    cols = ["person_id", "frequency", "t_x", "T", "time_since_last", "total_value", "monetary_value"]
    pd.testing.assert_frame_equal(fast[cols].astype(float), slow[cols].astype(float), rtol=1e-12)
    assert (fast.t_x <= fast["T"]).all() and (fast.time_since_last >= 0).all()


# -- scores and segments ---------------------------------------------------------------------

def test_scores_are_equal_sized_quantile_bins_with_recent_frequent_big_spenders_on_top():
    rng = np.random.default_rng(0)
    s = pd.DataFrame({"time_since_last": rng.integers(0, 100, 1000).astype(float),
                      "frequency": rng.poisson(2, 1000).astype(float), "total_value": rng.gamma(2, 50, 1000)})
    out = rfm_scores(s, q=5)
    for col in ("r_score", "f_score", "m_score"):
        assert out[col].value_counts().tolist() == [200] * 5
    assert out.groupby("r_score").time_since_last.max().is_monotonic_decreasing
    assert out.groupby("f_score").frequency.min().is_monotonic_increasing
    assert out.groupby("m_score").total_value.min().is_monotonic_increasing
    pd.testing.assert_frame_equal(rfm_scores(s, q=5), out)  # deterministic


def test_every_cell_of_the_rf_grid_has_exactly_one_named_segment():
    codes = [c for codes in RF_SEGMENTS.values() for c in codes]
    assert sorted(codes) == sorted(f"{r}{f}" for r in range(1, 6) for f in range(1, 6))


def test_most_recent_and_most_frequent_are_champions_and_long_gone_one_timers_hibernate():
    n = 50
    s = pd.DataFrame({"time_since_last": np.arange(n, dtype=float), "frequency": np.arange(n, 0, -1, dtype=float),
                      "total_value": np.ones(n)})
    seg = rfm_segments(s)["segment"]
    assert seg.iloc[0] == "champions" and seg.iloc[-1] == "hibernating"
    assert seg.notna().all()


def test_chinese_eight_class_segments_compare_each_measure_with_its_mean():
    s = pd.DataFrame({"time_since_last": [1.0, 1.0, 90.0, 90.0], "frequency": [9, 0, 9, 0],
                      "total_value": [10.0, 500.0, 500.0, 10.0]})
    assert rfm_segments(s, scheme="cn")["segment"].tolist() == ["一般价值客户", "重要发展客户", "重要保持客户", "一般挽留客户"]


def test_a_dataset_folder_gives_the_same_summary_as_its_events_frame(tmp_path):
    from privdomain.io import write_dataset

    ev = events_frame([
        (1, "2024-05-01 10:06", "pay", {"order_id": 1, "amount_fen": 9900}),
        (1, "2024-05-01 22:00", "share"),
        (1, "2024-05-09 23:50", "pay", {"order_id": 2, "amount_fen": 2500}),
        (2, "2024-05-03 08:00", "pay", {"order_id": 3, "amount_fen": 100}),
    ])
    write_dataset(tmp_path / "ds", {"events": ev})
    a = rfm_summary(tmp_path / "ds", as_of="2024-05-31")
    b = rfm_summary(ev, as_of="2024-05-31")
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["n_non_purchase"] == 1
    assert row(a, 1).t_x == 8


def test_holdout_counts_purchase_days_after_the_calibration_end_for_calibration_customers_only():
    tx = tx_frame([
        (1, "2024-01-01", 10), (1, "2024-01-20", 5),  # calibration
        (1, "2024-02-02 09:00", 7), (1, "2024-02-02 18:00", 3), (1, "2024-02-20", 4),  # holdout: two days
        (1, "2024-03-05", 99),  # after the holdout
        (2, "2024-02-10", 50),  # first purchase in the holdout: not a calibration customer
    ])
    s = calibration_and_holdout_data(tx, "2024-01-31", "2024-02-29")
    assert s.person_id.tolist() == [1]
    r = row(s, 1)
    assert (r.frequency, r.frequency_holdout, r.value_holdout, r.duration_holdout) == (1, 2, 14, 29)
    assert s.attrs["n_holdout"] == 4 and s.attrs["n_after_as_of"] == 5
    with pytest.warns(DeprecationWarning, match="calibration_and_holdout_data"), \
            pytest.raises(ValueError, match="needs as_of"):
        rfm_summary(tx, holdout_end="2024-02-29")


def test_cdnow_holdout_equals_an_independent_pandas_count():
    cd = read_cdnow()
    s = calibration_and_holdout_data(cdnow_events(), "1997-09-30", "1998-06-30", time_unit="W")
    window = cd[(cd.date > "1997-09-30") & (cd.date <= "1998-06-30")]
    expected = window.groupby("customer").date.nunique().reindex(s.person_id, fill_value=0)
    np.testing.assert_array_equal(s.frequency_holdout.to_numpy(), expected.to_numpy())
    assert s.duration_holdout.iloc[0] == 39.0  # weeks 40-78


def test_calibration_and_holdout_data_splits_like_a_per_person_loop():
    rng = np.random.default_rng(11)
    n = 300
    tx = pd.DataFrame({"person_id": rng.integers(1, 40, n),
                       "ts": (pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 120 * 24, n), unit="h"))
                       .tz_localize("Asia/Shanghai"),
                       "amount_fen": rng.integers(100, 5000, n)})
    e, h = pd.Timestamp("2024-03-01"), pd.Timestamp("2024-04-15")
    s = calibration_and_holdout_data(tx, e, h, time_unit="W")
    with pytest.warns(DeprecationWarning) as caught:  # the old spelling, one release
        pd.testing.assert_frame_equal(s, rfm_summary(tx, observation_end=e, holdout_end=h, time_unit="W"))
    assert sorted(str(w.message) for w in caught) == [
        "rfm_summary(holdout_end=...) is deprecated; use calibration_and_holdout_data(events, calibration_end, "
        "holdout_end) (one split function)", "rfm_summary(observation_end=...) is deprecated; use as_of="]
    day = tx["ts"].dt.tz_localize(None).dt.normalize()  # Beijing days
    for pid, g in tx.groupby("person_id"):
        cal_days = day[g.index][day[g.index] <= e]
        row = s[s.person_id == pid]
        if cal_days.empty:
            assert row.empty
            continue
        hold = g[(day[g.index] > e) & (day[g.index] <= h)]
        assert row["frequency_holdout"].iloc[0] == day[hold.index].nunique()
        assert row["value_holdout"].iloc[0] == pytest.approx(hold["amount_fen"].sum() / 100)
        assert row["frequency"].iloc[0] == cal_days.nunique() - 1
    assert (s["duration_holdout"] == (h - e).days / 7).all()
