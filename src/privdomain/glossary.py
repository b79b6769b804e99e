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

The same module holds the **display names** the reports show instead of ids: one
``"中文 English"`` label per touchpoint (:data:`TOUCHPOINT_LABELS`), channel
(:data:`CHANNEL_LABELS`), lifecycle stage (:data:`STAGE_LABELS`) and attribution model
(:data:`MODEL_LABELS`), looked up with :func:`display_name`, :func:`display_names` and
:func:`display_path`. The data keep the ids; only charts and tables use the labels.

Examples
--------
>>> print(table(["buyer_rate"]).splitlines()[2])
| 购买转化率 buyer conversion rate | share of persons who bought | `buyers / persons` | % |
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import UsageError

__all__ = ["CHANNEL_LABELS", "MODEL_LABELS", "STAGE_LABELS", "TERMS", "TOUCHPOINT_LABELS", "Term", "display_name",
           "display_names", "display_path", "document", "table", "term"]


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


#: Display name (``"中文 English"``) of every touchpoint (event type) of :data:`privdomain.schema.TOUCHPOINTS`,
#: for chart axes, legends and table cells; the data keep the ids.
TOUCHPOINT_LABELS: dict[str, str] = {
    "moments_ad_view": "朋友圈广告曝光 Moments ad view",
    "moments_ad_click": "朋友圈广告点击 Moments ad click",
    "search_ad_view": "搜一搜广告曝光 search ad view",
    "search_ad_click": "搜一搜广告点击 search ad click",
    "channels_ad_view": "视频号广告曝光 Channels ad view",
    "channels_ad_click": "视频号广告点击 Channels ad click",
    "oa_follow": "关注公众号 OA follow",
    "oa_push": "图文推送 OA article received",
    "oa_article_open": "图文打开 OA article open",
    "mp_click": "图文跳转小程序 article click to Mini Program",
    "group_join": "入群 group join",
    "group_message": "群消息 group message",
    "wecom_add": "添加导购 WeCom guide add",
    "wecom_chat": "导购聊天 WeCom guide chat",
    "live_view": "直播观看 live view",
    "live_interact": "直播互动 live interaction",
    "store_visit": "到店 store visit",
    "qr_scan": "扫码 QR scan",
    "sms": "短信 SMS",
    "mp_visit": "小程序访问 Mini Program visit",
    "product_view": "商品浏览 product view",
    "add_to_cart": "加购 add to cart",
    "order": "下单 order",
    "pay": "支付 pay",
    "refund": "退款 refund",
    "share": "分享 share",
}

#: Display name of every channel family of :data:`privdomain.schema.CHANNELS` (and ``direct``).
CHANNEL_LABELS: dict[str, str] = {
    "moments_ad": "朋友圈广告 Moments ads",
    "search_ad": "搜一搜广告 search ads",
    "channels_ad": "视频号广告 Channels ads",
    "official_account": "公众号 Official Account",
    "group": "社群 group chat",
    "guide": "企微导购 WeCom guide",
    "live": "直播 live stream",
    "store": "门店 store",
    "qr_code": "二维码 QR code",
    "sms": "短信 SMS",
    "mini_program": "小程序 Mini Program",
    "fission": "裂变 fission",
    "direct": "直接访问 direct",
}

#: Display name of every lifecycle stage (:data:`privdomain.lifecycle.STAGES` and the AIPL stages).
STAGE_LABELS: dict[str, str] = {
    "prospect": "潜客 prospect",
    "new": "新客 new",
    "active": "活跃 active",
    "loyal": "忠诚 loyal",
    "resurrected": "回流 resurrected",
    "dormant": "沉睡 dormant",
    "churned": "流失 churned",
    "awareness": "认知 awareness",
    "interest": "兴趣 interest",
    "purchase": "购买 purchase",
    "loyalty": "忠诚 loyalty",
    "lapsed": "流失 lapsed",
    "(entry)": "新进入 (entry)",
}

#: Display name of every attribution model (:data:`privdomain.attribution.MODELS` and the calibrated one).
MODEL_LABELS: dict[str, str] = {
    "first_touch": "首次触点 first touch",
    "last_touch": "末次触点 last touch",
    "last_non_direct": "末次非直接触点 last non-direct touch",
    "linear": "线性 linear",
    "time_decay": "时间衰减 time decay",
    "position_based": "位置 position based",
    "markov": "马尔可夫链 Markov chain",
    "shapley": "沙普利值 Shapley value",
    "calibrated": "增量校准 calibrated",
    "uniform": "均分基线 uniform baseline",
}

_KINDS: dict[str, dict[str, str]] = {"touchpoint": TOUCHPOINT_LABELS, "channel": CHANNEL_LABELS,
                                      "stage": STAGE_LABELS, "model": MODEL_LABELS}


def display_name(value: object, kind: str | None = None) -> str:
    """The display name of a touchpoint, channel, lifecycle stage or attribution model id.

    ``kind`` (``"touchpoint"``, ``"channel"``, ``"stage"`` or ``"model"``) picks one
    table; without it the tables are searched in that order. A value no table holds
    is returned unchanged (as text), so user-defined ids still show.

    Examples
    --------
    >>> display_name("mp_visit"), display_name("dormant"), display_name("live", "channel")
    ('小程序访问 Mini Program visit', '沉睡 dormant', '直播 live stream')
    >>> display_name("my_custom_event")
    'my_custom_event'

    Raises
    ------
    UsageError
        For an unknown ``kind``.
    """
    if kind is not None and kind not in _KINDS:
        raise UsageError.unknown("display-name kind", kind, sorted(_KINDS))
    tables = [_KINDS[kind]] if kind else list(_KINDS.values())
    key = str(value)
    for labels in tables:
        if key in labels:
            return labels[key]
    return key


def display_names(values: Iterable[object], kind: str | None = None) -> list[str]:
    """:func:`display_name` of each value, in order.

    >>> display_names(["mp_visit", "pay"], "touchpoint")
    ['小程序访问 Mini Program visit', '支付 pay']
    """
    return [display_name(v, kind) for v in values]


def display_path(path: str, sep: str = " > ", kind: str | None = "channel") -> str:
    """A path of ids joined by ``sep`` (a journey's channels) with each id's display name.

    >>> display_path("official_account > live")
    '公众号 Official Account > 直播 live stream'
    """
    return sep.join(display_names(str(path).split(sep), kind))


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
