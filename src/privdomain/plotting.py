"""One figure style for every notebook and report, with Chinese text that renders.

Call :func:`use_style` once (every notebook does) and draw with matplotlib or
seaborn as usual. It

* registers a CJK font that ships with a Python package (Noto Sans CJK SC from the
  ``mplfonts`` dependency, SIL Open Font License), so 中文 labels render on a fresh
  machine without system fonts; a font in ``privdomain/fonts/`` or an installed
  system CJK font is used if that package is missing;
* puts that font first in the sans-serif list, with DejaVu Sans behind it for any
  glyph it lacks, and turns off the Unicode minus sign;
* applies a seaborn ``whitegrid`` theme, one colour palette and figure sizes that
  read well in an HTML report.

The helpers below are general (bars, lines, a funnel, a heatmap, yuan axes, a
bilingual label); figures that belong to one metric live next to the metric.

Examples
--------
>>> import matplotlib
>>> matplotlib.use("Agg")
>>> from privdomain import plotting
>>> font = plotting.use_style()
>>> font.family
'Noto Sans CJK SC'
>>> plotting.label("打开率", "open rate")
'打开率 open rate'
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

__all__ = [
    "PALETTE",
    "FIGSIZE",
    "CJKFont",
    "find_cjk_font",
    "register_cjk_font",
    "use_style",
    "figure_title",
    "label",
    "yuan",
    "percent",
    "yuan_axis",
    "percent_axis",
    "new_axes",
    "bar",
    "line",
    "funnel",
    "sankey",
    "heatmap",
    "SMALL_N",
    "WIDE_INTERVAL",
    "SMALL_RULE",
    "rate_intervals",
    "difference_interval",
    "flag_text",
    "pp",
    "interval_text",
    "small_warning",
    "bar_ci",
]


#: The palette every figure uses (seaborn "deep" order, with the brand green first).
PALETTE = ["#2e7d5b", "#4c72b0", "#dd8452", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd"]
FIGSIZE = (8.0, 4.2)
_BUNDLED = Path(__file__).parent / "fonts"
_FONT_FILES = ("NotoSansCJKsc-Regular.otf", "NotoSansSC-Regular.otf", "NotoSansSC-Regular.ttf")
_SYSTEM_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "SimHei",
                    "Microsoft YaHei", "PingFang SC", "Heiti SC")


@dataclass(frozen=True)
class CJKFont:
    """The CJK font in use: its family name and file."""

    family: str
    path: Path


def _packaged_font_files() -> list[Path]:
    files: list[Path] = []
    spec = importlib.util.find_spec("mplfonts")
    if spec is not None and spec.origin is not None:
        folder = Path(spec.origin).parent / "fonts"
        files += [folder / name for name in _FONT_FILES]
    files += [_BUNDLED / name for name in _FONT_FILES]
    return [f for f in files if f.exists()]


def find_cjk_font() -> CJKFont:
    """Locate a font with simplified Chinese glyphs.

    Looks, in order, in the ``mplfonts`` package, in ``privdomain/fonts/`` and among
    the fonts matplotlib already knows (system fonts).

    Raises
    ------
    RuntimeError
        If no CJK font is found (install ``mplfonts``: ``pip install mplfonts``).
    """
    for f in _packaged_font_files():
        return CJKFont(font_manager.FontProperties(fname=str(f)).get_name(), f)
    known = {f.name: Path(f.fname) for f in font_manager.fontManager.ttflist}
    for family in _SYSTEM_FAMILIES:
        if family in known:
            return CJKFont(family, known[family])
    raise RuntimeError("no CJK font found for Chinese labels: install the `mplfonts` package (pip install mplfonts)")


def register_cjk_font() -> CJKFont:
    """Add the CJK font to matplotlib's font manager (idempotent) and return it."""
    font = find_cjk_font()
    known = {Path(f.fname) for f in font_manager.fontManager.ttflist}
    if font.path not in known:
        font_manager.fontManager.addfont(str(font.path))
    return font


