"""Every notebook executes on small simulated data, renders cleanly, and the metrics it
records equal the library's own numbers computed here directly on the same dataset."""

import json
import math
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from privdomain import attribution, clv
from privdomain import experiments as ex
from privdomain.boards.overview import overview
from privdomain.clv import rfm
from privdomain.reports import cases
from privdomain.reports import runner as reports

PERSONS = 2000
SEED = 7
_DATASETS: dict[str, object] = {}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("notebooks")


@pytest.fixture(scope="module")
def kernel():
    with reports.project_kernel() as name:
        yield name


def _dataset(scenario: str, root: Path):
    if scenario not in _DATASETS:
        _DATASETS[scenario] = reports.load_or_simulate(scenario, PERSONS, SEED, root / "data" / scenario)
    return _DATASETS[scenario]


def _overview(ds) -> dict:
    ov = overview(ds)
    return {k: ov[k] for k in ("persons", "buyers", "orders", "gmv_yuan", "buyer_rate", "aov_yuan")}


def _expected_case(ds) -> dict:
    paths = attribution.build_paths(ds, window="30D")
    js = attribution.journey_stats(paths)
    shap = attribution.attribute(paths, models=["shapley"]).set_index("channel")["share"]
    shap = shap[~shap.index.isin(attribution.DIRECT)]
    summary = rfm.rfm_summary(ds)
    from privdomain.lifecycle import stages as lifecycle
    from privdomain.simulate import calibration

    last = overview(ds)["last_day"]
    override = cases.case_story(ds.manifest["scenario"]).get("lifecycle") or {}
    model, _ = lifecycle.data_stage_model(ds, override.get("dormant_days"), override.get("churn_days"))
    board = lifecycle.lifecycle_board(ds, last, last, model=model)
    extra = {"stage_share_end": dict(zip(board["stage"], board["share"].astype(float)))}
    ev = ds.read("events", columns=["person_id", "ts", "touchpoint", "channel", "article_id"])
    if (ev["touchpoint"] == "oa_push").any():
        extra["article_rates"] = calibration.article_rates(ev)  # the simulator's own pandas measurement
    return {**extra, **_overview(ds), **{k: js[k] for k in ("touches_per_conversion", "channels_per_conversion",
                                                   "multi_channel_share")},
            "top_channel_shapley": shap.idxmax(), "top_channel_shapley_share": shap.max(),
            "repurchase_rate": (summary["frequency"] >= 1).mean()}


def _expected_headline(ds, headline) -> dict:
    if headline not in cases.HEADLINE_FIGURES:
        return {}
    if headline == "roi_30d_over_same_day":
        by_window = attribution.roi_by_window(attribution.ad_attribution(ds, campaigns=ds, windows=[0, 30]))
        return {"headline_value": by_window["revenue"].iloc[-1] / by_window["revenue"].iloc[0]}
    if headline == "touchpoints_per_buyer":
        # per buyer, a loop: distinct non-transaction touchpoints before the first pay (the registry's definition)
        ev = ds.read("events", columns=["person_id", "ts", "touchpoint"])
        counts = []
        for _, g in ev.groupby("person_id"):
            pays = g.loc[g["touchpoint"] == "pay", "ts"]
            if len(pays):
                before = g[(g["ts"] < pays.min())
                           & ~g["touchpoint"].isin(["product_view", "add_to_cart", "order", "pay", "refund"])]
                counts.append(before["touchpoint"].nunique())
        return {"headline_value": sum(counts) / len(counts)}
    if headline == "repurchase_lift":
        name = sorted(ds.read("assignments")["experiment"].unique())[0]
        frame = ex.campaign_frame(ds, name)
        rates = frame.groupby("arm")["repurchased"].mean()
        return {"headline_value": (rates["treatment"] - rates["holdout"]) / rates["holdout"]}
    if headline == "guide_order_share":
        pays = ds.read("events", columns=["touchpoint", "channel"]).query("touchpoint == 'pay'")
        return {"headline_value": (pays["channel"] == "guide").mean()}
    if headline == "article_rates":
        import pandas as pd

        asg = ds.read("assignments")
        name = sorted(asg["experiment"].unique())[0]
        asg = asg[asg["experiment"] == name]
        ev = ds.read("events", columns=["person_id", "ts", "touchpoint", "article_id"])
        ev = ev[ev["touchpoint"].isin(["oa_push", "oa_article_open", "mp_click"]) & ev["article_id"].notna()]
        pushed = ev[ev["touchpoint"] == "oa_push"].groupby(["person_id", "article_id"])["ts"].min().rename("pushed")
        pairs = pushed.reset_index().merge(asg, on="person_id")
        from privdomain.simulate import load_scenario

        days = load_scenario(ds.manifest["scenario"]).experiments[name]["days"]
        pairs = pairs[(pairs["pushed"] >= pairs["assigned_at"])
                      & (pairs["pushed"] < pairs["assigned_at"] + pd.Timedelta(days=days))]
        seen = {tp: set(map(tuple, ev.loc[ev["touchpoint"] == tp, ["person_id", "article_id"]].to_numpy()))
                for tp in ("oa_article_open", "mp_click")}
        key = list(map(tuple, pairs[["person_id", "article_id"]].to_numpy()))
        pairs["opened"] = [k in seen["oa_article_open"] for k in key]
        pairs["clicked"] = [k in seen["mp_click"] for k in key]
        rate = pairs[pairs["opened"]].groupby("arm")["clicked"].mean()
        return {"headline_value": rate["treatment"] / rate["holdout"]}
    raise AssertionError(f"the test has no independent computation for headline {headline!r}")


