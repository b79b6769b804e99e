"""BG/NBD: the beta-geometric / negative binomial model of repeat purchasing.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "Counting Your Customers the Easy
Way: An Alternative to the Pareto/NBD Model", *Marketing Science* 24(2), 275-284.

While alive a customer buys at Poisson rate :math:`\\lambda \\sim \\mathrm{Gamma}(r, \\alpha)`;
after each repeat purchase they drop out with probability
:math:`p \\sim \\mathrm{Beta}(a, b)`. With :math:`x` repeat purchases, the last at
:math:`t_x`, observed for :math:`T` since the first purchase:

.. math::

    L = \\frac{B(a, b+x)}{B(a,b)} \\frac{\\Gamma(r+x)\\alpha^r}{\\Gamma(r)(\\alpha+T)^{r+x}}
      + \\delta_{x>0} \\frac{B(a+1, b+x-1)}{B(a,b)}
        \\frac{\\Gamma(r+x)\\alpha^r}{\\Gamma(r)(\\alpha+t_x)^{r+x}}

evaluated in log space (``logaddexp`` of the two terms).

Examples
--------
>>> from privdomain.clv import BetaGeo, simulate_beta_geo
>>> s = simulate_beta_geo(20000, r=0.5, alpha=5.0, a=0.8, b=3.0, T=40.0, seed=1, time_step=1 / 7)
>>> m = BetaGeo().fit(s)
>>> round(float(m.params_["r"]), 1)
0.5
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln

from ._base import BetaGeoFamily, at_a_near_one, expected_by_quadrature, log_nbd_pmf, nbd_sf, safe_hyp2f1

__all__ = ["BetaGeo"]


class BetaGeo(BetaGeoFamily):
    """BG/NBD model (Fader, Hardie and Lee 2005), fitted by maximum likelihood.

    Parameters after ``fit``: ``params_`` = ``r``, ``alpha`` (purchase-rate gamma shape and
    rate), ``a``, ``b`` (dropout beta), with ``standard_errors_`` from the inverse Hessian.

    Examples
    --------
    >>> from privdomain.clv import simulate_beta_geo
    >>> s = simulate_beta_geo(2000, r=0.5, alpha=5.0, a=0.8, b=3.0, T=40.0, seed=2, time_step=1 / 7)
    >>> m = BetaGeo().fit(s)
    >>> bool(((m.probability_alive(s) > 0) & (m.probability_alive(s) <= 1)).all())
    True
    """

    param_names = ("r", "alpha", "a", "b")
    _initial = (1.0, 1.0, 1.0, 1.0)

    def _c(self, a, b, xu):
        pos = xu > 0
        xs = np.maximum(xu, 1.0)
        ab = digamma(a + b) - digamma(a + b + xu)
        c2 = betaln(a, b + xu) - betaln(a, b)
        c3 = np.where(pos, betaln(a + 1, b + xs - 1) - betaln(a, b), -np.inf)
        d2a = ab
        d2b = digamma(b + xu) - digamma(b) + ab
        d3a = np.where(pos, digamma(a + 1) - digamma(a) + ab, 0.0)
        d3b = np.where(pos, digamma(b + xs - 1) - digamma(b) + ab, 0.0)
        return c2, c3, d2a, d2b, d3a, d3b

    def _loglik(self, p, x, tx, T):
        r, alpha, a, b = p
        xs = np.maximum(x, 1.0)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
        a3 = np.where(x > 0, betaln(a + 1, b + xs - 1) - betaln(a, b) - (r + x) * np.log(alpha + tx), -np.inf)
        return a1 + np.logaddexp(a2, a3)

    def _p_alive(self, p, x, tx, T):
        r, alpha, a, b = p
        xs = np.maximum(x, 1.0)
        log_odds_dead = np.log(a) - np.log(b + xs - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return np.where(x > 0, expit(-log_odds_dead), 1.0)

    def _prob_count(self, p, n, t):
        # FHL (2005) eq. 8: alive through n purchases with exactly n in (0, t], or dropped out
        # right after the n-th (n >= 1) having made at least n
        r, alpha, a, b = p
        ns = np.maximum(n, 1.0)
        alive = np.exp(betaln(a, b + n) - betaln(a, b) + log_nbd_pmf(r, alpha, n, t))
        dead = np.where(n > 0, np.exp(betaln(a + 1, b + ns - 1) - betaln(a, b)) * nbd_sf(r, alpha, n, t), 0.0)
        return alive + dead

    def _expected_new(self, p, t):
        r, alpha, a, b = p
        if a + b > 200:  # a concentrated dropout probability: the closed form loses precision, then overflows
            return expected_by_quadrature(r, alpha, a, b, t)
        if abs(p[2] - 1) < 1e-4:  # removable singularity at a = 1 (0/0): the mean of both sides
            return at_a_near_one(self._expected_new, p, t)
        r, alpha, a, b = p
        z = t / (alpha + t)
        # (1-z)^r 2F1(r, b; a+b-1; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b-1; z)  (Euler)
        return (a + b - 1) / (a - 1) * (1 - (1 - z) ** (a - 1) * safe_hyp2f1(a + b - 1 - r, a - 1, a + b - 1, z))

    def _expected_conditional(self, p, t, x, tx, T):
        r, alpha, a, b = p
        if a + b > 200:  # a concentrated dropout probability: the closed form loses precision, then overflows
            return expected_by_quadrature(r + x, alpha + T, a, b + x, t) * self._p_alive(p, x, tx, T)
        if abs(p[2] - 1) < 1e-4:
            return at_a_near_one(self._expected_conditional, p, t, x, tx, T)
        r, alpha, a, b = p
        z = t / (alpha + T + t)
        # ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z) by Euler's transformation
        # = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z): no huge parameters for large x
        bracket = 1 - np.exp((a - 1) * np.log1p(-z)) * safe_hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        return (a + b + x - 1) / (a - 1) * bracket * self._p_alive(p, x, tx, T)
