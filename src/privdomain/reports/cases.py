"""The case registry and the case-study glue: each case's story, its headline figure
and the advice drawn from the evidence.

The story of each case (brand, what it did, the figure the trade articles reported,
the journey, what an operator should do next) is text kept in
``notebooks/cases.yaml``; :func:`case_story` reads it. The reported figures are the
articles' (see ``docs/domain.md``), not results of this package.

The metrics these notebooks share live in their rooms (``attribution.top_paths``,
``attribution.journey_stats``, ``attribution.roi_by_window``, ``boards.channel_cube.order_channels``...);
the old names here stay for one release.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..attribution.paths import channel_transitions, journey_stats, top_paths
from ..attribution.windows import roi_by_window, roi_ratio_interval, total_roi_curve
from ..boards.channel_cube import guide_table, order_channels, orders_by_buyer_type
from ..boards.officialaccount import article_rates_by_arm
from ..contract import events_input
from ..simulate import calibration as _calibration

__all__ = [
    "case_story",
    "arm_rates",
    "arm_lifts",
    "calibration_check",
    "HEADLINE_FIGURES",
    "headline_figure",
    "channel_evidence",
    "channel_advice",
    "reported_table",
    "recommendations",
    "limitations",
    "footer",
    "campaign_roi_table",
]


# The metrics above lived here before they moved to their rooms; the names stay for one
# release (``cases.top_paths`` is ``attribution.top_paths``).
_MOVED_METRICS = (channel_transitions, journey_stats, top_paths, roi_by_window, roi_ratio_interval, total_roi_curve,
                  order_channels, orders_by_buyer_type, guide_table, article_rates_by_arm)


def case_story(case: str, path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The narrative of one case from ``cases.yaml`` (default: the notebooks folder's).

    Raises
    ------
    ValueError
        For a case the file does not describe (the message lists those it does).
    """
    import yaml

    from .runner import notebooks_dir

    path = Path(path) if path else notebooks_dir() / "cases.yaml"
    stories = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if case not in stories:
        raise ValueError(f"{path} has no story for case {case!r}; it has {', '.join(stories)}")
    return {"case": case, **stories[case]}


# ---------------------------------------------------------------------- headline figures


def _roi_windows_figure(ds: Any, windows: list[int]) -> dict[str, Any]:
    from .. import attribution, plotting

    ws = sorted(set(windows) | {0, 30})
    by_window = roi_by_window(attribution.ad_attribution(ds, campaigns=ds, windows=ws))
    curve = total_roi_curve(attribution.roi_curve(ds, campaigns=ds, horizon=f"{max(ws)}D"))
    ax = plotting.line(curve, "day", "over_same_day", marker=None,
                       title="30天ROI与当日ROI之比 revenue credited by day since the click, as a multiple of same-day")
    for w in ws:
        d = max(w - 1, 0)  # curve day d holds the revenue of window d + 1 (window 0 = same day = day 0)
        if d < len(curve):
            v = curve["over_same_day"].iloc[d]
            ax.scatter([d], [v], color=plotting.PALETTE[3], zorder=3)
            ax.annotate(f"{'same day' if w == 0 else f'{w} days'}: {v:.2f}x", (d, v), textcoords="offset points",
                        xytext=(5, -14), fontsize=9)
    ax.set_xlabel("days since the ad click (0 = the same day) 点击后天数")
    ax.set_ylabel("x same-day revenue 当日倍数")
    value = float(by_window.loc[by_window["window"] == 30, "over_same_day"].iloc[0])
    per = attribution.ad_attribution(ds, campaigns=ds, windows=[0, 30])
    per = per[per["level"] == "campaign"] if "level" in per else per
    low, high, n_camp = roi_ratio_interval(per)
    return {"value": value, "text": f"{value:.2f} x", "label": "30-day ROI / same-day ROI 30天ROI ÷ 当日ROI",
            "table": by_window, "ax": ax,
            "measured": {"quantity": "30-day ROI / same-day ROI (all campaigns)", "value": value, "low": low,
                         "high": high, "n": int(by_window["orders"].iloc[-1]), "n_label": "orders",
                         "interval": f"bootstrap over the {n_camp} campaigns"},
            "definition": "30天ROI ÷ 当日ROI (30-day over same-day ROI) = `revenue credited within 30 days / revenue "
                          "credited the same day` (spend is the same in both, so the ROI ratio is the revenue ratio)."}


