"""Exact Shapley-value attribution over channel coalitions (up to 20 channels).

Coalition worth
---------------
Let ``C(T)``, ``V(T)``, ``N(T)`` be the conversions, conversion value and
non-converting journeys whose *set* of channels is exactly ``T``. Two games:

``coalition="conversions"`` (default; Zhao et al. 2018, "Shapley value methods for
attribution modeling in online advertising", the "simplified" Shapley):
    ``v(S) = sum_{T subset of S} C(T)``, the conversions of the journeys that used
    only channels of ``S`` (value: the same with ``V``).
``coalition="rate"``:
    ``v(S) = sum_{T subset S} C(T) / sum_{T subset S} (C(T) + N(T))``, the
    conversion rate of the journeys confined to ``S`` (value: value per journey),
    ``v(empty) = 0``; credits are rescaled so they sum to the total conversions
    (value).

The sums over subsets are computed for all ``2^n`` coalitions at once with the
fast zeta transform (``n 2^n`` additions), then the Shapley value is the exact
formula ``phi_c = sum_{S not containing c} |S|! (n-|S|-1)! / n! (v(S+c) - v(S))``.
Journeys are never truncated: a path of any length only contributes its channel
set. Efficiency: ``sum_c phi_c = v(all channels)``.

Ordered Shapley
---------------
``ordered=True`` (conversions game only) splits each channel's credit by the
position at which the channel first appears in the journey (the ordered
Shapley value of Zhao et al. 2018 for this game): a journey with ``k`` distinct channels gives ``1/k`` of its
conversions (value) to each of them at its first-touch position ``1..k``. The
credits summed over positions are the unordered Shapley values.

Examples
--------
>>> import pandas as pd
>>> from privdomain.attribution.shapley import shapley
>>> pt = pd.DataFrame({"path": ["a > b", "a", "b > b"], "total_conversions": [2, 3, 1],
...                    "total_conversion_value": [20.0, 30.0, 10.0], "total_null": [1, 1, 1]})
>>> shapley(pt)[["channel", "conversions", "value"]].values.tolist()
[['a', 4.0, 40.0], ['b', 2.0, 20.0]]
"""

from __future__ import annotations

from math import factorial
from typing import Any

import numpy as np
import pandas as pd

from ..contract import Duration, events_input
from .paths import SEP, Journeys, journeys
from .rules import tidy

__all__ = ["MAX_CHANNELS", "channel_sets", "zeta", "shapley_values", "games", "shapley"]


MAX_CHANNELS = 20


def channel_sets(j: Journeys) -> np.ndarray:
    """Bit mask of the set of channels of every path (bit c = channel c)."""
    if len(j.channels) > MAX_CHANNELS:
        raise ValueError(f"exact Shapley supports up to {MAX_CHANNELS} channels, got {len(j.channels)}")
    bits = np.left_shift(np.int64(1), j.codes.astype(np.int64))
    return np.bitwise_or.reduceat(bits, j.starts[:-1])


def zeta(f: np.ndarray, n: int) -> np.ndarray:
    """Subset sums: ``g[S] = sum_{T subset of S} f[T]`` over ``2^n`` masks (fast zeta transform)."""
    g = np.array(f, dtype=float, copy=True)
    for i in range(n):
        view = g.reshape(-1, 2, 1 << i)
        view[:, 1, :] += view[:, 0, :]
    return g


def shapley_values(v: np.ndarray, n: int) -> np.ndarray:
    """Exact Shapley values of the game ``v`` given on all ``2^n`` masks (``v[0]`` = empty).

    ``phi_c = sum_{S not containing c} w(|S|) (v(S + c) - v(S))`` with
    ``w(s) = s! (n-s-1)! / n!``, regrouped by mask:
    ``phi_c = sum_{T containing c} w(|T|-1) v(T) - sum_{S not containing c} w(|S|) v(S)``,
    two matrix-vector products over the ``2^n x n`` membership matrix.
    """
    v = np.asarray(v, dtype=float)
    masks = np.arange(1 << n)
    bits = ((masks[:, None] >> np.arange(n)) & 1).astype(bool)
    pop = bits.sum(axis=1)
    w = np.array([factorial(s) * factorial(n - s - 1) / factorial(n) for s in range(n)] + [0.0])
    with_c = w[np.maximum(pop - 1, 0)] * v  # used only where the mask contains c (pop >= 1)
    without_c = w[pop] * v  # used only where it does not (pop <= n - 1)
    return bits.T.astype(float) @ with_c - (~bits).T.astype(float) @ without_c


