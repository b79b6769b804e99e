"""The journey simulator: seeded, vectorised, with ground truth.

The package itself is callable, so ``privdomain.simulate(...)`` is
:func:`privdomain.simulate.simulate`.

>>> from privdomain.simulate import list_scenarios
>>> list_scenarios()
['apparel', 'beauty', 'eyewear', 'sportswear', 'tea']
>>> import tempfile, privdomain
>>> privdomain.simulate("tea", persons=50, seed=1, out=tempfile.mkdtemp(), truth=False).manifest["persons"]
50
"""

import sys
import types

from .runner import simulate
from .scenario import Scenario, ScenarioError, list_scenarios, load_scenario

__all__ = ["simulate", "load_scenario", "list_scenarios", "Scenario", "ScenarioError"]


class _CallableModule(types.ModuleType):
    """``privdomain.simulate(...)`` calls :func:`simulate`."""

    def __call__(self, *args, **kwargs):
        return simulate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
