"""Attribution on simulated data: scoring against the simulator's truth, and a
cross-check of the windowed ad credit with the simulator's own calibration measure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from privdomain import attribution, schema
from privdomain.simulate import calibration, simulate


@pytest.fixture(scope="module")
def sportswear(tmp_path_factory):
    return simulate(scenario="sportswear", persons=4000, seed=3, out=tmp_path_factory.mktemp("sw") / "ds", truth=True)


@pytest.fixture(scope="module")
def credit(sportswear):
    return attribution.attribute(sportswear, models=[*attribution.MODELS, "markov_2", "shapley_rate"])


def test_same_day_direct_revenue_equals_the_simulators_independent_measure(sportswear):
    ev = sportswear.read("events")
    ad = attribution.ad_attribution(sportswear, campaigns=sportswear, windows=(0, 30))
    # calibration.py: pandas merge_asof of each pay on the person's latest earlier ad click
    tp = ev["touchpoint"].astype(str)
    clicks = ev.loc[tp.isin(schema.AD_CLICKS), ["person_id", "ts"]].rename(columns={"ts": "click_ts"})
    pays = ev.loc[tp == schema.PURCHASE, ["person_id", "ts", "amount_fen"]]
    m = pd.merge_asof(pays.sort_values("ts"), clicks.sort_values("click_ts"), left_on="ts", right_on="click_ts",
                      by="person_id", direction="backward").dropna(subset=["click_ts"])
    same_day = m.loc[m["ts"].dt.date == m["click_ts"].dt.date, "amount_fen"].sum() / 100
    assert ad.loc[ad.window == 0, "direct_revenue"].sum() == pytest.approx(same_day)
    # the long tail the case study describes: 30-day revenue well above the same day
    ratio = ad.loc[ad.window == 30, "revenue"].sum() / ad.loc[ad.window == 0, "revenue"].sum()
    assert ratio == pytest.approx(calibration.roi_30d_over_same_day(ev), rel=0.1)
    spend = sportswear.read("campaigns")["spend_fen"].sum() / 100
    assert ad.loc[ad.window == 0, "spend"].sum() == pytest.approx(spend)


def test_every_model_credits_exactly_the_conversions_of_the_built_journeys(sportswear, credit):
    pt = attribution.build_paths(sportswear)
    for model, g in credit.groupby("model"):
        assert g["conversions"].sum() == pytest.approx(pt["total_conversions"].sum()), model
        assert g["value"].sum() == pytest.approx(pt["total_conversion_value"].sum()), model
    assert pt.attrs["purchases"] == (sportswear.read("events")["touchpoint"] == "pay").sum()


def test_scores_equal_an_independent_computation_from_the_truth_tables(sportswear, credit):
    s = attribution.score(credit, sportswear, scenario="sportswear")
    truth = {"incremental": pd.read_parquet(sportswear.path / "truth" / "incrementality.parquet"),
             "shapley": pd.read_parquet(sportswear.path / "truth" / "shapley.parquet")}
    assert set(s["model"]) == {*credit["model"], "uniform"}
    assert len(s) == (credit["model"].nunique() + 1) * 2 * 2
    for (model, tname, metric), row in s.set_index(["model", "truth", "metric"]).iterrows():
        t = truth[tname].set_index("channel")["share_conversions" if metric == "conversions" else "share_revenue"]
        t = t / t.sum()
        if model == "uniform":
            share = pd.Series(1.0, index=t.index)
        else:
            g = credit[credit.model == model].set_index("channel")
            share = g["share" if metric == "conversions" else "share_value"].reindex(t.index).fillna(0.0)
        share = share / share.sum()
        expected = float(np.mean(np.abs(share.to_numpy() - t.to_numpy()))) * 100
        assert row.mae_pp == pytest.approx(expected, abs=1e-9), (model, tname, metric)
        assert row.channels == len(t)


def test_truth_channels_are_channels_of_the_built_paths(sportswear, credit):
    truth = pd.read_parquet(sportswear.path / "truth" / "incrementality.parquet")
    modelled = set(credit["channel"])
    # every channel the simulator can switch off appears in the paths (fission may be too rare to show)
    assert set(truth["channel"]) - {"fission"} <= modelled
