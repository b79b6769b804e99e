"""Product-analytics funnel conventions (PostHog, Amplitude, Mixpanel) as options.

Golden journeys named after the rule they teach, then the any-order funnel and
every option held equal to the per-person reference on random data.
"""

import hashlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privdomain import io, schema
from privdomain.boards.funnel import (
    Exclusion,
    funnel,
    funnel_audience,
    funnel_persons,
    funnel_trends,
    time_to_convert,
    wilson_interval,
)
from privdomain.errors import UsageError
from privdomain.examples import events_frame
from privdomain.testing import reference

VISIT_CART_PAY = ["mp_visit", "add_to_cart", "pay"]


def persons_per_step(ev, steps=VISIT_CART_PAY, **kw):
    return funnel(ev, steps, **kw)["persons"].tolist()


def reached(ev, steps=VISIT_CART_PAY, **kw):
    out = funnel_persons(ev, steps, **kw)
    return dict(zip(out["person_id"], out["steps_reached"]))


def by_value(out, column):
    return {(r[column], r["step"]): r["persons"] for r in out.to_dict("records")}


# ---------------------------------------------------------------- any order


def test_any_order_counts_any_two_of_three_steps():
    # cart then pay, never a visit: two of the three steps, whichever they are
    ev = events_frame([(1, "2024-05-01 10:00", "add_to_cart"), (1, "2024-05-01 10:01", "pay")])
    assert persons_per_step(ev, mode="any_order") == [1, 1, 0]
    # the earlier unordered mode needs steps 1..k: without the visit nothing is reached
    assert persons_per_step(ev, mode="unordered") == [0, 0, 0]


def test_one_event_serves_one_step_in_any_order():
    steps = ["mp_visit", "mp_visit", "pay"]
    one_visit = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:01", "pay")])
    two_visits = events_frame([(1, "2024-05-01 10:00", "pay"), (1, "2024-05-01 10:01", "mp_visit"),
                               (1, "2024-05-01 10:02", "mp_visit")])
    assert reached(one_visit, steps, mode="any_order") == {1: 2}
    assert reached(two_visits, steps, mode="any_order") == {1: 3}
    # the unordered mode lets the one visit serve steps 1 and 2
    assert reached(one_visit, steps, mode="unordered") == {1: 3}


def test_any_order_assigns_events_to_steps_so_that_the_most_steps_are_served():
    # a live pay could serve either step; the live product view only "live": both steps are served
    steps = [{"channel": "live"}, {"touchpoint": "pay"}]
    ev = events_frame([(1, "2024-05-01 10:00", "pay", {"channel": "live"}),
                       (1, "2024-05-01 10:01", "product_view", {"channel": "live"})])
    assert reached(ev, steps, mode="any_order") == {1: 2}
    alone = events_frame([(1, "2024-05-01 10:00", "pay", {"channel": "live"})])
    assert reached(alone, steps, mode="any_order") == {1: 1}


def test_any_order_window_runs_from_the_attempts_first_event():
    ev = events_frame([(1, "2024-05-01 10:00", "pay"), (1, "2024-05-02 12:00", "mp_visit")])  # 26 h apart
    assert reached(ev, mode="any_order", window="1D") == {1: 1}
    assert reached(ev, mode="any_order", window="2D") == {1: 2}


def test_any_order_step_k_is_completed_when_k_steps_are_done():
    ev = events_frame([(1, "2024-05-01 10:00", "pay"), (1, "2024-05-01 10:30", "pay"),
                       (1, "2024-05-01 11:00", "mp_visit"), (1, "2024-05-01 12:00", "add_to_cart")])
    out = funnel_persons(ev, VISIT_CART_PAY, mode="any_order")
    assert out[["ts_1", "ts_2", "ts_3"]].iloc[0].tolist() == [
        pd.Timestamp("2024-05-01 10:00"), pd.Timestamp("2024-05-01 11:00"), pd.Timestamp("2024-05-01 12:00")]
    f = funnel(ev, VISIT_CART_PAY, mode="any_order")
    assert f["median_seconds"].tolist()[1:] == [3600.0, 3600.0]


