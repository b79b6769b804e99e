"""Markov-chain attribution with exact removal effects (absorbing chain, linear solves).

The chain
---------
States are ``start``, the transient states, ``conversion`` and ``null``. For
order ``k`` a transient state is the tuple of the last ``min(k, j)`` channels of a
journey after its ``j``-th touch (order 1: the channel itself), as in
ChannelAttribution's higher-order model. Every journey of a path table adds its
count to the transitions ``start -> s_1 -> ... -> s_L`` and to ``s_L ->
conversion`` (converting) or ``s_L -> null``. Transition probabilities are the
counts normalised per source state (maximum likelihood).

Exact conversion probability
----------------------------
With ``Q`` the transient-to-transient block and ``r`` the one-step probability of
converting, the probability of absorption in ``conversion`` from each transient
state solves ``(I - Q) x = r`` (Kemeny & Snell 1960, Th. 3.3.7); ``p = x[start]``.
No random walks are simulated, so the answer does not depend on a seed or a
number of simulations.

Removal effect
--------------
Removing channel ``c`` sends every transition into a state containing ``c`` to
``null`` (its rows of ``Q`` and ``r`` become 0) and re-solves:
``RE_c = 1 - p_{-c} / p`` (Anderl et al. 2016, "Mapping the customer journey:
lessons learned from graph-based online attribution modeling"). Conversions
credited to ``c`` are ``total_conversions * RE_c / sum(RE)``. Value uses the same
chain with a reward: a conversion from state ``s`` is worth the mean value of
the journeys that converted from ``s``; ``RE^value_c = 1 - E_{-c}[value] /
E[value]`` and the value credit is ``total_value * RE^value_c / sum(RE^value)``.

Examples
--------
>>> import pandas as pd
>>> from privdomain.attribution.markov import markov
>>> pt = pd.DataFrame({"path": ["a > b", "a", "b"], "total_conversions": [1, 1, 0],
...                    "total_conversion_value": [1.0, 1.0, 0.0], "total_null": [0, 1, 1]})
>>> markov(pt)[["channel", "removal_effect"]].round(4).values.tolist()
[['a', 0.75], ['b', 0.5]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..contract import Duration, events_input
from .paths import SEP, Journeys, journeys
from .rules import tidy

__all__ = ["states", "chain", "removal_effects", "markov"]


_DENSE_MAX = 400


def states(j: Journeys, order: int = 1) -> tuple[np.ndarray, np.ndarray, list[tuple[int, ...]]]:
    """State index (1-based; 0 = start) of every token, and the channel tuple of each state.

    Returns ``(state_of_token, contains, tuples)`` where ``contains[s, c]`` is True
    when state ``s`` (0-based over transient non-start states) contains channel ``c``.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    n = len(j.channels)
    base = n + 1
    if base ** order >= 2 ** 62:
        raise ValueError(f"order {order} with {n} channels is too large to encode")
    if order == 1:  # the state is the channel itself
        return j.codes.astype(np.int64) + 1, np.eye(n, dtype=bool), [(c,) for c in range(n)]
    pos = j.position
    key = np.zeros(len(j.codes), dtype=np.int64)
    for lag in range(order):
        idx = np.arange(len(j.codes)) - lag
        ok = pos >= lag
        digit = np.where(ok, j.codes[np.where(ok, idx, 0)] + 1, 0)
        key += digit * (base ** lag)
    if base ** order <= 4_000_000:  # compact by counting (no sort)
        present = np.bincount(key, minlength=base ** order) > 0
        uniq = np.flatnonzero(present)
        lookup = np.cumsum(present) - 1
        inv = lookup[key]
    else:
        uniq, inv = np.unique(key, return_inverse=True)
    digits = np.stack([(uniq // base ** lag) % base for lag in range(order)], axis=1)  # lag 0 = newest
    contains = np.zeros((len(uniq), n), dtype=bool)
    for lag in range(order):
        d = digits[:, lag]
        ok = d > 0
        contains[np.flatnonzero(ok), d[ok] - 1] = True
    tuples = [tuple(int(x) - 1 for x in row[::-1] if x > 0) for row in digits]
    return inv.astype(np.int64) + 1, contains, tuples


def chain(j: Journeys, order: int = 1):
    """Transition counts of the absorbing chain.

    Returns ``(T, conv_end, value_end, null_end, contains, tuples)``: ``T`` the sparse
    (m+1)x(m+1) transient count matrix (state 0 = start), and per transient state the
    conversions, conversion value and nulls of journeys ending there.
    """
    s, contains, tuples = states(j, order)
    m = contains.shape[0]
    size = m + 1
    weight = (j.conv + j.null)[j.path_of_token]
    prev = np.empty_like(s)
    prev[1:] = s[:-1]
    prev[j.starts[:-1]] = 0
    if size * size <= 4_000_000:
        T = sp.csr_matrix(np.bincount(prev * size + s, weights=weight, minlength=size * size).reshape(size, size))
    else:
        T = sp.coo_matrix((weight, (prev, s)), shape=(size, size)).tocsr()
    last = s[j.starts[1:] - 1]
    conv_end = np.bincount(last, weights=j.conv, minlength=size)
    value_end = np.bincount(last, weights=j.value, minlength=size)
    null_end = np.bincount(last, weights=j.null, minlength=size)
    return T, conv_end, value_end, null_end, contains, tuples


def _solve(Q, r: np.ndarray, removed: np.ndarray | None) -> float:
    """Absorption value from start: solve (I - Q) x = r with removed states fixed at 0."""
    if removed is not None and removed.any():
        keep = ~removed
        Q = Q[keep][:, keep]
        r = r[keep]
    if Q.shape[0] <= _DENSE_MAX:
        A = np.eye(Q.shape[0]) - (Q.toarray() if sp.issparse(Q) else Q)
        x = np.linalg.solve(A, r)
    else:
        A = sp.identity(Q.shape[0], format="csc") - sp.csc_matrix(Q)
        x = spla.spsolve(A, r)
    return float(x[0])


def removal_effects(j: Journeys, order: int = 1) -> dict[str, Any]:
    """Exact conversion probability, expected value and removal effects per channel."""
    T, conv_end, value_end, null_end, contains, tuples = chain(j, order)
    out_count = np.asarray(T.sum(axis=1)).ravel() + conv_end + null_end
    if (out_count <= 0).any():  # pragma: no cover - parse() drops empty rows
        raise ValueError("a state has no outgoing transitions")
    inv = sp.diags(1.0 / out_count)
    Q = inv @ T
    if Q.shape[0] <= _DENSE_MAX:
        Q = Q.toarray()
    r = conv_end / out_count
    rv = value_end / out_count
    p = _solve(Q, r, None)
    ev = _solve(Q, rv, None)
    n = len(j.channels)
    re = np.zeros(n)
    rev = np.zeros(n)
    for c in range(n):
        removed = np.concatenate(([False], contains[:, c]))
        re[c] = 1.0 - _solve(Q, r, removed) / p if p > 0 else 0.0
        rev[c] = 1.0 - _solve(Q, rv, removed) / ev if ev > 0 else 0.0
    return {"conversion_probability": p, "expected_value": ev, "removal_effect": re,
            "removal_effect_value": rev, "states": len(tuples)}


@events_input(renamed={"window_days": "window"})
def markov(events: Any, order: int = 1, window: Duration = "30D", *, con: Any | None = None,
           sep: str = SEP, marketing_channels: Any = None) -> pd.DataFrame:
    """Markov removal-effect attribution, computed exactly (see the module doc).

    Parameters
    ----------
    events
        A path table or events (journeys built with ``window``).
    order
        Memory of the chain: 1 (a state is the current channel) or higher (the last
        ``order`` channels).

    Returns
    -------
    pandas.DataFrame
        ``channel``, ``model`` (``markov_<order>``), ``conversions``, ``value``,
        ``share``, ``share_value``, ``removal_effect``, ``removal_effect_value`` and
        the chain's own results, the same on every row: ``conversion_probability``
        (the probability a journey that starts ends in a conversion) and
        ``expected_value`` (its expected conversion value). ``.attrs`` holds
        provenance: ``states`` (the chain's size) and what path building dropped (and,
        for one release, the two results above).

    Examples
    --------
    >>> import pandas as pd
    >>> pt = pd.DataFrame({"path": ["a > b", "b"], "total_conversions": [2, 0],
    ...                    "total_conversion_value": [20.0, 0.0], "total_null": [0, 2]})
    >>> markov(pt)[["channel", "conversions", "removal_effect"]].round(4).values.tolist()
    [['a', 0.6667, 0.5], ['b', 1.3333, 1.0]]
    """
    j = journeys(events, window=window, con=con, sep=sep, marketing_channels=marketing_channels)
    res = removal_effects(j, order)
    re, rev = res["removal_effect"], res["removal_effect_value"]
    tc, tv = float(j.conv.sum()), float(j.value.sum())
    conv = tc * re / re.sum() if re.sum() > 0 else np.zeros_like(re)
    val = tv * rev / rev.sum() if rev.sum() > 0 else np.zeros_like(rev)
    out = tidy(j.channels, f"markov_{order}", conv, val, removal_effect=re, removal_effect_value=rev)
    out["conversion_probability"] = float(res["conversion_probability"])
    out["expected_value"] = float(res["expected_value"])
    out.attrs = dict(j.attrs)
    out.attrs.update({k: res[k] for k in ("conversion_probability", "expected_value", "states")})
    return out
