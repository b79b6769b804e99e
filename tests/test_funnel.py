"""Funnels: golden journeys that spell out the semantics, then equality with the per-person reference."""

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privdomain import io, schema
from privdomain.boards.funnel import Exclusion, Step, funnel, funnel_persons, time_to_convert
from privdomain.examples import events_frame
from privdomain.testing import reference

VISIT_CART_PAY = ["mp_visit", "add_to_cart", "pay"]


def persons_per_step(ev, steps=VISIT_CART_PAY, **kw):
    return funnel(ev, steps, **kw)["persons"].tolist()


def reached(ev, steps=VISIT_CART_PAY, **kw):
    out = funnel_persons(ev, steps, **kw)
    return dict(zip(out["person_id"], out["steps_reached"]))


# ---------------------------------------------------------------- modes


def test_ordered_allows_other_events_between_steps():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:01", "sms"),
                       (1, "2024-05-01 10:02", "add_to_cart"), (1, "2024-05-01 10:03", "product_view"),
                       (1, "2024-05-01 10:04", "pay")])
    assert persons_per_step(ev) == [1, 1, 1]


def test_ordered_steps_must_come_in_order():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:01", "pay"),
                       (1, "2024-05-01 10:02", "add_to_cart")])
    assert persons_per_step(ev) == [1, 1, 0]


def test_strict_fails_when_any_event_comes_between_steps():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:01", "sms"),
                       (1, "2024-05-01 10:02", "add_to_cart"),
                       (2, "2024-05-01 10:00", "mp_visit"), (2, "2024-05-01 10:02", "add_to_cart")])
    assert reached(ev, mode="strict") == {1: 1, 2: 2}


def test_strict_orders_events_with_the_same_timestamp_by_event_id():
    # same second: the sms (lower event id) comes between the visit and the cart
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:05", "sms"),
                       (1, "2024-05-01 10:05", "add_to_cart")])
    assert reached(ev, mode="strict") == {1: 1}
    ev2 = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:05", "add_to_cart"),
                        (1, "2024-05-01 10:05", "sms")])
    assert reached(ev2, mode="strict") == {1: 2}


def test_strict_can_start_again_at_a_later_step1_event():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:01", "sms"),
                       (1, "2024-05-01 10:02", "mp_visit"), (1, "2024-05-01 10:03", "add_to_cart"),
                       (1, "2024-05-01 10:04", "pay")])
    assert reached(ev, mode="strict") == {1: 3}


def test_unordered_counts_steps_done_in_any_order():
    ev = events_frame([(1, "2024-05-01 10:00", "pay"), (1, "2024-05-01 10:01", "add_to_cart"),
                       (1, "2024-05-01 10:02", "mp_visit")])
    assert reached(ev, mode="unordered") == {1: 3}
    assert reached(ev, mode="ordered") == {1: 1}


def test_unordered_step_k_needs_all_of_steps_1_to_k():
    # cart and pay but no visit: step 1 (visit) is missing, so nothing is reached
    ev = events_frame([(1, "2024-05-01 10:00", "add_to_cart"), (1, "2024-05-01 10:01", "pay")])
    assert persons_per_step(ev, mode="unordered") == [0, 0, 0]


def test_unordered_window_runs_from_the_first_of_the_steps():
    ev = events_frame([(1, "2024-05-01 10:00", "pay"), (1, "2024-05-01 12:00", "mp_visit"),
                       (1, "2024-05-02 11:00", "add_to_cart")])
    # with a 1-day window from the pay at 10:00 the cart (25 h later) is outside; from the visit it is inside,
    # but then the pay is before that window: steps 1-2 are reached, not 3
    assert reached(ev, mode="unordered", window="1D") == {1: 2}
    assert reached(ev, mode="unordered", window="2D") == {1: 3}


def test_a_step_needs_a_later_event_than_the_previous_step():
    # visit -> visit funnel: one visit is not two
    one = events_frame([(1, "2024-05-01 10:00", "mp_visit")])
    two = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-03 10:00", "mp_visit")])
    assert persons_per_step(one, ["mp_visit", "mp_visit"]) == [1, 0]
    assert persons_per_step(two, ["mp_visit", "mp_visit"]) == [1, 1]


# ---------------------------------------------------------------- windows and re-entry


