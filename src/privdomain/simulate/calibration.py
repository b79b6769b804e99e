"""The headline figure of each preset, measured directly on simulated events.

Plain pandas on the events (independent of the package's metric modules), so a
preset can be checked against the case figure it is calibrated to:

* ``touchpoints_per_buyer`` (beauty): mean number of distinct touchpoints a buyer
  had before their first purchase (transaction steps product_view, add_to_cart,
  order, pay, refund not counted). Case: "more than five points on average".
* ``repurchase_lift`` (tea): repurchase rate in the coupon month / the month
  before, where the rate of month M = persons with a pay in M among persons who
  paid before M. Case: Naixue +35%.
* ``roi_30d_over_same_day`` (sportswear): revenue of pays within 30 days of the
  person's latest earlier ad click / revenue of pays on the same Beijing day as
  that click (spend cancels, so this is the ROI ratio). Case: FILA 2.3x.
* ``article_rates`` (apparel): the three article rates per (person, article):
  opened / received, clicked into the Mini Program / opened, ordered in the
  Mini Program within 1 day of the click / clicked; measured outside the
  redesign experiment, compared with the configured rates.
* ``guide_order_share`` (eyewear): share of pays whose channel is ``guide``.

>>> import pandas as pd
>>> ev = pd.DataFrame({"person_id": [1, 1, 2], "touchpoint": ["pay", "pay", "pay"],
...                    "channel": ["guide", "store", "guide"]})
>>> guide_order_share(ev)
0.6666666666666666
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from .scenario import Scenario

__all__ = [
    "TRANSACTION",
    "touchpoints_per_buyer",
    "repurchase_rate",
    "repurchase_lift",
    "roi_30d_over_same_day",
    "article_rates",
    "guide_order_share",
    "headline",
    "within",
]


TRANSACTION = ["product_view", "add_to_cart", "order", "pay", "refund"]


def touchpoints_per_buyer(ev: pd.DataFrame) -> float:
    """Mean distinct touchpoints before the first pay, over buyers."""
    tp = ev["touchpoint"].astype(str)
    first = ev[tp == schema.PURCHASE].groupby("person_id")["ts"].min().rename("first_pay")
    e = ev[~tp.isin(TRANSACTION)].merge(first, left_on="person_id", right_index=True)
    before = e[e["ts"] < e["first_pay"]]
    distinct = before.groupby("person_id")["touchpoint"].nunique()
    return float(distinct.reindex(first.index, fill_value=0).mean())


def repurchase_rate(ev: pd.DataFrame, month_start: dt.date) -> float:
    """Persons with a pay in the month starting ``month_start`` among persons who paid before it."""
    pays = ev[ev["touchpoint"].astype(str) == schema.PURCHASE]
    s = pd.Timestamp(month_start, tz=schema.TIMEZONE)
    e = s + pd.offsets.MonthBegin(1)
    before = set(pays.loc[pays["ts"] < s, "person_id"])
    during = set(pays.loc[(pays["ts"] >= s) & (pays["ts"] < e), "person_id"])
    return len(before & during) / len(before) if before else float("nan")


def repurchase_lift(ev: pd.DataFrame, month_start: dt.date) -> float:
    """Repurchase rate of the month / the month before."""
    prev = (pd.Timestamp(month_start) - pd.offsets.MonthBegin(1)).date()
    return repurchase_rate(ev, month_start) / repurchase_rate(ev, prev)


def roi_30d_over_same_day(ev: pd.DataFrame) -> float:
    """Revenue within 30 days of the latest earlier ad click / revenue on the click's day."""
    tp = ev["touchpoint"].astype(str)
    clicks = ev.loc[tp.isin(schema.AD_CLICKS), ["person_id", "ts"]].rename(columns={"ts": "click_ts"})
    pays = ev.loc[tp == schema.PURCHASE, ["person_id", "ts", "amount_fen"]]
    clicks = clicks.sort_values("click_ts")
    pays = pays.sort_values("ts")
    m = pd.merge_asof(pays, clicks, left_on="ts", right_on="click_ts", by="person_id", direction="backward")
    m = m[m["click_ts"].notna()]
    amt = m["amount_fen"].astype("float64")
    same_day = m["ts"].dt.date == m["click_ts"].dt.date
    within30 = (m["ts"] - m["click_ts"]) <= pd.Timedelta(days=30)
    return float(amt[within30].sum() / amt[same_day].sum())


def article_rates(ev: pd.DataFrame, exclude: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> dict[str, float]:
    """The three article rates over (person, article) pairs (see the module docstring)."""
    tp = ev["touchpoint"].astype(str)
    oa = ev[tp.isin(["oa_push", "oa_article_open", "mp_click"])]
    if exclude is not None:
        pushed = oa[oa["touchpoint"].astype(str) == "oa_push"]
        bad = pushed.loc[(pushed["ts"] >= exclude[0]) & (pushed["ts"] < exclude[1]), "article_id"].unique()
        oa = oa[~oa["article_id"].isin(bad)]
    pairs = {t: oa.loc[oa["touchpoint"].astype(str) == t, ["person_id", "article_id", "ts"]]
             .drop_duplicates(["person_id", "article_id"]) for t in ["oa_push", "oa_article_open", "mp_click"]}
    orders = ev.loc[(tp == "order") & (ev["channel"].astype(str) == "mini_program"), ["person_id", "ts"]]
    cl = pairs["mp_click"].merge(orders, on="person_id", suffixes=("", "_order"))
    ok = (cl["ts_order"] >= cl["ts"]) & (cl["ts_order"] <= cl["ts"] + pd.Timedelta(days=1))
    converted = cl[ok].drop_duplicates(["person_id", "article_id"])
    n_push, n_open, n_click = (len(pairs[t]) for t in ["oa_push", "oa_article_open", "mp_click"])
    return {"open_rate": n_open / n_push, "click_rate": n_click / n_open, "conversion_rate": len(converted) / n_click}


def guide_order_share(ev: pd.DataFrame) -> float:
    """Share of pays made through a guide."""
    pays = ev[ev["touchpoint"].astype(str) == schema.PURCHASE]
    return float((pays["channel"].astype(str) == "guide").mean())


def headline(sc: Scenario, ev: pd.DataFrame) -> Any:
    """The preset's headline figure measured on its events."""
    h = sc.calibration["headline"]
    if h == "touchpoints_per_buyer":
        return touchpoints_per_buyer(ev)
    if h == "repurchase_lift":
        return repurchase_lift(ev, sc.experiments["coupon_tiers"]["start"])
    if h == "roi_30d_over_same_day":
        return roi_30d_over_same_day(ev)
    if h == "article_rates":
        ex = sc.experiments.get("article_redesign")
        window = None
        if ex is not None:
            s = pd.Timestamp(ex["start"], tz=schema.TIMEZONE)
            window = (s, s + pd.Timedelta(days=ex["days"]))
        return article_rates(ev, window)
    if h == "guide_order_share":
        return guide_order_share(ev)
    raise ValueError(f"calibration.headline: unknown headline {h!r}")


def within(sc: Scenario, value: Any) -> bool:
    """Is the measured headline within the preset's stated tolerance of its target?

    For ``article_rates`` the tolerance is relative, per rate, against the
    configured rates; otherwise it is absolute around ``target``.
    """
    tol = sc.calibration["tolerance"]
    if sc.calibration["headline"] == "article_rates":
        oa = sc.sections["official_account"]
        return all(abs(value[k] / oa[k] - 1.0) <= tol for k in ("open_rate", "click_rate", "conversion_rate"))
    return bool(np.isfinite(value) and abs(value - sc.calibration["target"]) <= tol)
