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
# # Simulating and inspecting data 模拟与检视数据
#
# Every report in this package runs on data from the journey simulator
# (`privdomain.simulate`): a brand's audience moving through ads, the Official Account,
# groups, WeCom guides, live streams, stores and the Mini Program. Unlike real data, a
# simulated dataset comes with **the truth it simulated** (lifecycle stages, what each
# channel really caused, the true effect of experiments), so every metric can be
# scored. This notebook shows what a scenario says, what the dataset holds, whether it
# passes validation, how fragmented the ids are, and what the truth contains.

# %% tags=["parameters"]
scenario = "beauty"  # scenario preset: beauty, tea, sportswear, apparel, eyewear
persons = 5000  # simulated persons
seed = 7  # random seed (same seed, same data)
data_dir = ""  # dataset folder (empty: synthetic/data/SCENARIO)
output_dir = ""  # folder for the metrics JSON (empty: not written)
report_name = "simulate_and_inspect"  # name of the report and its metrics file

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

import privdomain
from privdomain import glossary, identity, plotting
from privdomain.reports import runner as reports
from privdomain.simulate import load_scenario

plotting.use_style()
sc = load_scenario(scenario)
ds = reports.load_or_simulate(scenario, persons, seed, data_dir)
metrics = {"scenario": scenario}

# %% [markdown]
# ## 1. The scenario 场景
#
# A scenario (`synthetic/scenarios/<name>.yaml`) states who is reached and through which
# entry channel, how the channels feed each other (join probabilities and delays), how
# often each channel touches a member and how likely a touch is to lead to a purchase,
# the catalogue, the experiments and how often ids fail to link. The same scenario,
# size and seed always give byte-identical files.

# %%
display(Markdown(f"**{sc.title}**\n\n{sc.description}\n\nChannels: " + ", ".join(f"`{c}`" for c in sc.channels)
                 + f". Period {sc.start} to {sc.end}."))
entry = pd.Series(sc.entry, name="share").sort_values(ascending=False).rename_axis("entry channel").reset_index()
ax = plotting.bar(entry, "entry channel", "share", horizontal=True, values="percent",
                  title="首次触达渠道 entry channel mix (scenario parameter)")
plotting.percent_axis(ax, "x")
ax.set_ylabel("");

# %% [markdown]
# ## 2. The dataset 数据集 and its validation 校验
#
# `privdomain.validate` checks every table against the schema (column types, allowed
# values, keys, timestamps with a time zone, non-negative amounts, refunds that refer to
# earlier orders...) and lists every broken rule; a simulated dataset must pass.

# %%
report = privdomain.validate(ds.path)
counts = pd.Series(ds.manifest["row_counts"], name="rows").rename_axis("table").reset_index()
display(counts.style.hide(axis="index").format({"rows": "{:,}"}))
display(Markdown(f"Validation: **{'passed' if report.ok else 'FAILED'}** — {report.summary()}"))
metrics["valid"] = bool(report.ok)
metrics["row_counts"] = {k: int(v) for k, v in ds.manifest["row_counts"].items()}

# %%
events = ds.read("events", columns=["person_id", "touchpoint", "channel", "id_type", "id_value"])
by_channel = events.groupby("channel", as_index=False).size().rename(columns={"size": "events"})
by_channel = by_channel.sort_values("events", ascending=False)
ax = plotting.bar(by_channel, "channel", "events", horizontal=True, values="int",
                  title="各渠道事件数 events per channel family")
ax.set_ylabel("");

# %% [markdown]
# ## 3. Who the persons are 人群画像
#
# The `persons` table is the CRM profile: gender, age band, city tier, device, member
# level (from paid purchases), acquisition channel.

# %%
people = ds.read("persons")
order = {"age_band": ["18-24", "25-34", "35-44", "45-54", "55+"], "city_tier": [1, 2, 3, 4, 5],
         "member_level": ["none", "silver", "gold", "platinum"]}
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
for ax, (col, levels) in zip(axes, order.items()):
    share = people[col].value_counts(normalize=True).reindex(levels, fill_value=0).rename("share")
    share = share.rename_axis(col).reset_index().astype({col: str})
    plotting.bar(share, col, "share", values="percent", ax=ax, title=col.replace("_", " "))
    plotting.percent_axis(ax)
    ax.set_ylabel("")
fig.suptitle("人群画像 persons by age band, city tier and member level");

