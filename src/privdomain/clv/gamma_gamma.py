"""Gamma-Gamma model of spend per transaction, and customer lifetime value.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "RFM and CLV: Using Iso-Value
Curves for Customer Base Analysis", *Journal of Marketing Research* 42(4), 415-430
(after Colombo and Jiang 1999); the note "The Gamma-Gamma Model of Monetary Value" (2013).

A customer's transaction values are :math:`z_j \\sim \\mathrm{Gamma}(p, \\nu)`, with
:math:`\\nu \\sim \\mathrm{Gamma}(q, \\gamma)` across customers. Given the mean
:math:`\\bar z` of :math:`x` repeat transactions:

.. math::

    \\log L = \\log\\Gamma(px+q) - \\log\\Gamma(px) - \\log\\Gamma(q) + q\\log\\gamma
        + (px-1)\\log\\bar z + px\\log x - (px+q)\\log(\\gamma + x\\bar z)

and the expected mean spend is
:math:`E[Z \\mid \\bar z, x] = \\frac{(\\gamma + x\\bar z)\\, p}{px + q - 1}`.

Examples
--------
>>> import pandas as pd
>>> from privdomain.clv import GammaGamma
>>> s = pd.DataFrame({"frequency": [1, 3, 2, 6, 1, 2], "monetary_value": [20.0, 35.0, 15.0, 40.0, 60.0, 22.0]})
>>> gg = GammaGamma().fit(s)
>>> bool(gg.expected_spend(s).min() > 0)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import gammaln

from ._base import FittedModel, TransactionModel, collapse, columns

__all__ = ["GammaGamma"]


class GammaGamma(FittedModel):
    """Gamma-Gamma spend model, fitted by maximum likelihood on repeat buyers.

    ``params_`` = ``p``, ``q``, ``gamma``. Customers with ``frequency == 0`` carry no
    information about spend (their ``monetary_value`` is 0 by the repeat-purchase
    convention of :func:`privdomain.clv.rfm.rfm_summary`); ``fit`` leaves them out and counts
    them in ``n_excluded_``.
    """

    param_names = ("p", "q", "gamma")
    _initial = (1.0, 1.0, 1.0)

    def _loglik(self, params, x, m):
        p, q, g = params
        px = p * x
        return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g)
                + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(x * m + g))

    def fit(
        self,
        summary: pd.DataFrame,
        frequency_col: str = "frequency",
        monetary_col: str = "monetary_value",
        weights_col: str | None = None,
        initial: Sequence[float] | None = None,
        maxiter: int = 3000,
        tol: float = 1e-9,
    ):
        """Fit on the customers with at least one repeat purchase.

        ``monetary_col`` must be the mean value of the repeat purchases (first purchase
        excluded, as in the papers). Returns ``self`` with ``params_``,
        ``standard_errors_``, ``log_likelihood_``, ``n_`` (customers used), ``n_excluded_``.
        """
        where = "GammaGamma.fit"
        c = columns(summary, {"frequency": frequency_col, "monetary": monetary_col, "weights": weights_col}, where)
        x, m = c["frequency"], c["monetary"]
        rep = x > 0
        nbad = int((rep & (m <= 0)).sum())
        if nbad:
            raise ValueError(f"{where}: column {monetary_col!r} must be > 0 when {frequency_col!r} > 0; "
                             f"{nbad} row(s) break it")
        if rep.sum() < 3:
            raise ValueError(f"{where}: needs at least 3 customers with {frequency_col!r} > 0, got {int(rep.sum())}")
        w = c.get("weights")
        self.n_excluded_ = int((~rep).sum())
        data, wu = collapse([x[rep], m[rep]], None if w is None else w[rep])
        self._n_weight, self._n_rows = float(wu.sum()), len(wu)
        self._cols = (frequency_col, monetary_col)
        self._maximise(data, wu, initial, maxiter, tol)
        return self

    def expected_spend(self, summary: pd.DataFrame) -> np.ndarray:
        """Expected mean spend per transaction for each row:
        :math:`(\\gamma + x\\bar z) p / (px + q - 1)`; the population mean
        :math:`p\\gamma/(q-1)` when ``frequency == 0``."""
        p, q, g = self._require_fit()
        fcol, mcol = getattr(self, "_cols", ("frequency", "monetary_value"))
        c = columns(summary, {"frequency": fcol, "monetary": mcol}, "GammaGamma.expected_spend")
        x = c["frequency"]
        m = np.where(x > 0, c["monetary"], 0.0)
        return (g + x * m) * p / (p * x + q - 1)

    def customer_lifetime_value(
        self,
        transaction_model: TransactionModel,
        summary: pd.DataFrame,
        horizon: float,
        periods: int = 12,
        discount_rate: float = 0.0,
    ) -> np.ndarray:
        """Discounted expected spend over ``horizon`` time units, per customer.

        .. math::

            \\mathrm{CLV} = E[Z] \\sum_{i=1}^{n} \\frac{E[X(i h/n)] - E[X((i-1) h/n)]}{(1+d)^i}

        with :math:`h` = ``horizon``, :math:`n` = ``periods``, :math:`d` =
        ``discount_rate`` per period, :math:`E[X(t)]` the transaction model's expected
        purchases conditional on each customer's history and :math:`E[Z]` the expected
        spend. (``lifetimes``' ``customer_lifetime_value`` with ``time`` months on weekly
        data is ``horizon = 4.345 * time``, ``periods = time``.)

        Examples
        --------
        >>> import pandas as pd
        >>> from privdomain.clv import BetaGeo
        >>> s = pd.DataFrame({"frequency": [0, 2, 5, 1, 3], "t_x": [0.0, 20.0, 30.0, 3.0, 36.0],
        ...                   "T": [40.0, 38.0, 35.0, 39.0, 40.0], "monetary_value": [0.0, 20.0, 30.0, 15.0, 25.0]})
        >>> bg = BetaGeo().fit(s)
        >>> clv = GammaGamma().fit(s).customer_lifetime_value(bg, s, horizon=52, periods=12, discount_rate=0.01)
        >>> bool((clv > 0).all())
        True
        """
        if periods < 1:
            raise ValueError(f"periods must be >= 1, got {periods}")
        spend = self.expected_spend(summary)
        value = np.zeros(len(summary))
        prev = np.zeros(len(summary))
        for i in range(1, periods + 1):  # a loop over periods, vectorised over customers
            cum = transaction_model.expected_purchases(horizon * i / periods, summary)
            value += (cum - prev) / (1 + discount_rate) ** i
            prev = cum
        return spend * value