def use_style(context: str = "notebook") -> CJKFont:
    """Apply the project's figure style and the CJK font; returns the font used.

    Parameters
    ----------
    context
        seaborn plotting context (``"notebook"``, ``"paper"``, ``"talk"``).
    """
    import seaborn as sns

    font = register_cjk_font()
    # the CJK font has one weight; matplotlib uses it for bold text and would log each time
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    sns.set_theme(context=context, style="whitegrid", palette=PALETTE)
    mpl.rcParams.update({
        "font.family": "sans-serif",
        "font.sans-serif": [font.family, "DejaVu Sans"],
        "axes.unicode_minus": False,
        "figure.figsize": FIGSIZE,
        "figure.dpi": 100,
        "savefig.dpi": 110,
        "savefig.bbox": "tight",
        "axes.titlesize": 13,
        "axes.titleweight": "normal",  # the CJK font ships one weight
        "axes.titlelocation": "left",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "figure.autolayout": False,
        "figure.constrained_layout.use": True,
    })
    _describe_figures_in_ipython()
    return font


def figure_title(fig) -> str:
    """The text a screen reader is given for a figure: its titles, or else its axis labels.

    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(); _ = ax.set_title("复购率 repurchase rate"); _ = ax.set_xlabel("week")
    >>> figure_title(fig)
    'Figure: 复购率 repurchase rate'
    >>> plt.close(fig)
    """
    parts = []
    if getattr(fig, "_suptitle", None) is not None and fig._suptitle.get_text():
        parts.append(fig._suptitle.get_text())
    for ax in fig.axes:
        for loc in ("left", "center", "right"):
            if ax.get_title(loc):
                parts.append(ax.get_title(loc))
    if not parts:
        parts = [f"{ax.get_ylabel()} by {ax.get_xlabel()}" for ax in fig.axes if ax.get_xlabel() and ax.get_ylabel()]
    text = "; ".join(dict.fromkeys(p.replace("\n", " ").strip() for p in parts if p.strip()))
    return f"Figure: {text}" if text else "Figure without a title"


