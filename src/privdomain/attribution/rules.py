"""Rule-based multi-touch attribution over journeys.

Every model gives each touch of a converting journey a weight, the weights of a
journey sum to 1, and a channel is credited ``sum(weight * conversions)`` and
``sum(weight * value)``. So each model's credits sum to the total conversions and
the total value (non-converting journeys carry no credit).

================  =============================================================
first_touch       1 to the first touch
last_touch        1 to the last touch
last_non_direct   1 to the last touch whose channel is not in ``direct``; to the
                  last touch if every touch is direct
linear            1/L to each of the L touches
time_decay        proportional to ``2 ** (-t / half_life)``, ``t`` = age of the
                  touch at conversion: in days when built from events, in steps
                  before the conversion (last touch = 0) for a path table
position_based    weights (f, m, l) = ``position_weights`` (default 40/20/40):
                  L=1: 1; L=2: f/(f+l) and l/(f+l); L>=3: f to the first, l to
                  the last, m/(L-2) to each middle touch
================  =============================================================

Examples
--------
>>> import pandas as pd
>>> from privdomain.attribution.rules import rule_based
>>> pt = pd.DataFrame({"path": ["a > b > c"], "total_conversions": [10],
...                    "total_conversion_value": [100.0], "total_null": [5]})
>>> r = rule_based(pt, models=["position_based"])
>>> r[["channel", "conversions"]].values.tolist()
[['a', 4.0], ['b', 2.0], ['c', 4.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd

from .. import events as events_layer
from ..backend import execute
from ..contract import Duration, events_input
from .paths import (
    DIRECT_PATH,
    SEP,
    Journeys,
    build_paths,
    is_path_table,
    journey_touches,
    parse,
)

__all__ = ["RULES", "DIRECT", "OUTPUT_COLUMNS", "tidy", "token_weights", "time_decay_events", "rule_based"]


RULES = ("first_touch", "last_touch", "last_non_direct", "linear", "time_decay", "position_based")
#: Channels treated as "direct" by ``last_non_direct`` (a Mini Program visit with no other source).
DIRECT = ("direct", "mini_program")
OUTPUT_COLUMNS = ["channel", "model", "conversions", "value", "share", "share_value"]


def tidy(channels: Sequence[str], model: str, conv: np.ndarray, value: np.ndarray, **extra: Any) -> pd.DataFrame:
    """The common output: one row per channel; shares are fractions of the totals."""
    conv = np.asarray(conv, dtype=float)
    value = np.asarray(value, dtype=float)
    tc, tv = conv.sum(), value.sum()
    out = pd.DataFrame({
        "channel": list(channels),
        "model": model,
        "conversions": conv,
        "value": value,
        "share": conv / tc if tc else np.zeros_like(conv),
        "share_value": value / tv if tv else np.zeros_like(value),
    })
    for k, v in extra.items():
        out[k] = v
    return out


def token_weights(j: Journeys, model: str, half_life: float = 7.0,
                  position_weights: Sequence[float] = (0.4, 0.2, 0.4),
                  direct: Sequence[str] = DIRECT, age: np.ndarray | None = None) -> np.ndarray:
    """Weight of every token of ``j`` under ``model`` (weights of a path sum to 1)."""
    p = j.path_of_token
    lengths = j.lengths
    L = lengths[p]
    pos = j.position
    if model == "first_touch":
        return (pos == 0).astype(float)
    if model == "last_touch":
        return (pos == L - 1).astype(float)
    if model == "last_non_direct":
        direct_codes = [i for i, c in enumerate(j.channels) if c in set(direct)]
        nd = ~np.isin(j.codes, direct_codes)
        last_nd = np.maximum.reduceat(np.where(nd, pos, -1), j.starts[:-1])
        last_nd = np.where(last_nd < 0, lengths - 1, last_nd)
        return (pos == last_nd[p]).astype(float)
    if model == "linear":
        return 1.0 / L
    if model == "time_decay":
        if half_life <= 0:
            raise ValueError(f"half_life must be positive, got {half_life}")
        t = (L - 1 - pos).astype(float) if age is None else np.asarray(age, dtype=float)
        w = np.exp2(-t / half_life)
        return w / np.bincount(p, weights=w, minlength=len(lengths))[p]
    if model == "position_based":
        f, m, last = (float(x) for x in position_weights)
        if min(f, m, last) < 0 or f + last <= 0:
            raise ValueError(f"position_weights must be non-negative with first + last > 0, got {position_weights}")
        tot = f + m + last
        f, m, last = f / tot, m / tot, last / tot
        w = np.where(pos == 0, f, np.where(pos == L - 1, last, m / np.maximum(L - 2, 1)))
        w = np.where(L == 1, 1.0, w)
        return np.where(L == 2, np.where(pos == 0, f, last) / (f + last), w)
    raise ValueError(f"unknown rule-based model {model!r}; choose from {RULES}")


def _rules_on_journeys(j: Journeys, models: Sequence[str], **kw: Any) -> pd.DataFrame:
    p = j.path_of_token
    n = len(j.channels)
    frames = []
    for model in models:
        w = token_weights(j, model, **kw)
        conv = np.bincount(j.codes, weights=w * j.conv[p], minlength=n)
        val = np.bincount(j.codes, weights=w * j.value[p], minlength=n)
        frames.append(tidy(j.channels, model, conv, val))
    return pd.concat(frames, ignore_index=True)


@events_input(renamed={"window_days": "window"})
def time_decay_events(events: Any, half_life: float, window: Duration, channels: list[str],
                       *, con: Any | None, marketing_channels: Any = None,
                       paths: pd.DataFrame | None = None, partitions: int | None = None) -> pd.DataFrame:
    """Time decay with real touch ages (days) from events, in Ibis.

    The ``direct`` journeys of ``paths`` (no marketing touch) are credited to ``direct``.
    ``partitions``: person-hash partitions run in turn, as in
    :func:`privdomain.attribution.paths.build_paths` (default: from the event count and
    the DuckDB memory limit; the channel sums are added up).
    """
    if half_life <= 0:
        raise ValueError(f"half_life must be positive, got {half_life}")
    k = events_layer.person_partitions(events, partitions, con=con)
    parts = []
    for i in range(k):  # the journey windows one person partition at a time (see build_paths)
        t = journey_touches(events, window, con=con, marketing_channels=marketing_channels, part=(i, k))
        t = t.filter(t.converted == 1)
        t = t.mutate(w=(-t.days_before / half_life * np.log(2.0)).exp())
        t = t.mutate(wn=t.w / t.w.sum().over(ibis.window(group_by=[t.person_id, t.journey])))
        agg = t.group_by("channel").agg(conversions=t.wn.sum(), value=(t.wn * t.value_fen).sum() / 100.0)
        parts.append(execute(agg, con=con))
    got = pd.concat(parts, ignore_index=True).groupby("channel", sort=True)[["conversions", "value"]].sum() \
        if k > 1 else parts[0].set_index("channel")
    got = got.reindex(sorted(set(channels) | set(got.index))).fillna(0.0)
    if paths is not None and DIRECT_PATH in set(paths["path"]):
        d = paths[paths["path"] == DIRECT_PATH]
        got.loc[DIRECT_PATH, "conversions"] = float(d["total_conversions"].sum())
        got.loc[DIRECT_PATH, "value"] = float(d["total_conversion_value"].sum())
        got = got.sort_index()
    return tidy(list(got.index), "time_decay", got["conversions"].to_numpy(), got["value"].to_numpy())


@events_input(renamed={"window_days": "window"})
def rule_based(events: Any, models: Sequence[str] = RULES, half_life: float = 7.0,
               position_weights: Sequence[float] = (0.4, 0.2, 0.4), direct: Sequence[str] = DIRECT,
               window: Duration = "30D", *, con: Any | None = None, sep: str = SEP,
               marketing_channels: Any = None) -> pd.DataFrame:
    """Rule-based multi-touch attribution (see the module table for the models).

    Parameters
    ----------
    events
        A path table (``path``, ``total_conversions``, ``total_conversion_value``,
        ``total_null``) or events (frame, dataset path, Ibis table); events are
        turned into journeys by :func:`privdomain.attribution.paths.build_paths`.
    models
        Which of :data:`RULES` to run.
    half_life
        Time-decay half-life: days (events) or steps (path table).
    position_weights
        (first, middle, last) weights of ``position_based``; normalised to sum 1.
    direct
        Channels skipped by ``last_non_direct``.
    window
        Conversion window when building journeys from events.
    marketing_channels
        The channels credited when building journeys from events (see
        :func:`privdomain.attribution.paths.build_paths`).

    Returns
    -------
    pandas.DataFrame
        ``channel``, ``model``, ``conversions``, ``value``, ``share``,
        ``share_value`` (shares as fractions), one row per channel and model.

    Examples
    --------
    >>> import pandas as pd
    >>> pt = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [1, 1],
    ...                    "total_conversion_value": [30.0, 10.0], "total_null": [0, 3]})
    >>> r = rule_based(pt, models=["first_touch", "linear"])
    >>> r[["model", "channel", "conversions", "value"]].values.tolist()
    [['first_touch', 'a', 1.0, 30.0], ['first_touch', 'b', 1.0, 10.0], ['linear', 'a', 0.5, 15.0], ['linear', 'b', 1.5, 25.0]]
    """
    models = list(models)
    for m in models:
        if m not in RULES:
            raise ValueError(f"unknown rule-based model {m!r}; choose from {RULES}")
    kw = {"half_life": half_life, "position_weights": position_weights, "direct": direct}
    if isinstance(events, Journeys) or is_path_table(events):
        j = events if isinstance(events, Journeys) else parse(events, sep=sep)
        out = _rules_on_journeys(j, models, **kw)
        out.attrs = dict(j.attrs)
        return out
    pt = build_paths(events, window=window, con=con, marketing_channels=marketing_channels)
    j = parse(pt)
    frames = []
    for m in models:
        if m == "time_decay":
            frames.append(time_decay_events(events, half_life, window, j.channels, con=con,
                                                marketing_channels=marketing_channels, paths=pt))
        else:
            frames.append(_rules_on_journeys(j, [m], **kw))
    out = pd.concat(frames, ignore_index=True)
    out.attrs = dict(pt.attrs)
    return out
