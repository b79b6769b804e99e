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
# # Funnels and the Official Account board 漏斗与公众号看板
#
# A funnel (漏斗) counts how many persons go through a sequence of steps within a time
# window, and where they drop out. This notebook builds the Mini Program purchase
# funnel and the ad-to-purchase funnel, and the "three article rates" (图文三率) of
# Youshu's Official Account board.

# %% tags=["parameters"]
scenario = "beauty"  # scenario preset: beauty, tea, sportswear, apparel, eyewear
persons = 5000  # simulated persons
seed = 7  # random seed (same seed, same data)
data_dir = ""  # dataset folder (empty: synthetic/data/SCENARIO)
output_dir = ""  # folder for the metrics JSON (empty: not written)
report_name = "funnels_official_account"  # name of the report and its metrics file

# %%
import pandas as pd
from IPython.display import Markdown, display

from privdomain import glossary, plotting
from privdomain.boards import funnel, officialaccount
from privdomain.reports import runner as reports

plotting.use_style()
ds = reports.load_or_simulate(scenario, persons, seed, data_dir)
currency = plotting.currency_of(ds)  # money is shown in the dataset's currency
metrics = {}

# %% [markdown]
# ## 1. How a funnel counts 漏斗口径
#
# * A person **enters** at each event matching step 1 (re-entry: every attempt gets its
#   own window); the attempt reaching the furthest step is the one reported.
# * **Ordered** (有序): each step must come after the previous one, other events may lie
#   between. **Strict** (严格): each step must be the very next event.
# * **Window** (窗口): the last step must come within the window of the first.

# %%
display(Markdown(glossary.table(['step_persons', 'step_conversion_rate', 'overall_conversion_rate', 'time_to_convert'], currency=currency)))

# %%
MP_STEPS = ["mp_visit", "product_view", "add_to_cart", "order", "pay"]
mp = funnel.funnel(ds, MP_STEPS, window="7D")
ax = plotting.funnel(glossary.display_names(mp["step_name"], "touchpoint"), mp["persons"],
                     title="小程序购买漏斗 Mini Program purchase funnel (7-day window, ordered)")
metrics["mp_funnel_persons"] = mp["persons"].astype(int).tolist()
metrics["mp_visit_to_pay"] = float(mp["conversion_from_first"].iloc[-1])

# %%
rated = plotting.step_rates(mp["step_name"].tolist(), mp["persons"])
steps = pd.DataFrame({"step": glossary.display_names(mp["step_name"], "touchpoint"), "persons": mp["persons"].astype(int),
                      "n (previous step)": rated["n"].astype(int).where(rated["n"] > 0),
                      "step conversion rate": rated["rate"], "95% low": rated["low"], "95% high": rated["high"],
                      "overall conversion rate": mp["conversion_from_first"],
                      "median minutes from previous step": (mp["median_seconds"] / 60).round(1),
                      "too small ⚠": rated["too_small"] & (rated["n"] > 0)})
display(Markdown("Step conversion rate (步骤转化率) = persons at the step / persons at the previous step (n), with "
                 "its 95% Wilson interval; overall conversion rate (总转化率) = persons at the step / entrants."))
display(steps.rename(columns={"step": "步骤 step"}).style.hide(axis="index")
        .set_properties(subset=["步骤 step"], **{"text-align": "left"}).format({"step conversion rate": "{:.1%}", "95% low": "{:.1%}",
                                                "95% high": "{:.1%}", "overall conversion rate": "{:.1%}",
                                                "persons": "{:,}", "n (previous step)": "{:,.0f}",
                                                "too small ⚠": plotting.flag_text}, precision=1, na_rep="—"))
overall = plotting.step_rates(["entered", "paid"], [mp["persons"].iloc[0], mp["persons"].iloc[-1]]).iloc[1]
display(Markdown(
    f"Of {int(mp['persons'].iloc[0]):,} persons who visited the Mini Program, "
    f"**{mp['conversion_from_first'].iloc[-1]:.1%}** paid within 7 days "
    f"({plotting.interval_text(overall['low'], overall['high'])}). A **strict** funnel "
    f"(`mode=\"strict\"`) would count only those who went straight from each step to the next."))

# %% [markdown]
# ## 2. From ad to purchase 广告到购买
#
# The public-domain (公域) journey: an ad view on Moments, a click, a follow of the
# Official Account, then a purchase, within 30 days.

# %%
AD_STEPS = ["moments_ad_view", "moments_ad_click", "oa_follow", "pay"]
ad = funnel.funnel(ds, AD_STEPS, window="30D")
plotting.funnel(glossary.display_names(ad["step_name"], "touchpoint"), ad["persons"], title="广告漏斗 Moments ad funnel (30-day window)")
metrics["ad_view_to_pay"] = float(ad["conversion_from_first"].iloc[-1])

