"""Teaching exercises for the topic notebooks, checked against the data or the simulator's truth.

Each topic notebook ends with two or three exercises (:data:`EXERCISES`, grouped by ``topic``). A
learner works an answer out with the package and asks :func:`check`, which computes the
right answer from the same dataset with the package's own metrics (or reads the truth the
simulator kept) and says whether the learner's answer is right within the stated
tolerance::

    accepted  ⇔  |given - answer| ≤ tolerance          (numbers; rates in percent)
    accepted  ⇔  given == answer (case and spaces ignored)  (names)

Rates and shares are answered **in percent** (``12.3`` for 12.3%) and their tolerance is
in percentage points; a relative lift too (``44`` for +44%). :func:`html` renders a
topic's questions for a report, the verdict on any answers given, and each solution in a
collapsed ``<details>`` block, so the rendered page shows no solution until it is clicked.

Examples
--------
>>> from privdomain.examples import events_frame
>>> ev = events_frame([(1, "2024-05-01 10:00", "pay", {"order_id": 1, "amount_fen": 1000}),
...                    (1, "2024-05-03 10:00", "pay", {"order_id": 2, "amount_fen": 3000}),
...                    (2, "2024-05-02 10:00", "pay", {"order_id": 3, "amount_fen": 2000})])
>>> answer("quickstart_median_order", ev)
20.0
>>> check("quickstart_median_order", 20, ev).correct, check("quickstart_median_order", 25, ev).correct
(True, False)
"""

from __future__ import annotations

import html as _html
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import DatasetError, PrivdomainError, UsageError

__all__ = ["EXERCISES", "Exercise", "Verdict", "answer", "check", "html", "show", "topics"]

MP_STEPS = ["mp_visit", "product_view", "add_to_cart", "order", "pay"]


@dataclass(frozen=True)
class Exercise:
    """One exercise: its ``question``, the ``unit`` of the answer (``"%"``, ``"yuan"``,
    ``"days"``, ``"persons"``, ``"orders"``, ``"x"`` for a ratio, ``"name"``), the ``tolerance`` (in the
    unit; percentage points for ``"%"``), a ``hint``, the ``solution`` code and ``compute``,
    the function of the dataset that returns the right answer (a fraction for ``"%"``)."""

    name: str
    topic: str
    question: str
    unit: str
    tolerance: float
    hint: str
    solution: str
    compute: Callable[[Any], Any]


@dataclass(frozen=True)
class Verdict:
    """The checker's answer: ``correct`` (``None`` when nothing was given or the answer
    cannot be computed on this dataset) and a friendly ``message``."""

    name: str
    correct: bool | None
    message: str

    def __bool__(self) -> bool:
        return bool(self.correct)

    def _repr_markdown_(self) -> str:
        return self.message

    def __str__(self) -> str:
        return self.message


# ----------------------------------------------------------------------------- helpers


def _path(data: Any) -> Path | None:
    p = getattr(data, "path", data)
    return Path(p) if isinstance(p, (str, Path)) else None


def _truth(data: Any, name: str) -> pd.DataFrame:
    p = _path(data)
    f = p / "truth" / f"{name}.parquet" if p is not None else None
    if f is None or not f.exists():
        raise DatasetError(p if p is not None else "(frame)", f"no truth/{name}.parquet: only a simulated dataset "
                                                               "keeps the truth")
    return pd.read_parquet(f)


def _pays(data: Any) -> pd.DataFrame:
    from . import events as events_layer
    from .backend import execute
    from .schema import PURCHASE

    t = events_layer.read(data, columns=("person_id", "touchpoint", "order_id", "amount_fen"))
    return execute(t.filter(t.touchpoint == PURCHASE).select("person_id", "ts", "order_id", "amount_fen"))


