"""Teaching exercises: each checker accepts the right answer and rejects a wrong one on small
simulated data; answers agree with independent computations; solutions stay folded."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import privdomain as pdm
from privdomain import exercises, reports
from privdomain.errors import DatasetError, UsageError
from privdomain.examples import events_frame

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("exercises")
    # tea holds the randomised experiment and the truth; beauty the ad campaigns; sportswear the retargeting
    return {"tea": pdm.simulate("tea", persons=1500, seed=3, out=root / "tea"),
            "beauty": pdm.simulate("beauty", persons=1200, seed=3, out=root / "beauty"),
            "sportswear": pdm.simulate("sportswear", persons=1500, seed=3, out=root / "sportswear")}


def _answerable(name: str, data: dict):
    for ds in data.values():
        try:
            return ds, exercises.answer(name, ds)
        except DatasetError:
            continue
    raise AssertionError(f"{name}: no test dataset answers it")


def _as_given(e: exercises.Exercise, right):
    """The right answer the way a learner writes it (rates in percent, one decimal)."""
    if e.unit == "%":
        return round(right * 100, 1)
    if e.unit == "name":
        return f" {str(right).upper()} "
    return right


def _wrong(e: exercises.Exercise, right, ds):
    if e.unit == "name":
        return "no_such_channel"
    if e.unit == "%":
        return round(right * 100 + 3 * e.tolerance + 1, 1)
    if e.unit == "persons" and 0 < e.tolerance < 1:
        return right * (1 + 3 * e.tolerance)
    return right + 3 * e.tolerance + 1


@pytest.mark.parametrize("name", list(exercises.EXERCISES))
def test_each_checker_accepts_the_right_answer_and_rejects_a_wrong_one(name, data):
    e = exercises.EXERCISES[name]
    ds, right = _answerable(name, data)
    assert right == right and right is not None  # never NaN
    ok = exercises.check(name, _as_given(e, right), ds)
    assert ok.correct is True and bool(ok) and "Right" in ok.message
    bad = exercises.check(name, _wrong(e, right, ds), ds)
    assert bad.correct is False and "Not quite" in bad.message and "Hint" in bad.message
    if e.unit != "name":  # a wrong answer is not given away
        assert exercises._fmt(e, right) not in bad.message


def test_each_topic_notebook_has_two_or_three_exercises_and_shows_them():
    # own_data reads the analyst's own dataset: there is no truth to check answers against
    topic_notebooks = [p.stem for p in reports.topic_sources(NOTEBOOKS) if p.stem != "own_data"]
    assert set(exercises.topics()) == set(topic_notebooks)
    for stem in topic_notebooks:
        chosen = [n for n, e in exercises.EXERCISES.items() if e.topic == stem]
        assert 2 <= len(chosen) <= 3, stem
        src = (NOTEBOOKS / f"{stem}.py").read_text(encoding="utf-8")
        # the dataset the notebook read (the audiences notebook passes its persons sample on large data)
        assert re.search(rf'exercises\.show\("{stem}", (ds|ds if k == 1 else source), answers\)', src), stem
        for n in chosen:
            assert f'"{n}": None' in src, (stem, n)


def test_answers_agree_with_a_per_person_loop(data):
    ds = data["tea"]
    ev = ds.read("events")
    pays = ev[ev["touchpoint"] == "pay"]
    per_order = {}
    days: dict[int, set] = {}
    for r in pays.itertuples():
        per_order[r.order_id] = per_order.get(r.order_id, 0) + r.amount_fen
        days.setdefault(r.person_id, set()).add(r.ts.tz_convert("Asia/Shanghai").date())
    assert exercises.answer("quickstart_median_order", ds) == pytest.approx(np.median(list(per_order.values())) / 100)
    assert exercises.answer("quickstart_repeat_buyers", ds) == sum(len(d) >= 2 for d in days.values())
    gaps = [b - a for d in days.values() for a, b in zip(sorted(d), sorted(d)[1:])]
    gap_days = np.array([g.days for g in gaps], dtype=float)
    assert exercises.answer("lifecycle_dormant_p90", ds) == max(14, int(np.ceil(np.quantile(gap_days, 0.9))))
    ids = ev.groupby("person_id")["id_type"].nunique()
    assert exercises.answer("inspect_multi_id_share", ds) == pytest.approx(float((ids >= 2).mean()))
    from privdomain import reference

    cube = reference.channel_cube(ev, windows=(30,)).set_index("channel")
    assert exercises.answer("cube_oa_orders_30d", ds) == cube.loc["official_account", "orders"] > 0
    inc = pd.read_parquet(ds.path / "truth" / "incrementality.parquet")
    assert exercises.answer("inspect_top_incremental_channel", ds) == inc.sort_values("share_conversions").iloc[-1][
        "channel"]


def test_the_relative_lift_is_treatment_over_holdout_among_earlier_buyers(data):
    from privdomain import experiments as ex

    ds = data["tea"]
    f = ex.campaign_frame(ds, "coupon_tiers")
    f = f[f["pre_purchases"] > 0]
    t = f.loc[f["arm"] == "treatment", "converted"].mean()
    h = f.loc[f["arm"] == "holdout", "converted"].mean()
    assert exercises.answer("experiment_relative_lift", ds) == pytest.approx(t / h - 1)


def test_solutions_are_folded_in_a_closed_details_block(data):
    ds = data["tea"]
    page = exercises.html("lifecycle_clv", ds)
    value = exercises._fmt(exercises.EXERCISES["lifecycle_repurchase_45d"],
                           exercises.answer("lifecycle_repurchase_45d", ds))
    assert page.count("<details>") == 2 and "<details open" not in page
    outside = re.sub(r"<details>.*?</details>", "", page, flags=re.S)
    assert value in page and value not in outside
    assert "Not answered yet" in outside and "nan" not in page.lower().replace("nanswer", "")


def test_a_fraction_for_a_rate_gets_a_friendly_note_and_bad_input_is_named(data):
    ds = data["tea"]
    right = exercises.answer("lifecycle_repurchase_45d", ds)
    v = exercises.check("lifecycle_repurchase_45d", right, ds)
    assert v.correct is False and "in percent" in v.message
    assert exercises.check("lifecycle_repurchase_45d", f"{right * 100:.1f}%", ds).correct is True
    assert "Not a number" in exercises.check("lifecycle_repurchase_45d", "lots", ds).message


def test_a_dataset_that_cannot_answer_says_so_and_unknown_names_are_refused():
    ev = events_frame([(1, "2024-05-01 10:00", "pay", {"order_id": 1, "amount_fen": 100})])
    v = exercises.check("attribution_roi_60d", 1.0, ev)
    assert v.correct is None and v.message.startswith("n/a")
    with pytest.raises(UsageError, match="did you mean 'quickstart_median_order'"):
        exercises.check("quickstart_median_ordr", 1, ev)


def test_an_answer_the_data_cannot_give_is_na_and_never_printed_as_nan(monkeypatch):
    import dataclasses

    ev = events_frame([(1, "2024-05-01 10:00", "pay", {"order_id": 1, "amount_fen": 100})])
    e = exercises.EXERCISES["lifecycle_repurchase_45d"]
    monkeypatch.setitem(exercises.EXERCISES, e.name, dataclasses.replace(e, compute=lambda data: float("nan")))
    v = exercises.check(e.name, 10, ev)
    assert v.correct is None and v.message.startswith("n/a")
    page = exercises.html("lifecycle_clv", ev)
    assert "n/a on this dataset" in page and "nan%" not in page


def test_the_audience_answers_agree_with_a_per_person_loop(data):
    ds = data["sportswear"]
    ev = ds.read("events")
    day = ev["ts"].dt.tz_convert("Asia/Shanghai").dt.tz_localize(None).dt.normalize()
    as_of = day.max() - pd.Timedelta(days=61)
    pay_days: dict[int, list] = {}
    visit_days: dict[int, list] = {}
    for pid, tp, d in zip(ev["person_id"], ev["touchpoint"], day):
        if d <= as_of and tp == "pay":
            pay_days.setdefault(pid, []).append(d)
        if d <= as_of and tp == "mp_visit":
            visit_days.setdefault(pid, []).append(d)
    lapsed_visitors = 0
    for pid, days in pay_days.items():  # bought, not in the 90 days to as_of, visited the Mini Program in its 30
        if (as_of - max(days)).days >= 90 and any((as_of - d).days < 30 for d in visit_days.get(pid, [])):
            lapsed_visitors += 1
    right = exercises.answer("audiences_lapsed_mp_30d", ds)
    assert right == lapsed_visitors and right > 0

    asg = ds.read("assignments")
    asg = asg[asg["experiment"] == "retarget_lookalike"]
    camp = ds.read("campaigns").set_index("campaign_id").loc[900]
    d0, d1 = (pd.Timestamp(camp[c]).tz_localize(None).normalize() for c in ("start", "end"))
    revenue = {pid: 0.0 for pid in asg["person_id"]}
    for pid, tp, d, fen in zip(ev["person_id"], ev["touchpoint"], day, ev["amount_fen"]):
        if tp == "pay" and d0 <= d < d1 and pid in revenue:
            revenue[pid] += fen
    y = asg.assign(y=asg["person_id"].map(revenue)).groupby("arm")["y"].mean()
    assert exercises.answer("audiences_retarget_incremental", ds) == pytest.approx((y["treatment"] - y["holdout"]) / 100)