# %% [markdown]
# ## 3. The Official Account board: three article rates 公众号看板：图文三率
#
# Youshu's Official Account board reports, for each article, the **three article rates**
# (图文三率), counting persons per article:

# %%
display(Markdown(glossary.table(['open_rate', 'article_click_rate', 'article_order_rate', 'gmv'], currency=currency)))

# %% [markdown]
# Pooled over all articles, each rate is the sum of the numerators over the sum of the
# denominators.

# %%
board = officialaccount.article_rates(ds, window="7D")
pooled = officialaccount.pooled_rates(board)
rates = {"打开率 open rate": pooled["open_rate"], "图文点击率 article click rate": pooled["click_rate"],
         "图文下单率 article order rate": pooled["conversion_rate"]}
s = board[["received", "opened", "clicked", "ordered"]].sum()
plotting.funnel(["收到 received", "打开 opened", "点击 clicked", "支付 paid"], s.to_list(),
                title="公众号图文漏斗 all articles pooled (persons per article)")
pooled_table = plotting.rate_intervals(pd.DataFrame({
    "rate name": list(rates), "successes": [s["opened"], s["clicked"], s["ordered"]],
    "n": [s["received"], s["opened"], s["clicked"]]}), "successes", "n")
display(Markdown(f"Pooled over {len(board):,} articles, with n (the denominator) and 95% Wilson intervals:"))
display(pooled_table.rename(columns={"low": "95% low", "high": "95% high", "too_small": "too small ⚠"})
        .style.hide(axis="index").format({"rate": "{:.1%}", "95% low": "{:.1%}", "95% high": "{:.1%}", "n": "{:,}",
                                          "successes": "{:,}", "too small ⚠": plotting.flag_text}, na_rep="n/a"))
best = board.sort_values("gmv", ascending=False).head(8)
display(Markdown("The eight articles with the most GMV (rates of an article with few readers are noisy: "
                 "see n, the readers who received, opened and clicked it):"))
display(best[["title", "published_at", "received", "open_rate", "opened", "click_rate", "clicked", "conversion_rate",
              "gmv"]]
        .assign(published_at=lambda d: d["published_at"].dt.strftime("%Y-%m-%d %H:%M"))
        .rename(columns={"title": "图文 article", "published_at": "发布时间 published", "received": "收到 received",
                         "open_rate": "打开率 open rate", "opened": "打开 opened",
                         "click_rate": "图文点击率 article click rate", "clicked": "点击 clicked",
                         "conversion_rate": "图文下单率 article order rate", "gmv": "成交额 GMV"})
        .style.hide(axis="index").set_properties(subset=["图文 article"], **{"text-align": "left"})
        .format({"收到 received": "{:,}", "打开 opened": "{:,}", "点击 clicked": "{:,}",
                 "打开率 open rate": "{:.1%}", "图文点击率 article click rate": "{:.1%}",
                 "图文下单率 article order rate": "{:.1%}", "成交额 GMV": plotting.money_format(currency, compact=True)}, na_rep="n/a"))
metrics.update({"oa_open_rate": pooled["open_rate"], "oa_click_rate": pooled["click_rate"],
                "oa_conversion_rate": pooled["conversion_rate"], "oa_articles": int(len(board)),
                "summary": f"article rates: open {pooled['open_rate']:.1%}, click {pooled['click_rate']:.1%}, "
                           f"order {pooled['conversion_rate']:.1%}"})

# %% [markdown]
# ## 4. Time to convert 转化时长
#
# How long after the Mini Program visit the purchase came, for the persons who paid.

# %%
ttc = funnel.time_to_convert(ds, ["mp_visit", "pay"], window="7D", bins=[0, 600, 3600, 6 * 3600, 86400, 3 * 86400,
                                                                         7 * 86400])
labels = ["< 10 min", "10-60 min", "1-6 h", "6-24 h", "1-3 days", "3-7 days"]
ttc["bucket"] = labels[: len(ttc)]
ax = plotting.bar(ttc, "bucket", "share", values="percent",
                  title=f"访问到支付时长 time from visit to payment (n = {int(ttc['persons'].sum()):,} payers within 7 days)")
plotting.percent_axis(ax)
ax.set_xlabel("")
ax.set_ylabel("share of payers");
metrics["median_visit_to_pay_minutes"] = float(ttc.attrs.get("median_seconds", float("nan")) / 60)

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

answers = {"funnel_visit_to_pay_1d": None, "funnel_strict_visit_to_pay": None}  # your answers
exercises.show("funnels_official_account", ds, answers)
