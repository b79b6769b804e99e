"""Simulate RFM summaries from the CLV models with known parameters (vectorised, seeded).

Used to check that fits recover the parameters and to benchmark at scale. ``T`` is a
number or an array (one per customer); times are continuous unless ``time_step`` is
given, which floors ``t_x`` to multiples of it (e.g. ``1/7`` for whole days in weeks).

Examples
--------
>>> from privdomain.clv import simulate_beta_geo
>>> s = simulate_beta_geo(5, r=0.5, alpha=5.0, a=0.8, b=3.0, T=30.0, seed=0)
>>> list(s.columns), bool((s.t_x <= s["T"]).all())
(['frequency', 't_x', 'T'], True)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["simulate_beta_geo", "simulate_modified_beta_geo", "simulate_pareto_nbd", "simulate_gamma_gamma"]


def _finish(x, tx, T, time_step):
    if time_step:
        tx = np.floor(tx / time_step + 1e-9) * time_step
    return pd.DataFrame({"frequency": x.astype("float64"), "t_x": np.where(x > 0, tx, 0.0), "T": T})


def _last_arrival(rng, n_arrivals, x, T):
    """Time of the x-th of n uniform arrivals on [0, T] (x-th order statistic)."""
    xs = np.maximum(x, 1)
    return T * rng.beta(xs, np.maximum(n_arrivals, xs) - xs + 1)


def simulate_beta_geo(n: int, r: float, alpha: float, a: float, b: float, T: float | np.ndarray,
                      seed: int = 0, time_step: float | None = None) -> pd.DataFrame:
    """Summaries from BG/NBD: after each repeat purchase drop out with probability p."""
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype="float64"), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    arrivals = rng.poisson(lam * T)
    until_death = rng.geometric(p)  # number of repeat purchases up to and including the fatal one
    x = np.minimum(arrivals, until_death)
    return _finish(x, _last_arrival(rng, arrivals, x, T), T, time_step)


def simulate_modified_beta_geo(n: int, r: float, alpha: float, a: float, b: float, T: float | np.ndarray,
                               seed: int = 0, time_step: float | None = None) -> pd.DataFrame:
    """Summaries from the modified BG/NBD: dropout chances at time 0 and after each purchase."""
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype="float64"), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    arrivals = rng.poisson(lam * T)
    before_death = rng.geometric(p) - 1
    x = np.minimum(arrivals, before_death)
    return _finish(x, _last_arrival(rng, arrivals, x, T), T, time_step)


def simulate_pareto_nbd(n: int, r: float, alpha: float, s: float, beta: float, T: float | np.ndarray,
                        seed: int = 0, time_step: float | None = None) -> pd.DataFrame:
    """Summaries from Pareto/NBD: exponential lifetime, Poisson purchases while alive."""
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype="float64"), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    alive_for = np.minimum(rng.exponential(1.0 / mu), T)
    x = rng.poisson(lam * alive_for)
    tx = alive_for * rng.beta(np.maximum(x, 1), 1)  # the last of x uniform arrivals
    return _finish(x, tx, T, time_step)


def simulate_gamma_gamma(frequency: np.ndarray, p: float, q: float, gamma: float, seed: int = 0) -> np.ndarray:
    """Mean spend of ``frequency`` transactions per customer (0 where frequency is 0)."""
    rng = np.random.default_rng(seed)
    x = np.asarray(frequency, dtype="float64")
    nu = rng.gamma(q, 1.0 / gamma, len(x))
    total = rng.gamma(np.maximum(p * x, 1e-12), 1.0 / nu)
    return np.where(x > 0, total / np.maximum(x, 1), 0.0)
