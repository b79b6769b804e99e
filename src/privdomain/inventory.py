"""What a dataset holds and which metrics apply to it: the logic of the "bring your own data" notebook.

:func:`inventory` lists a dataset's tables (rows and columns), its events per touchpoint
(with the channel family and whether the dataset declared it), its period, time zone
and currency. :func:`applicability` goes through :data:`METRICS`, every public metric
with what it needs (tables, event columns, events, repeat buyers), and says for each
whether it applies and, when it does not, what is missing, by name. :func:`run` runs
one metric that applies with defaults that suit any dataset and returns a small frame.

A metric applies when the dataset has every table and event column it reads and at
least one row of every event it needs; the CLV models also need
:data:`MIN_REPEAT_BUYERS` buyers with a second purchase day (they fit nothing on
one-time buyers alone). Reading costs the events layer's check (cached per folder),
one small query for the repeat buyers, and the Parquet footers.

Examples
--------
>>> from privdomain.examples import events_frame
>>> ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"),
...     (1, "2024-05-01 10:05", "pay", {"order_id": 1, "amount_fen": 9900})])
>>> a = applicability(ev).set_index("metric")
>>> bool(a.loc["funnel", "applies"]), a.loc["live_board", "why"]
(True, 'needs the table(s) lives; needs live_view events')
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from . import attribution, clv, identity, io, lifecycle, schema
from . import events as events_layer
from .backend import TableLike, execute, execute_arrow
from .boards import channel_cube, funnel, live, officialaccount, touchpoints
from .clv import rfm
from .lifecycle import cohorts, repurchase

__all__ = ["Inventory", "Metric", "METRICS", "MIN_REPEAT_BUYERS", "inventory", "applicability", "funnel_steps", "run",
           "period_freq", "present"]

#: Buyers with a second purchase day the CLV models need before a fit means anything.
MIN_REPEAT_BUYERS = 10


@dataclass(frozen=True)
class Inventory:
    """What a dataset holds (see :func:`inventory`).

    Attributes
    ----------
    tables : pandas.DataFrame
        ``table``, ``rows``, ``columns`` (comma-separated), one row per table.
    touchpoints : pandas.DataFrame
        ``touchpoint``, ``channel`` (its family), ``events``, ``declared`` (True for a
        name the dataset's manifest declares, False for privdomain's WeChat vocabulary);
        most events first.
    columns : tuple of str
        The event columns.
    first, last : pandas.Timestamp or None
        The first and last event (wall-clock time in :attr:`timezone`).
    timezone, currency : str
        The dataset's time zone (:func:`privdomain.events.timezone_of`) and currency.
    truth : bool
        Whether the dataset holds the simulator's ``truth/``.
    repeat_buyers : int
        Persons with purchases on two or more days.
    """

    tables: pd.DataFrame
    touchpoints: pd.DataFrame
    columns: tuple[str, ...]
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    timezone: str
    currency: str
    truth: bool = False
    repeat_buyers: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def has(self, touchpoint: str) -> bool:
        """Whether the events hold at least one ``touchpoint`` row."""
        return self.counts.get(touchpoint, 0) > 0


def _folder(data: Any) -> Path | None:
    if isinstance(data, io.Dataset):
        return Path(data.path)
    if isinstance(data, (str, os.PathLike)) and Path(data).is_dir():
        return Path(data)
    return None


def inventory(data: TableLike, *, con: Any | None = None, tz: str | None = None) -> Inventory:
    """The tables, columns, events, period, zone and currency of a dataset (folder, frame or Ibis table).

    Parameters
    ----------
    data
        A dataset folder, a :class:`privdomain.io.Dataset`, or events as a frame or Ibis table.
    con
        Optional Ibis connection.
    tz
        Time zone for a frame (:func:`privdomain.events.timezone_of`).

    Returns
    -------
    Inventory

    >>> from privdomain.examples import events_frame
    >>> inv = inventory(events_frame([(1, "2024-05-01 10:00", "sms"), (2, "2024-05-01 11:00", "sms")]))
    >>> inv.touchpoints[["touchpoint", "events", "declared"]].values.tolist(), inv.currency
    ([['sms', 2, False]], 'CNY')
    """
    check = events_layer.check(data, con=con)
    zone = events_layer.timezone_of(data, tz)
    root = _folder(data)
    declared: dict[str, str] = {}
    truth = False
    if root is not None:
        manifest = io.read_manifest(root)
        declared = dict(manifest.get("touchpoints") or {})
        truth = any(str(k).startswith("truth/") for k in manifest.get("files") or {})
        rows = []
        for name, n in manifest.get("row_counts", {}).items():
            files = io.table_files(root, name)
            cols = list(pq.read_schema(files[0]).names) if files else []
            rows.append({"table": name, "rows": int(n), "columns": ", ".join(cols)})
        tables = pd.DataFrame(rows, columns=["table", "rows", "columns"])
        currency = io.vocabulary(root).currency
    else:
        tables = pd.DataFrame([{"table": "events", "rows": check.rows, "columns": ", ".join(check.columns)}])
        currency = "CNY"
    vocab = events_layer.known_touchpoints(data)
    tps = pd.DataFrame([{"touchpoint": k, "channel": vocab.get(k, ""), "events": int(v), "declared": k in declared}
                        for k, v in sorted(check.touchpoints.items(), key=lambda kv: (-kv[1], kv[0]))],
                       columns=["touchpoint", "channel", "events", "declared"])
    t = events_layer.read(data, con=con, columns=("person_id", "touchpoint"), tz=tz)
    first = last = None
    repeat = 0
    if check.rows:
        span = execute(t.aggregate(first=t.ts.min(), last=t.ts.max()), con=con).iloc[0]
        first, last = pd.Timestamp(span["first"]), pd.Timestamp(span["last"])
    if check.touchpoints.get(schema.PURCHASE):
        pay = t.filter(t.touchpoint == schema.PURCHASE)
        days = pay.group_by("person_id").aggregate(d=pay.ts.date().nunique())
        repeat = int(execute(days.filter(days.d >= 2).count(), con=con))
    return Inventory(tables=tables, touchpoints=tps, columns=tuple(check.columns), first=first, last=last,
                     timezone=zone, currency=currency, truth=truth, repeat_buyers=repeat,
                     counts=dict(check.touchpoints))


@dataclass(frozen=True)
class Metric:
    """A public metric and what it needs from a dataset.

    Attributes
    ----------
    name, call, what : str
        Short name, the function to call, what it measures.
    tables : tuple of str
        Tables besides the events.
    columns : tuple of str
        Event columns besides ``ts``.
    touchpoints : tuple of str
        Events that must have at least one row.
    any_touch : bool
        Needs at least one event that is not an order, pay or refund (a touch).
    repeat_buyers : int
        Buyers with a second purchase day needed.
    truth : bool
        Needs the simulator's ``truth/``.
    """

    name: str
    call: str
    what: str
    tables: tuple[str, ...] = ()
    columns: tuple[str, ...] = ("person_id", "touchpoint")
    touchpoints: tuple[str, ...] = ()
    any_touch: bool = False
    repeat_buyers: int = 0
    truth: bool = False


_P = schema.PURCHASE
#: Every public metric with what it needs, in the order the notebook shows them.
METRICS: tuple[Metric, ...] = (
    Metric("daily_volume", "touchpoints.daily_volume", "events and persons per touchpoint and day"),
    Metric("funnel", "funnel.funnel", "persons reaching each step in order within 7 days (steps: the "
           "dataset's commonest events), with 95% intervals",
           columns=("event_id", "person_id", "touchpoint")),
    Metric("touchpoint_flows", "touchpoints.touchpoint_flows", "moves from one event to the next within 30 minutes"),
    Metric("rfm", "rfm.rfm_summary, rfm.rfm_segments", "recency, frequency, monetary value and segments per buyer",
           columns=("person_id", "touchpoint", "amount_fen"), touchpoints=(_P,)),
    Metric("repurchase_rate", "repurchase.repurchase_rate", "first-time buyers who buy again within 7 to 180 days "
           "(the windows the data's span can observe), with 95% intervals",
           touchpoints=(_P,)),
    Metric("cohorts", "cohorts.cohort_table", "cohorts of first purchase: retention by month (or week) since",
           columns=("person_id", "touchpoint", "amount_fen"), touchpoints=(_P,)),
    Metric("lifecycle_board", "lifecycle.lifecycle_board", "persons per lifecycle stage at each month's (or week's) end",
           columns=("person_id", "touchpoint", "amount_fen"), touchpoints=(_P,)),
    Metric("clv", "clv.BetaGeo, clv.GammaGamma", "BG/NBD purchase model (weeks) and 26-week customer value",
           columns=("person_id", "touchpoint", "amount_fen"), touchpoints=(_P,), repeat_buyers=MIN_REPEAT_BUYERS),
    Metric("channel_cube", "channel_cube.channel_cube", "orders, buyers and GMV credited to each channel touched "
           "within 1/7/30 days before a purchase",
           columns=("person_id", "event_id", "touchpoint", "channel", "amount_fen"), touchpoints=(_P,),
           any_touch=True),
    Metric("attribution", "attribution.attribute", "each channel's share of conversions (rule-based and Markov)",
           columns=("event_id", "person_id", "touchpoint", "channel"), touchpoints=(_P,), any_touch=True),
    Metric("article_rates", "officialaccount.article_rates", "open, click and order rates per article (events)",
           columns=("person_id", "event_id", "touchpoint", "article_id", "amount_fen"),
           touchpoints=("oa_push", "oa_article_open")),
    Metric("article_rates_daily", "officialaccount.article_rates_daily", "open, click and share rates per article "
           "(the platform's daily statistics)", tables=("articles_daily",), columns=()),
    Metric("ad_roi", "attribution.multi_level_roi", "ad revenue and ROI same-day, 7, 30 and 90 days",
           tables=("campaigns",), columns=("person_id", "touchpoint", "campaign_id", "amount_fen"),
           touchpoints=(_P,)),
    Metric("live_board", "live.live_board", "viewers, buyers and GMV per live stream", tables=("lives",),
           columns=("person_id", "touchpoint", "live_id", "amount_fen"), touchpoints=("live_view",)),
    Metric("identity", "identity.unify", "ids joined into persons over the id links", tables=("id_links",),
           columns=("id_type", "id_value")),
    Metric("experiments", "experiments.campaign_effects", "treatment against holdout per experiment",
           tables=("assignments",), touchpoints=(_P,)),
    Metric("truth_scores", "attribution.score, clv.p_alive_score", "metrics scored against the simulator's truth",
           truth=True),
)


def applicability(data: TableLike, *, con: Any | None = None, inv: Inventory | None = None) -> pd.DataFrame:
    """Which metrics of :data:`METRICS` apply to a dataset, and why each other one does not.

    Returns
    -------
    pandas.DataFrame
        ``metric``, ``call``, ``what``, ``applies`` (bool), ``why`` (empty when it
        applies; else every missing table, column and event, by name).
    """
    inv = inv if inv is not None else inventory(data, con=con)
    tables = set(inv.tables["table"])
    rows = []
    for m in METRICS:
        why = []
        missing = [t for t in m.tables if t not in tables]
        if missing:
            why.append(f"needs the table(s) {', '.join(missing)}")
        if "events" in tables or inv.columns:
            cols = [c for c in m.columns if c not in inv.columns]
            if cols:
                why.append(f"needs the event column(s) {', '.join(cols)}")
        absent = [t for t in m.touchpoints if not inv.has(t)]
        if absent:
            why.append(f"needs {', '.join(absent)} events")
        if m.any_touch and not any(inv.has(t) for t in inv.counts if t not in schema.ORDER_TOUCHPOINTS):
            why.append("needs touches before the purchases (events other than order, pay, refund)")
        if m.name == "funnel" and len(inv.counts) < 2:
            why.append("needs two kinds of events or more")
        if m.name == "touchpoint_flows" and len(inv.counts) < 2:
            why.append("needs two kinds of events or more")
        if m.repeat_buyers and not absent and inv.repeat_buyers < m.repeat_buyers:
            why.append(f"needs {m.repeat_buyers} buyers with a second purchase day (the dataset has "
                       f"{inv.repeat_buyers})")
        if m.truth and not inv.truth:
            why.append("needs the simulator's truth/ (simulated data only)")
        rows.append({"metric": m.name, "call": m.call, "what": m.what, "applies": not why, "why": "; ".join(why)})
    return pd.DataFrame(rows, columns=["metric", "call", "what", "applies", "why"])


def funnel_steps(inv: Inventory, k: int = 3) -> list[str]:
    """Funnel steps from what a dataset holds: its ``k`` commonest touches (most events first), then ``pay``.

    A starting point for a dataset nobody has described yet: the commonest events are
    usually the top of the funnel. Without purchases, the ``k + 1`` commonest events.

    >>> from privdomain.examples import events_frame
    >>> inv = inventory(events_frame([(1, "2024-05-01 10:00", "mp_visit"), (2, "2024-05-01 10:00", "mp_visit"),
    ...     (1, "2024-05-01 10:01", "add_to_cart"), (1, "2024-05-01 10:05", "pay", {"order_id": 1, "amount_fen": 1})]))
    >>> funnel_steps(inv)
    ['mp_visit', 'add_to_cart', 'pay']
    """
    touches = [t for t in inv.touchpoints["touchpoint"] if t not in schema.ORDER_TOUCHPOINTS]
    if inv.has(_P):
        return [*touches[:k], _P]
    return list(inv.touchpoints["touchpoint"][: k + 1])


def _span_days(inv: Inventory) -> int:
    return 0 if inv.first is None else (inv.last.normalize() - inv.first.normalize()).days + 1


def period_freq(inv: Inventory) -> str:
    """The board period that suits the dataset's span: months from 90 days, weeks from 14, else days.

    A board needs period ends inside the data; a month-long clickstream has no month end
    to snapshot, a year of orders would be 365 rows of days.
    """
    days = _span_days(inv)
    return "M" if days >= 90 else "W" if days >= 14 else "D"


def _windows(inv: Inventory) -> tuple[int, ...]:
    """Repurchase windows a dataset can observe: those shorter than half its span (at least 7 days)."""
    days = _span_days(inv)
    return tuple(w for w in (7, 30, 90, 180) if w < days / 2) or (7,)


def _board(d: Any, inv: Inventory, con: Any | None) -> pd.DataFrame:
    b = lifecycle.lifecycle_board(d, str(inv.first.date()), str(inv.last.date()), freq=period_freq(inv), con=con)
    wide = b.pivot(index="period", columns="stage", values="persons")
    wide.index = wide.index.date
    return wide[[s for s in lifecycle.STAGES if s in wide.columns]].tail(12).reset_index(names="period")


def _with_interval(frame: pd.DataFrame, successes: str, trials: str, rate: str) -> pd.DataFrame:
    """``frame`` with the 95% Wilson interval of ``rate`` = successes / trials (``rate_low``, ``rate_high``)."""
    from .plotting import rate_intervals

    ci = rate_intervals(frame, successes, trials)
    return frame.assign(**{f"{rate}_low": ci["low"], f"{rate}_high": ci["high"]})


def _funnel(d: Any, inv: Inventory, con: Any | None) -> pd.DataFrame:
    f = funnel.funnel(d, funnel_steps(inv), window="7D", con=con)
    f = f.assign(entered=int(f["persons"].iloc[0]))
    f = _with_interval(f, "persons", "entered", "conversion_from_first")
    return f[["step", "step_name", "persons", "conversion_from_previous", "conversion_from_first",
              "conversion_from_first_low", "conversion_from_first_high"]]


def _repurchase(d: Any, inv: Inventory, con: Any | None) -> pd.DataFrame:
    r = repurchase.repurchase_rate(d, windows=_windows(inv), con=con)
    return _with_interval(r, "repurchasers", "buyers", "rate")


def present(frame: pd.DataFrame, currency: str = "CNY"):
    """A frame as the notebook shows it: money in ``currency``, rates as %, counts with separators, no ``nan``.

    Columns named like money (``gmv``, ``revenue``, ``spend``, ``total_value``, ``value``
    of a money row) are formatted with :func:`privdomain.plotting.money`; ``rate``,
    ``share``, ``conversion`` and attribution model columns as percentages; missing
    values as a dash.
    """
    from . import plotting

    money_cols = {"gmv", "revenue", "spend", "total_value", "monetary_value", "direct_revenue", "fission_revenue"}
    fmt: dict[str, Any] = {}
    for c in frame.columns:
        name = str(c)
        s = frame[c]
        if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            continue
        if name in money_cols or name.endswith("_gmv"):
            fmt[c] = plotting.money_format(currency)
        elif any(k in name for k in ("rate", "share", "conversion", "retention")) or name in attribution.MODELS \
                or name.startswith("markov") or (isinstance(c, (int, np.integer)) and s.max() <= 1):
            fmt[c] = "{:.1%}"
        elif pd.api.types.is_integer_dtype(s.dtype) or (s.dropna() == s.dropna().round()).all():
            fmt[c] = "{:,.0f}"
        else:
            fmt[c] = "{:,.3f}"
    return frame.style.hide(axis="index").format(fmt, na_rep="–")


def _run_clv(data: Any, inv: Inventory, con: Any | None) -> pd.DataFrame:
    weekly = rfm.rfm_summary(data, time_unit="W", con=con)
    weekly = weekly[weekly["T"] > 0]
    bg = clv.BetaGeo().fit(weekly)
    rows = [{"quantity": "buyers fitted (T > 0)", "value": float(len(weekly))},
            *({"quantity": f"BG/NBD {k}", "value": float(v)} for k, v in bg.params_.items()),
            {"quantity": "mean P(alive) at the end", "value": float(np.mean(bg.probability_alive(weekly)))},
            {"quantity": "expected purchases per buyer, next 26 weeks",
             "value": float(np.mean(bg.expected_purchases(26.0, weekly)))}]
    repeat = weekly[weekly["frequency"] > 0]
    if len(repeat) >= MIN_REPEAT_BUYERS:
        gg = clv.GammaGamma().fit(weekly)
        value = gg.customer_lifetime_value(bg, weekly, horizon=26.0, periods=6, discount_rate=0.01)
        rows.append({"quantity": f"mean 26-week customer value ({inv.currency})", "value": float(np.mean(value))})
    return pd.DataFrame(rows)


def _triangle(table: pd.DataFrame) -> pd.DataFrame:
    tri = cohorts.cohort_triangle(table).iloc[:12, :7]
    tri.index = pd.DatetimeIndex(tri.index).date
    tri.columns = [f"retention, period {c}" for c in tri.columns]
    return tri.reset_index(names="cohort")


def _run_attribution(data: Any, inv: Inventory, con: Any | None) -> pd.DataFrame:
    credit = attribution.attribute(data, models=["last_touch", "linear", "markov"], con=con)
    return credit.pivot_table(index="channel", columns="model", values="share", aggfunc="sum").reset_index()


def _run_identity(data: Any, inv: Inventory, con: Any | None) -> pd.DataFrame:
    ids = identity.observed_ids(data, con=con)
    # the links as Arrow strings: 13.5M links (10M persons) take 1.1 GB so, 4.3 GB as Python strings
    links = execute_arrow(events_layer.table(data, "id_links", con=con), con=con).to_pandas(types_mapper=pd.ArrowDtype)
    u = identity.unify(ids, links)
    del ids, links
    sizes = u.groupby("unified_id")["component_size"].first().value_counts().sort_index()
    return pd.DataFrame({"ids per person": sizes.index.astype("int64"), "persons": sizes.to_numpy(dtype="int64")})


def _run_experiments(data: Any, inv: Inventory, con: Any | None) -> pd.DataFrame:
    from . import experiments

    names = sorted(n for n in io.read_table(data, "assignments", columns=["experiment"])["experiment"].unique()
                   if not str(n).startswith("lift_"))  # channel lift tests: attribution.lift, not arms
    if not names:
        return pd.DataFrame({"note": ["the assignments hold channel lift tests only (lift_*): attribution.lift"]})
    frames = [experiments.campaign_effects(experiments.campaign_frame(data, n, con=con)).assign(experiment=n)
              for n in names]
    return pd.concat(frames, ignore_index=True)


_RUNNERS: dict[str, Callable[[Any, Inventory, Any], pd.DataFrame]] = {
    "daily_volume": lambda d, inv, con: touchpoints.daily_volume(d, con=con),
    "funnel": _funnel,
    "touchpoint_flows": lambda d, inv, con: touchpoints.touchpoint_flows(d, con=con).head(15),
    "rfm": lambda d, inv, con: rfm.rfm_segments(rfm.rfm_summary(d, con=con))["segment"].value_counts()
    .rename_axis("segment").reset_index(name="buyers"),
    "repurchase_rate": _repurchase,
    "cohorts": lambda d, inv, con: _triangle(cohorts.cohort_table(d, "M" if period_freq(inv) == "M" else "W", con=con)),
    "lifecycle_board": _board,
    "clv": _run_clv,
    "channel_cube": lambda d, inv, con: channel_cube.channel_cube(d, windows=(1, 7, 30), con=con)
    .query("window_days == 7"),
    "attribution": _run_attribution,
    "article_rates": lambda d, inv, con: officialaccount.article_rates(d, con=con),
    "article_rates_daily": lambda d, inv, con: officialaccount.article_rates_daily(d, con=con),
    "ad_roi": lambda d, inv, con: attribution.multi_level_roi(d, con=con),
    "live_board": lambda d, inv, con: live.live_board(d, con=con),
    "identity": _run_identity,
    "experiments": _run_experiments,
}


def run(data: TableLike, metric: str, *, inv: Inventory | None = None, con: Any | None = None) -> pd.DataFrame:
    """Run one metric of :data:`METRICS` on a dataset with defaults that suit any dataset: a small frame.

    Raises
    ------
    privdomain.errors.UsageError
        An unknown metric, or one that does not apply (the message says why).
    """
    from .errors import UsageError

    names = [m.name for m in METRICS]
    if metric not in names:
        raise UsageError.unknown("metric", metric, names)
    inv = inv if inv is not None else inventory(data, con=con)
    row = applicability(data, inv=inv).set_index("metric").loc[metric]
    if not row["applies"]:
        raise UsageError(f"{metric} does not apply to this dataset: {row['why']}")
    if metric not in _RUNNERS:
        raise UsageError(f"{metric}: run it in its own notebook ({row['call']})")
    return _RUNNERS[metric](data, inv, con)
