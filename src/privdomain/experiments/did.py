"""Difference-in-differences for a change rolled out to some units (stores, accounts).

Two-way fixed effects (TWFE)::

    y_it = a_i + g_t + beta * D_it + x_it' c + e_it

with unit effects ``a_i``, period effects ``g_t`` and ``D_it = 1`` once unit ``i``
has the change (an article redesign on some Official Accounts, a Mini Program
redesign in some stores). Standard errors are clustered by unit (Bertrand, Duflo
& Mullainathan 2004, "How much should we trust differences-in-differences
estimates?", QJE), because a unit's periods are correlated.

The fixed effects are absorbed either with dummies (``C(unit) + C(period)`` in
one OLS; ``method="dummies"``) or by two-way demeaning with alternating
projections (``method="demean"``; exact for unbalanced panels too, memory
linear in the rows). Both give the same coefficient. Their clustered standard
errors differ only by statsmodels' small-sample factor
``sqrt((n - 1) / (n - K))``, which counts every dummy in ``K`` for
``"dummies"`` and only the regressors for ``"demean"`` (the convention of
``xtreg, fe`` / ``reghdfe`` for effects nested in clusters).

The event study replaces ``D_it`` by one dummy per period relative to the
change, ``k = t - first_treated_i`` (``k <= -leads`` and ``k >= lags`` binned
into the end points; ``k = -1`` is the reference), so leads estimate
pre-trends and lags the dynamic effect. :func:`pretrend_check` tests all leads
jointly (cluster-robust Wald, F with ``G - 1`` denominator degrees of freedom).

Caveat: with staggered adoption *and* effects that change over time or differ by
adoption cohort, TWFE mixes already-treated units into the comparison group and
can be biased (Goodman-Bacon 2021; Sun & Abraham 2021). The estimates here are
right when the effect is the same for every cohort and period; otherwise use
:func:`privdomain.experiments.staggered_did` (Callaway & Sant'Anna group-time
effects), which the tests show unbiased where TWFE is not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from ..backend import require_columns
from ._tidy import require_finite, tidy, wald

__all__ = ["check_panel", "demean_two_way", "did", "event_study", "pretrend_check"]


_DUMMY_LIMIT = 30  # units; above this "auto" demeans (same estimate, less memory and time)


def check_panel(df: pd.DataFrame, cols: Sequence[str], unit: str, period: str) -> None:
    require_columns(df, cols, "panel")
    for c in (unit, period):
        nulls = int(df[c].isna().sum())
        if nulls:
            raise ValueError(f"panel: column {c!r} must not be null: {nulls} row(s) break it")
    dup = int(df.duplicated([unit, period]).sum())
    if dup:
        raise ValueError(f"panel: ({unit}, {period}) must be unique: {dup} duplicated row(s)")


def demean_two_way(M: np.ndarray, a: np.ndarray, b: np.ndarray, tol: float = 1e-12, max_iter: int = 10_000) -> np.ndarray:
    """Remove two sets of fixed effects (integer codes ``a`` and ``b``) from each column of ``M``.

    Alternating projections (Guimaraes & Portugal 2010): subtract group means by
    ``a``, then by ``b``, until nothing changes; one sweep for a balanced panel.

    >>> import numpy as np
    >>> a, b = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    >>> y = 10 * a + 3 * b + np.array([1.0, -1, -1, 1])
    >>> demean_two_way(y[:, None], a, b).ravel().tolist()
    [1.0, -1.0, -1.0, 1.0]
    """
    M = np.array(M, dtype=float, copy=True)
    ca, cb = np.bincount(a).astype(float), np.bincount(b).astype(float)
    scale = max(1.0, float(np.abs(M).max()) if M.size else 1.0)
    for _ in range(max_iter):
        change = 0.0
        for codes, counts in ((a, ca), (b, cb)):
            for j in range(M.shape[1]):
                means = np.bincount(codes, weights=M[:, j], minlength=len(counts)) / counts
                change = max(change, float(np.abs(means).max()))
                M[:, j] -= means[codes]
        if change < tol * scale:
            return M
    raise RuntimeError(f"two-way demeaning did not converge in {max_iter} sweeps")


def _fit_twfe(df, outcome, regressors: np.ndarray, unit, period, cluster, method, covariates):
    """OLS of outcome on [regressors, covariates] with unit and period effects; returns (params, cov, info)."""
    y = df[outcome].to_numpy(dtype=float)
    X = regressors
    if covariates:
        X = np.column_stack([X, df[list(covariates)].to_numpy(dtype=float)])
    ucode, _ = pd.factorize(df[unit], sort=True)
    pcode, _ = pd.factorize(df[period], sort=True)
    groups, _ = pd.factorize(df[cluster], sort=True)
    n_units, n_periods = int(ucode.max()) + 1, int(pcode.max()) + 1
    if method == "auto":
        method = "dummies" if n_units <= _DUMMY_LIMIT else "demean"
    k = X.shape[1]
    if method == "dummies":
        U = np.eye(n_units)[ucode]
        P = np.eye(n_periods)[pcode][:, 1:]
        res = sm.OLS(y, np.column_stack([X, U, P])).fit(cov_type="cluster", cov_kwds={"groups": groups})
    elif method == "demean":
        Z = demean_two_way(np.column_stack([y, X]), ucode, pcode)
        res = sm.OLS(Z[:, 0], Z[:, 1:]).fit(cov_type="cluster", cov_kwds={"groups": groups})
    else:
        raise ValueError(f"method must be 'auto', 'dummies' or 'demean', got {method!r}")
    params = np.asarray(res.params)[:k]
    cov = np.asarray(res.cov_params())[:k, :k]
    if not np.all(np.isfinite(params)) or np.any(np.diag(cov) <= 0):
        raise ValueError("the effect is not identified: does every regressor vary within units and periods?")
    info = {"n": len(y), "n_units": n_units, "n_periods": n_periods, "n_clusters": int(groups.max()) + 1,
            "method": f"twfe_{method}"}
    return params, cov, info


def did(
    panel: pd.DataFrame,
    outcome: str = "y",
    *,
    unit: str = "unit",
    period: str = "period",
    treated: str = "treated",
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    method: str = "auto",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Two-way fixed-effects difference-in-differences estimate of the effect of a change.

    Parameters
    ----------
    panel
        One row per unit and period: ``unit``, ``period``, ``treated`` (1 once the
        unit has the change, else 0), the outcome and optional covariates.
    outcome
        Outcome column (e.g. weekly GMV in yuan, article click rate).
    cluster
        Column to cluster standard errors on; the unit by default.
    method
        ``"dummies"``, ``"demean"`` or ``"auto"`` (dummies up to 30 units).

    Returns
    -------
    pandas.DataFrame
        One tidy row (``term = treated``) plus ``n_units``, ``n_periods``, ``n_clusters``.

    Examples
    --------
    >>> from privdomain.experiments.synthetic import simulate_panel
    >>> p = simulate_panel(60, 10, effect=2.0, seed=1)
    >>> r = did(p)
    >>> bool(r["ci_low"].iloc[0] < 2.0 < r["ci_high"].iloc[0]), int(r["n_clusters"].iloc[0])
    (True, 60)
    """
    cluster = cluster or unit
    check_panel(panel, [unit, period, treated, outcome, cluster, *covariates], unit, period)
    require_finite(panel, [outcome, treated, *covariates], "panel")
    d = panel[treated].to_numpy(dtype=float)
    bad = int(((d != 0) & (d != 1)).sum())
    if bad:
        raise ValueError(f"panel: column {treated!r} must be 0/1: {bad} row(s) break it")
    params, cov, info = _fit_twfe(panel, outcome, d[:, None], unit, period, cluster, method, list(covariates))
    est, se = float(params[0]), float(np.sqrt(cov[0, 0]))
    lo, hi, p = wald(est, se, alpha)
    row = {"outcome": outcome, "term": treated, "method": info.pop("method"), "estimate": est, "std_error": se,
           "ci_low": lo, "ci_high": hi, "p_value": p, **info}
    return tidy([row])


