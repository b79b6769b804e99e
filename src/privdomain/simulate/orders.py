"""The random assignment of experiments and their outcomes in the simulated world.

Experiments (assigned at random per person with a hash of the person's key, i.e.
seeded and independent of the number of processes):

* ``coupon_tiers``: persons reached before the start are put in a tier by their
  paid purchases before the start; within a tier each person is in ``treatment``
  with probability ``1 - holdout``. Treated persons' touches during the window
  convert with probability x ``multiplier`` and pay ``1 - discount`` of the price
  (:func:`privdomain.simulate.basket.amounts`).
* ``article_redesign``: Official Account followers; the redesigned articles
  published during the window are clicked with probability ``click_rate x
  click_multiplier`` (given opened).

Products and amounts are drawn in :mod:`privdomain.simulate.basket` (kept importable
from here: ``products_frame``, ``amounts``).
"""

from __future__ import annotations

import numpy as np

from .basket import amounts, products_frame
from .journeys import INF, K, run_world
from .rng import hash_uniform


def prepare_experiments(B: dict) -> dict:
    """Eligibility, tiers and the random assignment of the block's experiments.

    Sets ``B["eligible"]``, ``B["tier_mult"]``, ``B["tier_discount"]``,
    ``B["tier_name"]`` and returns the assignment (person-level booleans,
    True = treatment).
    """
    sc, n = B["sc"], B["n"]
    B["eligible"] = {}
    B["tier_mult"] = np.ones(n)
    B["tier_discount"] = np.zeros(n)
    B["tier_name"] = np.full(n, "", dtype=object)
    assignment: dict[str, np.ndarray] = {}
    if not sc.experiments:
        return assignment
    base = run_world(B, treat="none")
    pkeys = (B["key"] ^ np.uint64(0xA5A5A5A5)) + np.arange(n, dtype=np.uint64)
    for ename, ex in sc.experiments.items():
        s = (ex["start"] - sc.start).days
        u = hash_uniform(pkeys, 31 + len(ename))
        assignment[ename] = u >= ex["holdout"]
        if ename == "coupon_tiers":
            paid = base["paid"] & (base["purchase_tp"] < s)
            count = np.bincount(base["purchase_person"][paid], minlength=n)
            reached = base["reach"] < s
            elig = np.zeros(n, dtype=bool)
            for tname, tier in ex["tiers"].items():
                m = reached & ~elig & (count >= tier["min_purchases"]) & (count <= tier["max_purchases"])
                B["tier_name"][m] = tname
                B["tier_mult"][m] = tier["multiplier"]
                B["tier_discount"][m] = tier["discount"]
                elig |= m
            B["eligible"][ename] = elig
        else:  # article_redesign: followers of the Official Account
            B["eligible"][ename] = base["joins"]["official_account"] < INF
    B["assignment"] = assignment
    B["base_world"] = base
    return assignment


def repurchase_in_window(B: dict, w: dict, ex: dict) -> np.ndarray:
    """Per person: made a paid purchase during the experiment window."""
    sc = B["sc"]
    s = (ex["start"] - sc.start).days
    m = w["paid"] & (w["purchase_tp"] >= s) & (w["purchase_tp"] < s + ex["days"])
    return np.bincount(w["purchase_person"][m], minlength=B["n"]) > 0


__all__ = ["products_frame", "amounts", "prepare_experiments", "repurchase_in_window", "K"]