def _experiment(data: Any) -> pd.DataFrame:
    from . import experiments as ex

    p = _path(data)
    tables = data.tables() if hasattr(data, "tables") else []
    if "assignments" not in tables:
        raise DatasetError(p or "(frame)", "no assignments table: this dataset runs no randomised experiment")
    names = sorted(n for n in data.read("assignments")["experiment"].unique() if not str(n).startswith("lift_"))
    if not names:
        raise DatasetError(p or "(frame)", "no randomised campaign experiment (only channel lift tests)")
    return ex.campaign_frame(data, names[0])


def _last_month_end(data: Any) -> pd.Timestamp:
    from .boards.overview import overview

    ov = overview(data)
    dates = pd.date_range(pd.Timestamp(ov["first_day"]), pd.Timestamp(ov["last_day"]), freq="ME")
    if not len(dates):
        raise DatasetError(_path(data) or "(frame)", "the data cover no month end")
    return dates[-1]


# ----------------------------------------------------------------------------- answers


def _median_order(data: Any) -> float:
    pays = _pays(data)
    if pays.empty:
        raise DatasetError(_path(data) or "(frame)", "no paid order")
    return float(pays.groupby("order_id")["amount_fen"].sum().median() / 100)


def _repeat_buyers(data: Any) -> int:
    from .clv import rfm

    return int((rfm.rfm_summary(data)["frequency"] >= 1).sum())


def _multi_id_share(data: Any) -> float:
    ev = data.read("events", columns=["person_id", "id_type"])
    per = ev.groupby("person_id")["id_type"].nunique()
    return float((per >= 2).mean())


def _top_incremental(data: Any) -> str:
    inc = _truth(data, "incrementality")
    return str(inc.loc[inc["share_conversions"].idxmax(), "channel"])


def _visit_to_pay_1d(data: Any) -> float:
    from .boards import funnel

    return float(funnel.funnel(data, MP_STEPS, window="1D")["conversion_from_first"].iloc[-1])


def _strict_visit_to_pay(data: Any) -> float:
    from .boards import funnel

    return float(funnel.funnel(data, MP_STEPS, window="7D", mode="strict")["conversion_from_first"].iloc[-1])


def _article_open_30d(data: Any) -> float:
    from .boards import touchpoints

    nodes = touchpoints.touchpoint_nodes(data, window="30D").set_index("node")
    if "oa_article_open" not in nodes.index:
        raise DatasetError(_path(data) or "(frame)", "no oa_article_open events")
    return float(nodes.loc["oa_article_open", "conversion_rate"])


def _oa_orders_30d(data: Any) -> int:
    from .boards import channel_cube

    cube = channel_cube.channel_cube(data, windows=(30,)).set_index("channel")
    if "official_account" not in cube.index:
        raise DatasetError(_path(data) or "(frame)", "no purchase within 30 days of an Official Account touch")
    return int(cube.loc["official_account", "orders"])


def _time_decay_top(data: Any) -> str:
    from . import attribution

    credit = attribution.attribute(data, models=["time_decay"], half_life=7.0, window="30D")
    credit = credit[~credit["channel"].isin(attribution.DIRECT)]
    return str(credit.loc[credit["share"].idxmax(), "channel"])


def _roi_60d(data: Any) -> float:
    from . import attribution

    if "campaigns" not in (data.tables() if hasattr(data, "tables") else []):
        raise DatasetError(_path(data) or "(frame)", "no campaigns table (ad spend)")
    ad = attribution.ad_attribution(data, campaigns=data, windows=[60])
    table = attribution.roi_by_window(ad)
    roi = float(table["roi"].iloc[-1]) if len(table) else math.nan
    if not math.isfinite(roi):
        raise DatasetError(_path(data) or "(frame)", "no ad campaign with spend")
    return roi


def _repurchase_45d(data: Any) -> float:
    from .lifecycle import repurchase

    return float(repurchase.repurchase_rate(data, windows=(45,))["rate"].iloc[0])


