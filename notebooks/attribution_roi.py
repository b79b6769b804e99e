# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Attribution and ROI 归因与投资回报: who earned the sale?
#
# A purchase comes after several touches on several channels. Attribution (归因) shares
# each purchase among them. This notebook builds the journeys, compares the rule-based
# and data-driven models, and reads the results against each other.

# %% tags=["parameters"]
scenario = "beauty"  # scenario preset: beauty, tea, sportswear, apparel, eyewear
persons = 5000  # simulated persons
seed = 7  # random seed (same seed, same data)
windows = [0, 7, 15, 30]  # attribution windows in days, 0 is the same day
data_dir = ""  # dataset folder (empty: synthetic/data/SCENARIO)
output_dir = ""  # folder for the metrics JSON (empty: not written)
report_name = "attribution_roi"  # name of the report and its metrics file

# %%
import pandas as pd
from IPython.display import Markdown, display

from privdomain import attribution, glossary, plotting
from privdomain.reports import cases
from privdomain.reports import runner as reports

plotting.use_style()
NOWRAP = [{"selector": "td, th.row_heading", "props": "white-space: nowrap;"}]  # numbers and intervals on one line
ds = reports.load_or_simulate(scenario, persons, seed, data_dir)
currency = plotting.currency_of(ds)  # money is shown in the dataset's currency
metrics = {}

# %% [markdown]
# ## 1. Journeys 旅程 and the path table 路径表
#
# Each person's timeline is cut at their purchases (`pay` events): the touches after
# the previous purchase and up to this one, within the **conversion window**
# (转化窗口, here 30 days before the purchase), form a converting journey valued at the
# amount paid. The touches after the last purchase form a non-converting journey. The
# **path table** counts journeys per channel sequence: `total_conversions`,
# `total_conversion_value` (yuan) and `total_null` (journeys without a purchase).

# %%
paths = attribution.build_paths(ds, window="30D")
display(Markdown(
    f"{len(paths):,} distinct paths; {int(paths['total_conversions'].sum()):,} converting and "
    f"{int(paths['total_null'].sum()):,} non-converting journeys. Left out (counted, not lost): "
    f"{paths.attrs.get('touches_outside_window', 0):,} touches older than the window, "
    f"{paths.attrs.get('purchases_without_touch', 0):,} purchases with no touch in their window."))
routes = plotting.rate_intervals(attribution.top_paths(paths, n=10), "conversions", "journeys").drop(columns=["rate"])
routes["path"] = routes["path"].map(glossary.display_path)
display(routes.rename(columns={"path": "路径 path", "conversions": "转化 conversions", "journeys": "旅程 journeys (n)",
                               "conversion_rate": "路径转化率 path conversion rate", "value": "成交额 value",
                               "share": "占比 share of conversions", "low": "95% low", "high": "95% high",
                               "too_small": "too small ⚠"})
        .style.hide(axis="index").set_properties(subset=["路径 path"], **{"text-align": "left"}).format(
    {"路径转化率 path conversion rate": "{:.1%}",
     "占比 share of conversions": "{:.1%}", "成交额 value": plotting.money_format(currency, compact=True), "95% low": "{:.1%}", "95% high": "{:.1%}",
     "转化 conversions": "{:,}", "旅程 journeys (n)": "{:,}", "too small ⚠": plotting.flag_text}, na_rep="n/a"))

# %% [markdown]
# ## 2. Rule-based models 规则归因
#
# | model | credit of one purchase |
# | --- | --- |
# | 首次触点 first touch | all to the first touch of the journey |
# | 末次触点 last touch | all to the last touch |
# | 末次非直接触点 last non-direct touch | all to the last touch that is not a direct Mini Program visit |
# | 线性 linear | `1 / n` to each of the `n` touches |
# | 时间衰减 time decay | `2^(-d / half-life)` to a touch `d` days before the purchase, normalised to 1 (half-life 7 days) |
# | 位置 position based (U-shaped) | 40% first, 40% last, 20% shared by the middle touches |

