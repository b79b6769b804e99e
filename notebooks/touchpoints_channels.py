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
# (触点地图) shows the volume of each touchpoint, its click-through and conversion rates
# and the flows between touchpoints; its **channel cube** (渠道魔方) shows, for each
# channel, the orders and GMV within days of a touch and who converted (first visit,
# returning visitor, repeat buyer). This notebook draws both from the events.

# %% tags=["parameters"]
scenario = "beauty"  # scenario preset: beauty, tea, sportswear, apparel, eyewear
persons = 5000  # simulated persons
seed = 7  # random seed (same seed, same data)
data_dir = ""  # dataset folder (empty: synthetic/data/SCENARIO)
output_dir = ""  # folder for the metrics JSON (empty: not written)
report_name = "touchpoints_channels"  # name of the report and its metrics file

# %%
from IPython.display import Markdown, display

from privdomain import glossary, plotting
from privdomain.boards import channel_cube, live, touchpoints
from privdomain.reports import runner as reports

plotting.use_style()
ds = reports.load_or_simulate(scenario, persons, seed, data_dir)
currency = plotting.currency_of(ds)  # money is shown in the dataset's currency
metrics = {}

# %% [markdown]
# ## 1. Every touchpoint: volume, click-through, conversion 触点流量与转化

# %%
display(Markdown(glossary.table(['touch_events', 'touch_persons', 'touch_click_through_rate', 'touch_conversion_rate'], currency=currency)))

# %%
nodes = touchpoints.touchpoint_nodes(ds, window="7D")
checkout = ["product_view", "add_to_cart", "order", "pay", "refund"]  # steps of the purchase itself
top = nodes[~nodes["node"].isin(checkout)].head(15)
top = plotting.rate_intervals(top, "converted", "persons").drop(columns=["rate"])
top = top.assign(node=glossary.display_names(top["node"], "touchpoint"))  # display names, not event ids
display(top[["node", "events", "persons", "click_through_rate", "converted", "conversion_rate", "low", "high",
             "too_small"]]
        .rename(columns={"node": "触点 touchpoint", "click_through_rate": "touch click-through rate", "conversion_rate": "touch conversion rate",
                         "low": "95% low", "high": "95% high", "too_small": "too small ⚠"})
        .style.hide(axis="index")
        .format({"events": "{:,}", "persons": "{:,}", "converted": "{:,}", "touch click-through rate": "{:.1%}",
                 "touch conversion rate": "{:.1%}", "95% low": "{:.1%}", "95% high": "{:.1%}",
                 "too small ⚠": plotting.flag_text}, na_rep="n/a"))
warn = plotting.small_warning(top, "node", n="persons")
if warn:
    display(Markdown(warn))
shown = top.sort_values("conversion_rate", ascending=False).rename(columns={"persons": "n"})
ax = plotting.bar_ci(shown, "node", "conversion_rate",
                     title="触点转化率 touch conversion rate: persons who paid within 7 days of a touch")
plotting.percent_axis(ax)
ax.tick_params(axis="x", labelrotation=45)
for lab in ax.get_xticklabels():
    lab.set_horizontalalignment("right")
ax.set_ylabel("touch conversion rate 触点转化率")
metrics["events_by_touchpoint"] = dict(zip(nodes["node"], nodes["events"].astype(int)))
metrics["conversion_rate_by_touchpoint"] = dict(zip(nodes["node"], nodes["conversion_rate"].astype(float)))

# %% [markdown]
# ## 2. The touchpoint map 触点地图
#
# Where people go next. A **session** is a run of a person's events with no pause longer
# than a day; within it, each event leads to the next one (a move `from → to`), the
# first event is entered from `(entry)` and the last one leads to `(exit)`. Read at the
# level of channel families: 流转占比 share = `moves from a to b / all moves out of a`
# (each row sums to 100%).

# %%
flows = touchpoints.touchpoint_flows(ds, gap="1D", level="channel", entry_exit=True)
matrix = flows.pivot(index="source", columns="target", values="share_of_source").fillna(0)
rows = ["(entry)"] + sorted(c for c in matrix.index if c != "(entry)")
cols = sorted(c for c in matrix.columns if c != "(exit)") + ["(exit)"]
matrix = matrix.reindex(index=rows, columns=cols, fill_value=0)
matrix = matrix.rename(index=lambda c: glossary.display_name(c, "channel"),
                       columns=lambda c: glossary.display_name(c, "channel"))
