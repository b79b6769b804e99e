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
# # Quickstart 快速上手: from a simulated brand to its first numbers
#
# This notebook simulates one brand's private-domain (私域) audience in the WeChat
# ecosystem, opens the dataset and computes the first numbers any operator asks for.
# Every number here is computed by a function of the `privdomain` package; the notebook
# only calls them and explains them. Change the parameters below (or pass them with
# `privdomain report` / papermill) to run it on another scenario, size or seed.

# %% tags=["parameters"]
scenario = "beauty"  # scenario preset: beauty, tea, sportswear, apparel, eyewear
persons = 5000  # simulated persons
seed = 7  # random seed (same seed, same data)
data_dir = ""  # dataset folder (empty: synthetic/data/SCENARIO)
output_dir = ""  # folder for the metrics JSON (empty: not written)
report_name = "quickstart"

# %%
import pandas as pd
from IPython.display import Markdown, display

from privdomain import backend, glossary, plotting
from privdomain.boards import touchpoints
from privdomain.boards.overview import overview
from privdomain.reports import runner as reports

plotting.use_style()
ds = reports.load_or_simulate(scenario, persons, seed, data_dir)
currency = plotting.currency_of(ds)  # money is shown in the dataset's currency

# %% [markdown]
# ## 1. The dataset 数据集
#
# A dataset is a folder of Parquet tables with a manifest (`dataset.json`). The main
# table is **events** (事件): one row per touch of one person on one touchpoint, with a
# timezone-aware timestamp in Beijing time, the touchpoint (`oa_article_open`,
# `mp_visit`, `pay`, ...), its channel family and the ids of what was touched
# (campaign, article, live stream, store, guide, order). Money is in integer fen
# (1 yuan = 100 fen). The first rows below come from the Ibis/DuckDB view of the table,
# which shows timestamps as wall-clock time in the dataset's zone (Beijing unless it declares another).

# %%
manifest = ds.manifest
pd.Series(manifest["row_counts"], name="rows").to_frame().style.format("{:,}")

# %%
head = backend.execute(ds.table("events").head(8))  # the first rows, without loading the table
head = head.loc[:, head.notna().any()]  # columns empty in these rows left out, so the table fits the page
head.map(lambda v: "-" if pd.api.types.is_scalar(v) and pd.isna(v) else  # ids with gaps read as floats: 100.0 -> 100
         int(v) if isinstance(v, float) and v.is_integer() else v).style.set_table_styles(
    [{"selector": "td", "props": "white-space: nowrap;"}])

# %% [markdown]
# ## 2. Headline numbers 核心指标

# %%
display(Markdown(glossary.table(['gmv', 'buyers', 'buyer_rate', 'aov', 'orders_per_buyer'], currency=currency)))

# %% [markdown]
# A purchase is counted on the `pay` event; an `order` is only placed, and a `refund`
# refers to an earlier order.

# %%
ov = overview(ds)
table = pd.DataFrame([
    ("人数 persons", f"{ov['persons']:,}"),
    ("购买人数 buyers", f"{ov['buyers']:,}"),
    ("订单 orders", f"{ov['orders']:,}"),
    ("成交额 GMV", plotting.money(ov["gmv_yuan"], currency, 0, compact=True)),
    ("购买转化率 buyer conversion rate", plotting.percent(ov["buyer_rate"], 2)),
    ("客单价 average order value", plotting.money(ov["aov_yuan"], currency, 0, compact=True)),
    ("人均订单 orders per buyer", f"{ov['orders_per_buyer']:.2f}"),
    ("period 周期", f"{ov['first_day']} to {ov['last_day']} ({ov['days']} days)"),
], columns=["metric", "value"])
display(table.style.hide(axis="index").set_properties(subset=["metric"], **{"text-align": "left"}))
reports.record_metrics({**{k: ov[k] for k in ("persons", "buyers", "orders", "gmv_yuan", "buyer_rate", "aov_yuan")},
                        "summary": f"GMV {plotting.money(ov['gmv_yuan'], currency, 0, compact=True)} from {ov['buyers']:,} buyers "
                                   f"({plotting.percent(ov['buyer_rate'])} of persons)"}, output_dir, report_name)

# %% [markdown]
# ## 3. Touchpoint volume 触点流量
#
# `touchpoints.daily_volume` counts, for each calendar day (dataset's zone) and touchpoint, the
# events and the distinct persons (触点日人数 daily persons per touchpoint:
# `persons(d, k)` = number of persons who touched `k` on day `d`).
# Below: the weekly sum of daily persons for the busiest touchpoints.

# %%
vol = touchpoints.daily_volume(ds)
vol["week"] = pd.to_datetime(vol["day"]).dt.to_period("W").dt.start_time
top = vol.groupby("touchpoint")["events"].sum().nlargest(6).index
days_in_week = vol.groupby("week")["day"].nunique()
full_weeks = days_in_week[days_in_week == 7].index  # a partial first or last week would look like a collapse
weekly = vol[vol["touchpoint"].isin(top) & vol["week"].isin(full_weeks)].groupby(
    ["week", "touchpoint"], as_index=False)["persons"].sum()
if len(full_weeks) < len(days_in_week):
    display(Markdown(f"{len(days_in_week) - len(full_weeks)} partial week(s) at the start or end of the data are "
                     "left out of the weekly chart (fewer than 7 days would read as a drop)."))
weekly["触点 touchpoint"] = glossary.display_names(weekly["touchpoint"], "touchpoint")
ax = plotting.line(weekly, "week", "persons", hue="触点 touchpoint", marker=None,
                   title="每周触点人次 weekly persons per touchpoint (top 6)")
ax.set_xlabel("")
ax.legend(title="触点 touchpoint", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # not over the lines
ax.set_ylabel("person-days 人天");

# %%
totals = vol.groupby("touchpoint", as_index=False)[["events"]].sum().sort_values("events", ascending=False)
totals["触点 touchpoint"] = glossary.display_names(totals["touchpoint"], "touchpoint")
ax = plotting.bar(totals, "触点 touchpoint", "events", horizontal=True, values="int",
                  title="触点事件数 events per touchpoint")
ax.set_ylabel("");

# %% [markdown]
# ## Next
#
# * `simulate_and_inspect`: what the simulator generates and the truth it keeps.
# * `funnels_official_account`, `touchpoints_channels`, `attribution_roi`,
#   `lifecycle_clv`, `experiments`: one topic each.
# * The case studies apply all of them to one brand each.

# %%
display(Markdown(f"Dataset: `{ds.path}` · scenario **{scenario}** · {persons:,} persons · seed {seed}."))


# %% [markdown]
# ## Exercises 练习
#
# Work each answer out with the package, put it into `answers` below and run the cell:
# `exercises.check` computes the answer from this dataset (or the simulator's truth) and
# says whether yours is right within the stated tolerance. Rates are answered in percent
# (12.3 for 12.3%). The solutions are folded away: click to open one.

# %%
from privdomain import exercises

answers = {"quickstart_median_order": None, "quickstart_repeat_buyers": None}  # your answers
exercises.show("quickstart", ds, answers)
