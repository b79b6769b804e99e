"""Lifecycle stages, the lifecycle board and stage flows.

Golden journeys teach the stage rules; property tests hold the interval method equal to
the per-person per-day reference loop and check the board/flow invariants.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privdomain.examples import events_frame
from privdomain.lifecycle.stages import (
    AIPL_STAGES,
    ENTRY,
    STAGES,
    AIPLModel,
    StageModel,
    flow_matrix,
    lifecycle_board,
    stage_flows,
    stage_intervals,
    stages_at,
)
from privdomain.testing import reference

D0 = pd.Timestamp("2024-01-01")


def day(n: int, hour: str = "12:00") -> str:
    return f"{(D0 + pd.Timedelta(days=n)).date()} {hour}"


def pay(person: int, n: int, fen: int = 1000, hour: str = "12:00", order: int | None = None):
    return (person, day(n, hour), "pay", {"order_id": order if order is not None else person * 1000 + n,
                                          "amount_fen": fen})


def stage_on(ev, n: int, model=None, person: int = 1):
    s = stages_at(ev, D0 + pd.Timedelta(days=n), model)
    row = s[s.person_id == person]
    return None if row.empty else row.stage.iloc[0]


# ----------------------------------------------------------------------------- golden journeys


def test_person_is_not_in_population_before_first_touch_and_prospect_after():
    ev = events_frame([(1, day(5), "moments_ad_view")])
    assert stage_on(ev, 4) is None
    assert stage_on(ev, 5) == "prospect"
    assert stage_on(ev, 400) == "prospect"


def test_first_purchase_makes_new_for_new_days_then_active():
    ev = events_frame([(1, day(0), "mp_visit"), pay(1, 2)])
    assert stage_on(ev, 1) == "prospect"
    assert stage_on(ev, 2) == "new"
    assert stage_on(ev, 2 + 29) == "new"
    assert stage_on(ev, 2 + 30) == "active"


def test_purchase_at_2359_beijing_counts_for_that_day_and_0001_for_the_next():
    ev = events_frame([(1, day(0, "08:00"), "mp_visit"), pay(1, 3, hour="23:59"), (2, day(0), "mp_visit"),
                       pay(2, 4, hour="00:01")])
    s = stages_at(ev, D0 + pd.Timedelta(days=3)).set_index("person_id").stage
    assert s[1] == "new" and s[2] == "prospect"


def test_dormant_after_dormant_days_without_purchase_and_churned_after_churn_days():
    ev = events_frame([pay(1, 0)])
    assert stage_on(ev, 89) == "active"
    assert stage_on(ev, 90) == "dormant"
    assert stage_on(ev, 179) == "dormant"
    assert stage_on(ev, 180) == "churned"
    assert stage_on(ev, 1000) == "churned"


def test_third_purchase_makes_a_recent_buyer_loyal():
    ev = events_frame([pay(1, 0), pay(1, 40), pay(1, 60)])
    assert stage_on(ev, 59) == "active"
    assert stage_on(ev, 60) == "loyal"
    assert stage_on(ev, 60 + 89) == "loyal"
    assert stage_on(ev, 60 + 90) == "dormant"


def test_several_orders_on_one_day_are_one_purchase_occasion():
    ev = events_frame([pay(1, 0, order=1), pay(1, 0, order=2), pay(1, 0, order=3), pay(1, 40)])
    assert stage_on(ev, 45) == "active"


def test_loyal_by_value_when_a_value_threshold_is_set():
    ev = events_frame([pay(1, 0, fen=50_000), pay(1, 40, fen=60_000)])
    assert stage_on(ev, 45) == "active"
    assert stage_on(ev, 45, StageModel(loyal_value_fen=100_000)) == "loyal"


def test_buyer_returning_after_dormancy_is_resurrected_then_active():
    ev = events_frame([pay(1, 0), pay(1, 100)])
    assert stage_on(ev, 99) == "dormant"
    assert stage_on(ev, 100) == "resurrected"
    assert stage_on(ev, 129) == "resurrected"
    assert stage_on(ev, 130) == "active"


def test_returning_loyal_buyer_is_resurrected_then_loyal_again():
    ev = events_frame([pay(1, 0), pay(1, 10), pay(1, 20), pay(1, 300)])
    assert stage_on(ev, 250) == "churned"
    assert stage_on(ev, 300) == "resurrected"
    assert stage_on(ev, 330) == "loyal"


def test_purchase_before_dormancy_is_not_a_return():
    ev = events_frame([pay(1, 0), pay(1, 89)])
    assert stage_on(ev, 89) == "active"


def test_resurrected_stage_can_be_switched_off():
    ev = events_frame([pay(1, 0), pay(1, 100)])
    m = StageModel(resurrected_days=None)
    assert stage_on(ev, 100, m) == "active"
    assert "resurrected" not in set(lifecycle_board(ev, day(0)[:10], day(200)[:10], model=m).stage)


def test_second_purchase_within_the_new_window_ends_new():
    ev = events_frame([pay(1, 0), pay(1, 10)])
    assert stage_on(ev, 9) == "new"
    assert stage_on(ev, 10) == "active"
    assert stage_on(ev, 10, StageModel(loyal_purchases=2)) == "loyal"


def test_intervals_tile_each_person_without_gaps_and_merge_same_stage():
    ev = events_frame([(1, day(0), "oa_follow"), pay(1, 5), pay(1, 20), pay(1, 50), pay(1, 60), (2, day(3), "sms")])
    iv = stage_intervals(ev)
    p1 = iv[iv.person_id == 1]
    assert p1.stage.tolist() == ["prospect", "new", "active", "loyal", "dormant", "churned"]
    assert (p1.valid_from.iloc[1:].to_numpy() == p1.valid_to.iloc[:-1].to_numpy()).all()
    assert p1.valid_to.iloc[-1] is pd.NaT
    assert iv[iv.person_id == 2].stage.tolist() == ["prospect"]
    raw = stage_intervals(ev, merge=False)
    assert len(raw) > len(iv)


def test_aipl_levels_from_touchpoint_behaviour():
    m = AIPLModel(window_days=30)
    ev = events_frame([(1, day(0), "moments_ad_view"), (1, day(2), "moments_ad_click"), pay(1, 10),
                       pay(1, 20), (2, day(0), "sms")])
    assert stage_on(ev, 1, m) == "awareness"
    assert stage_on(ev, 2, m) == "interest"
    assert stage_on(ev, 10, m) == "purchase"
    assert stage_on(ev, 20, m) == "loyalty"
    assert stage_on(ev, 10 + 30, m) == "purchase"  # the day-10 purchase left the window
    assert stage_on(ev, 20 + 30, m) == "lapsed"
    assert stage_on(ev, 29, m, person=2) == "awareness"
    assert stage_on(ev, 30, m, person=2) == "lapsed"


# ----------------------------------------------------------------------------- board and flows


def test_board_counts_one_row_per_stage_per_day_and_population():
    ev = events_frame([(1, day(0), "mp_visit"), pay(1, 1), (2, day(1), "sms")])
    b = lifecycle_board(ev, day(0)[:10], day(2)[:10])
    assert len(b) == 3 * len(STAGES)
    assert b.groupby("period").population.first().tolist() == [1, 2, 2]
    assert b.groupby("period").persons.sum().tolist() == [1, 2, 2]


def test_weekly_board_snapshots_at_the_end_of_iso_weeks():
    # 2024-01-01 is a Monday: the first week ends Sunday 2024-01-07
    ev = events_frame([(1, "2024-01-07 23:00", "mp_visit"), (2, "2024-01-08 01:00", "mp_visit")])
    b = lifecycle_board(ev, "2024-01-03", "2024-01-21", freq="W")
    assert sorted(set(b.period.astype(str))) == ["2024-01-01", "2024-01-08", "2024-01-15"]
    assert b.groupby("period").population.first().tolist() == [1, 2, 2]


def test_monthly_board_is_the_daily_board_on_each_month_end():
    ev = events_frame([(1, day(0), "mp_visit"), pay(1, 2), pay(1, 40), (2, day(20), "sms"), pay(3, 50)])
    monthly = lifecycle_board(ev, "2024-01-01", "2024-03-31", freq="M")
    daily = lifecycle_board(ev, "2024-01-01", "2024-03-31", freq="D")
    ends = pd.to_datetime(["2024-01-31", "2024-02-29", "2024-03-31"])
    on_ends = daily[daily.period.isin(ends)].reset_index(drop=True)
    assert sorted(set(monthly.period.astype(str))) == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert monthly.persons.tolist() == on_ends.persons.tolist()
    assert monthly.stage.tolist() == on_ends.stage.tolist()


def test_flows_count_active_to_dormant_in_the_week_it_happened():
    # bought on Mon 2024-01-01 (day 0): dormant from day 90 = 2024-03-31 (a Sunday)
    ev = events_frame([pay(1, 0), pay(2, 0), pay(2, 60)])
    f = stage_flows(ev, "2024-03-18", "2024-04-07", freq="W")
    wk = f[f.period == pd.Timestamp("2024-03-25")]
    assert wk[(wk.from_stage == "active") & (wk.to_stage == "dormant")].persons.tolist() == [1]
    assert wk[(wk.from_stage == "active") & (wk.to_stage == "active")].persons.tolist() == [1]


def test_flow_from_entry_counts_persons_new_since_the_previous_snapshot():
    ev = events_frame([(1, day(0), "mp_visit"), (2, day(1), "mp_visit"), pay(3, 1)])
    f = stage_flows(ev, day(0)[:10], day(1)[:10], freq="D")
    m = flow_matrix(f)
    assert m.loc[ENTRY, "prospect"] == 1 and m.loc[ENTRY, "new"] == 1 and m.loc["prospect", "prospect"] == 1


def test_bad_input_raises_clear_errors():
    ev = events_frame([pay(1, 0)])
    with pytest.raises(ValueError, match="touchpoint"):
        lifecycle_board(ev.drop(columns="touchpoint"), "2024-01-01", "2024-01-02")
    with pytest.raises(ValueError, match="before start"):
        lifecycle_board(ev, "2024-01-05", "2024-01-02")
    with pytest.raises(ValueError, match="freq"):
        lifecycle_board(ev, "2024-01-01", "2024-01-05", freq="Q")
    with pytest.raises(ValueError, match="no month ends"):
        lifecycle_board(ev, "2024-01-01", "2024-01-05", freq="M")
    with pytest.raises(ValueError, match="churn_days"):
        StageModel(dormant_days=100, churn_days=90)
    with pytest.raises(ValueError, match="new_days"):
        StageModel(new_days=0)
    bad = ev.copy()
    bad["ts"] = bad["ts"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="timezone-aware"):
        lifecycle_board(bad, "2024-01-01", "2024-01-02")


# ----------------------------------------------------------------------------- properties vs the reference loop

TOUCH = ["moments_ad_view", "oa_push", "mp_visit", "add_to_cart", "pay", "pay", "sms"]
SMALL = StageModel(new_days=4, dormant_days=9, churn_days=20, loyal_purchases=3, resurrected_days=5)


@st.composite
def random_events(draw, span: int = 70):
    rows = []
    n_persons = draw(st.integers(1, 6))
    for p in range(n_persons):
        for _ in range(draw(st.integers(1, 8))):
            n = draw(st.integers(0, span))
            hour = draw(st.sampled_from(["00:00", "12:00", "23:59"]))
            tp = draw(st.sampled_from(TOUCH))
            extra = {"order_id": len(rows), "amount_fen": draw(st.integers(0, 5000))} if tp == "pay" else None
            rows.append((p, day(n, hour), tp, extra))
    return events_frame(rows)


MODELS = st.sampled_from([SMALL, StageModel(new_days=3, dormant_days=6, churn_days=7, loyal_purchases=2,
                                            loyal_value_fen=4000, resurrected_days=None),
                          StageModel(new_days=15, dormant_days=5, churn_days=30, resurrected_days=2,
                                     resurrect_gap_days=8),
                          AIPLModel(window_days=7), AIPLModel(window_days=1, loyalty_purchases=3)])
PROPS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _snapshot_days(start: str, end: str, freq: str) -> list[int]:
    days = pd.date_range(start, end, freq={"D": "D", "W": "W-SUN", "M": "ME"}[freq])
    return [(d - pd.Timestamp("1970-01-01")).days for d in days]


@given(ev=random_events(), model=MODELS, freq=st.sampled_from(["D", "W", "M"]))
@PROPS
def test_board_equals_the_per_person_per_day_reference(ev, model, freq):
    start, end = "2023-12-28", "2024-03-20"
    fast = lifecycle_board(ev, start, end, freq=freq, model=model)
    snaps = _snapshot_days(start, end, freq)
    periods = sorted(set(fast.period))
    assert len(periods) == len(snaps)
    pos = {p: snaps[i] for i, p in enumerate(periods)}
    got = fast[fast.persons > 0]
    got = sorted(zip(got.period.map(pos), got.stage, got.persons))
    ref = reference.lifecycle_board(ev, snaps, model)
    assert got == sorted(zip(ref.snapshot, ref.stage, ref.persons))


@given(ev=random_events(), model=MODELS, freq=st.sampled_from(["D", "W", "M"]))
@PROPS
def test_stage_counts_sum_to_population_first_touched_by_each_date(ev, model, freq):
    start, end = "2023-12-25", "2024-03-31"
    b = lifecycle_board(ev, start, end, freq=freq, model=model)
    snaps = _snapshot_days(start, end, freq)
    first = ev.assign(d=ev.ts.dt.tz_localize(None).dt.normalize()).groupby("person_id").d.min()
    snap_dates = pd.to_datetime(np.array(snaps), unit="D")
    expected = [(first <= d).sum() for d in snap_dates]
    totals = b.groupby("period", sort=True).persons.sum().tolist()
    assert totals == expected
    assert (b.groupby("period").population.first().tolist()) == expected
    assert set(b.stage) == set(model.stages)


@given(ev=random_events(), model=MODELS, freq=st.sampled_from(["D", "W", "M"]))
@settings(PROPS, max_examples=12)
def test_flows_out_of_each_stage_equal_the_previous_count_and_flows_in_the_next(ev, model, freq):
    start, end = "2023-12-28", "2024-03-20"
    b = lifecycle_board(ev, start, end, freq=freq, model=model)
    f = stage_flows(ev, start, end, freq=freq, model=model)
    counts = b.pivot(index="period", columns="stage", values="persons")[list(model.stages)]
    periods = list(counts.index)
    outflow = f.pivot_table(index="period", columns="from_stage", values="persons", aggfunc="sum", fill_value=0)
    inflow = f.pivot_table(index="period", columns="to_stage", values="persons", aggfunc="sum", fill_value=0)
    outflow = outflow.reindex(index=periods[1:], columns=[ENTRY, *model.stages], fill_value=0)
    inflow = inflow.reindex(index=periods[1:], columns=list(model.stages), fill_value=0)
    assert (outflow[list(model.stages)].to_numpy() == counts.iloc[:-1].to_numpy()).all()
    assert (inflow.to_numpy() == counts.iloc[1:].to_numpy()).all()
    pop = b.groupby("period").population.first().to_numpy()
    assert (outflow[ENTRY].to_numpy() == np.diff(pop)).all()
    # and each flow equals the reference pairing of stages on consecutive snapshots
    snaps = _snapshot_days(start, end, freq)
    pos = {p: snaps[i] for i, p in enumerate(periods)}
    ref = reference.lifecycle_flows(ev, snaps, model)
    assert sorted(zip(f.period.map(pos), f.from_stage, f.to_stage, f.persons)) == sorted(
        zip(ref.snapshot, ref.from_stage, ref.to_stage, ref.persons))


@given(ev=random_events(span=120), model=MODELS)
@settings(PROPS, max_examples=8)
def test_merged_and_raw_intervals_give_the_same_stage_every_day(ev, model):
    for merge in (True, False):
        iv = stage_intervals(ev, model, merge=merge)
        assert set(iv.stage) <= set(model.stages)
        same_person = iv.person_id.to_numpy()[1:] == iv.person_id.to_numpy()[:-1]
        assert (iv.valid_from.to_numpy()[1:][same_person] == iv.valid_to.to_numpy()[:-1][same_person]).all()
        last = np.append(~same_person, True)
        assert iv.valid_to[last].isna().all() and iv.valid_to[~last].notna().all()
        if merge:
            assert (iv.stage.to_numpy()[1:][same_person] != iv.stage.to_numpy()[:-1][same_person]).all()


def test_aipl_stages_constant():
    assert AIPLModel().stages == AIPL_STAGES


def test_pandas_parquet_and_ibis_inputs_give_the_same_board_and_intervals(tmp_path):
    # day boundaries must be Beijing days whichever path the timestamps take (naive or instants)
    from privdomain import backend, io

    ev = events_frame([(1, day(0, "00:00"), "mp_visit"), pay(1, 3, hour="23:59"), pay(1, 40, hour="00:00"),
                       (2, day(1, "23:59"), "oa_push"), pay(2, 2, hour="00:01"), pay(3, 100)])
    ds = io.write_dataset(tmp_path / "d", {"events": ev})
    con = backend.connect()
    tbl = con.read_parquet(str(tmp_path / "d" / "events" / "*.parquet"))
    for model in (StageModel(), AIPLModel(window_days=20)):
        want = lifecycle_board(ev, day(0)[:10], day(150)[:10], model=model)
        for src in (ds, str(tmp_path / "d"), tbl):
            got = lifecycle_board(src, day(0)[:10], day(150)[:10], model=model)
            pd.testing.assert_frame_equal(got, want)
        pd.testing.assert_frame_equal(stage_intervals(tbl, model), stage_intervals(ev, model))
