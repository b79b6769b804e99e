"""Cohorts: retention and revenue triangles by acquisition week or month, ARPU and LTV curves.

A person's **cohort** is the ISO week (Monday) or calendar month of their acquisition
day: the first purchase day (``cohort_on="first_purchase"``, customer cohorts, default)
or the first touch of any kind (``cohort_on="first_touch"``). **Period** ``k`` is the
k-th week/month after the cohort's own (``k = 0`` is the acquisition period). For each
cohort and period:

* ``active``: cohort members with an activity event in that period; activity is a pay
  event (``active_on="purchase"``, default) or any event (``active_on="any"``);
* ``retention = active / cohort_size``;
* ``revenue``: sum of ``amount_fen`` of the members' pay events in that period, in yuan
  (GMV, refunds not deducted, as everywhere in privdomain);
* ``arpu = revenue / cohort_size`` and ``cum_ltv``: cumulative ARPU over periods 0..k.

Only periods that started on or before ``as_of`` are listed (hence a triangle);
``complete`` tells whether the period ended on or before ``as_of``. Segments (``by``,
e.g. the acquisition channel): a column of ``persons`` when given, else the column's
value on the acquisition event (``by="channel"`` = the channel of the first purchase or
first touch).

Examples
--------
>>> from privdomain.examples import events_frame
>>> from privdomain.lifecycle.cohorts import cohort_table
>>> ev = events_frame([(1, "2024-01-05 10:00", "pay", {"order_id": 1, "amount_fen": 1000}),
...                    (1, "2024-02-10 10:00", "pay", {"order_id": 2, "amount_fen": 500}),
...                    (2, "2024-01-20 10:00", "pay", {"order_id": 3, "amount_fen": 2000})])
>>> c = cohort_table(ev, freq="M", as_of="2024-02-29")
>>> c[["period", "cohort_size", "active", "revenue"]].values.tolist()
[[0.0, 2.0, 2.0, 30.0], [1.0, 2.0, 1.0, 5.0]]
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from .._days import DateLike, as_of_day, day, segment_events
from ..backend import TableLike, execute, require_columns
from ..schema import PURCHASE
from .repurchase import person_segment

__all__ = ["cohort_table", "cohort_triangle", "ltv_curve"]


def _period_key(day: ir.IntegerValue, date: ir.DateValue, freq: str) -> ir.IntegerValue:
    """Week: the Monday's day number; month: year * 12 + month - 1."""
    if freq == "W":
        return day - (day + 3) % 7  # day 0 (1970-01-01) was a Thursday
    return (date.year() * 12 + date.month() - 1).cast("int64")


def _key_of_day(day: int, freq: str) -> int:
    if freq == "W":
        return day - (day + 3) % 7
    d = pd.Timestamp(day, unit="D")
    return d.year * 12 + d.month - 1


