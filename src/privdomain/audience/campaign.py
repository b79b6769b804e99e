"""The ROI of a randomised audience campaign (retargeting) from its arms, and the ratio of two.

A campaign shown to the ``treatment`` arm of an experiment and withheld from its
``holdout`` (the ``assignments`` table) is measured by the revenue the arms make in the
campaign's window: the treated persons' mean revenue minus the holdout's is the
incremental revenue per treated person, and

.. math:: \\widehat{ROI} = \\frac{n_T\\,(\\bar y_T - \\bar y_H)}{\\text{spend}},\\qquad
          se = \\frac{n_T}{\\text{spend}}\\sqrt{s_T^2/n_T + s_H^2/n_H}

(Welch's standard error, a normal 95% interval). The ratio of two campaigns' ROIs gets
a delta-method interval on the log scale, which needs both estimates positive and away
from zero (else its bounds are NaN).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import events as events_layer
from .._days import day, raw_events
from ..backend import TableLike, execute
from ..contract import events_input
from ..errors import UsageError
from ..schema import PURCHASE

__all__ = ["campaign_roi", "roi_ratio"]

_Z = 1.959963984540054


@events_input
def campaign_roi(events: TableLike, experiment: str, campaign_id: int, *, con: Any | None = None) -> pd.DataFrame:
    """Incremental revenue and ROI of a randomised campaign, with 95% intervals.

    Parameters
    ----------
    events
        A dataset (folder or :class:`privdomain.io.Dataset`) with ``events``,
        ``assignments`` (``experiment``'s arms ``treatment`` / ``holdout``) and
        ``campaigns`` (the campaign's ``start``, ``end`` and ``spend_fen``).
    experiment, campaign_id
        The experiment holding the arms and the campaign whose window and spend count.

    Returns
    -------
    pandas.DataFrame
        One row: ``experiment``, ``n_treated``, ``n_holdout``, ``revenue_treated`` and
        ``revenue_holdout`` (mean revenue per person in the window, fen),
        ``incremental_fen`` (per treated person) with ``incremental_lo/hi``,
        ``spend_fen``, ``roi`` with ``roi_lo``/``roi_hi`` (incremental revenue over spend).

    Examples
    --------
    >>> import tempfile
    >>> from privdomain.simulate import simulate
    >>> ds = simulate("sportswear", persons=800, seed=1, out=tempfile.mkdtemp(), truth=False)
    >>> r = campaign_roi(ds, "retarget_lookalike", 900).iloc[0]
    >>> bool(r["n_treated"] > 0 and r["roi_lo"] < r["roi"] < r["roi_hi"])
    True
    """
    asg = events_layer.table(events, "assignments", con=con)
    arms = execute(asg.filter(asg.experiment == experiment).select("person_id", "arm"), con=con)
    if arms.empty:
        raise UsageError(f"campaign_roi: no assignments for experiment {experiment!r}")
    camps = events_layer.table(events, "campaigns", con=con)
    camp = execute(camps.filter(camps.campaign_id == int(campaign_id)), con=con)
    if camp.empty:
        raise UsageError(f"campaign_roi: no campaign {campaign_id!r} in campaigns")
    start, end = pd.Timestamp(camp["start"].iloc[0]), pd.Timestamp(camp["end"].iloc[0])
    spend = float(camp["spend_fen"].iloc[0])
    d0 = (start.tz_localize(None) if start.tzinfo else start).normalize()
    d1 = (end.tz_localize(None) if end.tzinfo else end).normalize()
    s, e = int((d0 - pd.Timestamp("1970-01-01")).days), int((d1 - pd.Timestamp("1970-01-01")).days)
    t = raw_events(events, con, ("person_id", "ts", "touchpoint", "amount_fen"))
    t = t.filter(t.touchpoint == PURCHASE)
    t = t.mutate(_d=day(t.ts))
    t = t.filter((t._d >= s) & (t._d < e))
    rev = execute(t.group_by("person_id").aggregate(revenue=t.amount_fen.sum()), con=con)
    y = arms["person_id"].map(rev.set_index("person_id")["revenue"]).fillna(0).to_numpy(dtype="float64")
    treat = (arms["arm"] == "treatment").to_numpy()
    yt, yh = y[treat], y[~treat]
    nt, nh = len(yt), len(yh)
    if nt < 2 or nh < 2:
        raise UsageError(f"campaign_roi: {experiment!r} needs at least 2 persons per arm (treated {nt}, holdout {nh})")
    diff = yt.mean() - yh.mean()
    se = float(np.sqrt(yt.var(ddof=1) / nt + yh.var(ddof=1) / nh))
    roi = nt * diff / spend
    out = pd.DataFrame({
        "experiment": [experiment], "n_treated": [nt], "n_holdout": [nh],
        "revenue_treated": [yt.mean()], "revenue_holdout": [yh.mean()],
        "incremental_fen": [diff], "incremental_lo": [diff - _Z * se], "incremental_hi": [diff + _Z * se],
        "spend_fen": [spend], "roi": [roi], "roi_lo": [nt * (diff - _Z * se) / spend],
        "roi_hi": [nt * (diff + _Z * se) / spend], "roi_se": [nt * se / spend],
    })
    return out


def roi_ratio(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, float]:
    """``roi_a / roi_b`` of two :func:`campaign_roi` rows, with a delta-method 95% interval (log scale).

    .. math:: se(\\log R) = \\sqrt{(se_a/roi_a)^2 + (se_b/roi_b)^2}

    >>> a = pd.DataFrame({"roi": [3.0], "roi_se": [0.3]}); b = pd.DataFrame({"roi": [2.0], "roi_se": [0.2]})
    >>> {k: round(v, 3) for k, v in roi_ratio(a, b).items()}
    {'ratio': 1.5, 'lo': 1.137, 'hi': 1.979}
    """
    ra, rb = float(a["roi"].iloc[0]), float(b["roi"].iloc[0])
    sa, sb = float(a["roi_se"].iloc[0]), float(b["roi_se"].iloc[0])
    ratio = ra / rb if rb else float("nan")
    if ra <= 0 or rb <= 0:
        return {"ratio": ratio, "lo": float("nan"), "hi": float("nan")}
    sl = float(np.hypot(sa / ra, sb / rb))
    return {"ratio": ratio, "lo": ratio * float(np.exp(-_Z * sl)), "hi": ratio * float(np.exp(_Z * sl))}