def _describe_figures_in_ipython() -> None:
    """In a notebook kernel, give each figure's PNG output its title as ``alt`` metadata.

    The HTML reports (:func:`privdomain.reports.render_html`) turn it into the image's
    alt text, so a screen reader reads the figure's title instead of nothing.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    from matplotlib.figure import Figure

    formatter = shell.display_formatter
    if getattr(formatter.format, "_privdomain_alt", False):
        return
    base = formatter.format

    def format_with_alt(obj, include=None, exclude=None):
        data, meta = base(obj, include=include, exclude=exclude)
        if isinstance(obj, Figure) and "image/png" in data:
            meta = {**meta, "image/png": {**meta.get("image/png", {}), "alt": figure_title(obj)}}
        return data, meta

    format_with_alt._privdomain_alt = True  # type: ignore[attr-defined]
    formatter.format = format_with_alt


def label(zh: str, en: str) -> str:
    """A bilingual label, Chinese term first: ``label("复购率", "repurchase rate")``.

    >>> label("复购率", "repurchase rate")
    '复购率 repurchase rate'
    """
    return f"{zh} {en}"


def yuan(value: float, digits: int = 0, sign: bool = False) -> str:
    """Format an amount in yuan with thousands separators and 万 / 亿 for big numbers.

    A negative amount reads ``-¥1,234``; ``sign=True`` also marks a positive one
    (``+¥1,234``, for a difference); NaN reads ``n/a``.

    >>> yuan(1234.5), yuan(123456), yuan(3.2e8), yuan(-12037.744), yuan(50, sign=True)
    ('¥1,234', '¥12.3万', '¥3.20亿', '-¥12,038', '+¥50')
    """
    if value is None or value != value:
        return "n/a"
    mag = abs(value)
    if mag >= 1e8:
        text = f"¥{mag / 1e8:.2f}亿"
    elif mag >= 1e5:
        text = f"¥{mag / 1e4:.1f}万"
    else:
        text = f"¥{mag:,.{digits}f}"
    if value < 0 and text.strip("¥0.,万亿"):  # no "-¥0"
        return "-" + text
    return ("+" if sign and value > 0 else "") + text


#: Currencies shown with a symbol before the amount; every other one with its ISO code after it.
CURRENCY_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€"}


def money(value: float | None, currency: str = "CNY", digits: int = 2, *, compact: bool = False) -> str:
    """Format an amount (in major units: yuan, dollars...) in a dataset's currency.

    CNY, USD and EUR get their symbol before the amount (``¥1,234.50``, ``$1,234.50``,
    ``€1,234.50``), every other currency its ISO 4217 code after it (``1,234.50 GBP``),
    so no amount is ever shown in yuan that is not. ``compact`` shortens big amounts:
    万 / 亿 for CNY (as :func:`yuan`), K / M / B otherwise. None and NaN give ``n/a``.
    The currency of a dataset folder is :func:`currency_of`.

    >>> money(1234.5), money(1234.5, "USD"), money(-1234.5, "eur"), money(1234.5, "GBP")
    ('¥1,234.50', '$1,234.50', '-€1,234.50', '1,234.50 GBP')
    >>> money(123456, "CNY", 0, compact=True), money(2.5e6, "USD", compact=True), money(float("nan"), "USD")
    ('¥12.3万', '$2.50M', 'n/a')
    """
    if value is None or pd.isna(value):
        return "n/a"
    code = str(currency).upper()
    code = {"RMB": "CNY", "YUAN": "CNY", "元": "CNY"}.get(code, code)
    v = float(value)
    sign, a = ("-" if v < 0 else ""), abs(v)
    if compact and code == "CNY" and a >= 1e5:
        body = f"{a / 1e8:.2f}亿" if a >= 1e8 else f"{a / 1e4:.1f}万"
    elif compact and code != "CNY" and a >= 1e6:
        body = f"{a / 1e9:.2f}B" if a >= 1e9 else f"{a / 1e6:.2f}M"
    else:
        body = f"{a:,.{digits}f}"
    symbol = CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {code}"


def money_format(currency: str = "CNY", digits: int = 0, *, compact: bool = False):
    """:func:`money` as a one-argument function, for ``DataFrame.style.format`` and axis labels.

    >>> money_format("USD")(1234.5)
    '$1,234'
    """
    return lambda v: money(v, currency, digits, compact=compact)


def currency_of(data: object) -> str:
    """The ISO currency a dataset folder (or :class:`privdomain.io.Dataset`) declares; CNY for anything else.

    >>> currency_of(None)
    'CNY'
    """
    import os

    from . import io

    if isinstance(data, io.Dataset):
        data = data.path
    if isinstance(data, (str, os.PathLike)) and Path(data).is_dir():
        try:
            return io.vocabulary(data).currency
        except (FileNotFoundError, ValueError):
            return "CNY"
    return "CNY"


def percent(value: float, digits: int = 1) -> str:
    """Format a share as a percentage.

    >>> percent(0.1234)
    '12.3%'
    """
    return f"{100 * value:.{digits}f}%"


def yuan_axis(ax: Axes, axis: str = "y", currency: str = "CNY") -> Axes:
    """Label an axis in money of ``currency`` (yuan: ¥, 万, 亿; :func:`money`)."""
    fmt = FuncFormatter(lambda v, _pos: money(v, currency, 0, compact=True))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)
    return ax


def percent_axis(ax: Axes, axis: str = "y") -> Axes:
    """Label an axis of shares (0-1) as percentages (one decimal when the axis spans < 5 points)."""
    target = ax.yaxis if axis == "y" else ax.xaxis

    def fmt(v: float, _pos: int) -> str:
        lo, hi = target.get_view_interval()
        digits = 1 if abs(hi - lo) < 0.05 else 0
        return f"{100 * v:.{digits}f}%"

    target.set_major_formatter(FuncFormatter(fmt))
    return ax


def new_axes(title: str | None = None, figsize: tuple[float, float] | None = None, *, ax: Axes | None = None) -> Axes:
    """The Axes to draw on: ``ax`` when given, else a fresh figure with one Axes in
    ``figsize`` (default the project's size), titled. The one axes helper of the package.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> a = new_axes(figsize=(4.0, 3.0))
    >>> new_axes(ax=a) is a, [float(v) for v in a.figure.get_size_inches()]
    (True, [4.0, 3.0])
    """
    if ax is None:
        _fig, ax = plt.subplots(figsize=figsize or FIGSIZE)
    if title:
        ax.set_title(title)
    return ax


def bar(data: pd.DataFrame, x: str, y: str, *, hue: str | None = None, ax: Axes | None = None,
        title: str | None = None, horizontal: bool = False, values: str | None = None) -> Axes:
    """Bar chart of ``y`` by ``x`` (optionally split by ``hue``), with value labels.

    ``values`` formats the labels: ``"yuan"``, ``"percent"``, ``"int"`` or None (none).
    """
    import seaborn as sns

    if ax is None:
        rows = data[x].nunique() * (1 + 0.3 * (data[hue].nunique() - 1) if hue else 1)
        ax = new_axes(title, figsize=(FIGSIZE[0], max(FIGSIZE[1], 0.3 * rows + 1.2)) if horizontal else None)
    if title:
        ax.set_title(title)
    if horizontal:
        sns.barplot(data=data, y=x, x=y, hue=hue, ax=ax, orient="h", errorbar=None)
    else:
        sns.barplot(data=data, x=x, y=y, hue=hue, ax=ax, errorbar=None)
    if values:
        fmt = {"yuan": yuan, "percent": percent, "int": lambda v: f"{v:,.0f}"}.get(values, lambda v: f"{v:,.2f}")
        for container in ax.containers:
            ax.bar_label(container, labels=[fmt(v) for v in container.datavalues], padding=2, fontsize=9)
    return ax


def line(data: pd.DataFrame, x: str, y: str, *, hue: str | None = None, ax: Axes | None = None,
         title: str | None = None, marker: str | None = "o") -> Axes:
    """Line chart of ``y`` over ``x`` (one line per ``hue``)."""
    import seaborn as sns

    ax = ax or new_axes(title)
    if title:
        ax.set_title(title)
    sns.lineplot(data=data, x=x, y=y, hue=hue, ax=ax, marker=marker, errorbar=None)
    return ax


def funnel(steps: Sequence[str], counts: Sequence[float], *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Horizontal funnel: one bar per step, labelled with the count and the step-to-step rate
    ``count(k) / count(k-1)`` with its n (the previous step's count) and 95% Wilson interval
    (:func:`step_rates`); a step whose rate rests on too few persons is marked ⚠."""
    ax = ax or new_axes(title, figsize=(9.0, 0.6 * len(steps) + 1.2))
    if title:
        ax.set_title(title)
    counts = [float(c) for c in counts]
    ypos = list(range(len(steps)))[::-1]
    ax.barh(ypos, counts, color=PALETTE[0], height=0.7)
    ax.set_yticks(ypos, labels=list(steps))
    top = max(counts) if counts and max(counts) > 0 else 1.0
    rates = step_rates(steps, counts)
    for i, (y, c) in enumerate(zip(ypos, counts)):
        text = f"{c:,.0f}"
        if i > 0:
            r = rates.iloc[i]
            text += (f"  ({'⚠ ' if r['too_small'] else ''}{percent(r['rate'])} of n = {r['n']:,.0f}, "
                     f"{interval_text(r['low'], r['high'])})" if r["n"] > 0 else "  (n/a: none at the previous step)")
        ax.text(c + 0.01 * top, y, text, va="center", fontsize=8.5)
    ax.set_xlim(0, top * 2.0)
    ax.set_xticks([t for t in ax.get_xticks() if 0 <= t <= top * 1.05])  # no axis beyond the widest bar
    ax.set_xlabel("persons 人数 · step rate = persons / persons at the previous step (n), with its 95% Wilson CI",
                  fontsize=8, color="#555555", loc="left")
    ax.grid(axis="y", visible=False)
    return ax


def sankey(flows: pd.DataFrame, *, value: str = "transitions", top: int | None = 12, ax: Axes | None = None,
           title: str | None = None, source: str = "source", target: str = "target",
           colors: Mapping[str, str] | None = None, order: Sequence[str] | None = None,
           node_width: float = 0.0, labels: Callable[[str], str] | None = None) -> Axes:
    """Two-column Sankey of flows (``source`` -> ``target``): band widths are ``value``.

    The one Sankey of the package: touchpoint flows
    (:func:`privdomain.boards.touchpoints.touchpoint_flows`) and lifecycle stage flows
    (:func:`privdomain.lifecycle.plots.plot_stage_sankey`) are both drawn by it.
    The ``top`` largest flows are drawn (None: all); sources stack on the left, targets
    on the right, largest first or in ``order``. A band takes the colour of its source
    (``colors``, default the palette); ``node_width > 0`` draws the nodes as bars.
    Nodes are labelled ``labels(name)`` (default the name) with their total; labels of
    thin nodes are pushed apart (at least 4% of the height) instead of overlapping.

    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> f = pd.DataFrame({"source": ["oa_push", "oa_push"], "target": ["oa_article_open", "mp_visit"],
    ...                   "transitions": [30, 10]})
    >>> len(sankey(f).patches), len(sankey(f, node_width=0.04).patches)
    (2, 5)
    """
    import numpy as np
    from matplotlib.patches import PathPatch, Rectangle
    from matplotlib.path import Path as MPath

    f = flows[[source, target, value]].rename(columns={source: "source", target: "target", value: "value"})
    f = f[f["value"] > 0]
    if top is not None:
        f = f.nlargest(top, "value")
    f = f.reset_index(drop=True)
    ax = ax or new_axes(title, figsize=(9.0, 5.0))
    if title:
        ax.set_title(title)
    total = float(f["value"].sum())
    if total <= 0:
        ax.axis("off")
        return ax
    gap = 0.02
    rank = {name: i for i, name in enumerate(order or [])}

    def sizes(col: str) -> pd.Series:
        g = f.groupby(col, sort=False)["value"].sum()
        if order is not None:
            return g.loc[sorted(g.index, key=lambda n: rank.get(n, len(rank)))]
        return g.sort_values(ascending=False)

    def starts(sz: pd.Series) -> dict:
        pos, out = 0.0, {}
        for name, size in sz.items():
            out[name] = pos
            pos += size / total + gap
        return out

    src, tgt = sizes("source"), sizes("target")
    s0, t0 = starts(src), starts(tgt)
    s_off, t_off = dict(s0), dict(t0)
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(src.index)}
    colours.update(colors or {})
    x0, x1 = 0.1 + node_width, 0.9 - node_width
    by = (["source", "target"] if order is not None else ["source", "value"])
    rows = f.assign(_s=f["source"].map(rank), _t=f["target"].map(rank)).sort_values(
        ["_s", "_t"] if order is not None else by, ascending=True if order is not None else [True, False])
    for r in rows.itertuples(index=False):
        h = r.value / total
        ys, yt = s_off[r.source], t_off[r.target]
        s_off[r.source] += h
        t_off[r.target] += h
        verts = [(x0, ys), (0.5, ys), (0.5, yt), (x1, yt), (x1, yt + h), (0.5, yt + h), (0.5, ys + h),
                 (x0, ys + h), (x0, ys)]
        codes = [MPath.MOVETO, MPath.CURVE4, MPath.CURVE4, MPath.CURVE4, MPath.LINETO, MPath.CURVE4,
                 MPath.CURVE4, MPath.CURVE4, MPath.CLOSEPOLY]
        ax.add_patch(PathPatch(MPath(verts, codes), facecolor=colours.get(r.source, "#bbbbbb"), alpha=0.55, lw=0))
    height = max(max(s_off.values(), default=0), max(t_off.values(), default=0))
    for names, x, ha, base, bar_x in ((src, 0.09, "right", s0, 0.1), (tgt, 0.91, "left", t0, 0.9 - node_width)):
        last_y = -np.inf
        for name, size in names.items():  # in stacking order, top to bottom
            if node_width > 0:
                ax.add_patch(Rectangle((bar_x, base[name]), node_width, size / total,
                                       facecolor=colours.get(name, "#999999")))
            label_y = max(base[name] + size / total / 2, last_y + 0.04 * height)
            last_y = label_y
            ax.text(x, label_y, f"{labels(name) if labels else name} ({size:,.0f})", ha=ha, va="center", fontsize=8)
    ax.set_xlim(-0.45, 1.45)
    ax.set_ylim(float(np.round(height, 3)) + gap, -gap)
    ax.axis("off")
    return ax