def test_any_order_is_never_below_ordered():
    ev = events_frame([(1, "2024-05-01 10:00", "pay"), (1, "2024-05-01 10:01", "mp_visit"),
                       (1, "2024-05-01 10:02", "add_to_cart"), (2, "2024-05-01 10:00", "mp_visit")])
    assert persons_per_step(ev, mode="ordered") == [2, 1, 0]
    assert persons_per_step(ev, mode="any_order") == [2, 1, 1]


# ---------------------------------------------------------------- exclusions in any order


def test_any_order_exclusion_between_the_first_and_second_completed_steps_drops_the_attempt():
    ev = events_frame([(1, "2024-05-01 10:00", "add_to_cart"), (1, "2024-05-01 10:01", "sms"),
                       (1, "2024-05-01 10:02", "mp_visit"),
                       (2, "2024-05-01 10:00", "add_to_cart"), (2, "2024-05-01 10:02", "mp_visit"),
                       (2, "2024-05-01 10:03", "sms")])
    first = funnel(ev, VISIT_CART_PAY, mode="any_order", exclusions=[Exclusion("sms", 1, 2)], attempts="first")
    assert first["persons"].tolist() == [1, 1, 0]
    assert set(first["excluded_persons"]) == {1}
    # with re-entry, person 1's visit after the sms starts a clean attempt (one step so far)
    assert reached(ev, mode="any_order", exclusions=[("sms", 1, 2)]) == {1: 1, 2: 2}


def test_any_order_exclusion_drops_an_attempt_that_never_completes_the_to_step_inside_the_window():
    # person 2's sms comes after two steps, and the third never comes: within the window it drops them
    ev = events_frame([(2, "2024-05-01 10:00", "add_to_cart"), (2, "2024-05-01 10:02", "mp_visit"),
                       (2, "2024-05-01 10:03", "sms")])
    assert reached(ev, mode="any_order", exclusions=[("sms", 2, 3)], attempts="first") == {2: 0}
    # the attempt starting at the visit completes one step only, so the exclusion (from 2) never applies
    assert reached(ev, mode="any_order", exclusions=[("sms", 2, 3)]) == {2: 1}
    late = events_frame([(2, "2024-05-01 10:00", "add_to_cart"), (2, "2024-05-01 10:02", "mp_visit"),
                         (2, "2024-05-20 10:03", "sms")])
    assert reached(late, mode="any_order", exclusions=[("sms", 2, 3)], attempts="first") == {2: 2}


def test_unordered_still_refuses_exclusions_and_points_to_any_order():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit")])
    with pytest.raises(ValueError, match="any_order"):
        funnel(ev, VISIT_CART_PAY, mode="unordered", exclusions=[("sms", 1, 2)])


# ---------------------------------------------------------------- breakdown attribution


def _channel_journey():
    return events_frame([
        (1, "2024-05-01 10:00", "mp_visit", {"channel": "official_account"}),
        (1, "2024-05-01 10:05", "add_to_cart", {"channel": "live"}),
        (2, "2024-05-01 10:00", "mp_visit", {"channel": "live"}),
    ])


def test_breakdown_at_a_specific_step_drops_persons_who_never_reach_it():
    out = funnel(_channel_journey(), VISIT_CART_PAY, breakdown="channel", attribution="step", attribution_step=2)
    # person 1 under their step-2 value; person 2 never reached step 2 and is in no group
    assert by_value(out, "channel") == {("live", 1): 1, ("live", 2): 1, ("live", 3): 0}
    assert set(out["persons_with_step1"]) == {2}