def test_window_is_measured_from_step_one_not_from_the_previous_step():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-06 10:00", "add_to_cart"),
                       (1, "2024-05-09 10:00", "pay")])  # 8 days after the visit, 3 after the cart
    assert persons_per_step(ev, window="7D") == [1, 1, 0]
    assert persons_per_step(ev, window="8D") == [1, 1, 1]


def test_an_event_exactly_at_the_window_end_counts():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-08 10:00", "add_to_cart"),
                       (1, "2024-05-08 10:00:01", "pay")])
    assert persons_per_step(ev, window="7D") == [1, 1, 0]


def test_reentry_a_later_step1_event_starts_a_new_attempt_with_its_own_window():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"),
                       (1, "2024-05-20 10:00", "mp_visit"), (1, "2024-05-21 10:00", "add_to_cart"),
                       (1, "2024-05-22 10:00", "pay")])
    assert persons_per_step(ev) == [1, 1, 1]
    out = funnel_persons(ev, VISIT_CART_PAY)
    assert out["ts_1"].iloc[0] == pd.Timestamp("2024-05-20 10:00")


def test_attempts_first_gives_no_second_chance():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"),
                       (1, "2024-05-20 10:00", "mp_visit"), (1, "2024-05-21 10:00", "add_to_cart")])
    assert persons_per_step(ev, attempts="first") == [1, 0, 0]
    assert persons_per_step(ev, attempts="every") == [1, 1, 0]


def test_the_reported_attempt_is_the_first_of_those_reaching_furthest():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 11:00", "add_to_cart"),
                       (1, "2024-05-20 10:00", "mp_visit"), (1, "2024-05-20 10:30", "add_to_cart")])
    out = funnel_persons(ev, VISIT_CART_PAY)
    assert out["steps_reached"].iloc[0] == 2
    assert out["ts_2"].iloc[0] == pd.Timestamp("2024-05-01 11:00")
    # its time to convert is the one reported (1 hour, not 30 minutes)
    assert funnel(ev, VISIT_CART_PAY)["median_seconds"].iloc[1] == 3600.0


def test_a_person_counts_once_however_many_attempts():
    rows = [(1, f"2024-05-{d:02d} 10:00", tp) for d in (1, 10, 20) for tp in ("mp_visit", "add_to_cart")]
    assert persons_per_step(events_frame(rows)) == [1, 1, 0]


# ---------------------------------------------------------------- exclusions


def test_an_excluded_event_between_the_steps_drops_the_attempt():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:01", "sms"),
                       (1, "2024-05-01 10:02", "add_to_cart"), (2, "2024-05-01 10:00", "mp_visit"),
                       (2, "2024-05-01 10:02", "add_to_cart")])
    out = funnel(ev, VISIT_CART_PAY, exclusions=[("sms", 1, 2)])
    assert out["persons"].tolist() == [1, 1, 0]
    assert set(out["excluded_persons"]) == {1}
    assert out.attrs["excluded_persons"] == 1 and out.attrs["persons_with_step1"] == 2  # kept for one release


def test_an_excluded_event_outside_the_step_range_is_ignored():
    ev = events_frame([(1, "2024-05-01 09:00", "sms"), (1, "2024-05-01 10:00", "mp_visit"),
                       (1, "2024-05-01 10:02", "add_to_cart"), (1, "2024-05-01 10:03", "sms"),
                       (1, "2024-05-01 10:04", "pay")])
    assert persons_per_step(ev, exclusions=[Exclusion("sms", 1, 2)]) == [1, 1, 1]
    assert persons_per_step(ev, exclusions=[Exclusion("sms", 2, 3)]) == [0, 0, 0]


def test_an_excluded_event_drops_an_attempt_that_never_reaches_the_to_step_if_inside_the_window():
    inside = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-02 10:00", "sms")])
    after = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-10 10:00", "sms")])
    assert persons_per_step(inside, exclusions=[("sms", 1, 2)]) == [0, 0, 0]
    assert persons_per_step(after, exclusions=[("sms", 1, 2)]) == [1, 0, 0]


def test_a_clean_later_attempt_survives_an_excluded_earlier_one():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:01", "sms"),
                       (1, "2024-05-15 10:00", "mp_visit"), (1, "2024-05-15 10:01", "add_to_cart")])
    out = funnel(ev, VISIT_CART_PAY, exclusions=[("sms", 1, 2)])
    assert out["persons"].tolist() == [1, 1, 0]
    assert set(out["excluded_persons"]) == {0}


