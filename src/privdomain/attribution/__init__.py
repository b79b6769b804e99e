"""Attribution: windowed ad credit with fission, multi-level ROI, rule-based and
data-driven multi-touch models, and scoring against the simulator's truth.

Modules
-------
:mod:`~privdomain.attribution.paths`    path tables (build from events, parse)
:mod:`~privdomain.attribution.rules`    first/last touch, last non-direct, linear, time decay, position based
:mod:`~privdomain.attribution.markov`   exact Markov removal effects, order k
:mod:`~privdomain.attribution.shapley`  exact Shapley (subset sums over 2^n coalitions), ordered variant
:mod:`~privdomain.attribution.windows`  ad attribution at lookback windows, fission, multi-level ROI
:mod:`~privdomain.attribution.scoring`  model shares vs the simulator's true incremental and Shapley credit
:mod:`~privdomain.attribution.lift`     lift tests (incrementality from holdouts) and lift-calibrated credit
:mod:`~privdomain.attribution.compare`  every model side by side (:func:`attribute`)

Every multi-touch model takes a path table (``path``, ``total_conversions``,
``total_conversion_value``, ``total_null``) or events, and returns the same tidy
frame: ``channel``, ``model``, ``conversions``, ``value``, ``share``,
``share_value`` (plus ``removal_effect`` for Markov).

Examples
--------
>>> import pandas as pd
>>> from privdomain import attribution
>>> pt = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [3, 1],
...                    "total_conversion_value": [30.0, 10.0], "total_null": [1, 4]})
>>> r = attribution.attribute(pt, models=["last_touch", "markov", "shapley"])
>>> r.pivot(index="channel", columns="model", values="conversions").round(3).values.tolist()
[[0.0, 1.231, 1.5], [4.0, 2.769, 2.5]]
"""

from __future__ import annotations

from .compare import MODELS, attribute
from .lift import LiftError, acquisition, calibrated, lift, lift_channels, lift_plan, lifts, recruitment, score_lift
from .markov import markov
from .paths import (
    PATH_COLUMNS,
    Journeys,
    build_paths,
    channel_transitions,
    journey_stats,
    journeys,
    parse,
    to_path_table,
    top_paths,
)
from .rules import DIRECT, RULES, rule_based
from .scoring import channel_gaps, load_truth, score, score_scenarios
from .shapley import shapley
from .windows import (
    WINDOWS,
    ad_attribution,
    credited_purchases,
    multi_level_roi,
    roi_by_window,
    roi_curve,
    roi_ratio_interval,
    total_roi_curve,
)

__all__ = [
    "LiftError",
    "acquisition",
    "calibrated",
    "lift",
    "lift_channels",
    "lift_plan",
    "lifts",
    "recruitment",
    "score_lift",
    "WINDOWS",
    "ad_attribution",
    "channel_gaps",
    "credited_purchases",
    "load_truth",
    "multi_level_roi",
    "roi_curve",
    "score",
    "score_scenarios",
    "DIRECT",
    "MODELS",
    "PATH_COLUMNS",
    "RULES",
    "Journeys",
    "attribute",
    "build_paths",
    "channel_transitions",
    "journey_stats",
    "top_paths",
    "roi_by_window",
    "roi_ratio_interval",
    "total_roi_curve",
    "journeys",
    "markov",
    "parse",
    "rule_based",
    "shapley",
    "to_path_table",
]