def test_breakdown_all_steps_counts_a_person_under_each_value_they_went_through_the_funnel_with():
    ev = events_frame([
        (1, "2024-05-01 10:00", "mp_visit", {"channel": "live"}),
        (1, "2024-05-01 10:05", "add_to_cart", {"channel": "live"}),
        (1, "2024-05-02 10:00", "mp_visit", {"channel": "store"}),
        (1, "2024-05-02 10:05", "add_to_cart", {"channel": "store"}),
        (2, "2024-05-01 10:00", "mp_visit", {"channel": "live"}),
        (2, "2024-05-01 10:05", "add_to_cart", {"channel": "store"}),
    ])
    out = funnel(ev, VISIT_CART_PAY, breakdown="channel", attribution="all_steps")
    got = by_value(out, "channel")
    # live: persons 1 and 2 visit, only person 1 adds to cart under live; store: person 1 only
    assert (got[("live", 1)], got[("live", 2)]) == (2, 1)
    assert (got[("store", 1)], got[("store", 2)]) == (1, 1)
    assert set(out["persons_with_step1"]) == {2}  # distinct persons, not (person, value) pairs
    per = funnel_persons(ev, VISIT_CART_PAY, breakdown="channel", attribution="all_steps")
    assert per[["person_id", "value_1"]].values.tolist() == [[1, "live"], [1, "store"], [2, "live"]]


def test_first_and_last_touch_skip_nulls_unless_asked_to_keep_them():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"),
                       (1, "2024-05-01 10:05", "add_to_cart", {"campaign_id": 7}),
                       (1, "2024-05-01 10:09", "pay")])
    first = funnel_persons(ev, VISIT_CART_PAY, breakdown="campaign_id")
    last = funnel_persons(ev, VISIT_CART_PAY, breakdown="campaign_id", attribution="last_touch")
    assert first["value_1"].iloc[0] == 7 and last["value_1"].iloc[0] == 7
    kept = funnel_persons(ev, VISIT_CART_PAY, breakdown="campaign_id", breakdown_nulls="keep")
    assert pd.isna(kept["value_1"].iloc[0])
    kept_last = funnel_persons(ev, VISIT_CART_PAY, breakdown="campaign_id", attribution="last_touch",
                               breakdown_nulls="keep")
    assert pd.isna(kept_last["value_3"].iloc[0])


# ---------------------------------------------------------------- equal timestamps


def test_simultaneous_events_satisfy_the_order_either_way():
    # the pay has the lower event id but the same second as the visit
    ev = events_frame([(1, "2024-05-01 10:00", "pay"), (1, "2024-05-01 10:00", "mp_visit")])
    assert persons_per_step(ev, ["mp_visit", "pay"]) == [1, 0]
    assert persons_per_step(ev, ["mp_visit", "pay"], ties="simultaneous") == [1, 1]


def test_a_same_second_exclusion_drops_by_event_id_but_not_when_simultaneous():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:05", "sms"),
                       (1, "2024-05-01 10:05", "add_to_cart")])
    assert reached(ev, exclusions=[("sms", 1, 2)]) == {1: 0}
    assert reached(ev, exclusions=[("sms", 1, 2)], ties="simultaneous") == {1: 2}
    # an sms strictly between the two steps still drops the person
    between = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:03", "sms"),
                            (1, "2024-05-01 10:05", "add_to_cart")])
    assert reached(between, exclusions=[("sms", 1, 2)], ties="simultaneous") == {1: 0}


def test_a_same_second_other_event_does_not_break_a_strict_funnel_when_simultaneous():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:05", "sms"),
                       (1, "2024-05-01 10:05", "add_to_cart")])
    assert reached(ev, mode="strict") == {1: 1}
    assert reached(ev, mode="strict", ties="simultaneous") == {1: 2}


def test_one_event_is_not_two_steps_even_when_simultaneous():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit")])
    assert persons_per_step(ev, ["mp_visit", "mp_visit"], ties="simultaneous") == [1, 0]


# ---------------------------------------------------------------- which attempt is timed


def test_time_to_convert_latest_start_times_from_the_last_step1_event_before_the_conversion():
    ev = events_frame([(1, "2024-05-06 10:00", "mp_visit"), (1, "2024-05-10 10:00", "mp_visit"),
                       (1, "2024-05-11 10:00", "pay")])
    first = time_to_convert(ev, ["mp_visit", "pay"], bins=[0, 2 * 86400, 7 * 86400])
    latest = time_to_convert(ev, ["mp_visit", "pay"], bins=[0, 2 * 86400, 7 * 86400], reported="latest_start")
    assert first.attrs["median_seconds"] == 5 * 86400.0 and first["persons"].tolist() == [0, 1]
    assert latest.attrs["median_seconds"] == 86400.0 and latest["persons"].tolist() == [1, 0]
    out = funnel_persons(ev, ["mp_visit", "pay"], reported="latest_start")
    assert out["start"].iloc[0] == pd.Timestamp("2024-05-10 10:00")