def _dormant_p90(data: Any) -> int:
    from . import lifecycle

    return int(lifecycle.gap_thresholds(data, dormant_quantile=0.90)["dormant_days"])


def _relative_lift(data: Any) -> float:
    f = _experiment(data)
    f = f[f["pre_purchases"] >= 1]
    rate = f.groupby(f["arm"] == "treatment")["converted"].mean()
    if False not in rate.index or True not in rate.index or rate[False] == 0:
        raise DatasetError(_path(data) or "(frame)", "no holdout conversions among earlier buyers to compare with")
    return float(rate[True] / rate[False] - 1)


def _n_for_3pp(data: Any) -> int:
    from . import experiments as ex

    f = _experiment(data)
    p0 = float(f.loc[f["arm"] != "treatment", "repurchased"].mean())
    if not 0 < p0 < 0.97:
        raise DatasetError(_path(data) or "(frame)", f"holdout repurchase rate {p0:.1%} leaves no room for 3 pp")
    return int(ex.sample_size_proportion(p0, 0.03)["n_control"].iloc[0])


def _agreement_last(data: Any) -> float:
    from . import lifecycle

    _truth(data, "stages")
    conf = lifecycle.stage_agreement(data, data, _last_month_end(data))
    return float(conf["agreement"].iloc[0])  # one day: the agreement column holds its share on every row


def _dormant_truly_churned(data: Any) -> float:
    from . import lifecycle

    _truth(data, "stages")
    conf = lifecycle.stage_agreement(data, data, _last_month_end(data))
    dormant = conf[conf["stage"] == "dormant"]
    if dormant["persons"].sum() == 0:
        raise DatasetError(_path(data) or "(frame)", "nobody is dormant at the last month end")
    return float(dormant.loc[dormant["true_stage"] == "churned", "persons"].sum() / dormant["persons"].sum())


def _audience_tags(data: Any) -> pd.DataFrame:
    """The audiences notebook's tags: as of 61 days before the last event day."""
    from . import audience
    from .boards.overview import overview

    last_day = pd.Timestamp(overview(data)["last_day"])
    return audience.tags(data, as_of=str((last_day - pd.Timedelta(days=61)).date()))


def _lapsed_mp_30d(data: Any) -> int:
    from . import audience
    from .audience import Did, Tag

    tg = _audience_tags(data)
    if "days_since_mp_visit" not in tg.columns:
        raise DatasetError(_path(data) or "(frame)", "no mp_visit events before as_of")
    return int(audience.select(tg, (Tag("buyer_type") == "lapsed") & Did("mp_visit", within_days=30)).size)


def _retarget_incremental(data: Any) -> float:
    from . import audience
    from .simulate.retarget import CAMPAIGN_IDS, EXPERIMENTS

    tables = data.tables() if hasattr(data, "tables") else []
    if "assignments" not in tables or "campaigns" not in tables or not (
            data.read("assignments")["experiment"] == EXPERIMENTS["lookalike"]).any():
        raise DatasetError(_path(data) or "(frame)", "no lookalike retargeting campaign (simulate the sportswear "
                                                     "preset)")
    roi = audience.campaign_roi(data, EXPERIMENTS["lookalike"], CAMPAIGN_IDS["lookalike"])
    return float(roi["incremental_fen"].iloc[0] / 100)


