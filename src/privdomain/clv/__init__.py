"""Customer lifetime value: purchase-count models, a spend model and CLV.

* :class:`BetaGeo` -- BG/NBD (Fader, Hardie and Lee 2005)
* :class:`ParetoNBD` -- Pareto/NBD (Schmittlein, Morrison and Colombo 1987)
* :class:`ModifiedBetaGeo` -- modified BG/NBD (Batislam et al. 2007)
* :class:`GammaGamma` -- spend per transaction and :meth:`GammaGamma.customer_lifetime_value`
* :mod:`~privdomain.clv.checks` -- fit checks: :func:`period_transactions` with
  :func:`chi_square`, :func:`calibration_holdout`
* :mod:`~privdomain.clv.scoring` -- scoring against the simulator's truth:
  :func:`truth_alive`, :func:`p_alive_score`, :func:`p_alive_calibration`, :func:`purchase_score`
* :mod:`~privdomain.clv.intervals` -- profile-likelihood intervals (``summary(interval="profile")``)

All fit by maximum likelihood (BFGS on log-parameters, log-space likelihoods,
standard errors from the inverse Hessian; ``summary()`` gives intervals on the log
scale, never below 0) on an RFM summary from
:func:`privdomain.clv.rfm.rfm_summary`: ``frequency`` (repeat purchases), ``t_x`` (time of the
last purchase **since the first**), ``T`` (time since the first purchase) and, for
Gamma-Gamma, ``monetary_value`` (mean of the repeat purchases). Identical customers are
collapsed to unique rows with weights before fitting, so a million customers measured in
days fit in seconds.

Examples
--------
>>> import pandas as pd
>>> from privdomain.clv.rfm import rfm_summary
>>> from privdomain.clv import BetaGeo, simulate_beta_geo
>>> bg = BetaGeo().fit(simulate_beta_geo(2000, r=0.3, alpha=4.0, a=0.8, b=2.5, T=26.0, seed=0, time_step=1 / 7))
>>> tx = pd.DataFrame({"person_id": [1, 1, 2, 3, 3, 3], "ts": pd.to_datetime(
...     ["2024-01-01", "2024-02-01", "2024-01-10", "2024-01-03", "2024-01-20", "2024-03-01"]),
...     "amount_fen": [900, 1200, 500, 3000, 2500, 2800]})
>>> s = rfm_summary(tx, as_of="2024-03-31", time_unit="W")
>>> bg.expected_purchases(4.0, s).round(2).tolist()  # purchases expected in the next 4 weeks
[0.17, 0.07, 0.37]
"""

from .beta_geo import BetaGeo
from .checks import calibration_holdout, chi_square, period_transactions
from .gamma_gamma import GammaGamma
from .modified_beta_geo import ModifiedBetaGeo
from .pareto_nbd import ParetoNBD
from .scoring import p_alive_calibration, p_alive_score, purchase_score, truth_alive
from .simulate import simulate_beta_geo, simulate_gamma_gamma, simulate_modified_beta_geo, simulate_pareto_nbd

__all__ = [
    "BetaGeo",
    "ParetoNBD",
    "ModifiedBetaGeo",
    "GammaGamma",
    "simulate_beta_geo",
    "simulate_pareto_nbd",
    "simulate_modified_beta_geo",
    "simulate_gamma_gamma",
    "period_transactions",
    "chi_square",
    "calibration_holdout",
    "truth_alive",
    "p_alive_score",
    "p_alive_calibration",
    "purchase_score",
]
