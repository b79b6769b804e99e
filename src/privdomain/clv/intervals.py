"""Profile-likelihood intervals for the parameters of a fitted CLV model.

For parameter :math:`\\theta_j` of a model with log-likelihood :math:`\\ell`, the profile
log-likelihood is :math:`\\ell_p(\\theta_j) = \\max_{\\theta_{-j}} \\ell(\\theta_j,
\\theta_{-j})`, and the level-:math:`c` interval is

.. math::

    \\{\\theta_j : 2\\,(\\ell(\\hat\\theta) - \\ell_p(\\theta_j)) \\le \\chi^2_{1,c}\\}

(Venzon and Moolgavkar 1988; Pawitan 2001, *In All Likelihood*, ch. 3). It needs no
standard error, is invariant to reparametrisation and stays inside the parameter's
domain (all parameters of these models are positive). Each bound is found by a root
search on :math:`\\log\\theta_j`, each step refitting the other parameters (BFGS, warm
started), so an interval costs a few dozen refits on the model's unique rows.

Examples
--------
>>> from privdomain.clv import BetaGeo, simulate_beta_geo
>>> from privdomain.clv.intervals import profile_interval
>>> m = BetaGeo().fit(simulate_beta_geo(3000, r=0.5, alpha=5.0, a=0.8, b=3.0, T=40.0, seed=3, time_step=1 / 7))
>>> lo, hi = profile_interval(m, "a")
>>> bool(0 < lo < m.params_["a"] < hi)
True
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize
from scipy.stats import chi2

__all__ = ["profile_interval"]


def profile_interval(model, name: str, level: float = 0.95, max_log_span: float = 12.0) -> tuple[float, float]:
    """Profile-likelihood interval of one parameter of a fitted model.

    Parameters
    ----------
    model
        A fitted :class:`~privdomain.clv.BetaGeo`, :class:`~privdomain.clv.ParetoNBD`,
        :class:`~privdomain.clv.ModifiedBetaGeo` or :class:`~privdomain.clv.GammaGamma`.
    name
        The parameter (one of ``model.param_names``).
    level
        Coverage, e.g. 0.95.
    max_log_span
        How far (in :math:`\\log\\theta`) to search on each side of the estimate; a side
        where the profile never drops by :math:`\\chi^2_{1,c}/2` within it is unbounded and
        returned as ``0`` (lower) or ``inf`` (upper): the data cannot bound the parameter.

    Returns
    -------
    (lower, upper)
        Both within :math:`[0, \\infty]`.
    """
    if getattr(model, "params_", None) is None:
        raise ValueError(f"{type(model).__name__} is not fitted: call .fit(summary) first")
    names = list(model.param_names)
    if name not in names:
        from ..errors import UsageError

        raise UsageError.unknown("parameter", name, names)
    j = names.index(name)
    data, w = model._fit_data
    total = float(w.sum())
    f = model._objective(data, w)
    u_hat = np.log(model.params_.to_numpy(dtype="float64"))
    ll_hat = float(model.log_likelihood_)
    drop = float(chi2.ppf(level, 1)) / 2
    others = [i for i in range(len(names)) if i != j]
    warm = {"x": u_hat[others].copy()}

    def profile(uj: float) -> float:
        def negll(v):
            u = u_hat.copy()
            u[j], u[others] = uj, v
            p = np.exp(np.clip(u, -30.0, 30.0))
            with np.errstate(all="ignore"):
                val, g = f(p)
            if not np.isfinite(val):
                return (1e300, np.zeros(len(v))) if g is not None else 1e300
            if g is not None:
                return -val / total, -(np.asarray(g) * p)[others] / total
            return -val / total

        analytic = isinstance(negll(warm["x"]), tuple)
        res = minimize(negll, warm["x"], jac=analytic or None, method="BFGS", options={"gtol": 1e-9, "maxiter": 2000})
        if np.isfinite(res.fun) and res.fun < 1e299:
            warm["x"] = res.x
        return -float(res.fun) * total

    def gap(uj: float) -> float:  # > 0 inside the interval, < 0 outside
        return drop - (ll_hat - profile(uj))

    bounds = []
    for side in (-1.0, 1.0):
        warm["x"] = u_hat[others].copy()
        step, inner, found = 0.25, u_hat[j], None
        while abs(inner - u_hat[j]) < max_log_span:
            outer = inner + side * step
            if gap(outer) < 0:
                found = outer
                break
            inner, step = outer, step * 2
        if found is None:
            bounds.append(0.0 if side < 0 else float("inf"))
            continue
        warm["x"] = u_hat[others].copy()
        lo, hi = sorted((inner, found))
        root = brentq(gap, lo, hi, xtol=1e-6)
        bounds.append(float(np.exp(root)))
    return bounds[0], bounds[1]
