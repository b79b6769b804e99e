"""Which touchpoints go with purchase: logistic regression with odds ratios.

``logit P(purchased) = b0 + sum_k b_k touch_k + covariates' g``; for each
touchpoint the odds ratio ``exp(b_k)`` with the interval
``exp(b_k +/- z se_k)`` (sandwich HC0 standard errors).

These are **associations**, not effects. Persons who read articles, join groups
and chat with a guide are the engaged ones, who buy more whatever they are
shown, so an odds ratio above 1 does not mean the touchpoint caused purchases.
:func:`privdomain.experiments.synthetic.simulate_touchpoints` builds data where
the truth is known: the naive regression finds large odds ratios for
touchpoints with no effect at all, and only the adjustment for the confounder
(``engagement``, unobserved in real data) recovers the truth. Effects need
randomised campaigns (:mod:`privdomain.experiments.randomised`) or a credible
quasi-experiment (:mod:`privdomain.experiments.did`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from ..backend import require_columns
from ._tidy import require_finite, tidy

__all__ = ["ASSOCIATION_NOTE", "purchase_drivers", "confounding_table"]


ASSOCIATION_NOTE = (
    "odds ratios are associations between touchpoints and purchase, not causal effects: "
    "engaged persons both meet more touchpoints and buy more"
)


def purchase_drivers(
    df: pd.DataFrame,
    outcome: str = "purchased",
    features: Sequence[str] | None = None,
    *,
    covariates: Sequence[str] = (),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Odds ratios of purchase for each touchpoint (and covariate), from one logistic regression.

    Parameters
    ----------
    df
        One row per person (e.g. :func:`privdomain.experiments.data.touchpoint_frame`).
    outcome
        0/1 outcome column.
    features
        Touchpoint columns (default: every column except ``person_id``, the
        outcome and the covariates). Columns that never vary, or repeat an earlier
        column exactly, cannot be estimated: they are left out and listed with
        the reason in ``attrs["dropped"]``.
    covariates
        Adjustment columns (profile, pre-period activity); reported too.

    Returns
    -------
    pandas.DataFrame
        One row per term: the tidy columns on the log-odds scale (``estimate`` =
        ``b_k``) plus ``odds_ratio``, ``or_ci_low``, ``or_ci_high``, ``kind``
        (``"touchpoint"`` / ``"covariate"``); sorted by odds ratio, descending.
        ``attrs["note"]`` says these are associations; ``attrs["dropped"]``;
        ``attrs["converged"]`` is False when the fit did not converge (a touchpoint
        met almost only by buyers or only by non-buyers: separation).

    Examples
    --------
    >>> from privdomain.experiments.synthetic import simulate_touchpoints
    >>> df = simulate_touchpoints(3000, seed=1)
    >>> r = purchase_drivers(df, features=["oa_article_open", "group_join", "wecom_chat", "live_view", "sms"])
    >>> bool(r.set_index("term").loc["group_join", "odds_ratio"] > 1.3)   # no true effect, confounded
    True
    """
    covariates = list(covariates)
    require_columns(df, [outcome, *covariates], "drivers frame")
    if features is None:
        features = [c for c in df.columns if c not in {"person_id", outcome, *covariates}]
    features = list(features)
    require_columns(df, features, "drivers frame")
    require_finite(df, [outcome, *features, *covariates], "drivers frame")
    y = df[outcome].to_numpy(dtype=float)
    bad = int(((y != 0) & (y != 1)).sum())
    if bad:
        raise ValueError(f"drivers frame: outcome {outcome!r} must be 0/1: {bad} row(s) break it")
    if y.min() == y.max():
        raise ValueError(f"drivers frame: outcome {outcome!r} never varies: every person has {int(y[0])}")
    dropped = {c: "constant" for c in [*features, *covariates] if df[c].nunique() < 2}
    seen: dict[bytes, str] = {}
    for c in [*features, *covariates]:
        if c in dropped:
            continue
        key = df[c].to_numpy(dtype=float).tobytes()
        if key in seen:  # e.g. product_view and add_to_cart always together: not separable
            dropped[c] = f"identical to {seen[key]}"
        else:
            seen[key] = c
    terms = [c for c in [*features, *covariates] if c not in dropped]
    if not terms:
        raise ValueError("drivers frame: no feature varies across persons")
    X = sm.add_constant(df[terms].to_numpy(dtype=float), has_constant="add")
    try:
        res = sm.Logit(y, X).fit(disp=0, cov_type="HC0", maxiter=200)
    except np.linalg.LinAlgError as err:
        raise ValueError(f"logistic regression failed ({err}): are some features collinear?") from None
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    np_err = np.seterr(over="ignore")  # a near-separated feature has an infinite upper odds ratio: keep inf
    for j, term in enumerate(terms, start=1):
        b, se = float(res.params[j]), float(res.bse[j])
        rows.append({
            "outcome": outcome, "term": term, "method": "logit", "estimate": b, "std_error": se,
            "ci_low": b - z * se, "ci_high": b + z * se, "p_value": float(res.pvalues[j]), "n": len(y),
            "odds_ratio": float(np.exp(b)), "or_ci_low": float(np.exp(b - z * se)),
            "or_ci_high": float(np.exp(b + z * se)),
            "kind": "covariate" if term in covariates else "touchpoint",
            "share_touched": float(df[term].mean()),
        })
    np.seterr(**np_err)
    out = tidy(rows).sort_values("odds_ratio", ascending=False).reset_index(drop=True)
    out.attrs["note"] = ASSOCIATION_NOTE
    out.attrs["dropped"] = dropped
    # False when the likelihood did not converge: usually a touchpoint that (almost) only
    # buyers or only non-buyers met (separation); its odds ratio is then huge or ~0 and unreliable
    out.attrs["converged"] = bool(res.mle_retvals.get("converged", True))
    return out


