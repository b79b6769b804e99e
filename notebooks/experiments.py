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
# # Experiments 实验: did the campaign work?
#
# A campaign's effect is only known against people who did not get it. This notebook
# measures the effect of a randomised campaign (treatment 实验组 vs holdout 对照组) in
# the scenario's own data, shrinks its interval with pre-period data (CUPED), looks
# for effects that differ by coupon tier, sizes the next experiment (power 统计功效),
# and finally checks the estimators on a campaign whose true effect is known.

# %% tags=["parameters"]
scenario = "tea"  # scenario preset: beauty, tea, sportswear, apparel, eyewear
persons = 5000  # simulated persons
seed = 7  # random seed (same seed, same data)
data_dir = ""  # dataset folder (empty: synthetic/data/SCENARIO)
output_dir = ""  # folder for the metrics JSON (empty: not written)
report_name = "experiments"  # name of the report and its metrics file

# %%
import pandas as pd
from IPython.display import Markdown, display

from privdomain import experiments as ex
from privdomain import glossary, plotting
from privdomain.reports import cases
from privdomain.reports import runner as reports

plotting.use_style()
ds = reports.load_or_simulate(scenario, persons, seed, data_dir)
metrics = {}

OUTCOMES = {"converted": "实验转化率 conversion", "repurchased": "复购率 repurchase", "revenue": "人均成交额 revenue per person"}
METHODS = {"dim_hc1": "difference in means 均值差 (HC1)", "cuped_hc1": "CUPED 方差缩减 (HC1)",
           "logit_ame": "logit marginal effect 逻辑回归边际效应"}


def effects_view(eff, by=None):
    """Effects as the glossary states them: a rate's uplift in percentage points (1 decimal) with
    its 95% CI, revenue per person in yuan, the relative lift in %, n per arm and the p-value."""
    rows = []
    for r in eff.to_dict("records"):
        money = r["outcome"] == "revenue"
        unit = (lambda v: f"{'-' if v < 0 else '+'}¥{abs(v):,.2f}") if money else (lambda v: plotting.pp(v, 1))
        row = {} if by is None else {by: r[by]}
        rel = r.get("relative_lift", float("nan"))
        p = r.get("p_value_adj", r["p_value"]) if by else r["p_value"]
        row.update({
            "outcome": OUTCOMES.get(r["outcome"], r["outcome"]), "method": METHODS.get(r["method"], r["method"]),
            "n treatment / holdout": f"{int(r['n_treatment']):,} / {int(r['n_control']):,}",
            "holdout": plotting.yuan(r["control_mean"], 2) if money else plotting.percent(r["control_mean"]),
            "uplift": unit(r["estimate"]), "95% CI": f"{unit(r['ci_low'])} to {unit(r['ci_high'])}",
            "relative lift": f"{rel * 100:+.1f}%" if rel == rel else "n/a",
            ("p (Holm-adjusted)" if by else "p"): "< 0.001" if p < 0.001 else f"{p:.3f}"})
        rows.append(row)
    return pd.DataFrame(rows).style.hide(axis="index")


def pp_axis(ax, axis="x"):
    """Tick labels in percentage points (an uplift is a difference of rates, not a rate)."""
    from matplotlib.ticker import FuncFormatter

    getattr(ax, f"{axis}axis").set_major_formatter(FuncFormatter(lambda v, _: f"{v * 100:+.0f} pp" if v else "0"))
    return ax

# %% [markdown]
# ## 1. The scenario's experiment 场景实验
#
# The simulator randomises persons into arms (the `assignments` table). For each person
# assigned at `t0`, `experiments.campaign_frame` measures the outcomes in the 30 days
# after `t0` and the covariates in the 90 days before. Rates are in %, their
# differences (uplifts) in percentage points (pp), relative lifts in %.

# %%
display(Markdown(glossary.table(["experiment_conversion_rate", "repurchase_rate", "revenue_per_person", "uplift_pp",
                                 "relative_lift", "ci95", "small_group"])))

