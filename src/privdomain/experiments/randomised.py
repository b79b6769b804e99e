"""Effects of randomised campaigns from a treatment / holdout split.

All estimators take a tidy per-person frame (one row per person: ``arm``, the
outcome, optional pre-period covariates and a ``segment``), compare every
non-control arm with the control arm and return the tidy frame of
:mod:`privdomain.experiments._tidy` (one row per treatment arm) with extra
columns ``n_treatment``, ``n_control``, ``control_mean``, ``treatment_mean`` and
``relative_lift`` (estimate / control mean).

Estimators
----------
* :func:`difference_in_means`: OLS of the outcome on arm dummies with
  heteroskedasticity-robust (HC1 by default) standard errors. With two arms the
  HC1 variance is ``n/(n-2)`` times Welch's ``s_t^2/n_t + s_c^2/n_c``.
* :func:`cuped`: the same after the CUPED adjustment ``Y - (X - mean X) theta``
  with ``theta`` the pooled regression of ``Y`` on pre-period covariates ``X``
  (Deng, Xu, Kohavi & Walker 2013, "Improving the sensitivity of online
  controlled experiments by utilizing pre-experiment data", WSDM).
* :func:`logit_ame`: logistic regression of a binary outcome on arm dummies and
  covariates; the effect is the average marginal (discrete-change) effect
  ``mean_i F(x_i with arm=a) - mean_i F(x_i with arm=control)``, with a
  delta-method standard error from the sandwich (HC0) covariance.
* :func:`heterogeneous_effects`: any of the above within each segment (e.g. the
  coupon tiers), p-values adjusted for multiple comparisons (Holm or
  Benjamini-Hochberg via ``statsmodels.stats.multitest.multipletests``) and a
  Wald test that the effect is the same in every segment.

Intervals and p-values are normal-theory (z), which is what the large samples
of campaigns call for; coverage is checked by simulation in the tests and in
``benchmarks/bench_experiments_coverage.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ..backend import require_columns
from ._tidy import require_finite, tidy, wald

__all__ = [
    "difference_in_means",
    "relative_lift",
    "ratio_effect",
    "cuped_adjust",
    "cuped",
    "logit_ame",
    "campaign_effects",
    "heterogeneous_effects",
    "heterogeneity_test",
]


_EXTRA = ["n_treatment", "n_control", "control_mean", "treatment_mean", "relative_lift"]


def _arms(df: pd.DataFrame, arm: str, control: str | None) -> tuple[str, list[str]]:
    require_columns(df, [arm], "experiment frame")
    nulls = int(df[arm].isna().sum())
    if nulls:
        raise ValueError(f"experiment frame: column {arm!r} must not be null: {nulls} row(s) break it")
    levels = sorted(pd.unique(df[arm]).tolist(), key=str)
    if control is None:
        found = [c for c in ("holdout", "control") if c in levels]
        if not found:
            raise ValueError(f"cannot tell the control arm among {levels}: pass control=...")
        control = found[0]
    if control not in levels:
        raise ValueError(f"control arm {control!r} not found in column {arm!r}; arms are {levels}")
    treatments = [a for a in levels if a != control]
    if not treatments:
        raise ValueError(f"column {arm!r} holds only the control arm {control!r}: nothing to compare")
    return control, treatments


def _design(df: pd.DataFrame, arm: str, control: str, treatments: list[str]) -> np.ndarray:
    a = df[arm].to_numpy()
    return np.column_stack([np.ones(len(df))] + [(a == t).astype(float) for t in treatments])


def _rows_from_ols(y, X, a, control, treatments, outcome, method, cov_type, alpha, extra=None) -> list[dict]:
    res = sm.OLS(y, X).fit(cov_type=cov_type)
    rows = []
    ctrl = a == control
    for j, t in enumerate(treatments, start=1):
        est, se = float(res.params[j]), float(res.bse[j])
        lo, hi, p = wald(est, se, alpha)
        treat = a == t
        cm = float(np.mean(y[ctrl]))
        rows.append(
            {
                "outcome": outcome,
                "term": t,
                "method": method,
                "estimate": est,
                "std_error": se,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": p,
                "n": int(ctrl.sum() + treat.sum()),
                "n_treatment": int(treat.sum()),
                "n_control": int(ctrl.sum()),
                "control_mean": cm,
                "treatment_mean": float(np.mean(y[treat])),
                "relative_lift": est / cm if cm != 0 else float("nan"),
                **(extra or {}),
            }
        )
    return rows


def difference_in_means(
    df: pd.DataFrame,
    outcome: str,
    *,
    arm: str = "arm",
    control: str | None = None,
    cov_type: str = "HC1",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Difference in mean outcome between each treatment arm and the control arm.

    ``estimate = mean(Y | arm=a) - mean(Y | control)``, from the OLS
    ``Y ~ 1 + sum_a 1{arm=a}`` with robust standard errors (``cov_type`` one of
    statsmodels' ``"HC0"`` ... ``"HC3"``).

    Parameters
    ----------
    df
        One row per person with columns ``arm`` and ``outcome``.
    outcome
        Numeric outcome column (0/1 conversion, revenue in yuan, ...).
    arm
        Arm column.
    control
        Control arm label; by default ``"holdout"`` or ``"control"`` if present.
    cov_type
        statsmodels robust covariance type.
    alpha
        1 - confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per treatment arm: the tidy columns plus ``n_treatment``,
        ``n_control``, ``control_mean``, ``treatment_mean``, ``relative_lift``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"arm": ["treatment"] * 4 + ["holdout"] * 4,
    ...                    "converted": [1, 1, 0, 1, 0, 1, 0, 0]})
    >>> r = difference_in_means(df, "converted")
    >>> r["term"].iloc[0], round(float(r["estimate"].iloc[0]), 6), int(r["n"].iloc[0])
    ('treatment', 0.5, 8)
    """
    control, treatments = _arms(df, arm, control)
    require_columns(df, [outcome], "experiment frame")
    require_finite(df, [outcome], "experiment frame")
    y = df[outcome].to_numpy(dtype=float)
    X = _design(df, arm, control, treatments)
    out = _rows_from_ols(y, X, df[arm].to_numpy(), control, treatments, outcome, f"dim_{cov_type.lower()}", cov_type, alpha)
    return tidy(out, _EXTRA)