def _expected_attribution(ds) -> dict:
    paths = attribution.build_paths(ds, window="30D")
    credit = attribution.attribute(paths, models=["last_non_direct", "markov", "shapley"])
    out = {"conversions": int(paths["total_conversions"].sum()), "paths": len(paths)}
    for model, label in (("last_non_direct", "last_non_direct"), ("markov_1", "markov"), ("shapley", "shapley")):
        share = credit[credit["model"] == model].set_index("channel")["share"]
        out[f"{label}_top_channel"] = share.idxmax()
        out[f"{label}_top_share"] = share.max()
    full = attribution.attribute(paths, models=["first_touch", "last_touch", "last_non_direct", "linear",
                                                "position_based", "markov", "shapley"])
    sc = attribution.score(full, ds)
    inc = sc[(sc["metric"] == "conversions") & (sc["truth"] == "incremental")]
    mae = {m.replace("markov_1", "markov"): v for m, v in zip(inc["model"], inc["mae_pp"])}
    out["mae_pp_incremental"] = mae
    out["best_model_incremental"] = min(mae, key=mae.get)
    by_window = attribution.roi_by_window(attribution.ad_attribution(ds, campaigns=ds, windows=reports.WINDOWS))
    out["roi_same_day"] = by_window["roi"].iloc[0]
    out["roi_longest_window"] = by_window["roi"].iloc[-1]
    out["revenue_longest_over_same_day"] = by_window["revenue"].iloc[-1] / by_window["revenue"].iloc[0]
    return out


def _expected_lifecycle(ds) -> dict:
    summary = rfm.rfm_summary(ds)
    seg = rfm.rfm_segments(summary, scheme="cn")["segment"].value_counts()
    weekly = rfm.rfm_summary(ds, time_unit="W")
    weekly = weekly[weekly["T"] > 0]
    bg = clv.BetaGeo().fit(weekly)
    value = clv.GammaGamma().fit(weekly).customer_lifetime_value(bg, weekly, horizon=26.0, periods=6,
                                                                   discount_rate=0.01)
    from privdomain.lifecycle import stages as lifecycle

    ov = overview(ds)
    th = lifecycle.gap_thresholds(ds)  # the notebook's thresholds come from the data
    model = lifecycle.StageModel(dormant_days=th["dormant_days"], churn_days=th["churn_days"])
    board = lifecycle.lifecycle_board(ds, ov["first_day"], ov["last_day"], freq="W", model=model)
    last = board[board["period"] == board["period"].max()]
    from privdomain.lifecycle import repurchase

    rates = repurchase.repurchase_rate(ds, windows=(7, 30, 60, 90))
    # model checks: period-transactions fit, the 13-week holdout and P(alive) against the truth
    import pandas as pd

    fit_test = clv.chi_square(clv.period_transactions(bg, weekly, max_frequency=7), n_params=4)
    end = pd.Timestamp(ov["last_day"]) + pd.Timedelta(days=1)
    cal = rfm.calibration_and_holdout_data(ds, end - pd.Timedelta(weeks=13), end, time_unit="W")
    cal = cal[cal["T"] > 0]
    bg_cal = clv.BetaGeo().fit(cal)
    holdout = clv.purchase_score(bg_cal.expected_purchases(13.0, cal), cal["frequency_holdout"])
    alive = clv.truth_alive(ds, end, weekly["person_id"])
    truth = {}
    for label, model in [("BG/NBD", bg), ("modified BG/NBD", clv.ModifiedBetaGeo().fit(weekly)),
                         ("Pareto/NBD", clv.ParetoNBD().fit(weekly))]:
        sc = clv.p_alive_score(model.probability_alive(weekly), alive)
        truth[label] = {"mean P(alive)": sc["mean_p_alive"], "truly alive": sc["alive_share"],
                        "Brier": sc["brier"], "reference": sc["brier_reference"], "skill": sc["brier_skill"]}
    return {"period_transactions_chi_square": dict(fit_test), "holdout": dict(holdout), "p_alive_truth": truth,
            "last_week_stage_share": dict(zip(last["stage"], last["share"].astype(float))),
            "lifecycle_thresholds": {"dormant_days": th["dormant_days"], "churn_days": th["churn_days"],
                                     "source": th["source"]},
            "repurchase_rate_windows": {str(w): float(r) for w, r in zip(rates["window_days"], rates["rate"])},
            "buyers": len(summary), "repurchase_rate": (summary["frequency"] >= 1).mean(),
            "mean_frequency": summary["frequency"].mean(), "segments": {k: int(v) for k, v in seg.items()},
            "mean_p_alive": bg.probability_alive(weekly).mean(), "mean_clv_26w": value.mean()}


