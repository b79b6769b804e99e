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

# %% [markdown] tags=["remove-cell"]
# <small>Case study template 案例研究模板: the `scenario` parameter picks the case
# (beauty, tea, sportswear, apparel, eyewear), its simulated data and its story
# (`notebooks/cases.yaml`).</small>

# %% tags=["parameters"]
scenario = "sportswear"  # scenario preset: beauty, tea, sportswear, apparel, eyewear
persons = 5000  # simulated persons
seed = 7  # random seed (same seed, same data)
windows = [0, 7, 15, 30]  # attribution windows in days, 0 is the same day
data_dir = ""  # dataset folder (empty: synthetic/data/SCENARIO)
output_dir = ""  # folder for the metrics JSON (empty: not written)
report_name = "case_study"  # name of the report and its metrics file
dormant_days = None  # lifecycle: days without a purchase before "dormant" (None: cases.yaml, else from the data)
churn_days = None  # lifecycle: days without a purchase before "churned" (None: cases.yaml, else from the data)

# %%
import pandas as pd
from IPython.display import Markdown, display

from privdomain import attribution, glossary, plotting
from privdomain.boards import officialaccount
from privdomain.boards.overview import overview
from privdomain.clv import rfm
from privdomain.lifecycle import stages as lifecycle
from privdomain.reports import cases
from privdomain.reports import runner as reports

plotting.use_style()
story = cases.case_story(scenario)
ds = reports.load_or_simulate(scenario, persons, seed, data_dir)
currency = plotting.currency_of(ds)  # money is shown in the dataset's currency
metrics = {"scenario": scenario, "headline": story["headline"]}

# %%
display(Markdown(f"""# {story['title']}

**About the numbers.** The case figures quoted below are those *reported by 2020 trade
articles* on Tencent's private-domain products (see `docs/domain.md`), not results of
this package. Every other number in this report is computed on **simulated** data
whose scenario was calibrated to resemble the case.

**The brand.** {story['brand']}.

**What it did.** {story['what_was_done']}

**What the articles reported.** *{story['reported']}* (the articles' figure, not ours).

**The question for this report.** {story['headline_question']}
"""))
summary_box = display(Markdown("*Summary: computed at the end of the report.*"), display_id=True)

# %% [markdown]
# ## 1. The journey 用户旅程
#
# The journey the case describes, step by step, and then the journeys the simulated
# customers actually took. A **journey** (旅程) is the sequence of channels a person
# touched before a purchase: the touches after their previous purchase and up to this
# one, within 30 days before it. Consecutive touches of the same channel are merged
# below, so each row reads as a route through the channels.

# %%
display(Markdown("\n".join(f"{i}. {step}" for i, step in enumerate(story["journey"], 1))))

# %%
paths = attribution.build_paths(ds, window="30D")
routes = plotting.rate_intervals(attribution.top_paths(paths, n=8), "conversions", "journeys")
routes = routes.assign(path=routes["path"].map(glossary.display_path))  # display names, not channel ids
routes = routes.drop(columns=["rate"]).rename(columns={
    "path": "路径 path", "conversions": "转化 conversions", "journeys": "旅程 journeys (n)",
    "conversion_rate": "路径转化率 path conversion rate", "value": "成交额 value", "share": "占比 share of conversions",
    "low": "95% low", "high": "95% high", "too_small": "too small ⚠"})
display(routes.style.hide(axis="index").set_properties(subset=["路径 path"], **{"text-align": "left"}).format(
    {"路径转化率 path conversion rate": "{:.1%}", "占比 share of conversions": "{:.1%}", "成交额 value": plotting.money_format(currency, compact=True),
     "转化 conversions": "{:,}", "旅程 journeys (n)": "{:,}", "95% low": "{:.1%}", "95% high": "{:.1%}",
     "too small ⚠": plotting.flag_text}, na_rep="n/a"))

# %%
display(Markdown(glossary.table(["touches_per_conversion", "channels_per_conversion", "multi_channel_share",
                                 "path_conversion_rate"], currency=currency)))

