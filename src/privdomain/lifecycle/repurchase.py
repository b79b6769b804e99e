"""Repurchase: repurchase rate within windows and the repurchase cycle as a survival curve.

A *purchase occasion* is a calendar day of the dataset's time zone (Beijing by default) with at least one ``pay`` event (as in
:mod:`privdomain.lifecycle`): several orders on one day are one occasion, and a
repurchase is a purchase on a later day.

* **Repurchase rate within w days**: among buyers whose first purchase day ``p1``
  satisfies ``p1 + w <= as_of`` (the whole window is observed), the share with a second
  purchase day ``p2 <= p1 + w``. Buyers whose window is not complete yet are excluded
  from the rate and counted in ``not_observable``.
* **Repurchase cycle**: the time from a purchase occasion to the next one. Gaps still
  open at ``as_of`` are right-censored at ``as_of - day``; the Kaplan-Meier estimator
  (statsmodels ``SurvfuncRight``; Kaplan & Meier 1958, Greenwood variance) gives
  ``S(t)`` = P(no repurchase within t days), and ``1 - S(t)`` is the cumulative
  repurchase probability. Pointwise confidence bands use the log(-log) transform.

Segments (``by``): a column of the ``persons`` table when ``persons`` is given, else the
column's value on the person's first pay event (e.g. ``by="channel"``: the channel of
the first purchase).

Examples
--------
>>> from privdomain.examples import events_frame
>>> from privdomain.lifecycle.repurchase import repurchase_rate
>>> ev = events_frame([(1, "2024-01-01 10:00", "pay", {"order_id": 1, "amount_fen": 100}),
...                    (1, "2024-01-20 10:00", "pay", {"order_id": 2, "amount_fen": 100}),
...                    (2, "2024-01-02 10:00", "pay", {"order_id": 3, "amount_fen": 100}),
...                    (3, "2024-03-01 10:00", "mp_visit")])
>>> repurchase_rate(ev, windows=(30,))[["window_days", "buyers", "repurchasers"]].values.tolist()
[[30, 2, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.duration.survfunc import SurvfuncRight

from .. import events as events_layer
from .._days import DateLike, as_of_day, day, person_ids, segment_events
from ..backend import TableLike, execute
from ..contract import Duration, window_days
from ..schema import PURCHASE

__all__ = ["purchase_gaps", "repurchase_rate", "repurchase_curve", "repurchase_cycle"]

ALL = "all"


def person_segment(
    t: ir.Table, by: str | None, persons: TableLike | None, anchor: str, con: Any | None
) -> ir.Table:
    """``person_id, segment`` (string) for every person with an anchor event.

    ``anchor`` = ``"first_purchase"`` (the person's first pay event) or ``"first_touch"``
    (first event of any kind); ties on ``ts`` are broken by ``event_id`` when present.
    With ``persons``, ``segment`` is that table's ``by`` column instead (persons missing
    from it get ``"(unknown)"``).
    """
    base = t.filter(t.touchpoint == PURCHASE) if anchor == "first_purchase" else t
    order = [base.ts] + ([base.event_id] if "event_id" in base.columns else [])
    w = ibis.window(group_by="person_id", order_by=order)
    if by is None:
        return base.select("person_id").distinct().mutate(segment=ibis.literal(ALL))
    if persons is not None:
        p = events_layer.table(persons, "persons", con=con)
        if by not in p.columns:
            raise ValueError(f"persons: no column {by!r} to segment by")
        ids = base.select("person_id").distinct()
        p = p.select("person_id", seg=p[by].cast("string"))
        j = ids.left_join(p, ids.person_id == p.person_id)
        return j.select(ids.person_id, segment=j.seg.fill_null("(unknown)"))
    ranked = base.mutate(rn=ibis.row_number().over(w))
    first = ranked.filter(ranked.rn == 0)
    return first.select("person_id", segment=first[by].cast("string").fill_null("(none)"))


def _purchase_days(t: ir.Table, as_of: int) -> ir.Table:
    t = t.mutate(day=day(t.ts))
    pay = t.filter((t.touchpoint == PURCHASE) & (t.day <= as_of))
    pdays = pay.select("person_id", "day").distinct()
    w = ibis.window(group_by="person_id", order_by="day")
    return pdays.mutate(nxt=pdays.day.lead().over(w), number=ibis.row_number().over(w) + 1)


def purchase_gaps(
    events: TableLike,
    *,
    as_of: DateLike | None = None,
    by: str | None = None,
    persons: TableLike | None = None,
    con: Any | None = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """One row per purchase occasion with the time to the next one (censored at ``as_of``).

    Returns
    -------
    pandas.DataFrame
        ``person_id``, ``segment``, ``number`` (1 = first purchase day), ``day``
        (datetime64), ``gap_days`` (days to the next purchase day, or to ``as_of`` if
        none yet), ``repurchased`` (bool: False = censored). Pay events after ``as_of``
        are ignored (their count is in ``.attrs["pays_after_as_of"]``).

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-01-01 10:00", "pay", {"order_id": 1, "amount_fen": 100}),
    ...                    (1, "2024-01-11 10:00", "pay", {"order_id": 2, "amount_fen": 100})])
    >>> purchase_gaps(ev, as_of="2024-01-31")[["number", "gap_days", "repurchased"]].values.tolist()
    [[1, 10, True], [2, 20, False]]
    """
    t = segment_events(events, con, by, persons, tz=tz)
    d = as_of_day(t, as_of, con)
    g = _gap_expr(t, d, by, persons, con)
    df = execute(g.order_by(["person_id", "number"]), con=con)
    out = pd.DataFrame(
        {
            "person_id": person_ids(df["person_id"]).to_numpy(),
            "segment": df["segment"].astype(object).to_numpy(),
            "number": df["number"].astype("int64").to_numpy(),
            "day": pd.to_datetime(df["day"].astype("int64").to_numpy(), unit="D"),
            "gap_days": df["gap_days"].astype("int64").to_numpy(),
            "repurchased": df["repurchased"].astype(bool).to_numpy(),
        }
    )
    out.attrs["as_of"] = pd.Timestamp(d, unit="D")
    out.attrs["pays_after_as_of"] = _after(t, d, con)
    return out


def _after(t: ir.Table, as_of: int, con: Any | None) -> int:
    e = t.filter((t.touchpoint == PURCHASE) & (day(t.ts) > as_of)).count()
    return int(execute(e, con=con))


def _gap_expr(t: ir.Table, as_of: int, by: str | None, persons: TableLike | None, con: Any | None) -> ir.Table:
    p = _purchase_days(t, as_of)
    seg = person_segment(t, by, persons, "first_purchase", con)
    j = p.join(seg, "person_id")
    return j.select(
        "person_id",
        "segment",
        "number",
        "day",
        gap_days=(j.nxt.fill_null(as_of) - j.day).cast("int64"),
        repurchased=j.nxt.notnull(),
    )


def repurchase_rate(
    events: TableLike,
    windows: Sequence[Duration | int] = ("7D", "30D", "60D", "90D", "180D"),
    *,
    as_of: DateLike | None = None,
    by: str | None = None,
    persons: TableLike | None = None,
    con: Any | None = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """Share of first-time buyers who buy again within ``w`` days of their first purchase.

    Parameters
    ----------
    events
        Events (pandas frame, dataset path or Ibis table).
    windows
        Window lengths: durations in whole days (``"30D"``) or bare numbers of days
        (the ``window_days`` column's values).
    as_of
        Last observed day (default: the last event day). Pay events after it are ignored.
    by, persons
        Segmentation (see the module docstring); None = one segment ``"all"``.
    con
        Optional Ibis connection.
    tz
        Time zone of the days (:func:`privdomain.events.timezone_of`): by default the
        dataset's declared zone, Asia/Shanghai for a frame without one.

    Returns
    -------
    pandas.DataFrame
        ``segment``, ``window_days``, ``buyers`` (first purchase with a fully observed
        window), ``repurchasers``, ``rate`` (NaN when no buyer is observable),
        ``not_observable`` (buyers whose window ends after ``as_of``: excluded).
        Pay events after ``as_of`` are ignored; their count is in
        ``.attrs["pays_after_as_of"]`` (also for the curve and the cycle).

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-01-01 10:00", "pay", {"order_id": 1, "amount_fen": 100}),
    ...                    (1, "2024-01-03 10:00", "pay", {"order_id": 2, "amount_fen": 100})])
    >>> repurchase_rate(ev, windows=(1, 2, 5))[["window_days", "buyers", "repurchasers", "not_observable"]].values.tolist()
    [[1, 1, 0, 0], [2, 1, 1, 0], [5, 0, 0, 1]]
    """
    ws = window_days(windows)
    if not ws or min(ws) < 1:
        raise ValueError(f"windows must be positive numbers of days, got {list(windows)}")
    t = segment_events(events, con, by, persons, tz=tz)
    d = as_of_day(t, as_of, con)
    p = _purchase_days(t, d)
    first = p.filter(p.number == 1)
    seg = person_segment(t, by, persons, "first_purchase", con)
    j = first.join(seg, "person_id")
    gap = j.nxt - j.day
    aggs: dict[str, Any] = {"total": j.count()}
    for w in ws:
        ok = j.day + w <= d
        aggs[f"e{w}"] = ok.cast("int64").sum()
        aggs[f"r{w}"] = (ok & (gap <= w).fill_null(False)).cast("int64").sum()
    res = execute(j.group_by("segment").agg(**aggs).order_by("segment"), con=con)
    rows = []
    for _, r in res.iterrows():
        for w in ws:
            e, n = int(r[f"e{w}"] or 0), int(r[f"r{w}"] or 0)
            rows.append((r["segment"], w, e, n, n / e if e else np.nan, int(r["total"]) - e))
    out = pd.DataFrame(rows, columns=["segment", "window_days", "buyers", "repurchasers", "rate", "not_observable"])
    out = out.astype({"window_days": "int64", "buyers": "int64", "repurchasers": "int64",
                      "rate": "float64", "not_observable": "int64"})
    out.attrs["as_of"] = pd.Timestamp(d, unit="D")
    out.attrs["pays_after_as_of"] = _after(t, d, con)
    return out


def _km(times: np.ndarray, status: np.ndarray, weights: np.ndarray, alpha: float) -> tuple[pd.DataFrame, Any]:
    sf = SurvfuncRight(times.astype(float), status.astype(float), freq_weights=weights.astype(float))
    s = np.asarray(sf.surv_prob, dtype=float)
    se = np.asarray(sf.surv_prob_se, dtype=float)
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(s)
        theta = np.log(-logs)
        se_t = se / (s * np.abs(logs))
        lo = np.exp(-np.exp(theta + z * se_t))
        hi = np.exp(-np.exp(theta - z * se_t))
    lo = np.where(np.isfinite(lo), lo, np.where(s >= 1, 1.0, 0.0))
    hi = np.where(np.isfinite(hi), hi, np.where(s >= 1, 1.0, 0.0))
    t_ = np.asarray(sf.surv_times, dtype=float)
    # censored counts at each event time are not in SurvfuncRight's output: add them
    cens = pd.Series(weights * (status == 0)).groupby(times).sum()
    frame = pd.DataFrame(
        {
            "days": t_.astype("int64"),
            "at_risk": np.asarray(sf.n_risk, dtype=float).round().astype("int64"),
            "repurchases": np.asarray(sf.n_events, dtype=float).round().astype("int64"),
            "censored": cens.reindex(t_.astype("int64"), fill_value=0).to_numpy().astype("int64"),
            "survival": s,
            "repurchased": 1 - s,
            "ci_lower": lo,
            "ci_upper": hi,
        }
    )
    return frame, sf


def _gap_counts(
    events: TableLike, which: str, as_of: DateLike | None, by: str | None, persons: TableLike | None, con: Any | None,
    tz: str | None = None,
) -> tuple[pd.DataFrame, int]:
    if which not in ("all", "first"):
        raise ValueError(f"which must be 'all' (every gap between purchases) or 'first' (first to second), got {which!r}")
    t = segment_events(events, con, by, persons, tz=tz)
    d = as_of_day(t, as_of, con)
    g = _gap_expr(t, d, by, persons, con)
    if which == "first":
        g = g.filter(g.number == 1)
    counts = execute(g.group_by(["segment", "gap_days", "repurchased"]).agg(n=g.count()), con=con)
    counts = counts.sort_values(["segment", "gap_days", "repurchased"]).reset_index(drop=True)
    counts.attrs["pays_after_as_of"] = _after(t, d, con)
    return counts, d


def repurchase_curve(
    events: TableLike,
    *,
    which: str = "all",
    as_of: DateLike | None = None,
    by: str | None = None,
    persons: TableLike | None = None,
    alpha: float = 0.05,
    con: Any | None = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """Kaplan-Meier curve of the time to the next purchase, per segment.

    Parameters
    ----------
    which
        ``"all"``: every gap between consecutive purchase days (the repurchase cycle);
        ``"first"``: only from the first to the second purchase day.
    as_of, by, persons, con, tz
        As in :func:`repurchase_rate`.
    alpha
        1 - confidence level of the pointwise bands.

    Returns
    -------
    pandas.DataFrame
        ``segment``, ``days`` (each distinct observed gap length), ``at_risk``,
        ``repurchases`` (gaps ending with a purchase at ``days``), ``censored`` (gaps
        still open after ``days``: not in the risk set afterwards), ``survival`` (P(no
        repurchase within ``days``)), ``repurchased`` (= 1 - survival), ``ci_lower``,
        ``ci_upper`` (bounds of ``survival``). Only days with a repurchase are listed
        (the curve is flat in between). Gaps censored at 0 days (a purchase on
        ``as_of`` itself) carry no information and are counted in ``.attrs["censored_at_zero"]``.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-01-01 10:00", "pay", {"order_id": 1, "amount_fen": 100}),
    ...                    (1, "2024-01-11 10:00", "pay", {"order_id": 2, "amount_fen": 100}),
    ...                    (2, "2024-01-01 10:00", "pay", {"order_id": 3, "amount_fen": 100})])
    >>> c = repurchase_curve(ev, which="first", as_of="2024-01-31")
    >>> c[["days", "at_risk", "repurchases", "survival"]].values.tolist()
    [[10.0, 2.0, 1.0, 0.5]]
    """
    counts, d = _gap_counts(events, which, as_of, by, persons, con, tz)
    after = counts.attrs["pays_after_as_of"]
    zero = counts[(counts.gap_days == 0) & ~counts.repurchased.astype(bool)]
    counts = counts.drop(zero.index)
    frames = []
    for seg, g in counts.groupby("segment", sort=True):
        status = g["repurchased"].astype(bool).to_numpy()
        if not status.any():
            continue
        f, _ = _km(g["gap_days"].to_numpy(), status.astype(int), g["n"].to_numpy(), alpha)
        frames.append(f.assign(segment=seg))
    cols = ["segment", "days", "at_risk", "repurchases", "censored", "survival", "repurchased", "ci_lower", "ci_upper"]
    out = pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(
        {c: pd.Series(dtype=object if c == "segment" else "float64") for c in cols})  # no repurchase yet: typed, empty
    out.attrs.update(as_of=pd.Timestamp(d, unit="D"), censored_at_zero=int(zero["n"].sum()), which=which,
                     pays_after_as_of=after)
    return out


def repurchase_cycle(
    events: TableLike,
    *,
    which: str = "all",
    as_of: DateLike | None = None,
    by: str | None = None,
    persons: TableLike | None = None,
    con: Any | None = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """Summary of the repurchase cycle per segment from the Kaplan-Meier curve.

    Returns
    -------
    pandas.DataFrame
        ``segment``, ``gaps`` (purchase occasions followed), ``repurchases`` (observed
        next purchases), ``censored``, ``median_days``, ``q25_days``, ``q75_days`` (the
        KM quantiles of the time to the next purchase: the first day ``t`` with
        ``S(t) <= 0.5`` (resp. 0.75, 0.25); NaN when the curve never falls
        to that level, i.e. fewer than that share ever repurchase within the data),
        ``mean_observed_gap`` (mean of the observed gaps only: biased short, shown for
        comparison).

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-01-01 10:00", "pay", {"order_id": 1, "amount_fen": 100}),
    ...                    (1, "2024-01-11 10:00", "pay", {"order_id": 2, "amount_fen": 100})])
    >>> repurchase_cycle(ev, as_of="2024-01-31")[["gaps", "repurchases", "median_days"]].values.tolist()
    [[2.0, 1.0, 10.0]]
    """
    counts, d = _gap_counts(events, which, as_of, by, persons, con, tz)
    rows = []
    for seg, g in counts.groupby("segment", sort=True):
        status = g["repurchased"].astype(bool).to_numpy()
        n = g["n"].to_numpy()
        times = g["gap_days"].to_numpy()
        q = {0.25: np.nan, 0.5: np.nan, 0.75: np.nan}
        keep = ~((times == 0) & ~status)
        if status.any():
            sf = SurvfuncRight(times[keep].astype(float), status[keep].astype(float), freq_weights=n[keep].astype(float))
            surv, st = np.asarray(sf.surv_prob), np.asarray(sf.surv_times)
            for p in q:
                # the first time by which a share p has repurchased: S(t) <= 1 - p
                hit = np.flatnonzero(surv <= 1 - p + 1e-12)
                q[p] = float(st[hit[0]]) if len(hit) else np.nan
        obs = n[status]
        rows.append((seg, int(n.sum()), int(obs.sum()), int(n[~status].sum()), q[0.5], q[0.25], q[0.75],
                     float((times[status] * obs).sum() / obs.sum()) if obs.sum() else np.nan))
    cols = ["segment", "gaps", "repurchases", "censored", "median_days", "q25_days", "q75_days", "mean_observed_gap"]
    out = pd.DataFrame(rows, columns=cols)
    out.attrs.update(as_of=pd.Timestamp(d, unit="D"), which=which, pays_after_as_of=counts.attrs["pays_after_as_of"])
    return out
