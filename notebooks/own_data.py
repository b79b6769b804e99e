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
# # Your own data 自有数据
#
# What a dataset holds, which of privdomain's metrics apply to it and why the others do
# not, and the results of those that apply. Point `data_dir` at a folder written by
# `privdomain import` (or `privdomain.io.write_dataset`); the folder is only read.
# Every metric names the tables, columns and events it needs (`docs/own-data.md`).

# %% tags=["parameters"]
scenario = "beauty"  # scenario preset, used only when data_dir is empty (a simulated dataset)
persons = 5000  # simulated persons (only without data_dir)
seed = 7  # random seed (only without data_dir)
data_dir = ""  # your dataset folder (empty: synthetic/data/SCENARIO)
output_dir = ""  # folder for the metrics JSON (empty: not written)
report_name = "own_data"  # name of the report and its metrics file

# %%
import pandas as pd
from IPython.display import Markdown, display

from privdomain import inventory, plotting, reports, touchpoints

plotting.use_style()
ds = reports.load_or_simulate(scenario, persons, seed, data_dir)
currency = plotting.currency_of(ds)  # money is shown in the dataset's currency
inv = inventory.inventory(ds)
applies = inventory.applicability(ds, inv=inv)

# %% [markdown]
# ## 1. What the dataset holds 数据内容
#
# The tables with their rows and columns, then the events per touchpoint with their
# channel family; `declared` marks the event names the dataset declared itself (its
# manifest's `touchpoints`), the others are privdomain's WeChat vocabulary. Days and
# weeks below are those of the dataset's time zone.

# %%
display(Markdown(f"**Period** {inv.first:%Y-%m-%d %H:%M} to {inv.last:%Y-%m-%d %H:%M} · **time zone** "
                 f"{inv.timezone} · **currency** {currency} · **buyers with a second purchase day** "
                 f"{inv.repeat_buyers:,}" + (" · simulated, with the simulator's truth/" if inv.truth else "")))
display(inventory.present(inv.tables, currency))
display(inventory.present(inv.touchpoints, currency))

# %%
daily = touchpoints.daily_volume(ds)
top = list(inv.touchpoints["touchpoint"][:6])
weekly = (daily[daily["touchpoint"].isin(top)]
          .assign(week=lambda d: pd.to_datetime(d["day"]).dt.to_period("W-SUN").dt.start_time)
          .pivot_table(index="week", columns="touchpoint", values="events", aggfunc="sum").fillna(0)[top])
ax = plotting.new_axes("事件量 events per week, commonest touchpoints (partial first and last weeks included)")
for i, tp in enumerate(top):
    ax.plot(weekly.index, weekly[tp], marker="o" if len(weekly) < 20 else None, ms=3, label=tp,
            color=plotting.PALETTE[i % len(plotting.PALETTE)])
ax.set_ylabel("events")
ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0));

# %% [markdown]
# ## 2. Which metrics apply 适用的指标
#
# A metric applies when the dataset has every table and event column it reads and at
# least one row of every event it needs; the CLV models also need buyers with a second
# purchase day. The reason a metric does not apply names what is missing.

# %%
shown = applies.assign(applies=applies["applies"].map({True: "yes", False: "no"}))
display(shown.style.hide(axis="index").set_properties(subset=["why", "what"], **{"text-align": "left"}))

# %% [markdown]
# ## 3. The metrics that apply 指标结果
#
# Each metric below runs with defaults that suit any dataset (`privdomain.inventory.run`):
# the funnel's steps are the dataset's commonest events then the purchase, boards and
# cohorts use months, weeks or days as the data's span allows. Call the functions named
# in the table above with your own arguments for more.

# %%
ran = {}
for row in applies[applies["applies"]].itertuples():
    if row.metric in ("daily_volume", "truth_scores"):  # shown above; scored in the simulated reports
        continue
    result = inventory.run(ds, row.metric, inv=inv)
    ran[row.metric] = len(result)
    display(Markdown(f"### {row.metric}: {row.what}\n`{row.call}`"))
    display(inventory.present(result, currency))

# %%
skipped = dict(zip(applies.loc[~applies["applies"], "metric"], applies.loc[~applies["applies"], "why"]))
reports.record_metrics({"events": int(inv.touchpoints["events"].sum()), "timezone": inv.timezone, "currency": currency,
                        "applies": sorted(applies.loc[applies["applies"], "metric"]), "skipped": skipped,
                        "rows_shown": ran,
                        "summary": f"{int(applies['applies'].sum())} of {len(applies)} metrics apply; "
                                   f"{len(skipped)} need what the dataset lacks"}, output_dir, report_name)