def _touchpoints_figure(ds: Any, windows: list[int]) -> dict[str, Any]:
    from .. import plotting
    from ..simulate import calibration

    # the registry's definition (per consumer, as the articles count), measured as the simulator measures it
    per = calibration.buyer_touchpoints(ds.read("events", columns=["person_id", "ts", "touchpoint"]))
    buyers = len(per)
    hist = per.clip(upper=15).value_counts().sort_index().rename_axis("touchpoints").reset_index(name="buyers")
    ax = plotting.bar(hist, "touchpoints", "buyers",
                      title="每位买家触点数分布 distinct touchpoints before the first purchase (15 = 15 or more)")
    ax.set_xlabel("distinct touchpoints before the first purchase 首购前触点数")
    ax.set_ylabel("buyers 买家数")
    mean = float(per.mean()) if buyers else float("nan")
    half = 1.96 * float(per.std(ddof=1)) / np.sqrt(buyers) if buyers > 1 else float("nan")
    share5 = plotting.rate_intervals(pd.DataFrame({"k": [int((per > 5).sum())], "n": [buyers]}), "k", "n").iloc[0]
    table = pd.DataFrame([{"buyers": buyers, "touchpoints_per_buyer": mean, "median": float(per.median()),
                           "share_over_5": float(share5["rate"])}])
    return {"value": mean, "text": f"{mean:.1f}", "label": calibration.HEADLINES["touchpoints_per_buyer"].label,
            "table": table, "ax": ax,
            "measured": {"quantity": "distinct touchpoints per buyer before the first purchase (mean)", "value": mean,
                         "low": mean - half, "high": mean + half, "n": buyers, "n_label": "buyers",
                         "interval": "normal approximation", "share_over_5": float(share5["rate"]),
                         "share_over_5_low": float(share5["low"]), "share_over_5_high": float(share5["high"])},
            "definition": "每位买家触点数 touchpoints per buyer = `Σ over buyers of the distinct touchpoints they had "
                          "before their first purchase / buyers` (transaction steps: product view, cart, order, pay, "
                          "refund are not touchpoints), the articles' per-consumer count and the simulator's "
                          "calibration measure."}


def _repurchase_lift_figure(ds: Any, windows: list[int]) -> dict[str, Any]:
    from .. import experiments as ex
    from .. import plotting

    name = sorted(ds.read("assignments")["experiment"].unique())[0]
    frame = ex.campaign_frame(ds, name)
    table = arm_rates(frame, "repurchased")
    ax = plotting.bar_ci(table, "segment", "rate", hue="arm",
                         title=f"复购率: 实验组 vs 对照组 repurchase rate, treatment vs holdout ({name})")
    plotting.percent_axis(ax)
    ax.set_xlabel("coupon tier 会员分层")
    ax.set_ylabel("repurchase rate 复购率")
    lifts = arm_lifts(table)
    overall = lifts.iloc[0]
    value = float(overall["relative"])
    rel_low = rel_high = float("nan")
    t = table[(table["segment"] == "all 全部") & (table["arm"] == "treatment")]
    h = table[(table["segment"] == "all 全部") & (table["arm"] != "treatment")]
    if len(t) and len(h) and int(t["successes"].sum()) > 0 and int(h["successes"].sum()) > 0:
        from statsmodels.stats.proportion import confint_proportions_2indep

        lo, hi = confint_proportions_2indep(int(t["successes"].sum()), int(t["n"].sum()), int(h["successes"].sum()),
                                            int(h["n"].sum()), compare="ratio", method="log")
        rel_low, rel_high = float(lo) - 1, float(hi) - 1
    return {"value": value, "text": f"{value:+.0%}" if value == value else "n/a",
            "label": "relative lift in repurchase rate 复购率相对提升",
            "table": table, "lifts": lifts, "ax": ax, "experiment": name,
            "warning": plotting.small_warning(table, ["segment", "arm"]),
            "measured": {"quantity": "relative lift in repurchase rate, treatment vs holdout, 30 days",
                         "value": value, "low": rel_low, "high": rel_high, "n_label": "persons assigned",
                         "n": int(overall["n_treatment"] + overall["n_holdout"]), "interval": "log ratio (Katz)",
                         "diff": float(overall["diff"]), "diff_low": float(overall["low"]),
                         "diff_high": float(overall["high"])},
            "definition": "复购率相对提升 relative lift = `(repurchase rate of treatment - repurchase rate of holdout) "
                          "/ repurchase rate of holdout`, over the 30 days after assignment; a person repurchased "
                          "when they paid in the window and had at least two purchases counting the earlier ones. "
                          "Error bars: 95% Wilson intervals; the difference (绝对提升, in pp) has a 95% Newcombe "
                          "interval."}