def heatmap(table: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None, fmt: str = ".0%",
            cmap: str = "Greens", annot: bool = True) -> Axes:
    """Annotated heatmap of a wide table (e.g. a cohort retention matrix)."""
    import seaborn as sns

    ax = ax or new_axes(title, figsize=(8.0, 0.4 * len(table) + 2.0))
    if title:
        ax.set_title(title)
    sns.heatmap(table, ax=ax, annot=annot, fmt=fmt, cmap=cmap, cbar=False, linewidths=0.5,
                annot_kws={"fontsize": 8})
    ax.tick_params(axis="y", labelrotation=0)
    if max((len(str(c)) for c in table.columns), default=0) > 6:
        ax.tick_params(axis="x", labelrotation=30)
        for lab in ax.get_xticklabels():
            lab.set_horizontalalignment("right")
    return ax


# ------------------------------------------------------------------ comparisons with n and intervals
SMALL_N = 30
"""A group with fewer persons than this is marked too small to say anything."""
WIDE_INTERVAL = 0.30
"""A rate whose 95% interval is wider than this (30 percentage points) is marked too small too."""
SMALL_RULE = (f"groups with n < {SMALL_N} or a 95% interval wider than {WIDE_INTERVAL * 100:.0f} pp are marked "
              "⚠ and too small to draw a conclusion from")


