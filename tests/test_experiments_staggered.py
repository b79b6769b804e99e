"""Group-time DiD (Callaway & Sant'Anna) against 2x2 means by hand, TWFE's bias and coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from privdomain import experiments as ex


def _by_hand(panel: pd.DataFrame, control: str) -> dict[tuple[float, float], float]:
    """Every ATT(g, t) as a difference of two group means of Y_t - Y_{g-1}, unit by unit."""
    y = {(r.unit, r.period): r.y for r in panel.itertuples()}
    first = {u: (np.inf if pd.isna(f) else float(f)) for u, f in panel.groupby("unit").first_treated.first().items()}
    periods = sorted(panel.period.unique())
    out = {}
    for g in sorted({f for f in first.values() if np.isfinite(f)}):
        base = g - 1
        if base not in periods:
            continue
        for t in periods:
            if t == base:
                continue
            treated, ctrl = [], []
            for u, f in first.items():
                d = y[(u, t)] - y[(u, base)]
                if f == g:
                    treated.append(d)
                elif (control == "never" and np.isinf(f)) or (control == "notyet" and f > max(t, base)):
                    ctrl.append(d)
            if treated and ctrl:
                out[(float(g), float(t))] = sum(treated) / len(treated) - sum(ctrl) / len(ctrl)
    return out


@pytest.mark.parametrize("control", ["never", "notyet"])
def test_each_cell_is_the_difference_of_two_groups_long_differences(control):
    p = ex.simulate_panel(30, 7, effect=1.0, dynamic=0.3, seed=5)
    cells = ex.group_time_att(p, control=control)
    got = {(c, t): e for c, t, e in zip(cells.cohort, cells.period, cells.estimate)}
    want = _by_hand(p, control)
    assert got.keys() == want.keys()
    assert max(abs(got[k] - want[k]) for k in want) < 1e-12


def test_twfe_is_biased_when_the_effect_grows_but_group_time_did_is_not():
    # the effect grows by 1 per period since the change; staggered adoption
    p = ex.simulate_panel(400, 12, effect=0.0, dynamic=1.0, seed=1)
    truth = p.loc[p.treated == 1, "true_effect"].mean()
    twfe = ex.did(p).iloc[0]
    cs = ex.staggered_did(p).iloc[0]
    assert abs(twfe.estimate - truth) > 5 * twfe.std_error  # already-treated units pollute the comparison
    assert abs(cs.estimate - truth) < 3 * cs.std_error


def test_simple_aggregate_is_the_cohort_weighted_mean_of_post_cells():
    p = ex.simulate_panel(60, 9, effect=2.0, dynamic=0.5, seed=2)
    r = ex.staggered_did(p)
    cells = ex.group_time_att(p)
    assert int(r["cells"].iloc[0]) == int(cells.post.sum())
    post = cells[cells.post]
    size = post.cohort.map(lambda c: (p.groupby("unit").first_treated.first() == c).sum())
    assert r.estimate.iloc[0] == pytest.approx(float((post.estimate * size).sum() / size.sum()), abs=1e-12)


def test_dynamic_aggregate_recovers_the_effect_path_and_flat_placebos():
    p = ex.simulate_panel(600, 12, effect=1.0, dynamic=0.5, seed=3)
    dyn = ex.staggered_did(p, aggregate="dynamic").set_index("exposure")
    for e in (0, 1, 2, 3):
        assert abs(dyn.estimate[e] - (1.0 + 0.5 * e)) < 4 * dyn.std_error[e]
    pre = dyn[dyn.index < -1]
    assert (pre.estimate.abs() < 4 * pre.std_error).all()


def test_group_aggregate_has_one_row_per_cohort():
    p = ex.simulate_panel(100, 10, effect=1.0, seed=4)
    r = ex.staggered_did(p, aggregate="group")
    cohorts = sorted(p.first_treated.dropna().unique())
    assert r.cohort.tolist() == [float(c) for c in cohorts if c - 1 >= 0]


def test_interval_covers_the_true_average_effect_about_95_percent_of_the_time():
    hits = []
    for s in range(200):
        p = ex.simulate_panel(150, 8, effect=1.0, dynamic=0.5, seed=1000 + s)
        r = ex.staggered_did(p).iloc[0]
        hits.append(r.ci_low < p.loc[p.treated == 1, "true_effect"].mean() < r.ci_high)
    # 200 replications: a binomial 99.9% band around 0.95
    assert 0.89 <= np.mean(hits) <= 0.995


def test_bad_panels_get_clear_errors():
    p = ex.simulate_panel(20, 6, seed=1)
    with pytest.raises(ValueError, match="balanced.*1 unit-period"):
        ex.staggered_did(p.iloc[1:])
    with pytest.raises(ValueError, match="never-treated.*notyet"):
        ex.staggered_did(p.assign(first_treated=p.first_treated.fillna(5)))
    with pytest.raises(ValueError, match="constant within a unit: 1 unit"):
        q = p.copy()
        q.loc[0, "first_treated"] = 3 if pd.isna(q.loc[1, "first_treated"]) else pd.NA
        ex.staggered_did(q)
    with pytest.raises(ValueError, match="aggregate"):
        ex.staggered_did(p, aggregate="calendar")
    with pytest.raises(ValueError, match="control"):
        ex.staggered_did(p, control="all")
    with pytest.raises(ValueError, match="missing column"):
        ex.staggered_did(p.drop(columns="first_treated"))