def arm_rates(frame: pd.DataFrame, outcome: str, segment: str = "segment") -> pd.DataFrame:
    """Rate of a 0/1 ``outcome`` per tier and arm, with n and a 95% Wilson interval.

    ``frame`` has one row per assigned person with ``arm``, ``outcome`` and (optionally)
    ``segment``; a first block ``all 全部`` pools the tiers. Returns ``segment``, ``arm``,
    ``n``, ``successes``, ``rate``, ``low``, ``high``, ``too_small``
    (:func:`privdomain.plotting.rate_intervals`).

    >>> f = pd.DataFrame({"arm": ["treatment"] * 4 + ["holdout"] * 2, "segment": ["a", "a", "b", "b", "a", "b"],
    ...                   "y": [1, 0, 1, 1, 0, 1]})
    >>> arm_rates(f, "y")[["segment", "arm", "n", "successes"]].values.tolist()[:2]
    [['all 全部', 'holdout', 2, 1], ['all 全部', 'treatment', 4, 3]]
    """
    from .. import plotting

    y = frame[outcome].astype(float)
    base = frame.assign(_y=y)
    overall = base.groupby("arm", as_index=False).agg(n=("_y", "size"), successes=("_y", "sum"))
    overall.insert(0, "segment", "all 全部")
    parts = [overall]
    tiers: list[str] = []
    if segment in frame:
        by = base.groupby([segment, "arm"], as_index=False).agg(n=("_y", "size"), successes=("_y", "sum"))
        parts.append(by.rename(columns={segment: "segment"}))
        order = frame.groupby(segment)["prior_purchases"].mean().sort_values() if "prior_purchases" in frame \
            else frame.groupby(segment).size().sort_index()
        tiers = [str(t) for t in order.index]
    table = pd.concat(parts, ignore_index=True)
    table["segment"] = table["segment"].astype(str)
    table["segment"] = pd.Categorical(table["segment"], ["all 全部", *tiers], ordered=True)
    table["n"] = table["n"].astype("int64")
    table["successes"] = table["successes"].round().astype("int64")
    table = table.sort_values(["segment", "arm"]).reset_index(drop=True)
    table["segment"] = table["segment"].astype(str)
    return plotting.rate_intervals(table, "successes", "n")


def arm_lifts(rates: pd.DataFrame, treatment: str = "treatment", control: str = "holdout") -> pd.DataFrame:
    """Per tier of :func:`arm_rates`: the difference of rates (pp) with its 95% Newcombe
    interval and the relative lift (%); ``too_small`` when either arm is too small.

    >>> r = arm_rates(pd.DataFrame({"arm": ["treatment"] * 100 + ["holdout"] * 100,
    ...                             "y": [1] * 60 + [0] * 40 + [1] * 40 + [0] * 60}), "y")
    >>> round(float(arm_lifts(r)["diff"].iloc[0]), 2)
    0.2
    """
    from .. import plotting

    rows = []
    for seg, g in rates.groupby("segment", sort=False):
        t = g[g["arm"] == treatment]
        c = g[g["arm"] != treatment] if control not in set(g["arm"]) else g[g["arm"] == control]
        k1, n1 = (int(t["successes"].sum()), int(t["n"].sum()))
        k0, n0 = (int(c["successes"].sum()), int(c["n"].sum()))
        d = plotting.difference_interval(k1, n1, k0, n0)
        rows.append({"segment": seg, "n_treatment": n1, "n_holdout": n0, "rate_treatment": k1 / n1 if n1 else np.nan,
                     "rate_holdout": k0 / n0 if n0 else np.nan, **d})
    return pd.DataFrame(rows)


def _guide_share_figure(ds: Any, windows: list[int]) -> dict[str, Any]:
    from .. import plotting

    table = order_channels(ds)
    shown = plotting.rate_intervals(table.assign(n=int(table["orders"].sum())), "orders", "n")
    ax = plotting.bar_ci(shown, "channel", "rate", flag=None,
                         title="下单渠道占比 where the orders happened (share of paid orders)")
    plotting.percent_axis(ax)
    ax.set_xlabel("")
    ax.set_ylabel("share of paid orders 订单占比")
    row = shown[shown["channel"] == "guide"]
    value = float(row["rate"].iloc[0]) if len(row) else 0.0
    low, high = (float(row["low"].iloc[0]), float(row["high"].iloc[0])) if len(row) else (float("nan"),) * 2
    return {"value": value, "text": f"{value:.0%}", "label": "guide order share 导购订单占比",
            "table": shown.drop(columns=["rate"]), "ax": ax, "guides": guide_table(ds),
            "measured": {"quantity": "guide order share (not GMV growth)", "value": value, "low": low, "high": high,
                         "n": int(table["orders"].sum()), "n_label": "paid orders", "interval": "Wilson"},
            "definition": "导购订单占比 guide order share = `paid orders placed through a WeCom guide / all paid "
                          "orders` (the channel of the pay event); 95% Wilson interval over the paid orders."}