def _key_start(key: np.ndarray, freq: str) -> pd.DatetimeIndex:
    key = np.asarray(key, dtype="int64")
    if freq == "W":
        return pd.to_datetime(key, unit="D")
    return pd.to_datetime(pd.DataFrame({"year": key // 12, "month": key % 12 + 1, "day": 1}))


def _key_end(key: int, freq: str) -> int:
    """Day number of the last day of the period."""
    if freq == "W":
        return key + 6
    start = _key_start(np.array([key + 1]), freq)[0]
    return int((start - pd.Timestamp("1970-01-01")).days) - 1


def _steps(a: np.ndarray, b: np.ndarray, freq: str) -> np.ndarray:
    return (b - a) // 7 if freq == "W" else b - a


def cohort_table(
    events: TableLike,
    freq: str = "M",
    *,
    cohort_on: str = "first_purchase",
    active_on: str = "purchase",
    by: str | None = None,
    persons: TableLike | None = None,
    as_of: DateLike | None = None,
    con: Any | None = None,
    tz: str | None = None,
) -> pd.DataFrame:
    """Retention and revenue per acquisition cohort and period since acquisition (tidy).

    Parameters
    ----------
    events
        Events (pandas frame, dataset path or Ibis table).
    freq
        ``"W"`` (ISO weeks) or ``"M"`` (calendar months).
    cohort_on
        ``"first_purchase"`` or ``"first_touch"``.
    active_on
        ``"purchase"`` or ``"any"``.
    by, persons
        Segmentation (module docstring); None = one segment ``"all"``.
    as_of
        Last observed day (default: the last event day); events after it are ignored
        (count in ``.attrs["events_after_as_of"]``).
    con
        Optional Ibis connection.
    tz
        Time zone of the days (:func:`privdomain.events.timezone_of`): by default the
        dataset's declared zone, Asia/Shanghai for a frame without one.

    Returns
    -------
    pandas.DataFrame
        ``segment``, ``cohort`` (datetime64: first day of the cohort's week/month),
        ``period`` (int), ``cohort_size``, ``active``, ``retention``, ``revenue`` (yuan),
        ``arpu`` (yuan per cohort member), ``cum_ltv`` (yuan), ``complete`` (bool);
        one row per segment, cohort and period from 0 to the last period started by
        ``as_of`` (zeros included).

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-01-01 10:00", "mp_visit"), (1, "2024-01-09 10:00", "mp_visit")])
    >>> c = cohort_table(ev, freq="W", cohort_on="first_touch", active_on="any")
    >>> c[["period", "active", "retention", "complete"]].values.tolist()
    [[0, 1, 1.0, True], [1, 1, 1.0, False]]
    """
    f = str(freq).upper()
    if f not in ("W", "M"):
        raise ValueError(f"freq must be 'W' (ISO weeks) or 'M' (calendar months), got {freq!r}")
    if cohort_on not in ("first_purchase", "first_touch"):
        raise ValueError(f"cohort_on must be 'first_purchase' or 'first_touch', got {cohort_on!r}")
    if active_on not in ("purchase", "any"):
        raise ValueError(f"active_on must be 'purchase' or 'any', got {active_on!r}")
    needs = (PURCHASE,) if cohort_on == "first_purchase" or active_on == "purchase" else ()
    t0 = segment_events(events, con, by, persons, needs, tz=tz)
    require_columns(t0, ["amount_fen"], why="revenue of pay events")
    d = as_of_day(t0, as_of, con)
    after = int(execute(t0.filter(day(t0.ts) > d).count(), con=con))
    t = t0.mutate(day=day(t0.ts))
    t = t.filter(t.day <= d)
    # one row per person and day (activity, purchase, revenue), then period keys on dates;
    # when both the cohorts and the activity are purchases, only pay events are needed (the
    # days without one drop out below anyway): a far smaller aggregate on large data
    src = t.filter(t.touchpoint == PURCHASE) if cohort_on == "first_purchase" and active_on == "purchase" else t
    is_pay = (src.touchpoint == PURCHASE).cast("int64")
    daily = src.group_by(["person_id", "day"]).agg(
        paid=is_pay.max(), fen=ibis.ifelse(src.touchpoint == PURCHASE, src.amount_fen, 0).sum().fill_null(0))
    date = ibis.date("1970-01-01") + daily.day.as_interval("D")
    daily = daily.mutate(key=_period_key(daily.day, date, f))
    anchor = daily.filter(daily.paid == 1) if cohort_on == "first_purchase" else daily
    acq = anchor.group_by("person_id").agg(ckey=anchor.key.min())
    seg = person_segment(t, by, persons, cohort_on, con)
    members = acq.join(seg, "person_id")
    sizes = execute(members.group_by(["segment", "ckey"]).agg(size=members.count()), con=con)

    act = daily.filter(daily.paid == 1) if active_on == "purchase" else daily
    j = act.join(members, "person_id")
    j = j.filter(j.key >= j.ckey)
    cells = execute(j.group_by(["segment", "ckey", "key"]).agg(active=j.person_id.nunique(), fen=j.fen.sum()),
                    con=con)
    active = cells[["segment", "ckey", "key", "active"]].copy()
    revenue = cells[["segment", "ckey", "key", "fen"]].copy()

    last_key = _key_of_day(d, f)
    cols = ["segment", "cohort", "period", "cohort_size", "active", "retention", "revenue", "arpu", "cum_ltv",
            "complete"]
    if sizes.empty:
        out = pd.DataFrame({
            "segment": pd.Series([], dtype=object), "cohort": pd.Series([], dtype="datetime64[ns]"),
            **{c: pd.Series([], dtype="int64") for c in ("period", "cohort_size", "active")},
            **{c: pd.Series([], dtype="float64") for c in ("retention", "revenue", "arpu", "cum_ltv")},
            "complete": pd.Series([], dtype=bool)})
        out.attrs.update(as_of=pd.Timestamp(d, unit="D"), events_after_as_of=after, freq=f)
        return out
    sizes = sizes.astype({"ckey": "int64", "size": "int64"})
    n_periods = _steps(sizes["ckey"].to_numpy(), np.full(len(sizes), last_key), f) + 1
    grid = sizes.loc[sizes.index.repeat(n_periods)].reset_index(drop=True)
    grid["period"] = np.concatenate([np.arange(n) for n in n_periods]).astype("int64")
    for frame in (active, revenue):
        frame["ckey"] = frame["ckey"].astype("int64")
        frame["period"] = _steps(frame["ckey"].to_numpy(), frame["key"].astype("int64").to_numpy(), f)
    grid = grid.merge(active.drop(columns="key"), on=["segment", "ckey", "period"], how="left")
    grid = grid.merge(revenue.drop(columns="key"), on=["segment", "ckey", "period"], how="left")
    grid["active"] = grid["active"].fillna(0).astype("int64")
    grid["revenue"] = grid["fen"].fillna(0).astype("float64") / 100
    grid = grid.sort_values(["segment", "ckey", "period"], kind="stable").reset_index(drop=True)
    period_key = grid["ckey"].to_numpy() + (grid["period"].to_numpy() * (7 if f == "W" else 1))
    ends = {k: _key_end(int(k), f) for k in np.unique(period_key)}
    out = pd.DataFrame(
        {
            "segment": grid["segment"].astype(object),
            "cohort": _key_start(grid["ckey"].to_numpy(), f),
            "period": grid["period"],
            "cohort_size": grid["size"],
            "active": grid["active"],
            "retention": grid["active"] / grid["size"],
            "revenue": grid["revenue"],
            "arpu": grid["revenue"] / grid["size"],
        }
    )
    out["cum_ltv"] = out.groupby(["segment", "cohort"], sort=False)["arpu"].cumsum()
    out["complete"] = np.array([ends[k] <= d for k in period_key], dtype=bool)
    out.attrs.update(as_of=pd.Timestamp(d, unit="D"), events_after_as_of=after, freq=f,
                     cohort_on=cohort_on, active_on=active_on)
    return out[cols]


def cohort_triangle(cohorts: pd.DataFrame, value: str = "retention", segment: str | None = None) -> pd.DataFrame:
    """A cohort x period triangle (wide) of one column of :func:`cohort_table`.

    Parameters
    ----------
    cohorts
        Output of :func:`cohort_table`.
    value
        Column to spread: ``retention``, ``active``, ``revenue``, ``arpu``, ``cum_ltv``.
    segment
        Which segment; None requires a single segment.

    Returns
    -------
    pandas.DataFrame
        Index ``cohort``, columns ``period`` 0, 1, ...; NaN where not yet observed.

    Examples
    --------
    >>> c = pd.DataFrame({"segment": "all", "cohort": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-02-01"]),
    ...                   "period": [0, 1, 0], "retention": [1.0, 0.4, 1.0]})
    >>> cohort_triangle(c).values.tolist()
    [[1.0, 0.4], [1.0, nan]]
    """
    c = cohorts
    segs = c["segment"].unique()
    if segment is None:
        if len(segs) > 1:
            raise ValueError(f"cohorts hold {len(segs)} segments; pass segment= one of {sorted(map(str, segs))}")
    else:
        c = c[c["segment"] == segment]
    if value not in c.columns:
        raise ValueError(f"cohorts: no column {value!r}")
    return c.pivot(index="cohort", columns="period", values=value)


def ltv_curve(cohorts: pd.DataFrame, complete_only: bool = True) -> pd.DataFrame:
    """ARPU per period since acquisition and cumulative LTV, pooled over cohorts.

    For each segment and period ``k``, ``arpu(k) = sum(revenue) / sum(cohort_size)``
    over the cohorts observed at age ``k`` (only complete periods by default), and
    ``cum_ltv(k) = arpu(0) + ... + arpu(k)`` (the chained estimator: older cohorts
    inform later periods).

    Returns
    -------
    pandas.DataFrame
        ``segment``, ``period``, ``cohorts``, ``persons``, ``retention`` (pooled),
        ``arpu``, ``cum_ltv`` (yuan).

    Examples
    --------
    >>> c = pd.DataFrame({"segment": "all", "cohort": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-02-01"]),
    ...     "period": [0, 1, 0], "cohort_size": [10, 10, 30], "active": [10, 4, 30],
    ...     "revenue": [100.0, 20.0, 300.0], "complete": True})
    >>> ltv_curve(c)[["period", "persons", "arpu", "cum_ltv"]].values.tolist()
    [[0.0, 40.0, 10.0, 10.0], [1.0, 10.0, 2.0, 12.0]]
    """
    c = cohorts[cohorts["complete"]] if complete_only else cohorts
    g = c.groupby(["segment", "period"], as_index=False).agg(
        cohorts=("cohort", "nunique"), persons=("cohort_size", "sum"), active=("active", "sum"),
        revenue=("revenue", "sum"))
    g["retention"] = g["active"] / g["persons"]
    g["arpu"] = g["revenue"] / g["persons"]
    g = g.sort_values(["segment", "period"]).reset_index(drop=True)
    g["cum_ltv"] = g.groupby("segment")["arpu"].cumsum()
    return g[["segment", "period", "cohorts", "persons", "retention", "arpu", "cum_ltv"]]
