"""Recency, frequency and monetary value per person: the RFM summary, scores and segments.

The summary is both the marketing RFM table and the input of the CLV models in
:mod:`privdomain.clv` (BG/NBD, Pareto/NBD, modified BG/NBD, Gamma-Gamma).

Two recencies (do not confuse them)
-----------------------------------
* ``t_x`` -- **time of the last purchase since the first purchase**. This is the
  "recency" of the BG/NBD and Pareto/NBD papers (Fader, Hardie and Lee 2005) and the
  ``recency`` column of the ``lifetimes`` package. Large ``t_x`` = a customer who kept
  buying for a long time. CLV models take this one.
* ``time_since_last`` -- **time from the last purchase to the observation end**
  (``T - t_x``). This is the recency of RFM marketing ("days since last purchase").
  Small = a recent buyer. RFM scores take this one.

``T`` is the time from the first purchase to the observation end (the customer's age).
All three are in ``time_unit`` (days by default; ``"W"`` = days / 7, the unit of the
CDNOW papers).

Conventions that decide whether a fit reproduces a paper
--------------------------------------------------------
* ``merge_period="D"``: purchases on the same calendar day are one purchase (the
  CDNOW convention); ``frequency`` = distinct purchase days - 1 (repeat purchases).
  Times are whole days, divided by the unit. ``merge_period=None`` keeps every row
  as a purchase and measures times between exact timestamps.
* ``T`` and ``time_since_last`` are measured to ``as_of`` (a day with
  ``merge_period="D"``: purchases on that day are inside the period).
* ``monetary="repeat"``: ``monetary_value`` is the mean spend of the repeat purchase
  days, the first purchase excluded (0 when there is no repeat purchase): the input of
  the Gamma-Gamma model. ``monetary="all"`` averages every purchase day.

Examples
--------
>>> import pandas as pd
>>> from privdomain.clv.rfm import rfm_summary
>>> tx = pd.DataFrame({"person_id": [1, 1, 1, 2],
...     "ts": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-08", "2024-01-05"]),
...     "amount_fen": [1000, 500, 2000, 800]})
>>> s = rfm_summary(tx, as_of="2024-01-15")
>>> s[["person_id", "frequency", "t_x", "T", "time_since_last", "monetary_value"]].values.tolist()
[[1.0, 1.0, 7.0, 14.0, 7.0, 20.0], [2.0, 0.0, 0.0, 10.0, 10.0, 0.0]]
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .. import backend
from .. import events as events_layer
from ..backend import TableLike, execute, to_table
from ..contract import events_input
from ..schema import PURCHASE

__all__ = ["rfm_summary", "calibration_and_holdout_data", "rfm_scores", "rfm_segments", "RF_SEGMENTS", "CN_SEGMENTS", "TIME_UNITS"]

#: Length of each time unit in days.
TIME_UNITS: dict[str, float] = {"h": 1.0 / 24.0, "D": 1.0, "W": 7.0}


def _unit_days(time_unit: str | float) -> float:
    if isinstance(time_unit, str):
        if time_unit not in TIME_UNITS:
            raise ValueError(f"time_unit must be one of {sorted(TIME_UNITS)} or a number of days, got {time_unit!r}")
        return TIME_UNITS[time_unit]
    days = float(time_unit)
    if not days > 0:
        raise ValueError(f"time_unit as a number of days must be > 0, got {time_unit!r}")
    return days


def _as_timestamp(value: Any, zone: str = "Asia/Shanghai") -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:  # an instant: wall-clock time in the dataset's zone, like the table
        ts = ts.tz_convert(zone).tz_localize(None)
    return ts


@dataclass(frozen=True)
class _Log:
    """A purchase log as read and checked: the table and how to read its columns."""

    t: Any  # ibis.Table
    person_col: str
    time_col: str
    value_col: str | None
    day_col: str | None  # integer epoch days of the dataset's zone, precomputed for pandas input
    tdt: Any  # the time column's Ibis type
    merge_period: str | None
    is_purchase: Any  # boolean column, or None when every row is a purchase
    end: pd.Timestamp | None
    after: Any  # boolean column "after the observation end", or None
    counts: dict[str, int]
    zone: str = "Asia/Shanghai"  # the zone whose calendar days are counted


_COLUMNS_ADVICE = ("map the table's columns onto the event schema first: "
                   "rfm_summary(privdomain.events.from_transactions(frame, person=..., time=..., value=...))")
_HOLDOUT_ADVICE = "use calibration_and_holdout_data(events, calibration_end, holdout_end) (one split function)"


def _summary(events: TableLike, person_col: str = "person_id", time_col: str = "ts",
             value_col: str | None = "amount_fen", as_of: Any = None, *, time_unit: str | float = "D",
             merge_period: str | None = "D", monetary: str = "repeat", value_scale: float | None = None,
             purchases_only: bool = True, holdout_end: Any = None, con: Any | None = None,
             tz: str | None = None, value_optional: bool = False) -> pd.DataFrame:
    """The summary (and, with ``holdout_end``, the holdout columns) of a log read through ``*_col`` columns."""
    if monetary not in ("repeat", "all"):
        raise ValueError(f"monetary must be 'repeat' or 'all', got {monetary!r}")
    if merge_period not in ("D", None):
        raise ValueError(f"merge_period must be 'D' or None, got {merge_period!r}")
    unit_days = _unit_days(time_unit)
    if holdout_end is not None and as_of is None:
        raise ValueError("rfm_summary: holdout_end needs as_of (the end of the calibration period)")
    log = _read_log(events, person_col, time_col, value_col, as_of, merge_period, purchases_only, con, tz,
                    value_optional=value_optional)
    if value_scale is None:
        value_scale = 100.0 if log.value_col == "amount_fen" else 1.0
    res = _aggregate(log, con)
    out = _per_person(res, log, unit_days, monetary, value_scale)
    if holdout_end is not None:
        _add_holdout(out, log, _as_timestamp(holdout_end, log.zone), unit_days, value_scale, con)
    out.attrs.update({"time_unit": time_unit, "merge_period": merge_period, "monetary": monetary,
                      "value_scale": value_scale, "n_rows": log.counts["n_rows"],
                      "n_non_purchase": log.counts.get("n_non_purchase", 0),
                      "n_after_as_of": log.counts.get("n_after_as_of", 0),
                      "n_after_observation_end": log.counts.get("n_after_as_of", 0)})
    return out


def _summary_with_columns(events: TableLike, **kwargs: Any) -> pd.DataFrame:
    """The calls written before the contract: column arguments, ``holdout_end`` on the summary."""
    return _summary(events, **kwargs)


def _split_with_columns(events: TableLike, calibration_end: Any, holdout_end: Any, **kwargs: Any) -> pd.DataFrame:
    """:func:`calibration_and_holdout_data` with the column arguments of earlier releases."""
    return _summary(events, as_of=calibration_end, holdout_end=holdout_end, **kwargs)


@events_input(renamed={"observation_end": "as_of"}, positional=("person_col", "time_col", "value_col", "observation_end"),
              legacy=(_summary_with_columns, {"person_col": _COLUMNS_ADVICE, "time_col": _COLUMNS_ADVICE,
                                              "value_col": _COLUMNS_ADVICE, "holdout_end": _HOLDOUT_ADVICE}))
def rfm_summary(
    events: TableLike,
    *,
    as_of: str | _dt.date | pd.Timestamp | None = None,
    time_unit: str | float = "D",
    merge_period: str | None = "D",
    monetary: str = "repeat",
    value_scale: float | None = None,
    purchases_only: bool = True,
    con: Any | None = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """Recency, frequency, monetary value and age per person, from the purchases in the events.

    With ``merge_period="D"`` a person's purchase days :math:`d_0 < d_1 < \\dots < d_x`
    (up to and including the day ``as_of`` :math:`e`) give

    * ``frequency`` :math:`x` = number of distinct purchase days - 1 (repeat purchases),
    * ``t_x`` = :math:`(d_x - d_0)/u`: last purchase since the first (BG/NBD recency),
    * ``T`` = :math:`(e - d_0)/u`: first purchase to the observation end,
    * ``time_since_last`` = :math:`(e - d_x)/u = T - t_x` (RFM-marketing recency),
    * ``monetary_value`` = :math:`\\frac{1}{x}\\sum_{j=1}^{x} v_j` with :math:`v_j` the
      spend of day :math:`d_j` (``monetary="repeat"``; 0 if :math:`x = 0`), or the mean over
      all :math:`x+1` days (``monetary="all"``),

    where :math:`u` is the length of ``time_unit`` in days. See the module docstring for
    the two recency conventions.

    Parameters
    ----------
    events
        Events (a pandas frame, dataset path or Ibis table) with the event schema's
        ``person_id``, ``ts`` and ``amount_fen``. Given a ``touchpoint`` column only
        ``pay`` events are purchases (``purchases_only``); the number of other rows is
        reported in ``attrs["n_non_purchase"]``. Without ``amount_fen`` there are no
        monetary columns. A transaction table with other column names is mapped onto
        the schema with :func:`privdomain.events.from_transactions` (the column
        arguments ``person_col``, ``time_col``, ``value_col`` of earlier releases still
        work for this one, with a DeprecationWarning).
    as_of
        The observation end: the last day of data (included). Purchases after it are
        left out and counted in ``attrs["n_after_as_of"]``. Default: the last purchase
        time. (``observation_end=`` is its old name.)
    time_unit
        ``"h"``, ``"D"`` (default), ``"W"`` (7 days) or a number of days.
    merge_period
        ``"D"``: purchases on the same day are one purchase; ``None``: every row counts.
    monetary
        ``"repeat"`` (first purchase excluded; the Gamma-Gamma input) or ``"all"``.
    value_scale
        Divide spend by this. Default: 100 (fen to yuan).
    purchases_only
        Keep only ``touchpoint == "pay"`` rows when the table has a ``touchpoint`` column.
    con
        Optional Ibis connection.
    tz
        Time zone of the purchase days (:func:`privdomain.events.timezone_of`): by
        default the dataset's declared zone, Asia/Shanghai for a frame without one.

    Returns
    -------
    pandas.DataFrame
        One row per person, sorted by person: ``person_id``, ``frequency``, ``t_x``,
        ``T``, ``time_since_last``, ``n_purchases`` (rows before merging),
        ``first_purchase``, ``last_purchase`` and, with amounts, ``total_value`` and
        ``monetary_value``. ``attrs`` holds the conventions used and the counts of rows
        left out (provenance). The calibration/holdout split is
        :func:`calibration_and_holdout_data`.

    Notes
    -----
    The aggregation (per person-day, then per person) is an Ibis expression run on DuckDB
    (or the backend the table is bound to); only the per-person result comes back to
    pandas. A pandas frame is handed to the engine with just the needed columns and its
    purchase days as integers, which groups markedly faster than timestamps.

    Examples
    --------
    >>> import pandas as pd
    >>> from privdomain.events import from_transactions
    >>> tx = pd.DataFrame({"cust": [7, 7, 7], "day": pd.to_datetime(["1997-01-01", "1997-01-15", "1997-01-29"]),
    ...                    "usd": [10.0, 30.0, 50.0]})
    >>> s = rfm_summary(from_transactions(tx, person="cust", time="day", value="usd"), as_of="1997-02-12",
    ...                 time_unit="W")
    >>> s[["frequency", "t_x", "T", "monetary_value"]].iloc[0].tolist()
    [2.0, 4.0, 6.0, 40.0]
    """
    return _summary(events, as_of=as_of, time_unit=time_unit, merge_period=merge_period, monetary=monetary,
                    value_scale=value_scale, purchases_only=purchases_only, con=con, tz=tz, value_optional=True)


@events_input(positional=("person_col", "time_col", "value_col"),
              legacy=(_split_with_columns, {"person_col": _COLUMNS_ADVICE, "time_col": _COLUMNS_ADVICE,
                                              "value_col": _COLUMNS_ADVICE}))
def calibration_and_holdout_data(
    events: TableLike,
    calibration_end: str | _dt.date | pd.Timestamp,
    holdout_end: str | _dt.date | pd.Timestamp,
    *,
    time_unit: str | float = "D",
    merge_period: str | None = "D",
    monetary: str = "repeat",
    value_scale: float | None = None,
    purchases_only: bool = True,
    con: Any | None = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """The RFM summary of a calibration period and each person's purchases in the holdout after it.

    The split CLV models are checked on (lifetimes' ``calibration_and_holdout_data``):
    :func:`rfm_summary` up to and including the day ``calibration_end`` :math:`e`
    (``frequency``, ``t_x``, ``T``... the calibration columns), and for the same persons

    * ``frequency_holdout`` = purchases in :math:`(e, h]` (same-day purchases merged as
      in calibration), ``value_holdout`` = their spend,
    * ``duration_holdout`` = :math:`(h - e)/u`, the holdout length in ``time_unit``:

    what a fitted model's ``expected_purchases(duration_holdout, summary)`` should
    predict (:func:`privdomain.clv.checks.calibration_holdout` compares the two).
    Persons whose first purchase is after :math:`e` are not in the table.
    ``attrs["n_holdout"]`` counts the purchase rows in the holdout.

    Parameters are those of :func:`rfm_summary`; ``holdout_end`` :math:`h` must be after
    ``calibration_end``. This is the one split function (``rfm_summary(...,
    holdout_end=...)`` of earlier releases calls it, with a DeprecationWarning).

    Examples
    --------
    >>> import pandas as pd
    >>> from privdomain.events import from_transactions
    >>> tx = from_transactions(pd.DataFrame({"person_id": [1, 1, 1, 2, 3],
    ...     "ts": pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-20", "2024-01-05", "2024-01-25"]),
    ...     "amount": [10, 20, 30, 8, 5]}), value="amount")
    >>> s = calibration_and_holdout_data(tx, "2024-01-15", "2024-01-29")
    >>> s[["person_id", "frequency", "T", "frequency_holdout", "value_holdout", "duration_holdout"]].values.tolist()
    [[1.0, 1.0, 14.0, 1.0, 30.0, 14.0], [2.0, 0.0, 10.0, 0.0, 0.0, 14.0]]
    """
    return _summary(events, as_of=calibration_end, time_unit=time_unit, merge_period=merge_period,
                    monetary=monetary, value_scale=value_scale, purchases_only=purchases_only,
                    holdout_end=holdout_end, con=con, tz=tz, value_optional=True)


def _read_log(events: TableLike, person_col: str, time_col: str, value_col: str | None, as_of: Any,
              merge_period: str | None, purchases_only: bool, con: Any, tz: str | None = None, *,
              value_optional: bool = False) -> _Log:
    """Read and check the purchase log; count what is left out (one pass on the engine).

    ``value_optional``: a table without ``value_col`` has no monetary columns (the
    event schema's ``amount_fen`` is optional) instead of being refused.
    """
    if value_optional and value_col and isinstance(events, (pd.DataFrame, ir.Table)) and value_col not in events.columns:
        value_col = None
    cols = [person_col, time_col] + ([value_col] if value_col else [])
    zone = events_layer.timezone_of(events, tz)
    day_col = None  # an integer column of epoch days in the dataset's zone, precomputed for pandas input
    if isinstance(events, pd.DataFrame) and merge_period == "D":
        backend.require_columns(events, cols, "rfm_summary")
        needs = (PURCHASE,) if purchases_only and "touchpoint" in events.columns else ()
        events_layer.check(events, con=con, time_col=time_col, dates_ok=True, needs=needs)
        events, day_col = _slim_frame(events, cols, time_col, purchases_only, zone)
        t = to_table(events, "events", con=con)
    else:
        t = events_layer.read(events, con=con, time_col=time_col, dates_ok=True,
                              needs=(PURCHASE,) if purchases_only else (), tz=zone)
        if value_optional and value_col and value_col not in t.columns:
            value_col = None
            cols = cols[:2]
    missing = [c for c in cols if c not in t.columns and not (c == time_col and day_col)]
    if missing:
        raise ValueError(f"rfm_summary: column(s) {missing} not in the table (columns: {list(t.columns)})")
    tdt = t[day_col or time_col].type()
    if not (tdt.is_timestamp() or tdt.is_date() or day_col):
        raise ValueError(f"rfm_summary: column {time_col!r} must be a timestamp or date, got {tdt}")

    has_tp = purchases_only and "touchpoint" in t.columns
    is_purchase = (t.touchpoint == PURCHASE) if has_tp else None
    end = None if as_of is None else _as_timestamp(as_of, zone)
    after = None
    if end is not None:
        if day_col:
            end = end.normalize()
            after = t[day_col] > int((end - pd.Timestamp("1970-01-01")).days)
        elif merge_period == "D":
            end = end.normalize()
            bound = end + pd.Timedelta(days=1)
            after = t[time_col] >= (ibis.date(bound.date()) if tdt.is_date() else ibis.timestamp(bound.to_pydatetime()))
        else:
            after = t[time_col] > (ibis.date(end.date()) if tdt.is_date() else ibis.timestamp(end.to_pydatetime()))

    def _n(cond):  # rows that are purchases and meet ``cond``
        both = cond if is_purchase is None else (is_purchase & cond)
        return both.sum()

    checks = {
        "n_rows": t.count(),
        "null_person": _n(t[person_col].isnull()),
        "null_time": _n(t[day_col or time_col].isnull()),
    }
    if is_purchase is not None:
        checks["n_non_purchase"] = (~is_purchase).sum()
    if after is not None:
        checks["n_after_as_of"] = _n(after)
    if value_col:
        checks["null_value"] = _n(t[value_col].isnull())
        checks["negative_value"] = _n(t[value_col] < 0)
    counts = {k: int(v or 0) for k, v in execute(t.aggregate(**checks), con=con).iloc[0].items()}
    for key, col, rule in [
        ("null_person", person_col, "must not be null"),
        ("null_time", time_col, "must not be null"),
        ("null_value", value_col, "must not be null"),
        ("negative_value", value_col, "must be >= 0"),
    ]:
        if counts.get(key, 0):
            raise ValueError(f"rfm_summary: column {col!r} {rule} on purchases; {counts[key]} row(s) break it")
    return _Log(t, person_col, time_col, value_col, day_col, tdt, merge_period, is_purchase, end, after, counts, zone)


def _aggregate(log: _Log, con: Any) -> pd.DataFrame:
    """Per person on the engine: first and last purchase (day numbers or seconds), purchases, rows, spend."""
    t, person_col, time_col, value_col, day_col, tdt = (log.t, log.person_col, log.time_col, log.value_col,
                                                        log.day_col, log.tdt)
    keep = [c for c in (log.is_purchase, None if log.after is None else ~log.after) if c is not None]
    p = t.filter(*keep) if keep else t
    if log.merge_period == "D":
        if day_col:
            day_num = p[day_col]
        else:
            day_num = (p[time_col] if tdt.is_date() else p[time_col].date()).epoch_days()
        per_day = p.group_by(_p=p[person_col], _d=day_num).agg(
            _n=p.count(), **({"_v": p[value_col].sum()} if value_col else {})
        )
        g = per_day
        tnum = g._d
    else:
        tnum = (p[time_col].epoch_seconds() if tdt.is_timestamp() else p[time_col].epoch_days() * 86400)
        g = p.mutate(_p=p[person_col], _d=tnum, _n=ibis.literal(1), **({"_v": p[value_col]} if value_col else {}))
        tnum = g._d
    aggs = {"_first": tnum.min(), "_last": tnum.max(), "_k": g.count(), "_rows": g._n.sum()}
    if value_col:
        aggs["_total"] = g._v.sum()
        aggs["_first_v"] = g._v.argmin(tnum)
    res = execute(g.group_by("_p").agg(**aggs), con=con)
    return res.sort_values("_p", kind="stable").reset_index(drop=True)


def _per_person(res: pd.DataFrame, log: _Log, unit_days: float, monetary: str, value_scale: float) -> pd.DataFrame:
    """The summary's columns from the per-person aggregates (small arithmetic in numpy)."""
    merge_period, end = log.merge_period, log.end
    per_unit = unit_days if merge_period == "D" else unit_days * 86400.0
    first = res["_first"].to_numpy(dtype="float64")
    last = res["_last"].to_numpy(dtype="float64")
    if end is None:
        end_num = float(last.max()) if len(last) else 0.0
    elif merge_period == "D":
        end_num = float((end - pd.Timestamp("1970-01-01")).days)
    else:
        end_num = (end - pd.Timestamp("1970-01-01")).total_seconds()
    k = res["_k"].to_numpy(dtype="int64")
    out = pd.DataFrame({
        log.person_col: res["_p"].to_numpy(),
        "frequency": (k - 1).astype("float64"),
        "t_x": (last - first) / per_unit,
        "T": (end_num - first) / per_unit,
    })
    out["time_since_last"] = (end_num - last) / per_unit
    out["n_purchases"] = res["_rows"].to_numpy(dtype="int64")
    to_time = (lambda a: pd.to_datetime(a.astype("int64"), unit="D")) if merge_period == "D" else (
        lambda a: pd.to_datetime(a, unit="s"))
    out["first_purchase"] = to_time(first)
    out["last_purchase"] = to_time(last)
    if log.value_col:
        total = res["_total"].to_numpy(dtype="float64") / value_scale
        first_v = res["_first_v"].to_numpy(dtype="float64") / value_scale
        out["total_value"] = total
        if monetary == "repeat":
            with np.errstate(invalid="ignore", divide="ignore"):
                mv = np.where(k > 1, (total - first_v) / np.maximum(k - 1, 1), 0.0)
        else:
            mv = total / k
        out["monetary_value"] = mv
    out.attrs["as_of"] = end if end is not None else (to_time(np.array([end_num]))[0] if len(res) else None)
    out.attrs["observation_end"] = out.attrs["as_of"]  # its name before the contract, for one release
    return out


def _add_holdout(out: pd.DataFrame, log: _Log, hend: pd.Timestamp, unit_days: float, value_scale: float,
                 con: Any) -> None:
    """Add the holdout columns to ``out`` (a summary built from ``log``), in place."""
    hold, hend = _holdout(log, hend, con)
    person_col = log.person_col
    h = pd.DataFrame({person_col: out[person_col].to_numpy()}).merge(
        hold.rename(columns={"_p": person_col}), on=person_col, how="left")
    out["frequency_holdout"] = h["_k"].fillna(0).to_numpy(dtype="float64")
    if log.value_col:
        out["value_holdout"] = h["_v"].fillna(0).to_numpy(dtype="float64") / value_scale
    span = (hend - log.end).total_seconds() / 86400.0
    out["duration_holdout"] = span / unit_days
    out.attrs["holdout_end"] = hend
    out.attrs["n_holdout"] = int(hold.attrs.get("n_rows", 0))


def _holdout(log: _Log, hend: pd.Timestamp, con: Any) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Per-person purchases (merged by day when ``merge_period="D"``) in (end, holdout_end]."""
    t, person_col, time_col, value_col, day_col, tdt = (log.t, log.person_col, log.time_col, log.value_col,
                                                        log.day_col, log.tdt)
    merge_period, end = log.merge_period, log.end
    if merge_period == "D":
        hend = hend.normalize()
        if day_col:
            inside = t[day_col] <= int((hend - pd.Timestamp("1970-01-01")).days)
        else:
            bound = hend + pd.Timedelta(days=1)
            inside = t[time_col] < (ibis.date(bound.date()) if tdt.is_date() else ibis.timestamp(bound.to_pydatetime()))
    else:
        inside = t[time_col] <= (ibis.date(hend.date()) if tdt.is_date() else ibis.timestamp(hend.to_pydatetime()))
    if hend <= end:
        raise ValueError(f"rfm_summary: holdout_end ({hend}) must be after the calibration end ({end})")
    conds = [c for c in (log.is_purchase, log.after, inside) if c is not None]
    h = t.filter(*conds)
    if merge_period == "D":
        day = h[day_col] if day_col else (h[time_col] if tdt.is_date() else h[time_col].date())
        unit = h.group_by(_p=h[person_col], _d=day).agg(_n=h.count(), **({"_v": h[value_col].sum()} if value_col else {}))
    else:
        unit = h.mutate(_p=h[person_col], _n=ibis.literal(1), **({"_v": h[value_col]} if value_col else {}))
    aggs = {"_k": unit.count(), "_rows": unit._n.sum()}
    if value_col:
        aggs["_v"] = unit._v.sum()
    hold = execute(unit.group_by("_p").agg(**aggs), con=con)
    hold.attrs["n_rows"] = int(hold["_rows"].sum()) if len(hold) else 0
    return hold.drop(columns="_rows"), hend


_NS_PER_DAY = 86_400_000_000_000


def _slim_frame(df: pd.DataFrame, cols: list[str], time_col: str, purchases_only: bool, zone: str = "Asia/Shanghai"):
    """Only the needed columns, with the purchase day as integer epoch days.

    Grouping DuckDB rows on (person, int day) is markedly faster than casting 10M
    timestamps to dates inside the engine. Days are wall-clock days in ``zone`` (the
    dataset's, Beijing by default): naive times are taken as wall-clock time there,
    timezone-aware ones are shifted by the zone's UTC offset (as
    :func:`privdomain.backend.to_table` does). Other column types return ``df`` unchanged.
    """
    if time_col not in df.columns:
        return df, None
    ts = df[time_col]
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        hours = backend.fixed_offset_hours(zone)
        if hours is None:  # daylight saving: pandas converts each instant
            ns = ts.dt.tz_convert(zone).dt.tz_localize(None).to_numpy().astype("datetime64[ns]").view("int64")
        else:
            ns = ts.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]").view("int64")
            ns = ns + int(round(hours * 3600)) * 1_000_000_000
    elif np.issubdtype(ts.dtype, np.datetime64):
        ns = ts.to_numpy().astype("datetime64[ns]").view("int64")
    else:
        return df, None
    isnat = ts.isna().to_numpy()
    day = np.floor_divide(np.where(isnat, 0, ns), _NS_PER_DAY).astype("int32")
    keep = [c for c in cols if c != time_col and c in df.columns]
    if purchases_only and "touchpoint" in df.columns:
        keep.append("touchpoint")
    slim = {c: df[c] for c in keep}
    slim["_day_"] = pd.arrays.IntegerArray(day, isnat)
    return pd.DataFrame(slim, copy=False), "_day_"


# ---------------------------------------------------------------------------------------
# quantile scores and named segments

#: R-F grid segments (R score row 1-5, F score column 1-5), the common 11-segment map.
RF_SEGMENTS: dict[str, list[str]] = {
    "hibernating": ["11", "12", "21", "22"],
    "at_risk": ["13", "14", "23", "24"],
    "cant_lose_them": ["15", "25"],
    "about_to_sleep": ["31", "32"],
    "need_attention": ["33"],
    "loyal_customers": ["34", "35", "44", "45"],
    "promising": ["41"],
    "new_customers": ["51"],
    "potential_loyalists": ["42", "43", "52", "53"],
    "champions": ["54", "55"],
}

#: The eight-class R/F/M high-low model common in Chinese CRM (key = R, F, M high?).
CN_SEGMENTS: dict[tuple[bool, bool, bool], str] = {
    (True, True, True): "重要价值客户",
    (False, True, True): "重要保持客户",
    (True, False, True): "重要发展客户",
    (False, False, True): "重要挽留客户",
    (True, True, False): "一般价值客户",
    (False, True, False): "一般保持客户",
    (True, False, False): "一般发展客户",
    (False, False, False): "一般挽留客户",
}


def _quantile_score(values: pd.Series, q: int, higher_is_better: bool) -> np.ndarray:
    """Scores 1..q by rank quantiles; ties broken by order of appearance (deterministic)."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype="int64")
    v = values.to_numpy(dtype="float64")
    key = v if higher_is_better else -v
    order = np.argsort(key, kind="stable")
    ranks = np.empty(n, dtype="int64")
    ranks[order] = np.arange(n)
    return (ranks * q // n + 1).astype("int64")


def rfm_scores(
    summary: pd.DataFrame,
    q: int = 5,
    recency_col: str = "time_since_last",
    frequency_col: str = "frequency",
    monetary_col: str = "total_value",
) -> pd.DataFrame:
    """Quantile scores 1..q for recency, frequency and monetary value (q = best).

    Each measure is ranked over persons (ties broken by row order, so the bins have equal
    sizes and the result is deterministic) and cut into ``q`` equal-count bins:
    ``score = floor(rank * q / n) + 1`` with ``rank`` 0-based. Recency uses
    ``time_since_last`` (the RFM-marketing recency: a smaller value scores higher);
    frequency and monetary value score higher when larger.

    Parameters
    ----------
    summary
        Output of :func:`rfm_summary` (or any frame with the three columns).
    q
        Number of bins (5 = quintiles).
    recency_col, frequency_col, monetary_col
        Columns to score. ``monetary_col=None`` skips M.

    Returns
    -------
    pandas.DataFrame
        A copy of ``summary`` with ``r_score``, ``f_score``, ``m_score`` (int) and
        ``rfm_code`` (e.g. ``"545"``).

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"time_since_last": [1.0, 50.0, 10.0, 90.0], "frequency": [5, 0, 2, 1],
    ...                   "total_value": [100.0, 5.0, 40.0, 20.0]})
    >>> rfm_scores(s, q=4)["rfm_code"].tolist()
    ['444', '211', '333', '122']
    """
    if not isinstance(q, int) or q < 2:
        raise ValueError(f"q must be an integer >= 2, got {q!r}")
    for c in [recency_col, frequency_col] + ([monetary_col] if monetary_col else []):
        if c not in summary.columns:
            raise ValueError(f"rfm_scores: column {c!r} not in the summary")
        nbad = int(summary[c].isna().sum())
        if nbad:
            raise ValueError(f"rfm_scores: column {c!r} must not be null; {nbad} row(s) break it")
    out = summary.copy()
    out["r_score"] = _quantile_score(summary[recency_col], q, higher_is_better=False)
    out["f_score"] = _quantile_score(summary[frequency_col], q, higher_is_better=True)
    code = out["r_score"].astype(str) + out["f_score"].astype(str)
    if monetary_col:
        out["m_score"] = _quantile_score(summary[monetary_col], q, higher_is_better=True)
        code = code + out["m_score"].astype(str)
    out["rfm_code"] = code
    return out


def rfm_segments(
    summary: pd.DataFrame,
    scheme: str = "rf",
    recency_col: str = "time_since_last",
    frequency_col: str = "frequency",
    monetary_col: str = "total_value",
) -> pd.DataFrame:
    """Named RFM segments.

    ``scheme="rf"``: quintile R and F scores (:func:`rfm_scores` with q=5) mapped on the
    5 x 5 grid of :data:`RF_SEGMENTS` (champions, loyal_customers, potential_loyalists,
    new_customers, promising, need_attention, about_to_sleep, at_risk, cant_lose_them,
    hibernating).

    ``scheme="cn"``: the eight-class model of Chinese CRM practice
    (:data:`CN_SEGMENTS`, 重要价值客户 ... 一般挽留客户): each of R, F, M is "high" when
    better than the mean (recency: ``time_since_last`` below its mean; frequency and
    monetary value above their means).

    Returns
    -------
    pandas.DataFrame
        A copy of ``summary`` with the score columns and ``segment``.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"time_since_last": [1.0, 80.0], "frequency": [6, 0], "total_value": [300.0, 9.0]})
    >>> rfm_segments(s, scheme="cn")["segment"].tolist()
    ['重要价值客户', '一般挽留客户']
    """
    if scheme == "rf":
        out = rfm_scores(summary, 5, recency_col, frequency_col, monetary_col)
        lookup = {code: name for name, codes in RF_SEGMENTS.items() for code in codes}
        rf = out["r_score"].astype(str) + out["f_score"].astype(str)
        out["segment"] = rf.map(lookup)
        return out
    if scheme == "cn":
        for c in (recency_col, frequency_col, monetary_col):
            if c not in summary.columns:
                raise ValueError(f"rfm_segments: column {c!r} not in the summary")
        out = summary.copy()
        r_hi = (summary[recency_col] < summary[recency_col].mean()).to_numpy()
        f_hi = (summary[frequency_col] > summary[frequency_col].mean()).to_numpy()
        m_hi = (summary[monetary_col] > summary[monetary_col].mean()).to_numpy()
        out["r_high"], out["f_high"], out["m_high"] = r_hi, f_hi, m_hi
        names = np.array([CN_SEGMENTS[(bool(i & 4), bool(i & 2), bool(i & 1))] for i in range(8)], dtype=object)
        out["segment"] = names[r_hi.astype(int) * 4 + f_hi.astype(int) * 2 + m_hi.astype(int)]
        return out
    raise ValueError(f"scheme must be 'rf' or 'cn', got {scheme!r}")