# %%
assigned = ds.read("assignments") if "assignments" in ds.tables() else pd.DataFrame(columns=["experiment"])
# channel lift tests (lift_<channel>) are analysed with attribution.lift (the attribution report)
names = sorted(n for n in assigned["experiment"].unique() if not str(n).startswith("lift_"))
display(Markdown("Experiments in this dataset: " + (", ".join(f"`{n}`" for n in names) if names else "none") + "."))
frames = {n: ex.campaign_frame(ds, n) for n in names}
for n, f in frames.items():
    display(Markdown(f"`{n}`: " + ", ".join(f"{arm} {k:,}" for arm, k in f.attrs["arms"].items())))

# %%
for n, f in frames.items():
    eff = ex.campaign_effects(f, ["converted", "repurchased", "revenue"], covariates=["pre_purchases", "pre_revenue"])
    dim = eff[eff["method"] == "dim_hc1"].set_index("outcome")
    display(Markdown(f"### `{n}`"))
    display(effects_view(eff))
    base = f.loc[f["arm"] != "treatment"].groupby("arm")[["converted", "repurchased"]].mean().iloc[0]
    lift = dim.loc["repurchased", "estimate"] / base["repurchased"] if base["repurchased"] > 0 else float("nan")
    display(Markdown(f"Repurchase rate in the holdout **{base['repurchased']:.1%}** "
                     f"(n = {int(dim.loc['repurchased', 'n_control']):,}); uplift "
                     f"**{plotting.pp(dim.loc['repurchased', 'estimate'], 1)}** (95% CI "
                     f"{plotting.pp(dim.loc['repurchased', 'ci_low'], 1)} to "
                     f"{plotting.pp(dim.loc['repurchased', 'ci_high'], 1)}, n = "
                     f"{int(dim.loc['repurchased', 'n_treatment']):,} treated), relative lift **{lift * 100:+.1f}%**."))
    arms = pd.concat([cases.arm_rates(f, y, segment="__none__").assign(outcome=y) for y in ("converted", "repurchased")],
                     ignore_index=True)
    display(arms[["outcome", "arm", "n", "successes", "rate", "low", "high", "too_small"]]
            .assign(outcome=arms["outcome"].map(OUTCOMES))
            .rename(columns={"low": "95% low", "high": "95% high", "too_small": "too small ⚠"})
            .style.hide(axis="index").format({"rate": "{:.1%}", "95% low": "{:.1%}", "95% high": "{:.1%}",
                                              "n": "{:,}", "successes": "{:,}",
                                              "too small ⚠": plotting.flag_text}, na_rep="n/a"))
    warn = plotting.small_warning(arms, ["outcome", "arm"])
    if warn:
        display(Markdown(warn))
    metrics[n] = {"uplift_repurchased": float(dim.loc["repurchased", "estimate"]),
                  "uplift_converted": float(dim.loc["converted", "estimate"]),
                  "uplift_revenue": float(dim.loc["revenue", "estimate"]),
                  "holdout_repurchase_rate": float(base["repurchased"]), "relative_lift_repurchased": float(lift)}
    shown = eff[eff["outcome"] != "revenue"]
    ax = ex.forest_plot(shown.assign(outcome=shown["outcome"].map(OUTCOMES), method=shown["method"].map(METHODS)),
                        label=["outcome", "method"],
                        title=f"{n}: uplift with 95% CI 提升与置信区间")
    pp_axis(ax)
    ax.set_xlabel("uplift, percentage points 绝对提升 (95% CI)")

# %% [markdown]
# ### By coupon tier 分层效应
#
# Naixue's coupons differed by tier (first-time buyers, 2-5 purchases, 5+ purchases), so
# the effect may too. Testing several tiers at once raises the chance of a false
# positive: the p-values are adjusted (Holm: family-wise error rate ≤ 5%), and a Wald
# test asks whether the effect is the same in every tier. The last column is the effect
# the simulator actually applied (`truth/experiments.parquet`): the estimate should
# cover it in about 95 of 100 runs.

