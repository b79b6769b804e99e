"""Figures of the lifecycle module: stage area, stage flows, retention triangle, repurchase and LTV curves.

Each function draws on the given (or a new) matplotlib Axes and returns it; colours and
fonts follow :mod:`privdomain.plotting` when its style is in use.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from privdomain.examples import events_frame
>>> from privdomain.lifecycle import lifecycle_board
>>> from privdomain.lifecycle.plots import plot_stage_area
>>> ev = events_frame([(1, "2024-01-01 09:00", "mp_visit"), (2, "2024-01-02 10:00", "pay",
...                    {"order_id": 1, "amount_fen": 100})])
>>> ax = plot_stage_area(lifecycle_board(ev, "2024-01-01", "2024-01-05"))
>>> ax.get_ylabel()
'persons'
"""

from __future__ import annotations

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..glossary import display_name
from ..plotting import new_axes, sankey
from .stages import AIPL_STAGES, ENTRY, STAGES, flow_matrix

_SIZE = (8.0, 4.2)  # the lifecycle figures' default size

__all__ = ["STAGE_COLORS", "plot_stage_area", "plot_stage_flows", "plot_stage_sankey", "plot_retention_triangle",
           "plot_repurchase_curve", "plot_ltv_curve"]

#: One colour per stage (warm = recent buyers, grey/red = lapsing), AIPL stages included.
STAGE_COLORS: dict[str, str] = {
    "prospect": "#c7c7c7",
    "new": "#8fd175",
    "active": "#2e7d5b",
    "loyal": "#1b4f72",
    "resurrected": "#8172b3",
    "dormant": "#dd8452",
    "churned": "#c44e52",
    "awareness": "#c7c7c7",
    "interest": "#64b5cd",
    "purchase": "#2e7d5b",
    "loyalty": "#1b4f72",
    "lapsed": "#c44e52",
}


def _stage_order(present: set[str]) -> list[str]:
    order = AIPL_STAGES if present & set(AIPL_STAGES) else STAGES
    return [s for s in order if s in present]


def plot_stage_area(board: pd.DataFrame, ax: Axes | None = None, share: bool = False) -> Axes:
    """Stacked area of persons per stage over time, from :func:`privdomain.lifecycle.lifecycle_board`.

    Parameters
    ----------
    board
        ``period``, ``stage``, ``persons`` (and ``share`` when ``share=True``).
    share
        Plot shares of the population (stack to 1) instead of counts.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> b = pd.DataFrame({"period": pd.to_datetime(["2024-01-01"] * 2 + ["2024-01-02"] * 2),
    ...                   "stage": ["new", "active"] * 2, "persons": [3, 1, 2, 2], "share": [.75, .25, .5, .5]})
    >>> plot_stage_area(b, share=True).get_ylabel()
    'share of persons'
    """
    ax = new_axes(figsize=_SIZE, ax=ax)
    value = "share" if share else "persons"
    wide = board.pivot(index="period", columns="stage", values=value).fillna(0)
    cols = _stage_order(set(wide.columns))
    wide = wide[cols]
    ax.stackplot(wide.index, wide.T.to_numpy(), labels=[display_name(c, "stage") for c in cols],
                 colors=[STAGE_COLORS.get(c, "#999999") for c in cols], alpha=0.9)
    ax.set_ylabel("share of persons" if share else "persons")
    ax.set_xlabel("")
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, reverse=True)
    ax.set_title("生命周期阶段 lifecycle stages")
    ax.margins(x=0)
    return ax


def plot_stage_flows(
    flows: pd.DataFrame,
    period: object | None = None,
    ax: Axes | None = None,
    normalize: bool = False,
    include_stays: bool = True,
) -> Axes:
    """Heatmap of the flow matrix (from-stage rows, to-stage columns) of one period or all periods.

    Parameters
    ----------
    flows
        Output of :func:`privdomain.lifecycle.stage_flows`.
    period
        One period (its day or Monday); None sums every period.
    normalize
        Show each row as shares of the from-stage (transition probabilities).
    include_stays
        False blanks the diagonal (persons who stayed), to show the moves.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> f = pd.DataFrame({"period": pd.to_datetime(["2024-01-08"] * 2), "from_stage": ["active", "active"],
    ...                   "to_stage": ["active", "dormant"], "persons": [8, 2]})
    >>> plot_stage_flows(f, normalize=True).get_xlabel()
    'to stage'
    """
    ax = new_axes(figsize=(6.5, 5.0), ax=ax)
    m = flow_matrix(flows, period=period)
    m = m.loc[(m.sum(axis=1) > 0) | (m.index != ENTRY)]
    vals = m.to_numpy(dtype=float)
    if not include_stays:
        for i, r in enumerate(m.index):
            if r in m.columns:
                vals[i, list(m.columns).index(r)] = np.nan
    if normalize:
        with np.errstate(invalid="ignore", divide="ignore"):
            vals = vals / np.nansum(vals, axis=1, keepdims=True)
    im = ax.imshow(vals, cmap="Greens", aspect="auto")
    ax.set_xticks(range(len(m.columns)), [display_name(c, "stage") for c in m.columns], rotation=45, ha="right")
    ax.set_yticks(range(len(m.index)), [display_name(c, "stage") for c in m.index])
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            v = vals[i, j]
            if np.isfinite(v) and v > 0:
                ax.text(j, i, f"{v:.0%}" if normalize else f"{int(v):,}", ha="center", va="center", fontsize=8,
                        color="white" if v > np.nanmax(vals) * 0.6 else "black")
    ax.set_xlabel("to stage")
    ax.set_ylabel("from stage")
    title = "Stage flows" + ("" if period is None else f", period {pd.Timestamp(period).date()}")
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return ax