def _article_rates_figure(ds: Any, windows: list[int]) -> dict[str, Any]:
    from .. import plotting
    from ..simulate import load_scenario

    name = sorted(ds.read("assignments")["experiment"].unique())[0]
    days = load_scenario(ds.manifest["scenario"]).experiments.get(name, {}).get("days")
    table = article_rates_by_arm(ds, name, window=f"{days}D" if days else None)
    shown = plotting.rate_intervals(table.rename(columns={"opened": "n"}), "clicked", "n")
    ax = plotting.bar_ci(shown, "arm", "rate",
                         title=f"改版前后图文点击率 article click rate: redesigned (treatment) vs old (holdout), {name}")
    plotting.percent_axis(ax)
    ax.set_xlabel("")
    ax.set_ylabel("article click rate 图文点击率")
    rows = shown.set_index("arm")
    t, h = rows.loc["treatment"] if "treatment" in rows.index else None, rows.loc["holdout"] if "holdout" in \
        rows.index else None
    value = float(t["rate"] / h["rate"]) if t is not None and h is not None and h["rate"] > 0 else float("nan")
    low = high = float("nan")
    if t is not None and h is not None and t["n"] > 0 and h["n"] > 0 and t["clicked"] > 0 and h["clicked"] > 0:
        from statsmodels.stats.proportion import confint_proportions_2indep

        low, high = (float(v) for v in confint_proportions_2indep(t["clicked"], t["n"], h["clicked"], h["n"],
                                                                  compare="ratio", method="log"))
    return {"value": value, "text": f"{value:.2f} x" if value == value else "n/a",
            "label": "article click rate, redesigned / old articles 图文点击率倍数",
            "table": shown.rename(columns={"n": "opened"}), "ax": ax, "experiment": name,
            "warning": plotting.small_warning(shown, "arm"),
            "measured": {"quantity": "article click rate, redesigned / old (ratio)", "value": value,
                         "low": low, "high": high, "n": int(shown["n"].sum()), "n_label": "opened articles",
                         "interval": "log ratio (Katz)"},
            "definition": "图文点击率 article click rate = `(person, article) pairs clicked into the Mini Program / "
                          f"pairs opened`, for articles pushed in the {days} days after assignment (the redesign "
                          "window); the multiple is `click rate of the redesigned articles (treatment) / click rate "
                          "of the old ones (holdout)`. Error bars: 95% Wilson intervals; the multiple has a 95% "
                          "log-ratio interval."}


def calibration_check(ds: Any, scenario: str) -> dict[str, Any]:
    """The scenario's calibration: the case figure it was tuned to and its value on ``ds``.

    Uses the simulator's own measurement (:func:`privdomain.simulate.calibration.headline`,
    plain pandas on the events). Returns ``figure`` (the articles' claim as the scenario
    states it), ``headline``, ``target``, ``tolerance``, ``value`` and ``within``.
    """
    from ..simulate import calibration, load_scenario

    sc = load_scenario(scenario)
    ev = ds.read("events", columns=["person_id", "ts", "touchpoint", "channel", "article_id", "amount_fen"])
    value = calibration.headline(sc, ev)
    cal = sc.calibration
    return {"figure": cal["figure"], "headline": cal["headline"], "target": cal["target"],
            "tolerance": cal["tolerance"], "persons": cal.get("persons"), "value": value,
            "within": calibration.within(sc, value)}


_FIGURES = {
    "repurchase_lift": _repurchase_lift_figure,
    "guide_order_share": _guide_share_figure,
    "article_rates": _article_rates_figure,
    "roi_30d_over_same_day": _roi_windows_figure,
    "touchpoints_per_buyer": _touchpoints_figure,
}
#: The figure of each headline of the one registry, :data:`privdomain.simulate.calibration.HEADLINES`
#: (a headline added there without a figure here fails at import).
HEADLINE_FIGURES = {name: _FIGURES[name] for name in _calibration.HEADLINES}


def headline_figure(ds: Any, headline: str, windows: list[int] | None = None) -> dict[str, Any]:
    """The figure a case is known for, computed on its dataset.

    Returns ``value`` (the headline number), ``text`` (it formatted), ``label``, ``definition`` (Markdown with
    the formula), ``table`` (the numbers behind the figure) and ``ax`` (the figure).
    Headlines: see :data:`HEADLINE_FIGURES`.
    """
    if headline not in HEADLINE_FIGURES:
        raise ValueError(f"no headline figure {headline!r}; known: {', '.join(HEADLINE_FIGURES)}")
    return HEADLINE_FIGURES[headline](ds, list(windows or [0, 7, 15, 30]))


