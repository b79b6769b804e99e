"""privdomain: private-domain (私域) operations analytics for the WeChat ecosystem.

A journey simulator that knows the truth it simulated, and the analytics of
Tencent's Youshu boards and beyond, as pure functions over tidy frames.

Rooms (imported on first use, so ``import privdomain`` stays fast):

=============== =========================================================
simulate        the journey simulator (``privdomain.simulate(...)``)
boards          funnel, officialaccount, touchpoints, channel_cube, live
attribution     windowed ad attribution, multi-level ROI, multi-touch, Markov, Shapley
identity        ID unification (openid, unionid, phone, WeCom id)
lifecycle       stages, repurchase, cohorts and the lifecycle figures (plots)
clv             RFM summary (clv.rfm); BG/NBD, Pareto/NBD, modified BG/NBD, Gamma-Gamma
experiments     campaign effects, CUPED, DiD, power, drivers
audience        tags, selections, look-alikes, exports
reports         the papermill runner, the notebooks' glue, the case registry
testing         per-person reference oracles for the tests
=============== =========================================================

The first names of the moved modules keep working (:data:`MOVED`):
``privdomain.funnel`` is ``privdomain.boards.funnel``, ``privdomain.rfm`` is
``privdomain.clv.rfm``, and so on, as attributes and as dotted imports.

>>> import privdomain
>>> privdomain.schema.PURCHASE
'pay'
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any

from . import backend, io, schema
from .io import open_dataset, read_dataset, write_dataset
from .validate import ValidationError, validate

__version__ = "0.1.0"

_LAZY = (
    "attribution",
    "audience",
    "boards",
    "clv",
    "examples",
    "exercises",
    "experiments",
    "glossary",
    "identity",
    "inventory",
    "lifecycle",
    "plotting",
    "privacy",
    "reports",
    "simulate",
    "testing",
)

#: Modules that moved into a room, by their first name: ``privdomain.funnel`` is
#: ``privdomain.boards.funnel``. Both the attribute (``pdm.funnel.funnel(...)``) and the
#: dotted import (``from privdomain.funnel import funnel``) keep working; the module
#: object is the same one (``_MovedModules`` below).
MOVED: dict[str, str] = {
    "funnel": "boards.funnel",
    "officialaccount": "boards.officialaccount",
    "touchpoints": "boards.touchpoints",
    "channel_cube": "boards.channel_cube",
    "live": "boards.live",
    "repurchase": "lifecycle.repurchase",
    "cohorts": "lifecycle.cohorts",
    "plot_lifecycle": "lifecycle.plots",
    "rfm": "clv.rfm",
    "cases": "reports.cases",
    "reference": "testing.reference",
}

__all__ = [
    "backend",
    "io",
    "schema",
    "open_dataset",
    "read_dataset",
    "write_dataset",
    "validate",
    "ValidationError",
    "MOVED",
    "__version__",
    *_LAZY,
    *MOVED,
]


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import ``privdomain.<old name>`` as the module it moved to (the same object)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        prefix, _, name = fullname.rpartition(".")
        if prefix != __name__ or name not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> ModuleType:
        return importlib.import_module(f"{__name__}.{MOVED[spec.name.rpartition('.')[2]]}")

    def exec_module(self, module: ModuleType) -> None:
        """The module was executed under its new name; nothing to do."""


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name in MOVED:
        module = importlib.import_module(f".{MOVED[name]}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'privdomain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(MOVED))