def rate_intervals(data: pd.DataFrame, successes: str, trials: str) -> pd.DataFrame:
    """A copy of ``data`` with ``rate`` = successes / trials, its 95% Wilson interval
    (``low``, ``high``) and ``too_small`` (n < :data:`SMALL_N` or an interval wider
    than :data:`WIDE_INTERVAL`); the rate is NaN (and too small) where trials is 0.

    >>> rate_intervals(pd.DataFrame({"k": [3, 400], "n": [8, 1000]}), "k", "n")["too_small"].tolist()
    [True, False]
    """
    from statsmodels.stats.proportion import proportion_confint

    out = data.copy()
    k = out[successes].astype("float64").to_numpy()
    n = out[trials].astype("float64").to_numpy()
    safe = n > 0
    low = pd.Series(float("nan"), index=out.index)
    high = low.copy()
    if safe.any():
        lo, hi = proportion_confint(k[safe], n[safe], alpha=0.05, method="wilson")
        low[safe] = lo
        high[safe] = hi
    out["rate"] = pd.Series(k, index=out.index).where(safe) / pd.Series(n, index=out.index).where(safe)
    out["low"] = low
    out["high"] = high
    out["too_small"] = (~safe) | (n < SMALL_N) | ((high - low) > WIDE_INTERVAL).to_numpy()
    return out


