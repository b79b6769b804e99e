"""Comparisons with n and 95% intervals, and the computed parts of the case studies."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from privdomain import attribution, plotting  # noqa: E402
from privdomain.boards import channel_cube  # noqa: E402
from privdomain.boards.funnel import wilson_interval  # noqa: E402
from privdomain.examples import events_frame  # noqa: E402
from privdomain.reports import cases  # noqa: E402


def test_rate_intervals_are_wilson_and_flag_small_or_wide_groups():
    df = pd.DataFrame({"group": ["loyal", "new", "all", "empty"], "k": [6, 16, 430, 0], "n": [8, 32, 1000, 0]})
    out = plotting.rate_intervals(df, "k", "n")
    lo, hi = wilson_interval(df["k"], df["n"])
    np.testing.assert_allclose(out["low"].to_numpy()[:3], lo[:3])
    np.testing.assert_allclose(out["high"].to_numpy()[:3], hi[:3])
    assert out["too_small"].tolist() == [True, True, False, True]  # n < 30; interval > 30 pp; fine; empty
    assert (out.loc[1, "high"] - out.loc[1, "low"]) > plotting.WIDE_INTERVAL
    assert math.isnan(out.loc[3, "rate"])
    assert df["k"].tolist() == [6, 16, 430, 0], "the input must not change"


def test_difference_interval_is_newcombe_from_the_two_wilson_intervals():
    k1, n1, k0, n0 = 45, 120, 30, 110
    d = plotting.difference_interval(k1, n1, k0, n0)
    (l1, l0), (u1, u0) = wilson_interval([k1, k0], [n1, n0])
    p1, p0 = k1 / n1, k0 / n0
    assert d["diff"] == pytest.approx(p1 - p0)
    assert d["low"] == pytest.approx(p1 - p0 - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), abs=1e-6)
    assert d["high"] == pytest.approx(p1 - p0 + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2), abs=1e-6)
    assert d["relative"] == pytest.approx((p1 - p0) / p0)
    assert d["too_small"] is False
    assert plotting.difference_interval(3, 8, 2, 10)["too_small"] is True
    assert math.isnan(plotting.difference_interval(1, 10, 0, 0)["diff"])


def test_percentage_points_and_percent_are_written_apart():
    assert plotting.pp(0.063) == "+6.3 pp"
    assert plotting.pp(-0.0125, 2) == "-1.25 pp"
    assert plotting.pp(float("nan")) == "n/a"
    assert plotting.interval_text(-0.02, 0.041, "pp") == "95% CI -2.0 pp to +4.1 pp"
    assert plotting.interval_text(0.41, 0.55) == "95% CI 41.0% to 55.0%"
    assert plotting.flag_text(True) == "⚠ too small" and plotting.flag_text(False) == ""


def test_small_warning_names_the_groups_and_states_the_rule():
    t = plotting.rate_intervals(pd.DataFrame({"tier": ["loyal", "new"], "k": [6, 400], "n": [8, 900]}), "k", "n")
    msg = plotting.small_warning(t, "tier")
    assert "loyal (n = 8)" in msg and "new" not in msg.split("Rule")[0]
    assert "n < 30" in msg and "30 pp" in msg
    assert plotting.small_warning(t[t["tier"] == "new"], "tier") == ""


def test_bar_ci_draws_error_bars_n_and_marks_small_groups():
    t = plotting.rate_intervals(pd.DataFrame({"tier": ["a", "a", "b", "b"], "arm": ["holdout", "treatment"] * 2,
                                              "k": [6, 300, 100, 120], "n": [8, 700, 300, 300]}), "k", "n")
    ax = plotting.bar_ci(t, "tier", "rate", hue="arm", title="test")
    labels = [txt.get_text() for txt in ax.texts]
    assert any("n=8" in s and s.startswith("⚠") for s in labels)
    assert any("n=700" in s and not s.startswith("⚠") for s in labels)
    caps = [c for c in ax.containers if isinstance(c, matplotlib.container.ErrorbarContainer)]
    assert len(caps) == 2, "one set of error bars per arm"
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 1
    matplotlib.pyplot.close(ax.figure)


def test_arm_rates_match_a_groupby_and_pool_the_tiers():
    rng = np.random.default_rng(3)
    f = pd.DataFrame({"arm": rng.choice(["treatment", "holdout"], 400), "segment": rng.choice(["a", "b", "c"], 400),
                      "prior_purchases": rng.integers(0, 9, 400), "y": rng.integers(0, 2, 400)})
    r = cases.arm_rates(f, "y")
    want = f.groupby(["segment", "arm"])["y"].agg(["size", "sum"])
    for _, row in r[r["segment"] != "all 全部"].iterrows():
        assert (row["n"], row["successes"]) == tuple(want.loc[(row["segment"], row["arm"])])
    pooled = r[r["segment"] == "all 全部"].set_index("arm")
    assert pooled.loc["treatment", "n"] == (f["arm"] == "treatment").sum()
    lifts = cases.arm_lifts(r)
    t, h = f[f["arm"] == "treatment"]["y"].mean(), f[f["arm"] == "holdout"]["y"].mean()
    assert lifts.iloc[0]["diff"] == pytest.approx(t - h)
    assert lifts.iloc[0]["low"] < t - h < lifts.iloc[0]["high"]


def test_campaign_roi_table_has_orders_poisson_interval_and_no_infinite_ratio():
    from scipy.stats import poisson

    roi = pd.DataFrame({"campaign_id": [1, 2, 3], "channel": "ads", "spend": [100.0, 100.0, 100.0],
                        "roi_30d": [2.0, 1.2, 0.0], "long_over_immediate_30": [1.5, np.inf, np.nan]})
    ad = pd.DataFrame({"level": "campaign", "campaign_id": [1, 2, 3, 1], "window": [30, 30, 30, 0],
                       "orders": [8, 41, 0, 3]})
    t = cases.campaign_roi_table(roi, ad)
    assert t["orders"].tolist() == [8, 41, 0]
    assert t["too_small"].tolist() == [True, False, True]
    lo, hi = t.loc[0, "roi_low"] / 2.0 * 8, t.loc[0, "roi_high"] / 2.0 * 8  # back to order counts
    assert poisson.sf(7, lo) == pytest.approx(0.025, abs=1e-6)  # P(X >= 8 | lo) = 2.5%
    assert poisson.cdf(8, hi) == pytest.approx(0.025, abs=1e-6)
    assert math.isnan(t.loc[1, "long_over_immediate_30"]) and math.isnan(t.loc[2, "roi_low"])


def test_roi_ratio_interval_covers_the_pooled_ratio():
    rows = pd.DataFrame({"campaign_id": np.repeat(np.arange(8), 2), "window": [0, 30] * 8,
                         "revenue": np.ravel([[10.0 + i, 25.0 + 2 * i] for i in range(8)])})
    lo, hi, k = attribution.roi_ratio_interval(rows)
    ratio = rows[rows.window == 30].revenue.sum() / rows[rows.window == 0].revenue.sum()
    assert k == 8 and lo <= ratio <= hi
    assert all(map(math.isnan, attribution.roi_ratio_interval(rows[rows.campaign_id == 0])[:2]))


def test_guide_table_counts_adds_and_guide_orders_per_guide():
    ev = events_frame([
        (1, "2024-05-01 10:00", "wecom_add", {"guide_id": 3}), (2, "2024-05-01 11:00", "wecom_add", {"guide_id": 3}),
        (3, "2024-05-01 12:00", "wecom_add", {"guide_id": 4}),
        (1, "2024-05-02 10:00", "pay", {"order_id": 1, "amount_fen": 100, "channel": "guide", "guide_id": 3}),
        (1, "2024-05-03 10:00", "pay", {"order_id": 2, "amount_fen": 100, "channel": "guide", "guide_id": 3}),
        (3, "2024-05-03 10:00", "pay", {"order_id": 3, "amount_fen": 100})])
    g = channel_cube.guide_table(ev).set_index("guide_id")
    assert g.loc[3, "added"] == 2 and g.loc[3, "orders"] == 2 and g.loc[3, "orders_per_added"] == 1.0
    assert g.loc[4, "orders"] == 0


STORY = {"headline": "repurchase_lift", "reported": "repurchase +35%",
         "comparison": {"reported": "repurchase +35% over the month before", "testable": False, "note": "before/after"},
         "limitations": ["the loyal tier is small"]}


def _head(low, high, n_holdout=100):
    lifts = pd.DataFrame({"segment": ["all 全部"], "n_treatment": [900], "n_holdout": [n_holdout], "diff": [0.05],
                          "low": [low], "high": [high], "too_small": [n_holdout < 30]})
    return {"lifts": lifts, "measured": {"quantity": "relative lift", "value": 0.3, "low": 0.1, "high": 0.5, "n": 1000,
                                         "n_label": "persons", "interval": "log ratio"}}


def test_recommendations_follow_the_evidence():
    keep = cases.recommendations(STORY, _head(0.01, 0.09))
    assert "keep it" in keep[0] and "+5.0 pp" in keep[0]
    unsure = cases.recommendations(STORY, _head(-0.02, 0.12))
    assert "no evidence" in unsure[0]
    small = cases.recommendations(STORY, _head(-0.02, 0.12, n_holdout=8))
    assert "too small to judge" in small[0] and "8 held out" in small[0]
    lapsed = cases.recommendations(STORY, _head(0.01, 0.09), lapsed_share=0.6,
                                   thresholds={"dormant_days": 21, "churn_days": 40})
    assert "60% of buyers" in lapsed[-1] and "21 days" in lapsed[-1]


def test_reported_table_says_plainly_when_the_data_cannot_test_the_figure():
    t = cases.reported_table(STORY, _head(0.01, 0.09))
    row = t.iloc[0]
    assert row["same measure"].startswith("no: the data cannot test")
    assert row["n"] == "1,000 persons" and row["95% interval"].startswith("+10% to +50%")
    testable = cases.reported_table({**STORY, "comparison": {**STORY["comparison"], "testable": True}}, _head(0, 1))
    assert testable.iloc[0]["same measure"] == "yes"


def test_limitations_add_what_the_data_shows():
    out = cases.limitations(STORY, {"warning": "⚠ **Too small to say anything:** loyal (n = 8)."},
                            {"within": False, "persons": 50000}, persons=500,
                            thresholds={"source": "default"})
    text = " ".join(out)
    assert "simulated" in out[0] and "the loyal tier is small" in text and "loyal (n = 8)" in text
    assert "outside its tolerance at 500 persons" in text and "90 / 180" in text and "small run" in text


def test_footer_names_version_parameters_seed_and_date():
    from importlib.metadata import version

    f = cases.footer({"scenario": "tea", "persons": 500, "seed": 11}, "2026-12-06 15:00 UTC")
    assert f"privdomain {version('privdomain')}" in f
    assert "scenario = tea" in f and "persons = 500" in f and "seed 11" in f and "2026-12-06 15:00 UTC" in f


def test_every_case_story_states_its_comparison_and_limitations():
    from privdomain.reports import runner as reports

    for case in reports.CASES:
        story = cases.case_story(case)
        assert isinstance(story["comparison"]["testable"], bool), case
        assert story["comparison"]["note"] and story["limitations"], case
