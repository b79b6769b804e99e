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
# # Lifecycle stages against the simulator's truth 生命周期阶段与真值对照
#
# The simulator knows every person's true lifecycle stage at every moment. This notebook
# computes the stages from the events alone (the default stage model of
# `privdomain.lifecycle`) and counts how often they agree with the truth at each month end.
#
# The truth's `churned` is the latent dropout time: the person will never buy again.
# Observed data cannot see it (a buyer who has dropped out looks dormant, active or loyal
# until the data say otherwise; a prospect who dropped out still looks like a prospect),
# so the agreement is reported twice: exact, and on the observable stages (persons not
# truly churned, with dormant and churned counted as one lapsed stage).

# %% tags=["parameters"]
scenario = "tea"  # scenario preset: beauty, tea, sportswear, apparel, eyewear
persons = 5000  # simulated persons
seed = 7  # random seed (same seed, same data)
data_dir = ""  # dataset folder (empty: synthetic/data/SCENARIO)
output_dir = ""  # folder for the metrics JSON (empty: not written)
report_name = "lifecycle_truth"  # name of the report and its metrics file

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from privdomain import glossary, plotting
from privdomain.boards.overview import overview
from privdomain.lifecycle import stages as lifecycle
from privdomain.reports import runner as reports

plotting.use_style()
ds = reports.load_or_simulate(scenario, persons, seed, data_dir)
metrics = {}

# %% [markdown]
# ## Agreement per month end 每月末一致率

# %%
ov = overview(ds)
dates = pd.date_range(pd.Timestamp(ov["first_day"]), pd.Timestamp(ov["last_day"]), freq="ME")
conf = lifecycle.stage_agreement(ds, ds, dates)
total = conf["persons"].sum()
lapsed = {"dormant": "lapsed", "churned": "lapsed"}
obs = conf[conf["true_stage"] != "churned"]
same = obs["true_stage"].replace(lapsed) == obs["stage"].replace(lapsed)
observable = float(obs.loc[same, "persons"].sum() / obs["persons"].sum())
churned_share = float(conf.loc[conf["true_stage"] == "churned", "persons"].sum() / total)
by_date = conf.groupby("date")["agreement"].first()
agreement = float(conf.loc[conf["agrees"], "persons"].sum() / total)
metrics.update({"stage_agreement": agreement, "stage_agreement_observable": observable,
                "truly_churned_share": churned_share, "person_dates": int(total)})
display(Markdown(
    f"Over {len(dates)} month ends ({total:,} person-dates): computed stages agree with the truth for "
    f"**{agreement:.1%}**; on the observable stages for **{observable:.1%}**. "
    f"Truly churned (latent, not observable): {churned_share:.1%} of person-dates."))

fig, ax = plt.subplots(figsize=(8, 3.5))
ax.plot(by_date.index, by_date.to_numpy(), marker="o", label="exact")
ax.set_ylim(0, 1)
plotting.percent_axis(ax)
ax.set_ylabel("agreement 一致率")
ax.set_title("阶段一致率 stage agreement with the truth, per month end")
ax.legend(frameon=False);

# %% [markdown]
# ## Where they differ 差异在哪里
# Rows: true stage; columns: computed stage (all month ends together).

# %%
matrix = conf.pivot_table(index="true_stage", columns="stage", values="persons", aggfunc="sum", fill_value=0)
order = list(lifecycle.STAGES)  # lifecycle order, not alphabetical
matrix = matrix.reindex(index=sorted(matrix.index, key=lambda st: order.index(st) if st in order else len(order)),
                        columns=sorted(matrix.columns, key=lambda st: order.index(st) if st in order else len(order)))
matrix = matrix.rename(index=lambda st: glossary.display_name(st, "stage"),
                       columns=lambda st: glossary.display_name(st, "stage"))
display(matrix.rename_axis(index="真实阶段 true stage", columns="计算阶段 computed stage").style.format("{:,.0f}"))

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

answers = {"truth_agreement_last": None, "truth_dormant_truly_churned": None}  # your answers
exercises.show("lifecycle_truth", ds, answers)
