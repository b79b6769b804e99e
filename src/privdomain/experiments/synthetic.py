"""Small, fast, vectorised data-generating processes with a known truth.

They exist so that the estimators can be checked over hundreds of replications
(interval coverage, bias) in well under a second each; the full journey
simulator (:mod:`privdomain.simulate`) is the realistic counterpart.

* :func:`simulate_campaign`: a randomised coupon campaign with a treatment /
  holdout split, a pre-period covariate correlated with the outcome and the tea
  brand's coupon tiers as segments.
* :func:`simulate_panel`: a unit x period panel with (optionally staggered)
  roll-out of a change, for difference-in-differences, with an optional
  violation of parallel trends.
* :func:`simulate_touchpoints`: touchpoint exposure and purchase where an
  unobserved engagement drives both, so the naive regression is confounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

__all__ = [
    "TIERS",
    "coupon_tier",
    "tier_shares",
    "simulate_campaign",
    "CampaignTruth",
    "campaign_truth",
    "baseline_conversion",
    "simulate_panel",
    "simulate_touchpoints",
    "touchpoint_truth",
]


#: The tea brand's coupon tiers (docs/domain.md): first-time buyers 50% off,
#: 2-5 purchases buy-one-get-one, 5+ purchases 10x points.
TIERS = ("first_time", "2-5", "5+")


def coupon_tier(prior_purchases) -> np.ndarray:
    """The coupon tier a person's *next* purchase falls in, from purchases made before.

    0 prior purchases -> ``"first_time"`` (the next one is the first), 1-4 ->
    ``"2-5"`` (the next one is the 2nd to 5th), 5 or more -> ``"5+"``.

    >>> coupon_tier([0, 1, 4, 5, 9]).tolist()
    ['first_time', '2-5', '2-5', '5+', '5+']
    """
    k = np.asarray(prior_purchases)
    if np.any(k < 0):
        raise ValueError(f"prior purchases must be >= 0: {int((k < 0).sum())} value(s) break it")
    return np.where(k == 0, TIERS[0], np.where(k < 5, TIERS[1], TIERS[2])).astype(object)


# --- randomised campaign -------------------------------------------------------------

_PRE_LOG_MEAN, _PRE_SLOPE = 0.5, 0.9  # prior purchases ~ Poisson(exp(0.5 + 0.9 u))
_BASE_LO, _BASE_SPAN, _BASE_ICPT, _BASE_SLOPE = 0.03, 0.5, -1.5, 2.0  # p0 = 0.03 + 0.5 expit(-1.5 + 2 u)
_EXTRA_ORDERS = 0.3  # orders in the window = converted * (1 + Poisson(0.3))
_TICKET_MEAN, _TICKET_SHAPE = 60.0, 2.0  # yuan per order, Gamma


@lru_cache(maxsize=1)
def _gauss_hermite(points: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for ``E f(u)``, ``u ~ N(0, 1)`` (probabilists' Hermite, weights summing to 1)."""
    x, w = np.polynomial.hermite_e.hermegauss(points)
    return x, w / w.sum()


def tier_shares() -> dict[str, float]:
    """Population share of each coupon tier in :func:`simulate_campaign` (Gauss-Hermite quadrature).

    >>> round(sum(tier_shares().values()), 12)
    1.0
    """
    x, w = _gauss_hermite()
    lam = np.exp(_PRE_LOG_MEAN + _PRE_SLOPE * x)
    p0 = stats.poisson.pmf(0, lam)
    p_low = stats.poisson.cdf(4, lam) - p0
    p_high = 1 - p0 - p_low
    return {TIERS[0]: float(w @ p0), TIERS[1]: float(w @ p_low), TIERS[2]: float(w @ p_high)}