# %%
display(Markdown(glossary.table(["path_conversion_rate", "channel_share"], currency=currency)))

# %% [markdown]
# ## 3. Data-driven models 数据驱动归因
#
# * **Markov chain 马尔可夫链** (Anderl et al. 2016): journeys are walks between
#   channels ending in *conversion* or *null*. The **removal effect** (移除效应) of a
#   channel is the share of conversions lost if the channel were removed:
#   `RE(c) = 1 - P(conversion without c) / P(conversion)`; credits are the removal
#   effects normalised to the conversions.
# * **Shapley value 沙普利值** (Shapley 1953; Zhao et al. 2018): with `v(S)` the
#   conversions of journeys whose channel set is within `S`, a channel's credit is its
#   average marginal contribution over all orders in which channels join,
#   `φ(c) = Σ over S without c of |S|! (n-|S|-1)! / n! · (v(S ∪ {c}) - v(S))`.

# %%
credit = attribution.attribute(paths, models=["first_touch", "last_touch", "last_non_direct", "linear",
                                              "position_based", "markov", "shapley"])
credit["model"] = credit["model"].replace({"markov_1": "markov"})
wide = credit.pivot(index="channel", columns="model", values="share")
wide = wide.rename(index=lambda c: glossary.display_name(c, "channel"),
                   columns=lambda m: glossary.display_name(m, "model"))
ax = plotting.heatmap(wide, title="各模型渠道份额 channel share by model", fmt=".0%")
ax.set_xlabel("")
ax.set_ylabel("");

# %%
markov = credit[credit["model"] == "markov"].set_index("channel")
removal = markov.reset_index().sort_values("removal_effect", ascending=False)
removal["渠道 channel"] = glossary.display_names(removal["channel"], "channel")
ax = plotting.bar(removal, "渠道 channel", "removal_effect",
                  horizontal=True, values="percent", title="马尔可夫移除效应 Markov removal effect")
plotting.percent_axis(ax, "x")
ax.set_xlabel("移除效应 removal effect: share of conversions lost without the channel")
ax.set_ylabel("");

# %% [markdown]
# **Reading the models together.** Last-touch models credit the channel where people
# pay (the Mini Program, or the article that links to it); first-touch models credit
# the ads that brought people in. Markov and Shapley credit every channel a
# conversion needed, which is why a channel that rarely closes a sale but often opens
# one (an ad, a store visit) gains against last touch.

# %% [markdown]
# ## 4. Ad attribution by window 广告归因窗口 and multi-level ROI 多级ROI
#
# Youshu's ad analysis credits each purchase to the ad of the buyer's **latest ad click**
# before it, if that click lies within the **window** (归因窗口): same day (当日), 7, 15
# or 30 days. A purchase by a friend who arrived through a **share** of the ad (裂变
# fission) is credited to the ad too.
#
# Spend is the scenario's budget scaled to the number of simulated persons (the audience
# the budget buys), so ROI levels are comparable across sizes; the presets are calibrated
# to a 30-day ROI of about 2. The long-tail multiple does not depend on spend.

# %%
display(Markdown(glossary.table(["direct_revenue", "fission_revenue", "roi", "roi_windows", "long_tail_multiple"], currency=currency)))

# %%
ad = attribution.ad_attribution(ds, campaigns=ds, windows=windows)
by_window = attribution.roi_by_window(ad)
display(by_window.rename(columns={
    "window": "归因窗口 window (days)", "spend": "投放 spend", "orders": "订单 orders", "revenue": "成交额 revenue",
    "direct_revenue": "直接成交 direct revenue", "fission_revenue": "裂变成交 fission revenue",
    "roi": "ROI (revenue / spend)", "over_same_day": "长尾倍数 over the same day"})
    .style.hide(axis="index").format({"投放 spend": plotting.money_format(currency, compact=True), "成交额 revenue": plotting.money_format(currency, compact=True),
                                      "直接成交 direct revenue": plotting.money_format(currency, compact=True), "裂变成交 fission revenue": plotting.money_format(currency, compact=True),
                                      "订单 orders": "{:,}", "ROI (revenue / spend)": "{:.2f} x",
                                      "长尾倍数 over the same day": "{:.2f} x"}, na_rep="n/a"))
