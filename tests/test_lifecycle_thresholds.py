"""Lifecycle thresholds from the inter-purchase gap distribution, and explicit thresholds as before."""

import numpy as np
import pandas as pd
import pytest

from privdomain.examples import events_frame
from privdomain.lifecycle import stages as lifecycle
from privdomain.lifecycle.stages import StageModel, data_stage_model, gap_thresholds


def _random_purchases(seed: int, persons: int = 60, mean_gap: float = 20.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows, order = [], 0
    for p in range(persons):
        t = pd.Timestamp("2024-01-01 09:00") + pd.Timedelta(hours=int(rng.integers(0, 24 * 30)))
        rows.append((p, t, "mp_visit"))
        for _ in range(int(rng.integers(1, 6))):
            order += 1
            rows.append((p, t, "pay", {"order_id": order, "amount_fen": 1000}))
            t = (t + pd.Timedelta(hours=float(rng.exponential(mean_gap * 24)))).floor("s")
    return events_frame(rows)


def _brute_gaps(ev: pd.DataFrame) -> np.ndarray:
    pay = ev[ev["touchpoint"] == "pay"]
    days = pay.assign(day=pay["ts"].dt.tz_convert("Asia/Shanghai").dt.tz_localize(None).dt.normalize())
    gaps = []
    for _, g in days.groupby("person_id"):
        d = np.sort(g["day"].unique())
        gaps += [int((b - a) / np.timedelta64(1, "D")) for a, b in zip(d[:-1], d[1:])]
    return np.array(gaps, dtype=float)


@pytest.mark.parametrize("seed,mean_gap", [(1, 5.0), (2, 20.0), (3, 120.0)])
def test_thresholds_follow_the_gap_distribution_brute_force(seed, mean_gap):
    ev = _random_purchases(seed, mean_gap=mean_gap)
    gaps = _brute_gaps(ev)
    th = gap_thresholds(ev, min_dormant_days=1, min_churn_days=1)
    assert th["gaps"] == len(gaps) and th["source"] == "data"
    assert th["dormant_gap"] == pytest.approx(np.percentile(gaps, 80))
    assert th["churn_gap"] == pytest.approx(np.percentile(gaps, 95))
    assert th["dormant_days"] == max(1, int(np.ceil(np.percentile(gaps, 80))))
    assert th["churn_days"] == max(th["dormant_days"] + 1, int(np.ceil(np.percentile(gaps, 95))))


def test_a_weekly_habit_and_a_yearly_one_get_different_thresholds():
    weekly = gap_thresholds(_random_purchases(4, mean_gap=7.0))
    yearly = gap_thresholds(_random_purchases(4, mean_gap=300.0))
    assert weekly["dormant_days"] < 60 < 200 < yearly["dormant_days"]
    assert yearly["churn_days"] > yearly["dormant_days"]


def test_floors_apply_when_the_gaps_are_short():
    ev = events_frame([(1, f"2024-01-{d:02d} 10:00", "pay", {"order_id": d, "amount_fen": 100}) for d in range(1, 20)])
    th = gap_thresholds(ev)  # every gap is one day
    assert th["dormant_gap"] == 1.0
    assert (th["dormant_days"], th["churn_days"]) == (14, 30)


def test_no_repeat_purchase_falls_back_to_the_defaults_and_says_so():
    ev = events_frame([(1, "2024-01-01 10:00", "pay", {"order_id": 1, "amount_fen": 100}),
                       (2, "2024-01-03 10:00", "pay", {"order_id": 2, "amount_fen": 100})])
    th = gap_thresholds(ev)
    assert th["source"] == "default" and th["gaps"] == 0
    assert (th["dormant_days"], th["churn_days"]) == (StageModel().dormant_days, StageModel().churn_days)


def test_quantiles_are_checked():
    ev = _random_purchases(5)
    with pytest.raises(ValueError, match="0 < dormant_quantile < churn_quantile < 1"):
        gap_thresholds(ev, dormant_quantile=0.95, churn_quantile=0.8)


def test_explicit_thresholds_work_exactly_as_before():
    ev = _random_purchases(6)
    model, th = data_stage_model(ev, 90, 180)
    assert model == StageModel() and th["source"] == "argument"
    before = lifecycle.lifecycle_board(ev, "2024-02-01", "2024-06-30", freq="W")
    after = lifecycle.lifecycle_board(ev, "2024-02-01", "2024-06-30", freq="W", model=model)
    pd.testing.assert_frame_equal(before, after)
    m2, _ = data_stage_model(ev, 45, 100)
    assert m2 == StageModel(dormant_days=45, churn_days=100)


def test_one_threshold_given_the_other_from_the_data():
    ev = _random_purchases(7, mean_gap=10.0)
    model, th = data_stage_model(ev, dormant_days=50)
    assert model.dormant_days == 50 and model.churn_days > 50
    assert th["source"] == "argument and data"


def test_data_thresholds_change_the_board():
    ev = _random_purchases(8, mean_gap=4.0)
    model, th = data_stage_model(ev)
    assert th["dormant_days"] < 90
    default = lifecycle.stages_at(ev, "2024-05-01")
    fitted = lifecycle.stages_at(ev, "2024-05-01", model)
    assert (fitted["stage"].isin(["dormant", "churned"]).sum()
            >= default["stage"].isin(["dormant", "churned"]).sum())
