"""Journeys as path tables: the common input of every multi-touch model.

The **path table** is the exchange format of attribution tools (ChannelAttribution,
marketing-attribution-models, Google's MCF exports): one row per distinct path

============================  =====================================================
``path``                      channels in touch order joined by ``" > "``
``total_conversions``         journeys along this path that converted
``total_conversion_value``    their conversion value (yuan when built from events)
``total_null``                journeys along this path that did not convert
============================  =====================================================

:func:`build_paths` makes one from events (Ibis on DuckDB); :func:`parse` turns any
path table into :class:`Journeys`, flat numpy arrays the models run on.

Journeys from events
--------------------
Each person's timeline is cut at their purchases (``pay`` events). The touches
after purchase ``k-1`` and up to purchase ``k`` (a touch at the same instant as the
pay counts as before it) form a **converting journey** valued at the pay's
``amount_fen / 100`` yuan; of those touches only the ones within ``window_days``
days before the pay are kept. The touches after a person's last purchase (or all
of them for a person who never bought) form a **non-converting journey**; of those
only the ones within ``window_days`` days before its last touch are kept. A touch
is any event whose touchpoint is not ``order``, ``pay`` or ``refund``; its
channel is the event's ``channel`` column. Purchases with no touch in their
window have no path: they are counted and reported in ``.attrs`` (never silently
lost), as are the touches older than the window.

Examples
--------
>>> import pandas as pd
>>> from privdomain.attribution.paths import parse
>>> pt = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [1, 0],
...                    "total_conversion_value": [10.0, 0.0], "total_null": [0, 2]})
>>> j = parse(pt)
>>> j.channels, j.codes.tolist(), j.starts.tolist()
(['a', 'b'], [0, 1, 1], [0, 2, 3])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import pandas as pd

from .. import schema
from ..backend import TableLike, execute, to_table

SEP = " > "
PATH_COLUMNS = ["path", "total_conversions", "total_conversion_value", "total_null"]
_SENTINEL = "\ue000"  # a private-use character: never a channel name


@dataclass(frozen=True)
class Journeys:
    """Distinct paths as flat arrays.

    ``codes[starts[i]:starts[i+1]]`` are the channel indices (into ``channels``)
    of path ``i``; ``conv``, ``value`` and ``null`` are its journey counts.
    ``attrs`` carries what was dropped while building or parsing.
    """

    channels: list[str]
    codes: np.ndarray
    starts: np.ndarray
    conv: np.ndarray
    value: np.ndarray
    null: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)

    @property
    def path_of_token(self) -> np.ndarray:
        """For every token, the index of its path."""
        return np.repeat(np.arange(len(self.conv)), self.lengths)

    @property
    def position(self) -> np.ndarray:
        """For every token, its 0-based position within its path."""
        return np.arange(len(self.codes)) - np.repeat(self.starts[:-1], self.lengths)


def is_path_table(data: Any) -> bool:
    """True when ``data`` is a pandas frame with the path-table columns."""
    return isinstance(data, pd.DataFrame) and {"path", "total_conversions"}.issubset(data.columns)


def _bad(column: str, rule: str, rows: int) -> ValueError:
    noun = "row breaks" if rows == 1 else "rows break"
    return ValueError(f"path table column {column!r}: {rule}: {rows} {noun} it")


def parse(paths: pd.DataFrame, sep: str = SEP) -> Journeys:
    """Turn a path table into :class:`Journeys` (vectorised; no per-row Python).

    Parameters
    ----------
    paths
        Columns ``path`` and ``total_conversions``; ``total_conversion_value``
        (default 0) and ``total_null`` (default 0) are optional.
    sep
        The separator between channels in ``path``.

    Raises
    ------
    ValueError
        Missing ``path``/``total_conversions``, null or negative counts, empty
        paths or empty channel names (naming the column and the number of rows).
        Rows with no journey at all (0 conversions and 0 nulls) are dropped and
        counted in ``attrs["rows_without_journeys"]``.
    """
    for col in ("path", "total_conversions"):
        if col not in paths.columns:
            raise ValueError(f"path table needs a {col!r} column (columns: {list(paths.columns)})")
    n = len(paths)
    cols = {}
    for col in ("total_conversions", "total_conversion_value", "total_null"):
        if col in paths.columns:
            s = pd.to_numeric(paths[col], errors="coerce")
            if s.isna().any():
                raise _bad(col, "must be a number (not null)", int(s.isna().sum()))
            a = s.to_numpy(dtype=float)
            if (a < 0).any():
                raise _bad(col, "must be non-negative", int((a < 0).sum()))
            cols[col] = a
        else:
            cols[col] = np.zeros(n)
    p = paths["path"]
    if p.isna().any():
        raise _bad("path", "must not be null", int(p.isna().sum()))
    keep = (cols["total_conversions"] + cols["total_null"]) > 0
    dropped = int((~keep).sum())
    strings = p.to_numpy(dtype=object)[keep]
    conv, value, null = (cols[c][keep] for c in ("total_conversions", "total_conversion_value", "total_null"))
    if len(strings) == 0:
        raise ValueError("path table has no journeys (no row with total_conversions + total_null > 0)")
    tokens = np.array((sep + _SENTINEL + sep).join(strings).split(sep), dtype=object)
    raw, names = pd.factorize(tokens)
    names = list(names)
    stripped = [str(x).strip() for x in names]
    sent = names.index(_SENTINEL) if _SENTINEL in names else -1
    if "" in stripped:
        row_of_token = np.cumsum(raw == sent)
        rows = len(np.unique(row_of_token[raw == stripped.index("")]))
        raise _bad("path", f"empty channel name (an empty path or a dangling {sep.strip()!r})", rows)
    is_tok = raw != sent
    lengths = np.diff(np.concatenate(([-1], np.flatnonzero(~is_tok), [len(raw)]))) - 1
    channels = sorted(set(stripped) - {_SENTINEL})
    remap = np.array([channels.index(s) if s != _SENTINEL else -1 for s in stripped], dtype=np.int64)
    codes = remap[raw[is_tok]]
    starts = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    attrs = {"rows": n, "rows_without_journeys": dropped}
    return Journeys(channels, codes, starts, conv, value, null, attrs)


def to_path_table(j: Journeys, sep: str = SEP) -> pd.DataFrame:
    """The inverse of :func:`parse`: one row per path of ``j``.

    >>> import pandas as pd
    >>> pt = pd.DataFrame({"path": ["x > y"], "total_conversions": [2], "total_null": [1]})
    >>> to_path_table(parse(pt))["path"].tolist()
    ['x > y']
    """
    names = np.array(j.channels, dtype=object)
    strings = [sep.join(names[j.codes[a:b]]) for a, b in zip(j.starts[:-1], j.starts[1:])]
    return pd.DataFrame({"path": strings, "total_conversions": j.conv, "total_conversion_value": j.value,
                         "total_null": j.null})


# --------------------------------------------------------------------------- events
NON_TOUCHES = list(schema.ORDER_TOUCHPOINTS)


def journey_touches(events: TableLike, window_days: float = 30, con: Any | None = None) -> ibis.Table:
    """Ibis expression: one row per touch kept in a journey (see the module doc).

    Columns: ``person_id``, ``journey`` (0-based purchase index within the person),
    ``channel``, ``ts``, ``event_id``, ``converted`` (0/1), ``value_fen`` (the
    purchase amount, 0 for non-converting), ``conv_ts`` (the pay time, or the last
    touch time of a non-converting journey), ``days_before`` (conv_ts - ts in days).
    """
    t = to_table(events, "events", con=con)
    for col in ("person_id", "ts", "touchpoint", "channel", "event_id", "amount_fen"):
        if col not in t.columns:
            raise ValueError(f"events need a {col!r} column to build journeys")
    is_pay = (t.touchpoint == schema.PURCHASE).cast("int64")
    base = t.filter(t.touchpoint.notin([x for x in NON_TOUCHES if x != schema.PURCHASE])).select(
        "person_id", "ts", "event_id", "channel", is_pay=is_pay,
        amount_fen=t.amount_fen.cast("int64").fill_null(0),
    )
    w = ibis.cumulative_window(group_by=base.person_id, order_by=[base.ts, base.is_pay, base.event_id])
    seq = base.mutate(journey=base.is_pay.sum().over(w) - base.is_pay)
    pays = seq.filter(seq.is_pay == 1).select(
        p_person=seq.person_id, p_journey=seq.journey, pay_ts=seq.ts, pay_fen=seq.amount_fen
    )
    touches = seq.filter(seq.is_pay == 0)
    j = touches.left_join(pays, [touches.person_id == pays.p_person, touches.journey == pays.p_journey])
    last = ibis.window(group_by=[j.person_id, j.journey])
    j = j.mutate(
        converted=j.pay_ts.notnull().cast("int64"),
        conv_ts=ibis.coalesce(j.pay_ts, j.ts.max().over(last)),
        value_fen=j.pay_fen.fill_null(0),
    )
    secs = (j.conv_ts.epoch_seconds() - j.ts.epoch_seconds()).cast("float64")
    j = j.mutate(days_before=secs / 86400.0)
    j = j.select("person_id", "journey", "channel", "ts", "event_id", "converted", "value_fen", "conv_ts",
                 "days_before")
    return j if window_days is None else j.filter(j.days_before <= window_days)


def _counts(events: TableLike, window_days: float | None, con: Any | None) -> dict[str, int]:
    """What the window and the path building leave out (for ``.attrs``)."""
    t = to_table(events, "events", con=con)
    full = journey_touches(events, None, con=con)
    kept = journey_touches(events, window_days, con=con)
    pays = t.filter(t.touchpoint == schema.PURCHASE)
    per_person_journeys = kept.filter(kept.converted == 1).select("person_id", "journey").distinct()
    e = ibis.memtable({"k": [0]})
    q = e.mutate(
        touches=full.count().as_scalar(),
        touches_kept=kept.count().as_scalar(),
        purchases=pays.count().as_scalar(),
        purchases_with_path=per_person_journeys.count().as_scalar(),
        purchase_value_fen=pays.amount_fen.cast("int64").sum().as_scalar(),
    )
    row = execute(q, con=con).iloc[0]
    out = {k: int(0 if pd.isna(row[k]) else row[k]) for k in
           ("touches", "touches_kept", "purchases", "purchases_with_path", "purchase_value_fen")}
    return {
        "touches_outside_window": out["touches"] - out["touches_kept"],
        "purchases": out["purchases"],
        "purchases_without_touch": out["purchases"] - out["purchases_with_path"],
        "purchase_value_fen": out["purchase_value_fen"],
    }


def build_paths(events: TableLike, window_days: float = 30, con: Any | None = None,
                report: bool = True) -> pd.DataFrame:
    """Build the path table from events (Ibis; runs on DuckDB by default).

    Parameters
    ----------
    events
        Events (pandas frame, dataset path or Ibis table).
    window_days
        Conversion window: touches more than this many days before the purchase
        (or before the last touch of a non-converting journey) are left out.
    report
        Compute ``.attrs`` (touches outside the window, purchases without any touch in
        their window and their count); one extra pass over the data.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``total_conversions``, ``total_conversion_value`` (yuan),
        ``total_null``, sorted by path. ``.attrs`` as described above.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([
    ...     (1, "2024-05-01 10:00", "moments_ad_click"), (1, "2024-05-02 10:00", "oa_article_open"),
    ...     (1, "2024-05-03 10:00", "pay", {"order_id": 1, "amount_fen": 9900}),
    ...     (2, "2024-05-01 09:00", "moments_ad_view")])
    >>> build_paths(ev).values.tolist()
    [['moments_ad', 0, 0.0, 1], ['moments_ad > official_account', 1, 99.0, 0]]
    """
    j = journey_touches(events, window_days, con=con)
    per = j.group_by(["person_id", "journey"]).agg(
        path=j.channel.group_concat(sep=SEP, order_by=[j.ts, j.event_id]),
        converted=j.converted.max(),
        value_fen=j.value_fen.max(),
    )
    agg = per.group_by("path").agg(
        total_conversions=per.converted.sum(),
        value_fen=per.value_fen.sum(),
        total_null=(1 - per.converted).sum(),
    ).order_by("path")
    out = execute(agg, con=con)
    res = pd.DataFrame({
        "path": out["path"].astype(object),
        "total_conversions": out["total_conversions"].astype("int64"),
        "total_conversion_value": out["value_fen"].astype("float64") / 100.0,
        "total_null": out["total_null"].astype("int64"),
    }).reset_index(drop=True)
    res.attrs = {"window_days": window_days}
    if report:
        res.attrs.update(_counts(events, window_days, con))
    return res


def journeys(data: Any, window_days: float = 30, con: Any | None = None, sep: str = SEP) -> Journeys:
    """:class:`Journeys` from a path table or from events (built with :func:`build_paths`)."""
    if isinstance(data, Journeys):
        return data
    if is_path_table(data):
        return parse(data, sep=sep)
    pt = build_paths(data, window_days=window_days, con=con)
    j = parse(pt, sep=SEP)
    j.attrs.update(pt.attrs)
    return j
