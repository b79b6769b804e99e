"""Products, amounts, coupons and the random assignment of experiments.

Product choice: person i picks product k with probability proportional to
``weight_k * (price_k / median_price) ** (-(3 * (s_i - 0.5)))`` where ``s_i`` is
their price sensitivity (sensitive persons lean to cheap items). Quantity is 1,
or 2 with probability ``second_item_rate``. Amount (fen) = price x quantity x
(1 - coupon discount), rounded to whole fen.

Experiments (assigned at random per person with a hash of the person's key, i.e.
seeded and independent of the number of processes):

* ``coupon_tiers``: persons reached before the start are put in a tier by their
  paid purchases before the start; within a tier each person is in ``treatment``
  with probability ``1 - holdout``. Treated persons' touches during the window
  convert with probability x ``multiplier`` and pay ``1 - discount`` of the price.
* ``article_redesign``: Official Account followers; the redesigned articles
  published during the window are clicked with probability ``click_rate x
  click_multiplier`` (given opened).

>>> from privdomain.simulate.scenario import load_scenario
>>> bool(products_frame(load_scenario("tea"))["price_fen"].min() > 0)
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .journeys import INF, K, hash_uniform, run_world, treated
from .scenario import Scenario


def products_frame(sc: Scenario) -> pd.DataFrame:
    """The ``products`` table of a scenario (ids 1..k in catalogue order)."""
    return pd.DataFrame({
        "product_id": np.arange(1, len(sc.products) + 1, dtype=np.int64),
        "name": [p["name"] for p in sc.products],
        "category": [p["category"] for p in sc.products],
        "price_fen": np.array([round(p["price_yuan"] * 100) for p in sc.products], dtype=np.int64),
    })


def amounts(B, rows, sec, treat, assignment, p_rows=None):
    """Amount paid (fen) and product index (0-based) of each purchase row."""
    sc = B["sc"]
    price = np.array([round(p["price_yuan"] * 100) for p in sc.products], dtype=np.float64)
    w = np.array([p["weight"] for p in sc.products], dtype=np.float64)
    person = B["rows"]["person"][rows]
    tilt = 3.0 * (B["price_sensitivity"][person] - 0.5)
    rel = np.log(price / np.median(price))
    logits = np.log(w)[None, :] - tilt[:, None] * rel[None, :]
    pr = np.exp(logits - logits.max(axis=1, keepdims=True))
    cdf = np.cumsum(pr, axis=1)
    cdf /= cdf[:, -1:]
    product = (sec["u_product"][:, None] > cdf).sum(axis=1)
    product = np.minimum(product, len(price) - 1)
    amount = price[product] * sec["qty"]
    ct = sc.experiments.get("coupon_tiers")
    if ct is not None and treat != "none" and len(rows):
        s = (ct["start"] - sc.start).days
        t = B["rows"]["t"][rows]
        inwin = (t >= s) & (t < s + ct["days"])
        tr = treated(B, "coupon_tiers", treat, assignment)[person] & inwin
        amount = np.where(tr, amount * (1.0 - B["tier_discount"][person]), amount)
    return np.round(amount).astype(np.int64), product


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
