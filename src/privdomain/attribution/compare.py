"""Every model side by side: :func:`attribute` runs several attribution models on the
same journeys and stacks their tidy outputs into one frame.

Examples
--------
>>> import pandas as pd
>>> from privdomain.attribution.compare import attribute
>>> pt = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [3, 1],
...                    "total_conversion_value": [30.0, 10.0], "total_null": [1, 4]})
>>> attribute(pt, models=["last_touch", "shapley"])["model"].unique().tolist()
['last_touch', 'shapley']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..contract import Duration, events_input
from .markov import markov
from .paths import SEP, Journeys, build_paths, journeys
from .rules import DIRECT, RULES, rule_based, time_decay_events
from .shapley import shapley

__all__ = ["MODELS", "attribute"]

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
