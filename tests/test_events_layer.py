"""The events layer: bad input gets one clear error (column, rule, count), never a silently wrong number.

Each case feeds a metric what a real user fed it and asserts the error's class and that its
message names the column, the rule and the row count, or asserts the correct result against
a per-person computation. Cases that read files assert with hashes that no input changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from privdomain import events, io
from privdomain.boards import channel_cube, touchpoints
from privdomain.boards.funnel import Exclusion, funnel
from privdomain.clv import rfm
from privdomain.errors import DataError, DatasetError, UsageError
from privdomain.examples import events_frame
from privdomain.lifecycle import stages as lifecycle

SHOP = ["mp_visit", "add_to_cart", "pay"]


def shop_events() -> pd.DataFrame:
    return events_frame([
        (1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:05", "add_to_cart"),
        (1, "2024-05-01 10:10", "pay", {"order_id": 1, "amount_fen": 9900}),
        (2, "2024-05-01 23:30", "mp_visit"), (2, "2024-05-02 00:10", "add_to_cart"),
        (3, "2024-05-02 09:00", "mp_visit"),
        (3, "2024-05-02 09:30", "pay", {"order_id": 2, "amount_fen": 1990}),
    ])


def hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def folder(tmp_path) -> Path:
    ds = io.write_dataset(tmp_path / "ds", {"events": shop_events()})
    return Path(ds.path)


# -- times ---------------------------------------------------------------------------------

def test_naive_timestamps_are_refused_not_read_as_beijing_time():
    ev = shop_events().assign(ts=lambda d: d.ts.dt.tz_convert("UTC").dt.tz_localize(None))
    with pytest.raises(DataError, match=r"'ts' must be timezone-aware: 7 row\(s\).*assume_timezone"):
        funnel(ev, SHOP)


def test_every_metric_refuses_the_same_naive_timestamps():
    ev = shop_events().assign(ts=lambda d: d.ts.dt.tz_localize(None))
    for metric in (lambda e: funnel(e, SHOP), lambda e: lifecycle.lifecycle_board(e, "2024-05-01", "2024-05-02"),
                   touchpoints.daily_volume, channel_cube.channel_cube):
        with pytest.raises(DataError, match="'ts' must be timezone-aware"):
            metric(ev)


def test_assume_timezone_utc_moves_events_to_their_beijing_day():
    # 2024-05-01 20:00 UTC is 2024-05-02 04:00 in Beijing: the visit belongs to 2 May
    naive = pd.DataFrame({"event_id": [1, 2], "person_id": [1, 2], "touchpoint": ["mp_visit", "mp_visit"],
                          "channel": ["mini_program"] * 2,
                          "ts": pd.to_datetime(["2024-05-01 10:00", "2024-05-01 20:00"])})
    out = touchpoints.daily_volume(events.assume_timezone(naive, "UTC"))
    expected = naive.ts.dt.tz_localize("UTC").dt.tz_convert("Asia/Shanghai").dt.date.value_counts().sort_index()
    assert out.groupby("day")["events"].sum().to_dict() == expected.to_dict()
    assert [str(d) for d in out["day"]] == ["2024-05-01", "2024-05-02"]


def test_assume_timezone_on_an_ibis_table_equals_the_pandas_result():
    naive = shop_events().assign(ts=lambda d: d.ts.dt.tz_convert("UTC").dt.tz_localize(None))
    via_pandas = funnel(events.assume_timezone(naive, "UTC"), SHOP, window="1D")
    via_ibis = funnel(events.assume_timezone(ibis.memtable(naive), "UTC"), SHOP, window="1D")
    pd.testing.assert_frame_equal(via_pandas, via_ibis)
    pd.testing.assert_frame_equal(via_pandas, funnel(shop_events(), SHOP, window="1D"))


def test_assume_timezone_refuses_unknown_zones_and_aware_columns():
    with pytest.raises(UsageError, match="unknown time zone 'Mars/Olympus'"):
        events.assume_timezone(pd.DataFrame({"ts": pd.to_datetime(["2024-01-01"])}), "Mars/Olympus")
    with pytest.raises(UsageError, match="already has a time zone"):
        events.assume_timezone(shop_events(), "UTC")


def test_epoch_integers_are_refused_not_read_as_1970():
    ev = shop_events().assign(ts=lambda d: d.ts.astype("int64") // 10**9)
    with pytest.raises(DataError, match=r"'ts' must be a timestamp with a time zone: 7 row\(s\).*integers"):
        funnel(ev, SHOP)


def test_text_timestamps_are_refused():
    ev = shop_events().assign(ts=lambda d: d.ts.astype(str))
    with pytest.raises(DataError, match=r"'ts' must be a timestamp with a time zone: 7 row\(s\).*text"):
        lifecycle.lifecycle_board(ev, "2024-05-01", "2024-05-02")


def test_a_column_of_mixed_time_zones_is_refused():
    ev = shop_events()
    mixed = ev.assign(ts=[t.tz_convert("UTC") if i % 2 else t for i, t in enumerate(ev.ts)])
    assert mixed.ts.dtype == object
    with pytest.raises(DataError, match=r"'ts' must be timestamps in one time zone: 7 row\(s\)"):
        funnel(mixed, SHOP)


def test_calendar_dates_as_midnight_timestamps_are_accepted_by_rfm():
    tx = pd.DataFrame({"cust": [1, 1, 2], "day": pd.to_datetime(["1997-01-01", "1997-01-08", "1997-01-02"]),
                       "usd": [10.0, 5.0, 3.0]})
    s = rfm.rfm_summary(events.from_transactions(tx, person="cust", time="day", value="usd"), as_of="1997-01-31")
    assert s.set_index("person_id").loc[1, "frequency"] == 1
    with pytest.raises(DataError, match=r"'day' must be timezone-aware \(or calendar dates\): 1 row\(s\)"):
        events.from_transactions(tx.assign(day=tx.day + pd.to_timedelta([0, 0, 5], unit="h")), person="cust",
                                 time="day", value="usd")


# -- keys and duplicates -------------------------------------------------------------------

def test_a_frame_loaded_twice_is_refused_instead_of_doubling_gmv():
    ev = shop_events()
    with pytest.raises(DataError, match=r"'event_id' must be unique: 7 row\(s\).*loaded twice"):
        channel_cube.channel_cube(pd.concat([ev, ev], ignore_index=True))


def test_duplicate_event_ids_in_an_ibis_table_are_refused():
    ev = shop_events()
    t = ibis.memtable(pd.concat([ev, ev.iloc[:2]], ignore_index=True))
    with pytest.raises(DataError, match=r"'event_id' must be unique: 2 row\(s\)"):
        funnel(t, SHOP)


@pytest.mark.parametrize("column", ["person_id", "event_id", "touchpoint", "ts"])
def test_null_keys_are_refused_with_their_count(column):
    ev = shop_events()
    ev[column] = ev[column].astype(object) if column == "touchpoint" else ev[column]
    ev.loc[[1, 3], column] = None
    with pytest.raises(DataError, match=rf"'{column}' must not be null: 2 row\(s\)"):
        funnel(ev, SHOP)


# -- vocabulary ----------------------------------------------------------------------------

def test_an_event_named_Pay_is_refused_with_a_suggestion():
    ev = shop_events()
    ev.loc[ev.touchpoint == "pay", "touchpoint"] = "Pay"
    with pytest.raises(DataError, match=r"'touchpoint' must be a known touchpoint: 2 row\(s\).*'Pay'.*'pay'"):
        rfm.rfm_summary(ev)


def test_a_step_typo_is_refused_instead_of_giving_zero_buyers():
    with pytest.raises(UsageError, match=r"unknown step 'payy'; did you mean 'pay'\?"):
        funnel(shop_events(), ["mp_visit", "payy"])


def test_typos_in_filters_and_exclusions_are_refused():
    ev = shop_events()
    with pytest.raises(UsageError, match=r"unknown step channel 'mini_programme'; did you mean 'mini_program'"):
        funnel(ev, [{"touchpoint": "mp_visit", "channel": "mini_programme"}, "pay"])
    with pytest.raises(UsageError, match=r"unknown exclusion 'refnud'; did you mean 'refund'"):
        funnel(ev, SHOP, exclusions=[Exclusion("refnud", 1, 3)])
    with pytest.raises(UsageError, match=r"unknown step touchpoint 'add_to_kart'"):
        funnel(ev, ["mp_visit", {"touchpoint": ["add_to_kart", "pay"]}])


def test_an_unknown_channel_value_is_refused():
    ev = shop_events().assign(channel=lambda d: d.channel.replace({"mini_program": "miniprogram"}))
    with pytest.raises(DataError, match=r"'channel' must be a known channel: 7 row\(s\).*'miniprogram'"):
        touchpoints.daily_volume(ev)


def test_touchpoints_declared_in_the_manifest_are_known(tmp_path):
    ev = shop_events()
    ev.loc[0, "touchpoint"] = "coupon_claim"
    ev.loc[0, "channel"] = "coupon"
    with pytest.raises(DataError, match="'coupon_claim'"):
        funnel(ev, ["coupon_claim", "pay"])
    ds = io.write_dataset(tmp_path / "own", {"events": ev}, meta={"touchpoints": {"coupon_claim": "coupon"}})
    out = funnel(ds.path, ["coupon_claim", "pay"])
    assert out["persons"].tolist() == [1, 1]


# -- amounts -------------------------------------------------------------------------------

def test_negative_amounts_are_refused_by_every_metric_alike():
    ev = shop_events()
    ev.loc[ev.touchpoint == "pay", "amount_fen"] = [-9900, 1990]
    for metric in (channel_cube.channel_cube, lambda e: rfm.rfm_summary(e), lambda e: funnel(e, SHOP)):
        with pytest.raises(DataError, match=r"'amount_fen' must not be negative: 1 row\(s\)"):
            metric(ev)


def test_a_purchase_without_an_amount_is_refused_where_amounts_are_summed():
    ev = shop_events()
    ev.loc[ev.touchpoint == "pay", "amount_fen"] = [pd.NA, 1990]
    with pytest.raises(DataError, match=r"'amount_fen' must be present on every 'pay' row: 1 row\(s\)"):
        channel_cube.channel_cube(ev)
    assert funnel(ev, SHOP)["persons"].tolist() == [3, 2, 1]  # a funnel does not read amounts


def test_fractional_fen_is_refused_and_whole_float_fen_is_read_exactly():
    ev = shop_events()
    yuan = ev.assign(amount_fen=ev.amount_fen.astype("float64"))
    yuan.loc[yuan.touchpoint == "pay", "amount_fen"] = [19.9 * 100, 99.0 * 100]  # 1989.9999999999998
    with pytest.raises(DataError, match=r"'amount_fen' must be whole numbers of fen: 1 row\(s\)"):
        channel_cube.channel_cube(yuan)
    whole = ev.assign(amount_fen=ev.amount_fen.astype("float64"))
    pd.testing.assert_frame_equal(channel_cube.channel_cube(whole), channel_cube.channel_cube(ev))


# -- dataset folders -----------------------------------------------------------------------

def test_a_folder_without_a_manifest_is_not_a_dataset(folder):
    (folder / "dataset.json").unlink()
    before = hashes(folder)
    with pytest.raises(DatasetError, match="dataset.json"):
        funnel(folder, SHOP)
    assert hashes(folder) == before


def test_a_stray_part_file_is_refused_instead_of_tripling_gmv(folder):
    part = next((folder / "events").glob("*.parquet"))
    shutil.copy(part, folder / "events" / "part-99999.parquet")
    before = hashes(folder)
    with pytest.raises(DatasetError, match="events"):
        channel_cube.channel_cube(folder)
    assert hashes(folder) == before


def test_a_missing_part_file_is_refused(tmp_path):
    ev = shop_events()
    ds = io.write_dataset(tmp_path / "ds", {"events": [ev.iloc[:4], ev.iloc[4:]]})
    (Path(ds.path) / "events" / "part-00001.parquet").unlink()
    with pytest.raises(DatasetError, match="events"):
        funnel(ds.path, SHOP)


def test_a_truncated_part_file_is_refused(folder):
    part = next((folder / "events").glob("*.parquet"))
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError):
        rfm.rfm_summary(folder)


def test_a_checked_folder_is_checked_again_when_its_files_change(folder):
    assert funnel(folder, SHOP)["persons"].tolist() == [3, 2, 1]
    part = next((folder / "events").glob("*.parquet"))
    table = pq.read_table(part)
    df = table.to_pandas()
    df.loc[df.touchpoint == "pay", "amount_fen"] = -1
    pq.write_table(pq.read_table(part).from_pandas(df, schema=table.schema, preserve_index=False), part)
    with pytest.raises(DataError, match="must not be negative"):
        channel_cube.channel_cube(folder)


def test_a_dataset_object_and_its_path_give_the_same_answer(folder):
    before = hashes(folder)
    a = funnel(io.open_dataset(folder), SHOP)
    b = funnel(str(folder), SHOP)
    c = funnel(shop_events(), SHOP)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    assert hashes(folder) == before


def test_a_path_that_does_not_exist_is_named():
    with pytest.raises(DatasetError, match="does not exist"):
        funnel("/nonexistent/dataset", SHOP)


def test_check_returns_the_totals_of_good_events():
    res = events.check(shop_events())
    assert res.rows == 7 and res.touchpoints == {"mp_visit": 3, "add_to_cart": 2, "pay": 2}
    assert str(res.first) == "2024-05-01 10:00:00" and str(res.last) == "2024-05-02 09:30:00"


def test_the_check_agrees_with_a_brute_force_count_on_random_bad_rows():
    rng = np.random.default_rng(3)
    rows = [(int(rng.integers(1, 30)), f"2024-05-{rng.integers(1, 28):02d} 10:00", str(rng.choice(SHOP)),
             {"order_id": i, "amount_fen": int(rng.integers(-50, 500))}) for i in range(300)]
    ev = events_frame(rows)
    ev.loc[ev.touchpoint != "pay", "amount_fen"] = pd.NA
    expected = int(((ev.touchpoint == "pay") & (ev.amount_fen < 0)).sum())
    assert expected > 0
    with pytest.raises(DataError) as err:
        channel_cube.channel_cube(ev)
    assert err.value.count == expected and err.value.column == "amount_fen"


def test_a_passed_folder_check_is_reused_by_a_later_process_only_while_the_files_are_unchanged(folder, monkeypatch):
    events.check(folder)
    events._CACHE.clear()  # as in a new process: only the copy on disk is left
    calls = []
    monkeypatch.setattr(events, "_aggregate_check", lambda *a, **k: calls.append(1))
    assert events.check(folder).rows == 7 and calls == []
    part = next((folder / "events").glob("*.parquet"))
    st = part.stat()
    os.utime(part, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # rewritten a second later: checked again
    events._CACHE.clear()
    with pytest.raises(AttributeError):  # the stub returns None: proof that the check ran again
        events.check(folder)
    assert calls == [1]


def test_an_ibis_table_is_checked_once_per_process_until_the_cache_is_cleared(monkeypatch):
    t = ibis.memtable(shop_events())
    events.check(t)
    calls = []
    real = events._aggregate_check
    monkeypatch.setattr(events, "_aggregate_check", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert events.check(t).rows == 7 and calls == []
    events.clear_cache()
    assert events.check(t).rows == 7 and calls == [1]


def test_no_events_give_empty_results_not_errors():
    ev = shop_events().iloc[:0]
    assert funnel(ev, SHOP)["persons"].tolist() == [0, 0, 0]
    assert len(rfm.rfm_summary(ev)) == 0
    assert events.check(ev).rows == 0


def test_a_purchase_metric_on_events_without_any_purchase_names_the_missing_event():
    ev = shop_events()
    orders = ev.assign(touchpoint=ev.touchpoint.replace({"pay": "order"}))
    for metric in (lambda e: rfm.rfm_summary(e), channel_cube.channel_cube,
                   lambda e: lifecycle.lifecycle_board(e, "2024-05-01", "2024-05-02")):
        with pytest.raises(UsageError, match=r"none of the 7 rows is a 'pay' event.*purchase_event"):
            metric(orders)
    assert funnel(orders, ["mp_visit", "order"])["persons"].tolist() == [3, 2]  # a funnel needs no purchase
    browsing = ev[ev.touchpoint != "pay"]
    with pytest.warns(events.NoPurchasesWarning, match="none of the 5 rows is a 'pay' event"):
        assert len(rfm.rfm_summary(browsing)) == 0


def test_a_purchase_event_declared_in_the_manifest_is_read_as_pay(tmp_path):
    ev = shop_events()
    own = ev.assign(touchpoint=ev.touchpoint.replace({"pay": "支付"}))
    ds = io.write_dataset(tmp_path / "own", {"events": own}, meta={"purchase_event": "支付"})
    pd.testing.assert_frame_equal(rfm.rfm_summary(ds.path), rfm.rfm_summary(ev))
    pd.testing.assert_frame_equal(channel_cube.channel_cube(ds.path), channel_cube.channel_cube(ev))
    assert funnel(ds.path, SHOP)["persons"].tolist() == [3, 2, 1]
