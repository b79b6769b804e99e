"""Pareto/NBD: Poisson purchases while alive, exponential lifetimes, gamma heterogeneity.

Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987), "Counting Your Customers:
Who Are They and What Will They Do Next?", *Management Science* 33(1), 1-24; likelihood
as in Fader, P. S. and Hardie, B. G. S. (2005), "A Note on Deriving the Pareto/NBD Model
and Related Expressions".

Purchase rate :math:`\\lambda \\sim \\mathrm{Gamma}(r, \\alpha)`, dropout rate
:math:`\\mu \\sim \\mathrm{Gamma}(s, \\beta)`. With :math:`k = r+s+x`:

.. math::

    L = \\frac{\\Gamma(r+x)\\alpha^r\\beta^s}{\\Gamma(r)}\\left[
        \\frac{1}{(\\alpha+T)^{r+x}(\\beta+T)^s} + \\frac{s}{k} A_0 \\right],\\qquad
    A_0 = k \\int_{t_x}^{T} (\\alpha+\\tau)^{-(r+x)} (\\beta+\\tau)^{-(s+1)} d\\tau
        = F(t_x) - F(T).

:math:`F` is written with Euler's transformation so that the Gauss hypergeometric function
always has first argument 1 and converges at :math:`z = 1` (no overflow for large
:math:`x`): for :math:`\\alpha \\ge \\beta`,
:math:`F(\\tau) = (\\alpha+\\tau)^{-(r+x)}(\\beta+\\tau)^{-s}\\,
{}_2F_1(1, r+x; k+1; \\tfrac{\\alpha-\\beta}{\\alpha+\\tau})`; for :math:`\\alpha < \\beta`,
:math:`F(\\tau) = (\\alpha+\\tau)^{1-r-x}(\\beta+\\tau)^{-(s+1)}\\,
{}_2F_1(1, s+1; k+1; \\tfrac{\\beta-\\alpha}{\\beta+\\tau})`. Everything is in log space;
:math:`\\log A_0 = \\log F(t_x) + \\log(1 - e^{\\log F(T) - \\log F(t_x)})`.

Examples
--------
>>> from privdomain.clv import ParetoNBD, simulate_pareto_nbd
>>> s = simulate_pareto_nbd(20000, r=0.6, alpha=10.0, s=0.6, beta=12.0, T=40.0, seed=1, time_step=1 / 7)
>>> m = ParetoNBD().fit(s)
>>> round(float(m.params_["r"]), 1)
0.6
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, gammaln

from ._base import TransactionModel, log_nbd_pmf, safe_hyp2f1, unique_index, wdot

__all__ = ["ParetoNBD"]


def _log_F(r, alpha, s, beta, x, tau):
    """log F(tau) (see the module docstring); vectorised over x and tau."""
    k = r + s + x
    if alpha >= beta:
        z = (alpha - beta) / (alpha + tau)
        return -(r + x) * np.log(alpha + tau) - s * np.log(beta + tau) + np.log(safe_hyp2f1(1.0, r + x, k + 1.0, z))
    z = (beta - alpha) / (beta + tau)
    return (1 - r - x) * np.log(alpha + tau) - (s + 1) * np.log(beta + tau) + np.log(safe_hyp2f1(1.0, s + 1.0, k + 1.0, z))


def _log_terms(p, x, tx, T):
    """(log first term, log second term) of the bracket in the likelihood."""
    r, alpha, s, beta = p
    k = r + s + x
    first = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    la = _log_F(r, alpha, s, beta, x, tx)
    lb = _log_F(r, alpha, s, beta, x, T)
    d = lb - la
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a0 = np.where(d < 0, la + np.log(-np.expm1(np.minimum(d, -1e-300))), -np.inf)
    second = np.log(s) - np.log(k) + log_a0
    return first, second


class ParetoNBD(TransactionModel):
    """Pareto/NBD model, fitted by maximum likelihood.

    ``params_`` = ``r``, ``alpha`` (purchase-rate gamma), ``s``, ``beta`` (dropout-rate
    gamma), with ``standard_errors_`` from the inverse Hessian.

    Examples
    --------
    >>> from privdomain.clv import simulate_pareto_nbd
    >>> s = simulate_pareto_nbd(2000, r=0.6, alpha=10.0, s=0.6, beta=12.0, T=40.0, seed=2, time_step=1 / 7)
    >>> m = ParetoNBD().fit(s)
    >>> bool((m.expected_purchases(10.0, s) >= 0).all())
    True
    """

    param_names = ("r", "alpha", "s", "beta")
    _initial = (1.0, 1.0, 1.0, 1.0)

    def _loglik(self, p, x, tx, T):
        r, alpha, s, beta = p
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        first, second = _log_terms(p, x, tx, T)
        return a1 + np.logaddexp(first, second)

    def _objective(self, data, w):
        """Weighted log-likelihood with the hypergeometric terms evaluated once per distinct
        (x, t_x) and (x, T) pair; the gradient is left to finite differences."""
        x, tx, T = data
        xu, ix = unique_index(x)
        tu, it = unique_index(tx)
        Tu, iT = unique_index(T)
        kx, ikx = unique_index(ix * len(tu) + it)  # distinct (x, t_x)
        kT, ikT = unique_index(ix * len(Tu) + iT)  # distinct (x, T)
        x_a, tx_a = xu[kx // len(tu)], tu[kx % len(tu)]
        x_b, T_b = xu[kT // len(Tu)], Tu[kT % len(Tu)]
        wx = np.bincount(ix, weights=w, minlength=len(xu))

        def f(p):
            r, alpha, s, beta = p
            a1 = gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
            la = _log_F(r, alpha, s, beta, x_a, tx_a)[ikx]
            lb = _log_F(r, alpha, s, beta, x_b, T_b)[ikT]
            d = lb - la
            log_a0 = np.where(d < 0, la + np.log(-np.expm1(np.minimum(d, -1e-300))), -np.inf)
            first = -(r + x) * np.log(alpha + Tu)[iT] - s * np.log(beta + Tu)[iT]
            second = np.log(s) - np.log(r + s + x) + log_a0
            return float(wdot(wx, a1) + wdot(w, np.logaddexp(first, second))), None

        return f

    def _p_alive(self, p, x, tx, T):
        first, second = _log_terms(p, x, tx, T)
        return expit(first - second)

    @staticmethod
    def _one_minus_pow_over(s, q):
        """(1 - q**(s-1)) / (s-1), with its limit -log(q) at s = 1."""
        lq = np.log(q)
        if abs(s - 1) < 1e-10:
            return -lq
        return -np.expm1((s - 1) * lq) / (s - 1)

    def _prob_count(self, p, n, t):
        # lifetime tau ~ Pareto II(s, beta): P(tau > t) NBD(n; t) + int_0^t f(y) NBD(n; y) dy,
        # the integral by 96-point Gauss-Legendre on y = t u (smooth integrand)
        r, alpha, s, beta = p
        n, t = np.broadcast_arrays(n, t)
        survive = np.exp(s * (np.log(beta) - np.log(beta + t)) + log_nbd_pmf(r, alpha, n, t))
        u, wq = np.polynomial.legendre.leggauss(96)
        u, wq = (u + 1) / 2, wq / 2
        y = t[..., None] * u
        log_f = np.log(s) - np.log(beta) + (s + 1) * (np.log(beta) - np.log(beta + y))
        integral = t * np.sum(wq * np.exp(log_f + log_nbd_pmf(r, alpha, n[..., None], y)), axis=-1)
        return survive + integral

    def _expected_new(self, p, t):
        r, alpha, s, beta = p
        return r * beta / alpha * self._one_minus_pow_over(s, beta / (beta + t))

    def _expected_conditional(self, p, t, x, tx, T):
        r, alpha, s, beta = p
        scale = (r + x) * (beta + T) / (alpha + T)
        return scale * self._one_minus_pow_over(s, (beta + T) / (beta + T + t)) * self._p_alive(p, x, tx, T)
