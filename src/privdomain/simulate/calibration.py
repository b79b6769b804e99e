"""The headline figure of each preset, measured directly on simulated events: the registry.

:data:`HEADLINES` is the one registry of the five headline figures: the simulator's
calibration measures them here, and the case-study reports
(:data:`privdomain.reports.cases.HEADLINE_FIGURES`) draw a figure for each of these
names, measuring the same quantity.

Plain pandas on the events (independent of the package's metric modules), so a
preset can be checked against the case figure it is calibrated to:

* ``touchpoints_per_buyer`` (beauty): mean number of distinct touchpoints a buyer
  had before their first purchase (transaction steps product_view, add_to_cart,
  order, pay, refund not counted), over buyers: per consumer, as the articles count
  (:func:`buyer_touchpoints` gives the per-buyer numbers). Case: "more than five
  points on average".
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from .scenario import Scenario

__all__ = [
    "TRANSACTION",
    "Headline",
    "HEADLINES",
    "buyer_touchpoints",
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


def buyer_touchpoints(ev: pd.DataFrame) -> pd.Series:
    """Per buyer (index ``person_id``): distinct touchpoints before the first pay.

    >>> ev = pd.DataFrame({"person_id": [1, 1, 1, 1, 2], "ts": pd.to_datetime(["2024-01-01", "2024-01-02",
    ...     "2024-01-03", "2024-01-04", "2024-01-01"]), "touchpoint": ["sms", "sms", "oa_push", "pay", "pay"]})
    >>> buyer_touchpoints(ev).to_dict()
    {1: 2, 2: 0}
    """
    tp = ev["touchpoint"].astype(str)
    first = ev[tp == schema.PURCHASE].groupby("person_id")["ts"].min().rename("first_pay")
    e = ev[~tp.isin(TRANSACTION)].merge(first, left_on="person_id", right_index=True)
    before = e[e["ts"] < e["first_pay"]]
    distinct = before.groupby("person_id")["touchpoint"].nunique()
    return distinct.reindex(first.index, fill_value=0).astype("int64").rename("touchpoints")


def touchpoints_per_buyer(ev: pd.DataFrame) -> float:
    """Mean distinct touchpoints before the first pay, over buyers (:func:`buyer_touchpoints`)."""
    return float(buyer_touchpoints(ev).mean())


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


def _article_rates_outside_redesign(sc: Scenario, ev: pd.DataFrame) -> dict[str, float]:
    ex = sc.experiments.get("article_redesign")
    window = None
    if ex is not None:
        s = pd.Timestamp(ex["start"], tz=schema.TIMEZONE)
        window = (s, s + pd.Timedelta(days=ex["days"]))
    return article_rates(ev, window)


@dataclass(frozen=True)
class Headline:
    """One headline figure: its name, what it is, and how the simulator measures it."""

    name: str
    label: str
    measure: Callable[[Scenario, pd.DataFrame], Any]


#: The five headline figures, by the name a scenario's ``calibration.headline`` and
#: ``cases.yaml`` use.
HEADLINES: dict[str, Headline] = {h.name: h for h in (
    Headline("repurchase_lift", "relative lift in repurchase rate 复购率相对提升",
             lambda sc, ev: repurchase_lift(ev, sc.experiments["coupon_tiers"]["start"])),
    Headline("guide_order_share", "guide order share 导购订单占比", lambda sc, ev: guide_order_share(ev)),
    Headline("article_rates", "the three article rates 图文三率", _article_rates_outside_redesign),
    Headline("roi_30d_over_same_day", "30-day ROI / same-day ROI 30天ROI ÷ 当日ROI",
             lambda sc, ev: roi_30d_over_same_day(ev)),
    Headline("touchpoints_per_buyer", "distinct touchpoints per buyer before the first purchase 每位买家触点数",
             lambda sc, ev: touchpoints_per_buyer(ev)),
)}


def headline(sc: Scenario, ev: pd.DataFrame) -> Any:
    """The preset's headline figure measured on its events (:data:`HEADLINES`)."""
    h = sc.calibration["headline"]
    if h not in HEADLINES:
        raise ValueError(f"calibration.headline: unknown headline {h!r}; known: {', '.join(HEADLINES)}")
    return HEADLINES[h].measure(sc, ev)


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
