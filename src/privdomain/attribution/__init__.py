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

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..contract import Duration, events_input
from .lift import LiftError, calibrated, lift, lift_channels, lift_plan, lifts, recruitment, score_lift
from .markov import markov
from .paths import (
    PATH_COLUMNS,
    SEP,
    Journeys,
    build_paths,
    channel_transitions,
    journey_stats,
    journeys,
    parse,
    to_path_table,
    top_paths,
)
from .rules import DIRECT, RULES, rule_based, time_decay_events
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

MODELS = (*RULES, "markov", "shapley")


@events_input(renamed={"window_days": "window"})
def attribute(events: Any, models: Sequence[str] = MODELS, order: int = 1, half_life: float = 7.0,
              position_weights: Sequence[float] = (0.4, 0.2, 0.4), direct: Sequence[str] = DIRECT,
              coalition: str = "conversions", window: Duration = "30D", *, con: Any | None = None,
              sep: str = SEP, marketing_channels: Any = None) -> pd.DataFrame:
    """Run several models on the same journeys and stack their tidy outputs.

    ``models`` may name any of :data:`RULES`, ``"markov"`` (order ``order``;
    ``"markov_2"`` etc. also work) and ``"shapley"``. Events are turned into a path
    table once, crediting only ``marketing_channels`` (default: every channel but
    the Mini Program checkout; journeys without a marketing touch are ``direct``,
    see :mod:`privdomain.attribution.paths`). Returns ``channel``, ``model``,
    ``conversions``, ``value``, ``share``, ``share_value``, ``removal_effect``
    (NaN except Markov).

    >>> import pandas as pd
    >>> pt = pd.DataFrame({"path": ["a > b"], "total_conversions": [2], "total_null": [0]})
    >>> attribute(pt, models=["first_touch", "shapley"])["conversions"].tolist()
    [2.0, 0.0, 1.0, 1.0]
    """
    from_events = not (isinstance(events, Journeys) or (isinstance(events, pd.DataFrame) and "path" in events.columns))
    pt = build_paths(events, window=window, con=con, marketing_channels=marketing_channels) \
        if from_events else events
    j = journeys(pt, sep=SEP if from_events else sep)
    if from_events:
        j.attrs.update(pt.attrs)
    frames = []
    rules = [m for m in models if m in RULES]
    for m in rules:
        if from_events and m == "time_decay":  # touch ages in days need the events
            frames.append(time_decay_events(events, half_life, window, j.channels, con=con,
                                                marketing_channels=marketing_channels, paths=pt))
        else:
            frames.append(rule_based(j, models=[m], half_life=half_life, position_weights=position_weights,
                                     direct=direct))
    for m in models:
        if m in RULES:
            continue
        if m == "markov" or m.startswith("markov_"):
            k = order if m == "markov" else int(m.split("_", 1)[1])
            frames.append(markov(j, order=k))
        elif m in ("shapley", "shapley_rate"):
            frames.append(shapley(j, coalition="rate" if m == "shapley_rate" else coalition))
        else:
            raise ValueError(f"unknown model {m!r}; choose from {MODELS} (or markov_<k>, shapley_rate)")
    out = pd.concat(frames, ignore_index=True)
    if "removal_effect" not in out.columns:
        out["removal_effect"] = float("nan")
    out = out[["channel", "model", "conversions", "value", "share", "share_value", "removal_effect"]]
    out.attrs = dict(j.attrs)
    return out


__all__ = [
    "LiftError",
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