# --------------------------------------------------------------------------- advice from evidence
@events_input
def channel_evidence(events: Any, credit: pd.DataFrame | None = None, draws: int = 1000) -> dict[str, Any]:
    """Calibrated channel credit, and each model's score against the truth when the data has one.

    Returns ``{"calibrated": frame or None, "scores": frame or None, "table": frame}``:
    ``calibrated`` from :func:`privdomain.attribution.calibrated` (None without lift
    tests), ``scores`` from :func:`privdomain.attribution.score` for ``credit`` (the
    observational models' tidy output) plus ``calibrated`` (None without
    ``truth/incrementality.parquet``), and ``table``: per channel the true
    incremental share (when known), the calibrated share with its interval and
    source, and each model's share, side by side.
    """
    from .. import attribution

    cal = attribution.calibrated(events, draws=draws) if _has_lift_tests(events) else None
    models = credit if credit is not None else pd.DataFrame(columns=["channel", "model", "share", "share_value"])
    both = pd.concat([models, cal[["channel", "model", "share", "share_value"]]], ignore_index=True) \
        if cal is not None else models
    scores = None
    truth_file = Path(os.fspath(events)) / "truth" / "incrementality.parquet" if isinstance(
        events, (str, os.PathLike)) else None
    table = both.pivot_table(index="channel", columns="model", values="share", aggfunc="sum") if len(both) else \
        pd.DataFrame()
    table = table.drop(index=[c for c in ("direct", "mini_program") if c in table.index])
    if truth_file is not None and truth_file.exists() and len(both):
        scores = attribution.score(both, events)
        t = pd.read_parquet(truth_file).set_index("channel")["share_conversions"]
        table.insert(0, "true incremental", t / t.sum())
    if cal is not None:
        c = cal.set_index("channel")
        table["calibrated 95% low"] = c["share_low"]
        table["calibrated 95% high"] = c["share_high"]
        table["calibrated source"] = c["source"]
    return {"calibrated": cal, "scores": scores, "table": table}


@events_input
def _has_lift_tests(events: Any) -> bool:
    from ..attribution.lift import lift_channels

    try:
        return bool(lift_channels(events))
    except (ValueError, OSError):
        return False


def channel_advice(calibrated: pd.DataFrame | None, scores: pd.DataFrame | None = None,
                   observational: str = "shapley", observational_share: pd.Series | None = None) -> list[str]:
    """What an operator may conclude about channel budgets, and on what evidence.

    * With lift-calibrated credit: the channel with the largest calibrated share,
      with its 95% interval; a budget statement only when that channel's share
      rests on a lift test; when it rests on the observational model, the
      statement says so ("correlation is not causation: run a lift test").
    * No budget move is recommended from a model that scores worse than
      ``uniform`` against the simulator's truth (``scores``, when known).
    * Without lift tests: no budget move at all, only the observational model's
      largest share labelled as such and the advice to run a lift test.

    Examples
    --------
    >>> import pandas as pd
    >>> cal = pd.DataFrame({"channel": ["ads", "sms"], "share": [0.7, 0.3], "share_low": [0.6, 0.2],
    ...                     "share_high": [0.8, 0.4], "source": ["lift test", "markov rescaled"]})
    >>> channel_advice(cal)[0].startswith("**ads** has the largest incremental share")
    True
    """
    from ..glossary import display_name  # channels and models by their display names, not their ids

    out: list[str] = []
    if calibrated is None or calibrated.empty:
        if observational_share is not None and len(observational_share):
            top = display_name(observational_share.idxmax(), "channel")
            out.append(f"The observational {display_name(observational, 'model')} model gives **{top}** the largest share "
                       f"({float(observational_share.max()):.0%}); that is credit for being on the journeys, not "
                       f"proof it caused them (correlation is not causation): run a lift test before moving budget.")
        else:
            out.append("No lift test in this data: no budget move can be supported; run a lift test first.")
        return out

    def worse(model: str) -> bool:
        if scores is None:
            return False
        r = scores[(scores["model"] == model) & (scores["truth"] == "incremental")
                   & (scores["metric"] == "conversions")]
        return bool(len(r)) and bool(r["worse_than_uniform"].iloc[0])

    c = calibrated.sort_values("share", ascending=False)
    top = c.iloc[0]
    shown = f"{top['share']:.0%} (95% interval {top['share_low']:.0%} to {top['share_high']:.0%})"
    if worse("calibrated"):
        out.append("Calibrated credit scores worse than giving every channel equal credit on this data: no budget "
                   "move is recommended from it; test the largest untested channels.")
    elif top["source"] == "lift test":
        out.append(f"**{display_name(top['channel'], 'channel')}** has the largest incremental share, {shown}, "
                   f"measured by a lift test "
                   f"(randomised holdout): protect its budget, and keep the holdout to track it.")
    else:
        med = float(top["mediated"]) if "mediated" in c.columns and "conversions" in c.columns else 0.0
        acq = float(top["acquired"]) if "acquired" in c.columns and "conversions" in c.columns else 0.0
        conv = float(top["conversions"]) if "conversions" in c.columns else 0.0
        parts = []
        if med > 0 and conv > 0:
            parts.append(f"{med / conv:.0%} of it is the lift-tested effect of the channels it recruits members into")
        if acq > 0 and conv > 0:
            parts.append(f"{acq / conv:.0%} is credit the lift tests showed the channels retouching the customers "
                         f"it acquired did not cause")
        part = f" ({'; '.join(parts)}; the rest is the observational model's)" if parts else ""
        out.append(f"**{display_name(top['channel'], 'channel')}** has the largest calibrated share, {shown}, but "
                   f"this rests on an "
                   f"observational model ({top['source']}){part}: correlation is not causation: run a lift test "
                   f"before moving budget on it.")
    untested = c.loc[c["source"] != "lift test", "channel"].tolist()
    if untested:
        out.append("Untested channels (their credit rests on an observational model): "
                   + ", ".join(f"**{display_name(u, 'channel')}**" for u in untested) + ".")
    if scores is not None and observational and worse(observational):
        out.append(f"The {display_name(observational, 'model')} model scores worse than equal credit against the "
                   f"simulator's truth here: "
                   f"do not move budget on it.")
    return out


