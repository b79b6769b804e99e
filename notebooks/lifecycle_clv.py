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
# # Lifecycle, repurchase and customer value 生命周期、复购与客户价值
#
# Private-domain operations aim at lifetime value: bringing buyers back costs nothing
# per touch once they are in the Official Account, a group or a guide's WeCom. This
# notebook follows persons through lifecycle stages (the lifecycle board), sorts buyers
# by recency, frequency and spend (RFM), measures repurchase and its cycle, and
# forecasts each buyer's future value (CLV).

# %% tags=["parameters"]
scenario = "beauty"  # scenario preset: beauty, tea, sportswear, apparel, eyewear
persons = 5000  # simulated persons
seed = 7  # random seed (same seed, same data)
data_dir = ""  # dataset folder (empty: synthetic/data/SCENARIO)
output_dir = ""  # folder for the metrics JSON (empty: not written)
report_name = "lifecycle_clv"  # name of the report and its metrics file
holdout_weeks = 13  # CLV model check: the last weeks held out to test the forecast
dormant_days = None  # lifecycle: days without a purchase before "dormant" (None: from the data)
churn_days = None  # lifecycle: days without a purchase before "churned" (None: from the data)

# %%
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from privdomain import clv, glossary, plotting
from privdomain.boards.overview import overview
from privdomain.clv import rfm
from privdomain.lifecycle import cohorts, repurchase
from privdomain.lifecycle import plots as plot_lifecycle
from privdomain.lifecycle import stages as lifecycle
from privdomain.reports import runner as reports

plotting.use_style()
ds = reports.load_or_simulate(scenario, persons, seed, data_dir)
currency = plotting.currency_of(ds)  # money is shown in the dataset's currency
metrics = {}

# %% [markdown]
# ## 1. The lifecycle board 用户生命周期大盘
#
# Every person is in one stage at the end of each day (first rule that holds; days of the dataset's time zone, Beijing by default):
#
# | stage | rule |
# | --- | --- |
# | 潜客 prospect | touched the brand, never bought |
# | 流失 churned | no purchase in the last *churn* days |
# | 沉睡 dormant | no purchase in the last *dormant* days |
# | 新客 new | first purchase within the last 30 days |
# | 回流 resurrected | bought again after being dormant or churned, within the last 30 days |
# | 忠诚 loyal | 3 or more purchase days |
# | 活跃 active | any other recent buyer |
#
# The dormant and churn thresholds are not fixed at 90 and 180 days: a tea drinker buys
# weekly, an eyewear buyer every year or two, so one pair of numbers would call most
# buyers of one brand lapsed and none of another. They come **from this data**
# (`lifecycle.data_stage_model`): the 80th and 95th percentiles of the gaps between a
# buyer's consecutive purchase days, at least 14 and 30 days (the `dormant_days` and
# `churn_days` parameters override them).
#
# 阶段占比 stage share = `persons in the stage / persons touched so far`. The figure
# shows the buyers' stages (share among persons who bought at least once, weekly); the
# flows (阶段流转) count persons moving from one stage to another between two weeks.

# %%
display(Markdown(glossary.table(["inter_purchase_gap", "dormant_after", "churn_after", "stage_share"])))

# %%
stage_model, thresholds = lifecycle.data_stage_model(ds, dormant_days, churn_days)
metrics["lifecycle_thresholds"] = {k: (int(thresholds[k]) if k.endswith("_days") else thresholds[k])
                                   for k in ("dormant_days", "churn_days", "source")}
if thresholds["source"] == "data":
    how = (f"from the data: the 80th percentile of {thresholds['gaps']:,} gaps between purchase days is "
           f"{thresholds['dormant_gap']:.0f} days, the 95th {thresholds['churn_gap']:.0f} days; floors 14 and 30 days")
elif thresholds["source"] == "default":
    how = "no buyer bought twice, so the gaps cannot say: the defaults of 90 and 180 days"
else:
    how = f"set by the parameters ({thresholds['source']})"
display(Markdown(f"**Lifecycle thresholds used here:** dormant after **{thresholds['dormant_days']} days** without a "
                 f"purchase, churned after **{thresholds['churn_days']} days** ({how})."))