def step_rates(steps: Sequence[str], counts: Sequence[float]) -> pd.DataFrame:
    """Funnel step rates with n and 95% Wilson intervals: for step ``k > 1``,
    ``rate = count(k) / count(k-1)`` with ``n = count(k-1)`` (:func:`rate_intervals`);
    the first step has no rate (NaN, n = 0).

    >>> t = step_rates(["visit", "pay"], [200, 50])
    >>> float(t.loc[1, "n"]), float(t.loc[1, "rate"]), round(float(t.loc[1, "low"]), 3)
    (200.0, 0.25, 0.195)
    """
    c = pd.Series([float(v) for v in counts])
    frame = pd.DataFrame({"step": list(steps), "persons": c.to_numpy(),
                          "n": c.shift(1).fillna(0).to_numpy()})
    return rate_intervals(frame, "persons", "n")


def difference_interval(k1: float, n1: float, k0: float, n0: float) -> dict[str, float]:
    """Difference of two rates ``k1/n1 - k0/n0`` in rate units (x 100 = pp) with its 95%
    Newcombe (Wilson-based) interval, and the relative lift ``diff / (k0/n0)``.

    Returns ``diff``, ``low``, ``high``, ``relative`` (NaN when the base rate is 0 or a group is empty) and
    ``too_small``.

    >>> d = difference_interval(60, 100, 40, 100)
    >>> round(d["diff"], 2), d["low"] < 0.2 < d["high"], round(d["relative"], 2)
    (0.2, True, 0.5)
    """
    from statsmodels.stats.proportion import confint_proportions_2indep

    nan = float("nan")
    if n1 <= 0 or n0 <= 0:
        return {"diff": nan, "low": nan, "high": nan, "relative": nan, "too_small": True}
    p1, p0 = k1 / n1, k0 / n0
    lo, hi = confint_proportions_2indep(k1, n1, k0, n0, method="newcomb", compare="diff", alpha=0.05)
    return {"diff": float(p1 - p0), "low": float(lo), "high": float(hi),
            "relative": float((p1 - p0) / p0) if p0 > 0 else nan,
            "too_small": bool(min(n1, n0) < SMALL_N or (hi - lo) > WIDE_INTERVAL)}


def flag_text(value: object) -> str:
    """``"⚠ too small"`` for a true flag, ``""`` otherwise (for table formatters)."""
    return "⚠ too small" if bool(value) else ""


def pp(value: float, digits: int = 1, sign: bool = True) -> str:
    """A difference of rates in percentage points: ``0.063`` -> ``"+6.3 pp"``; ``"n/a"`` for NaN."""
    if value is None or value != value:
        return "n/a"
    return f"{value * 100:{'+' if sign else ''}.{digits}f} pp"


