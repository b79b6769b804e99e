"""Seed streams and counter-based hashing.

Every block of persons gets its own generator from ``SeedSequence([seed, block])``,
so a block's draws do not depend on how many blocks or processes there are.
:func:`mix` (the splitmix64 finaliser) turns integer keys into well-spread 64-bit
values: used for ids that must be stable across blocks (openids, phone hashes).

>>> import numpy as np
>>> from privdomain.simulate.rng import block_rng, mix
>>> block_rng(1, 0).integers(0, 10, 3).tolist() == block_rng(1, 0).integers(0, 10, 3).tolist()
True
>>> int(mix(np.array([1], dtype=np.uint64))[0]) != 1
True
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

__all__ = ["SHAPLEY_STREAM", "block_rng", "mix", "lognormal_delay", "exponential", "hash_uniform"]


SHAPLEY_STREAM = 2**31 - 1


def block_rng(seed: int, block: int) -> np.random.Generator:
    """The generator of one block of persons: PCG64 seeded by ``SeedSequence([seed, block])``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(block)])))


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser over a uint64 array (a bijection of 64-bit integers)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def lognormal_delay(u: np.ndarray, median: float, sigma: float) -> np.ndarray:
    """Delay in days with the given median and log-sd, from uniforms ``u`` (inverse CDF)."""
    z = ndtri(np.clip(u, 1e-12, 1 - 1e-12))
    return median * np.exp(sigma * z)


def exponential(u: np.ndarray, mean: float) -> np.ndarray:
    """Exponential draws with ``mean`` from uniforms ``u``."""
    return -mean * np.log1p(-np.clip(u, 0.0, 1 - 1e-12))


def hash_uniform(key: np.ndarray, salt: int) -> np.ndarray:
    """Uniforms in [0, 1) from uint64 keys (counter-based: same key, same draw)."""
    with np.errstate(over="ignore"):
        h = mix(key ^ np.uint64((salt * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