# --------------------------------------------------------------------------- case-study structure
def _fmt(value: float, unit: str) -> str:
    if value is None or value != value or not np.isfinite(value):
        return "n/a"
    if unit == "%":
        return f"{value:.1%}"
    if unit == "+%":
        return f"{value:+.0%}"
    if unit == "x":
        return f"{value:.2f} x"
    return f"{value:.1f}"


_UNITS = {"repurchase_lift": "+%", "guide_order_share": "%", "article_rates": "x", "roi_30d_over_same_day": "x",
          "touchpoints_per_buyer": ""}


def reported_table(story: dict[str, Any], head: dict[str, Any]) -> pd.DataFrame:
    """The articles' figure beside the simulated one: one row with ``reported``,
    ``simulated`` (measured as the headline figure measures it), ``n``, ``95% interval``,
    ``same measure`` (yes / no) and ``note`` (how it is measured, or why the data cannot
    test the articles' figure).

    >>> story = {"headline": "guide_order_share", "reported": "GMV x4",
    ...          "comparison": {"reported": "GMV x4", "testable": False, "note": "no year before"}}
    >>> head = {"measured": {"quantity": "guide order share", "value": 0.3, "low": 0.2, "high": 0.4, "n": 50,
    ...                      "n_label": "paid orders", "interval": "Wilson"}}
    >>> reported_table(story, head)[["simulated", "95% interval", "same measure"]].values.tolist()
    [['guide order share: 30.0%', '20.0% to 40.0% (Wilson)', 'no: the data cannot test the reported figure']]
    """
    m = head.get("measured", {})
    comp = story.get("comparison", {})
    unit = _UNITS.get(story["headline"], "")
    interval = (f"{_fmt(m.get('low'), unit)} to {_fmt(m.get('high'), unit)} ({m.get('interval', '95%')})"
                if m.get("low") == m.get("low") and m.get("low") is not None else "n/a (too few data)")
    same = bool(comp.get("testable", False))
    return pd.DataFrame([{
        "reported (articles)": comp.get("reported", story.get("reported", "")),
        "simulated": f"{m.get('quantity', head.get('label', ''))}: {_fmt(m.get('value'), unit)}",
        "n": f"{int(m.get('n', 0)):,} {m.get('n_label', '')}".strip(),
        "95% interval": interval,
        "same measure": "yes" if same else "no: the data cannot test the reported figure",
        "note": comp.get("note", ""),
    }])