_E = Exercise
EXERCISES: dict[str, Exercise] = {e.name: e for e in [
    _E("quickstart_median_order", "quickstart",
       "The headline table gives the mean paid order (客单价). What is the **median** paid order, in yuan?",
       "yuan", 0.5, "Read the `pay` events (`ds.read(\"events\")`), sum `amount_fen` per `order_id`, take the median, "
       "divide by 100.",
       "pays = ds.read('events').query('touchpoint == \"pay\"')\n"
       "pays.groupby('order_id')['amount_fen'].sum().median() / 100", _median_order),
    _E("quickstart_repeat_buyers", "quickstart",
       "How many buyers paid on **two or more different Beijing days** (复购人数)?",
       "persons", 0, "`rfm.rfm_summary(ds)` has one row per buyer; `frequency` counts the repeat purchase days.",
       "(rfm.rfm_summary(ds)['frequency'] >= 1).sum()", _repeat_buyers),
    _E("inspect_multi_id_share", "simulate_and_inspect",
       "What share of persons is seen under **two or more id types** (in percent)?",
       "%", 0.1, "Count the distinct `id_type` per `person_id` in the events.",
       "ev = ds.read('events', columns=['person_id', 'id_type'])\n"
       "(ev.groupby('person_id')['id_type'].nunique() >= 2).mean()", _multi_id_share),
    _E("inspect_top_incremental_channel", "simulate_and_inspect",
       "According to the simulator's truth, which channel has the **largest incremental share** of conversions?",
       "name", 0, "`truth/incrementality.parquet` under the dataset folder.",
       "inc = pd.read_parquet(ds.path / 'truth' / 'incrementality.parquet')\n"
       "inc.loc[inc['share_conversions'].idxmax(), 'channel']", _top_incremental),
    _E("funnel_visit_to_pay_1d", "funnels_official_account",
       "In the Mini Program funnel (mp_visit → product_view → add_to_cart → order → pay, ordered), what share of "
       "entrants pays within **1 day** instead of 7 (总转化率, in percent)?",
       "%", 0.1, "`funnel.funnel(ds, steps, window=...)`; the last row's `conversion_from_first`.",
       "funnel.funnel(ds, MP_STEPS, window='1D')['conversion_from_first'].iloc[-1]", _visit_to_pay_1d),
    _E("funnel_strict_visit_to_pay", "funnels_official_account",
       "The same 7-day funnel in **strict** mode (each step the very next event): what share of entrants pays "
       "(in percent)?",
       "%", 0.1, "`mode=\"strict\"`.",
       "funnel.funnel(ds, MP_STEPS, window='7D', mode='strict')['conversion_from_first'].iloc[-1]",
       _strict_visit_to_pay),
    _E("touch_article_open_30d", "touchpoints_channels",
       "With a **30-day** window instead of 7, what is the touch conversion rate (触点转化率) of `oa_article_open` "
       "(in percent)?",
       "%", 0.1, "`touchpoints.touchpoint_nodes(ds, window=...)`, column `conversion_rate`.",
       "nodes = touchpoints.touchpoint_nodes(ds, window='30D').set_index('node')\n"
       "nodes.loc['oa_article_open', 'conversion_rate']", _article_open_30d),
    _E("cube_oa_orders_30d", "touchpoints_channels",
       "In the channel cube with a **30-day** window, how many orders were paid within 30 days of a touch on the "
       "Official Account (`official_account`)?",
       "orders", 0, "`channel_cube.channel_cube(ds, windows=(30,))`, column `orders`.",
       "cube = channel_cube.channel_cube(ds, windows=(30,)).set_index('channel')\n"
       "cube.loc['official_account', 'orders']", _oa_orders_30d),
    _E("attribution_time_decay_top", "attribution_roi",
       "The heatmap leaves out **time decay** (half-life 7 days, 30-day window). Which marketing channel (not the "
       "Mini Program checkout) gets the largest share under it?",
       "name", 0, "`attribution.attribute(ds, models=[\"time_decay\"])`; drop `attribution.DIRECT`.",
       "credit = attribution.attribute(ds, models=['time_decay'], half_life=7.0, window_days=30)\n"
       "credit = credit[~credit['channel'].isin(attribution.DIRECT)]\n"
       "credit.loc[credit['share'].idxmax(), 'channel']", _time_decay_top),
    _E("attribution_roi_60d", "attribution_roi",
       "What is the total ad ROI (revenue / spend, all campaigns) with a **60-day** attribution window?",
       "x", 0.01, "`attribution.ad_attribution(ds, campaigns=ds, windows=[60])`, then `attribution.roi_by_window`.",
       "ad = attribution.ad_attribution(ds, campaigns=ds, windows=[60])\nattribution.roi_by_window(ad)['roi'].iloc[-1]",
       _roi_60d),
    _E("lifecycle_repurchase_45d", "lifecycle_clv",
       "What share of buyers bought again within **45 days** of a purchase (复购率, in percent)?",
       "%", 0.1, "`repurchase.repurchase_rate(ds, windows=(45,))`.",
       "repurchase.repurchase_rate(ds, windows=(45,))['rate'].iloc[0]", _repurchase_45d),
    _E("lifecycle_dormant_p90", "lifecycle_clv",
       "The dormant threshold is the 80th percentile of the gaps between purchase days. Taken at the **90th** "
       "percentile instead, how many days is it?",
       "days", 0, "`lifecycle.gap_thresholds(ds, dormant_quantile=0.9)`.",
       "lifecycle.gap_thresholds(ds, dormant_quantile=0.9)['dormant_days']", _dormant_p90),
    _E("experiment_relative_lift", "experiments",
       "Among the assigned persons who had bought in the 90 days before the campaign (`pre_purchases ≥ 1`), what is "
       "the **relative lift** of the conversion rate, treatment over holdout (in percent: 44 for +44%)?",
       "%", 0.5, "`experiments.campaign_frame`; keep `pre_purchases >= 1`; the conversion rate per arm; relative "
       "lift = treatment / holdout - 1.",
       "f = ex.campaign_frame(ds, names[0])\nf = f[f['pre_purchases'] >= 1]\n"
       "rate = f.groupby(f['arm'] == 'treatment')['converted'].mean()\nrate[True] / rate[False] - 1",
       _relative_lift),
    _E("experiment_n_for_3pp", "experiments",
       "How many persons per arm would detect a **3 pp** uplift of the repurchase rate, at the holdout's rate, with "
       "80% power and a 5% level?",
       "persons", 0.02, "`experiments.sample_size_proportion(p0, 0.03)` with `p0` the holdout repurchase rate "
       "(tolerance: 2% of the answer).",
       "p0 = f.loc[f['arm'] != 'treatment', 'repurchased'].mean()\n"
       "ex.sample_size_proportion(p0, 0.03)['n_control'].iloc[0]", _n_for_3pp),
    _E("truth_agreement_last", "lifecycle_truth",
       "On the **last month end** alone, what share of persons have the computed stage equal to the true one "
       "(in percent)?",
       "%", 0.1, "`lifecycle.stage_agreement(ds, ds, last_month_end)`: its `agreement` column.",
       "conf = lifecycle.stage_agreement(ds, ds, dates[-1])\nconf['agreement'].iloc[0]", _agreement_last),
    _E("truth_dormant_truly_churned", "lifecycle_truth",
       "Of the persons the computed stages call **dormant** on the last month end, what share has truly left for "
       "good (true stage `churned`, in percent)?",
       "%", 0.1, "Filter the confusion counts of the last month end on `stage == \"dormant\"`.",
       "conf = lifecycle.stage_agreement(ds, ds, [dates[-1]])\nd = conf[conf['stage'] == 'dormant']\n"
       "d.loc[d['true_stage'] == 'churned', 'persons'].sum() / d['persons'].sum()", _dormant_truly_churned),
    _E("audiences_lapsed_mp_30d", "audiences",
       "**Lapsed buyers** (tag `buyer_type == \"lapsed\"`: bought, but not in the 90 days to `as_of`, so outside "
       "the lookalike's seed of recent buyers) who **visited the Mini Program** in the 30 days to `as_of`: how many "
       "persons are in this segment?",
       "persons", 0, "`audience.select(tg, (Tag(\"buyer_type\") == \"lapsed\") & Did(\"mp_visit\", "
       "within_days=30))`, then `.size`.",
       "seg = audience.select(tg, (Tag('buyer_type') == 'lapsed') & Did('mp_visit', within_days=30))\n"
       "seg.size", _lapsed_mp_30d),
    _E("audiences_retarget_incremental", "audiences",
       "The **lookalike retargeting campaign** (experiment `retarget_lookalike`, campaign 900): what is its "
       "estimated incremental revenue **per treated person**, in yuan (treated mean minus holdout mean in the "
       "campaign window)? Compare it with the truth's `true_incremental_fen`.",
       "yuan", 0.5, "`audience.campaign_roi(ds, \"retarget_lookalike\", 900)`, column `incremental_fen`, "
       "divided by 100.",
       "roi = audience.campaign_roi(ds, 'retarget_lookalike', 900)\nroi['incremental_fen'].iloc[0] / 100",
       _retarget_incremental),
]}