def test_exclusions_make_no_sense_in_an_unordered_funnel():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit")])
    with pytest.raises(ValueError, match="unordered"):
        funnel(ev, VISIT_CART_PAY, mode="unordered", exclusions=[("sms", 1, 2)])


# ---------------------------------------------------------------- breakdowns


def _channel_journey():
    return events_frame([
        (1, "2024-05-01 10:00", "mp_visit", {"channel": "official_account"}),
        (1, "2024-05-01 10:05", "add_to_cart", {"channel": "live"}),
        (2, "2024-05-01 10:00", "mp_visit", {"channel": "live"}),
    ])


def test_breakdown_first_touch_takes_the_value_at_step_one():
    out = funnel(_channel_journey(), VISIT_CART_PAY, breakdown="channel")
    got = {(r.channel, r.step): r.persons for r in out.itertuples()}
    assert got[("official_account", 2)] == 1 and got[("live", 1)] == 1 and got[("live", 2)] == 0


def test_breakdown_last_touch_takes_the_value_at_the_furthest_step():
    out = funnel(_channel_journey(), VISIT_CART_PAY, breakdown="channel", attribution="last_touch")
    got = {(r.channel, r.step): r.persons for r in out.itertuples()}
    assert got == {("live", 1): 2, ("live", 2): 1, ("live", 3): 0}


def test_breakdown_per_step_counts_each_step_under_its_own_value():
    out = funnel(_channel_journey(), VISIT_CART_PAY, breakdown="channel", attribution="per_step")
    got = {(r.channel, r.step): r.persons for r in out.itertuples()}
    assert got[("official_account", 1)] == 1 and got[("official_account", 2)] == 0
    assert got[("live", 1)] == 1 and got[("live", 2)] == 1


def test_breakdown_by_a_person_property(tmp_path):
    ev = _channel_journey()
    persons = pd.DataFrame({"person_id": [1, 2], "gender": ["female", "male"]})
    out = funnel(ev, VISIT_CART_PAY, breakdown="gender", persons=persons)
    got = {(r.gender, r.step): r.persons for r in out.itertuples()}
    assert got[("female", 2)] == 1 and got[("male", 1)] == 1 and got[("male", 2)] == 0
    pd.testing.assert_frame_equal(out, reference.funnel(ev, VISIT_CART_PAY, breakdown="gender", persons=persons),
                                  check_dtype=False)
    with pytest.raises(ValueError, match="persons"):
        funnel(ev, VISIT_CART_PAY, breakdown="gender")


def test_breakdown_by_a_persons_column_of_a_dataset(tmp_path):
    ev = _channel_journey()
    persons = pd.DataFrame({"person_id": [1, 2], "gender": ["female", "male"]})
    ds = io.write_dataset(tmp_path / "ds", {"events": ev, "persons": persons})
    out = funnel(ds.path, VISIT_CART_PAY, breakdown="gender")
    assert out.set_index(["gender", "step"])["persons"].to_dict()[("female", 2)] == 1


# ---------------------------------------------------------------- steps, outputs, inputs


def test_steps_may_be_filters_or_callables_with_names():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 11:00", "pay", {"channel": "live"}),
                       (2, "2024-05-01 10:00", "mp_visit"), (2, "2024-05-01 11:00", "pay")])
    live_pay = Step({"touchpoint": "pay", "channel": "live"}, name="live pay")
    out = funnel(ev, ["mp_visit", live_pay])
    assert out["step_name"].tolist() == ["mp_visit", "live pay"] and out["persons"].tolist() == [2, 1]
    any_pay = Step(lambda t: t.touchpoint.isin(["pay", "order"]), name="paid")
    assert funnel(ev, ["mp_visit", any_pay])["persons"].tolist() == [2, 2]
    assert funnel(ev, ["mp_visit", {"touchpoint": ["pay"], "channel": ["live", "store"]}])["persons"].tolist() == [2, 1]


