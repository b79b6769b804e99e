"""Staggered roll-outs with effects that vary: group-time DiD (Callaway & Sant'Anna).

When units (stores, Official Accounts, guides) get a change at different times and
its effect grows with time or differs by adoption cohort, two-way fixed effects
(:func:`privdomain.experiments.did`) compares late adopters with units that were
treated earlier and can be badly biased, even of the wrong sign (Goodman-Bacon
2021). Callaway & Sant'Anna (2021) avoid it by estimating one 2x2 comparison per
adoption cohort ``g`` (the period units first had the change) and period ``t``:

.. math::

    ATT(g, t) = E[Y_t - Y_{g-1} \\mid G = g] - E[Y_t - Y_{g-1} \\mid C],

where ``C`` is the never-treated units (``control="never"``) or the units not yet
treated at ``t`` (``control="notyet"``: ``G > max(t, g - 1)`` and ``G != g``,
never-treated included). The base period is ``g - 1`` for every ``t`` (a "universal" base: the
pre-period cells ``t < g - 1`` are placebo long differences, zero under parallel
trends). These cells are then averaged:

* ``simple``: over every post cell (``t >= g``), each weighted by its cohort's
  share of treated units, i.e. the average effect over treated unit-periods;
* ``dynamic``: by exposure ``e = t - g`` (an event study free of the TWFE bias),
  cohorts weighted by size among those observed at ``e``;
* ``group``: per cohort, the average over its post periods.

Standard errors come from the influence functions of the cell means, summed per
unit (so they are clustered by unit), with the estimated cohort weights' own
influence function included in the aggregations, as in the paper. Intervals are
pointwise Wald intervals.

Assumes a balanced panel without covariates (unconditional parallel trends) and
no anticipation. Reference: B. Callaway and P. H. C. Sant'Anna (2021),
"Difference-in-Differences with multiple time periods", Journal of Econometrics
225(2), 200-230.

Examples
--------
>>> from privdomain.experiments.synthetic import simulate_panel
>>> p = simulate_panel(200, 10, effect=1.0, dynamic=0.5, seed=3)
>>> r = staggered_did(p)
>>> r["term"].tolist()
['simple']
>>> att = p.loc[p.treated == 1, "true_effect"].mean()  # the simulated truth
>>> bool(r["ci_low"].iloc[0] < att < r["ci_high"].iloc[0])
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._tidy import require_finite, tidy, wald
from .did import check_panel

__all__ = ["CONTROLS", "AGGREGATIONS", "group_time_att", "staggered_did"]


CONTROLS = ("never", "notyet")
AGGREGATIONS = ("simple", "dynamic", "group")


def _wide(panel: pd.DataFrame, outcome: str, unit: str, period: str, first_treated: str):
    """Outcome as a unit x period matrix, the periods, and each unit's cohort (inf = never)."""
    check_panel(panel, [unit, period, first_treated, outcome], unit, period)
    require_finite(panel, [outcome, period], "panel")
    Y = panel.pivot(index=unit, columns=period, values=outcome).sort_index(axis=1)
    missing = int(Y.isna().to_numpy().sum())
    if missing:
        raise ValueError(f"panel: must be balanced (every unit in every period): {missing} unit-period cell(s) "
                         f"are missing")
    varies = int((panel.groupby(unit)[first_treated].nunique(dropna=False) > 1).sum())
    if varies:
        raise ValueError(f"panel: column {first_treated!r} must be constant within a unit: {varies} unit(s) break it")
    g = pd.to_numeric(panel.groupby(unit)[first_treated].first(), errors="coerce").reindex(Y.index)
    g = g.astype("float64").to_numpy(dtype=float, na_value=np.nan)
    periods = pd.to_numeric(pd.Series(Y.columns)).to_numpy(dtype=float)
    return Y.to_numpy(dtype=float), periods, np.where(np.isnan(g), np.inf, g)


