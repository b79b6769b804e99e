"""Fit checks of the purchase-count models: calibration vs holdout, period transactions.

Two checks from Fader, Hardie and Lee (2005), "Counting Your Customers the Easy Way: An
Alternative to the Pareto/NBD Model", *Marketing Science* 24(2) (figures 2-4), as drawn by
lifetimes' ``plot_period_transactions`` and
``plot_calibration_purchases_vs_holdout_purchases``
(https://lifetimes.readthedocs.io/en/latest/Quickstart.html):

* :func:`period_transactions` -- how many customers the fitted model expects to have made
  0, 1, 2, ..., k+ repeat purchases in their own observation period :math:`T_i`, beside
  how many did; :func:`chi_square` turns the table into a goodness-of-fit test;
* :func:`calibration_holdout` -- fit on a calibration period, predict each customer's
  purchases in a later holdout period, and compare with what they bought, grouped by
  the number of repeat purchases in calibration.

Every function returns a tidy frame with ``n`` per group; nothing is stored in ``attrs``.

Examples
--------
>>> from privdomain.clv import BetaGeo, simulate_beta_geo
>>> from privdomain.clv.checks import chi_square, period_transactions
>>> s = simulate_beta_geo(3000, r=0.5, alpha=5.0, a=0.8, b=3.0, T=40.0, seed=4, time_step=1 / 7)
>>> m = BetaGeo().fit(s)
>>> pt = period_transactions(m, s, max_frequency=5)
>>> pt["repeat_purchases"].tolist()
['0', '1', '2', '3', '4', '5+']
>>> round(float(pt["expected"].sum()))
3000
>>> bool(chi_square(pt, n_params=4)["p_value"] > 0.01)
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import chi2 as _chi2

from ._base import TransactionModel, columns

__all__ = ["period_transactions", "chi_square", "calibration_holdout"]


def _labels(max_frequency: int) -> list[str]:
    return [str(k) for k in range(max_frequency)] + [f"{max_frequency}+"]


def period_transactions(
    model: TransactionModel,
    summary: pd.DataFrame,
    max_frequency: int = 7,
    frequency_col: str = "frequency",
    T_col: str = "T",
) -> pd.DataFrame:
    """Observed and expected numbers of customers by repeat purchases in their own period.

    Customer :math:`i` is observed for :math:`T_i` after the first purchase. The expected
    number of customers with :math:`k` repeat purchases is

    .. math::

        E_k = \\sum_i P(X(T_i) = k \\mid \\hat\\theta),\\quad k < K,\\qquad
        E_{K+} = N - \\sum_{k<K} E_k,

    with :math:`P(X(t) = k)` the model's count distribution for a new customer
    (FHL 2005 eq. 8 for BG/NBD; :meth:`~privdomain.clv.BetaGeo.probability_of_purchases`),
    so the expected counts sum to the number of customers :math:`N`. lifetimes'
    ``plot_period_transactions`` draws the same comparison from simulated customers; this
    is the exact expectation, with each customer's own :math:`T_i`.

    Parameters
    ----------
    model
        A fitted :class:`~privdomain.clv.BetaGeo`, :class:`~privdomain.clv.ModifiedBetaGeo`
        or :class:`~privdomain.clv.ParetoNBD`.
    summary
        The customers (normally the ones the model was fitted on).
    max_frequency
        :math:`K`: the last group pools ``K`` or more repeat purchases.
    frequency_col, T_col
        Column names.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``repeat_purchases`` (label ``"0"`` ... ``"K+"``),
        ``observed`` (customers), ``expected`` (customers), ``observed_share``,
        ``expected_share``.
    """
    if not isinstance(max_frequency, (int, np.integer)) or max_frequency < 1:
        raise ValueError(f"period_transactions: max_frequency must be a whole number >= 1, got {max_frequency!r}")
    c = columns(summary, {"frequency": frequency_col, "T": T_col}, "period_transactions")
    x, T = c["frequency"], c["T"]
    if len(x) == 0:
        raise ValueError("period_transactions: the summary has no rows")
    n = len(x)
    Tu, inv = np.unique(T, return_inverse=True)
    weight = np.bincount(inv.ravel(), minlength=len(Tu)).astype("float64")
    k = np.arange(max_frequency, dtype="float64")
    prob = model.probability_of_purchases(k[None, :], Tu[:, None])  # (distinct T, k)
    expected = weight @ prob
    expected = np.append(expected, max(n - expected.sum(), 0.0))
    observed = np.bincount(np.minimum(x, max_frequency).astype(int), minlength=max_frequency + 1).astype("int64")
    return pd.DataFrame({"repeat_purchases": _labels(max_frequency), "observed": observed, "expected": expected,
                         "observed_share": observed / n, "expected_share": expected / n})


def chi_square(table: pd.DataFrame, n_params: int = 4, min_expected: float = 5.0,
               observed_col: str = "observed", expected_col: str = "expected") -> pd.Series:
    """Pearson chi-square goodness of fit of observed vs expected counts.

    .. math::

        X^2 = \\sum_g \\frac{(O_g - E_g)^2}{E_g},\\qquad
        \\mathrm{df} = G - 1 - p,

    where adjacent groups (from the last one down) are pooled until every :math:`E_g \\ge`
    ``min_expected`` (the usual rule for the chi-square approximation), :math:`G` is the
    number of groups left and :math:`p` the number of estimated parameters (4 for BG/NBD;
    FHL 2005 report :math:`X^2` this way for CDNOW). With many customers even a small
    misfit is "significant": read :math:`X^2` beside the table, not the p-value alone.

    Returns
    -------
    pandas.Series
        ``chi_square``, ``df``, ``p_value`` (NaN when ``df < 1``: too few groups to test),
        ``groups`` (after pooling), ``n`` (customers).
    """
    o = table[observed_col].to_numpy(dtype="float64")
    e = table[expected_col].to_numpy(dtype="float64")
    obs, exp = list(o), list(e)
    while len(exp) > 1 and exp[-1] < min_expected:  # pool the tail into the group before
        e_last, o_last = exp.pop(), obs.pop()
        exp[-1] += e_last
        obs[-1] += o_last
    while len(exp) > 1 and exp[0] < min_expected:  # and a sparse head into the next
        e_first, o_first = exp.pop(0), obs.pop(0)
        exp[0] += e_first
        obs[0] += o_first
    obs, exp = np.asarray(obs), np.asarray(exp)
    keep = exp > 0
    stat = float(np.sum((obs[keep] - exp[keep]) ** 2 / exp[keep]))
    df = int(keep.sum()) - 1 - int(n_params)
    p = float(_chi2.sf(stat, df)) if df >= 1 else float("nan")
    return pd.Series({"chi_square": stat, "df": df, "p_value": p, "groups": int(keep.sum()), "n": float(o.sum())})


def calibration_holdout(
    model: TransactionModel,
    summary: pd.DataFrame,
    max_frequency: int = 7,
    frequency_col: str = "frequency",
    holdout_col: str = "frequency_holdout",
    duration_col: str = "duration_holdout",
) -> pd.DataFrame:
    """Predicted vs actual holdout purchases, grouped by calibration repeat purchases.

    For customer :math:`i` with calibration history :math:`(x_i, t_{x,i}, T_i)` and a
    holdout of length :math:`t^*_i`, the prediction is the conditional expectation
    :math:`\\hat y_i = E[X(T_i, T_i + t^*_i) \\mid x_i, t_{x,i}, T_i]` (FHL 2005 eq. 10);
    per group :math:`g` of calibration frequency (``0``, ``1``, ..., ``K+``)

    .. math::

        \\bar y_g = \\frac{1}{n_g}\\sum_{i \\in g} y_i,\\qquad
        \\bar{\\hat y}_g = \\frac{1}{n_g}\\sum_{i \\in g} \\hat y_i,\\qquad
        \\mathrm{se}_g = \\mathrm{sd}(y_i)_{i\\in g} / \\sqrt{n_g}

    (lifetimes' ``plot_calibration_purchases_vs_holdout_purchases``). Build the input
    with :func:`privdomain.clv.rfm.calibration_and_holdout_data` (``calibration_end``,
    ``holdout_end``), and fit the model on the calibration columns.

    Returns
    -------
    pandas.DataFrame
        One row per group present: ``calibration_purchases`` (label), ``n``,
        ``actual_mean``, ``actual_se`` (NaN for a group of one customer),
        ``predicted_mean``, ``actual_total``, ``predicted_total``, ``difference``
        (predicted - actual mean).
    """
    if not isinstance(max_frequency, (int, np.integer)) or max_frequency < 1:
        raise ValueError(f"calibration_holdout: max_frequency must be a whole number >= 1, got {max_frequency!r}")
    c = columns(summary, {"frequency": frequency_col, "holdout": holdout_col, "duration": duration_col},
                "calibration_holdout")
    if len(c["frequency"]) == 0:
        raise ValueError("calibration_holdout: the summary has no rows")
    dur = c["duration"]
    t = float(dur[0]) if np.all(dur == dur[0]) else dur
    pred = model.expected_purchases(t, summary)
    group = np.minimum(c["frequency"], max_frequency).astype(int)
    df = pd.DataFrame({"g": group, "y": c["holdout"], "yhat": pred})
    agg = df.groupby("g").agg(n=("y", "size"), actual_mean=("y", "mean"), actual_sd=("y", "std"),
                              predicted_mean=("yhat", "mean"), actual_total=("y", "sum"),
                              predicted_total=("yhat", "sum"))
    labels = _labels(max_frequency)
    out = pd.DataFrame({
        "calibration_purchases": [labels[g] for g in agg.index],
        "n": agg["n"].to_numpy(dtype="int64"),
        "actual_mean": agg["actual_mean"].to_numpy(),
        "actual_se": (agg["actual_sd"] / np.sqrt(agg["n"])).to_numpy(),
        "predicted_mean": agg["predicted_mean"].to_numpy(),
        "actual_total": agg["actual_total"].to_numpy(),
        "predicted_total": agg["predicted_total"].to_numpy(),
    })
    out["difference"] = out["predicted_mean"] - out["actual_mean"]
    return out