def test_latest_start_reports_the_first_conversion_not_a_later_one():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:30", "pay"),
                       (1, "2024-05-03 10:00", "mp_visit"), (1, "2024-05-03 10:05", "pay")])
    out = funnel_persons(ev, ["mp_visit", "pay"], reported="latest_start")
    assert out["ts_2"].iloc[0] == pd.Timestamp("2024-05-01 10:30")


# ---------------------------------------------------------------- trends


def test_funnel_trends_gives_conversion_by_entry_day_with_a_wilson_interval():
    rows = []
    for p in range(10):  # day 1: 10 entrants, 8 convert
        rows.append((p, "2024-05-01 09:00", "mp_visit"))
        if p < 8:
            rows.append((p, "2024-05-01 12:00", "pay"))
    for p in range(10, 14):  # day 2: 4 entrants, 1 converts
        rows.append((p, "2024-05-02 09:00", "mp_visit"))
    rows.append((10, "2024-05-02 10:00", "pay"))
    rows.append((99, "2024-05-10 10:00", "sms"))  # the data run on past the window
    out = funnel_trends(events_frame(rows), ["mp_visit", "pay"], window="1D", freq="D")
    assert out["period"].tolist() == [pd.Timestamp("2024-05-01"), pd.Timestamp("2024-05-02")]
    assert out["entered"].tolist() == [10, 4] and out["converted"].tolist() == [8, 1]
    assert out["conversion"].tolist() == pytest.approx([0.8, 0.25])
    assert (out["ci_low"].iloc[0], out["ci_high"].iloc[0]) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert out["complete"].tolist() == [True, True]


def test_wilson_interval_matches_its_formula_and_is_empty_without_trials():
    k, n, z = 3, 7, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo, hi = wilson_interval([k, 0], [n, 0])
    assert (lo[0], hi[0]) == pytest.approx((centre - half, centre + half))
    assert np.isnan(lo[1]) and np.isnan(hi[1])


def test_funnel_trends_week_and_month_cohorts_count_a_person_once_per_cohort():
    ev = events_frame([
        (1, "2024-05-06 10:00", "mp_visit"), (1, "2024-05-06 11:00", "pay"),   # Monday, week of 05-06
        (1, "2024-05-12 10:00", "mp_visit"),                                      # Sunday, same week
        (1, "2024-05-13 10:00", "mp_visit"),                                      # next Monday
        (2, "2024-05-31 23:00", "mp_visit"), (2, "2024-06-01 01:00", "pay"),     # enters in May
    ])
    weeks = funnel_trends(ev, ["mp_visit", "pay"], window="1D", freq="W")
    assert weeks["period"].tolist() == [pd.Timestamp("2024-05-06"), pd.Timestamp("2024-05-13"),
                                        pd.Timestamp("2024-05-27")]
    assert weeks["entered"].tolist() == [1, 1, 1] and weeks["converted"].tolist() == [1, 0, 1]
    months = funnel_trends(ev, ["mp_visit", "pay"], window="1D", freq="M")
    assert months["period"].tolist() == [pd.Timestamp("2024-05-01")]
    assert months["entered"].tolist() == [2] and months["converted"].tolist() == [2]
    # the last cohort's window runs past the data's last event: not complete
    assert months["complete"].tolist() == [False]


def test_funnel_trends_counts_excluded_entrants_apart():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:01", "sms"),
                       (1, "2024-05-01 10:02", "pay"), (2, "2024-05-01 10:00", "mp_visit")])
    out = funnel_trends(ev, ["mp_visit", "pay"], window="1D", exclusions=[("sms", 1, 2)])
    assert out[["entered", "converted", "excluded"]].values.tolist() == [[1, 0, 1]]


# ---------------------------------------------------------------- audiences