def group_time_att(
    panel: pd.DataFrame,
    outcome: str = "y",
    *,
    unit: str = "unit",
    period: str = "period",
    first_treated: str = "first_treated",
    control: str = "never",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every ATT(g, t) cell (see the module doc), as tidy rows.

    Parameters
    ----------
    panel
        Balanced panel: one row per ``unit`` and ``period`` (numeric, consecutive
        steps), ``first_treated`` (the period the unit got the change, on the
        ``period`` scale; null = never) and the outcome.
    control
        ``"never"`` (never-treated units) or ``"notyet"`` (not yet treated at ``t``).

    Returns
    -------
    pandas.DataFrame
        Tidy rows with ``cohort``, ``period``, ``exposure`` (= period - cohort),
        ``post`` (exposure >= 0), ``n_treated``, ``n_control``. (``attrs["if"]``, the
        unit x cell influence-function matrix, and ``attrs["unit_cohort"]`` are kept
        for one release; :func:`staggered_did` no longer reads them.)

    Examples
    --------
    >>> from privdomain.experiments.synthetic import simulate_panel
    >>> cells = group_time_att(simulate_panel(100, 8, effect=2.0, seed=1))
    >>> bool((cells[cells.post].estimate.mean() > 1.0) and cells[~cells.post].estimate.abs().mean() < 1.0)
    True
    """
    out, inf, g = _cells(panel, outcome, unit, period, first_treated, control, alpha)
    out.attrs["if"] = inf
    out.attrs["unit_cohort"] = g
    return out


def _cells(panel: pd.DataFrame, outcome: str, unit: str, period: str, first_treated: str, control: str,
           alpha: float) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The ATT(g, t) cells, their unit x cell influence functions and each unit's cohort (inf = never)."""
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {CONTROLS}, got {control!r}")
    Y, periods, g = _wide(panel, outcome, unit, period, first_treated)
    n_units = len(g)
    cohorts = np.unique(g[np.isfinite(g)])
    if control == "never" and not np.isinf(g).any():
        raise ValueError("panel: no never-treated unit to compare with: use control='notyet'")
    col = {p: j for j, p in enumerate(periods)}
    rows, ifs = [], []
    for c in cohorts:
        base = c - 1
        if base not in col:
            continue  # treated from the first period: no pre-period to difference from
        treated = g == c
        for t in periods:
            if t == base:
                continue
            if control == "never":
                ctrl = np.isinf(g)
            else:
                ctrl = (g > max(t, base)) & ~treated
            n1, n0 = int(treated.sum()), int(ctrl.sum())
            if n1 == 0 or n0 == 0:
                continue
            dy = Y[:, col[t]] - Y[:, col[base]]
            m1, m0 = dy[treated].mean(), dy[ctrl].mean()
            inf = np.zeros(n_units)
            inf[treated] = (dy[treated] - m1) * n_units / n1
            inf[ctrl] -= (dy[ctrl] - m0) * n_units / n0
            est = float(m1 - m0)
            se = _se(inf)
            lo, hi, p = wald(est, se, alpha)
            e = int(round(t - c))
            rows.append({"outcome": outcome, "term": f"ATT(g={c:g}, t={t:g})", "method": f"cs_{control}",
                         "estimate": est, "std_error": se, "ci_low": lo, "ci_high": hi, "p_value": p,
                         "n": n1 + n0, "cohort": c, "period": t, "exposure": e, "post": e >= 0,
                         "n_treated": n1, "n_control": n0})
            ifs.append(inf)
    if not rows:
        raise ValueError("panel: no cohort has both a pre-period and a comparison group")
    return tidy(rows), np.column_stack(ifs), g


def _se(inf: np.ndarray) -> float:
    """Standard error of an estimate from its per-unit influence function."""
    return float(np.sqrt((inf ** 2).sum()) / len(inf))


def _aggregate(cells: pd.DataFrame, inf: np.ndarray, select: np.ndarray, g: np.ndarray) -> tuple[float, np.ndarray]:
    """Cohort-share-weighted mean of the selected cells and its influence function."""
    IF = inf[:, select]
    att = cells["estimate"].to_numpy()[select]
    coh = cells["cohort"].to_numpy()[select]
    pg = np.array([(g == c).mean() for c in coh])
    w = pg / pg.sum()
    # influence of the estimated weights: d w_k = (d p_k * S - p_k * d S) / S^2, d p_k(i) = 1{G_i = c_k} - p_k
    dp = (g[:, None] == coh[None, :]).astype(float) - pg[None, :]
    S = pg.sum()
    dw = (dp * S - pg[None, :] * dp.sum(axis=1, keepdims=True)) / S**2
    return float(w @ att), IF @ w + dw @ att


def staggered_did(
    panel: pd.DataFrame,
    outcome: str = "y",
    *,
    unit: str = "unit",
    period: str = "period",
    first_treated: str = "first_treated",
    control: str = "never",
    aggregate: str = "simple",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Callaway-Sant'Anna effect of a staggered change, robust to effects that vary.

    Parameters
    ----------
    panel, outcome, unit, period, first_treated, control
        As in :func:`group_time_att`.
    aggregate
        ``"simple"`` (one overall ATT), ``"dynamic"`` (one row per exposure
        ``e = t - g``, pre-periods included as placebos) or ``"group"`` (one row per
        cohort).

    Returns
    -------
    pandas.DataFrame
        Tidy rows (``term`` = ``simple``, ``e=<k>`` or ``g=<cohort>``) with
        ``exposure`` or ``cohort`` where relevant and ``cells``, the number of
        ATT(g, t) cells averaged. The cells themselves are :func:`group_time_att`
        (``attrs["cells"]`` keeps them too, for one release).

    Examples
    --------
    >>> from privdomain.experiments.synthetic import simulate_panel
    >>> dyn = staggered_did(simulate_panel(300, 10, effect=1.0, dynamic=1.0, seed=4), aggregate="dynamic")
    >>> bool(dyn.set_index("exposure").estimate[3] > dyn.set_index("exposure").estimate[0])
    True
    """
    if aggregate not in AGGREGATIONS:
        raise ValueError(f"aggregate must be one of {AGGREGATIONS}, got {aggregate!r}")
    cells, cell_inf, g = _cells(panel, outcome, unit, period, first_treated, control, alpha)
    n_units = len(g)
    post = cells["post"].to_numpy()
    if aggregate == "simple":
        groups = [("simple", {}, post)]
    elif aggregate == "dynamic":
        ex = cells["exposure"].to_numpy()
        groups = [(f"e={e}", {"exposure": int(e)}, ex == e) for e in np.unique(ex)]
    else:
        coh = cells["cohort"].to_numpy()
        groups = [(f"g={c:g}", {"cohort": float(c)}, post & (coh == c)) for c in np.unique(coh[post])]
    rows = []
    for term, extra, sel in groups:
        if not sel.any():
            continue
        est, inf = _aggregate(cells, cell_inf, sel, g)
        se = _se(inf)
        lo, hi, p = wald(est, se, alpha)
        rows.append({"outcome": outcome, "term": term, "method": f"cs_{control}", "estimate": est, "std_error": se,
                     "ci_low": lo, "ci_high": hi, "p_value": p, "n": n_units, **extra,
                     "cells": int(sel.sum())})
    if not rows:
        raise ValueError("panel: no post-change cell to aggregate (every cohort lacks a later period)")
    out = tidy(rows)
    out.attrs["cells"] = cells  # for one release: the cells are group_time_att(...)
    return out
