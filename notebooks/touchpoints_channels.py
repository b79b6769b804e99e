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
# # Touchpoint map and channel cube 触点地图与渠道魔方
#
# Where does traffic come from and where does it go? Youshu's **touchpoint map**
# (触点地图) shows the volume of each touchpoint and the flows between them; its
# **channel cube** (渠道魔方) shows, for each channel, the orders and GMV it brings,
# from first-time or returning buyers. This notebook draws both from the events.

# %% tags=["parameters"]
scenario = "beauty"  # scenario preset: beauty, tea, sportswear, apparel, eyewear
persons = 5000  # simulated persons
seed = 7  # random seed (same seed, same data)
windows = [0, 7, 15, 30]  # attribution windows in days, 0 is the same day
data_dir = ""  # dataset folder (empty: synthetic/data/SCENARIO)
output_dir = ""  # folder for the metrics JSON (empty: not written)
report_name = "touchpoints_channels"  # name of the report and its metrics file

# %%
from IPython.display import Markdown, display

from privdomain import attribution, cases, plotting, reports, touchpoints

plotting.use_style()
ds = reports.load_or_simulate(scenario, persons, seed, data_dir)
metrics = {}

# %% [markdown]
# ## 1. Touchpoint volume 触点流量
#
# | metric | definition | formula |
# | --- | --- | --- |
# | 触点事件数 events | touches of the touchpoint | `count of events` |
# | 触点人数 persons per day | distinct persons touching it on a Beijing day | `persons(d, k)` |
# | 日均触达人数 mean daily reach | average over days of the daily persons | `Σ_d persons(d, k) / days` |

# %%
vol = touchpoints.daily_volume(ds)
days = vol["day"].nunique()
reach = (vol.groupby("touchpoint", as_index=False)
         .agg(events=("events", "sum"), person_days=("persons", "sum")))
reach["mean_daily_reach"] = reach["person_days"] / days
reach = reach.sort_values("events", ascending=False)
ax = plotting.bar(reach, "touchpoint", "mean_daily_reach", horizontal=True, values="int",
                  title="日均触达人数 mean persons per day, by touchpoint")
ax.set_xlabel("persons per day 日均人数")
ax.set_ylabel("")
metrics["events_by_touchpoint"] = dict(zip(reach["touchpoint"], reach["events"].astype(int)))

# %% [markdown]
# ## 2. The touchpoint map 触点地图
#
# The journeys before each purchase (and after the last one), read at the level of
# channels: from where people start, where they go next, and where they end (a purchase
# or not). 流转占比 = `moves from a to b / all moves out of a` (each row sums to 100%).

# %%
paths = attribution.build_paths(ds, window_days=30)
moves = cases.channel_transitions(paths)
matrix = moves.pivot(index="from_channel", columns="to_channel", values="share_of_from").fillna(0)
first = ["(start)"] + [c for c in matrix.index if c != "(start)"]
ends = [c for c in matrix.columns if c.startswith("(")]
matrix = matrix.reindex(index=first, columns=[c for c in matrix.columns if c not in ends] + ends)
ax = plotting.heatmap(matrix, title="触点地图 where journeys go next (share of moves out of each channel)", fmt=".0%")
ax.set_xlabel("next 下一步")
ax.set_ylabel("from 来自");

# %%
start = moves[moves["from_channel"] == "(start)"].sort_values("journeys", ascending=False)
closing = moves[moves["to_channel"] == "(purchase)"].sort_values("journeys", ascending=False)
display(Markdown(
    f"Journeys start most often at **{start['to_channel'].iloc[0]}** ({start['share_of_from'].iloc[0]:.0%} of "
    f"journeys) and the last touch before a purchase is most often **{closing['from_channel'].iloc[0]}** "
    f"({closing['journeys'].iloc[0] / closing['journeys'].sum():.0%} of purchases)."))
metrics["top_start_channel"] = str(start["to_channel"].iloc[0])
metrics["top_closing_channel"] = str(closing["from_channel"].iloc[0])

# %% [markdown]
# ## 3. The channel cube 渠道魔方
#
# For each channel where orders happen (the Mini Program, a live stream, a store, a
# WeCom guide): paid orders, GMV, and who bought: a **first purchase** (首购, the
# person's first paid order) or a **repeat purchase** (复购).
#
# | metric | definition | formula |
# | --- | --- | --- |
# | 订单数 orders | paid orders placed in the channel | `count of pay events` |
# | 成交额 GMV | amount paid in the channel, yuan | `Σ amount_fen / 100` |
# | 复购占比 repeat share | orders that were repeat purchases | `repeat orders / orders` |

# %%
cube = cases.orders_by_buyer_type(ds)
wide = cube.pivot(index="channel", columns="buyer_type", values=["orders", "gmv"]).fillna(0)
wide.columns = [f"{a}_{b}" for a, b in wide.columns]
wide["orders"] = wide.filter(like="orders_").sum(axis=1)
wide["gmv"] = wide.filter(like="gmv_").sum(axis=1)
wide["repeat_share"] = wide.get("orders_repeat", 0) / wide["orders"]
wide = wide.sort_values("gmv", ascending=False)
display(wide[["orders", "gmv", "repeat_share"]].style.format({"orders": "{:,.0f}", "gmv": "¥{:,.0f}",
                                                               "repeat_share": "{:.1%}"}))
ax = plotting.bar(cube.assign(buyer_type=cube["buyer_type"].map({"first": "first purchase 首购",
                                                                 "repeat": "repeat purchase 复购"})),
                  "channel", "gmv", hue="buyer_type", values="yuan", title="渠道成交额 GMV by order channel and buyer")
plotting.yuan_axis(ax)
ax.set_xlabel("")
metrics["gmv_by_channel"] = {k: float(v) for k, v in wide["gmv"].items()}
metrics["repeat_share_by_channel"] = {k: float(v) for k, v in wide["repeat_share"].items()}

# %%
top = wide.index[0]
metrics["summary"] = (f"journeys start at {metrics['top_start_channel']}; most GMV through {top} "
                      f"({wide.loc[top, 'gmv'] / wide['gmv'].sum():.0%})")
reports.record_metrics(metrics, output_dir, report_name)