def simulate_campaign(
    n: int = 2000,
    effect: float = 0.05,
    seed: int = 0,
    *,
    tier_effects: Mapping[str, float] | None = None,
    treat_share: float = 0.5,
    arms: tuple[str, str] = ("treatment", "holdout"),
) -> pd.DataFrame:
    """A randomised campaign with a known additive effect on conversion.

    Data-generating process, for person ``i``:

    * latent purchase propensity ``u_i ~ N(0, 1)``;
    * pre-period purchases ``pre_purchases_i ~ Poisson(exp(0.5 + 0.9 u_i))`` and
      pre-period revenue (60 yuan mean ticket): the covariates;
    * ``segment`` = the coupon tier of :func:`coupon_tier`;
    * complete randomisation: exactly ``round(n * treat_share)`` persons treated;
    * ``converted_i ~ Bernoulli(p0_i + T_i * tau_{segment_i})`` with
      ``p0_i = 0.03 + 0.5 * expit(-1.5 + 2 u_i)`` (so ``p0`` lies in (0.03, 0.53));
    * ``orders_i = converted_i * (1 + Poisson(0.3))``, ``revenue_i`` = sum of
      Gamma(2, 30) tickets (mean 60 yuan), independent of ``u`` and ``T``;
    * ``repurchased_i = converted_i and pre_purchases_i + orders_i >= 2``.

    The true average effects are therefore exact: on conversion
    ``sum_s share_s * tau_s`` (shares from :func:`tier_shares`), on revenue
    ``78 *`` that (1.3 orders x 60 yuan per converted person); by segment
    ``tau_s`` and ``78 tau_s``: :func:`campaign_truth` returns them (by outcome, by
    segment, the holdout means and the relative lifts). For one release they are also
    in ``df.attrs`` (``truth``, ``truth_by_segment``, ``baseline``, ``truth_relative``).

    Parameters
    ----------
    n
        Persons.
    effect
        Additive effect on the conversion probability (all tiers), unless
        ``tier_effects`` gives one per tier.
    seed
        Random seed; the same seed gives the same frame.
    tier_effects
        ``{tier: effect}`` for the tiers in :data:`TIERS` (missing tiers get ``effect``).
    treat_share
        Share of persons assigned to treatment.
    arms
        Labels of the treatment and the control arm.

    Returns
    -------
    pandas.DataFrame
        ``person_id, arm, treated, segment, pre_purchases, pre_revenue, converted,
        repurchased, orders, revenue``.

    Examples
    --------
    >>> df = simulate_campaign(1000, effect=0.05, seed=1)
    >>> sorted(df["arm"].unique()), round(campaign_truth(0.05).effect["converted"], 3)
    (['holdout', 'treatment'], 0.05)
    """
    if n < 4:
        raise ValueError(f"n must be at least 4, got {n}")
    if not 0 < treat_share < 1:
        raise ValueError(f"treat_share must be in (0, 1), got {treat_share}")
    taus = {t: float(effect) for t in TIERS}
    for k, v in (tier_effects or {}).items():
        if k not in taus:
            raise ValueError(f"tier_effects: unknown tier {k!r}; tiers are {list(TIERS)}")
        taus[k] = float(v)
    if any(v < -_BASE_LO or v > 1 - _BASE_LO - _BASE_SPAN for v in taus.values()):
        raise ValueError(
            f"effects must lie in [-{_BASE_LO}, {1 - _BASE_LO - _BASE_SPAN}] so probabilities stay in [0, 1]: got {taus}"
        )
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(n)
    pre = rng.poisson(np.exp(_PRE_LOG_MEAN + _PRE_SLOPE * u))
    pre_rev = rng.gamma(_TICKET_SHAPE * np.maximum(pre, 1), _TICKET_MEAN / _TICKET_SHAPE) * (pre > 0)
    segment = coupon_tier(pre)
    treated = np.zeros(n, dtype=np.int64)
    treated[rng.permutation(n)[: int(round(n * treat_share))]] = 1
    tau = np.select([segment == t for t in TIERS], [taus[t] for t in TIERS])
    p = _BASE_LO + _BASE_SPAN * special.expit(_BASE_ICPT + _BASE_SLOPE * u) + treated * tau
    converted = (rng.random(n) < p).astype(np.int64)
    orders = converted * (1 + rng.poisson(_EXTRA_ORDERS, n))
    revenue = rng.gamma(_TICKET_SHAPE * np.maximum(orders, 1), _TICKET_MEAN / _TICKET_SHAPE) * (orders > 0)
    df = pd.DataFrame(
        {
            "person_id": np.arange(n, dtype=np.int64),
            "arm": np.where(treated == 1, arms[0], arms[1]).astype(object),
            "treated": treated,
            "segment": segment,
            "pre_purchases": pre.astype(np.int64),
            "pre_revenue": np.round(pre_rev, 2),
            "converted": converted,
            "repurchased": (converted * ((pre + orders) >= 2)).astype(np.int64),
            "orders": orders.astype(np.int64),
            "revenue": np.round(revenue, 2),
        }
    )
    truth = campaign_truth(effect, tier_effects=tier_effects)
    df.attrs.update(truth.as_attrs())  # the same numbers, for one release: use campaign_truth(...)
    return df


