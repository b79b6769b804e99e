"""One plotting helper per analysis; each draws on ``ax`` (or a new one) and returns the Axes.

* :func:`forest_plot`: effects with intervals (campaign effects, effects by tier)
* :func:`event_study_plot`: event-study coefficients around the change
* :func:`power_curve`: power against sample size (or MDE against sample size)
* :func:`odds_ratio_plot`: touchpoint odds ratios on a log axis

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from privdomain.experiments import simulate_campaign, heterogeneous_effects
>>> ax = forest_plot(heterogeneous_effects(simulate_campaign(2000, seed=1), "converted"), label="segment")
>>> ax.get_xlabel()
'effect (95% CI)'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..plotting import PALETTE, new_axes

__all__ = ["forest_plot", "event_study_plot", "power_curve", "odds_ratio_plot"]


_SIZE = (7.0, 4.0)  # the experiment figures' default size
_GREEN, _BLUE, _GREY, _RED = PALETTE[0], PALETTE[1], PALETTE[7], PALETTE[3]  # the package palette


def forest_plot(
    results: pd.DataFrame,
    *,
    label: str | Sequence[str] = "term",
    ax: Axes | None = None,
    adjusted: bool = False,
    truth: dict | None = None,
    title: str | None = None,
) -> Axes:
    """Point estimates and intervals, one row per result, with a line at zero.

    ``label``: column(s) joined into the row labels. ``adjusted=True`` draws the
    multiplicity-adjusted intervals (``ci_low_adj``/``ci_high_adj``) of
    :func:`heterogeneous_effects`. ``truth`` (``{label: value}``) marks known
    true effects (simulated data).
    """
    ax = new_axes(figsize=(7.0, 0.5 * len(results) + 1.5), ax=ax)
    cols = [label] if isinstance(label, str) else list(label)
    labels = results[cols].astype(str).agg(" | ".join, axis=1).tolist()
    lo_col, hi_col = ("ci_low_adj", "ci_high_adj") if adjusted else ("ci_low", "ci_high")
    y = np.arange(len(results))[::-1]
    est = results["estimate"].to_numpy(float)
    err = np.vstack([est - results[lo_col].to_numpy(float), results[hi_col].to_numpy(float) - est])
    ax.errorbar(est, y, xerr=err, fmt="o", color=_GREEN, ecolor=_GREEN, capsize=3)
    if truth:
        tv = [truth.get(lab, np.nan) for lab in labels]
        ax.scatter(tv, y, marker="x", color=_RED, zorder=3, label="true effect")
        ax.legend(loc="best", frameon=False)
    ax.axvline(0, color=_GREY, lw=1, ls="--")
    ax.set_yticks(y, labels)
    ax.set_xlabel("effect (simultaneous CI)" if adjusted else "effect (95% CI)")
    if title:
        ax.set_title(title)
    return ax


def event_study_plot(es: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Event-study coefficients by period relative to the change, with intervals.

    The dashed vertical line separates pre-change periods (where the
    coefficients should hover around 0) from post-change ones; the pre-trend
    test's p-value goes in the corner when ``es.attrs["pretrend"]`` exists.
    """
    ax = new_axes(figsize=_SIZE, ax=ax)
    k = es["relative_period"].to_numpy()
    est = es["estimate"].to_numpy(float)
    ax.fill_between(k, es["ci_low"].to_numpy(float), es["ci_high"].to_numpy(float), color=_BLUE, alpha=0.2, lw=0)
    ax.plot(k, est, "o-", color=_BLUE)
    ax.axhline(0, color=_GREY, lw=1)
    ax.axvline(-0.5, color=_GREY, lw=1, ls="--")
    ax.set_xlabel("period relative to the change (k = -1 is the reference)")
    ax.set_ylabel("effect on " + str(es["outcome"].iloc[0]))
    pre = es.attrs.get("pretrend")
    if pre and pre.get("df_num"):
        ax.text(0.02, 0.95, f"pre-trend test p = {pre['p_value']:.3g}", transform=ax.transAxes, va="top",
                color=_RED if pre["flagged"] else "black")
    if title:
        ax.set_title(title)
    return ax


def power_curve(
    table: pd.DataFrame,
    *,
    x: str = "n_total",
    y: str = "power",
    hue: str | None = None,
    target: float | None = 0.8,
    ax: Axes | None = None,
) -> Axes:
    """Power (or MDE) against sample size from :func:`power_proportion` / :func:`mde_proportion` tables.

    One line per value of ``hue`` (e.g. ``"mde"`` or ``"ratio"``); a dotted line
    at the ``target`` power when ``y == "power"``.
    """
    ax = new_axes(figsize=_SIZE, ax=ax)
    groups = [(None, table)] if hue is None else list(table.groupby(hue, sort=True))
    for key, g in groups:
        g = g.sort_values(x)
        ax.plot(g[x], g[y], label=None if key is None else f"{hue} = {key:g}" if isinstance(key, float) else str(key))
    if target is not None and y == "power":
        ax.axhline(target, color=_GREY, ls=":", lw=1)
    if hue is not None:
        ax.legend(frameon=False)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    return ax


def odds_ratio_plot(drivers: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Odds ratios with intervals on a log axis, a line at 1, and the association caveat as the title."""
    ax = new_axes(figsize=(7.0, 0.45 * len(drivers) + 1.5), ax=ax)
    d = drivers.sort_values("odds_ratio")
    y = np.arange(len(d))
    orr = d["odds_ratio"].to_numpy(float)
    err = np.vstack([orr - d["or_ci_low"].to_numpy(float), d["or_ci_high"].to_numpy(float) - orr])
    ax.errorbar(orr, y, xerr=err, fmt="o", color=_GREEN, capsize=3)
    ax.axvline(1, color=_GREY, lw=1, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(y, d["term"].astype(str).tolist())
    ax.set_xlabel("odds ratio of purchase (95% CI, log scale)")
    ax.set_title(title or "association with purchase, not causal effect")
    return ax