# %%
truth_file = ds.path / "truth" / "experiments.parquet"
truth_fx = pd.read_parquet(truth_file) if truth_file.exists() else pd.DataFrame(columns=["experiment", "arm"])
for n, f in frames.items():
    both = f.groupby("segment")["arm"].nunique()
    keep = both[both >= 2].index
    if f["segment"].nunique() < 2 or len(keep) < 1:
        continue
    het = ex.heterogeneous_effects(f[f["segment"].isin(keep)], "repurchased", by="segment")
    dropped = sorted(set(f["segment"]) - set(keep))
    display(Markdown(f"`{n}`, outcome: repurchased" + (f" (tiers without a holdout at this size, left out: "
                                                     f"{', '.join(dropped)})" if dropped else "")))
    h = ex.heterogeneity_test(f[f["segment"].isin(keep)], "repurchased", by="segment")
    tr = truth_fx[truth_fx["experiment"] == n].rename(columns={"true_effect": "simulated truth"})
    tr = tr.assign(segment=tr["arm"].astype(str).str.split(":").str[0])  # arms read "<tier>:treatment"
    het = het.merge(tr[["segment", "simulated truth"]], on="segment", how="left")
    holdout_n = f[f["arm"] != "treatment"].groupby("segment").size()
    het = het.assign(holdout_n=het["segment"].map(holdout_n).fillna(0).astype(int))
    het = het.assign(too_small=(het["holdout_n"] < plotting.SMALL_N)
                     | ((het["ci_high"] - het["ci_low"]) > plotting.WIDE_INTERVAL))
    display(het[["segment", "n", "holdout_n", "control_mean", "estimate", "ci_low", "ci_high", "p_value_adj",
                 "simulated truth", "too_small"]]
            .rename(columns={"estimate": "uplift (pp)", "ci_low": "95% low (pp)", "ci_high": "95% high (pp)",
                             "too_small": "too small ⚠", "holdout_n": "holdout n", "control_mean": "holdout rate",
                             "p_value_adj": "p (Holm-adjusted)"})
            .style.hide(axis="index").format({"holdout rate": "{:.1%}", "uplift (pp)": plotting.pp,
                                              "95% low (pp)": plotting.pp, "95% high (pp)": plotting.pp,
                                              "simulated truth": plotting.pp, "n": "{:,}", "holdout n": "{:,}",
                                              "p (Holm-adjusted)": lambda v: "< 0.001" if v < 0.001 else f"{v:.3f}",
                                              "too small ⚠": plotting.flag_text}, na_rep="n/a"))
    warn = plotting.small_warning(het.rename(columns={"holdout_n": "holdout n"}), "segment", n="holdout n")
    if warn:
        display(Markdown(warn))
    if h:
        display(Markdown(f"Same effect in every tier? Wald χ² = {h['statistic']:.1f} on {h['df']} df, "
                         f"p = {h['p_value']:.3g}."))

# %% [markdown]
# ## 2. Sizing the next experiment 样本量
#
# The minimum detectable effect (最小可检测效应 MDE) is the smallest true uplift a test
# finds with probability `power` (80%) at level `alpha` (5%). For a proportion `p0`
# and equal arms, `n per arm ≈ (z(1-α/2) + z(power))² · 2 p̄(1-p̄) / MDE²`.

# %%
p0 = next(iter(metrics.values()))["holdout_repurchase_rate"] if metrics else 0.2
p0 = p0 if 0 < p0 < 1 else 0.2
mde = pd.concat([ex.mde_proportion(p0, n) for n in (500, 1000, 2000, 5000, 10000, 20000)], ignore_index=True)
ax = plotting.line(mde.assign(n=mde["n_control"]), "n", "mde",
                   title=f"最小可检测效应 MDE by holdout size (baseline {p0:.0%}, 80% power)")
ax.set_xscale("log")
pp_axis(ax, "y")
ax.set_xlabel("persons per arm 每组人数")
ax.set_ylabel("MDE, absolute uplift in pp");