@dataclass(frozen=True)
class CampaignTruth:
    """The true effects of a :func:`simulate_campaign` draw (exact population values).

    ``effect`` and ``relative`` map an outcome (``converted``, ``revenue``) to the
    average effect and to effect / holdout mean; ``by_segment`` maps an outcome to
    ``{tier: effect}``; ``baseline`` maps an outcome to the holdout mean.
    """

    effect: dict[str, float]
    by_segment: dict[str, dict[str, float]]
    baseline: dict[str, float]
    relative: dict[str, float]

    def as_attrs(self) -> dict[str, Any]:
        """The ``.attrs`` keys :func:`simulate_campaign` used to be the only source of."""
        return {"truth": dict(self.effect), "truth_by_segment": {k: dict(v) for k, v in self.by_segment.items()},
                "baseline": dict(self.baseline), "truth_relative": dict(self.relative)}


def campaign_truth(effect: float = 0.05, *, tier_effects: Mapping[str, float] | None = None) -> CampaignTruth:
    """The true effects of :func:`simulate_campaign` with these effects, as a value.

    On conversion ``Σ_s share_s τ_s`` (shares from :func:`tier_shares`), on revenue
    ``78 ×`` that (1.3 orders × 60 yuan per converted person); by segment ``τ_s``
    and ``78 τ_s``; the holdout mean is :func:`baseline_conversion` (× 78 for revenue).

    >>> t = campaign_truth(0.05)
    >>> round(t.effect["converted"], 3), round(t.effect["revenue"], 2), t.by_segment["converted"]["5+"]
    (0.05, 3.9, 0.05)
    """
    taus = {t: float(effect) for t in TIERS}
    for k, v in (tier_effects or {}).items():
        if k not in taus:
            raise ValueError(f"tier_effects: unknown tier {k!r}; tiers are {list(TIERS)}")
        taus[k] = float(v)
    shares = tier_shares()
    ate = sum(shares[t] * taus[t] for t in TIERS)
    per_conv = (1 + _EXTRA_ORDERS) * _TICKET_MEAN
    base = baseline_conversion()
    return CampaignTruth(effect={"converted": ate, "revenue": per_conv * ate},
                         by_segment={"converted": dict(taus), "revenue": {t: per_conv * v for t, v in taus.items()}},
                         baseline={"converted": base, "revenue": per_conv * base},
                         relative={"converted": ate / base, "revenue": ate / base})


def baseline_conversion() -> float:
    """Holdout conversion probability ``E[p0]`` of :func:`simulate_campaign` (Gauss-Hermite quadrature).

    >>> round(baseline_conversion(), 4)
    0.1725
    """
    x, w = _gauss_hermite()
    return float(w @ (_BASE_LO + _BASE_SPAN * special.expit(_BASE_ICPT + _BASE_SLOPE * x)))


# --- panel for difference-in-differences ---------------------------------------------