def plot_stage_sankey(flows: pd.DataFrame, period: object | None = None, ax: Axes | None = None,
                      include_stays: bool = True) -> Axes:
    """Sankey (alluvial) chart of stage flows: stages at the previous snapshot (left) to this one (right).

    Band widths are persons; ``period`` selects one period (None sums all periods);
    ``include_stays=False`` leaves out persons who stayed in their stage.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> f = pd.DataFrame({"period": pd.to_datetime(["2024-01-08"] * 3), "from_stage": ["active", "active", "new"],
    ...                   "to_stage": ["active", "dormant", "active"], "persons": [8, 2, 3]})
    >>> len(plot_stage_sankey(f).patches) >= 3
    True
    """
    m = flow_matrix(flows, period=period)
    long = m.rename_axis(index="from_stage", columns="to_stage").stack().rename("persons").reset_index()
    if not include_stays:
        long = long[long["from_stage"] != long["to_stage"]]
    order = [*m.index, *[c for c in m.columns if c not in set(m.index)]]
    title = "阶段流转 stage flows" + ("" if period is None else f", period {pd.Timestamp(period).date()}")
    return sankey(long, value="persons", source="from_stage", target="to_stage", top=None,
                  ax=new_axes(figsize=(8.0, 5.0), ax=ax), title=title, colors=STAGE_COLORS, order=order,
                  node_width=0.04, labels=lambda s: display_name(s, "stage"))


def plot_retention_triangle(triangle: pd.DataFrame, ax: Axes | None = None, fmt: str = "{:.0%}") -> Axes:
    """Heatmap of a cohort triangle from :func:`privdomain.lifecycle.cohorts.cohort_triangle`.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> tri = pd.DataFrame([[1.0, 0.3], [1.0, np.nan]], index=pd.to_datetime(["2024-01-01", "2024-02-01"]))
    >>> plot_retention_triangle(tri).get_xlabel()
    'periods since acquisition'
    """
    ax = new_axes(figsize=(8.0, 0.35 * len(triangle) + 2), ax=ax)
    vals = triangle.to_numpy(dtype=float)
    ax.imshow(vals, cmap="Greens", aspect="auto")
    labels = [str(pd.Timestamp(i).date()) if not isinstance(i, str) else i for i in triangle.index]
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xticks(range(vals.shape[1]), [str(c) for c in triangle.columns])
    if vals.size <= 600:
        top = np.nanmax(vals) if np.isfinite(vals).any() else 1
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                if np.isfinite(vals[i, j]):
                    ax.text(j, i, fmt.format(vals[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if vals[i, j] > 0.6 * top else "black")
    ax.set_xlabel("periods since acquisition")
    ax.set_ylabel("cohort")
    ax.grid(False)
    return ax


def plot_repurchase_curve(curve: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Cumulative repurchase probability (1 - Kaplan-Meier survival) per segment, with bands.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> c = pd.DataFrame({"segment": "all", "days": [5, 10], "survival": [0.8, 0.5], "repurchased": [0.2, 0.5],
    ...                   "ci_lower": [0.6, 0.3], "ci_upper": [0.9, 0.7]})
    >>> plot_repurchase_curve(c).get_ylabel()
    'repurchased (share)'
    """
    ax = new_axes(figsize=_SIZE, ax=ax)
    for seg, g in curve.groupby("segment", sort=True):
        x = np.concatenate([[0], g["days"].to_numpy()])
        y = np.concatenate([[0], g["repurchased"].to_numpy()])
        (line,) = ax.step(x, y, where="post", label=str(seg))
        lo = np.concatenate([[0], 1 - g["ci_upper"].to_numpy()])
        hi = np.concatenate([[0], 1 - g["ci_lower"].to_numpy()])
        ax.fill_between(x, lo, hi, step="post", alpha=0.15, color=line.get_color())
    ax.set_xlabel("days since purchase")
    ax.set_ylabel("repurchased (share)")
    ax.set_ylim(0, 1)
    ax.set_title("Repurchase cycle (Kaplan-Meier)")
    if curve["segment"].nunique() > 1:
        ax.legend(frameon=False)
    return ax


def plot_ltv_curve(ltv: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Cumulative LTV (yuan per acquired person) by period since acquisition, per segment.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> lt = pd.DataFrame({"segment": "all", "period": [0, 1], "cum_ltv": [10.0, 12.0], "arpu": [10.0, 2.0]})
    >>> plot_ltv_curve(lt).get_ylabel()
    'cumulative LTV (yuan)'
    """
    ax = new_axes(figsize=_SIZE, ax=ax)
    for seg, g in ltv.groupby("segment", sort=True):
        ax.plot(g["period"], g["cum_ltv"], marker="o", ms=3, label=str(seg))
    ax.set_xlabel("periods since acquisition")
    ax.set_ylabel("cumulative LTV (yuan)")
    ax.set_title("Cumulative LTV")
    if ltv["segment"].nunique() > 1:
        ax.legend(frameon=False)
    return ax