ax = plotting.heatmap(matrix, title="触点地图 where people go next, by channel (share of moves out of each row)", fmt=".0%")
ax.set_xlabel("next 下一步")
ax.set_ylabel("from 来自");

# %%
entry = flows[flows["source"] == "(entry)"].sort_values("transitions", ascending=False)
moves = flows[~flows["source"].str.startswith("(") & ~flows["target"].str.startswith("(")
              & (flows["source"] != flows["target"])].sort_values("transitions", ascending=False)
display(Markdown(
    f"Sessions start most often at **{glossary.display_name(entry['target'].iloc[0], 'channel')}** ({entry['share_of_source'].iloc[0]:.0%} of sessions); "
    f"the busiest move between two channels is **{glossary.display_name(moves['source'].iloc[0], 'channel')} → "
    f"{glossary.display_name(moves['target'].iloc[0], 'channel')}** "
    f"({moves['transitions'].iloc[0]:,} moves by {moves['persons'].iloc[0]:,} persons)."))
metrics["top_entry_channel"] = str(entry["target"].iloc[0])
metrics["top_move"] = f"{moves['source'].iloc[0]} > {moves['target'].iloc[0]}"

# %% [markdown]
# ## 3. The channel cube 渠道魔方
#
# For each channel, the purchases made within 7 days of a touch in it, and who made them:

# %%
display(Markdown(glossary.table(['orders_7d', 'gmv_7d', 'first_visit_buyers', 'returning_visitor_buyers', 'repeat_buyers'], currency=currency)))

# %%
cube = channel_cube.channel_cube(ds, windows=(1, 7, 30))
week = cube[cube["window_days"] == 7].sort_values("gmv", ascending=False)
display(week[["channel", "orders", "buyers", "gmv", "first_visit_buyers", "returning_visitor_buyers", "repeat_buyers"]]
        .assign(channel=lambda d: glossary.display_names(d["channel"], "channel"))
        .rename(columns={"channel": "渠道 channel", "orders": "7日订单 orders", "buyers": "购买人数 buyers",
                         "gmv": "7日成交额 GMV", "first_visit_buyers": "首访客 first visit",
                         "returning_visitor_buyers": "回访客 returning", "repeat_buyers": "复购客 repeat"})
        .style.hide(axis="index").set_properties(subset=["渠道 channel"], **{"text-align": "left"})
        .format({"7日成交额 GMV": plotting.money_format(currency, compact=True), "7日订单 orders": "{:,}", "购买人数 buyers": "{:,}"}))
who = week.melt(id_vars="channel", value_vars=["first_visit_buyers", "returning_visitor_buyers", "repeat_buyers"],
                var_name="buyer", value_name="persons")
who["buyer"] = who["buyer"].map({"first_visit_buyers": "首访 first visit", "returning_visitor_buyers": "回访 returning",
                                 "repeat_buyers": "复购 repeat"})
who["渠道 channel"] = glossary.display_names(who["channel"], "channel")
ax = plotting.bar(who.rename(columns={"buyer": "买家 buyer"}), "渠道 channel", "persons", hue="买家 buyer",
                  horizontal=True,
                  title="渠道魔方 buyers within 7 days of a touch, by channel and who converted")
ax.set_ylabel("")
metrics["gmv_7d_by_channel"] = dict(zip(week["channel"], week["gmv"].astype(float)))

# %% [markdown]
# ### Where the orders happened 下单渠道
#
# The channel of the pay event: the Mini Program, a live stream, a store or a WeCom guide,
# split into first purchases (首购, the person's first paid order) and repeat purchases
# (复购). 复购占比 repeat share = `repeat orders / orders`.

# %%
placed = channel_cube.orders_by_buyer_type(ds)
wide = placed.pivot(index="channel", columns="buyer_type", values=["orders", "gmv"]).fillna(0)
wide.columns = [f"{a}_{b}" for a, b in wide.columns]
wide["orders"] = wide.filter(like="orders_").sum(axis=1)
wide["gmv"] = wide.filter(like="gmv_").sum(axis=1)
wide["repeat_share"] = wide.get("orders_repeat", 0) / wide["orders"]
wide = wide.sort_values("gmv", ascending=False)
display(wide[["orders", "gmv", "repeat_share"]]
        .rename(index=lambda c: glossary.display_name(c, "channel"),
                columns={"orders": "订单 orders", "gmv": "成交额 GMV", "repeat_share": "复购占比 repeat share"})
        .rename_axis(index="下单渠道 order channel")
        .style.format({"订单 orders": "{:,.0f}", "成交额 GMV": plotting.money_format(currency, compact=True), "复购占比 repeat share": "{:.1%}"}))