# %%
js = attribution.journey_stats(paths)
metrics.update({k: js[k] for k in ("touches_per_conversion", "channels_per_conversion", "multi_channel_share")})
display(Markdown(
    f"A purchase took on average **{js['touches_per_conversion']:.1f} touches** over "
    f"**{js['channels_per_conversion']:.1f} channels**; "
    f"**{js['multi_channel_share']:.0%}** of purchases came after two or more channels."))

# %% [markdown]
# ## 2. What the boards show 看板

# %%
display(Markdown(glossary.table(["gmv", "buyer_rate", "aov", "orders_per_buyer"], currency=currency)))

# %%
ov = overview(ds)
metrics.update({k: ov[k] for k in ("persons", "buyers", "orders", "gmv_yuan", "buyer_rate", "aov_yuan")})
kpis = pd.DataFrame([
    ("人数 persons", f"{ov['persons']:,}"), ("购买人数 buyers", f"{ov['buyers']:,}"),
    ("成交额 GMV", plotting.money(ov["gmv_yuan"], currency, 0, compact=True)), ("购买转化率 buyer conversion rate", plotting.percent(ov["buyer_rate"], 2) + " (" + plotting.interval_text(
        *plotting.rate_intervals(pd.DataFrame({"k": [ov["buyers"]], "n": [ov["persons"]]}), "k", "n")[
            ["low", "high"]].iloc[0]) + f", n = {ov['persons']:,})"),
    ("客单价 average order value", plotting.money(ov["aov_yuan"], currency, 0, compact=True)),
    ("人均订单 orders per buyer", f"{ov['orders_per_buyer']:.2f}"),
], columns=["metric", "value"])
display(kpis.style.hide(axis="index").set_properties(subset=["metric"], **{"text-align": "left"}))

# %% [markdown]
# ### The Official Account board and the lifecycle board 公众号看板与生命周期大盘
#
# The three article rates (图文三率) are taken over (reader, article) pairs and pooled over
# the articles (`officialaccount.article_rates`, orders within a day of the click). The
# lifecycle stage of every person touched so far is taken on the last day; the dormant and
# churn thresholds come **from this data** (the 80th and 95th percentiles of the gaps
# between a buyer's purchase days, at least 14 and 30 days) unless the case or the
# parameters set them.

# %%
display(Markdown(glossary.table(["open_rate", "article_click_rate", "article_order_rate", "stage_share",
                                 "inter_purchase_gap", "dormant_after", "churn_after"], currency=currency)))

# %%
oa = officialaccount.article_rates(ds, window="1D", purchase={"touchpoint": "order", "channel": "mini_program"})
ar = {**officialaccount.pooled_rates(oa), "received": int(oa["received"].sum())}
if ar["received"] > 0:
    metrics["article_rates"] = {k: float(ar[k]) for k in ("open_rate", "click_rate", "conversion_rate")}
    sums = oa[["received", "opened", "clicked", "ordered"]].sum()
    rates = plotting.rate_intervals(pd.DataFrame({
        "rate name": ["打开率 open rate", "图文点击率 article click rate", "图文下单率 article order rate"],
        "k": [sums["opened"], sums["clicked"], sums["ordered"]],
        "n": [sums["received"], sums["opened"], sums["clicked"]]}), "k", "n")
    display(rates.rename(columns={"k": "successes", "low": "95% low", "high": "95% high"})
            .drop(columns=["too_small"]).style.hide(axis="index")
            .format({"rate": "{:.1%}", "95% low": "{:.1%}", "95% high": "{:.1%}", "n": "{:,}", "successes": "{:,}"}))
override = story.get("lifecycle") or {}
stage_model, thresholds = lifecycle.data_stage_model(
    ds, dormant_days if dormant_days is not None else override.get("dormant_days"),
    churn_days if churn_days is not None else override.get("churn_days"))
metrics["lifecycle_thresholds"] = {"dormant_days": int(thresholds["dormant_days"]),
                                   "churn_days": int(thresholds["churn_days"]), "source": thresholds["source"]}
how = ("from the data: " + f"80th percentile of {thresholds['gaps']:,} purchase gaps = "
       f"{thresholds['dormant_gap']:.0f} days, 95th = {thresholds['churn_gap']:.0f} days"
       if thresholds["source"] == "data" else thresholds["source"])