def topics() -> list[str]:
    """The topics that have exercises, in the order of :data:`EXERCISES`."""
    return list(dict.fromkeys(e.topic for e in EXERCISES.values()))


def _get(name: str) -> Exercise:
    if name not in EXERCISES:
        raise UsageError.unknown("exercise", name, list(EXERCISES))
    return EXERCISES[name]


def answer(name: str, data: Any) -> Any:
    """The right answer of exercise ``name`` on ``data`` (a fraction for rates, a string
    for names); raises :class:`~privdomain.errors.DatasetError` when the dataset cannot
    answer it (no truth, no experiment)."""
    return _compute(_get(name), data)


def _compute(e: Exercise, data: Any) -> Any:
    value = e.compute(data)
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        raise DatasetError(_path(data) or "(frame)", f"{e.name}: the data give no answer (too few buyers or events)")
    return value


def _currency(data: Any) -> str:
    from .plotting import currency_of

    return currency_of(data)


def _question(e: Exercise, currency: str) -> str:
    """The question, with "yuan" read as the dataset's currency."""
    return e.question if currency == "CNY" else e.question.replace("in yuan", f"in {currency}")


def _fmt(e: Exercise, value: Any, currency: str = "CNY") -> str:
    if e.unit == "name":
        return f"`{value}`"
    if e.unit == "%":
        return f"{value * 100:.1f}%"
    if e.unit == "yuan":  # money, in the dataset's currency
        from .plotting import money

        return money(value, currency, 2)
    if e.unit == "x":
        return f"{value:.2f} x"
    if e.unit in ("persons", "days", "orders"):
        return f"{value:,.0f} {e.unit}"
    return f"{value:,.4g}"