# %%
ov = overview(ds)
board = lifecycle.lifecycle_board(ds, ov["first_day"], ov["last_day"], freq="W", model=stage_model)
buyer_stages = [st for st in lifecycle.STAGES if st != "prospect"]
wide = board.pivot(index="period", columns="stage", values="persons")[buyer_stages]
wide = wide.div(wide.sum(axis=1).where(lambda x: x > 0), axis=0).fillna(0)
ax = plotting.new_axes("用户生命周期大盘 lifecycle board: buyers by stage, weekly (prospects left out)")
ax.stackplot(wide.index, wide.T.to_numpy(), labels=glossary.display_names(wide.columns, "stage"),
             colors=[plot_lifecycle.STAGE_COLORS.get(st, "#999999") for st in wide.columns])
ax.set_xlim(wide.index.min(), wide.index.max())
ax.set_ylim(0, 1)
plotting.percent_axis(ax)
locator = mdates.AutoDateLocator(maxticks=8)  # month labels that do not overlap
ax.xaxis.set_major_locator(locator)
ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), reverse=True);  # top to bottom, as stacked

# %%
last = board[board["period"] == board["period"].max()].set_index("stage")
metrics["last_week_stage_share"] = {k: float(v) for k, v in last["share"].items()}
display(Markdown(
    f"In the last week, **{last.loc['churned', 'share']:.0%}** of persons touched so far are churned (no purchase "
    f"for {thresholds['churn_days']} days) and **{last.loc['dormant', 'share']:.0%}** dormant (none for "
    f"{thresholds['dormant_days']} days), against **{last.loc['prospect', 'share']:.0%}** prospects who never "
    f"bought. Youshu's example board showed 70% churned: the signal to win buyers back."))

# %%
flows = lifecycle.stage_flows(ds, ov["first_day"], ov["last_day"], freq="W", model=stage_model)
last_period = flows["period"].max()
matrix = lifecycle.flow_matrix(flows, period=last_period)
display(Markdown(f"Flows into the week of {pd.Timestamp(last_period).date()} (rows: stage the week before; "
                 f"columns: stage now):"))
display(matrix.rename(index=lambda st: glossary.display_name(st, "stage"),
                      columns=lambda st: glossary.display_name(st, "stage"))
        .rename_axis(index="上周 week before", columns="本周 now")
        .style.format("{:,.0f}").background_gradient(cmap="Greens", axis=None))
# the same week as a flow chart: stages a week before (left) to stages now (right)
ax = plot_lifecycle.plot_stage_sankey(flows, period=last_period, include_stays=False)

# %% [markdown]
# ## 2. RFM summary RFM 汇总
#
# Per buyer, from the `pay` events (purchases on the same day count as one purchase):

# %%
display(Markdown(glossary.table(['frequency', 'recency', 't_x', 'age_T', 'total_spend', 'repeat_aov', 'repurchase_rate'], currency=currency)))

# %%
summary = rfm.rfm_summary(ds)
repurchase_rate = float((summary["frequency"] >= 1).mean())
metrics.update({"buyers": int(len(summary)), "repurchase_rate": repurchase_rate,
                "mean_frequency": float(summary["frequency"].mean()),
                "mean_total_value": float(summary["total_value"].mean())})
cols = {"frequency": glossary.TERMS["frequency"].name + " (days)", "t_x": "t_x (days 天)",
        "T": "T " + glossary.TERMS["age_T"].en + " 客龄 (days)",
        "time_since_last": glossary.TERMS["recency"].zh + " recency (days)",
        "total_value": glossary.TERMS["total_spend"].zh + " total spend",
        "monetary_value": glossary.TERMS["repeat_aov"].zh + " repeat spend per purchase day"}
stats = summary[list(cols)].describe().T[["mean", "25%", "50%", "75%", "max"]].rename(index=cols).rename(
    columns={"mean": "均值 mean", "25%": "25% 分位", "50%": "中位数 median", "75%": "75% 分位", "max": "最大 max"})