def test_conversion_columns_and_time_to_convert():
    ev = events_frame([(p, "2024-05-01 10:00", "mp_visit") for p in range(4)]
                      + [(p, f"2024-05-01 1{p}:00", "add_to_cart") for p in range(3)]
                      + [(0, "2024-05-01 18:00", "pay")])
    out = funnel(ev, VISIT_CART_PAY)
    assert out["persons"].tolist() == [4, 3, 1]
    assert out["conversion_from_previous"].tolist() == pytest.approx([1.0, 0.75, 1 / 3])
    assert out["conversion_from_first"].tolist() == pytest.approx([1.0, 0.75, 0.25])
    # visit -> cart took 0, 1 and 2 hours
    assert out.loc[1, "median_seconds"] == 3600.0
    assert out.loc[1, "p25_seconds"] == 1800.0
    assert out.loc[1, "mean_seconds"] == 3600.0
    assert np.isnan(out.loc[0, "median_seconds"])
    assert out.loc[2, "median_seconds_from_start"] == 8 * 3600.0
    h = time_to_convert(ev, VISIT_CART_PAY, to_step=2, window="4h", bins=4)
    assert h["persons"].tolist() == [1, 1, 1, 0]
    assert h.attrs["median_seconds"] == 3600.0
    h2 = time_to_convert(ev, VISIT_CART_PAY, to_step=2, bins=[0, 60, 7200, 86400])
    assert h2["persons"].tolist() == [1, 1, 1]  # 0 s | 1 h | 2 h (bins are [lo, hi))


def test_steps_no_one_reached_have_zero_persons():
    ev = events_frame([(1, "2024-05-01 10:00", "sms")])
    out = funnel(ev, VISIT_CART_PAY)
    assert out["persons"].tolist() == [0, 0, 0] and set(out["persons_with_step1"]) == {0}


def test_pandas_parquet_and_ibis_inputs_agree(tmp_path):
    ev = _random_events(np.random.default_rng(5), 120)
    kw = dict(window="1D", breakdown="channel", exclusions=[("sms", 1, 3)])
    a = funnel(ev, VISIT_CART_PAY, **kw)
    ds = io.write_dataset(tmp_path / "ds", {"events": ev})
    b = funnel(ds.path, VISIT_CART_PAY, **kw)
    con = ibis.duckdb.connect()
    c = funnel(con.create_table("events", ev), VISIT_CART_PAY, **kw)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)


def test_bad_input_is_refused_with_a_reason():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit")])
    with pytest.raises(ValueError, match="mode"):
        funnel(ev, VISIT_CART_PAY, mode="sideways")
    with pytest.raises(ValueError, match="window"):
        funnel(ev, VISIT_CART_PAY, window="-1D")
    with pytest.raises(ValueError, match="from_step"):
        funnel(ev, VISIT_CART_PAY, exclusions=[("sms", 2, 2)])
    with pytest.raises(ValueError, match="not in the events"):
        funnel(ev, [{"colour": "red"}])
    bad = ev.copy()
    bad["ts"] = pd.Series([pd.NaT], dtype=bad["ts"].dtype)
    with pytest.raises(ValueError, match=r"'ts' must not be null: 1 row"):
        funnel(bad, VISIT_CART_PAY)


# ---------------------------------------------------------------- the reference and invariants

TPS = ["mp_visit", "add_to_cart", "pay", "sms", "product_view"]


def _random_events(rng, n):
    start = pd.Timestamp("2024-05-01", tz=schema.TIMEZONE)
    # coarse 10-minute times so that ties happen
    secs = rng.integers(0, 4 * 144, n) * 600
    rows = [(int(p), start + pd.Timedelta(seconds=int(s)), str(tp), {"channel": str(ch)})
            for p, s, tp, ch in zip(rng.integers(0, 8, n), secs, rng.choice(TPS, n, p=[.3, .25, .2, .15, .1]),
                                    rng.choice(["mini_program", "live", "store"], n))]
    return events_frame(rows)


@st.composite
def funnel_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ev = _random_events(rng, draw(st.integers(1, 70)))
    mode = draw(st.sampled_from(["ordered", "strict", "unordered"]))
    kw = dict(mode=mode, window=draw(st.sampled_from(["6h", "1D", "3D"])),
              attempts=draw(st.sampled_from(["every", "first"])))
    steps = draw(st.sampled_from([VISIT_CART_PAY, ["mp_visit", "mp_visit", "pay"], ["add_to_cart", "pay"]]))
    if mode != "unordered" and draw(st.booleans()):
        i = draw(st.integers(1, len(steps) - 1))
        kw["exclusions"] = [("sms", i, draw(st.integers(i + 1, len(steps))))]
    if draw(st.booleans()):
        kw["breakdown"] = "channel"
        kw["attribution"] = draw(st.sampled_from(["first_touch", "last_touch", "per_step"]))
    return ev, steps, kw