def recommendations(story: dict[str, Any], head: dict[str, Any], *, lapsed_share: float | None = None,
                    thresholds: dict[str, Any] | None = None, article_rates: dict[str, float] | None = None,
                    touches: dict[str, float] | None = None) -> list[str]:
    """Recommendations computed from the case's results (Markdown bullets).

    Each bullet cites the number it rests on; a result whose interval includes no
    effect, or a group too small to judge, yields "no evidence" rather than advice.

    >>> head = {"lifts": pd.DataFrame({"segment": ["all 全部", "a"], "diff": [0.05, 0.0], "low": [0.01, -0.2],
    ...         "high": [0.09, 0.2], "too_small": [False, True], "n_treatment": [900, 20], "n_holdout": [100, 5]})}
    >>> out = recommendations({"headline": "repurchase_lift"}, head)
    >>> "+5.0 pp" in out[0], "too small" in out[1]
    (True, True)
    """
    from .. import plotting

    out: list[str] = []
    h = story["headline"]
    m = head.get("measured", {})
    if h == "repurchase_lift" and "lifts" in head:
        for _, r in head["lifts"].iterrows():
            seg = r["segment"]
            shown = f"{plotting.pp(r['diff'])} ({plotting.interval_text(r['low'], r['high'], 'pp')})"
            if r["too_small"]:
                out.append(f"Tier **{seg}**: {shown} with n = {int(r['n_treatment']):,} treated and "
                           f"{int(r['n_holdout']):,} held out: too small to judge; enlarge its holdout before "
                           f"deciding about this tier's coupon.")
            elif r["low"] > 0:
                out.append(f"Tier **{seg}**: the coupon raised repurchase by {shown}: keep it, with a holdout.")
            elif r["high"] < 0:
                out.append(f"Tier **{seg}**: repurchase fell by {shown}: stop or change this tier's coupon.")
            else:
                out.append(f"Tier **{seg}**: {shown}, the interval includes no effect: no evidence that the "
                           f"coupon works here; do not scale it up.")
    elif h == "roi_30d_over_same_day" and m:
        ratio, low = m.get("value", float("nan")), m.get("low", float("nan"))
        if low == low and low > 1:
            out.append(f"The same-day view misses revenue: 30-day revenue is {ratio:.2f} x the same day "
                       f"(95% interval from {low:.2f} x): judge campaigns on 7 to 30 days, not on the same day.")
        else:
            out.append(f"30-day revenue is {ratio:.2f} x the same day, but the interval reaches 1 x: the long tail "
                       f"is not established on this data.")
        table = head.get("table")
        if table is not None and len(table):
            last = table.iloc[-1]
            out.append(f"At {int(last['window'])} days all campaigns return ROI (revenue / spend) "
                       f"{last['roi']:.2f} x on {int(last['orders']):,} orders"
                       + (": spend covers less than its revenue; cut the weakest campaigns." if last["roi"] < 1
                          else "."))
    elif h == "article_rates" and article_rates:
        names = {"open_rate": "打开率 open rate", "click_rate": "图文点击率 article click rate",
                 "conversion_rate": "图文下单率 article order rate"}
        weakest = min(names, key=lambda k: article_rates.get(k, 1.0))
        out.append(f"The weakest article rate is {names[weakest]} at {article_rates[weakest]:.1%}: work on it first.")
        if m.get("low") == m.get("low") and m.get("low") is not None:
            verdict = ("the redesign raised the click rate: roll it out" if m["low"] > 1 else
                       "the redesign's effect is not established (the interval includes 1 x): keep testing")
            out.append(f"Redesigned / old click rate {m['value']:.2f} x (95% interval {m['low']:.2f} to "
                       f"{m['high']:.2f} x): {verdict}.")
    elif h == "guide_order_share":
        if m:
            out.append(f"Guides place {m['value']:.0%} of paid orders ({_fmt(m.get('low'), '%')} to "
                       f"{_fmt(m.get('high'), '%')}): the WeCom add at the store is worth making the default step.")
        guides = head.get("guides")
        if guides is not None and len(guides):
            ok = guides[guides["added"] >= plotting.SMALL_N]
            if len(ok):
                best = ok.sort_values("orders_per_added", ascending=False).iloc[0]
                worst = ok.sort_values("orders_per_added").iloc[0]
                out.append(f"Which guides: guide **{int(best['guide_id'])}** brings {best['orders_per_added']:.2f} "
                           f"orders per added customer ({int(best['added']):,} added), guide "
                           f"**{int(worst['guide_id'])}** {worst['orders_per_added']:.2f} ({int(worst['added']):,} "
                           f"added): study what the first does and coach the second.")
            small = int((guides["added"] < plotting.SMALL_N).sum())
            if small:
                out.append(f"{small} guides added fewer than {plotting.SMALL_N} customers: too few to rank them.")
    elif h == "touchpoints_per_buyer" and touches:
        out.append(f"A purchase takes {touches['touches_per_conversion']:.1f} touches over "
                   f"{touches['channels_per_conversion']:.1f} channels "
                   f"({touches['multi_channel_share']:.0%} of purchases after 2+ channels): judge ads on a 30-day "
                   f"window and a multi-touch model, not on the last click.")
    if lapsed_share is not None and lapsed_share == lapsed_share and thresholds:
        where = (f"no purchase for {thresholds['dormant_days']} days (dormant) or {thresholds['churn_days']} days "
                 f"(churned)")
        if lapsed_share > 0.5:
            out.append(f"{lapsed_share:.0%} of buyers are dormant or churned ({where}): plan a win-back wave "
                       f"(复购召回) to the dormant first, who may still buy.")
        else:
            out.append(f"{lapsed_share:.0%} of buyers are dormant or churned ({where}): no urgent win-back need.")
    return out