money_rows = [cols["total_value"], cols["monetary_value"]]
display(stats.rename_axis(index="指标 measure").style
        .format("{:,.1f}").format(plotting.money_format(currency, compact=True), subset=(money_rows, stats.columns)))
display(Markdown(f"复购率 repurchase rate: **{repurchase_rate:.1%}** of {len(summary):,} buyers bought on two or more days."))

# %% [markdown]
# ## 3. Repurchase 复购
#
# A purchase occasion is a day (dataset's zone) with a `pay` event; a repurchase is a purchase on
# a later day.

# %%
display(Markdown(glossary.table(['repurchase_rate_w', 'repurchase_cycle'], currency=currency)))

# %%
rates = repurchase.repurchase_rate(ds, windows=(7, 30, 60, 90))
shown = plotting.rate_intervals(rates[["window_days", "buyers", "repurchasers", "not_observable"]], "repurchasers",
                                "buyers")
display(shown.rename(columns={"window_days": "window (days)", "buyers": "buyers n", "low": "95% low", "high": "95% high",
                              "too_small": "too small ⚠", "not_observable": "window not yet over"})
        .style.hide(axis="index").format({"rate": "{:.1%}", "95% low": "{:.1%}", "95% high": "{:.1%}",
                                          "buyers n": "{:,}", "repurchasers": "{:,}", "window not yet over": "{:,}",
                                          "too small ⚠": plotting.flag_text}, na_rep="n/a"))
metrics["repurchase_rate_windows"] = {int(w): float(r) for w, r in zip(rates["window_days"], rates["rate"])}

# %%
curve = repurchase.repurchase_curve(ds, which="first")
ax = plotting.new_axes("首购后复购曲线 cumulative repurchase after the first purchase (Kaplan-Meier)")
ax.step(curve["days"], curve["repurchased"], where="post", color=plotting.PALETTE[0])
ax.fill_between(curve["days"], 1 - curve["ci_upper"], 1 - curve["ci_lower"], step="post", alpha=0.2,
                color=plotting.PALETTE[0])
plotting.percent_axis(ax)
ax.set_xlabel("days since the first purchase 首购后天数")
ax.set_ylabel("repurchased 已复购");
half = curve.loc[curve["repurchased"] >= 0.5 * curve["repurchased"].max(), "days"]
metrics["days_to_half_of_repurchases"] = float(half.iloc[0]) if len(half) else None

# %% [markdown]
# ### Cohorts 同期群
#
# Buyers grouped by the month of their first purchase (cohort 同期群); period `k` is the
# k-th month after it. 留存率 retention = `cohort members who bought in period k /
# cohort size`.

# %%
table = cohorts.cohort_table(ds, freq="M")
tri = cohorts.cohort_triangle(table, value="retention")
tri.index = [pd.Timestamp(i).strftime("%Y-%m") for i in tri.index]
ax = plotting.heatmap(tri, title="月度同期群留存 monthly cohort retention (share of buyers buying again)", fmt=".0%")
ax.set_xlabel("months since the first purchase 首购后月数")
ax.set_ylabel("first-purchase month 首购月份");
metrics["month1_retention_mean"] = float(tri[1].mean()) if 1 in tri.columns else None

# %% [markdown]
# ## 4. RFM segments 客户分层
#
# The eight classes of Chinese CRM practice (重要价值客户 ... 一般挽留客户): each of R,
# F and M is *high* when better than the buyers' mean (recency: fewer days since the
# last purchase). 重要挽留客户 (high spend, low recency and frequency) are the buyers to
# win back first.

# %%
seg = rfm.rfm_segments(summary, scheme="cn")
table = seg.groupby("segment", as_index=False).agg(buyers=("person_id", "size"), gmv=("total_value", "sum"))
table["buyer_share"] = table["buyers"] / table["buyers"].sum()
table["gmv_share"] = table["gmv"] / table["gmv"].sum()
table = table.sort_values("gmv", ascending=False)
display(table.rename(columns={"segment": "客户分层 RFM segment", "buyers": "购买人数 buyers (n)",
                              "gmv": "成交额 GMV", "buyer_share": "人数占比 share of buyers",
                              "gmv_share": "成交额占比 share of GMV"})
        .style.hide(axis="index").format({"购买人数 buyers (n)": "{:,}", "成交额 GMV": plotting.money_format(currency),
                                          "人数占比 share of buyers": "{:.1%}", "成交额占比 share of GMV": "{:.1%}"}))