def relative_lift(
    df: pd.DataFrame,
    outcome: str,
    *,
    arm: str = "arm",
    control: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Relative lift ``mean(Y | arm=a) / mean(Y | control) - 1`` (e.g. "repurchase +35%").

    The interval is computed on the log scale and transformed back,
    ``exp(log(m_a / m_c) +/- z se_log) - 1`` with the delta-method
    ``se_log^2 = s_a^2 / (n_a m_a^2) + s_c^2 / (n_c m_c^2)``, which keeps it
    positive-side asymmetric as a ratio should be; ``p_value`` tests
    ``log(m_a / m_c) = 0``; ``std_error`` is the delta-method standard error of
    the lift itself, ``(m_a / m_c) se_log``. Needs positive arm means.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"arm": ["treatment"] * 4 + ["holdout"] * 4,
    ...                    "repurchased": [1, 1, 0, 1, 0, 1, 0, 1]})
    >>> round(float(relative_lift(df, "repurchased")["estimate"].iloc[0]), 3)
    0.5
    """
    control, treatments = _arms(df, arm, control)
    require_columns(df, [outcome], "experiment frame")
    require_finite(df, [outcome], "experiment frame")
    y = df[outcome].to_numpy(dtype=float)
    a = df[arm].to_numpy()
    z = stats.norm.ppf(1 - alpha / 2)
    yc = y[a == control]
    rows = []
    for t in treatments:
        yt = y[a == t]
        mt, mc = yt.mean(), yc.mean()
        if mt <= 0 or mc <= 0:
            raise ValueError(f"relative_lift: mean {outcome!r} must be > 0 in both arms ({t}: {mt}, {control}: {mc})")
        se_log = float(np.sqrt(yt.var(ddof=1) / (len(yt) * mt**2) + yc.var(ddof=1) / (len(yc) * mc**2)))
        log_r = float(np.log(mt / mc))
        rows.append({
            "outcome": outcome, "term": t, "method": "relative_log_delta", "estimate": mt / mc - 1,
            "std_error": mt / mc * se_log, "ci_low": float(np.exp(log_r - z * se_log) - 1),
            "ci_high": float(np.exp(log_r + z * se_log) - 1),
            "p_value": float(2 * stats.norm.sf(abs(log_r / se_log))) if se_log > 0 else float("nan"),
            "n": len(yt) + len(yc), "n_treatment": len(yt), "n_control": len(yc), "control_mean": float(mc),
            "treatment_mean": float(mt), "relative_lift": mt / mc - 1,
        })
    return tidy(rows, _EXTRA)


def ratio_effect(
    df: pd.DataFrame,
    numerator: str,
    denominator: str,
    *,
    arm: str = "arm",
    control: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Difference between arms of a ratio metric ``sum(numerator) / sum(denominator)`` per arm.

    For metrics whose unit is not the randomised person: clicks per article open,
    orders per visit, GMV per buyer. Persons are the independent units, so the
    variance of each arm's ratio ``R = mean(N) / mean(D)`` comes from the delta
    method over persons (Deng, Knoblich & Lu 2018, "Applying the delta method in
    metric analytics", KDD)::

        var(R) = (var(N) - 2 R cov(N, D) + R^2 var(D)) / (n mean(D)^2)

    which equals the cluster-robust (by person) variance of an event-level
    regression. ``estimate = R_a - R_control``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"arm": ["treatment"] * 3 + ["holdout"] * 3,
    ...                    "clicks": [2, 1, 3, 1, 0, 1], "opens": [4, 2, 4, 4, 2, 4]})
    >>> round(float(ratio_effect(df, "clicks", "opens")["estimate"].iloc[0]), 3)
    0.4
    """
    control, treatments = _arms(df, arm, control)
    require_columns(df, [numerator, denominator], "experiment frame")
    require_finite(df, [numerator, denominator], "experiment frame")
    a = df[arm].to_numpy()
    num = df[numerator].to_numpy(dtype=float)
    den = df[denominator].to_numpy(dtype=float)

    def ratio(mask):
        x, d = num[mask], den[mask]
        n, md = mask.sum(), d.mean()
        if md <= 0:
            raise ValueError(f"ratio_effect: {denominator!r} sums to 0 in an arm: the ratio is undefined")
        r = x.mean() / md
        c = np.cov(x, d, ddof=1) if n > 1 else np.zeros((2, 2))
        return r, (c[0, 0] - 2 * r * c[0, 1] + r**2 * c[1, 1]) / (n * md**2), int(n), float(d.sum())

    rc, vc, nc, dc = ratio(a == control)
    rows = []
    for t in treatments:
        rt, vt, nt, dt = ratio(a == t)
        est, se = rt - rc, float(np.sqrt(vt + vc))
        lo, hi, p = wald(est, se, alpha)
        rows.append({
            "outcome": f"{numerator}/{denominator}", "term": t, "method": "ratio_delta", "estimate": est,
            "std_error": se, "ci_low": lo, "ci_high": hi, "p_value": p, "n": nt + nc, "n_treatment": nt,
            "n_control": nc, "control_mean": rc, "treatment_mean": rt,
            "relative_lift": est / rc if rc != 0 else float("nan"),
            "denominator_treatment": dt, "denominator_control": dc,
        })
    return tidy(rows, _EXTRA)


