"""What the case-study notebooks compute beyond the metric modules: each case's
story, its journeys in brief and its headline figure.

The story of each case (brand, what it did, the figure the trade articles reported,
the journey, what an operator should do next) is text kept in
``notebooks/cases.yaml``; :func:`case_story` reads it. The reported figures are the
articles' (see ``docs/domain.md``), not results of this package.

Examples
--------
>>> import pandas as pd
>>> pt = pd.DataFrame({"path": ["ad > ad > oa", "ad > oa", "oa"], "total_conversions": [2, 1, 0],
...                    "total_conversion_value": [200.0, 50.0, 0.0], "total_null": [5, 3, 9]})
>>> top_paths(pt, n=2)[["path", "conversions"]].values.tolist()
[['ad > oa', 3], ['oa', 0]]
>>> journey_stats(pt)["touches_per_conversion"]
2.6666666666666665
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SEP = " > "


def case_story(case: str, path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The narrative of one case from ``cases.yaml`` (default: the notebooks folder's).

    Raises
    ------
    ValueError
        For a case the file does not describe (the message lists those it does).
    """
    import yaml

    from .reports import notebooks_dir

    path = Path(path) if path else notebooks_dir() / "cases.yaml"
    stories = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if case not in stories:
        raise ValueError(f"{path} has no story for case {case!r}; it has {', '.join(stories)}")
    return {"case": case, **stories[case]}


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