metrics["segments"] = dict(zip(table["segment"], table["buyers"].astype(int)))

# %%
long = table.melt(id_vars="segment", value_vars=["buyer_share", "gmv_share"], var_name="share of", value_name="share")
long["share of"] = long["share of"].map({"buyer_share": "buyers 人数", "gmv_share": "GMV 成交额"})
ax = plotting.bar(long, "segment", "share", hue="share of", horizontal=True, title="分层人数与成交额占比 buyers and GMV by segment")
plotting.percent_axis(ax, "x")
ax.set_ylabel("");

# %% [markdown]
# ## 5. Customer lifetime value 客户终身价值 (CLV)
#
# Two models fitted by maximum likelihood on the RFM summary (time unit: weeks):
#
# * **BG/NBD** (Fader, Hardie and Lee 2005): while *alive* a buyer purchases at a rate
#   `λ ~ Gamma(r, α)`; after each purchase they drop out with probability
#   `p ~ Beta(a, b)`. It gives `P(alive)` (存活概率) and the expected purchases in the
#   next `t` weeks given `(frequency, t_x, T)`.
# * **Gamma-Gamma** (Fader, Hardie and Lee 2005): the spend per purchase, independent of
#   the purchase count, gives the expected spend `E[Z]` of each buyer.
#
# 客户终身价值 CLV over `h` weeks = `E[Z] · Σ_i (E[X(i·h/n)] - E[X((i-1)·h/n)]) / (1 + d)^i`
# with `n` periods and discount rate `d` per period (here 26 weeks, 6 periods, 1%).
# Buyers whose first purchase falls on the last day of the data (`T = 0`) are left out
# of the fit: nothing has been observed about them yet.

# %%
def show(value, fmt, missing="n/a"):
    """A number formatted, or "n/a (reason)" when it is missing (never "nan")."""
    return fmt(value) if value is not None and np.isfinite(value) else missing


weekly = rfm.rfm_summary(ds, time_unit="W")
weekly = weekly[weekly["T"] > 0].copy()  # first purchase on the last day: no time observed yet
bg = clv.BetaGeo().fit(weekly)
gg = clv.GammaGamma().fit(weekly)
fit = bg.summary()


def plain(v):
    """A parameter value in plain digits (thousands separators, about four significant figures);
    beyond 10⁹ or below 10⁻⁴ the bound only says the data leave the parameter unbounded."""
    if v is None or not np.isfinite(v):
        return "n/a"
    a = abs(v)
    if a >= 1e9:
        return "> 1,000,000,000"
    if 0 < a < 1e-4:
        return "< 0.0001"
    return f"{v:,.0f}" if a >= 1000 else f"{v:,.{max(0, 3 - int(np.floor(np.log10(a))))}f}" if a > 0 else "0"


display(fit.drop(columns="interval").rename(columns={
    "estimate": "估计值 estimate", "se": "标准误 se", "se_log": "对数标准误 se of log", "lower_95": "95% 下限 low",
    "upper_95": "95% 上限 high"}).rename_axis(index="参数 parameter").style.format(plain, na_rep="n/a"))
unbounded = fit.index[~np.isfinite(fit["se"])].tolist()
display(Markdown(
    "95% intervals on the log scale (`estimate · exp(±1.96 · se_log)`, `se_log = se / estimate`): every "
    "parameter is positive, so the interval is too (a symmetric `estimate ± 1.96 se` can cross zero). "
    + (f"**n/a** for {', '.join(unbounded)}: the likelihood is flat there (with {len(weekly):,} buyers the "
       "fit sends them towards infinity, i.e. the same dropout probability for everyone), so the data "
       "cannot bound them." if unbounded else "")))
