"""What a simulated purchase buys and pays: the product and the amount.

Product choice: person i picks product k with probability proportional to
``weight_k * (price_k / median_price) ** (-(3 * (s_i - 0.5)))`` where ``s_i`` is
their price sensitivity (sensitive persons lean to cheap items). Quantity is 1,
or 2 with probability ``second_item_rate``. Amount (fen) = price x quantity x
(1 - coupon discount), rounded to whole fen; the discount applies to persons
treated in the ``coupon_tiers`` experiment during its window
(:func:`privdomain.simulate.arms.treated`).

>>> from privdomain.simulate.scenario import load_scenario
>>> bool(products_frame(load_scenario("tea"))["price_fen"].min() > 0)
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .arms import treated
from .scenario import Scenario

__all__ = ["products_frame", "amounts"]


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
