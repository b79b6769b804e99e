"""The journey simulator: seeded, vectorised, with ground truth.

>>> from privdomain.simulate import list_scenarios
>>> list_scenarios()
['apparel', 'beauty', 'eyewear', 'sportswear', 'tea']
"""

from .runner import simulate
from .scenario import Scenario, ScenarioError, list_scenarios, load_scenario

__all__ = ["simulate", "load_scenario", "list_scenarios", "Scenario", "ScenarioError"]