def _expected_experiments(ds) -> dict:
    out = {}
    for name in sorted(n for n in ds.read("assignments")["experiment"].unique() if not n.startswith("lift_")):
        frame = ex.campaign_frame(ds, name)
        rates = frame.groupby("arm")[["converted", "repurchased", "revenue"]].mean()
        out[name] = {"uplift_repurchased": rates.loc["treatment", "repurchased"] - rates.loc["holdout", "repurchased"],
                     "uplift_converted": rates.loc["treatment", "converted"] - rates.loc["holdout", "converted"],
                     "uplift_revenue": rates.loc["treatment", "revenue"] - rates.loc["holdout", "revenue"],
                     "holdout_repurchase_rate": rates.loc["holdout", "repurchased"],
                     "relative_lift_repurchased": rates.loc["treatment", "repurchased"] / rates.loc["holdout", "repurchased"]
                     - 1}
    campaign = ex.simulate_campaign(max(PERSONS, 2000), effect=0.05, seed=SEED,
                                    tier_effects={"first_time": 0.08, "2-5": 0.05, "5+": 0.01})
    row = ex.difference_in_means(campaign, "converted").iloc[0]
    out["known_truth"] = {"uplift_converted": row.estimate, "ci_low": row.ci_low, "ci_high": row.ci_high,
                          "true_uplift_converted": ex.campaign_truth(0.05, tier_effects={
                              "first_time": 0.08, "2-5": 0.05, "5+": 0.01}).effect["converted"]}
    assert out["known_truth"]["true_uplift_converted"] == campaign.attrs["truth"]["converted"]  # kept one release
    panel = ex.simulate_panel(300, 12, effect=0.5, dynamic=0.5, seed=SEED)
    cs = ex.staggered_did(panel).iloc[0]
    true_att = panel.loc[panel.treated == 1, "true_effect"].mean()
    assert true_att == pytest.approx(panel.attrs["truth"]["att"], rel=1e-12)  # the attrs kept for one release
    out["staggered"] = {"true_att": true_att, "twfe": ex.did(panel).iloc[0].estimate,
                        "callaway_santanna": cs.estimate, "cs_ci_low": cs.ci_low, "cs_ci_high": cs.ci_high}
    assert cs.ci_low < true_att < cs.ci_high  # what the notebook shows the reader
    return out


def _expected_funnels(ds) -> dict:
    from privdomain.boards import funnel

    mp = funnel.funnel(ds, ["mp_visit", "product_view", "add_to_cart", "order", "pay"], window="7D")
    ad = funnel.funnel(ds, ["moments_ad_view", "moments_ad_click", "oa_follow", "pay"], window="30D")
    from privdomain.boards import officialaccount

    board = officialaccount.article_rates(ds, window="7D")
    rates = officialaccount.pooled_rates(board)
    return {"mp_funnel_persons": mp["persons"].tolist(), "mp_visit_to_pay": mp["persons"].iloc[-1] / mp["persons"].iloc[0],
            "ad_view_to_pay": ad["persons"].iloc[-1] / ad["persons"].iloc[0],
            "oa_open_rate": rates["open_rate"], "oa_click_rate": rates["click_rate"],
            "oa_conversion_rate": rates["conversion_rate"], "oa_articles": len(board)}


def _expected_simulate(ds) -> dict:
    import pandas as pd

    from privdomain import identity, validate

    ev = ds.read("events", columns=["person_id", "id_type", "id_value"]).drop_duplicates(["id_type", "id_value"])
    quality = identity.score(identity.unify(ev, ds.read("id_links")), ev)
    inc = pd.read_parquet(ds.path / "truth" / "incrementality.parquet")
    return {"valid": True, "identity": quality,
            "row_counts": {k: int(v) for k, v in ds.manifest["row_counts"].items()},
            "true_incremental_share": dict(zip(inc["channel"], inc["share_conversions"])),
            "_validate": validate(ds.path).ok}