def _tolerance(e: Exercise, right: Any) -> tuple[float, str]:
    if e.unit == "%":
        return e.tolerance / 100, f"±{e.tolerance:g} pp"
    if e.unit == "persons" and 0 < e.tolerance < 1:  # relative
        return e.tolerance * abs(float(right)), f"±{e.tolerance:.0%}"
    if e.tolerance == 0:
        return 0.5 if e.unit in ("persons", "days", "orders") else 0.0, "exact"
    return e.tolerance, f"±{e.tolerance:g}" + ("" if e.unit == "x" else f" {e.unit}")


def _number(given: Any) -> float:
    if isinstance(given, str):
        given = given.strip().replace(",", "").replace("¥", "").rstrip("%x ").strip()
    return float(given)


def check(name: str, given: Any, data: Any) -> Verdict:
    """Check a learner's answer to exercise ``name`` against the answer computed from ``data``.

    Rates are given in percent (``12.3`` or ``"12.3%"``), names as strings. Returns a
    :class:`Verdict`: right (within the tolerance), not quite (with a hint, too high or too
    low, without giving the answer away), not answered (``given`` is ``None``) or n/a (the
    dataset cannot answer it).

    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "pay", {"order_id": 1, "amount_fen": 990})])
    >>> print(check("quickstart_median_order", "¥9.90", ev))
    ✓ **Right.** ¥9.90 is the answer (tolerance ±0.5 yuan).
    """
    e = _get(name)
    if given is None:
        return Verdict(name, None, f"… Not answered yet: put your answer into `answers[\"{name}\"]` and run the cell.")
    try:
        right = _compute(e, data)
    except PrivdomainError as err:
        return Verdict(name, None, f"n/a: this dataset cannot answer it ({getattr(err, 'problem', err)}).")
    cur = _currency(data)
    if e.unit == "name":
        ok = str(given).strip().strip("`").lower() == str(right).strip().lower()
        msg = (f"✓ **Right.** {_fmt(e, right)}." if ok else
               f"✗ **Not quite**: `{given}` is not it. Hint: {e.hint}")
        return Verdict(name, ok, msg)
    try:
        value = _number(given)
    except (TypeError, ValueError):
        return Verdict(name, False, f"✗ **Not a number**: {given!r}. Give a number"
                                    + (" in percent (12.3 for 12.3%)." if e.unit == "%" else "."))
    shown = value / 100 if e.unit == "%" else value
    tol, tol_text = _tolerance(e, right)
    right_f = float(right)
    ok = bool(abs(shown - right_f) <= tol + 1e-12)
    if ok:
        return Verdict(name, True, f"✓ **Right.** {_fmt(e, shown, cur)} is the answer (tolerance {tol_text}).")
    side = "too high" if shown > right_f else "too low"
    extra = ""
    if e.unit == "%" and abs(value - right_f) <= tol + 1e-12:
        extra = " Did you give a fraction? Rates are answered in percent (12.3 for 12.3%)."
    return Verdict(name, False, f"✗ **Not quite**: {_fmt(e, shown, cur)} is {side} (tolerance {tol_text}).{extra} "
                                f"Hint: {e.hint}")