# %%
needed = ex.sample_size_proportion(p0, 0.02)
n_needed = int(needed["n_control"].iloc[0])
metrics["power"] = {"baseline": float(p0), "n_per_arm_for_2pt_mde": n_needed}
metrics["summary"] = "; ".join(f"{n}: repurchase uplift {plotting.pp(m['uplift_repurchased'], 1)}"
                               for n, m in metrics.items() if isinstance(m, dict) and "uplift_repurchased" in m)
display(Markdown(f"To detect a 2 pp uplift on a {p0:.0%} baseline with 80% power: **{n_needed:,} persons per arm**."))

# %% [markdown]
# ## 3. Checking the estimators on a known truth 已知真值检验
#
# `experiments.simulate_campaign` draws a campaign whose true effect is known (8, 5 and
# 1 points by tier), so the estimates can be checked against it.
#
# ### Difference in means 转化率提升

# %%
display(Markdown(glossary.table(["experiment_conversion_rate", "uplift_pp", "relative_lift", "ci95"])))

# %% [markdown]
# The standard error is heteroskedasticity-robust (HC1): the outcome's variance may
# differ between the arms.

# %%
tiers = {"first_time": 0.08, "2-5": 0.05, "5+": 0.01}
campaign = ex.simulate_campaign(max(int(persons), 2000), effect=0.05, seed=int(seed), tier_effects=tiers)
truth = ex.campaign_truth(0.05, tier_effects=tiers).effect
dim = ex.difference_in_means(campaign, "converted")
base = campaign.loc[campaign["arm"] == "holdout", "converted"].mean()
row = dim.iloc[0]
display(effects_view(dim.assign(method="dim_hc1")))
display(Markdown(
    f"Holdout conversion **{base:.1%}** (n = {int(row.n_control):,}); uplift **{plotting.pp(row.estimate, 1)}** "
    f"(95% CI {plotting.pp(row.ci_low, 1)} to {plotting.pp(row.ci_high, 1)}, n = {int(row.n):,}), relative lift "
    f"**{row.estimate / base * 100:+.1f}%**. The simulated truth is **{plotting.pp(truth['converted'], 1)}**: "
    + ("the interval covers it." if row.ci_low <= truth["converted"] <= row.ci_high else
       "**the interval misses it.** A 95% interval misses the truth in about 5 runs of 100; this is one of them "
       "(another seed or more persons will usually cover it), which is why one test is not the last word.")))

# %% [markdown]
# ### A tighter interval with pre-period data (CUPED)
#
# CUPED (Controlled-experiment Using Pre-Experiment Data, Deng et al. 2013) subtracts
# the part of the outcome that pre-period behaviour predicts:
# `Y_adj = Y - θ (X - mean(X))` with `θ = cov(Y, X) / var(X)`. The estimate stays
# unbiased (randomisation makes X independent of the arm) and the variance falls to
# `1 - corr(Y, X)²` times the unadjusted variance (方差缩减 variance reduction).

# %%
effects = ex.campaign_effects(campaign, ["converted", "revenue"], covariates=["pre_purchases"])
display(effects_view(effects))

# %%
conv = effects[effects["outcome"] == "converted"].copy()
ax = plotting.new_axes("转化率提升及95%置信区间 uplift on conversion with 95% CI")
ypos = range(len(conv))
ax.errorbar(conv["estimate"], list(ypos), xerr=[conv["estimate"] - conv["ci_low"], conv["ci_high"] - conv["estimate"]],
            fmt="o", color=plotting.PALETTE[0], capsize=4)
ax.axvline(truth["converted"], color=plotting.PALETTE[3], linestyle="--", label="simulated truth 真实效应")
ax.axvline(0, color="#888", linewidth=0.8)
ax.set_yticks(list(ypos), labels=conv["method"].map(METHODS).tolist())
pp_axis(ax)
ax.set_xlabel("uplift, percentage points 绝对提升")
ax.legend(loc="lower right");

