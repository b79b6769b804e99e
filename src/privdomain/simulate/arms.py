"""Who is treated: the per-person arm of each experiment in a simulated block.

The assignment itself is drawn in :func:`privdomain.simulate.orders.prepare_experiments`
(a hash of the person's key, so it is seeded and independent of the number of
processes); this module reads it. It is the one primitive both the journeys (touches
convert more under treatment) and the baskets (treated persons pay the coupon price)
need, kept apart so that neither imports the other.

>>> import numpy as np
>>> B = {"n": 3, "sc": type("S", (), {"experiments": {"x": {}}})(), "eligible": {"x": np.array([True, True, False])}}
>>> treated(B, "x", "all", None).tolist()
[True, True, False]
>>> treated(B, "x", "assigned", {"x": np.array([False, True, True])}).tolist()
[False, True, False]
>>> treated(B, "x", "none", None).tolist()
[False, False, False]
"""

from __future__ import annotations

import numpy as np

__all__ = ["treated"]


def treated(B, name: str, treat: str, assignment: dict | None) -> np.ndarray:
    """Per person: treated in experiment ``name`` under mode ``treat``."""
    n = B["n"]
    if treat == "none" or name not in B["sc"].experiments:
        return np.zeros(n, dtype=bool)
    eligible = B["eligible"][name]
    if treat == "all":
        return eligible
    return eligible & assignment[name]