pred = bg.predict(weekly, t=26.0)
weekly["p_alive"] = pred["p_alive"].to_numpy()
weekly["expected_purchases_26w"] = pred["expected_purchases"].to_numpy()
weekly["clv_26w"] = gg.customer_lifetime_value(bg, weekly, horizon=26.0, periods=6, discount_rate=0.01)
mean_clv = float(weekly["clv_26w"].mean())
metrics.update({"bgnbd_params": {k: float(v) for k, v in bg.params_.items()},
                "bgnbd_intervals": {k: [float(lo), float(hi)] for k, lo, hi in
                                    zip(fit.index, fit["lower_95"], fit["upper_95"])},
                "mean_p_alive": float(weekly["p_alive"].mean()),
                "mean_clv_26w": mean_clv,
                "expected_purchases_26w": float(weekly["expected_purchases_26w"].sum()),
                "summary": f"repurchase rate {repurchase_rate:.1%}; mean 26-week CLV "
                           f"{show(mean_clv, plotting.money_format(currency, compact=True), 'n/a')} per buyer"})
once = float((weekly["frequency"] == 0).mean())
display(Markdown(
    f"Mean P(alive) **{weekly['p_alive'].mean():.0%}**; expected purchases in the next 26 weeks: "
    f"**{show(weekly['expected_purchases_26w'].sum(), '{:,.0f}'.format)}** by {len(weekly):,} buyers; mean "
    f"26-week CLV **{show(mean_clv, plotting.money_format(currency, compact=True), 'n/a (the model gives no forecast)')}** per buyer. "
    f"Read P(alive) with care: BG/NBD lets a buyer drop out only right after a repeat purchase, so the "
    f"{once:.0%} of buyers who bought once have P(alive) = 100% by construction; section 6 scores it."))

