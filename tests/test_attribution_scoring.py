"""Scoring model shares against the simulator's truth tables."""

from __future__ import annotations

import pandas as pd
import pytest

from privdomain.attribution import attribute, score
from privdomain.attribution.scoring import load_truth, summary


def truth_folder(tmp_path):
    folder = tmp_path / "ds" / "truth"
    folder.mkdir(parents=True)
    pd.DataFrame({"channel": ["a", "b", "c"], "conversions": [10, 10, 10], "revenue_fen": [0, 0, 0],
                  "conversions_without": [5, 8, 10], "revenue_without_fen": [0, 0, 0],
                  "incremental_conversions": [5, 2, 0], "incremental_revenue_fen": [500, 300, 200],
                  "share_conversions": [5 / 7, 2 / 7, 0.0], "share_revenue": [0.5, 0.3, 0.2]}
                 ).to_parquet(folder / "incrementality.parquet")
    pd.DataFrame({"channel": ["a", "b", "c"], "shapley_conversions": [4.0, 4.0, 2.0],
                  "shapley_revenue_fen": [1.0, 1.0, 2.0], "se_conversions": [0.1] * 3, "se_revenue_fen": [0.1] * 3,
                  "share_conversions": [0.4, 0.4, 0.2], "share_revenue": [0.25, 0.25, 0.5],
                  "persons_sampled": [100] * 3}).to_parquet(folder / "shapley.parquet")
    return tmp_path / "ds"


def test_mae_in_percentage_points_against_both_truths(tmp_path):
    ds = truth_folder(tmp_path)
    model = pd.DataFrame({"channel": ["a", "b", "c", "mini_program"], "model": "m",
                          "share": [0.3, 0.3, 0.2, 0.2], "share_value": [0.5, 0.25, 0.25, 0.0]})
    s = score(model, ds, scenario="toy").set_index(["model", "truth", "metric"])
    # renormalised over a, b, c: 0.375, 0.375, 0.25
    inc = s.loc[("m", "incremental", "conversions")]
    expected = (abs(0.375 - 5 / 7) + abs(0.375 - 2 / 7) + abs(0.25 - 0)) / 3 * 100
    assert inc.mae_pp == pytest.approx(expected)
    assert inc.worst_channel == "a" and inc.share_outside_truth == pytest.approx(0.2)
    shp = s.loc[("m", "shapley", "revenue")]
    assert shp.mae_pp == pytest.approx((0.25 + 0 + 0.25) / 3 * 100)
    uni = s.loc[("uniform", "shapley", "conversions")]
    assert uni.mae_pp == pytest.approx((abs(1 / 3 - 0.4) * 2 + abs(1 / 3 - 0.2)) / 3 * 100)
    assert s.loc[("m", "shapley", "conversions")].worse_than_uniform == (
        s.loc[("m", "shapley", "conversions")].mae_pp > uni.mae_pp)
    assert set(summary(score(model, ds, scenario="toy")).columns.get_level_values(0)) == {"toy"}


def test_a_model_equal_to_the_truth_scores_zero_and_channels_missing_from_a_model_count_as_zero(tmp_path):
    ds = truth_folder(tmp_path)
    exact = pd.DataFrame({"channel": ["a", "b", "c"], "model": "oracle", "share": [0.4, 0.4, 0.2],
                          "share_value": [0.25, 0.25, 0.5]})
    missing = pd.DataFrame({"channel": ["a"], "model": "one", "share": [1.0], "share_value": [1.0]})
    s = score(pd.concat([exact, missing]), load_truth(ds))
    got = s[(s.truth == "shapley")].set_index(["model", "metric"])["mae_pp"]
    assert got[("oracle", "conversions")] == pytest.approx(0.0)
    assert got[("one", "conversions")] == pytest.approx((60 + 40 + 20) / 3)


def test_scoring_needs_truth_tables(tmp_path):
    with pytest.raises(ValueError, match="no truth tables"):
        score(pd.DataFrame({"channel": ["a"], "model": "m", "share": [1.0]}), tmp_path)


def test_every_model_output_can_be_scored(tmp_path):
    ds = truth_folder(tmp_path)
    pt = pd.DataFrame({"path": ["a > b", "c", "a"], "total_conversions": [3, 1, 2],
                       "total_conversion_value": [3.0, 1.0, 2.0], "total_null": [1, 5, 2]})
    s = score(attribute(pt), ds)
    assert set(s.model) == {*attribute(pt)["model"], "uniform"}
    assert (s.mae_pp >= 0).all() and (s.mae_pp <= 100).all()


def test_channel_gaps_list_each_channels_distance_from_the_truth(tmp_path):
    from privdomain.attribution import channel_gaps

    ds = truth_folder(tmp_path)
    model = pd.DataFrame({"channel": ["a", "b", "c"], "model": "m", "share": [0.5, 0.3, 0.2],
                          "share_value": [0.5, 0.3, 0.2]})
    g = channel_gaps(model, ds).set_index(["truth", "metric", "channel"])["gap_pp"]
    assert g[("shapley", "conversions", "a")] == pytest.approx(10.0)
    assert g[("incremental", "revenue", "c")] == pytest.approx(0.0)
    s = score(model, ds).set_index(["model", "truth", "metric"])
    assert s.loc[("m", "incremental", "revenue"), "rank_corr"] == pytest.approx(1.0)
    assert s.loc[("m", "shapley", "conversions"), "mae_pp"] == pytest.approx(
        g.loc[("shapley", "conversions")].abs().mean())