if ad.attrs.get("unattributed_purchases") is not None:
    display(Markdown(f"{ad.attrs['unattributed_purchases']:,} of {ad.attrs['purchases']:,} purchases are credited to "
                     f"no ad at the longest window (organic, store, or older clicks)."))

# %%
curve = attribution.total_roi_curve(attribution.roi_curve(ds, campaigns=ds, horizon=f"{max(windows)}D"))
ax = plotting.line(curve, "day", "roi", marker=None,
                   title="累计ROI随归因天数上升 cumulative ROI by days since the click")
for w in windows:
    d = max(w - 1, 0)  # curve day d = window d + 1; window 0 (same day) = day 0
    if d < len(curve):
        ax.axvline(d, color="#bbb", linewidth=0.8)
        last = d >= len(curve) - 3  # keep the last label inside the axes
        ax.annotate(f"{'same day' if w == 0 else f'{w}d'}: {curve['roi'].iloc[d]:.3g}", (d, curve["roi"].iloc[d]),
                    textcoords="offset points", xytext=(-4 if last else 4, -12), ha="right" if last else "left",
                    fontsize=9)
ax.set_xlabel("days since the ad click (0 = the same day) 点击后天数")
ax.set_ylabel("ROI");

# %%
mlr = cases.campaign_roi_table(attribution.multi_level_roi(ds, campaigns=ds),
                               attribution.ad_attribution(ds, campaigns=ds, windows=[30]), window=30)
display(Markdown("Per campaign, ROI = revenue / spend. The 95% interval of the 30-day ROI is the Poisson interval of "
                 "its order count (order value held fixed); " + plotting.SMALL_RULE.replace("groups", "campaigns")
                 .replace("n < 30", "fewer than 30 orders") + ". The long-tail multiple is n/a where nothing was "
                 "credited the same day."))
campaigns_shown = mlr[["campaign_id", "channel", "spend", "orders", "roi_same_day", "roi_7d", "roi_15d", "roi_30d",
                       "roi_low", "roi_high", "too_small", "long_over_immediate_30", "acquired",
                       "repurchase_revenue"]].assign(channel=lambda d: glossary.display_names(d["channel"], "channel"))
display(campaigns_shown.rename(columns={
    "campaign_id": "计划 campaign", "channel": "渠道 channel", "spend": "投放 spend", "orders": "订单 orders (n, 30d)",
    "roi_same_day": "ROI 当日 same day", "roi_7d": "ROI 7d", "roi_15d": "ROI 15d", "roi_30d": "ROI 30d",
    "roi_low": "ROI 30d 95% low", "roi_high": "ROI 30d 95% high", "too_small": "too small ⚠",
    "long_over_immediate_30": "长尾倍数 30d / same day", "acquired": "新客 acquired",
    "repurchase_revenue": "复购成交 repurchase revenue"})
        .style.hide(axis="index").set_table_styles(NOWRAP).format({"投放 spend": plotting.money_format(currency, compact=True),
                                                                  "ROI 当日 same day": "{:.2f} x",
                                          "ROI 7d": "{:.2f} x", "ROI 15d": "{:.2f} x", "ROI 30d": "{:.2f} x",
                                          "ROI 30d 95% low": "{:.2f} x", "ROI 30d 95% high": "{:.2f} x",
                                          "长尾倍数 30d / same day": "{:.2f} x", "复购成交 repurchase revenue": plotting.money_format(currency, compact=True),
                                          "订单 orders (n, 30d)": "{:,}", "新客 acquired": "{:,}",
                                          "too small ⚠": plotting.flag_text}, na_rep="n/a"))
