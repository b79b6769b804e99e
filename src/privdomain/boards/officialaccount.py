"""The Official Account board (公众号看板): the three article rates (图文三率), reads, shares, GMV.

Definitions (per article push, or per account over a period)
-------------------------------------------------------------
* ``received`` = persons with an ``oa_push`` event of the article;
* ``opened`` = persons with an ``oa_article_open`` of it; ``reads`` = its open events;
* ``clicked`` = persons with an ``mp_click`` of it (clicked from the article into the
  Mini Program);
* ``ordered`` = clickers with a purchase (a ``pay`` event, :data:`privdomain.schema.PURCHASE`)
  at or after one of their clicks of the article and at most ``window`` after it;
  ``orders`` = those pay events, ``gmv`` = the sum of their ``amount_fen`` / 100 (yuan);
* ``shares`` = ``share`` events carrying the article id;
* open rate = opened / received, click rate = clicked / opened, conversion rate =
  ordered / clicked (NaN when the denominator is 0).

Persons are counted as sets, not checked against each other: a person who opened a
shared copy without receiving the push counts as opened. Attribution is not
exclusive: a pay within the window after clicks on two articles counts for both, so
GMV summed over articles can exceed the shop's GMV. The window is stated in the
output (``attribution_window``) and in ``attrs``.

Examples
--------
>>> from privdomain.examples import events_frame
>>> from privdomain.boards.officialaccount import article_rates
>>> ev = events_frame([
...     (1, "2024-05-01 08:00", "oa_push", {"article_id": 5}),
...     (2, "2024-05-01 08:00", "oa_push", {"article_id": 5}),
...     (1, "2024-05-01 09:00", "oa_article_open", {"article_id": 5}),
...     (1, "2024-05-01 09:01", "mp_click", {"article_id": 5}),
...     (1, "2024-05-03 20:00", "pay", {"order_id": 1, "amount_fen": 19900})])
>>> article_rates(ev)[["received", "opened", "clicked", "ordered", "open_rate", "gmv"]].values.tolist()
[[2.0, 1.0, 1.0, 1.0, 0.5, 199.0]]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .. import events as events_layer
from .. import io
from ..backend import TableLike, execute
from ..contract import Duration, events_input, interval
from ..schema import PURCHASE, TIMEZONE
from .funnel import parse_window, predicate

__all__ = ["ARTICLE_TOUCHPOINTS", "article_rates", "article_rates_daily", "article_pairs", "pooled_rates", "article_rates_by_arm"]

ARTICLE_TOUCHPOINTS = ["oa_push", "oa_article_open", "mp_click", "share"]


def _local_us(value: Any, zone: str = TIMEZONE) -> int:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(zone).tz_localize(None)
    return int((ts - pd.Timestamp("1970-01-01")) / pd.Timedelta(microseconds=1))


def article_rates(
    events: TableLike,
    window: str | pd.Timedelta = "7D",
    *,
    by: str = "article",
    articles: TableLike | None = None,
    start: Any = None,
    end: Any = None,
    purchase: str | Mapping[str, Any] = PURCHASE,
    con: Any | None = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """Open, click and conversion rates, reads, shares, orders and GMV per article or account.

    Parameters
    ----------
    events
        Events as a pandas frame, dataset path or Ibis table.
    window
        Attribution window after a click for a purchase to count (default 7 days).
    by
        ``"article"`` (one row per article) or ``"account"`` (persons counted once per
        account over all its articles; needs the ``articles`` table).
    articles
        The articles table (``article_id``, ``account``, ``title``, ``published_at``);
        read from the dataset when ``events`` is a dataset path. Adds the article's
        account, title and publication time to the output.
    start, end
        Keep the articles first pushed in ``[start, end)`` (Beijing time when naive).
        All events of a kept article count, also those after ``end``.
    purchase
        What counts as ordering: ``"pay"`` (default, a paid order), ``"order"`` (an order
        placed, paid or not), or a filter mapping on event columns whose touchpoint is
        one of those, e.g. ``{"touchpoint": "order", "channel": "mini_program"}`` (orders
        placed in the Mini Program); ``gmv`` sums those events' amounts.
    con
        Optional Ibis connection.
    tz
        Time zone of the days (:func:`privdomain.events.timezone_of`): by default the
        dataset's declared zone, Asia/Shanghai for a frame without one.

    Returns
    -------
    pandas.DataFrame
        ``article_id`` (or ``account``), [``account``, ``title``, ``published_at``],
        ``received``, ``opened``, ``clicked``, ``ordered``, ``open_rate``,
        ``click_rate``, ``conversion_rate``, ``reads``, ``shares``, ``orders``, ``gmv``
        (yuan), ``attribution_window``; sorted by key. ``attrs``: ``window``, ``start``,
        ``end``, ``articles``.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 08:00", "oa_push", {"article_id": 1}),
    ...     (1, "2024-05-01 08:05", "oa_article_open", {"article_id": 1})])
    >>> article_rates(ev)[["article_id", "open_rate", "attribution_window"]].values.tolist()
    [[1, 1.0, '7 days']]
    """
    if by not in ("article", "account"):
        raise ValueError(f"by: must be 'article' or 'account', got {by!r}")
    w = parse_window(window)
    w_us = int(w / pd.Timedelta(microseconds=1))
    t = events_layer.read(events, con=con, columns=("person_id", "event_id", "touchpoint", "article_id", "amount_fen"),
                          micros=True, tz=tz)
    meta = _articles_table(events, articles, con)
    if by == "account" and meta is None:
        raise ValueError("by='account' needs the articles table (article_id -> account): pass `articles=`")

    _check_purchase(purchase, t)
    key = "article_id" if by == "article" else "account"
    scan = _Scan(events, con, t, tz)
    art = _article_events(scan, ARTICLE_TOUCHPOINTS, by, meta, start, end)
    tp = art.touchpoint
    counts = art.group_by(key).aggregate(
        received=art.person_id.nunique(where=tp == "oa_push"),
        opened=art.person_id.nunique(where=tp == "oa_article_open"),
        clicked=art.person_id.nunique(where=tp == "mp_click"),
        reads=(tp == "oa_article_open").cast("int64").sum(),
        shares=(tp == "share").cast("int64").sum(),
    )
    clicks = _article_events(scan, ["mp_click"], by, meta, start, end)
    clicks = clicks.select("person_id", key, _cu=clicks._us)
    p = scan.table()
    pays = p.filter(predicate(p, purchase))
    pays = pays.select(_pp=pays.person_id, _pid=pays.event_id, _pu=pays._us, _amt=pays.amount_fen)
    j = clicks.join(pays, [clicks.person_id == pays._pp, pays._pu >= clicks._cu, pays._pu <= clicks._cu + w_us])
    driven = j.select(key, "person_id", "_pid", "_amt").distinct()
    conv = driven.group_by(key).aggregate(
        ordered=driven.person_id.nunique(), orders=driven.count(), _gmv_fen=driven._amt.sum()
    )
    conv = conv.rename(_ck=key)
    out_expr = counts.left_join(conv, counts[key] == conv._ck).drop("_ck")
    out = execute(out_expr, con=con)
    for c in ("received", "opened", "clicked", "ordered", "reads", "shares", "orders"):
        out[c] = pd.to_numeric(out[c]).fillna(0).astype("int64")
    out["gmv"] = pd.to_numeric(out["_gmv_fen"]).fillna(0).astype("float64") / 100
    out = out.drop(columns="_gmv_fen")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["open_rate"] = _ratio(out["opened"], out["received"])
        out["click_rate"] = _ratio(out["clicked"], out["opened"])
        out["conversion_rate"] = _ratio(out["ordered"], out["clicked"])
    out["attribution_window"] = _describe(w)
    cols = [key]
    if by == "article" and meta is not None:
        info = execute(meta.select(*[c for c in ("article_id", "account", "title", "published_at")
                                     if c in meta.columns]), con=con)
        out = out.merge(info, on="article_id", how="left")
        cols += [c for c in ("account", "title", "published_at") if c in info.columns]
    cols += ["received", "opened", "clicked", "ordered", "open_rate", "click_rate", "conversion_rate",
             "reads", "shares", "orders", "gmv", "attribution_window"]
    out = out[cols].sort_values(key, kind="stable").reset_index(drop=True)
    out.attrs.update({"window": str(w), "purchase": purchase if isinstance(purchase, str) else dict(purchase), "start": None if start is None else str(start),
                      "end": None if end is None else str(end), "articles": len(out)})
    return out


def _check_purchase(purchase: Any, t: ir.Table) -> None:
    tp = purchase.get("touchpoint") if isinstance(purchase, Mapping) else purchase
    if tp not in ("pay", "order"):
        raise ValueError(f"purchase: the touchpoint must be 'pay' or 'order', got {purchase!r}")
    if isinstance(purchase, Mapping):
        missing = [c for c in purchase if c not in t.columns]
        if missing:
            raise ValueError(f"purchase: column(s) {missing} are not in the events table")


class _Scan:
    """Fresh reads of the events: one per use for a dataset path (see :func:`_article_events`)."""

    def __init__(self, events: TableLike, con: Any | None, first: ir.Table, tz: str | None = None) -> None:
        self.events, self.con, self.first, self.used, self.tz = events, con, first, False, tz

    def table(self) -> ir.Table:
        # A Parquet path read anew for each part of the query lets DuckDB push each part's filter
        # and columns into its own scan; one shared table would be materialised in full (every
        # column of every matching row) and scanned again by each part.
        if not self.used:
            self.used = True
            return self.first
        if isinstance(self.events, (pd.DataFrame, ir.Table)):
            return self.first
        return events_layer.read(self.events, con=self.con, micros=True, tz=self.tz)


def _article_events(scan: _Scan, touchpoints: list[str], by: str, meta: ir.Table | None,
                    start: Any, end: Any) -> ir.Table:
    """Article events of the given touchpoints: ``person_id``, ``touchpoint``, the key, ``_us``.

    Keeps the articles first pushed in ``[start, end)``; with ``by="account"`` the key is
    the article's account.
    """
    t = scan.table()
    art = t.filter(t.touchpoint.isin(touchpoints).fill_null(False) & t.article_id.notnull())
    art = art.select("person_id", "touchpoint", "article_id", "ts", "_us")
    if start is not None or end is not None:
        p = scan.table()
        p = p.filter((p.touchpoint == "oa_push").fill_null(False) & p.article_id.notnull())
        pushes = p.group_by("article_id").aggregate(_first=p._us.min())
        cond = ibis.literal(True)
        zone = events_layer.timezone_of(scan.events, scan.tz)
        if start is not None:
            cond = cond & (pushes._first >= _local_us(start, zone))
        if end is not None:
            cond = cond & (pushes._first < _local_us(end, zone))
        kept = pushes.filter(cond).select(_kid=pushes.article_id)
        art = art.join(kept, art.article_id == kept._kid).drop("_kid")
    if by == "account":
        m = meta.select(_mid=meta.article_id, account=meta.account)
        art = art.join(m, art.article_id == m._mid).drop("_mid", "article_id")
    return art


def article_pairs(events: TableLike, *, con: Any | None = None) -> ir.Table:
    """One row per (person, article) with an Official Account event of the article (Ibis table).

    ``person_id``, ``article_id``, ``pushed_at`` (the first ``oa_push`` of the article to the
    person, naive Beijing time; null when it was never pushed to them), ``opened`` (an
    ``oa_article_open``), ``clicked`` (an ``mp_click`` into the Mini Program). The same
    article events as :func:`article_rates`; for measures over (person, article) pairs such
    as the rates of an experiment's arms (:func:`article_rates_by_arm`).

    >>> from privdomain.backend import execute
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 08:00", "oa_push", {"article_id": 5}),
    ...     (1, "2024-05-01 09:00", "oa_article_open", {"article_id": 5})])
    >>> execute(article_pairs(ev))[["person_id", "article_id", "opened", "clicked"]].values.tolist()
    [[1, 5, True, False]]
    """
    t = events_layer.read(events, con=con, columns=("person_id", "touchpoint", "article_id"), micros=True)
    art = _article_events(_Scan(events, con, t), ["oa_push", "oa_article_open", "mp_click"], "article",
                          None, None, None)
    tp = art.touchpoint
    return art.group_by(["person_id", "article_id"]).aggregate(
        pushed_at=art.ts.min(where=tp == "oa_push"),
        opened=(tp == "oa_article_open").any(),
        clicked=(tp == "mp_click").any(),
    )


def pooled_rates(board: pd.DataFrame) -> dict[str, float]:
    """The three rates pooled over the rows of :func:`article_rates` (sums of counts).

    >>> pooled_rates(pd.DataFrame({"received": [10, 30], "opened": [2, 6], "clicked": [1, 1], "ordered": [1, 0]}))
    {'open_rate': 0.2, 'click_rate': 0.25, 'conversion_rate': 0.5}
    """
    s = board[["received", "opened", "clicked", "ordered"]].sum()
    return {
        "open_rate": float(s["opened"] / s["received"]) if s["received"] else float("nan"),
        "click_rate": float(s["clicked"] / s["opened"]) if s["opened"] else float("nan"),
        "conversion_rate": float(s["ordered"] / s["clicked"]) if s["clicked"] else float("nan"),
    }


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den > 0)).astype("float64")


def _describe(w: pd.Timedelta) -> str:
    if w % pd.Timedelta(days=1) == pd.Timedelta(0):
        d = w // pd.Timedelta(days=1)
        return f"{d} day" if d == 1 else f"{d} days"
    return str(w)


def _articles_table(events: TableLike, articles: TableLike | None, con: Any | None):
    from pathlib import Path

    from ..io import Dataset

    if articles is not None:
        return events_layer.table(articles, "articles", con=con)
    src = events.path if isinstance(events, Dataset) else events
    if isinstance(src, (str, Path)) and Path(src).is_dir() and (Path(src) / "articles.parquet").exists():
        return events_layer.table(src, "articles", con=con)
    return None


def article_rates_daily(data: TableLike, *, events: TableLike | None = None, window: str | pd.Timedelta = "7D",
                        con: Any | None = None) -> pd.DataFrame:
    """The Official Account board from the platform's daily article statistics (``articles_daily``).

    A brand that exports the Official Account's statistics (the datacube article summary,
    ``privdomain import oa-articles``) has per article and day the users delivered
    (``target_user``), the users who read the article page (``int_page_read_user``), who
    went on to the page it links (``ori_page_read_user``: the Mini Program) and who shared
    it. Per article:

    * ``delivered`` = Σ target_user, ``opened`` = Σ int_page_read_user,
      ``clicked`` = Σ ori_page_read_user, ``shared`` = Σ share_user, ``reads`` =
      Σ int_page_read_count;
    * open rate = opened / delivered, click rate = clicked / opened, share rate =
      shared / opened (NaN when the denominator is 0).

    The sums are over days, so a person who read an article on two days counts twice
    (person-days: the platform publishes no per-article person count across days).
    With ``events`` (the dataset's Mini Program events, or ``data`` itself when it is a
    dataset folder with events), ``ordered``, ``orders``, ``gmv`` and the conversion
    rate (ordered / clicked) of :func:`article_rates` are joined on the article; without
    them these columns are missing (NaN), never zero.

    Parameters
    ----------
    data
        A dataset folder with an ``articles_daily`` table, or that table as a frame.
    events
        Events for the conversion columns (default: ``data``'s events, if it has any).
    window
        Attribution window of the conversion columns (see :func:`article_rates`).
    con
        Optional Ibis connection.

    Returns
    -------
    pandas.DataFrame
        ``article_id``, ``days``, ``delivered``, ``opened``, ``clicked``, ``shared``,
        ``reads``, ``open_rate``, ``click_rate``, ``share_rate``, ``ordered``,
        ``orders``, ``gmv``, ``conversion_rate``; sorted by article.

    Examples
    --------
    >>> import pandas as pd
    >>> daily = pd.DataFrame({"article_id": [5, 5], "msgid": ["5", "5"], "title": ["t", "t"],
    ...     "day": pd.to_datetime(["2024-05-01", "2024-05-02"]).tz_localize("Asia/Shanghai"),
    ...     "target_user": [100, 0], "int_page_read_user": [20, 5], "int_page_read_count": [30, 5],
    ...     "ori_page_read_user": [4, 1], "share_user": [2, 0]})
    >>> article_rates_daily(daily)[["delivered", "opened", "open_rate", "click_rate"]].values.tolist()
    [[100.0, 25.0, 0.25, 0.2]]

    References
    ----------
    WeChat Official Account data interface, ``datacube/getarticlesummary``: daily article
    statistics per message.
    """
    t = events_layer.table(data, "articles_daily", con=con)
    need = ["article_id", "day", "target_user", "int_page_read_user", "ori_page_read_user"]
    from ..backend import require_columns

    require_columns(t, need, "articles_daily")
    opt = {c: (t[c] if c in t.columns else ibis.literal(0)) for c in ("share_user", "int_page_read_count")}
    out = execute(t.group_by("article_id").aggregate(
        days=t.day.nunique(), delivered=t.target_user.sum(), opened=t.int_page_read_user.sum(),
        clicked=t.ori_page_read_user.sum(), shared=opt["share_user"].sum(), reads=opt["int_page_read_count"].sum(),
    ).order_by("article_id"), con=con)
    for c in ("delivered", "opened", "clicked", "shared", "reads"):
        out[c] = out[c].fillna(0).astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["open_rate"] = np.where(out.delivered > 0, out.opened / out.delivered, np.nan)
        out["click_rate"] = np.where(out.opened > 0, out.clicked / out.opened, np.nan)
        out["share_rate"] = np.where(out.opened > 0, out.shared / out.opened, np.nan)
    conv_cols = ["ordered", "orders", "gmv", "conversion_rate"]
    source = events if events is not None else (data if not isinstance(data, (pd.DataFrame, ir.Table)) else None)
    has_events = source is not None and (not isinstance(source, (str, os.PathLike)) or
                                         "events" in io.read_manifest(source).get("row_counts", {}))
    if has_events:
        ev = article_rates(source, window, con=con)[["article_id", "ordered", "orders", "gmv", "clicked"]]
        ev = ev.rename(columns={"clicked": "_clicked_events"})
        out = out.merge(ev, on="article_id", how="left")
        with np.errstate(divide="ignore", invalid="ignore"):
            out["conversion_rate"] = np.where(out._clicked_events > 0, out.ordered / out._clicked_events, np.nan)
        out = out.drop(columns="_clicked_events")
    else:
        for c in conv_cols:
            out[c] = np.nan
    out["article_id"] = out["article_id"].astype("int64")
    out["days"] = out["days"].astype("int64")
    return out.reset_index(drop=True)


@events_input(renamed={"days": "window"})
def article_rates_by_arm(events: Any, experiment: str, window: Duration | None = None, assignments: Any | None = None,
                         *, con: Any | None = None) -> pd.DataFrame:
    """The first two article rates (图文三率) per experiment arm, over (person, article) pairs.

    For the persons assigned in ``experiment`` and the articles pushed to them at or
    after their assignment (and, with ``window``, less than ``window`` after it, a duration
    such as ``"14D"``: the experiment's window): ``received`` = pairs with an ``oa_push``, ``opened`` = of
    those, pairs with an ``oa_article_open``, ``clicked`` = of those, pairs with an
    ``mp_click``; ``open_rate`` = opened / received (打开率), ``click_rate`` = clicked /
    opened (点击率). One row per ``arm``. ``events`` is a dataset (with an
    ``assignments`` table) or events together with ``assignments``.

    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-02 10:00", "oa_push", {"article_id": 9}),
    ...     (1, "2024-05-02 10:05", "oa_article_open", {"article_id": 9}),
    ...     (1, "2024-05-02 10:06", "mp_click", {"article_id": 9}),
    ...     (2, "2024-05-02 10:00", "oa_push", {"article_id": 9}),
    ...     (2, "2024-05-02 11:00", "oa_article_open", {"article_id": 9})])
    >>> asg = pd.DataFrame({"person_id": [1, 2], "experiment": "x", "arm": ["treatment", "holdout"],
    ...     "assigned_at": pd.Timestamp("2024-05-01", tz="Asia/Shanghai")})
    >>> article_rates_by_arm(ev, "x", assignments=asg)[["arm", "opened", "click_rate"]].values.tolist()
    [['holdout', 1, 0.0], ['treatment', 1, 1.0]]
    """
    a = events_layer.table(assignments if assignments is not None else events, "assignments", con=con)
    a = a.filter(a.experiment == experiment).select(pid=a.person_id, arm=a.arm, t0=a.assigned_at)
    flags = article_pairs(events, con=con)
    j = flags.inner_join(a, flags.person_id == a.pid)
    j = j.filter(j.pushed_at.notnull() & (j.pushed_at >= j.t0))
    if window is not None:
        j = j.filter(j.pushed_at < j.t0 + interval(window))
    one, zero = ibis.literal(1), ibis.literal(0)
    expr = j.group_by("arm").agg(received=j.count(), opened=ibis.ifelse(j.opened, one, zero).sum(),
                                 clicked=ibis.ifelse(j.opened & j.clicked, one, zero).sum())
    out = execute(expr, con=con).sort_values("arm").reset_index(drop=True)
    for c in ("received", "opened", "clicked"):
        out[c] = out[c].astype("int64")
    out["arm"] = out["arm"].astype(object)
    out["open_rate"] = out["opened"] / out["received"].where(out["received"] > 0)
    out["click_rate"] = out["clicked"] / out["opened"].where(out["opened"] > 0)
    return out