metrics["gmv_by_channel"] = {k: float(v) for k, v in wide["gmv"].items()}
metrics["repeat_share_by_channel"] = {k: float(v) for k, v in wide["repeat_share"].items()}

# %% [markdown]
# ### What each channel sells 渠道商品
#
# The top products by GMV among the purchases credited to each channel within 7 days of a
# touch (商品排行 product ranking).

# %%
products = channel_cube.channel_products(ds, window=7, top=3)
display(products.head(24).assign(channel=lambda d: glossary.display_names(d["channel"], "channel"))
        .rename(columns={"channel": "渠道 channel", "rank": "排名 rank", "product_id": "商品 product",
                         "orders": "订单 orders", "buyers": "购买人数 buyers", "gmv": "成交额 GMV"})
        .style.hide(axis="index").set_properties(subset=["渠道 channel"], **{"text-align": "left"})
        .format({"成交额 GMV": plotting.money_format(currency, compact=True)}, precision=0, thousands=","))

# %% [markdown]
# ## The live-stream board 直播看板
#
# Per live session (场次): 曝光 exposure = persons with any event of the session,
# 观看人数 viewers = persons with a `live_view`, 互动 interactions = `live_interact`
# events, 小程序访问 Mini Program visits and product views from the session, orders and
# 成交额 GMV placed in it, 观看转化率 viewer conversion rate = `buyers / viewers`; and the persons
# seen before the start (预热 warm-up), during the stream and after it (回放 replay).
# The product ranking gives each product's clicks (`product_view`) and orders in the
# session, ranked.

# %%
board = live.live_board(ds, ds)
if board.empty:
    display(Markdown("This scenario has no live streams."))
else:
    live_names = {"live_id": "场次 live", "exposure": "曝光 exposure", "viewers": "观看人数 viewers",
                  "interacting": "互动人数 interacting", "visitors": "小程序访客 MP visitors", "buyers": "购买人数 buyers",
                  "orders": "订单 orders", "gmv": "成交额 GMV", "conversion_rate": "观看转化率 buyers / viewers",
                  "low": "95% low", "high": "95% high", "too_small": "too small ⚠",
                  "warmup_persons": "预热 warm-up", "during_persons": "直播中 during", "replay_persons": "回放 replay"}
    live_names["viewers"] = "观看人数 viewers (n)"
    shown = plotting.rate_intervals(board.sort_values("gmv", ascending=False).head(10), "buyers", "viewers")
    shown["conversion_rate"] = shown["rate"]
    display(shown[[c for c in live_names if c in shown]]
            .rename(columns=live_names).style.hide(axis="index")
            .format({"成交额 GMV": plotting.money_format(currency, compact=True), "观看转化率 buyers / viewers": "{:.1%}",
                     "95% low": "{:.1%}", "95% high": "{:.1%}", "too small ⚠": plotting.flag_text},
                    thousands=",", na_rep="n/a"))
    display(Markdown("观看转化率 viewer conversion rate with n = viewers and a 95% Wilson interval; ⚠ marks a "
                     "session with too few viewers (or too wide an interval) to compare."))
    ranking = live.live_products(ds)
    display(ranking.sort_values(["live_id", "orders"], ascending=[True, False]).groupby("live_id").head(3)
            .head(15).rename(columns={"live_id": "场次 live", "product_id": "商品 product",
                                      "clicks": "点击 clicks (product views)", "orders": "订单 orders",
                                      "gmv": "成交额 GMV", "click_rank": "点击排名 click rank",
                                      "order_rank": "订单排名 order rank"})
            .style.hide(axis="index").format({"成交额 GMV": plotting.money_format(currency, compact=True)}, precision=0, thousands=","))

# %%
place = wide.index[0]
metrics["summary"] = (f"sessions start at {glossary.display_name(metrics['top_entry_channel'], 'channel')}; most GMV "
                      f"placed through {glossary.display_name(place, 'channel')} "
                      f"({wide.loc[place, 'gmv'] / wide['gmv'].sum():.0%})")
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

answers = {"touch_article_open_30d": None, "cube_oa_orders_30d": None}  # your answers
exercises.show("touchpoints_channels", ds, answers)
