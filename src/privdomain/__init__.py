"""privdomain: private-domain (私域) operations analytics for the WeChat ecosystem.

A journey simulator that knows the truth it simulated, and the analytics of
Tencent's Youshu boards and beyond, as pure functions over tidy frames.

Modules (imported on first use, so ``import privdomain`` stays fast):

============== ==========================================================
simulate       the journey simulator (``privdomain.simulate(...)``)
funnel         ordered / strict / unordered / any-order funnels, trends, audiences
officialaccount the Official Account board and the three article rates
touchpoints    touchpoint volumes and the touchpoint map (flows, node rates)
channel_cube   orders, buyers and GMV per channel within 1/7/30 days
live           the live-stream board
attribution    windowed ad attribution, multi-level ROI, multi-touch, Markov, Shapley
identity       ID unification (openid, unionid, phone, WeCom id)
lifecycle      stages, lifecycle board and flows (with repurchase, cohorts)
rfm, clv       RFM summary; BG/NBD, Pareto/NBD, modified BG/NBD, Gamma-Gamma
experiments    campaign effects, CUPED, DiD, power, drivers
reports        papermill case-study reports
============== ==========================================================

>>> import privdomain
>>> privdomain.schema.PURCHASE
'pay'
"""

from __future__ import annotations

import importlib
from typing import Any

from . import backend, io, schema
from .io import open_dataset, read_dataset, write_dataset
from .validate import ValidationError, validate

__version__ = "0.1.0"

_LAZY = (
    "attribution",
    "audience",
    "cases",
    "channel_cube",
    "clv",
    "cohorts",
    "examples",
    "experiments",
    "funnel",
    "identity",
    "lifecycle",
    "live",
    "officialaccount",
    "plot_lifecycle",
    "plotting",
    "privacy",
    "reference",
    "reports",
    "repurchase",
    "rfm",
    "simulate",
    "touchpoints",
)

__all__ = [
    "backend",
    "io",
    "schema",
    "open_dataset",
    "read_dataset",
    "write_dataset",
    "validate",
    "ValidationError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'privdomain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