metrics["roi_same_day"] = float(by_window["roi"].iloc[0])
metrics["roi_longest_window"] = float(by_window["roi"].iloc[-1])
metrics["revenue_longest_over_same_day"] = float(by_window["over_same_day"].iloc[-1])
metrics["summary"] = (f"ad ROI same day {by_window['roi'].iloc[0]:.3g}, {windows[-1]} days "
                      f"{by_window['roi'].iloc[-1]:.3g} ({by_window['over_same_day'].iloc[-1]:.1f} x)")

# %% [markdown]
# ## 5. Scoring the models against the truth 与真值比较
#
# The simulator knows each channel's true credit: its **incremental** conversions (lost
# when the same persons are re-simulated without the channel) and its **Shapley** credit
# over re-simulated coalitions of channels. A model's error is the mean absolute gap
# between its channel shares and the true shares, in percentage points:
#
# `MAE(model) = 100 / |C| · Σ over channels c of |share_model(c) - share_true(c)|`
#
# `uniform` (every channel `1/|C|`) is the baseline a useful model must beat; the rank
# correlation (秩相关) tells whether the model at least orders the channels right.

# %%
scores = attribution.score(credit, ds)
conv = scores[scores["metric"] == "conversions"].copy()
conv["model"] = conv["model"].replace({"markov_1": "markov"})
conv["模型 model"] = glossary.display_names(conv["model"], "model")
conv["真值 truth"] = conv["truth"].map({"incremental": "增量 incremental", "shapley": "沙普利 Shapley"}).fillna(conv["truth"])
ax = plotting.bar(conv.sort_values("mae_pp"), "模型 model", "mae_pp", hue="真值 truth", horizontal=True,
                  title="归因模型误差 model error against the true credit (lower is better)")