def test_persons_who_converted_to_or_dropped_at_a_step_form_an_audience():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:05", "add_to_cart"),
                       (1, "2024-05-01 10:09", "pay"),
                       (2, "2024-05-01 10:00", "mp_visit"), (2, "2024-05-01 10:05", "add_to_cart"),
                       (3, "2024-05-01 10:00", "mp_visit")])
    assert funnel_audience(ev, VISIT_CART_PAY, converted_to=2).tolist() == [1, 2]
    assert funnel_audience(ev, VISIT_CART_PAY, dropped_at=2).tolist() == [3]
    assert funnel_audience(ev, VISIT_CART_PAY, dropped_at=3).tolist() == [2]
    assert funnel_persons(ev, VISIT_CART_PAY, converted_to=3)["person_id"].tolist() == [1]


def test_an_excluded_person_has_not_dropped_at_a_step():
    ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"), (1, "2024-05-01 10:01", "sms")])
    assert funnel_audience(ev, VISIT_CART_PAY, dropped_at=2, exclusions=[("sms", 1, 2)]).tolist() == []


def test_bad_convention_options_are_refused_naming_the_option():
    ev = _channel_journey()
    with pytest.raises(UsageError, match="ties rule 'same'"):
        funnel(ev, VISIT_CART_PAY, ties="same")
    with pytest.raises(UsageError, match="attribution_step.*1 to 3.*got 4"):
        funnel(ev, VISIT_CART_PAY, breakdown="channel", attribution="step", attribution_step=4)
    with pytest.raises(UsageError, match="attribution_step: only used with attribution='step'"):
        funnel(ev, VISIT_CART_PAY, breakdown="channel", attribution_step=2)
    with pytest.raises(UsageError, match="'all_steps' needs a breakdown column"):
        funnel(ev, VISIT_CART_PAY, attribution="all_steps")
    with pytest.raises(UsageError, match="dropped_at: need a step number from 2 to 3.*got 1"):
        funnel_persons(ev, VISIT_CART_PAY, dropped_at=1)
    with pytest.raises(UsageError, match="exactly one of converted_to= and dropped_at="):
        funnel_audience(ev, VISIT_CART_PAY)
    with pytest.raises(UsageError, match="unknown freq 'Q'"):
        funnel_trends(ev, VISIT_CART_PAY, freq="Q")
    with pytest.raises(UsageError, match="breakdown_nulls rule 'drop'"):
        funnel(ev, VISIT_CART_PAY, breakdown="channel", breakdown_nulls="drop")
    with pytest.raises(UsageError, match="reported attempt rule 'last'"):
        time_to_convert(ev, VISIT_CART_PAY, reported="last")


def test_a_dataset_folder_gives_the_same_trends_and_is_not_changed(tmp_path):
    ev = _random_events(np.random.default_rng(3), 150)
    ds = io.write_dataset(tmp_path / "ds", {"events": ev})

    def digest():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(ds.path.rglob("*")) if p.is_file()}

    before = digest()
    kw = dict(window="1D", mode="any_order", exclusions=[("sms", 1, 2)])
    pd.testing.assert_frame_equal(funnel_trends(ds.path, VISIT_CART_PAY, **kw),
                                  funnel_trends(ev, VISIT_CART_PAY, **kw))
    pd.testing.assert_frame_equal(funnel(ds.path, VISIT_CART_PAY, **kw), funnel(ev, VISIT_CART_PAY, **kw))
    assert digest() == before


# ---------------------------------------------------------------- the reference on random data

TPS = ["mp_visit", "add_to_cart", "pay", "sms", "product_view"]


def _random_events(rng, n):
    start = pd.Timestamp("2024-05-01", tz=schema.TIMEZONE)
    secs = rng.integers(0, 4 * 144, n) * 600  # coarse 10-minute times so that ties happen
    campaigns = rng.choice([1, 2, -1], n)
    rows = [(int(p), start + pd.Timedelta(seconds=int(s)), str(tp),
             {"channel": str(ch), **({"campaign_id": int(c)} if c >= 0 else {})})
            for p, s, tp, ch, c in zip(rng.integers(0, 8, n), secs, rng.choice(TPS, n, p=[.3, .25, .2, .15, .1]),
                                       rng.choice(["mini_program", "live", "store"], n), campaigns)]
    return events_frame(rows)