def _relative_periods(df, period, first_treated, leads, lags, reference):
    if leads < 2 and reference == -1:
        raise ValueError("leads must be at least 2 (k = -1 is the reference period)")
    per = pd.to_numeric(df[period]).to_numpy(dtype=float)
    ft = pd.to_numeric(df[first_treated]).to_numpy(dtype=float)  # NaN = never treated
    rel = np.clip(per - ft, -leads, lags)
    ks = [k for k in range(-leads, lags + 1) if k != reference]
    D = np.column_stack([(rel == k).astype(float) for k in ks]) if ks else np.empty((len(df), 0))
    return ks, D, rel


def event_study(
    panel: pd.DataFrame,
    outcome: str = "y",
    *,
    unit: str = "unit",
    period: str = "period",
    first_treated: str = "first_treated",
    leads: int = 4,
    lags: int = 4,
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    method: str = "auto",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Event-study (dynamic) difference-in-differences around the change.

    ``y_it = a_i + g_t + sum_{k != -1} b_k 1{t - first_treated_i = k} + e_it``,
    with ``k`` binned to ``[-leads, lags]``. ``first_treated`` is the period the
    unit got the change (numeric, same scale as ``period``; null = never).

    Returns
    -------
    pandas.DataFrame
        Tidy rows, one per relative period ``k`` (column ``relative_period``),
        including the reference ``k = -1`` at 0 with a zero-width interval. The joint
        pre-trend test is :func:`pretrend_check` (``attrs["pretrend"]`` carries the
        same dict, for the event-study plot's corner).

    Examples
    --------
    >>> from privdomain.experiments.synthetic import simulate_panel
    >>> es = event_study(simulate_panel(60, 12, effect=1.0, seed=2), leads=3, lags=3)
    >>> es["relative_period"].tolist()
    [-3, -2, -1, 0, 1, 2, 3]
    """
    out, pretrend, n_clusters = _event_study(panel, outcome, unit, period, first_treated, leads, lags, covariates,
                                             cluster, method, alpha)
    out.attrs["pretrend"] = pretrend  # provenance for the event-study plot; the test is pretrend_check(...)
    out.attrs["n_clusters"] = n_clusters
    return out


def _event_study(panel: pd.DataFrame, outcome: str, unit: str, period: str, first_treated: str, leads: int,
                 lags: int, covariates: Sequence[str], cluster: str | None, method: str,
                 alpha: float) -> tuple[pd.DataFrame, dict, int]:
    """The event-study rows, the pre-trend test and the number of clusters."""
    cluster = cluster or unit
    check_panel(panel, [unit, period, first_treated, outcome, cluster, *covariates], unit, period)
    require_finite(panel, [outcome, period, *covariates], "panel")
    ks, D, _ = _relative_periods(panel, period, first_treated, leads, lags, -1)
    if D.shape[1] == 0 or not (D.sum(axis=0) > 0).all():
        empty = [k for k, c in zip(ks, D.sum(axis=0)) if c == 0]
        raise ValueError(f"no treated observations at relative period(s) {empty}: lower leads/lags")
    params, cov, info = _fit_twfe(panel, outcome, D, unit, period, cluster, method, list(covariates))
    rows = []
    for j, k in enumerate(ks):
        est, se = float(params[j]), float(np.sqrt(cov[j, j]))
        lo, hi, p = wald(est, se, alpha)
        rows.append({"outcome": outcome, "term": f"k={k}", "method": info["method"], "estimate": est,
                     "std_error": se, "ci_low": lo, "ci_high": hi, "p_value": p, "n": info["n"],
                     "relative_period": k, "n_treated_obs": int(D[:, j].sum())})
    rows.append({"outcome": outcome, "term": "k=-1", "method": "reference", "estimate": 0.0, "std_error": 0.0,
                 "ci_low": 0.0, "ci_high": 0.0, "p_value": float("nan"), "n": info["n"], "relative_period": -1,
                 "n_treated_obs": 0})
    out = tidy(rows).sort_values("relative_period").reset_index(drop=True)
    lead_idx = [j for j, k in enumerate(ks) if k < -1]
    pretrend = _wald_f(params[lead_idx], cov[np.ix_(lead_idx, lead_idx)], info["n_clusters"], alpha)
    return out, pretrend, info["n_clusters"]


def _wald_f(b: np.ndarray, V: np.ndarray, n_clusters: int, alpha: float) -> dict:
    q = len(b)
    if q == 0:
        return {"statistic": float("nan"), "df_num": 0, "df_den": n_clusters - 1, "p_value": float("nan"),
                "flagged": False}
    f = float(b @ np.linalg.solve(V, b)) / q
    p = float(stats.f.sf(f, q, n_clusters - 1))
    return {"statistic": f, "df_num": q, "df_den": n_clusters - 1, "p_value": p, "flagged": bool(p < alpha)}


def pretrend_check(
    panel: pd.DataFrame,
    outcome: str = "y",
    *,
    unit: str = "unit",
    period: str = "period",
    first_treated: str = "first_treated",
    leads: int = 4,
    lags: int = 4,
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    method: str = "auto",
    alpha: float = 0.05,
) -> dict:
    """Joint test that every pre-change coefficient of the event study is zero.

    ``H0: b_{-leads} = ... = b_{-2} = 0`` with the cluster-robust covariance;
    ``statistic = b' V^{-1} b / q`` compared with ``F(q, G - 1)`` (``G``
    clusters). ``flagged`` is True when ``p_value < alpha``: the treated units
    were already drifting apart before the change, so parallel trends is doubtful
    and a DiD estimate should not be trusted. Not flagging is no proof of
    parallel trends (the test may lack power; look at the event-study plot).

    Returns
    -------
    dict
        ``statistic, df_num, df_den, p_value, flagged``.

    Examples
    --------
    >>> from privdomain.experiments.synthetic import simulate_panel
    >>> pretrend_check(simulate_panel(80, 12, seed=3, pretrend=0.5))["flagged"]
    True
    """
    return _event_study(panel, outcome, unit, period, first_treated, leads, lags, covariates, cluster, method,
                        alpha)[1]