ax.set_xlabel("mean absolute error, percentage points 平均绝对误差")
ax.legend(title="真值 truth", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # not over the bars
ax.set_ylabel("")
table = conv.pivot(index="model", columns="truth", values="mae_pp").sort_values("incremental")
display(table.rename(index=lambda m: glossary.display_name(m, "model"))
        .rename(columns=lambda t: f"MAE vs {t} truth (pp)").rename_axis(index="模型 model", columns=None)
        .style.format("{:.1f}").background_gradient(cmap="Greens_r", axis=None))
best = table["incremental"].idxmin()
display(Markdown(f"Closest to the true incremental credit here: **{glossary.display_name(best, 'model')}** "
                 f"({table.loc[best, 'incremental']:.1f} points on average per channel). Observational models "
                 f"share credit among the channels a journey *touched*; the truth counts what a channel *caused*."))
metrics["mae_pp_incremental"] = {m: float(v) for m, v in table["incremental"].items()}
metrics["best_model_incremental"] = str(best)

# %%
for model in ("last_non_direct", "markov", "shapley"):
    m = credit[credit["model"] == model].set_index("channel")["share"]
    metrics[f"{model}_top_channel"] = str(m.idxmax())
    metrics[f"{model}_top_share"] = float(m.max())
metrics["conversions"] = int(paths["total_conversions"].sum())
metrics["paths"] = int(len(paths))

# %% [markdown]
# ## 6. Calibrated with lift tests 增量校准
#
# A lift test withholds a channel from a randomised holdout (ghost ads, withheld pushes
# and SMS, cities without groups, guides or lives) and measures what the channel adds:
# `incremental = (mean(Y; exposed) - mean(Y; holdout)) · exposed persons`, with a 95%
# interval (robust errors; clustered by city for a geo test). **Calibrated** credit
# gives each tested channel its lift estimate and the untested ones what Markov
# credits beyond it, plus the tested effect on the members they recruited
# (`attribution.calibrated`, `attribution.recruitment`; the interval reflects the lift
# tests' sampling error only). Channels whose credit rests on the observational model are
# marked: correlation is not causation.

# %%
evidence = cases.channel_evidence(ds, credit)
if evidence["calibrated"] is not None:
    lifts = attribution.lifts(ds)
    lifts = lifts.assign(too_small=lifts["n_holdout"] < plotting.SMALL_N)

    def amount(v, metric, sign=True):  # conversions as counts, revenue in yuan
        if v != v:
            return "n/a"
        return plotting.yuan(v, sign=sign) if metric == "revenue" else f"{v:+,.1f}" if sign else f"{v:,.1f}"

    lift_table = pd.DataFrame({
        "渠道 channel": glossary.display_names(lifts["channel"], "channel"),
        "指标 metric": lifts["metric"].map({"conversions": "转化 conversions (orders)",
                                             "revenue": "成交额 revenue (yuan)"}),
        "试验单位 test unit": lifts["unit"].map({"person": "人 person", "city": "城市 city (geo)"}),
        "n 曝光 treatment": lifts["n_treatment"].map("{:,}".format),
        "n 留出 holdout": lifts["n_holdout"].map("{:,}".format),
        "增量 incremental": [amount(v, m) for v, m in zip(lifts["incremental"], lifts["metric"])],
        "95% CI": [f"{amount(lo, m)} to {amount(hi, m)}" for lo, hi, m in
                   zip(lifts["incremental_low"], lifts["incremental_high"], lifts["metric"])],
        "增量占比 incremental share": lifts["incremental_share"].map(
            lambda v: "n/a" if v != v else plotting.percent(v)),
        "too small ⚠": lifts["too_small"].map(plotting.flag_text)})
    display(Markdown("Incremental = what the channel added to the exposed (treatment) persons during the test, "
                     "with its 95% interval; incremental share = incremental / the treatment group's total."))
    display(lift_table.style.hide(axis="index").set_table_styles(NOWRAP)
            .set_properties(subset=["渠道 channel", "指标 metric", "试验单位 test unit"], **{"text-align": "left"}))
    warn = plotting.small_warning(lifts.assign(channel=glossary.display_names(lifts["channel"], "channel")),
                                  "channel", n="n_holdout")
    if warn:
        display(Markdown(warn.replace("n < 30", "a holdout of fewer than 30")))
    ev = evidence["table"].rename(index=lambda c: glossary.display_name(c, "channel"),
                                  columns=lambda c: glossary.MODEL_LABELS.get(c, c))
    ev = ev.rename(columns={"true incremental": "真实增量 true incremental", "calibrated 95% low": "增量校准 95% low",
                                           "calibrated 95% high": "增量校准 95% high",
                                           "calibrated source": "依据 source"})
    ev = ev.rename_axis(index="渠道 channel", columns=None)
    display(Markdown("Share of the credited conversions per channel under each model (true incremental: the "
                     "simulator's truth; calibrated with its 95% interval and the source of each channel's credit):"))
    display(ev.style.set_table_styles(NOWRAP).format(
        lambda v: plotting.percent(v) if isinstance(v, float) and v == v else ("—" if isinstance(v, float) else str(v))))
    if evidence["scores"] is not None:
        cal_score = evidence["scores"].query("model == 'calibrated' and truth == 'incremental' "
                                             "and metric == 'conversions'")
        metrics["calibrated_mae_pp_incremental"] = float(cal_score["mae_pp"].iloc[0])
shap_share = credit[credit["model"] == "shapley"].set_index("channel")["share"]
shap_share = shap_share[~shap_share.index.isin(attribution.DIRECT)]  # marketing channels, not the checkout
for line in cases.channel_advice(evidence["calibrated"], evidence["scores"], observational="shapley",
                                 observational_share=shap_share):
    display(Markdown(line))
reports.record_metrics(metrics, output_dir, report_name)


# %% [markdown]
# ## Exercises 练习
#
# Work each answer out with the package, put it into `answers` below and run the cell:
# `exercises.check` computes the answer from this dataset (or the simulator's truth) and
# says whether yours is right within the stated tolerance. Rates are answered in percent
# (12.3 for 12.3%). The solutions are folded away: click to open one.

# %%
from privdomain import exercises

answers = {"attribution_time_decay_top": None, "attribution_roi_60d": None}  # your answers
exercises.show("attribution_roi", ds, answers)
