"""The report layer: the papermill runner, the notebooks' glue and the case registry.

============== ==========================================================
runner         run the notebooks into HTML reports (``privdomain report``)
cases          the case stories (``cases.yaml``), headline figures, advice
============== ==========================================================

``privdomain.reports`` itself offers the runner's names (``reports.build_reports``,
``reports.load_or_simulate``, ``reports.record_metrics``...), as before the move.

>>> from privdomain import reports
>>> reports.build_reports is reports.runner.build_reports
True
"""

from __future__ import annotations

import importlib
from typing import Any

from . import runner
from .runner import *  # noqa: F403
from .runner import __all__ as _runner_all

__all__ = ["runner", "cases", *_runner_all]  # noqa: F405 (cases: on first use)


def __getattr__(name: str) -> Any:
    if name == "cases":  # importlib, not "from . import": that would ask this __getattr__ again
        return importlib.import_module(".cases", __name__)
    if name == "overview":  # moved to privdomain.boards.overview; the name stays for one release
        from ..boards.overview import overview

        return overview
    return getattr(runner, name)
