"""Campaign experiments: randomised effects, difference-in-differences, power, drivers.

Every estimator takes a tidy frame and returns a tidy frame with the columns
``outcome, term, method, estimate, std_error, ci_low, ci_high, p_value, n``
(see :mod:`privdomain.experiments._tidy`); each analysis has one plotting helper
returning a matplotlib ``Axes``.

Modules
-------
randomised  treatment / holdout effects: difference in means (HC), relative lift,
            CUPED, logistic average marginal effects, effects by segment with
            multiple-comparison correction
did         difference-in-differences with unit and period effects, event study,
            pre-trend check
staggered   group-time DiD (Callaway & Sant'Anna) for staggered roll-outs whose
            effect varies by cohort or time
power       sample size, minimum detectable effect and power for a proportion or a mean
drivers     touchpoints associated with purchase (logit odds ratios)
data        from a dataset: per-person experiment frames, per-person touchpoint
            frames, unit x period roll-out panels
synthetic   small vectorised data-generating processes with a known truth
plots       forest plot, event-study plot, power curve, odds-ratio plot

Examples
--------
>>> from privdomain import experiments as ex
>>> df = ex.simulate_campaign(2000, effect=0.05, seed=1)
>>> ex.difference_in_means(df, "converted")[["term", "n"]].values.tolist()
[['treatment', 2000]]
"""

from ._tidy import RESULT_COLUMNS
from .data import TEA_TIERS, campaign_frame, rollout_panel, touchpoint_frame
from .did import demean_two_way, did, event_study, pretrend_check
from .drivers import ASSOCIATION_NOTE, confounding_table, purchase_drivers
from .plots import event_study_plot, forest_plot, odds_ratio_plot, power_curve
from .power import mde_mean, mde_proportion, power_mean, power_proportion, sample_size_mean, sample_size_proportion
from .randomised import (
    campaign_effects,
    cuped,
    cuped_adjust,
    difference_in_means,
    heterogeneity_test,
    heterogeneous_effects,
    logit_ame,
    ratio_effect,
    relative_lift,
)
from .staggered import group_time_att, staggered_did
from .synthetic import (
    TIERS,
    CampaignTruth,
    baseline_conversion,
    campaign_truth,
    coupon_tier,
    simulate_campaign,
    simulate_panel,
    simulate_touchpoints,
    tier_shares,
    touchpoint_truth,
)

__all__ = [
    "ASSOCIATION_NOTE",
    "TEA_TIERS",
    "group_time_att",
    "staggered_did",
    "campaign_frame",
    "confounding_table",
    "event_study_plot",
    "forest_plot",
    "odds_ratio_plot",
    "power_curve",
    "purchase_drivers",
    "rollout_panel",
    "touchpoint_frame",
    "RESULT_COLUMNS",
    "TIERS",
    "baseline_conversion",
    "campaign_effects",
    "coupon_tier",
    "cuped",
    "cuped_adjust",
    "demean_two_way",
    "did",
    "difference_in_means",
    "event_study",
    "heterogeneous_effects",
    "heterogeneity_test",
    "logit_ame",
    "mde_mean",
    "mde_proportion",
    "power_mean",
    "power_proportion",
    "pretrend_check",
    "ratio_effect",
    "relative_lift",
    "sample_size_mean",
    "sample_size_proportion",
    "simulate_campaign",
    "CampaignTruth",
    "campaign_truth",
    "simulate_panel",
    "simulate_touchpoints",
    "tier_shares",
    "touchpoint_truth",
]
