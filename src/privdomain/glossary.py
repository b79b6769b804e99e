"""One glossary for every report: each term's Chinese and English name, definition,
formula and unit.

Every notebook renders its definition tables from :data:`TERMS` with :func:`table`,
and ``docs/glossary.md`` is generated from it with :func:`document` (a test checks
that the file is up to date: ``python -m privdomain.glossary > docs/glossary.md``).

Where the reports used to give one name to several quantities they now have one
name each: 转化率 is split into 购买转化率 (buyers / persons), 步骤转化率 and 总转化率
(funnels), 图文下单率 (article clickers who ordered), 触点转化率 (touched persons who
paid), 路径转化率 (journeys that ended in a purchase) and 实验转化率 (assigned persons
who paid in an experiment window); 点击率 into 图文点击率 (clicked / opened) and 触点点击率
(touched persons who went on to the Mini Program); RFM monetary value into 复购客单价
(mean spend of the repeat purchase days) and 累计消费额 (total spend); ROI is always
``revenue / spend``.

Examples
--------
>>> print(table(["buyer_rate"]).splitlines()[2])
| 购买转化率 buyer conversion rate | share of persons who bought | `buyers / persons` | % |
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import UsageError

__all__ = ["TERMS", "Term", "document", "table", "term"]


@dataclass(frozen=True)
class Term:
    """One glossary entry: ``zh`` and ``en`` names, ``definition``, ``formula`` (plain text) and ``unit``."""

    zh: str
    en: str
    definition: str
    formula: str
    unit: str

    @property
    def name(self) -> str:
        """``"zh en"``, the way the reports label the quantity."""
        return f"{self.zh} {self.en}"


_T = Term
TERMS: dict[str, Term] = {
    # board
    "gmv": _T("成交额", "GMV", "amount paid", "Σ amount_fen of pay events / 100", "yuan"),
    "persons": _T("人数", "persons", "distinct persons in the data", "count of persons", "persons"),
    "buyers": _T("购买人数", "buyers", "persons with at least one pay event", "count of persons with a pay", "persons"),
    "buyer_rate": _T("购买转化率", "buyer conversion rate", "share of persons who bought", "buyers / persons", "%"),
    "aov": _T("客单价", "average order value", "GMV per paid order", "GMV / orders", "yuan"),
    "orders_per_buyer": _T("人均订单", "orders per buyer", "paid orders per buyer", "orders / buyers", "orders"),
    # journeys
    "touches_per_conversion": _T("每单触点数", "touches per conversion",
                                 "touches in a purchase's journey, averaged over purchases",
                                 "Σ touches of converting journeys / conversions", "touches"),
    "channels_per_conversion": _T("每单渠道数", "channels per conversion",
                                  "distinct channels in a purchase's journey, averaged",
                                  "Σ distinct channels / conversions", "channels"),
    "multi_channel_share": _T("多渠道占比", "multi-channel share", "share of purchases whose journey used 2+ channels",
                              "conversions with ≥ 2 channels / conversions", "%"),
    "path_conversion_rate": _T("路径转化率", "path conversion rate",
                               "share of journeys along a route that ended in a purchase", "conversions / journeys",
                               "%"),
    # funnels and articles
    "step_conversion_rate": _T("步骤转化率", "step conversion rate", "share of the previous step that reached this one",
                               "persons(k) / persons(k-1)", "%"),
    "overall_conversion_rate": _T("总转化率", "overall conversion rate", "share of entrants that reached step k",
                                  "persons(k) / persons(1)", "%"),
    "step_persons": _T("步骤人数", "persons at step k", "persons whose reported attempt reached step k",
                       "count of persons", "persons"),
    "time_to_convert": _T("转化时长", "time to convert", "time from step k-1 to step k, median over persons",
                          "median(t_k - t_(k-1))", "hours"),
    "open_rate": _T("打开率", "open rate", "readers who opened the article among those who received it",
                    "opened / received", "%"),
    "article_click_rate": _T("图文点击率", "article click rate",
                             "readers who clicked into the Mini Program among those who opened",
                             "clicked / opened", "%"),
    "article_order_rate": _T("图文下单率", "article order rate",
                             "clickers who paid in the Mini Program within the window after the click "
                             "(1 day on the case boards, 7 days in the funnel report)", "ordered / clicked", "%"),
    # touchpoints
    "touch_events": _T("触点事件数", "events", "touches of the touchpoint", "count of events", "events"),
    "touch_persons": _T("触点人数", "persons touched", "distinct persons who touched it", "count of persons", "persons"),
    "touch_click_through_rate": _T("触点点击率", "touch click-through rate",
                                   "touched persons who went on to the Mini Program within 7 days",
                                   "persons clicked through / persons touched", "%"),
    "touch_conversion_rate": _T("触点转化率", "touch conversion rate", "touched persons who paid within 7 days",
                                "persons converted / persons touched", "%"),
    "orders_7d": _T("7日订单", "orders within 7 days", "pays within 7 days after a touch in the channel (one pay "
                    "counts for every channel touched)", "count of credited pays", "orders"),
    "gmv_7d": _T("7日成交额", "GMV within 7 days", "the amount of those pays", "Σ amount_fen / 100", "yuan"),
    "first_visit_buyers": _T("首访客", "first-visit buyers", "no earlier purchase; first seen on the day of the "
                             "crediting touch", "count of buyers", "persons"),
    "returning_visitor_buyers": _T("回访客", "returning-visitor buyers", "no earlier purchase; seen on an earlier day",
                                   "count of buyers", "persons"),
    "repeat_buyers": _T("复购客", "repeat buyers", "had paid before", "count of buyers", "persons"),
    # experiments
    "experiment_conversion_rate": _T("实验转化率", "experiment conversion rate",
                                     "assigned persons with a purchase in the experiment window",
                                     "persons with ≥ 1 pay in the window / persons assigned", "%"),
    "repurchase_rate": _T("复购率", "repurchase rate", "share of buyers who bought on two or more days",
                          "buyers with ≥ 2 purchase days / buyers", "%"),
    "revenue_per_person": _T("人均成交额", "revenue per person", "yuan paid in the window per assigned person",
                             "Σ amount / 100 / persons", "yuan"),
    "uplift_pp": _T("绝对提升", "uplift (absolute)", "difference of two rates, in percentage points",
                    "rate(treatment) - rate(holdout)", "pp"),
    "relative_lift": _T("相对提升", "relative lift", "uplift over the holdout rate, in percent",
                        "(rate(treatment) - rate(holdout)) / rate(holdout)", "%"),
    "ci95": _T("95%置信区间", "95% confidence interval",
               "range that covers the true value in 95% of repeated samples: Wilson for a rate, "
               "Newcombe for a difference of rates, robust (HC1) for regression effects",
               "estimate ± 1.96 · SE (Wilson/Newcombe for rates)", "as the estimate"),
    "small_group": _T("样本过小", "group too small",
                      "a group with fewer than 30 persons or a 95% interval wider than 30 pp: "
                      "the reports mark it and draw no conclusion from it", "n < 30 or high - low > 0.30", "-"),
    # ROI
    "direct_revenue": _T("直接成交", "direct revenue", "purchases credited to the ad's own clickers within the window",
                         "Σ amount of credited pays / 100", "yuan"),
    "fission_revenue": _T("裂变成交", "fission revenue", "purchases of friends brought by shares of the ad",
                          "Σ amount of the friends' pays within the window / 100", "yuan"),
    "roi": _T("投资回报率", "ROI (revenue / spend)", "revenue credited per yuan spent (not profit)",
              "(direct + fission revenue) / spend", "x"),
    "roi_windows": _T("即时 / 短期 / 长期 ROI", "immediate, short-term, long-term ROI",
                      "ROI at the same day, 7 (15) and 30 days", "ROI(W) for W = 0, 7, 15, 30", "x"),
    "long_tail_multiple": _T("长尾倍数", "long-tail multiple", "how much the same-day view misses",
                             "revenue(30 days) / revenue(same day)", "x"),
    "buyers_credited": _T("成交人数", "buyers credited", "distinct buyers behind a campaign's credited revenue",
                          "count of buyers", "persons"),
    # RFM and CLV
    "frequency": _T("消费频率", "frequency", "repeat purchase days", "distinct purchase days - 1", "days"),
    "recency": _T("最近一次消费", "recency (time_since_last)", "days from the last purchase to the end of the data",
                  "end - last purchase day", "days"),
    "t_x": _T("t_x", "t_x", "days from the first to the last purchase (the recency of the BG/NBD papers)",
              "last - first purchase day", "days"),
    "age_T": _T("T", "customer age", "days from the first purchase to the end of the data",
                "end - first purchase day", "days"),
    "repeat_aov": _T("复购客单价", "repeat spend per purchase day (BG/NBD monetary value)",
                     "mean spend of the repeat purchase days", "Σ spend of days 2..x+1 / x", "yuan"),
    "total_spend": _T("累计消费额", "total spend (RFM class monetary value)", "all a buyer paid",
                      "Σ amount_fen of the buyer's pays / 100", "yuan"),
    "repurchase_rate_w": _T("复购率 (w 天)", "repurchase rate within w days",
                            "first-time buyers who bought again within w days, among those observed for w days",
                            "buyers with a 2nd purchase ≤ w days / buyers observed ≥ w days", "%"),
    "repurchase_cycle": _T("复购周期", "repurchase cycle", "days from one purchase to the next (Kaplan-Meier, open gaps "
                           "censored)", "S(t) = P(no repurchase within t days)", "days"),
    "inter_purchase_gap": _T("购买间隔", "inter-purchase gap", "days between a buyer's consecutive purchase days",
                             "day(k+1) - day(k)", "days"),
    # lifecycle
    "stage_share": _T("阶段占比", "stage share", "persons in the stage among persons touched so far",
                      "persons in the stage / persons", "%"),
    "dormant_after": _T("沉睡阈值", "dormant after", "days without a purchase after which a buyer is dormant; by "
                        "default the 80th percentile of the inter-purchase gaps (at least 14 days)",
                        "max(14, ceil(P80(gap)))", "days"),
    "churn_after": _T("流失阈值", "churned after", "days without a purchase after which a buyer has churned; by "
                      "default the 95th percentile of the inter-purchase gaps (at least 30 days and more than dormant)",
                      "max(30, dormant + 1, ceil(P95(gap)))", "days"),
    # identity
    "precision": _T("精确率", "precision", "id pairs put together that truly are one person",
                    "true same-person pairs joined / pairs joined", "%"),
    "recall": _T("召回率", "recall", "true same-person id pairs that were joined",
                 "true same-person pairs joined / true same-person pairs", "%"),
    "fragmentation": _T("碎片化", "fragmentation", "unified ids per true person (1 = perfectly joined)",
                        "unified ids / persons", "ids per person"),
    # channels
    "channel_share": _T("渠道份额", "channel share", "credited conversions of the channel among all conversions",
                        "credited conversions(c) / conversions", "%"),
    "guide_order_share": _T("导购订单占比", "guide order share", "paid orders placed through a WeCom guide",
                            "guide orders / paid orders", "%"),
}


def term(key: str) -> Term:
    """The glossary entry ``key``.

    Raises
    ------
    UsageError
        For a key the glossary does not hold (with the closest known keys).
    """
    if key not in TERMS:
        raise UsageError.unknown("glossary term", key, sorted(TERMS))
    return TERMS[key]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _unit(unit: str, currency: str) -> str:
    """A term's unit in a dataset's currency: ``yuan`` becomes the ISO code of any other currency."""
    code = str(currency).upper()
    if unit == "yuan" and code not in ("CNY", "RMB", "YUAN"):
        return code
    return unit


def table(keys: Sequence[str], fmt: str = "markdown", currency: str = "CNY") -> str:
    """The definition table of ``keys`` (in that order), as Markdown (default) or HTML.

    Columns: term (zh en), definition, formula, unit. Money terms are in ``currency``
    (the dataset's, :func:`privdomain.plotting.currency_of`): their unit reads ``yuan``
    for CNY and the ISO code otherwise.

    >>> table(["gmv"], currency="USD").splitlines()[-1].endswith("| USD |")
    True

    Raises
    ------
    UsageError
        For an unknown key or format.
    """
    entries = [term(k) for k in keys]
    if fmt == "markdown":
        rows = ["| term 术语 | definition 定义 | formula 公式 | unit 单位 |", "| --- | --- | --- | --- |"]
        rows += [f"| {_cell(t.name)} | {_cell(t.definition)} | `{_cell(t.formula)}` | {_unit(t.unit, currency)} |"
                 for t in entries]
        return "\n".join(rows)
    if fmt == "html":
        head = "<tr><th>term 术语</th><th>definition 定义</th><th>formula 公式</th><th>unit 单位</th></tr>"
        body = "".join(f"<tr><td>{html.escape(t.name)}</td><td>{html.escape(t.definition)}</td>"
                       f"<td><code>{html.escape(t.formula)}</code></td><td>{html.escape(_unit(t.unit, currency))}</td></tr>"
                       for t in entries)
        return f"<table class=\"glossary\">{head}{body}</table>"
    raise UsageError.unknown("glossary format", fmt, ["markdown", "html"])


def document() -> str:
    """The text of ``docs/glossary.md``: every term, in the order of :data:`TERMS`."""
    return ("# Glossary 术语表\n\n"
            "Generated from `src/privdomain/glossary.py` (`python -m privdomain.glossary > docs/glossary.md`); "
            "edit the module, not this file. Rates are written in %, differences of rates in percentage points "
            "(pp), ROI as a multiple (x) of spend.\n\n" + table(list(TERMS)) + "\n")


if __name__ == "__main__":  # pragma: no cover
    print(document(), end="")