def interval_text(low: float, high: float, unit: str = "percent", digits: int = 1) -> str:
    """``"95% CI 41.2% to 55.0%"`` (``unit`` = ``"percent"``) or ``"95% CI -2.1 pp to +4.0 pp"`` (``"pp"``)."""
    if low != low or high != high:
        return "95% CI n/a"
    if unit == "pp":
        return f"95% CI {pp(low, digits)} to {pp(high, digits)}"
    return f"95% CI {percent(low, digits)} to {percent(high, digits)}"


def small_warning(table: pd.DataFrame, label: str | Sequence[str], flag: str = "too_small", n: str = "n") -> str:
    """A Markdown warning naming the rows of ``table`` flagged ``flag`` (empty when none),
    with the rule (:data:`SMALL_RULE`)."""
    rows = table[table[flag].astype(bool)]
    if rows.empty:
        return ""
    cols = [label] if isinstance(label, str) else list(label)
    names = ", ".join(" / ".join(str(r[c]) for c in cols) + (f" (n = {int(r[n]):,})" if n in rows and r[n] == r[n]
                                                           else "") for _, r in rows.iterrows())
    return f"⚠ **Too small to say anything:** {names}. Rule: {SMALL_RULE}."


def bar_ci(data: pd.DataFrame, x: str, y: str, low: str = "low", high: str = "high", *, hue: str | None = None,
           n: str | None = "n", flag: str | None = "too_small", ax: Axes | None = None, title: str | None = None,
           values: str | None = "percent") -> Axes:
    """Bars of ``y`` by ``x`` (grouped by ``hue``) with 95% error bars from ``low``/``high``,
    each labelled with its value and ``n``; bars flagged ``flag`` are hatched and labelled ⚠.

    Rows with a NaN ``y`` are drawn as empty slots labelled ``n/a``.
    """
    import numpy as np

    xs = list(dict.fromkeys(data[x].tolist()))
    hs = list(dict.fromkeys(data[hue].tolist())) if hue else [None]
    if ax is None:
        ax = new_axes(title, figsize=(max(FIGSIZE[0], 0.65 * len(xs) * len(hs) + 2), FIGSIZE[1]))
    elif title:
        ax.set_title(title)
    width = 0.8 / len(hs)
    fmt = {"yuan": yuan, "percent": percent, "int": lambda v: f"{v:,.0f}"}.get(values or "", lambda v: f"{v:,.2f}")
    for j, h in enumerate(hs):
        rows = data[data[hue] == h] if hue else data
        rows = rows.set_index(x).reindex(xs)
        pos = np.arange(len(xs)) - 0.4 + width * (j + 0.5)
        v = rows[y].astype(float).to_numpy()
        lo = np.clip(v - rows[low].astype(float).to_numpy(), 0, None)
        hi = np.clip(rows[high].astype(float).to_numpy() - v, 0, None)
        small = (rows[flag].astype("boolean").fillna(True).astype(bool).to_numpy() if flag and flag in rows
                 else np.zeros(len(xs), bool))
        bars = ax.bar(pos, np.nan_to_num(v), width=width * 0.95, color=PALETTE[j % len(PALETTE)],
                      label=str(h) if hue else None, yerr=[np.nan_to_num(lo), np.nan_to_num(hi)], capsize=3,
                      error_kw={"elinewidth": 1, "ecolor": "#333333"})
        for b, s in zip(bars, small):
            if s:
                b.set_hatch("//")
                b.set_alpha(0.5)
        labels = []
        for i in range(len(xs)):
            txt = "n/a" if v[i] != v[i] else fmt(v[i])
            if n and n in rows:
                cnt = rows[n].iloc[i]
                txt += f"\nn={int(cnt):,}" if cnt == cnt else ""
            labels.append(("⚠ " if small[i] else "") + txt)
        tops = np.fmax(np.nan_to_num(v), np.nan_to_num(rows[high].astype(float).to_numpy()))
        for b, top_i, text in zip(bars, tops, labels):  # above the error bar, not on it
            ax.annotate(text, (b.get_x() + b.get_width() / 2, top_i), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8)
    ax.set_xticks(np.arange(len(xs)), [str(s) for s in xs])
    top = np.nanmax(data[high].astype(float).to_numpy()) if len(data) else 1.0
    upper = (top if top == top else 1.0) * 1.3 + 1e-9
    ax.set_ylim(0, min(upper, 1.15) if values == "percent" else upper)
    if hue:
        ax.legend(title=hue, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.text(1.01, 0.0, f"bars: 95% CI · ⚠ hatched: n < {SMALL_N} or CI > {WIDE_INTERVAL * 100:.0f} pp",
            transform=ax.transAxes, rotation=90, fontsize=7, color="#555555", va="bottom", ha="left")
    return ax


def upset(overlap, *, top: int | None = 20, title: str | None = None, min_persons: int = 1):
    """An UpSet chart of segment overlaps: intersection sizes, set sizes and the membership matrix.

    ``overlap`` is :func:`privdomain.audience.overlap`'s result (or its ``intersections``
    frame: one boolean column per segment, ``persons`` and ``degree``). The top panel has
    one bar per combination of segments with the persons in **exactly** those segments
    (labelled with n), the largest ``top`` first; the dots below mark the segments of each
    combination; the left panel has each segment's size (labelled with n). Bars and
    labels are the table's counts, unrounded.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.axes`` = [intersection bars, matrix, set sizes].

    Examples
    --------
    >>> import numpy as np
    >>> from privdomain.audience import Segment, overlap
    >>> ov = overlap({"a": Segment(np.array([1, 2, 3]), "a", 9), "b": Segment(np.array([3, 4]), "b", 9)})
    >>> fig = upset(ov)
    >>> [float(p.get_height()) for p in fig.axes[0].patches]
    [2.0, 1.0, 1.0]
    """
    import numpy as np

    inter = getattr(overlap, "intersections", overlap)
    names = [c for c in inter.columns if c not in ("persons", "degree")]
    rows = inter[inter["persons"] >= min_persons]
    rows = rows.sort_values(["persons", "degree"], ascending=[False, True], kind="stable")
    if top is not None:
        rows = rows.head(top)
    member = rows[names].astype(bool).to_numpy()
    counts = rows["persons"].astype(float).to_numpy()
    sizes = (inter[names].astype(bool).to_numpy() * inter["persons"].to_numpy()[:, None]).sum(axis=0)
    k, m = len(rows), len(names)
    fig = plt.figure(figsize=(max(6.0, 0.55 * k + 3.5), 2.6 + 0.38 * m + 1.2))
    grid = fig.add_gridspec(2, 2, width_ratios=[1.0, max(2.0, 0.55 * k)], height_ratios=[2.6, 0.38 * m + 0.2],
                            wspace=0.02, hspace=0.05)
    ax_bar = fig.add_subplot(grid[0, 1])
    ax_mat = fig.add_subplot(grid[1, 1], sharex=ax_bar)
    ax_set = fig.add_subplot(grid[1, 0], sharey=ax_mat)
    x = np.arange(k)
    bars = ax_bar.bar(x, counts, color=PALETTE[0], width=0.6)
    ax_bar.bar_label(bars, labels=[f"{c:,.0f}" for c in counts], padding=2, fontsize=8)
    ax_bar.set_ylabel("persons in exactly these segments")
    ax_bar.set_ylim(0, (counts.max() if k else 1.0) * 1.18 + 1e-9)
    ax_bar.tick_params(axis="x", bottom=False, labelbottom=False)
    ax_bar.grid(axis="x", visible=False)
    if title:
        ax_bar.set_title(title)
    y = np.arange(m)[::-1]
    for i in range(k):
        on = y[member[i]]
        ax_mat.scatter(np.full(m, i), y, s=40, color="#dddddd", zorder=1)
        if len(on):
            ax_mat.scatter(np.full(len(on), i), on, s=40, color="#333333", zorder=2)
            ax_mat.plot([i, i], [on.min(), on.max()], color="#333333", lw=1.5, zorder=2)
    ax_mat.set_yticks(y, labels=names)
    ax_mat.tick_params(axis="y", left=False, labelleft=False, right=False)
    ax_mat.set_xticks([])
    ax_mat.set_ylim(-0.6, m - 0.4)
    ax_mat.grid(False)
    for side in ("top", "right", "left", "bottom"):
        ax_mat.spines[side].set_visible(False)
    sb = ax_set.barh(y, sizes, color=PALETTE[1 % len(PALETTE)], height=0.6)
    ax_set.bar_label(sb, labels=[f"{s:,.0f}" for s in sizes], padding=2, fontsize=8)
    ax_set.invert_xaxis()
    ax_set.set_yticks(y, labels=names)
    ax_set.yaxis.tick_right()
    ax_set.set_xlabel("segment size")
    ax_set.grid(axis="y", visible=False)
    return fig