display(Markdown(f"**Lifecycle thresholds:** dormant after **{thresholds['dormant_days']} days** without a purchase, "
                 f"churned after **{thresholds['churn_days']} days** ({how})."))
board = lifecycle.lifecycle_board(ds, ov["last_day"], ov["last_day"], model=stage_model)
board = board.assign(stage=pd.Categorical(board["stage"], list(lifecycle.STAGES), ordered=True)).sort_values("stage")
metrics["stage_share_end"] = dict(zip(board["stage"].astype(str), board["share"].astype(float)))
ax = plotting.bar(board.assign(阶段=[n.replace(" ", "\n", 1) for n in glossary.display_names(board["stage"], "stage")]),
                  "阶段", "share",
                  values="percent", title=f"生命周期大盘 persons by lifecycle stage on {ov['last_day']}")
plotting.percent_axis(ax)
ax.set_xlabel("")
ax.set_ylabel("share of persons 人数占比");

# %% [markdown]
# ### Which channels earn the sales 渠道贡献
#
# Four ways to share the purchases among the channels of their journeys:
#
# * **末次非直接触点 last non-direct touch**: all credit to the last channel that is not a
#   direct Mini Program visit;
# * **线性 linear**: each touch of the journey gets `1 / touches` of the purchase;
# * **马尔可夫 Markov removal effect**: a channel's credit is proportional to how many
#   conversions would be lost if it were removed from the journeys,
#   `removal effect(c) = 1 - P(convert without c) / P(convert)`;
# * **沙普利 Shapley**: a channel's average marginal contribution over all coalitions of
#   channels, `φ(c) = Σ_S |S|!(n-|S|-1)!/n! · (v(S ∪ {c}) - v(S))`.

# %%
display(Markdown(glossary.table(["channel_share"], currency=currency)))

# %%
credit = attribution.attribute(paths, models=["last_non_direct", "linear", "markov", "shapley"])
credit["model"] = credit["model"].replace({"markov_1": "markov"})
ax = plotting.bar(credit.assign(渠道=glossary.display_names(credit["channel"], "channel"),
                                模型=glossary.display_names(credit["model"], "model")), "渠道", "share", hue="模型",
                  horizontal=True,
                  title="渠道贡献份额 channel share of conversions by model")