def limitations(story: dict[str, Any], head: dict[str, Any], cal: dict[str, Any] | None, persons: int,
                thresholds: dict[str, Any] | None = None) -> list[str]:
    """What the case study cannot say: the simulated data, the case's own caveats
    (``cases.yaml``), and those computed here (too-small groups, the calibration off
    its tolerance, a small run, thresholds taken from few gaps)."""
    out = ["The data are simulated: the numbers show how the metrics behave on a scenario shaped like the case, "
           "not what the brand achieved.",
           "Observational channel credit (last touch, linear, Markov, Shapley) is not causal; only the lift tests' "
           "holdouts measure what a channel caused."]
    out += list(story.get("limitations", []))
    if head.get("warning"):
        out.append(head["warning"].replace("⚠ ", ""))
    if cal is not None and not cal.get("within", True):
        out.append(f"The calibration figure is outside its tolerance at {persons:,} persons (the preset is "
                   f"calibrated at {cal.get('persons') or 'its own size'}): treat the comparison with the articles "
                   f"as indicative.")
    if persons < 2000:
        out.append(f"A small run ({persons:,} persons): intervals are wide and many groups are too small.")
    if thresholds and thresholds.get("source") == "default":
        out.append("No repeat purchases: the lifecycle thresholds fall back to 90 / 180 days.")
    return out


def footer(parameters: dict[str, Any], build_date: str | None = None) -> str:
    """``privdomain <version> · parameters ... · seed ... · built <UTC time>`` (Markdown).

    >>> "seed 7" in footer({"seed": 7, "persons": 500}, "2026-01-01")
    True
    """
    from datetime import UTC, datetime
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("privdomain")
    except PackageNotFoundError:  # pragma: no cover - source checkout without metadata
        ver = "unknown"
    when = build_date or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    params = " · ".join(f"{k} = {v}" for k, v in parameters.items() if k != "seed")
    return (f"<small>privdomain {ver} · {params} · seed {parameters.get('seed', 'n/a')} · built {when}. "
            f"Definitions: docs/glossary.md.</small>")


def campaign_roi_table(roi: pd.DataFrame, ad_credit: pd.DataFrame, window: int = 30) -> pd.DataFrame:
    """Per-campaign ROI (revenue / spend) at ``window`` days with its order count and a 95% interval.

    ``roi`` is :func:`privdomain.attribution.multi_level_roi` (needs ``roi_30d``-style columns),
    ``ad_credit`` the campaign rows of :func:`privdomain.attribution.ad_attribution` (for the
    orders credited at ``window``). The interval is the exact Poisson interval of the order
    count scaled to ROI (``roi · [low, high] / orders``, the order value held fixed): it shows
    how little 8 or 40 orders pin down. ``too_small`` when fewer than
    :data:`privdomain.plotting.SMALL_N` orders. ``long_over_immediate`` is NaN (shown n/a)
    when nothing was credited the same day.

    >>> roi = pd.DataFrame({"campaign_id": [1], "channel": ["ads"], "spend": [100.0], "roi_30d": [2.0]})
    >>> ad = pd.DataFrame({"level": "campaign", "campaign_id": [1], "window": [30], "orders": [8]})
    >>> t = campaign_roi_table(roi, ad)
    >>> t["orders"].tolist(), bool(t["too_small"].iloc[0]), round(float(t["roi_low"].iloc[0]), 2)
    ([8], True, 0.86)
    """
    from scipy.stats import chi2

    from .. import plotting

    col = "roi_same_day" if window == 0 else f"roi_{window}d"
    rows = ad_credit[ad_credit["level"] == "campaign"] if "level" in ad_credit else ad_credit
    orders = rows[rows["window"] == window].groupby("campaign_id")["orders"].sum()
    out = roi.copy()
    out["orders"] = out["campaign_id"].map(orders).fillna(0).astype("int64")
    k = out["orders"].to_numpy(dtype=float)
    lo = np.where(k > 0, chi2.ppf(0.025, 2 * k) / 2, 0.0)
    hi = chi2.ppf(0.975, 2 * (k + 1)) / 2
    r = out[col].astype(float).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["roi_low"] = np.where(k > 0, r * lo / k, np.nan)
        out["roi_high"] = np.where(k > 0, r * hi / k, np.nan)
    out["too_small"] = k < plotting.SMALL_N
    for c in [c for c in out.columns if c.startswith("long_over_immediate")]:
        out[c] = out[c].astype(float).where(np.isfinite(out[c].astype(float)))
    return out
