"""events.from_transactions: a transaction table's own columns onto the event schema, checked like any events."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privdomain import events
from privdomain.boards.overview import overview
from privdomain.clv.rfm import rfm_summary
from privdomain.errors import DataError, UsageError
from privdomain.lifecycle.repurchase import repurchase_rate


def table() -> pd.DataFrame:
    return pd.DataFrame({"cust": [7, 7, 9], "day": pd.to_datetime(["2024-01-01", "2024-01-15", "2024-01-02"]),
                         "usd": [29.33, 0.1, 100.0], "ref": [501, 502, 503], "note": ["a", "b", "c"]})


def test_each_row_becomes_one_purchase_with_the_schema_columns():
    tx = table()
    before = tx.copy()
    ev = events.from_transactions(tx, person="cust", time="day", value="usd", order="ref")
    pd.testing.assert_frame_equal(tx, before)  # the input is never changed
    assert list(ev.columns) == ["event_id", "person_id", "ts", "touchpoint", "channel", "order_id", "amount_fen"]
    assert ev["event_id"].tolist() == [0, 1, 2]
    assert ev["person_id"].tolist() == [7, 7, 9]
    assert ev["touchpoint"].tolist() == ["pay"] * 3 and ev["channel"].tolist() == ["mini_program"] * 3
    assert ev["order_id"].tolist() == [501, 502, 503]
    assert ev["amount_fen"].tolist() == [2933, 10, 10000]  # exact: 29.33 yuan is 2933 fen, not 2932.9999
    # calendar dates are midnight of the day in Beijing, so every metric counts the same day
    assert [str(t) for t in ev["ts"]] == ["2024-01-01 00:00:00+08:00", "2024-01-15 00:00:00+08:00",
                                          "2024-01-02 00:00:00+08:00"]
    events.check(ev)  # and the result passes every rule of the events layer
    assert events.from_transactions(tx, person="cust", time="day")["order_id"].tolist() == [0, 1, 2]


def test_any_metric_reads_the_mapped_table():
    ev = events.from_transactions(table(), person="cust", time="day", value="usd", order="ref")
    ov = overview(ev)
    assert (ov["buyers"], ov["orders"]) == (2, 3) and ov["gmv_yuan"] == pytest.approx(29.33 + 0.1 + 100.0)
    s = rfm_summary(ev, as_of="2024-01-31").set_index("person_id")
    assert s.loc[7, "frequency"] == 1 and s.loc[7, "total_value"] == pytest.approx(29.43)
    assert len(repurchase_rate(ev, windows=("30D",), as_of="2024-02-29")) > 0


def test_times_units_and_zones():
    aware = pd.DataFrame({"person_id": [1], "ts": [pd.Timestamp("2024-05-01 23:30", tz="UTC")], "fen": [150]})
    ev = events.from_transactions(aware, value="fen", unit="fen")
    assert ev["ts"].iloc[0] == pd.Timestamp("2024-05-01 23:30", tz="UTC") and ev["amount_fen"].iloc[0] == 150
    naive = aware.assign(ts=aware["ts"].dt.tz_localize(None))
    with pytest.raises(DataError, match=r"'ts' must be timezone-aware \(or calendar dates\): 1 row"):
        events.from_transactions(naive)
    berlin = events.from_transactions(naive, tz="Europe/Berlin")
    assert berlin["ts"].iloc[0] == pd.Timestamp("2024-05-01 23:30", tz="Europe/Berlin")
    dates = pd.DataFrame({"person_id": [1, 2], "ts": [dt.date(2024, 5, 1), dt.date(2024, 5, 2)]})
    assert [str(t) for t in events.from_transactions(dates)["ts"]] == ["2024-05-01 00:00:00+08:00",
                                                                       "2024-05-02 00:00:00+08:00"]


def test_what_it_refuses_is_named():
    tx = table()
    with pytest.raises(DataError, match=r"'usd' must be whole fen \(at most two decimals in yuan\): 1 row"):
        events.from_transactions(tx.assign(usd=[29.33, 0.105, 1.0]), person="cust", time="day", value="usd")
    with pytest.raises(DataError, match=r"'usd' must be whole numbers of fen: 2 row"):
        events.from_transactions(tx, person="cust", time="day", value="usd", unit="fen")
    with pytest.raises(DataError, match=r"'amount_fen' must not be negative: 1 row"):
        events.from_transactions(tx.assign(usd=[1.0, -2.0, 3.0]), person="cust", time="day", value="usd")
    with pytest.raises(DataError, match=r"'note' must be numbers \(an amount\): 3 row"):
        events.from_transactions(tx, person="cust", time="day", value="note")
    nulls = tx.astype({"cust": "Int64"})
    nulls.loc[1, "cust"] = pd.NA
    with pytest.raises(DataError, match=r"'person_id' must not be null: 1 row"):
        events.from_transactions(nulls, person="cust", time="day")
    with pytest.raises(UsageError, match=r"person='customer' not in the frame"):
        events.from_transactions(tx, person="customer", time="day")
    with pytest.raises(UsageError, match=r"unknown event 'payy'; did you mean 'pay'"):
        events.from_transactions(tx, person="cust", time="day", event="payy")
    with pytest.raises(UsageError, match="unit must be 'yuan' or 'fen'"):
        events.from_transactions(tx, person="cust", time="day", value="usd", unit="dollars")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 60), st.integers(0, 99_999)), min_size=1, max_size=30))
def test_amounts_in_yuan_become_exact_fen_and_the_summary_matches_a_per_person_loop(rows):
    tx = pd.DataFrame({"who": [r[0] for r in rows],
                       "when": [pd.Timestamp("2024-03-01") + pd.Timedelta(days=r[1]) for r in rows],
                       "yuan": [r[2] / 100 for r in rows]})  # two decimals, as a float
    ev = events.from_transactions(tx, person="who", time="when", value="yuan")
    assert ev["amount_fen"].tolist() == [r[2] for r in rows]
    s = rfm_summary(ev, as_of="2024-05-31").set_index("person_id")
    for who, g in tx.groupby("who"):  # the per-person definition of the summary
        days = sorted(set(g["when"]))
        spend = {d: sum(r[2] for r in rows if r[0] == who and pd.Timestamp("2024-03-01")
                        + pd.Timedelta(days=r[1]) == d) for d in days}
        assert s.loc[who, "frequency"] == len(days) - 1
        assert s.loc[who, "t_x"] == (days[-1] - days[0]).days
        assert s.loc[who, "total_value"] == pytest.approx(sum(spend.values()) / 100, rel=1e-12)
        repeat = [spend[d] for d in days[1:]]
        assert s.loc[who, "monetary_value"] == pytest.approx(np.mean(repeat) / 100 if repeat else 0.0, rel=1e-12)
