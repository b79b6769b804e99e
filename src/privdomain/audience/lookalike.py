"""Lookalike expansion (相似人群扩展): score every person by their resemblance to a seed audience.

A logistic regression (statsmodels GLM, binomial, with a small ridge penalty so that a
perfectly separating tag cannot blow up) of "in the seed" on the tags; the fitted
probability ranks the persons outside the seed. The default features are the basic
attributes and the behaviour tags; the purchase-derived tags (stage, RFM segment, buyer
type, purchase days and the recency of order/pay/refund) are left out, since a seed of
buyers is defined by them and they would only find the seed again.

:func:`lift_by_decile` cuts the scores into deciles and compares an outcome (a later
purchase, or a simulator truth column) across them, with Wilson intervals for rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm

from ..boards.funnel import wilson_interval
from ..errors import UsageError
from ..schema import ORDER_TOUCHPOINTS
from .select import Segment
from .tags import WINDOWS, id_array, touchpoint_column

__all__ = ["Lookalike", "default_features", "lookalike", "lift_by_decile"]

_PURCHASE_TAGS = ("stage", "rfm_segment", "buyer_type", "repeat_buyer", "purchase_days")


def default_features(tags: pd.DataFrame) -> list[str]:
    """The basic and behaviour tags of ``tags`` (purchase-derived tags left out)."""
    behaviour = ["days_since_active", *(f"{k}_{w}d" for w in WINDOWS for k in ("touchpoints", "channels")),
                 "preferred_channel", "article_reader", "live_viewer", "guide_added"]
    skip = {touchpoint_column(tp) for tp in ORDER_TOUCHPOINTS} | {"days_since_active"}
    recency = [c for c in tags.columns if str(c).startswith("days_since_") and c not in skip]
    basic = ("gender", "age_band", "city_tier", "device")  # the low-cardinality attributes
    return [c for c in (*basic, *behaviour, *recency) if c in tags.columns]


def _design(tags: pd.DataFrame, features: Sequence[str], max_levels: int = 30) -> pd.DataFrame:
    cols = {}
    for f in features:
        s = tags[f]
        name = str(f)
        if f.startswith("days_since_"):  # recency: a "ever" flag and a capped, scaled recency
            v = pd.to_numeric(s, errors="coerce").astype("float64")
            cols[f"{name}:ever"] = v.notna().astype("float64")
            cols[name] = (v.fillna(365).clip(upper=365) / 365.0)
        elif pd.api.types.is_bool_dtype(s.dtype):
            cols[name] = s.astype("float64")
        elif pd.api.types.is_numeric_dtype(s.dtype) and f != "city_tier":
            v = s.astype("float64")
            sd = v.std()
            cols[name] = (v - v.mean()) / sd if sd and np.isfinite(sd) else v * 0
        else:
            levels = s.astype(object).where(s.notna(), "(none)").astype(str)
            top = levels.value_counts().index[:max_levels]
            for lv in sorted(top)[1:]:  # first level is the reference
                cols[f"{name}={lv}"] = (levels == lv).astype("float64")
    X = pd.DataFrame(cols, index=tags.index)
    X = X.loc[:, X.std() > 0]
    return sm.add_constant(X, has_constant="add")


@dataclass(frozen=True)
class Lookalike:
    """A fitted lookalike: ``scores`` (``person_id``, ``score``, ``in_seed``, ``decile``: 1 = most
    alike, among persons outside the seed) and the model's ``params``."""

    scores: pd.DataFrame
    params: pd.Series = field(repr=False)
    features: tuple[str, ...] = ()

    def top(self, n: int) -> Segment:
        """The ``n`` best-scored persons outside the seed, as a segment."""
        out = self.scores[~self.scores["in_seed"]].nlargest(n, "score", keep="first")
        return Segment(np.sort(id_array(out["person_id"])), f"lookalike top {n}",
                       int((~self.scores["in_seed"]).sum()))