# %%
# value groups by rank (ties broken by order): deciles, or fewer groups when there are few buyers
valued = weekly[np.isfinite(weekly["clv_26w"])]
groups = int(min(10, max(1, len(valued) // 10)))
if groups >= 2:
    valued = valued.assign(decile=pd.qcut(valued["clv_26w"].rank(method="first"), groups,
                                          labels=[f"D{i}" for i in range(1, groups + 1)]))
    dec = valued.groupby("decile", observed=True, as_index=False).agg(
        buyers=("clv_26w", "size"), clv=("clv_26w", "sum"), p_alive=("p_alive", "mean"))
    dec["clv_share"] = dec["clv"] / dec["clv"].sum()
    name = "十分位 decile" if groups == 10 else f"{groups} equal groups"
    ax = plotting.bar(dec, "decile", "clv_share", values="percent",
                      title=f"预测CLV占比 share of forecast 26-week CLV by buyer {name} (D{groups} = most valuable; "
                            f"{dec['buyers'].min():,}-{dec['buyers'].max():,} buyers each)")
    plotting.percent_axis(ax)
    ax.set_xlabel("")
    ax.set_ylabel("share of CLV");
else:
    display(Markdown(f"n/a: {len(valued)} buyers with a CLV forecast, too few to split into value groups."))

# %% [markdown]
# ## 6. Model checks 模型检验
#
# A forecast is only as good as the model behind it. Three checks (Fader, Hardie and Lee
# 2005; lifetimes' `plot_period_transactions` and
# `plot_calibration_purchases_vs_holdout_purchases`):
#
# * **Period transactions 购买次数分布**: how many buyers the fitted model expects to have
#   made 0, 1, 2, ... repeat purchases in their own time since the first purchase
#   (`E_k = Σ_i P(X(T_i) = k)`), beside how many did; Pearson's
#   `X² = Σ (observed - expected)² / expected` over groups with expected ≥ 5, with
#   `groups - 1 - 4` degrees of freedom.
# * **Calibration / holdout 校准期与验证期**: fit on the data up to the last weeks (13 by
#   default, the parameter `holdout_weeks`), predict each buyer's purchases in the held-out weeks, compare with what they
#   bought, by the number of repeat purchases in calibration (mean ± 1.96 se).
# * **Against the truth 对照真实值** (simulated data only): the simulator knows who has
#   left for good (their latent dropout time has passed). P(alive) is scored by the
#   Brier score `mean (P(alive) - alive)²`, against `share · (1 - share)` of the best
#   constant forecast (skill = 1 - Brier / reference; below 0: worse than knowing the share).

# %%
pt = clv.period_transactions(bg, weekly, max_frequency=7)
fit_test = clv.chi_square(pt, n_params=4)
display(pt.rename(columns={"repeat_purchases": "复购次数 repeat purchases", "observed": "实际 observed buyers",
                           "expected": "预期 expected buyers", "observed_share": "observed share",
                           "expected_share": "expected share"})
        .style.hide(axis="index").format({"预期 expected buyers": "{:,.1f}", "observed share": "{:.1%}",
                                          "expected share": "{:.1%}"}))
long = pt.melt(id_vars="repeat_purchases", value_vars=["observed", "expected"], var_name="which", value_name="buyers")
long["which"] = long["which"].map({"observed": "observed 实际", "expected": "BG/NBD expected 模型预期"})
ax = plotting.bar(long, "repeat_purchases", "buyers", hue="which", values="int",
                  title=f"购买次数分布 buyers by repeat purchases: observed vs BG/NBD (n = {len(weekly):,})")
ax.legend(title="")
ax.set_xlabel("repeat purchases since the first 复购次数")
ax.set_ylabel("buyers 人数");
if fit_test["df"] >= 1:
    verdict = (f"X² = {fit_test['chi_square']:.1f} on {fit_test['df']:.0f} df, p = "
               f"{'< 0.001' if fit_test['p_value'] < 0.001 else format(fit_test['p_value'], '.3f')}")
else:
    verdict = (f"X² = {fit_test['chi_square']:.1f}; p-value n/a: only {fit_test['groups']:.0f} groups have "
               f"5 or more expected buyers, too few to test a 4-parameter model")
display(Markdown(f"Period-transactions fit: {verdict}."))
metrics["period_transactions_chi_square"] = {k: float(v) for k, v in fit_test.items()}

# %%
end = pd.Timestamp(ov["last_day"]) + pd.Timedelta(days=1)  # the end of the last day
cal_end = end - pd.Timedelta(weeks=holdout_weeks)
cal = rfm.calibration_and_holdout_data(ds, cal_end, end, time_unit="W")
cal = cal[cal["T"] > 0].copy()
bg_cal = clv.BetaGeo().fit(cal)
ch = clv.calibration_holdout(bg_cal, cal, max_frequency=5)
score = clv.purchase_score(bg_cal.expected_purchases(float(cal["duration_holdout"].iloc[0]), cal),
                           cal["frequency_holdout"])
names = {"calibration_purchases": "校准期复购 calibration repeat purchases", "n": "buyers n",
         "actual_mean": "actual mean 实际", "actual_se": "se of actual", "predicted_mean": "predicted mean 预测",
         "actual_total": "actual total", "predicted_total": "predicted total", "difference": "predicted - actual"}
display(ch.rename(columns=names).style.hide(axis="index").format(
    {names[c]: "{:.3f}" for c in ["actual_mean", "actual_se", "predicted_mean", "difference"]}
    | {names["actual_total"]: "{:,.0f}", names["predicted_total"]: "{:,.1f}"}, na_rep="n/a (one buyer)"))
ax = plotting.new_axes(f"校准期/验证期 holdout purchases per buyer: actual vs BG/NBD "
                       f"(calibration to {(cal_end - pd.Timedelta(days=1)).date()}, {holdout_weeks} weeks held out)")
xs = np.arange(len(ch))
half = 1.96 * ch["actual_se"].fillna(0).to_numpy()
mean = ch["actual_mean"].to_numpy()
ax.errorbar(xs, mean, yerr=[np.minimum(half, mean), half], fmt="o-", capsize=3,  # counts are never below 0
            color=plotting.PALETTE[0], label="actual 实际 (±1.96 se)")
ax.plot(xs, ch["predicted_mean"].to_numpy(), "s--", color=plotting.PALETTE[1], label="BG/NBD predicted 预测")
ax.set_xticks(xs, [f"{g}\nn={n:,}" for g, n in zip(ch["calibration_purchases"], ch["n"])])
ax.set_xlabel("repeat purchases in calibration 校准期复购次数")
ax.set_ylabel("purchases in the holdout 验证期购买次数")
ax.legend(loc="upper left");
few = ch.loc[ch["n"] < 30, "calibration_purchases"].tolist()
display(Markdown(
    (f"Groups {', '.join(few)} have fewer than 30 buyers: their actual means are too noisy to judge the model. "
     if few else "") +
    f"Over the {holdout_weeks} held-out weeks the model predicted **{score['predicted_total']:,.0f}** purchase "
    f"days by {len(cal):,} calibration buyers; they made **{score['actual_total']:,.0f}** "
    f"({show(score['total_error'], '{:+.0%}'.format, 'n/a: no purchases in the holdout')}); mean absolute "
    f"error per buyer {score['mae']:.2f}."))
metrics["holdout"] = {k: float(v) for k, v in score.items()}

# %%
has_truth = (Path(ds.path) / "truth" / "stages.parquet").exists()
if has_truth:
    alive = clv.truth_alive(ds, end, weekly["person_id"]).to_numpy()
    rows, forecasts = [], {}
    for label, model in [("BG/NBD", bg), ("modified BG/NBD", clv.ModifiedBetaGeo().fit(weekly)),
                         ("Pareto/NBD", clv.ParetoNBD().fit(weekly))]:
        forecasts[label] = model.probability_alive(weekly)
        sc = clv.p_alive_score(forecasts[label], alive)
        chi = clv.chi_square(clv.period_transactions(model, weekly), n_params=4)
        rows.append({"model": label, "buyers": int(sc["n"]), "mean P(alive)": sc["mean_p_alive"],
                     "truly alive": sc["alive_share"], "Brier": sc["brier"], "reference": sc["brier_reference"],
                     "skill": sc["brier_skill"], "period X²": chi["chi_square"]})
    scores = pd.DataFrame(rows)
    display(scores.style.hide(axis="index").format({"mean P(alive)": "{:.1%}", "truly alive": "{:.1%}",
                                                    "Brier": "{:.3f}", "reference": "{:.3f}", "skill": "{:+.2f}",
                                                    "period X²": "{:.1f}"}, na_rep="n/a"))
    best = scores.loc[scores["Brier"].idxmin(), "model"]
    ax = plotting.new_axes("P(alive) 校准 calibration against the truth: forecast vs share truly alive, by bin")
    for i, label in enumerate(dict.fromkeys(["BG/NBD", best])):
        tab = clv.p_alive_calibration(forecasts[label], alive, bins=5)
        share = tab["alive_share"].to_numpy()
        ax.errorbar(tab["mean_p_alive"].to_numpy(), share,
                    yerr=np.vstack([share - tab["lower_95"].to_numpy(), tab["upper_95"].to_numpy() - share]).clip(0),
                    fmt="o-", capsize=3, color=plotting.PALETTE[i], label=f"{label} (n per bin: "
                    f"{', '.join(f'{n:,}' for n in tab['n'])})")
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":", label="perfect calibration")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    plotting.percent_axis(ax, "x")
    plotting.percent_axis(ax)
    ax.set_xlabel("forecast P(alive) 预测存活概率")
    ax.set_ylabel("truly alive 真实存活占比")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0));
    bgs = scores.iloc[0]
    display(Markdown(
        f"The truth: **{bgs['truly alive']:.0%}** of these buyers had not left for good at the end of the data; "
        f"BG/NBD's mean P(alive) is **{bgs['mean P(alive)']:.0%}** (Brier {bgs['Brier']:.3f} against "
        f"{bgs['reference']:.3f} for the constant share). The best-scoring model here is **{best}**."))
    metrics["p_alive_truth"] = {r["model"]: {k: float(r[k]) for k in ["mean P(alive)", "truly alive", "Brier",
                                                                     "reference", "skill"]} for r in rows}
else:
    display(Markdown("n/a: this dataset has no `truth/` folder (not simulated), so P(alive) cannot be scored "
                     "against who truly left."))

# %%
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

answers = {"lifecycle_repurchase_45d": None, "lifecycle_dormant_p90": None}  # your answers
exercises.show("lifecycle_clv", ds, answers)
