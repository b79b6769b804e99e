"""Modified BG/NBD: dropout possible right after the first purchase too.

Batislam, E. P., Denizel, M. and Filiztekin, A. (2007), "Empirical validation and
comparison of models for customer base analysis", *International Journal of Research in
Marketing* 24(3), 201-209.

As BG/NBD, but a customer gets a chance to drop out at time 0 and after each repeat
purchase, so a customer with no repeat purchase may be inactive:

.. math::

    L = \\frac{B(a, b+x+1)}{B(a,b)} \\frac{\\Gamma(r+x)\\alpha^r}{\\Gamma(r)(\\alpha+T)^{r+x}}
      + \\frac{B(a+1, b+x)}{B(a,b)} \\frac{\\Gamma(r+x)\\alpha^r}{\\Gamma(r)(\\alpha+t_x)^{r+x}}

Examples
--------
>>> from privdomain.clv import ModifiedBetaGeo, simulate_modified_beta_geo
>>> s = simulate_modified_beta_geo(20000, r=0.5, alpha=5.0, a=0.8, b=3.0, T=40.0, seed=1, time_step=1 / 7)
>>> m = ModifiedBetaGeo().fit(s)
>>> round(float(m.params_["r"]), 1)
0.5
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln

from ._base import BetaGeoFamily, at_a_near_one, expected_by_quadrature, log_nbd_pmf, nbd_sf, safe_hyp2f1

__all__ = ["ModifiedBetaGeo"]


class ModifiedBetaGeo(BetaGeoFamily):
    """Modified BG/NBD (Batislam et al. 2007), fitted by maximum likelihood.

    ``params_`` = ``r``, ``alpha``, ``a``, ``b`` as in :class:`~privdomain.clv.BetaGeo`.

    Examples
    --------
    >>> from privdomain.clv import simulate_modified_beta_geo
    >>> s = simulate_modified_beta_geo(2000, r=0.5, alpha=5.0, a=0.8, b=3.0, T=40.0, seed=2, time_step=1 / 7)
    >>> bool((ModifiedBetaGeo().fit(s).probability_alive(s) < 1).all())
    True
    """

    param_names = ("r", "alpha", "a", "b")
    _initial = (1.0, 1.0, 1.0, 1.0)

    def _c(self, a, b, xu):
        ab = digamma(a + b) - digamma(a + b + xu + 1)
        c2 = betaln(a, b + xu + 1) - betaln(a, b)
        c3 = betaln(a + 1, b + xu) - betaln(a, b)
        d2a = ab
        d2b = digamma(b + xu + 1) - digamma(b) + ab
        d3a = digamma(a + 1) - digamma(a) + ab
        d3b = digamma(b + xu) - digamma(b) + ab
        return c2, c3, d2a, d2b, d3a, d3b

    def _loglik(self, p, x, tx, T):
        r, alpha, a, b = p
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x + 1) - betaln(a, b) - (r + x) * np.log(alpha + T)
        a3 = betaln(a + 1, b + x) - betaln(a, b) - (r + x) * np.log(alpha + tx)
        return a1 + np.logaddexp(a2, a3)

    def _p_alive(self, p, x, tx, T):
        r, alpha, a, b = p
        log_odds_dead = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return expit(-log_odds_dead)

    def _prob_count(self, p, n, t):
        # dropout chances at time 0 and after each purchase: alive through n + 1 chances with
        # exactly n purchases in (0, t], or dropped out at the n-th chance having made at least n
        r, alpha, a, b = p
        alive = np.exp(betaln(a, b + n + 1) - betaln(a, b) + log_nbd_pmf(r, alpha, n, t))
        dead = np.exp(betaln(a + 1, b + n) - betaln(a, b)) * nbd_sf(r, alpha, n, t)
        return alive + dead

    def _expected_new(self, p, t):
        r, alpha, a, b = p
        if a + b > 200:  # a concentrated dropout probability: the closed form loses precision, then overflows
            # survive the chance at time 0 (1 - p), then as BG/NBD: b/(a+b) E_{Beta(a, b+1)}[...]
            return b / (a + b) * expected_by_quadrature(r, alpha, a, b + 1, t)
        if abs(p[2] - 1) < 1e-4:  # removable singularity at a = 1 (0/0): the mean of both sides
            return at_a_near_one(self._expected_new, p, t)
        r, alpha, a, b = p
        z = t / (alpha + t)
        # (1-z)^r 2F1(r, b+1; a+b; z) = (1-z)^(a-1) 2F1(a+b-r, a-1; a+b; z)  (Euler)
        return b / (a - 1) * (1 - (1 - z) ** (a - 1) * safe_hyp2f1(a + b - r, a - 1, a + b, z))

    def _expected_conditional(self, p, t, x, tx, T):
        r, alpha, a, b = p
        if a + b > 200:  # a concentrated dropout probability: the closed form loses precision, then overflows
            return expected_by_quadrature(r + x, alpha + T, a, b + x + 1, t) * self._p_alive(p, x, tx, T)
        if abs(p[2] - 1) < 1e-4:
            return at_a_near_one(self._expected_conditional, p, t, x, tx, T)
        r, alpha, a, b = p
        z = t / (alpha + T + t)
        bracket = 1 - np.exp((a - 1) * np.log1p(-z)) * safe_hyp2f1(a + b - r, a - 1, a + b + x, z)
        return (a + b + x) / (a - 1) * bracket * self._p_alive(p, x, tx, T)