def _md(text: str) -> str:
    """Minimal Markdown to HTML: `code` and **bold**."""
    import re

    out = _html.escape(text, quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def html(topic: str, data: Any, answers: Mapping[str, Any] | None = None) -> str:
    """The exercises of ``topic`` as an HTML fragment: each question, the verdict on
    ``answers[name]`` (if any) and the solution (code and value on this dataset) in a
    collapsed ``<details>`` block, hidden until clicked."""
    chosen = [e for e in EXERCISES.values() if e.topic == topic]
    if not chosen:
        raise UsageError.unknown("exercise topic", topic, topics())
    answers = dict(answers or {})
    parts = ['<div class="exercises">']
    for i, e in enumerate(chosen, 1):
        verdict = check(e.name, answers.get(e.name), data)
        try:
            value = _fmt(e, _compute(e, data), _currency(data))
        except PrivdomainError as err:
            value = f"n/a on this dataset ({getattr(err, 'problem', err)})"
        parts.append(
            f'<div class="exercise" style="margin:0 0 1.4em 0">'
            f"<p><strong>Exercise {i} 练习 {i}</strong> (<code>{e.name}</code>): {_md(_question(e, _currency(data)))}"
            f"<br>Check: <code>exercises.check(\"{e.name}\", your_answer, ds)</code>"
            f" · tolerance {_html.escape(_tolerance(e, 1.0)[1] if e.unit != 'name' else 'exact')}</p>"
            f"<p>{_md(verdict.message)}</p>"
            f"<details><summary>Solution 答案 (click to open)</summary>"
            f"<pre><code>{_html.escape(e.solution)}</code></pre><p>Answer on this dataset: {_md(value)}</p>"
            f"</details></div>")
    parts.append("</div>")
    return "\n".join(parts)


def show(topic: str, data: Any, answers: Mapping[str, Any] | None = None) -> None:
    """Display :func:`html` in a notebook."""
    from IPython.display import HTML, display

    display(HTML(html(topic, data, answers)))