STEP_SETS = [VISIT_CART_PAY, ["mp_visit", "mp_visit", "pay"], ["add_to_cart", "pay"],
             [{"touchpoint": "mp_visit"}, {"channel": "live"}, "pay"], ["pay", "mp_visit", "pay", "add_to_cart"]]


@st.composite
def convention_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ev = _random_events(rng, draw(st.integers(1, 70)))
    mode = draw(st.sampled_from(["any_order", "any_order", "ordered", "strict", "unordered"]))
    steps = draw(st.sampled_from(STEP_SETS))
    kw = dict(mode=mode, window=draw(st.sampled_from(["6h", "1D", "3D"])),
              attempts=draw(st.sampled_from(["every", "first"])),
              ties=draw(st.sampled_from(["event_id", "simultaneous"])),
              reported=draw(st.sampled_from(["first_start", "latest_start"])))
    if mode != "unordered" and draw(st.booleans()):
        i = draw(st.integers(1, len(steps) - 1))
        kw["exclusions"] = [("sms", i, draw(st.integers(i + 1, len(steps))))]
    if draw(st.booleans()):
        kw["breakdown"] = draw(st.sampled_from(["channel", "campaign_id"]))
        kw["attribution"] = draw(st.sampled_from(["first_touch", "last_touch", "per_step", "step", "all_steps"]))
        kw["breakdown_nulls"] = draw(st.sampled_from(["skip", "keep"]))
        if kw["attribution"] == "step":
            kw["attribution_step"] = draw(st.integers(1, len(steps)))
    return ev, steps, kw


def _nulls_as_none(df):
    """Breakdown values as objects with None for missing (the engine gives NaN, the reference None)."""
    out = df.copy()
    for c in [c for c in out.columns if c.startswith("value_")]:
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


@settings(max_examples=40, deadline=None)
@given(convention_case())
def test_conventions_equal_the_per_person_reference(case):
    ev, steps, kw = case
    pd.testing.assert_frame_equal(_nulls_as_none(funnel_persons(ev, steps, **kw)),
                                  _nulls_as_none(reference.funnel_persons(ev, steps, **kw)), check_dtype=False)
    pd.testing.assert_frame_equal(funnel(ev, steps, **kw), reference.funnel(ev, steps, **kw), check_dtype=False)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 80), st.sampled_from(STEP_SETS), st.sampled_from(["6h", "2D"]))
def test_any_k_of_n_any_order_equals_the_per_person_reference(seed, n, steps, window):
    ev = _random_events(np.random.default_rng(seed), n)
    got = funnel_persons(ev, steps, window, mode="any_order")
    want = reference.funnel_persons(ev, steps, window, mode="any_order")
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    # any order never counts fewer persons at a step than ordered
    ordered = np.array(persons_per_step(ev, steps, window=window))
    any_order = np.array(persons_per_step(ev, steps, window=window, mode="any_order"))
    assert np.all(any_order >= ordered) and np.all(np.diff(any_order) <= 0)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 80), st.sampled_from(["D", "W", "M"]),
       st.sampled_from(["ordered", "strict", "any_order", "unordered"]), st.booleans())
def test_funnel_trends_equal_the_per_person_reference(seed, n, freq, mode, exclude):
    rng = np.random.default_rng(seed)
    ev = _random_events(rng, n)
    # spread the entries over two months so that weeks and months differ
    ev["ts"] = ev["ts"] + pd.to_timedelta(rng.integers(0, 2, len(ev)) * 30, unit="D")
    kw = dict(window="1D", freq=freq, mode=mode)
    if exclude and mode != "unordered":
        kw["exclusions"] = [("sms", 1, 2)]
    got = funnel_trends(ev, VISIT_CART_PAY, **kw)
    pd.testing.assert_frame_equal(got, reference.funnel_trends(ev, VISIT_CART_PAY, **kw), check_dtype=False)
    # every person who entered is in at least one cohort, and in at most as many as they have entries
    entered = funnel(ev, VISIT_CART_PAY, window="1D", mode=mode, exclusions=kw.get("exclusions", ()))
    assert got["entered"].sum() + got["excluded"].sum() >= entered["persons_with_step1"].iloc[0]