# %% [markdown]
# ## 4. Fragmented ids and unification ID 打通
#
# Each surface sees its own id: an Official Account openid, a Mini Program openid, a
# unionid, a WeCom external id, a phone hash. `identity.unify` joins them through the
# known links (`id_links`) into connected components; the simulator's `person_id` is
# the truth it is scored against.

# %%
display(Markdown(glossary.table(['precision', 'recall', 'fragmentation'])))

# %%
ids = events[["id_type", "id_value", "person_id"]].drop_duplicates(["id_type", "id_value"])
unified = identity.unify(ids, ds.read("id_links"))
quality = identity.score(unified, ids)
display(pd.DataFrame([quality]).style.hide(axis="index").format(precision=3))
per_person = ids.groupby("person_id")["id_type"].nunique().value_counts(normalize=True).sort_index()
per_person = per_person.rename("share").rename_axis("id types").reset_index()
ax = plotting.bar(per_person, "id types", "share", values="percent",
                  title="每人被看到的ID类型数 id types seen per person")
plotting.percent_axis(ax)
metrics["identity"] = {k: float(v) for k, v in quality.items()}

# %% [markdown]
# ## 5. The truth 真值
#
# `truth/` holds what no observational metric can see:
#
# * **incrementality** (增量): for each channel, the conversions lost when the same
#   persons are re-simulated with that channel switched off (same random draws);
#   `share = incremental conversions / all conversions`;
# * **Shapley credit** (沙普利值): each channel's average marginal contribution over all
#   coalitions of channels switched on, from re-simulations;
# * **stages** (生命周期阶段): each person's latent stage over time, including the
#   difference between *dormant* (may still buy) and *churned* (never will);
# * **experiments**: the true effect of each randomised intervention.
#
# The attribution, lifecycle and experiments reports score their estimates against it.

# %%
truth = ds.path / "truth"
inc = pd.read_parquet(truth / "incrementality.parquet")
shap = pd.read_parquet(truth / "shapley.parquet")
both = pd.concat([inc[["channel", "share_conversions"]].assign(truth="增量 incremental"),
                  shap[["channel", "share_conversions"]].assign(truth="沙普利 Shapley")], ignore_index=True)
both["渠道 channel"] = glossary.display_names(both["channel"], "channel")
ax = plotting.bar(both.rename(columns={"truth": "真值 truth"}), "渠道 channel", "share_conversions", hue="真值 truth",
                  horizontal=True, title="真实渠道贡献 true channel credit (share of conversions)")
plotting.percent_axis(ax, "x")
ax.legend(title="真值 truth", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # not over the bars
ax.set_xlabel("share of conversions 转化份额")
ax.set_ylabel("")
metrics["true_incremental_share"] = dict(zip(inc["channel"], inc["share_conversions"].astype(float)))

# %%
stages = pd.read_parquet(truth / "stages.parquet")
end = pd.Timestamp(sc.end.isoformat(), tz="Asia/Shanghai") + pd.Timedelta(days=1)
at_end = stages[(stages["valid_from"] < end) & (stages["valid_to"].isna() | (stages["valid_to"] >= end))]
true_mix = at_end["stage"].value_counts(normalize=True).rename("share").rename_axis("stage").reset_index()
ax = plotting.bar(true_mix.assign(阶段=[n.replace(" ", "\n", 1) for n in glossary.display_names(true_mix["stage"],
                                                                                                "stage")]), "阶段", "share",
                  values="percent",
                  title="期末真实阶段 true lifecycle stage at the end of the period")
plotting.percent_axis(ax)
ax.set_xlabel("")
metrics["true_stage_share_at_end"] = dict(zip(true_mix["stage"], true_mix["share"].astype(float)))

# %%
exp_file = truth / "experiments.parquet"
if exp_file.exists() and len(pd.read_parquet(exp_file)):
    display(pd.read_parquet(exp_file).style.hide(axis="index").format(precision=4))
else:
    display(Markdown("This scenario runs no randomised experiment (the `tea` and `apparel` scenarios do)."))

# %%
metrics["summary"] = (f"{ds.manifest['row_counts']['events']:,} events from {persons:,} persons; validation "
                      f"{'passed' if report.ok else 'FAILED'}; id unification recall {quality['recall']:.0%}")
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

answers = {"inspect_multi_id_share": None, "inspect_top_incremental_channel": None}  # your answers
exercises.show("simulate_and_inspect", ds, answers)