def lookalike(tags: pd.DataFrame, seed: Segment, *, features: Sequence[str] | None = None,
              alpha: float = 1e-3) -> Lookalike:
    """Fit "in the seed" on the tags and score every person of ``tags``.

    Parameters
    ----------
    tags
        From :func:`privdomain.audience.tags`.
    seed
        The seed audience (e.g. recent buyers).
    features
        Tag columns to use (default :func:`default_features`).
    alpha
        Ridge penalty of the regression (on the scaled features).
    """
    if not isinstance(seed, Segment):
        raise UsageError(f"lookalike: seed must be a Segment, got {type(seed).__name__}")
    feats = list(features) if features is not None else default_features(tags)
    for f in feats:
        if f not in tags.columns:
            raise UsageError.unknown("tag", f, [str(c) for c in tags.columns])
    y = tags["person_id"].isin(seed.person_ids).to_numpy(dtype="float64")
    if y.sum() == 0 or y.sum() == len(y):
        raise UsageError(f"lookalike: the seed holds {int(y.sum())} of the {len(y)} tagged persons; "
                         "it needs some persons in and some out")
    X = _design(tags, feats)
    fit = sm.GLM(y, X.to_numpy(), family=sm.families.Binomial()).fit_regularized(alpha=alpha, L1_wt=0.0)
    params = pd.Series(np.asarray(fit.params), index=X.columns)
    score = 1.0 / (1.0 + np.exp(-(X.to_numpy() @ params.to_numpy())))
    scores = pd.DataFrame({"person_id": id_array(tags["person_id"]), "score": score,
                           "in_seed": y.astype(bool)})
    out = ~scores["in_seed"]
    rank = scores.loc[out, "score"].rank(method="first", ascending=False)
    scores["decile"] = pd.array([pd.NA] * len(scores), dtype="Int64")
    scores.loc[out, "decile"] = (np.ceil(rank / len(rank) * 10)).astype("int64").clip(1, 10).to_numpy()
    return Lookalike(scores, params, tuple(feats))


def lift_by_decile(model: Lookalike, outcome: pd.Series | pd.DataFrame, *, value: str | None = None) -> pd.DataFrame:
    """An outcome by score decile (persons outside the seed), with lift over the average.

    Parameters
    ----------
    outcome
        Person ids with the outcome (a Series of ids: a rate per decile, with Wilson 95%
        intervals), or a frame with ``person_id`` and the numeric column ``value`` (a
        mean per decile; e.g. the simulator's ``truth/persons`` ``purchase_rate``).

    Returns
    -------
    pandas.DataFrame
        ``decile``, ``persons``, ``rate`` (or ``mean``), ``lift`` (over all deciles) and,
        for ids, ``positives``, ``rate_lo``, ``rate_hi``, ``lift_lo``, ``lift_hi``.
    """
    sc = model.scores[~model.scores["in_seed"]]
    if isinstance(outcome, pd.DataFrame):
        if value is None or value not in outcome.columns or "person_id" not in outcome.columns:
            raise UsageError(f"lift_by_decile: a frame outcome needs person_id and value= one of its columns "
                             f"(got value={value!r})")
        v = sc["person_id"].map(outcome.set_index("person_id")[value])
        g = sc.assign(_v=v.to_numpy(dtype="float64")).groupby("decile")["_v"]
        out = pd.DataFrame({"persons": g.size(), "mean": g.mean()}).reset_index()
        out["lift"] = out["mean"] / float(np.nanmean(v.to_numpy(dtype="float64")))
        return out
    hit = sc["person_id"].isin(id_array(pd.Series(outcome))).to_numpy()
    g = sc.assign(_h=hit).groupby("decile")["_h"]
    out = pd.DataFrame({"persons": g.size(), "positives": g.sum().astype("int64")}).reset_index()
    out["rate"] = out["positives"] / out["persons"]
    lo, hi = wilson_interval(out["positives"], out["persons"])
    base = hit.mean() if len(hit) else float("nan")
    out["rate_lo"], out["rate_hi"] = lo, hi
    out["lift"], out["lift_lo"], out["lift_hi"] = out["rate"] / base, lo / base, hi / base
    return out