def cuped_adjust(df: pd.DataFrame, outcome: str, covariates: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """CUPED-adjusted outcome ``Y - (X - mean X) theta`` and ``theta``.

    ``theta`` is the slope of the pooled least-squares regression of ``Y`` on
    the covariates (with an intercept); with one covariate it is
    ``cov(Y, X) / var(X)``. The adjusted outcome has the same mean as ``Y`` and,
    because ``X`` is measured before assignment, the same expected difference
    between arms.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"y": [1.0, 2.0, 3.0, 5.0], "x": [1.0, 2.0, 3.0, 4.0]})
    >>> adj, theta = cuped_adjust(df, "y", ["x"])
    >>> round(float(theta[0]), 2), round(float(adj.mean()), 2)
    (1.3, 2.75)
    """
    covariates = list(covariates)
    if not covariates:
        raise ValueError("cuped needs at least one pre-period covariate")
    require_columns(df, [outcome, *covariates], "experiment frame")
    require_finite(df, [outcome, *covariates], "experiment frame")
    y = df[outcome].to_numpy(dtype=float)
    Xc = df[covariates].to_numpy(dtype=float)
    Xc = Xc - Xc.mean(axis=0)
    theta, *_ = np.linalg.lstsq(Xc, y - y.mean(), rcond=None)
    return y - Xc @ theta, theta


def cuped(
    df: pd.DataFrame,
    outcome: str,
    covariates: Sequence[str],
    *,
    arm: str = "arm",
    control: str | None = None,
    cov_type: str = "HC1",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Difference in means of the CUPED-adjusted outcome (variance reduction with pre-period data).

    See :func:`cuped_adjust`. The extra column ``variance_reduction`` is
    ``1 - var(Y_adj) / var(Y)``, the share of outcome variance the covariates
    remove (the interval shrinks by ``sqrt(1 - variance_reduction)``).

    Examples
    --------
    >>> from privdomain.experiments.synthetic import simulate_campaign
    >>> df = simulate_campaign(4000, effect=0.05, seed=3)
    >>> r = cuped(df, "converted", ["pre_purchases"])
    >>> bool(r["variance_reduction"].iloc[0] > 0.02), r["method"].iloc[0]
    (True, 'cuped_hc1')
    """
    control, treatments = _arms(df, arm, control)
    y_adj, theta = cuped_adjust(df, outcome, covariates)
    y = df[outcome].to_numpy(dtype=float)
    vr = 1 - np.var(y_adj) / np.var(y) if np.var(y) > 0 else 0.0
    X = _design(df, arm, control, treatments)
    a = df[arm].to_numpy()
    rows = _rows_from_ols(
        y_adj, X, a, control, treatments, outcome, f"cuped_{cov_type.lower()}", cov_type, alpha,
        extra={"variance_reduction": float(vr), "covariates": ",".join(covariates)},
    )
    # report raw means, not the adjusted ones
    ctrl = a == control
    for r, t in zip(rows, treatments):
        r["control_mean"] = float(y[ctrl].mean())
        r["treatment_mean"] = float(y[a == t].mean())
        r["relative_lift"] = r["estimate"] / r["control_mean"] if r["control_mean"] != 0 else float("nan")
    return tidy(rows, _EXTRA)


def _logit_fit(df, outcome, covariates, arm, control, treatments):
    require_columns(df, [outcome, *covariates], "experiment frame")
    require_finite(df, [outcome, *covariates], "experiment frame")
    y = df[outcome].to_numpy(dtype=float)
    bad = int(((y != 0) & (y != 1)).sum())
    if bad:
        raise ValueError(f"logit_ame: outcome {outcome!r} must be 0/1: {bad} row(s) break it")
    X = _design(df, arm, control, treatments)
    used = [c for c in covariates if df[c].nunique() > 1]  # a constant covariate is collinear with the intercept
    if used:
        Z = df[used].to_numpy(dtype=float)
        X = np.column_stack([X, Z - Z.mean(axis=0)])
    try:
        res = sm.Logit(y, X).fit(disp=0, cov_type="HC0", maxiter=100)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"logit_ame: the model for {outcome!r} cannot be fitted (singular information matrix): "
            "an arm or a covariate predicts the outcome perfectly, or covariates are collinear"
        ) from None
    return y, X, res, used


def _ame_delta(X: np.ndarray, params: np.ndarray, cov: np.ndarray, j: int, k: int) -> tuple[float, float]:
    """Counterfactual average discrete change of arm column ``j`` (``k`` treatment columns) and its delta-method SE."""
    X1 = X.copy()
    X1[:, 1 : 1 + k] = 0.0
    X0 = X1.copy()
    X1[:, j] = 1.0
    p1 = 1 / (1 + np.exp(-X1 @ params))
    p0 = 1 / (1 + np.exp(-X0 @ params))
    grad = (p1 * (1 - p1)) @ X1 / len(X) - (p0 * (1 - p0)) @ X0 / len(X)
    return float(np.mean(p1 - p0)), float(np.sqrt(grad @ cov @ grad))


def logit_ame(
    df: pd.DataFrame,
    outcome: str,
    *,
    covariates: Sequence[str] = (),
    arm: str = "arm",
    control: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Average marginal effect of each arm on a binary outcome from a logistic regression.

    Fits ``logit P(Y=1) = b0 + sum_a b_a 1{arm=a} + (X - mean X) g`` (sandwich
    HC0 covariance) and reports, per treatment arm, the average discrete change
    in predicted probability when everyone is moved from the control arm to arm
    ``a``, with an analytic delta-method standard error. With two arms this is
    exactly statsmodels' ``res.get_margeff(at="overall", dummy=True)`` (the tests
    hold them equal; the analytic gradient is 30x faster than its numerical one);
    with more arms the other arm dummies are set to 0 in both scenarios. Covariates (pre-period data)
    make it more precise; under randomisation the effect stays consistent even
    when the logistic model is wrong. A covariate that is constant in ``df`` (e.g.
    pre-period revenue among first-time buyers) cannot be estimated: it is left
    out and named in the ``constant_covariates`` column.

    Examples
    --------
    >>> from privdomain.experiments.synthetic import simulate_campaign
    >>> df = simulate_campaign(3000, effect=0.08, seed=2)
    >>> r = logit_ame(df, "converted", covariates=["pre_purchases"])
    >>> bool(r["ci_low"].iloc[0] < 0.08 < r["ci_high"].iloc[0])
    True
    """
    control, treatments = _arms(df, arm, control)
    covariates = list(covariates)
    y, X, res, used = _logit_fit(df, outcome, covariates, arm, control, treatments)
    params = np.asarray(res.params)
    cov = np.asarray(res.cov_params())
    a = df[arm].to_numpy()
    ctrl = a == control
    rows = []
    pairs = [_ame_delta(X, params, cov, j, len(treatments)) for j in range(1, len(treatments) + 1)]
    ests, ses = [p[0] for p in pairs], [p[1] for p in pairs]
    for t, est, se in zip(treatments, ests, ses):
        lo, hi, p = wald(est, se, alpha)
        treat = a == t
        cm = float(y[ctrl].mean())
        rows.append(
            {
                "outcome": outcome, "term": t, "method": "logit_ame", "estimate": est, "std_error": se,
                "ci_low": lo, "ci_high": hi, "p_value": p, "n": int(ctrl.sum() + treat.sum()),
                "n_treatment": int(treat.sum()), "n_control": int(ctrl.sum()), "control_mean": cm,
                "treatment_mean": float(y[treat].mean()),
                "relative_lift": est / cm if cm != 0 else float("nan"),
                "covariates": ",".join(used),
                "constant_covariates": ",".join(c for c in covariates if c not in used),
            }
        )
    return tidy(rows, _EXTRA)


def _is_binary(s: pd.Series) -> bool:
    v = pd.unique(s.dropna())
    return len(v) <= 2 and set(np.asarray(v, dtype=float).tolist()) <= {0.0, 1.0}


def campaign_effects(
    df: pd.DataFrame,
    outcomes: Sequence[str] = ("converted", "repurchased", "revenue"),
    *,
    covariates: Sequence[str] = (),
    arm: str = "arm",
    control: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every applicable estimator for every outcome, stacked into one tidy frame.

    Difference in means (HC1) for each outcome; CUPED when ``covariates`` are
    given; logistic AME for 0/1 outcomes. Outcomes not in the frame raise.

    Examples
    --------
    >>> from privdomain.experiments.synthetic import simulate_campaign
    >>> df = simulate_campaign(2000, seed=1)
    >>> r = campaign_effects(df, ["converted", "revenue"], covariates=["pre_purchases"])
    >>> r[["outcome", "method"]].values.tolist()
    [['converted', 'dim_hc1'], ['converted', 'cuped_hc1'], ['converted', 'logit_ame'], ['revenue', 'dim_hc1'], ['revenue', 'cuped_hc1']]
    """
    require_columns(df, list(outcomes), "experiment frame")
    parts = []
    for o in outcomes:
        parts.append(difference_in_means(df, o, arm=arm, control=control, alpha=alpha))
        if covariates:
            parts.append(cuped(df, o, covariates, arm=arm, control=control, alpha=alpha))
        if _is_binary(df[o]):
            parts.append(logit_ame(df, o, covariates=covariates, arm=arm, control=control, alpha=alpha))
    return pd.concat(parts, ignore_index=True)


_METHODS = {"dim": difference_in_means, "cuped": cuped, "logit": logit_ame}
#: coupon tiers in their natural order: this package's and the simulator's tea scenario's names
_TIER_ORDER = ("first_time", "2-5", "5+", "first_purchase", "regular", "loyal")


def heterogeneous_effects(
    df: pd.DataFrame,
    outcome: str,
    *,
    by: str = "segment",
    method: str = "dim",
    covariates: Sequence[str] = (),
    arm: str = "arm",
    control: str | None = None,
    correction: str = "holm",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Effects within each segment (e.g. coupon tier), adjusted for multiple comparisons.

    The estimator ``method`` (``"dim"``, ``"cuped"`` or ``"logit"``) runs on each
    segment's rows. ``p_value_adj`` and ``reject`` come from
    ``multipletests(p, alpha, method=correction)`` over all segment x arm rows
    (``"holm"`` controls the family-wise error rate, ``"fdr_bh"`` the false
    discovery rate, any statsmodels method name works); ``ci_low_adj`` /
    ``ci_high_adj`` are Bonferroni simultaneous intervals (level ``1 - alpha/m``
    each, ``m`` = rows). Whether the effect is the same in every segment is
    :func:`heterogeneity_test` (a robust Wald test on ``Y ~ segment * arm``;
    ``attrs["heterogeneity"]`` keeps its result for one release).

    Examples
    --------
    >>> from privdomain.experiments.synthetic import simulate_campaign
    >>> df = simulate_campaign(6000, seed=4, tier_effects={"first_time": 0.15, "2-5": 0.0, "5+": 0.0})
    >>> r = heterogeneous_effects(df, "converted")
    >>> r[["segment", "reject"]].values.tolist()
    [['first_time', True], ['2-5', False], ['5+', False]]
    >>> heterogeneity_test(df, "converted")["p_value"] < 0.01
    True
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {list(_METHODS)}, got {method!r}")
    require_columns(df, [by, outcome], "experiment frame")
    nulls = int(df[by].isna().sum())
    if nulls:
        raise ValueError(f"experiment frame: segment column {by!r} must not be null: {nulls} row(s) break it")
    control, treatments = _arms(df, arm, control)
    levels = _levels(df, by)
    parts = []
    for level in levels:
        sub = df[df[by] == level]
        present = set(pd.unique(sub[arm]))
        if control not in present or not (present - {control}):
            raise ValueError(f"segment {by}={level!r} lacks the control arm or every treatment arm: cannot estimate")
        kw = {"arm": arm, "control": control, "alpha": alpha}
        if method == "cuped":
            r = cuped(sub, outcome, covariates, **kw)
        elif method == "logit":
            r = logit_ame(sub, outcome, covariates=covariates, **kw)
        else:
            r = difference_in_means(sub, outcome, **kw)
        r.insert(2, "segment", level)
        parts.append(r)
    out = pd.concat(parts, ignore_index=True)
    m = len(out)
    reject, p_adj, _, _ = multipletests(out["p_value"].to_numpy(), alpha=alpha, method=correction)
    out["p_value_adj"] = p_adj
    out["reject"] = reject.astype(bool)
    z = stats.norm.ppf(1 - alpha / (2 * m))
    out["ci_low_adj"] = out["estimate"] - z * out["std_error"]
    out["ci_high_adj"] = out["estimate"] + z * out["std_error"]
    out["correction"] = correction
    # for one release: the test is heterogeneity_test(...), a returned value
    out.attrs["heterogeneity"] = _heterogeneity_test(df, outcome, by, levels, arm, control, treatments)
    out.attrs["segments"] = [str(v) for v in levels]
    return out


def heterogeneity_test(
    df: pd.DataFrame,
    outcome: str,
    *,
    by: str = "segment",
    arm: str = "arm",
    control: str | None = None,
) -> dict[str, float]:
    """Is the effect the same in every segment? A robust Wald test on the interacted regression.

    The OLS :math:`Y = \\alpha + \\sum_s \\gamma_s S_s + \\sum_a \\beta_a A_a +
    \\sum_{s,a} \\delta_{sa} S_s A_a + \\varepsilon` (segment dummies :math:`S_s` and
    treatment-arm dummies :math:`A_a`, first segment as the base) is fitted with HC1
    standard errors; the statistic is :math:`W = \\hat\\delta^\\top \\hat V^{-1} \\hat\\delta`,
    chi-square with ``df`` = number of interactions under "every segment has the same
    effect". :func:`heterogeneous_effects` runs the same test (also kept in its
    ``attrs["heterogeneity"]`` for one release).

    Returns
    -------
    dict
        ``statistic``, ``df``, ``p_value``.

    Examples
    --------
    >>> from privdomain.experiments.synthetic import simulate_campaign
    >>> df = simulate_campaign(6000, seed=4, tier_effects={"first_time": 0.15, "2-5": 0.0, "5+": 0.0})
    >>> t = heterogeneity_test(df, "converted")
    >>> t["df"], t["p_value"] < 0.01
    (2, True)
    """
    require_columns(df, [by, outcome, arm], "experiment frame")
    nulls = int(df[by].isna().sum())
    if nulls:
        raise ValueError(f"experiment frame: segment column {by!r} must not be null: {nulls} row(s) break it")
    control, treatments = _arms(df, arm, control)
    return _heterogeneity_test(df, outcome, by, _levels(df, by), arm, control, treatments)


def _levels(df: pd.DataFrame, by: str) -> list:
    """The segments in order: a categorical's order, known tier names in tier order, then the rest by name."""
    levels = list(pd.unique(df[by]))
    if isinstance(df[by].dtype, pd.CategoricalDtype):
        return [c for c in df[by].cat.categories if c in set(levels)]
    return sorted(levels, key=lambda v: (_TIER_ORDER.index(v) if v in _TIER_ORDER else len(_TIER_ORDER), str(v)))


def _heterogeneity_test(df, outcome, by, levels, arm, control, treatments) -> dict:
    """HC1 Wald test that all segment x arm interactions are zero."""
    y = df[outcome].to_numpy(dtype=float)
    a = df[arm].to_numpy()
    s = df[by].to_numpy()
    cols = [np.ones(len(df))]
    cols += [(s == lv).astype(float) for lv in levels[1:]]
    cols += [(a == t).astype(float) for t in treatments]
    inter_start = len(cols)
    cols += [((s == lv) & (a == t)).astype(float) for t in treatments for lv in levels[1:]]
    X = np.column_stack(cols)
    k = X.shape[1] - inter_start
    if k == 0:
        return {"statistic": 0.0, "df": 0, "p_value": 1.0}
    res = sm.OLS(y, X).fit(cov_type="HC1")
    b = np.asarray(res.params)[inter_start:]
    V = np.asarray(res.cov_params())[inter_start:, inter_start:]
    stat = float(b @ np.linalg.solve(V, b))
    return {"statistic": stat, "df": int(k), "p_value": float(stats.chi2.sf(stat, k))}
