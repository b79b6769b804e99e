"""Power, sample size and minimum detectable effect for a proportion or a mean.

Two arms: control (``n_control`` persons) and treatment
(``n_treatment = ratio * n_control``). Effects are absolute differences
``treatment - control`` (probability points for a proportion, outcome units for a
mean); ``relative_mde = mde / baseline`` is reported alongside.

Power of a two-sided level-``alpha`` test of "no difference" when the true
difference is ``d`` (``z = z_{1-alpha/2}``, one-sided tests use ``z_{1-alpha}``
and one tail)::

    power = Phi((d sqrt(n_c) - z s0) / s1) + Phi((-d sqrt(n_c) - z s0) / s1)

with per-``sqrt(n_control)`` standard deviations of the difference ``s0`` under the
null and ``s1`` under the alternative:

* proportion, ``method="pooled"`` (default; the usual two-proportion z-test):
  ``s1^2 = p0 q0 + p1 q1 / k`` and ``s0^2 = pbar qbar (1 + 1/k)`` with the pooled
  ``pbar = (p0 + k p1) / (1 + k)`` (Fleiss, Levin & Paik 2003, ch. 4; equals
  ``statsmodels.stats.proportion.power_proportions_2indep``);
* proportion, ``method="unpooled"``: the Wald test, ``s0 = s1``;
* proportion, ``method="arcsine"``: Cohen's ``h = 2 asin(sqrt p1) - 2 asin(sqrt p0)``
  as a standardised mean difference (``statsmodels`` ``proportion_effectsize`` +
  ``NormalIndPower``);
* mean, ``test="z"``: ``s0 = s1 = sd sqrt(1 + 1/k)`` (``NormalIndPower`` with
  effect size ``d / sd``); ``test="t"``: the two-sample t-test with common
  ``sd``, a noncentral t with ``n_c + n_t - 2`` degrees of freedom
  (``TTestIndPower``).

Sample sizes solve ``power(n) = target`` exactly (root finding, both tails) and are
rounded up, so the rounded design has at least the target power; MDEs solve
``power(d) = target`` for ``d`` (positive unless ``alternative="smaller"``).

All functions broadcast their numeric arguments and return one row per
combination (a tidy frame), so a grid of scenarios is one call.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = [
    "sample_size_proportion",
    "power_proportion",
    "mde_proportion",
    "sample_size_mean",
    "power_mean",
    "mde_mean",
]


_ALTERNATIVES = ("two-sided", "larger", "smaller")
_PROP_METHODS = ("pooled", "unpooled", "arcsine")
_TESTS = ("z", "t")


def _check(alpha, power, ratio, alternative) -> None:
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")
    if alpha is not None and not np.all((np.asarray(alpha) > 0) & (np.asarray(alpha) < 1)):
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if power is not None and not np.all((np.asarray(power) > 0) & (np.asarray(power) < 1)):
        raise ValueError(f"power must be in (0, 1), got {power}")
    if not np.all(np.asarray(ratio) > 0):
        raise ValueError(f"ratio (n_treatment / n_control) must be > 0, got {ratio}")


def _normal_power(d_sqrt_n: float, s0: float, s1: float, alpha: float, alternative: str) -> float:
    """Power of a z-test: ``d_sqrt_n`` = difference x sqrt(n_control)."""
    if alternative == "two-sided":
        z = stats.norm.isf(alpha / 2)
        return float(stats.norm.sf((z * s0 - d_sqrt_n) / s1) + stats.norm.cdf((-z * s0 - d_sqrt_n) / s1))
    z = stats.norm.isf(alpha)
    if alternative == "larger":
        return float(stats.norm.sf((z * s0 - d_sqrt_n) / s1))
    return float(stats.norm.cdf((-z * s0 - d_sqrt_n) / s1))


def _prop_power(p0: float, d: float, n_c: float, k: float, alpha: float, alternative: str, method: str) -> float:
    p1 = p0 + d
    if method == "arcsine":
        h = 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p0))
        s = math.sqrt(1 + 1 / k)
        return _normal_power(h * math.sqrt(n_c), s, s, alpha, alternative)
    s1 = math.sqrt(p0 * (1 - p0) + p1 * (1 - p1) / k)
    if method == "unpooled":
        s0 = s1
    else:
        pbar = (p0 + k * p1) / (1 + k)
        s0 = math.sqrt(pbar * (1 - pbar) * (1 + 1 / k))
    return _normal_power(d * math.sqrt(n_c), s0, s1, alpha, alternative)


def _mean_power(sd: float, d: float, n_c: float, k: float, alpha: float, alternative: str, test: str) -> float:
    if test == "z":
        s = sd * math.sqrt(1 + 1 / k)
        return _normal_power(d * math.sqrt(n_c), s, s, alpha, alternative)
    dof = n_c * (1 + k) - 2
    nc = d / sd * math.sqrt(n_c * k / (1 + k))
    if alternative == "two-sided":
        c = stats.t.isf(alpha / 2, dof)
        out = stats.nct.sf(c, dof, nc) + stats.nct.cdf(-c, dof, nc)
    else:
        c = stats.t.isf(alpha, dof)
        out = stats.nct.sf(c, dof, nc) if alternative == "larger" else stats.nct.cdf(-c, dof, nc)
    if not np.isfinite(out):  # scipy's noncentral t gives nan far in the tail: power is 0 or 1 there
        out = float((nc > 0) == (alternative != "smaller")) if alternative != "two-sided" else 1.0
    return float(out)


def _solve_n(power_of_n, target: float, lo: float) -> float:
    hi = max(lo * 2, 16.0)
    while power_of_n(hi) < target:
        hi *= 4
        if hi > 1e13:
            raise ValueError("the effect is too small to detect with any realistic sample size (> 1e13 persons)")
    if power_of_n(lo) >= target:
        return lo
    return float(optimize.brentq(lambda n: power_of_n(n) - target, lo, hi, xtol=1e-9, rtol=1e-12))


def _solve_d(power_of_d, target: float, lo: float, hi: float, what: str) -> float:
    if power_of_d(hi) < target:
        raise ValueError(f"no {what} within the possible range reaches power {target}: more persons are needed")
    return float(optimize.brentq(lambda d: power_of_d(d) - target, lo, hi, xtol=1e-12, rtol=1e-12))


def _sign_ok(d: float, alternative: str) -> None:
    if d == 0:
        raise ValueError("mde must be non-zero")
    if (alternative == "larger" and d < 0) or (alternative == "smaller" and d > 0):
        raise ValueError(f"mde {d} has the wrong sign for alternative={alternative!r}")


def _grid(**kw) -> list[dict]:
    arrays = [a.ravel() for a in np.broadcast_arrays(*[np.atleast_1d(np.asarray(v, dtype=float)) for v in kw.values()])]
    return [dict(zip(kw, (float(a[i]) for a in arrays))) for i in range(arrays[0].size)]


def _check_p0(p0) -> None:
    p = np.asarray(p0, dtype=float)
    if not np.all((p > 0) & (p < 1)):
        raise ValueError(f"baseline proportion p0 must be in (0, 1), got {p0}")


def _sizes(n_c: float, k: float) -> dict:
    n_control, n_treatment = math.ceil(n_c - 1e-9), math.ceil(k * n_c - 1e-9)
    return {"n_control": n_control, "n_treatment": n_treatment, "n_total": n_control + n_treatment,
            "n_control_exact": n_c}


def sample_size_proportion(
    p0, mde, *, alpha=0.05, power=0.8, ratio=1.0, alternative: str = "two-sided", method: str = "pooled"
) -> pd.DataFrame:
    """Persons needed to detect an absolute change ``mde`` in a proportion ``p0``.

    Parameters
    ----------
    p0
        Control (baseline) proportion, e.g. a 30-day repurchase rate.
    mde
        Minimum detectable effect, absolute (``p1 = p0 + mde``).
    alpha, power
        Test level and target power.
    ratio
        ``n_treatment / n_control`` (e.g. 9 for a 10% holdout).
    alternative
        ``"two-sided"``, ``"larger"`` or ``"smaller"``.
    method
        ``"pooled"``, ``"unpooled"`` or ``"arcsine"`` (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per combination: ``p0, p1, mde, relative_mde, alpha, power, ratio,
        alternative, method, n_control, n_treatment, n_total, n_control_exact``.

    Examples
    --------
    >>> r = sample_size_proportion(0.20, 0.02)
    >>> int(r["n_control"].iloc[0]), int(r["n_total"].iloc[0])
    (6510, 13020)
    """
    _check(alpha, power, ratio, alternative)
    _check_p0(p0)
    if method not in _PROP_METHODS:
        raise ValueError(f"method must be one of {_PROP_METHODS}, got {method!r}")
    rows = []
    for g in _grid(p0=p0, mde=mde, alpha=alpha, power=power, ratio=ratio):
        p, d, a, k = g["p0"], g["mde"], g["alpha"], g["ratio"]
        _sign_ok(d, alternative)
        if not 0 < p + d < 1:
            raise ValueError(f"p0 + mde must be in (0, 1), got {p} + {d}")
        n_c = _solve_n(lambda n, p=p, d=d, a=a, k=k: _prop_power(p, d, n, k, a, alternative, method), g["power"], 1.0)
        rows.append({"p0": p, "p1": p + d, "mde": d, "relative_mde": d / p, "alpha": a, "power": g["power"],
                     "ratio": k, "alternative": alternative, "method": method, **_sizes(n_c, k)})
    return pd.DataFrame(rows)


def power_proportion(
    p0, mde, n_control, *, alpha=0.05, ratio=1.0, alternative: str = "two-sided", method: str = "pooled"
) -> pd.DataFrame:
    """Power to detect an absolute change ``mde`` in a proportion with ``n_control`` control persons.

    Examples
    --------
    >>> round(float(power_proportion(0.20, 0.02, 6510)["power"].iloc[0]), 3)
    0.8
    """
    _check(alpha, None, ratio, alternative)
    _check_p0(p0)
    if method not in _PROP_METHODS:
        raise ValueError(f"method must be one of {_PROP_METHODS}, got {method!r}")
    rows = []
    for g in _grid(p0=p0, mde=mde, n_control=n_control, alpha=alpha, ratio=ratio):
        p, d, n, a, k = g["p0"], g["mde"], g["n_control"], g["alpha"], g["ratio"]
        if not 0 < p + d < 1:
            raise ValueError(f"p0 + mde must be in (0, 1), got {p} + {d}")
        rows.append({"p0": p, "p1": p + d, "mde": d, "relative_mde": d / p, "alpha": a, "ratio": k,
                     "alternative": alternative, "method": method, "n_control": n, "n_treatment": k * n,
                     "n_total": n * (1 + k), "power": _prop_power(p, d, n, k, a, alternative, method)})
    return pd.DataFrame(rows)


def mde_proportion(
    p0, n_control, *, alpha=0.05, power=0.8, ratio=1.0, alternative: str = "two-sided", method: str = "pooled"
) -> pd.DataFrame:
    """Smallest absolute change in a proportion detectable with ``n_control`` control persons.

    The increase ``mde > 0`` (a decrease for ``alternative="smaller"``) with
    ``power(mde) = power``; ``p1 = p0 + mde``.

    Examples
    --------
    >>> round(float(mde_proportion(0.20, 6510)["mde"].iloc[0]), 4)
    0.02
    """
    _check(alpha, power, ratio, alternative)
    _check_p0(p0)
    if method not in _PROP_METHODS:
        raise ValueError(f"method must be one of {_PROP_METHODS}, got {method!r}")
    rows = []
    for g in _grid(p0=p0, n_control=n_control, alpha=alpha, power=power, ratio=ratio):
        p, n, a, k = g["p0"], g["n_control"], g["alpha"], g["ratio"]
        sign = -1.0 if alternative == "smaller" else 1.0
        room = p if sign < 0 else 1 - p
        d = sign * _solve_d(
            lambda x, p=p, n=n, a=a, k=k, sign=sign: _prop_power(p, sign * x, n, k, a, alternative, method),
            g["power"], 1e-12, room * (1 - 1e-9), "proportion",
        )
        rows.append({"p0": p, "p1": p + d, "mde": d, "relative_mde": d / p, "alpha": a, "power": g["power"],
                     "ratio": k, "alternative": alternative, "method": method, "n_control": n,
                     "n_treatment": k * n, "n_total": n * (1 + k)})
    return pd.DataFrame(rows)


def sample_size_mean(
    sd, mde, *, alpha=0.05, power=0.8, ratio=1.0, alternative: str = "two-sided", test: str = "z"
) -> pd.DataFrame:
    """Persons needed to detect an absolute change ``mde`` in a mean with outcome standard deviation ``sd``.

    E.g. revenue per person in yuan: ``sd`` from the pre-period (or the CUPED-adjusted
    ``sd * sqrt(1 - variance_reduction)``), ``mde`` in yuan.

    Examples
    --------
    >>> r = sample_size_mean(sd=50.0, mde=2.0)
    >>> int(r["n_control"].iloc[0])
    9812
    """
    _check(alpha, power, ratio, alternative)
    if test not in _TESTS:
        raise ValueError(f"test must be one of {_TESTS}, got {test!r}")
    rows = []
    for g in _grid(sd=sd, mde=mde, alpha=alpha, power=power, ratio=ratio):
        s, d, a, k = g["sd"], g["mde"], g["alpha"], g["ratio"]
        if s <= 0:
            raise ValueError(f"sd must be > 0, got {s}")
        _sign_ok(d, alternative)
        lo = 3.0 / (1 + k) if test == "t" else 1.0  # t: at least 1 degree of freedom
        n_c = _solve_n(lambda n, s=s, d=d, a=a, k=k: _mean_power(s, d, n, k, a, alternative, test), g["power"], lo)
        rows.append({"sd": s, "mde": d, "effect_size": d / s, "alpha": a, "power": g["power"], "ratio": k,
                     "alternative": alternative, "test": test, **_sizes(n_c, k)})
    return pd.DataFrame(rows)


def power_mean(
    sd, mde, n_control, *, alpha=0.05, ratio=1.0, alternative: str = "two-sided", test: str = "z"
) -> pd.DataFrame:
    """Power to detect an absolute change ``mde`` in a mean with ``n_control`` control persons.

    Examples
    --------
    >>> round(float(power_mean(50.0, 2.0, 9812)["power"].iloc[0]), 3)
    0.8
    """
    _check(alpha, None, ratio, alternative)
    if test not in _TESTS:
        raise ValueError(f"test must be one of {_TESTS}, got {test!r}")
    rows = []
    for g in _grid(sd=sd, mde=mde, n_control=n_control, alpha=alpha, ratio=ratio):
        s, d, n, a, k = g["sd"], g["mde"], g["n_control"], g["alpha"], g["ratio"]
        rows.append({"sd": s, "mde": d, "effect_size": d / s, "alpha": a, "ratio": k, "alternative": alternative,
                     "test": test, "n_control": n, "n_treatment": k * n, "n_total": n * (1 + k),
                     "power": _mean_power(s, d, n, k, a, alternative, test)})
    return pd.DataFrame(rows)


def mde_mean(
    sd, n_control, *, alpha=0.05, power=0.8, ratio=1.0, alternative: str = "two-sided", test: str = "z"
) -> pd.DataFrame:
    """Smallest absolute change in a mean detectable with ``n_control`` control persons.

    Examples
    --------
    >>> round(float(mde_mean(50.0, 9812)["mde"].iloc[0]), 3)
    2.0
    """
    _check(alpha, power, ratio, alternative)
    if test not in _TESTS:
        raise ValueError(f"test must be one of {_TESTS}, got {test!r}")
    rows = []
    for g in _grid(sd=sd, n_control=n_control, alpha=alpha, power=power, ratio=ratio):
        s, n, a, k = g["sd"], g["n_control"], g["alpha"], g["ratio"]
        sign = -1.0 if alternative == "smaller" else 1.0
        d = sign * _solve_d(
            lambda x, s=s, n=n, a=a, k=k, sign=sign: _mean_power(s, sign * x, n, k, a, alternative, test),
            g["power"], 1e-12 * s, 1e3 * s, "mean difference",
        )
        rows.append({"sd": s, "mde": d, "effect_size": d / s, "alpha": a, "power": g["power"], "ratio": k,
                     "alternative": alternative, "test": test, "n_control": n, "n_treatment": k * n,
                     "n_total": n * (1 + k)})
    return pd.DataFrame(rows)