def simulate_panel(
    units: int = 100,
    periods: int = 12,
    effect: float = 1.0,
    seed: int = 0,
    *,
    treated_share: float = 0.5,
    staggered: bool = True,
    pretrend: float = 0.0,
    rho: float = 0.5,
    noise: float = 1.0,
    dynamic: float = 0.0,
) -> pd.DataFrame:
    """A balanced unit x period panel with a change rolled out to some units.

    ``y_it = a_i + g_t + (effect + dynamic * (t - first_treated_i)) * D_it
    + pretrend * E_i * t + e_it`` where ``a_i``
    and ``g_t`` are unit and period effects, ``E_i`` marks ever-treated units,
    ``D_it = E_i * 1{t >= first_treated_i}`` and ``e_it`` is AR(1) within unit
    (coefficient ``rho``), so observations of one unit are correlated and
    standard errors must be clustered by unit. ``first_treated`` is drawn from
    ``periods // 3 .. periods - 2`` (``staggered=True``) or is ``periods // 2``
    for every treated unit. With ``pretrend != 0`` treated units drift away from
    the others before the change: parallel trends fails and a DiD estimate is
    biased by ``pretrend`` times the average post-minus-pre period distance. With
    ``dynamic != 0`` the effect grows with the time since the change, the case where
    two-way fixed effects is biased under staggered adoption and
    :func:`privdomain.experiments.staggered_did` is not.

    Returns
    -------
    pandas.DataFrame
        ``unit, period, first_treated`` (Int64, null for never-treated), ``treated``
        (0/1 = ``D_it``), ``y`` and ``true_effect``, the effect in ``y`` of each
        unit-period (``(effect + dynamic * (t - first_treated_i)) * D_it``; 0 where
        untreated): the true ATT is its mean over the treated unit-periods.
        (``attrs["truth"] = {"effect": effect, "att": ...}`` keeps the two numbers for
        one release.)

    Examples
    --------
    >>> p = simulate_panel(20, 6, effect=2.0, seed=1)
    >>> len(p), int(p["treated"].sum()) > 0, float(p.loc[p.treated == 1, "true_effect"].mean())
    (120, True, 2.0)
    """
    if units < 4 or periods < 4:
        raise ValueError(f"need at least 4 units and 4 periods, got {units} x {periods}")
    rng = np.random.default_rng(seed)
    n_treat = max(1, int(round(units * treated_share)))
    ever = np.zeros(units, dtype=bool)
    ever[rng.permutation(units)[:n_treat]] = True
    if staggered:
        first = rng.integers(periods // 3, periods - 1, size=units)
    else:
        first = np.full(units, periods // 2)
    a = rng.normal(0, 1, units)
    g = rng.normal(0, 0.5, periods) + 0.1 * np.arange(periods)
    e = np.empty((units, periods))
    e[:, 0] = rng.normal(0, noise, units)
    innov = rng.normal(0, noise * np.sqrt(1 - rho**2), (units, periods))
    for t in range(1, periods):  # a loop over periods (few), vectorised over units
        e[:, t] = rho * e[:, t - 1] + innov[:, t]
    t = np.arange(periods)
    d = ever[:, None] & (t[None, :] >= first[:, None])
    tau = (effect + dynamic * (t[None, :] - first[:, None])) * d
    y = a[:, None] + g[None, :] + tau + pretrend * ever[:, None] * t[None, :] + e
    df = pd.DataFrame(
        {
            "unit": np.repeat(np.arange(units, dtype=np.int64), periods),
            "period": np.tile(t.astype(np.int64), units),
            "first_treated": pd.array(np.repeat(np.where(ever, first, -1), periods), dtype="Int64"),
            "treated": d.ravel().astype(np.int64),
            "y": y.ravel(),
            "true_effect": tau.ravel().astype(float),
        }
    )
    df.loc[df["first_treated"] < 0, "first_treated"] = pd.NA
    df.attrs["truth"] = {"effect": float(effect), "att": float(tau[d].mean()) if d.any() else float("nan")}
    return df


# --- confounded touchpoints ----------------------------------------------------------

_TOUCH_BASE = {"oa_article_open": -0.5, "group_join": -1.2, "wecom_chat": -1.0, "live_view": -1.5, "sms": 0.2}
_TOUCH_TRUE = {"oa_article_open": 0.2, "group_join": 0.0, "wecom_chat": 0.5, "live_view": 0.3, "sms": 0.0}


def simulate_touchpoints(n: int = 5000, seed: int = 0, *, confounding: float = 1.0) -> pd.DataFrame:
    """Touchpoint exposure and purchase confounded by an engagement level.

    Engagement ``e_i ~ N(0, 1)`` raises both the chance of each touch
    (``logit P(touch_k) = b_k + confounding * e_i``; SMS is sent to everyone at
    random, so it is not confounded) and the chance of buying
    (``logit P(purchase) = -2 + confounding * e_i + sum_k beta_k touch_k``). The
    true conditional log-odds ratios ``beta_k`` (0 for ``group_join`` and
    ``sms``: they do nothing) are returned as odds ratios by
    :func:`touchpoint_truth` (and kept in ``attrs["truth"]`` for one release). A
    regression of purchase on the touches alone overstates every confounded
    touch; adding ``engagement`` recovers the truth.

    Returns
    -------
    pandas.DataFrame
        ``person_id, engagement, <one 0/1 column per touchpoint>, purchased``.

    Examples
    --------
    >>> df = simulate_touchpoints(500, seed=1)
    >>> touchpoint_truth()["group_join"]
    1.0
    """
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n)
    cols = {"person_id": np.arange(n, dtype=np.int64), "engagement": e}
    eta = -2.0 + confounding * e
    for k, b in _TOUCH_BASE.items():
        conf = 0.0 if k == "sms" else confounding
        x = (rng.random(n) < special.expit(b + conf * e)).astype(np.int64)
        cols[k] = x
        eta = eta + _TOUCH_TRUE[k] * x
    cols["purchased"] = (rng.random(n) < special.expit(eta)).astype(np.int64)
    df = pd.DataFrame(cols)
    df.attrs["truth"] = touchpoint_truth()  # for one release: use touchpoint_truth()
    return df


def touchpoint_truth() -> dict[str, float]:
    """The true conditional odds ratio of each touch in :func:`simulate_touchpoints`: :math:`e^{\\beta_k}`.

    The same for every ``n``, ``seed`` and ``confounding`` (the confounder moves who is
    touched, not what a touch does).

    >>> touchpoint_truth()
    {'oa_article_open': 1.2214027581601699, 'group_join': 1.0, 'wecom_chat': 1.6487212707001282, 'live_view': 1.3498588075760032, 'sms': 1.0}
    """
    return {k: float(np.exp(v)) for k, v in _TOUCH_TRUE.items()}
