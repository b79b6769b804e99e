"""Journeys as path tables: the common input of every multi-touch model.

The **path table** is the exchange format of attribution tools (ChannelAttribution,
marketing-attribution-models, Google's MCF exports): one row per distinct path

============================  =====================================================
``path``                      channels in touch order joined by ``" > "``
``total_conversions``         journeys along this path that converted
``total_conversion_value``    their conversion value (yuan when built from events)
``total_null``                journeys along this path that did not convert
============================  =====================================================

:func:`build_paths` makes one from events (Ibis: DuckDB by default, Spark or another
engine through ``con=``); :func:`parse` turns any
path table into :class:`Journeys`, flat numpy arrays the models run on.

Journeys from events
--------------------
Each person's timeline of marketing touches (below) and purchases (``pay``
events) is cut at the purchases and at every gap of more than ``window_days``
days between two consecutive rows. A piece that ends with a pay (a touch at the
same instant as the pay counts as before it) is a **converting journey** valued
at the pay's ``amount_fen / 100`` yuan; of its touches only the ones within
``window_days`` days before the pay are kept. A piece without a pay (touches
followed by a gap longer than the window, or by the end of the data) is a
**non-converting journey**; of its touches only the ones within ``window_days``
days before its last touch are kept. Cutting at gaps matters: a store visit
without a purchase followed, two months later, by a visit with one is one
non-converting and one converting ``store`` journey, not a single converting
journey with an expired touch (which would make infrequent channels look as
if they converted every time).

Channels are marketing channels
-------------------------------
A **touch** is any event whose touchpoint is not ``order``, ``pay``, ``refund``,
``share`` (the sharer's own action; the friends it brings carry
``referrer_person_id``) or a funnel step of the purchase itself (``product_view``,
``add_to_cart``: :data:`FUNNEL_STEPS`). Its channel is the event's ``channel``
column, except that a touch carrying a ``referrer_person_id`` (the person came
through a friend's share) is a ``fission`` touch.

Only touches of **marketing channels** go into a path. By default these are all
channels except the conversion surfaces (:data:`CONVERSION_SURFACES`, the Mini
Program: the checkout where a purchase happens, not a channel that brings it);
``marketing_channels=`` names them explicitly instead (for example
``marketing_channels=[*schema.CHANNELS]`` gives the old behaviour where Mini
Program visits are credited). A journey with no marketing touch in its window
(a pay after only Mini Program visits, or with no touch at all) has the path
:data:`DIRECT_PATH` (``"direct"``): it is kept in the table, so every model sees
the purchases that no marketing touch preceded, and ``last_non_direct`` and the
scoring skip it. The count is in ``.attrs["purchases_without_touch"]``.

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

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import events as events_layer
from .. import schema
from ..backend import TableLike, execute
from ..contract import Duration, duration_days, events_input

__all__ = [
    "SEP",
    "PATH_COLUMNS",
    "Journeys",
    "is_path_table",
    "parse",
    "to_path_table",
    "FUNNEL_STEPS",
    "NON_TOUCHES",
    "REFERRED_CHANNEL",
    "CONVERSION_SURFACES",
    "DIRECT_PATH",
    "marketing_filter",
    "journey_touches",
    "build_paths",
    "journeys",
    "top_paths",
    "journey_stats",
    "channel_transitions",
]


SEP = " > "
PATH_COLUMNS = ["path", "total_conversions", "total_conversion_value", "total_null"]


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

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)

    @cached_property
    def path_of_token(self) -> np.ndarray:
        """For every token, the index of its path."""
        return np.repeat(np.arange(len(self.conv)), self.lengths)

    @cached_property
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
        The separator between channels in ``path``; surrounding spaces are
        optional (channel names are stripped).

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
    try:
        arr = pa.array(strings, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
        bad = int(sum(not isinstance(x, str) for x in strings))
        raise _bad("path", "must be a string of channels", bad) from e
    # split on the separator without its spaces; names are stripped below, so "a>b",
    # "a > b" and "a >b" parse alike
    lists = pc.split_pattern(arr, sep.strip() or sep)
    enc = pc.dictionary_encode(lists.flatten())
    raw = enc.indices.to_numpy(zero_copy_only=False)
    starts = lists.offsets.to_numpy().astype(np.int64)
    names = [str(x).strip() for x in enc.dictionary.to_pylist()]
    if "" in names:
        empty = np.flatnonzero(np.isin(raw, [i for i, x in enumerate(names) if x == ""]))
        rows = len(np.unique(np.searchsorted(starts, empty, side="right")))
        raise _bad("path", f"empty channel name (an empty path or a dangling {sep.strip()!r})", rows)
    channels = sorted(set(names))
    remap = np.array([channels.index(x) for x in names], dtype=np.int64)
    codes = remap[raw]
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
#: Steps of a purchase in the Mini Program: consequences of the purchase, never touches.
FUNNEL_STEPS = ["product_view", "add_to_cart"]
#: Events that are not touches: transactions, ``share`` (the sharer's own action; the
#: friends it brings carry ``referrer_person_id`` and get a ``fission`` touch instead) and
#: the funnel steps of the purchase.
NON_TOUCHES = [*schema.ORDER_TOUCHPOINTS, "share", *FUNNEL_STEPS]
#: The channel of a touch that carries a ``referrer_person_id`` (it came through a share).
REFERRED_CHANNEL = "fission"
#: Channels that are where a purchase happens, not marketing that brings it: left out of
#: paths unless named in ``marketing_channels``.
CONVERSION_SURFACES = ("mini_program",)
#: The path of a journey without any marketing touch in its window.
DIRECT_PATH = "direct"


def marketing_filter(channel: Any, marketing_channels: Any = None) -> Any:
    """Ibis boolean: ``channel`` is a marketing channel.

    ``marketing_channels=None`` means every channel except :data:`CONVERSION_SURFACES`;
    otherwise exactly the channels listed.
    """
    if marketing_channels is None:
        return channel.notin(list(CONVERSION_SURFACES))
    if isinstance(marketing_channels, str):
        raise TypeError("marketing_channels: give a list of channel names, not one string")
    return channel.isin([str(c) for c in marketing_channels])


def _sequenced(events: TableLike, con: Any | None = None, marketing_channels: Any = None,
               window_days: float | None = None, channel_codes: list[str] | None = None,
               part: tuple[int, int] | None = None) -> ibis.Table:
    """Marketing touches and pays of each person with their journey key and conversion time.

    One window sort per person (ts, pays after touches at the same instant,
    event_id). A new journey starts at a person's first row, after each pay, and
    at a row more than ``window_days`` after the previous one (the touches before
    such a gap expired without a purchase: a non-converting journey). ``journey``
    numbers the journeys of a person from 1 (with ``channel_codes``, ``channel`` is
    the channel's index there plus 1, an int64 that is lighter to sort than a string;
    ``len(channel_codes) + 1`` for another channel); ``conv_ts`` is the journey's pay
    time, or its last touch for a non-converting journey; ``converted`` (0/1);
    ``last_touch_no - touch_no`` is a touch's place counted from the journey's last
    touch (0), which :func:`build_paths` keys paths by without another sort. ``part=(i, k)``
    keeps the persons of partition ``i`` of ``k`` (:func:`privdomain.events.person_part`).
    """
    t = events_layer.read(events, con=con)
    for col in ("person_id", "ts", "touchpoint", "channel", "event_id", "amount_fen"):
        if col not in t.columns:
            raise ValueError(f"events need a {col!r} column to build journeys")
    if part is not None and part[1] > 1:
        t = t.filter(events_layer.person_part(t.person_id, *part))
    is_pay = (t.touchpoint == schema.PURCHASE).cast("int64")
    channel = t.channel
    if "referrer_person_id" in t.columns:
        channel = ibis.cases((t.referrer_person_id.notnull() & (is_pay == 0), REFERRED_CHANNEL), else_=t.channel)
    base = t.filter(t.touchpoint.notin([x for x in NON_TOUCHES if x != schema.PURCHASE])).select(
        "person_id", "ts", "event_id", channel=channel, is_pay=is_pay,
        amount_fen=t.amount_fen.cast("int64").fill_null(0),
    )
    base = base.filter((base.is_pay == 1) | marketing_filter(base.channel, marketing_channels))
    if channel_codes is not None:
        code = ibis.cases(*[(base.channel == n, i + 1) for i, n in enumerate(channel_codes)],
                          else_=len(channel_codes) + 1)
        base = base.mutate(channel=code.cast("int64"))
    order = [base.ts, base.is_pay, base.event_id]
    before = ibis.window(group_by=base.person_id, order_by=order)
    prev_ts = base.ts.lag().over(before)
    prev_pay = base.is_pay.lag().over(before)
    gap = (base.ts.epoch_seconds() - prev_ts.epoch_seconds()).cast("float64") / 86400.0
    new = prev_ts.isnull() | (prev_pay == 1)
    if window_days is not None:
        new = new | (gap > float(window_days))
    seq = base.mutate(new=new.cast("int64"))
    upto = ibis.window(group_by=seq.person_id, order_by=[seq.ts, seq.is_pay, seq.event_id], rows=(None, 0))
    # touch_no: touches of the person so far, in the same sort as the journey numbers
    seq = seq.mutate(journey=seq.new.sum().over(upto), touch_no=(1 - seq.is_pay).sum().over(upto))
    grp = ibis.window(group_by=[seq.person_id, seq.journey])
    seq = seq.mutate(conv_ts=seq.ts.max().over(grp), converted=seq.is_pay.max().over(grp),
                     last_touch_no=seq.touch_no.max().over(grp))
    secs = (seq.conv_ts.epoch_seconds() - seq.ts.epoch_seconds()).cast("float64")
    return seq.mutate(days_before=secs / 86400.0)


@events_input(renamed={"window_days": "window"})
def journey_touches(events: TableLike, window: Duration | None = "30D", *, con: Any | None = None,
                    marketing_channels: Any = None, part: tuple[int, int] | None = None) -> ibis.Table:
    """Ibis expression: one row per marketing touch kept in a journey (see the module doc).

    Columns: ``person_id``, ``journey`` (a journey key within the person),
    ``channel``, ``ts``, ``event_id``, ``converted`` (0/1), ``value_fen`` (the
    purchase amount, 0 for non-converting), ``conv_ts`` (the pay time, or the last
    touch time of a non-converting journey), ``days_before`` (conv_ts - ts in days).
    ``part=(i, k)``: only the persons of partition ``i`` of ``k`` (:func:`privdomain.events.person_part`).
    """
    window_days = None if window is None else duration_days(window)
    seq = _sequenced(events, con=con, marketing_channels=marketing_channels, window_days=window_days, part=part)
    grp = ibis.window(group_by=[seq.person_id, seq.journey])
    seq = seq.mutate(value_fen=(seq.amount_fen * seq.is_pay).sum().over(grp))
    j = seq.filter(seq.is_pay == 0)
    j = j.select("person_id", journey=j.journey, channel=j.channel, ts=j.ts, event_id=j.event_id,
                 converted=j.converted.cast("int64"), value_fen=j.value_fen, conv_ts=j.conv_ts,
                 days_before=j.days_before)
    return j if window_days is None else j.filter(j.days_before <= window_days)


#: Words (int64 columns) a path is first encoded in; more when a journey is longer.
_WORDS = 4


def _channel_names(events: TableLike, marketing_channels: Any = None) -> list[str]:
    """Every channel a path may hold, in a fixed order (their codes are 1, 2, ...)."""
    if marketing_channels is not None:
        if isinstance(marketing_channels, str):
            raise TypeError("marketing_channels: give a list of channel names, not one string")
        return sorted(dict.fromkeys(map(str, marketing_channels)))
    source = events if isinstance(events, (str, os.PathLike)) else None
    known = [*events_layer.known_channels(source), REFERRED_CHANNEL]
    return sorted(c for c in dict.fromkeys(known) if c not in CONVERSION_SURFACES)


def _path_words(seq: ibis.Table, window_days: float, bits: int, per_word: int, words: int) -> ibis.Table:
    """Ibis expression: the path table with each path as ``words`` int64 columns ``w0, w1, ...``.

    A kept touch ``k`` touches before the last touch of its journey (``k = 0`` for
    the last one, in ``ts, is_pay, event_id`` order) adds ``code << (bits * (k %
    per_word))`` to word ``k // per_word``; ``code`` is its channel's code (the
    ``channel`` column of ``seq``, coded by :func:`_sequenced`; 0 marks the start of
    the path). The positions do not overlap, so the sums are
    exact and the words are the journey's channel sequence: journeys are grouped by
    plain integer columns (hash aggregates that spill), with no ordered string
    aggregate. ``longest`` is the most kept touches of a journey along a path.
    """
    kept = ((seq.is_pay == 0) & (seq.days_before <= window_days)).cast("int64")
    code = seq.channel  # already coded by _sequenced(channel_codes=names)
    # the place from the journey's last touch (0): the kept touches are the last ones
    back = (seq.last_touch_no - seq.touch_no).cast("int64")
    slot = back % per_word
    shift = ibis.cases(*[(slot == i, 1 << (bits * i)) for i in range(1, per_word)], else_=1)
    seq = seq.mutate(kept=kept, bit=code.cast("int64") * shift.cast("int64") * kept, word=back // per_word)
    per = seq.group_by(["person_id", "journey"]).agg(
        converted=seq.is_pay.max(),
        value_fen=(seq.amount_fen * seq.is_pay).sum(),
        touches=(1 - seq.is_pay).sum(),
        touches_kept=seq.kept.sum(),
        **{f"w{i}": seq.bit.sum(where=seq.word == i).fill_null(0).cast("int64") for i in range(words)},
    )
    return per.group_by([f"w{i}" for i in range(words)]).agg(
        total_conversions=per.converted.sum().cast("int64"),
        value_fen=per.value_fen.sum().cast("int64"),
        total_null=(1 - per.converted).sum().cast("int64"),
        touches=per.touches.sum().cast("int64"),
        touches_kept=per.touches_kept.sum().cast("int64"),
        longest=per.touches_kept.max().cast("int64"),
    )


def _decode_paths(words: np.ndarray, names: list[str], bits: int, per_word: int) -> np.ndarray:
    """Path strings of rows of int64 words (see :func:`_path_words`); None for an empty path."""
    n = len(words)
    shifts = (np.arange(per_word, dtype=np.int64) * bits)[None, None, :]
    codes = ((words[:, :, None] >> shifts) & ((1 << bits) - 1)).reshape(n, -1)
    if (codes > len(names)).any():
        raise ValueError("build_paths: a touch's channel is not one of the channels known for paths")
    labels = np.array([None, *names], dtype=object)
    out = np.empty(n, dtype=object)
    for i, row in enumerate(codes):  # one row per distinct path (a few thousand), not per event
        row = row[row > 0][::-1]  # stored from the last touch back
        out[i] = SEP.join(labels[row]) if len(row) else None
    return out


def _merge_words(outs: list[pd.DataFrame], words: int) -> pd.DataFrame:
    """Path-word tables of disjoint person partitions as one (sums; ``longest`` is a max)."""
    if len(outs) == 1:
        return outs[0]
    keys = [f"w{i}" for i in range(words)]
    both = pd.concat(outs, ignore_index=True)
    sums = ["total_conversions", "value_fen", "total_null", "touches", "touches_kept"]
    agg = {**{c: "sum" for c in sums}, "longest": "max"}
    return both.groupby(keys, as_index=False, sort=False).agg(agg)


@events_input(renamed={"window_days": "window"})
def build_paths(events: TableLike, window: Duration = "30D", *, con: Any | None = None,
                marketing_channels: Any = None, partitions: int | None = None) -> pd.DataFrame:
    """Build the path table from events (Ibis; runs on DuckDB by default).

    Parameters
    ----------
    events
        Events (pandas frame, dataset path or Ibis table).
    window
        Conversion window: touches more than this many days before the purchase
        (or before the last touch of a non-converting journey) are left out.
    marketing_channels
        The channels credited in paths (default: every channel except
        :data:`CONVERSION_SURFACES`); touches of other channels are left out and a
        journey left without a touch is :data:`DIRECT_PATH`.
    partitions
        Split the persons into this many partitions by a hash of ``person_id``
        (:func:`privdomain.events.person_part`) and run the journey windows one partition at a time,
        adding up the (small) per-partition path tables: the same result, with a
        working set ``partitions`` times smaller. None (the default) picks the number
        from the event count and the DuckDB memory limit
        (:func:`privdomain.events.person_partitions`); 1 on
        other engines, which spill or distribute on their own.

    Returns
    -------
    pandas.DataFrame
        ``path``, ``total_conversions``, ``total_conversion_value`` (yuan),
        ``total_null``, sorted by path. ``.attrs``: ``touches_outside_window``
        (marketing touches older than the window), ``purchases``,
        ``purchases_without_touch`` (purchases with no marketing touch in their
        window: the ``direct`` row), ``value_without_touch`` (yuan),
        ``purchase_value_fen``, ``marketing_channels`` (None: the default).

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([
    ...     (1, "2024-05-01 10:00", "moments_ad_click"), (1, "2024-05-02 10:00", "oa_article_open"),
    ...     (1, "2024-05-03 10:00", "pay", {"order_id": 1, "amount_fen": 9900}),
    ...     (2, "2024-05-01 09:00", "moments_ad_view"),
    ...     (3, "2024-05-01 09:00", "mp_visit"), (3, "2024-05-01 09:10", "pay", {"order_id": 2, "amount_fen": 500})])
    >>> build_paths(ev).values.tolist()
    [['direct', 1, 5.0, 0], ['moments_ad', 0, 0.0, 1], ['moments_ad > official_account', 1, 99.0, 0]]
    """
    window_days = duration_days(window)
    names = _channel_names(events, marketing_channels)
    k = events_layer.person_partitions(events, partitions, con=con)
    seqs = [_sequenced(events, con=con, marketing_channels=marketing_channels, window_days=window_days,
                       channel_codes=names, part=(i, k)) for i in range(k)]
    bits = max(1, int(len(names) + 1).bit_length())  # code 0 ends a path; the last code is "not in names"
    per_word = 62 // bits
    words = _WORDS
    while True:
        out = _merge_words([execute(_path_words(seq, window_days, bits, per_word, words), con=con)
                            for seq in seqs], words)
        longest = int(out["longest"].max()) if len(out) else 0
        if longest <= words * per_word:
            break
        words = -(-longest // per_word)  # a journey longer than the words: once more with enough of them
    out = out.assign(path=_decode_paths(out[[f"w{i}" for i in range(words)]].to_numpy(dtype=np.int64),
                                        names, bits, per_word))
    none = out["path"].isna()
    lost = out[none]
    body = out[~none]
    if none.any():  # journeys without a marketing touch: one "direct" row (merged with any given "direct" path)
        direct = lost[["total_conversions", "value_fen", "total_null"]].sum().to_frame().T.assign(path=DIRECT_PATH)
        body = pd.concat([body, direct], ignore_index=True)
    body = body.groupby("path", as_index=False)[["total_conversions", "value_fen", "total_null"]].sum()
    body = body.sort_values("path")
    res = pd.DataFrame({
        "path": body["path"].astype(object).to_numpy(),
        "total_conversions": body["total_conversions"].astype("int64").to_numpy(),
        "total_conversion_value": body["value_fen"].astype("float64").to_numpy() / 100.0,
        "total_null": body["total_null"].astype("int64").to_numpy(),
    })
    res.attrs = {
        "window_days": window_days,
        "marketing_channels": None if marketing_channels is None else sorted(map(str, marketing_channels)),
        "touches_outside_window": int(out["touches"].sum() - out["touches_kept"].sum()),
        "purchases": int(out["total_conversions"].sum()),
        "purchases_without_touch": int(lost["total_conversions"].sum()),
        "value_without_touch": float(lost["value_fen"].sum()) / 100.0,
        "purchase_value_fen": int(out["value_fen"].sum()),
        "partitions": k,
    }
    return res


@events_input(renamed={"window_days": "window"})
def journeys(events: Any, window: Duration = "30D", *, con: Any | None = None, sep: str = SEP,
             marketing_channels: Any = None) -> Journeys:
    """:class:`Journeys` from a path table or from events (built with :func:`build_paths`).

    >>> import pandas as pd
    >>> journeys(pd.DataFrame({"path": ["a > b"], "total_conversions": [1]})).lengths.tolist()
    [2]
    """
    if isinstance(events, Journeys):
        return events
    if is_path_table(events):
        return parse(events, sep=sep)
    pt = build_paths(events, window=window, con=con, marketing_channels=marketing_channels)
    j = parse(pt, sep=SEP)
    j.attrs.update(pt.attrs)
    return j


def _collapse(path: str) -> str:
    tokens = path.split(SEP)
    kept = [t for i, t in enumerate(tokens) if i == 0 or t != tokens[i - 1]]
    return SEP.join(kept)


def top_paths(paths: pd.DataFrame, n: int = 8, collapse: bool = True) -> pd.DataFrame:
    """The ``n`` channel paths with the most conversions (ties: most journeys).

    ``paths`` is a path table (:func:`privdomain.attribution.build_paths`). With
    ``collapse`` consecutive repeats of a channel are merged (``ad > ad > oa`` ->
    ``ad > oa``), so the table reads as a sequence of channels, and paths that become
    equal are summed.

    Returns ``path``, ``conversions``, ``journeys``, ``conversion_rate``
    (转化率 = conversions / journeys), ``value`` (yuan) and ``share`` of all conversions.

    >>> pt = pd.DataFrame({"path": ["ad > ad > oa", "ad > oa", "oa"], "total_conversions": [2, 1, 0],
    ...                    "total_conversion_value": [200.0, 50.0, 0.0], "total_null": [5, 3, 9]})
    >>> top_paths(pt, n=2)[["path", "conversions"]].values.tolist()
    [['ad > oa', 3], ['oa', 0]]
    >>> journey_stats(pt)["touches_per_conversion"]
    2.6666666666666665
    """
    df = paths.copy()
    if collapse:
        df["path"] = df["path"].map(_collapse)
    g = df.groupby("path", as_index=False)[["total_conversions", "total_null", "total_conversion_value"]].sum()
    g["journeys"] = g["total_conversions"] + g["total_null"]
    total = g["total_conversions"].sum()
    out = pd.DataFrame({
        "path": g["path"],
        "conversions": g["total_conversions"].astype("int64"),
        "journeys": g["journeys"].astype("int64"),
        "conversion_rate": g["total_conversions"] / g["journeys"].where(g["journeys"] > 0),
        "value": g["total_conversion_value"].astype(float),
        "share": g["total_conversions"] / total if total else np.nan,
    })
    out = out.sort_values(["conversions", "journeys", "path"], ascending=[False, False, True]).head(n)
    return out.reset_index(drop=True)


def journey_stats(paths: pd.DataFrame) -> dict[str, float]:
    """Length of converting journeys, from a path table.

    * ``touches_per_conversion`` (每单触点数) = Σ over converting journeys of their
      touches / conversions;
    * ``channels_per_conversion`` (每单渠道数) = the same with distinct channels;
    * ``multi_channel_share`` (多渠道占比) = share of conversions whose journey used two
      or more channels.
    """
    tokens = paths["path"].str.split(SEP)
    conv = paths["total_conversions"].to_numpy(dtype=float)
    n = conv.sum()
    touches = tokens.map(len).to_numpy(dtype=float)
    channels = tokens.map(lambda t: len(set(t))).to_numpy(dtype=float)
    if n == 0:
        return {"touches_per_conversion": float("nan"), "channels_per_conversion": float("nan"),
                "multi_channel_share": float("nan"), "conversions": 0.0}
    return {
        "touches_per_conversion": float((touches * conv).sum() / n),
        "channels_per_conversion": float((channels * conv).sum() / n),
        "multi_channel_share": float(conv[channels >= 2].sum() / n),
        "conversions": float(n),
    }


def channel_transitions(paths: pd.DataFrame) -> pd.DataFrame:
    """Moves between channels inside journeys (a channel-level touchpoint map), from a path table.

    Each journey of :func:`privdomain.attribution.build_paths` is read as
    ``(start) > c1 > c2 > ... > (purchase)`` or ``... > (no purchase)``; a move
    ``a -> b`` is two consecutive steps (repeats of one channel included: ``a -> a``).
    ``journeys`` counts the moves over all journeys (each path weighted by its journeys).

    Returns ``from_channel``, ``to_channel``, ``journeys``, ``share_of_from`` (流转占比 =
    moves a -> b / moves out of a).

    >>> pt = pd.DataFrame({"path": ["ad > oa", "oa"], "total_conversions": [2, 0],
    ...                    "total_conversion_value": [20.0, 0.0], "total_null": [1, 3]})
    >>> channel_transitions(pt)[["from_channel", "to_channel", "journeys"]].values.tolist()
    [['(start)', 'ad', 3], ['(start)', 'oa', 3], ['ad', 'oa', 3], ['oa', '(no purchase)', 4], ['oa', '(purchase)', 2]]
    """
    rows: dict[tuple[str, str], int] = {}
    for path, conv, null in zip(paths["path"], paths["total_conversions"], paths["total_null"]):
        steps = ["(start)", *path.split(SEP)]
        weight = int(conv) + int(null)
        for a, b in zip(steps[:-1], steps[1:]):
            rows[(a, b)] = rows.get((a, b), 0) + weight
        for end, n in (("(purchase)", int(conv)), ("(no purchase)", int(null))):
            if n:
                rows[(steps[-1], end)] = rows.get((steps[-1], end), 0) + n
    out = pd.DataFrame([(a, b, n) for (a, b), n in rows.items()], columns=["from_channel", "to_channel", "journeys"])
    out = out.sort_values(["from_channel", "to_channel"]).reset_index(drop=True)
    out["share_of_from"] = out["journeys"] / out.groupby("from_channel")["journeys"].transform("sum")
    return out
