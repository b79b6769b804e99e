"""Computed lifecycle stages against the simulator's true stages.

The simulator's truth uses the default stage model's thresholds (30/90 days, >= 3
purchases), but its ``churned`` is the latent dropout time, which no observed data can
show (a churned buyer looks dormant, active or loyal until the data say otherwise; a
prospect who dropped out still looks like a prospect). So the floors are:

* on persons whose true stage is observable (not ``churned``), and counting our
  ``dormant``/``churned`` as one lapsed stage as the truth's ``dormant`` is, stages must
  agree for >= 98% (the rest: a purchase at 23:59 vs a 30/90-day boundary measured in
  continuous time, loyalty counted on purchase days vs paid orders in the last 365 days);
* exact agreement must reach at least 1 - (share of truly churned) - 2%: every other
  disagreement is a definition mismatch, which we bound at 2%.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from privdomain.lifecycle.stages import stage_agreement

simulate = pytest.importorskip("privdomain.simulate").simulate

DATES = pd.date_range("2024-02-29", "2024-12-31", freq="ME")


@pytest.fixture(scope="module")
def tea(tmp_path_factory):
    out = tmp_path_factory.mktemp("tea")
    return simulate(scenario="tea", persons=3000, seed=1, out=out, truth=True, shapley_sample=50)


def test_computed_stages_agree_with_the_simulators_true_stages(tea):
    conf = stage_agreement(tea, tea, DATES)
    total = conf.persons.sum()
    assert total > 10_000  # person-dates compared
    exact = conf.loc[conf.agrees, "persons"].sum() / total
    assert exact == conf.attrs["agreement"]  # the old place, kept for one release
    per_date = (conf[conf.agrees].groupby("date").persons.sum() / conf.groupby("date").persons.sum()).fillna(0)
    assert np.allclose(conf.groupby("date")["agreement"].first(), per_date)
    churned_share = conf.loc[conf.true_stage == "churned", "persons"].sum() / total
    lapsed = {"dormant": "lapsed", "churned": "lapsed"}
    obs = conf[conf.true_stage != "churned"]
    same = obs.true_stage.replace(lapsed) == obs.stage.replace(lapsed)
    observable_agreement = obs.loc[same, "persons"].sum() / obs.persons.sum()
    absent = conf[(conf.true_stage == "(absent)") | (conf.stage == "(absent)")].persons.sum()
    print(f"\nstage agreement with the simulator's truth (tea, 3000 persons, {len(DATES)} month ends): "
          f"exact {exact:.1%}; observable stages {observable_agreement:.1%}; truly churned {churned_share:.1%}")
    assert absent == 0  # the same population on every date: persons first touched by then
    assert observable_agreement >= 0.98
    assert exact >= 1 - churned_share - 0.02