@settings(max_examples=35, deadline=None)
@given(funnel_case())
def test_funnel_equals_the_per_person_reference(case):
    ev, steps, kw = case
    pd.testing.assert_frame_equal(funnel_persons(ev, steps, **kw), reference.funnel_persons(ev, steps, **kw),
                                  check_dtype=False)
    pd.testing.assert_frame_equal(funnel(ev, steps, **kw), reference.funnel(ev, steps, **kw), check_dtype=False)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 80), st.sampled_from(["6h", "2D"]))
def test_counts_never_rise_and_unordered_ge_ordered_ge_strict(seed, n, window):
    ev = _random_events(np.random.default_rng(seed), n)
    counts = {m: np.array(persons_per_step(ev, mode=m, window=window)) for m in ("strict", "ordered", "unordered")}
    for c in counts.values():
        assert np.all(np.diff(c) <= 0)
    assert np.all(counts["unordered"] >= counts["ordered"])
    assert np.all(counts["ordered"] >= counts["strict"])


def test_nulls_in_a_dataset_folder_are_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from privdomain import io

    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (2, "2024-05-01 11:00", "mp_visit")])
    io.write_dataset(tmp_path / "ds", {"events": ev})
    assert io.null_counts(tmp_path / "ds", "events", ["person_id", "ts"]) == {"person_id": 0, "ts": 0}
    part = next((tmp_path / "ds" / "events").glob("*.parquet"))
    table = pq.read_table(part)
    person = pa.array([1, None], type=pa.int64())
    pq.write_table(table.set_column(table.schema.get_field_index("person_id"), "person_id", person), part)
    assert io.null_counts(tmp_path / "ds", "events", ["person_id"]) == {"person_id": 1}
    with pytest.raises(ValueError, match=r"'person_id' must not be null: 1 row"):
        funnel(tmp_path / "ds", ["mp_visit"])


@pytest.mark.parametrize("mode", ["ordered", "strict", "unordered", "any_order"])
def test_a_funnel_run_in_person_partitions_equals_one_pass(mode):
    # large data runs the per-person windows one person-hash partition at a time (the DuckDB
    # memory limit decides how many); every person is in one partition, so nothing may change
    rng = np.random.default_rng(11)
    ev = _random_events(rng, 400)
    ev["person_id"] = rng.integers(0, 60, len(ev))
    cases = [dict(), dict(breakdown="channel", attribution="last_touch"),
             dict(breakdown="channel", attribution="per_step"), dict(attempts="first")]
    if mode in ("ordered", "strict"):
        cases.append(dict(exclusions=[("sms", 1, 2)]))
    for kw in cases:
        one = funnel(ev, VISIT_CART_PAY, "1D", mode, partitions=1, **kw)
        assert one["persons"].iloc[0] > 0
        for k in (2, 5):
            pd.testing.assert_frame_equal(funnel(ev, VISIT_CART_PAY, "1D", mode, partitions=k, **kw), one,
                                          check_dtype=False)


def test_the_funnel_picks_its_partitions_from_the_rows_its_windows_read(monkeypatch):
    from privdomain import backend
    from privdomain.boards import funnel as funnel_module

    ev = _random_events(np.random.default_rng(3), 300)
    seen = []
    monkeypatch.setattr(backend, "partitions_for", lambda rows, *a, **k: seen.append(rows) or 3)
    out = funnel(ev, ["mp_visit", "pay"], "1D")
    assert seen[-1] == int(ev["touchpoint"].isin(["mp_visit", "pay"]).sum())  # the step events only
    pd.testing.assert_frame_equal(out, funnel(ev, ["mp_visit", "pay"], "1D", partitions=1), check_dtype=False)
    funnel(ev, ["mp_visit", "pay"], "1D", mode="strict")
    assert seen[-1] == len(ev)  # strict mode reads every event
    assert funnel_module._partitions(ev, funnel_module._prepare(ev, ["mp_visit"], "1D", "ordered", (), "every", None,
                                                                 "first_touch", None, None).spec, 4, None) == 4