def confounding_table(
    df: pd.DataFrame,
    truth: dict[str, float],
    *,
    outcome: str = "purchased",
    features: Sequence[str] | None = None,
    adjust_for: Sequence[str] = (),
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Naive odds ratios next to adjusted ones and the true ones: how confounding misleads.

    Fits :func:`purchase_drivers` twice, without and with the confounders
    ``adjust_for`` (known in simulated data, e.g. ``engagement``), and lines the
    odds ratios up against ``truth`` (``{touchpoint: true odds ratio}``, e.g.
    :func:`privdomain.experiments.synthetic.touchpoint_truth`).

    Returns
    -------
    pandas.DataFrame
        ``term, true_or, naive_or, naive_ci_low, naive_ci_high, naive_covers,
        adjusted_or, adjusted_ci_low, adjusted_ci_high, adjusted_covers`` (the
        adjusted columns only when ``adjust_for`` is given).

    Examples
    --------
    >>> from privdomain.experiments.synthetic import simulate_touchpoints, touchpoint_truth
    >>> df, truth = simulate_touchpoints(20000, seed=3), touchpoint_truth()
    >>> t = confounding_table(df, truth, features=list(truth), adjust_for=["engagement"])
    >>> [bool(v) for v in t.set_index("term").loc["group_join", ["naive_covers", "adjusted_covers"]]]
    [False, True]
    """
    features = list(features) if features is not None else list(truth)
    naive = purchase_drivers(df, outcome, features, alpha=alpha).set_index("term")
    out = pd.DataFrame({"term": features})
    out["true_or"] = [truth.get(f, np.nan) for f in features]
    parts = [("naive", naive)]
    if adjust_for:
        parts.append(("adjusted", purchase_drivers(df, outcome, features, covariates=adjust_for, alpha=alpha)
                      .set_index("term")))
    for name, r in parts:
        r = r.reindex(features)
        out[f"{name}_or"] = r["odds_ratio"].to_numpy()
        out[f"{name}_ci_low"] = r["or_ci_low"].to_numpy()
        out[f"{name}_ci_high"] = r["or_ci_high"].to_numpy()
        out[f"{name}_covers"] = (out[f"{name}_ci_low"] <= out["true_or"]) & (out["true_or"] <= out[f"{name}_ci_high"])
    out.attrs["note"] = ASSOCIATION_NOTE
    return out