# %% [markdown]
# ### By tier, on the known truth
#
# The same estimator within each coupon tier. Testing three tiers at once raises the
# chance of a false positive, so the p-values are adjusted (Holm: family-wise error
# rate ≤ 5%), and a Wald test asks whether the effect is the same in every tier.

# %%
het = ex.heterogeneous_effects(campaign, "converted", by="segment")
display(effects_view(het.assign(method="dim_hc1"), by="segment"))
h = ex.heterogeneity_test(campaign, "converted", by="segment")
if h:
    display(Markdown(f"Same effect in every tier? Wald χ² = {h['statistic']:.1f} on {h['df']} df, "
                     f"p = {h['p_value']:.3g}."))

# %% [markdown]
# ## 4. Changes rolled out in waves 分批上线
#
# Store and account changes (a guide programme, an article redesign) often reach units
# in waves, and their effect grows as staff and readers get used to them. Two-way fixed
# effects (`ex.did`) then compares late units with units treated earlier, and can be far
# off. Callaway & Sant'Anna's group-time estimator (`ex.staggered_did`) compares each
# wave only with units not yet (or never) treated. Below, a simulated panel whose effect
# starts at 0.5 and grows by 0.5 per period after the change. The single TWFE number
# averages the wrong comparisons; its event study, with a dummy per period since the
# change, comes much closer here, and the group-time estimates follow the truth:
#
# | term | meaning | formula |
# | --- | --- | --- |
# | ATT(g, t) 分组-时期效应 | effect in period t on units first treated in period g | `mean(Y_t - Y_{g-1} | wave g) - mean(Y_t - Y_{g-1} | never treated)` |
# | 平均效应 overall ATT | average over treated unit-periods | cells weighted by wave size |
# | 动态效应 effect by exposure | effect e periods after the change | cells with `t - g = e`, weighted by wave size |

# %%
panel = ex.simulate_panel(300, 12, effect=0.5, dynamic=0.5, seed=seed)
true_att = panel.loc[panel.treated == 1, "true_effect"].mean()  # the simulated truth
twfe = ex.did(panel).iloc[0]
cs = ex.staggered_did(panel).iloc[0]
display(pd.DataFrame({"estimator": ["two-way fixed effects 双向固定效应", "Callaway & Sant'Anna 分组-时期"],
                      "estimate": [twfe.estimate, cs.estimate], "ci_low": [twfe.ci_low, cs.ci_low],
                      "ci_high": [twfe.ci_high, cs.ci_high], "truth": [true_att, true_att]})
        .style.hide(axis="index").format(precision=3))

# %%
es = ex.event_study(panel, leads=4, lags=6)
ax = ex.event_study_plot(es, title="按距上线期数的效应 effect by periods since the change")
dyn = ex.staggered_did(panel, aggregate="dynamic")
dyn = dyn[(dyn.exposure >= -4) & (dyn.exposure <= 6)]
ax.errorbar(dyn.exposure + 0.1, dyn.estimate, yerr=[dyn.estimate - dyn.ci_low, dyn.ci_high - dyn.estimate],
            fmt="s", color=plotting.PALETTE[2], capsize=3, label="Callaway & Sant'Anna")
e = dyn.exposure[dyn.exposure >= 0]
ax.plot(e, 0.5 + 0.5 * e, "--", color=plotting.PALETTE[3], label="simulated truth 真实效应")
ax.plot([], [], "o-", color=plotting.PALETTE[1], label="TWFE event study 事件研究")
ax.legend(loc="lower right");

# %%
metrics["staggered"] = {"true_att": float(true_att), "twfe": float(twfe.estimate),
                        "callaway_santanna": float(cs.estimate), "cs_ci_low": float(cs.ci_low),
                        "cs_ci_high": float(cs.ci_high)}

# %%
metrics["known_truth"] = {"uplift_converted": float(row.estimate), "ci_low": float(row.ci_low),
                          "ci_high": float(row.ci_high), "true_uplift_converted": float(truth["converted"])}
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

answers = {"experiment_relative_lift": None, "experiment_n_for_3pp": None}  # your answers
exercises.show("experiments", ds, answers)