def games(j: Journeys, coalition: str = "conversions") -> tuple[np.ndarray, np.ndarray, int]:
    """The conversions game and the value game on all masks."""
    n = len(j.channels)
    m = channel_sets(j)
    size = 1 << n
    C = zeta(np.bincount(m, weights=j.conv, minlength=size), n)
    V = zeta(np.bincount(m, weights=j.value, minlength=size), n)
    if coalition == "conversions":
        return C, V, n
    if coalition == "rate":
        J = C + zeta(np.bincount(m, weights=j.null, minlength=size), n)
        safe = np.where(J > 0, J, 1.0)
        return np.where(J > 0, C / safe, 0.0), np.where(J > 0, V / safe, 0.0), n
    raise ValueError(f"coalition must be 'conversions' or 'rate', got {coalition!r}")


def _ordered(j: Journeys) -> pd.DataFrame:
    p = j.path_of_token
    pos = j.position
    order = np.lexsort((pos, j.codes, p))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (p[order][1:] != p[order][:-1]) | (j.codes[order][1:] != j.codes[order][:-1])
    is_first = np.zeros(len(order), dtype=bool)
    is_first[order] = first
    k = np.bincount(p, weights=is_first, minlength=len(j.conv))
    rank = np.cumsum(is_first) - np.repeat(np.cumsum(is_first)[j.starts[:-1]] - is_first[j.starts[:-1]],
                                           j.lengths)
    sel = is_first
    share = 1.0 / k[p[sel]]
    frame = pd.DataFrame({
        "channel": np.array(j.channels, dtype=object)[j.codes[sel]],
        "position": rank[sel].astype(np.int64),
        "conversions": share * j.conv[p[sel]],
        "value": share * j.value[p[sel]],
    })
    out = frame.groupby(["channel", "position"], as_index=False)[["conversions", "value"]].sum()
    out.insert(1, "model", "shapley_ordered")
    return out


@events_input(renamed={"window_days": "window"})
def shapley(events: Any, coalition: str = "conversions", ordered: bool = False, window: Duration = "30D",
            *, con: Any | None = None, sep: str = SEP, marketing_channels: Any = None) -> pd.DataFrame:
    """Exact Shapley attribution of conversions and value (see the module doc).

    Parameters
    ----------
    events
        A path table or events (journeys built with ``window``).
    coalition
        ``"conversions"`` (worth = conversions of journeys confined to the
        coalition) or ``"rate"`` (their conversion rate).
    ordered
        Return the ordered variant: credit per channel and first-touch position
        (``position`` column, 1-based).

    Returns
    -------
    pandas.DataFrame
        ``channel``, ``model`` (``shapley`` / ``shapley_rate`` /
        ``shapley_ordered``), ``conversions``, ``value``, ``share``,
        ``share_value`` (``position`` instead of shares when ordered). ``.attrs``
        holds ``grand_coalition`` (``v(N)``) and ``grand_coalition_value``.

    Examples
    --------
    >>> import pandas as pd
    >>> pt = pd.DataFrame({"path": ["a > b > a"], "total_conversions": [4],
    ...                    "total_conversion_value": [8.0], "total_null": [0]})
    >>> shapley(pt, ordered=True)[["channel", "position", "conversions"]].values.tolist()
    [['a', 1, 2.0], ['b', 2, 2.0]]
    """
    j = journeys(events, window=window, con=con, sep=sep, marketing_channels=marketing_channels)
    if ordered:
        if coalition != "conversions":
            raise ValueError("ordered Shapley is defined for coalition='conversions' only")
        out = _ordered(j)
        out.attrs = dict(j.attrs)
        return out
    vc, vv, n = games(j, coalition)
    phi_c, phi_v = shapley_values(vc, n), shapley_values(vv, n)
    tc, tv = float(j.conv.sum()), float(j.value.sum())
    if coalition == "rate":
        conv = tc * phi_c / vc[-1] if vc[-1] else np.zeros(n)
        val = tv * phi_v / vv[-1] if vv[-1] else np.zeros(n)
        name = "shapley_rate"
    else:
        conv, val, name = phi_c, phi_v, "shapley"
    out = tidy(j.channels, name, conv, val)
    out.attrs = dict(j.attrs)
    out.attrs.update({"grand_coalition": float(vc[-1]), "grand_coalition_value": float(vv[-1]),
                      "shapley_raw": phi_c.tolist(), "shapley_raw_value": phi_v.tolist()})
    return out