def _expected_touchpoints(ds) -> dict:
    from privdomain.boards import channel_cube, touchpoints

    ev = ds.read("events", columns=["event_id", "ts", "person_id", "touchpoint", "channel", "amount_fen"])
    pays = ev[ev["touchpoint"] == "pay"].sort_values(["ts", "event_id"])
    pays = pays.assign(repeat=pays.duplicated("person_id"), gmv=pays["amount_fen"].astype(float) / 100)
    by = pays.groupby("channel").agg(gmv=("gmv", "sum"), repeat=("repeat", "mean"))
    nodes = touchpoints.touchpoint_nodes(ds, window="7D")
    cube = channel_cube.channel_cube(ds, windows=(1, 7, 30))
    week = cube[cube["window_days"] == 7]
    return {"events_by_touchpoint": ev["touchpoint"].value_counts().to_dict(),
            "conversion_rate_by_touchpoint": dict(zip(nodes["node"], nodes["conversion_rate"])),
            "gmv_7d_by_channel": dict(zip(week["channel"], week["gmv"])),
            "gmv_by_channel": by["gmv"].to_dict(), "repeat_share_by_channel": by["repeat"].to_dict()}


EXPECTED = {
    "case": _expected_case,
    "quickstart": _overview,
    "attribution_roi": _expected_attribution,
    "lifecycle_clv": _expected_lifecycle,
    "experiments": _expected_experiments,
    "funnels_official_account": _expected_funnels,
    "simulate_and_inspect": _expected_simulate,
    "touchpoints_channels": _expected_touchpoints,
}
NOTEBOOKS = list(reports.CASES) + [p.stem for p in reports.topic_sources()]


def _same(got, want):
    """Equal up to float rounding; JSON null stands for NaN."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == {str(k) for k in want}
        for k, v in want.items():
            _same(got[str(k)], v)
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
    elif isinstance(want, str):
        assert got == want
    elif want is None or (isinstance(want, float) and math.isnan(want)):
        assert got is None
    else:
        assert got == pytest.approx(float(want), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_cleanly_and_records_the_librarys_numbers(name, root, kernel):
    job = next(j for j in reports.plan(list(reports.CASES), PERSONS, SEED, root) if j.name == name)
    ds = _dataset(job.scenario, root)
    res = reports.run_job(job, root, kernel_name=kernel)
    assert res.ok, f"{name} failed in cell {res.cell}: {res.error}"

    nb = nbformat.read(str(root / res.notebook), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert stderr == "", f"{name} wrote to stderr (a warning in the report): {stderr[:500]}"
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert figures, f"{name} shows no figure"

    page = (root / res.html).read_text(encoding="utf-8")
    assert "import " not in page.split("<body", 1)[1], "code cells must be hidden in the report"

    metrics = json.loads((root / res.metrics).read_text())
    kind = "case" if job.kind == "case" else name
    if kind in EXPECTED:
        expected = EXPECTED[kind](ds)
        if "_validate" in expected:
            assert expected.pop("_validate"), "the simulated dataset must pass validation"
        for key, want in expected.items():
            assert key in metrics, f"{name}: metric {key!r} not recorded"
            _same(metrics[key], want)
    if job.kind == "case":
        for key, want in _expected_headline(ds, metrics["headline"]).items():
            _same(metrics[key], want)
        assert metrics["scenario"] == name
        assert metrics["headline"] == cases.case_story(name)["headline"]


def test_the_audiences_notebook_tags_a_random_sample_of_persons_on_large_data(root, kernel):
    """Above ``max_persons`` the notebook tags one person-hash partition (memory on 10M persons)."""
    import dataclasses

    from privdomain import audience, events

    job = next(j for j in reports.plan(list(reports.CASES), PERSONS, SEED, root) if j.name == "audiences")
    ds = _dataset(job.scenario, root)
    job = dataclasses.replace(job, name="audiences_sampled",
                              parameters={**job.parameters, "max_persons": 600, "report_name": "audiences_sampled"})
    res = reports.run_job(job, root, kernel_name=kernel)
    assert res.ok, f"failed in cell {res.cell}: {res.error}"
    metrics = json.loads((root / res.metrics).read_text())
    sample, n_persons, k = events.sample_persons(ds, 600)
    assert k == metrics["sampled_one_in"] > 1
    tg = audience.tags(sample, as_of=metrics["as_of"], persons=ds)
    assert metrics["tagged_persons"] == len(tg) < n_persons
    # the persons tagged are a sample with every tag but the RFM segment (quintiles over the sample's buyers)
    # equal to the full table's for the same persons
    full = audience.tags(ds, as_of=metrics["as_of"])
    full = full[full["person_id"].isin(tg["person_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(tg.drop(columns="rfm_segment"), full.drop(columns="rfm_segment"))
    assert "random sample of about one in" in (root / res.html).read_text(encoding="utf-8")
