"""The customer lifecycle: stages, repurchase, cohorts and their figures.

============== ==========================================================
stages         lifecycle stages (new, active, silent, lapsed; AIPL), the board, flows
repurchase     purchase gaps, repurchase rate, curve and cycle
cohorts        cohort tables and triangles, LTV curves
plots          the lifecycle figures (stage areas, flows, Sankey)
============== ==========================================================

``privdomain.lifecycle`` itself offers the names of :mod:`privdomain.lifecycle.stages`
(``privdomain.lifecycle.lifecycle_board(...)``, as before the move).

>>> import privdomain as pdm
>>> pdm.lifecycle.lifecycle_board is pdm.lifecycle.stages.lifecycle_board
True
"""

from __future__ import annotations

import importlib
from typing import Any

from . import cohorts, repurchase, stages
from .stages import *  # noqa: F403
from .stages import __all__ as _stages_all

__all__ = ["cohorts", "repurchase", "stages", "plots", *_stages_all]  # noqa: F405 (plots: on first use)


def __getattr__(name: str) -> Any:
    if name == "plots":  # matplotlib: imported on first use (importlib: "from . import" would recurse)
        return importlib.import_module(".plots", __name__)
    if name in _SECOND_NAMES:  # lifecycle.py used to re-export these; they live in their own modules
        return getattr(importlib.import_module(_SECOND_NAMES[name], __name__), name)
    return getattr(stages, name)


_SECOND_NAMES = {"cohort_table": ".cohorts", "cohort_triangle": ".cohorts", "ltv_curve": ".cohorts",
                 "purchase_gaps": ".repurchase", "repurchase_curve": ".repurchase", "repurchase_cycle": ".repurchase",
                 "repurchase_rate": ".repurchase", "rfm_summary": "..clv.rfm"}