plotting.percent_axis(ax, "x")
ax.set_xlabel("share of conversions 转化份额")
ax.legend(title="模型 model", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # not over the bars
ax.set_ylabel("");

# %%
shap = credit[credit["model"] == "shapley"].set_index("channel")["share"]
shap = shap.drop([c for c in attribution.DIRECT if c in shap.index])  # marketing channels, not the checkout
metrics["top_channel_shapley"] = str(shap.idxmax())
metrics["top_channel_shapley_share"] = float(shap.max())

# %% [markdown]
# ### Which channels cause the sales 增量: models next to the truth
#
# The four models above share out purchases that *followed* touches; none of them
# knows what a channel *caused*. Lift tests do: a randomised holdout that never sees
# the channel (ghost ads, withheld pushes, cities without groups or lives) shows what
# the channel adds. **Calibrated** credit takes the lift estimate for every tested
# channel and rescales the Markov model for the others, adding to a channel the tested
# effect on the members it recruited (a store's WeCom adds) and the credit the tests
# show a retouch channel (an SMS, an article) did not cause on the journeys of the
# customers it acquired (its 95% interval comes from
# the lift tests' sampling error; `source` says which channels rest on the
# observational model). On simulated data the simulator's true incremental share is
# shown next to every model.

# %%
evidence = cases.channel_evidence(ds, credit)
display(evidence["table"].rename(index=lambda c: glossary.display_name(c, "channel"),
                                 columns=lambda m: glossary.MODEL_LABELS.get(m, m))
        .rename(columns={"true incremental": "真实增量 true incremental", "calibrated 95% low": "增量校准 95% low",
                         "calibrated 95% high": "增量校准 95% high", "calibrated source": "依据 source"})
        .rename_axis(index="渠道 channel", columns=None)
        .style.format(lambda v: plotting.percent(v) if isinstance(v, float) and v == v else
                      ("—" if isinstance(v, float) else str(v))))
if evidence["calibrated"] is not None:
    top_cal = evidence["calibrated"].sort_values("share", ascending=False).iloc[0]
    metrics["top_channel_calibrated"] = str(top_cal["channel"])
    metrics["top_channel_calibrated_share"] = float(top_cal["share"])
if evidence["scores"] is not None:
    inc = evidence["scores"].query("truth == 'incremental' and metric == 'conversions'")
    metrics["mae_pp_incremental"] = {m.replace("markov_1", "markov"): float(v) for m, v in zip(inc["model"],
                                                                                              inc["mae_pp"])}
    display(pd.DataFrame({
        "模型 model": glossary.display_names(inc["model"].replace({"markov_1": "markov"}), "model"),
        "MAE vs incremental truth (pp)": inc["mae_pp"].to_numpy(),
        "最差渠道 worst channel": glossary.display_names(inc["worst_channel"], "channel"),
        "worse than uniform": inc["worse_than_uniform"].map({True: "yes ⚠", False: "no"}).to_numpy()})
        .style.hide(axis="index").format(precision=1))

# %% [markdown]
# ## 3. The figure this case is known for 案例标志性图表
#
# First the **calibration** (校准): the simulator's scenario was tuned so that its data
# reproduce the articles' figure, measured the way the simulator checks it. Then the
# same story told with the package's own metrics.

# %%
cal = cases.calibration_check(ds, scenario)
value = cal["value"]
names = {"open_rate": "打开率 open rate", "click_rate": "图文点击率 article click rate",
         "conversion_rate": "图文下单率 article order rate"}
shown = (", ".join(f"{names.get(k, k.replace('_', ' '))} {v:.1%}" for k, v in value.items()) if isinstance(value, dict)
         else f"{value:.2f}")
metrics["calibration"] = {"value": value, "target": cal["target"], "tolerance": cal["tolerance"],
                          "within": bool(cal["within"])}
display(Markdown(
    f"**The articles reported:** *{story['reported']}*.\n\n"
    f"**Calibration:** the scenario states the figure as \"{cal['figure']}\". Measured on this simulated data: "
    f"**{shown}**" + ("" if isinstance(value, dict) else f" (target {cal['target']} ± {cal['tolerance']})") +
    (" — within the tolerance." if cal["within"] else
     " — outside the tolerance at this size and seed (the presets are calibrated at "
     f"{cal.get('persons', 'their own')} persons; small runs are noisy).")))

# %%
head = cases.headline_figure(ds, story["headline"], windows)
metrics["headline_value"] = head["value"]
metrics["summary"] = f"{head['label']}: {head['text']}"
display(Markdown(f"**{head['label']}: {head['text']}** with the package's metrics.\n\n{head['definition']}"
                 + (f"\n\n{head['warning']}" if head.get("warning") else "")))
if "lifts" in head:
    display(head["lifts"][["segment", "n_treatment", "n_holdout", "rate_treatment", "rate_holdout", "diff", "low", "high",
                           "relative", "too_small"]]
            .rename(columns={"diff": "uplift (pp)", "low": "95% low (pp)", "high": "95% high (pp)",
                             "relative": "relative lift", "too_small": "too small ⚠"})
            .style.hide(axis="index")
            .format({"rate_treatment": "{:.1%}", "rate_holdout": "{:.1%}", "relative lift": "{:+.0%}",
                     "uplift (pp)": lambda v: plotting.pp(v), "95% low (pp)": lambda v: plotting.pp(v),
                     "95% high (pp)": lambda v: plotting.pp(v), "too small ⚠": plotting.flag_text}, na_rep="n/a"))
if head.get("guides") is not None and len(head["guides"]):
    display(Markdown("**Which guides?** Orders per added customer, guides with the most orders first "
                     f"(guides with fewer than {plotting.SMALL_N} added customers are too small to rank)."))
    display(head["guides"].head(10).style.hide(axis="index").format({"orders_per_added": "{:.2f}"}, na_rep="n/a"))

# %% [markdown]
# ### The articles' figure beside the simulated one 报道数字与模拟数字

# %%
compare = cases.reported_table(story, head)
metrics["reported_vs_simulated"] = compare.iloc[0].to_dict()
display(compare.style.hide(axis="index").set_properties(**{"text-align": "left"}))

# %% [markdown]
# ## 4. Customers 客户分层
#
# RFM (最近一次消费 recency, 消费频率 frequency, 消费金额 monetary value) sorts buyers
# into the eight classes of Chinese CRM practice. Recency is the number of days from a
# buyer's last purchase to the end of the data (`time_since_last`), frequency the
# number of repeat purchase days, monetary value the **total spend** (累计消费额, not the
# repeat spend per purchase day of the CLV models); each is "high" when better than the
# buyers' mean.

# %%
display(Markdown(glossary.table(["recency", "frequency", "total_spend", "repurchase_rate"], currency=currency)))

# %%
summary = rfm.rfm_summary(ds)
segments = rfm.rfm_segments(summary, scheme="cn")
seg = segments.groupby("segment", as_index=False).agg(buyers=("person_id", "size"), value=("total_value", "sum"))
seg["value_share"] = seg["value"] / seg["value"].sum()
seg = seg.sort_values("value", ascending=False)
ax = plotting.bar(seg, "segment", "value_share", horizontal=True, values="percent",
                  title="各分层成交额占比 share of GMV by RFM class")
plotting.percent_axis(ax, "x")
ax.set_xlabel("")
ax.set_ylabel("");

# %%
repurchase_rate = float((summary["frequency"] >= 1).mean())
metrics["repurchase_rate"] = repurchase_rate
display(Markdown(f"复购率 repurchase rate: **{repurchase_rate:.1%}** of buyers bought on two or more days."))

# %% [markdown]
# ## 5. What an operator should do next 下一步
#
# Computed from the results above: each recommendation cites the number and interval it
# rests on; where the evidence is too thin the recommendation says so.

# %%
stages = metrics["stage_share_end"]
lapsed = stages.get("dormant", 0) + stages.get("churned", 0)
buyers_share = 1 - stages.get("prospect", 0)
lapsed_share = lapsed / buyers_share if buyers_share > 0 else float("nan")
bullets = cases.recommendations(story, head, lapsed_share=lapsed_share, thresholds=thresholds,
                                article_rates=metrics.get("article_rates"), touches=js)
bullets += cases.channel_advice(evidence["calibrated"], evidence["scores"], observational="shapley",
                               observational_share=shap)
metrics["recommendations"] = len(bullets)
display(Markdown("\n".join(f"* {b}" for b in bullets)))
display(Markdown("*Standing practice from the articles (text, not computed from this data):* "
                 + " ".join(story["next_steps"])))

# %% [markdown]
# ## 6. Limitations 局限

# %%
limits = cases.limitations(story, head, cal, persons, thresholds)
display(Markdown("\n".join(f"* {x}" for x in limits)))

# %%
row = compare.iloc[0]
summary_box.update(Markdown(
    "### Summary 摘要\n\n"
    f"* **{head['label']}: {head['text']}** ({row['n']}; 95% interval {row['95% interval']}). "
    f"The articles reported *{row['reported (articles)']}*"
    + ("; measured the same way here." if row["same measure"] == "yes" else
       "; the data cannot test that figure as reported (see section 3).") + "\n"
    f"* {len(bullets)} recommendations below; first: {bullets[0] if bullets else 'none'}\n"
    f"* Lifecycle thresholds: dormant {thresholds['dormant_days']} days, churned {thresholds['churn_days']} days "
    f"({thresholds['source']}); {lapsed_share:.0%} of buyers lapsed on the last day.\n"
    f"* {len(limits)} limitations (section 6); every number is from **simulated** data."))
reports.record_metrics(metrics, output_dir, report_name)
display(Markdown(cases.footer({"scenario": scenario, "persons": persons, "seed": seed, "windows": windows,
                               "dormant_days": thresholds["dormant_days"], "churn_days": thresholds["churn_days"],
                               "data": data_dir or "simulated"})))
