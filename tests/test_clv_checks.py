"""CLV model checks: log-scale and profile intervals, period transactions, calibration vs
holdout, and P(alive) scored against the simulator's truth."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from privdomain import clv
from privdomain.clv import (
    BetaGeo,
    GammaGamma,
    ModifiedBetaGeo,
    ParetoNBD,
    calibration_holdout,
    chi_square,
    p_alive_calibration,
    p_alive_score,
    period_transactions,
    purchase_score,
    rfm,
    simulate_beta_geo,
    truth_alive,
)
from privdomain.errors import DatasetError, UsageError
from privdomain.events import from_transactions

CDNOW = Path(__file__).parent / "data" / "cdnow_sample.txt"
TRUE = {"r": 0.4, "alpha": 5.0, "a": 0.9, "b": 3.0}


def _sha(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    cd = pd.read_csv(CDNOW, sep=r"\s+", header=None, names=["master_id", "customer", "date", "cds", "dollars"])
    cd["date"] = pd.to_datetime(cd["date"].astype(str), format="%Y%m%d")
    return rfm.rfm_summary(from_transactions(cd, person="customer", time="date", value="dollars"), as_of="1997-09-30",
                           time_unit="W", merge_period="D")


# -- intervals ------------------------------------------------------------------------------------

def test_log_scale_intervals_are_positive_and_cover_the_true_parameters_in_most_replications():
    T = np.random.default_rng(5).integers(20 * 7, 40 * 7, 600) / 7
    covered = pd.Series(0, index=list(TRUE))
    for rep in range(40):
        s = simulate_beta_geo(len(T), **TRUE, T=T, seed=100 + rep, time_step=1 / 7)
        tab = BetaGeo().fit(s).summary()
        finite = tab[np.isfinite(tab["lower_95"])]
        assert (finite["lower_95"] > 0).all(), tab
        assert (tab["interval"] == "log").all()
        inside = (tab["lower_95"] <= pd.Series(TRUE)) & (pd.Series(TRUE) <= tab["upper_95"])
        covered += inside.astype(int)
    share = covered / 40
    assert (share >= 0.85).all(), share


def test_log_interval_is_estimate_times_exp_of_the_log_standard_error(cdnow):
    m = BetaGeo().fit(cdnow)
    tab = m.summary()
    se_log = m.standard_errors_ / m.params_
    assert np.allclose(tab["se_log"], se_log)
    assert np.allclose(tab["lower_95"], m.params_ * np.exp(-1.959964 * se_log), rtol=1e-6)
    assert np.allclose(tab["upper_95"], m.params_ * np.exp(1.959964 * se_log), rtol=1e-6)
    # the old symmetric Wald interval stays available, and differs
    wald = m.summary(interval="wald")
    assert np.allclose(wald["lower_95"], m.params_ - 1.959964 * m.standard_errors_, rtol=1e-6)
    assert list(m.summary(level=0.9).columns) == ["estimate", "se", "se_log", "lower_90", "upper_90", "interval"]


def test_profile_interval_is_positive_brackets_the_estimate_and_is_close_to_the_log_interval(cdnow):
    m = BetaGeo().fit(cdnow)
    prof = m.summary(interval="profile")
    log = m.summary()
    assert (prof["lower_95"] > 0).all()
    assert ((prof["lower_95"] < prof["estimate"]) & (prof["estimate"] < prof["upper_95"])).all()
    # CDNOW's 2,357 customers: both are close to normal on the log scale
    assert np.allclose(np.log(prof["upper_95"]), np.log(log["upper_95"]), atol=0.1)
    # at each bound the profile log-likelihood has dropped by chi2(1, 0.95)/2 = 1.92
    from privdomain.clv.intervals import profile_interval

    lo, hi = profile_interval(m, "r")
    fixed = BetaGeo().fit(cdnow, initial=[hi, *m.params_[["alpha", "a", "b"]]])
    assert fixed.log_likelihood_ >= m.log_likelihood_ - 1e-6  # sanity: the free fit goes back to the optimum
    assert hi == pytest.approx(prof.loc["r", "upper_95"], rel=1e-4) and lo < m.params_["r"]


def test_profile_interval_names_an_unknown_parameter(cdnow):
    from privdomain.clv.intervals import profile_interval

    with pytest.raises(UsageError, match="unknown parameter 'alpa'.*did you mean 'alpha'"):
        profile_interval(BetaGeo().fit(cdnow), "alpa")
    with pytest.raises(ValueError, match="interval must be 'log', 'profile' or 'wald'"):
        BetaGeo().fit(cdnow).summary(interval="normal")


def test_gamma_gamma_intervals_are_positive_too(cdnow):
    gg = GammaGamma().fit(cdnow)
    for kind in ("log", "profile"):
        tab = gg.summary(interval=kind)
        assert (tab["lower_95"] > 0).all() and (tab["upper_95"] > tab["estimate"]).all(), tab


# -- period transactions --------------------------------------------------------------------------

@pytest.mark.parametrize("model", [BetaGeo, ModifiedBetaGeo, ParetoNBD])
def test_count_distribution_sums_to_one_and_has_the_models_mean(cdnow, model):
    m = model().fit(cdnow)
    n = np.arange(0, 300)
    for t in (0.5, 10.0, 39.0):
        pr = m.probability_of_purchases(n, t)
        assert pr.sum() == pytest.approx(1.0, abs=1e-8)
        assert (n * pr).sum() == pytest.approx(float(m.expected_purchases(t)), rel=1e-6)


def test_period_transactions_expected_counts_sum_to_the_customers_and_match_a_per_customer_sum(cdnow):
    m = BetaGeo().fit(cdnow)
    pt = period_transactions(m, cdnow, max_frequency=7)
    assert pt["expected"].sum() == pytest.approx(len(cdnow))
    assert pt["observed"].sum() == len(cdnow)
    assert pt["observed"].tolist()[:3] == [int((cdnow["frequency"] == k).sum()) for k in range(3)]
    brute = [sum(float(m.probability_of_purchases(k, T)) for T in cdnow["T"]) for k in range(2)]
    assert pt["expected"].iloc[:2].tolist() == pytest.approx(brute, rel=1e-9)
    # FHL (2005) fig. 2: CDNOW's 1,411 customers with no repeat purchase, about 1,390 expected
    assert pt.loc[0, "observed"] == 1411 and abs(pt.loc[0, "expected"] - 1411) < 40


def test_chi_square_pools_sparse_groups_and_reports_no_p_value_without_degrees_of_freedom():
    table = pd.DataFrame({"observed": [50, 30, 12, 5, 2, 1], "expected": [48.0, 31.0, 13.0, 4.0, 2.5, 1.5]})
    res = chi_square(table, n_params=1)
    # 4.0 + 2.5 + 1.5 pooled: groups 48, 31, 13, 8
    o, e = np.array([50, 30, 12, 8]), np.array([48.0, 31.0, 13.0, 8.0])
    assert res["groups"] == 4 and res["df"] == 2
    assert res["chi_square"] == pytest.approx(float(((o - e) ** 2 / e).sum()))
    assert 0 < res["p_value"] < 1
    assert np.isnan(chi_square(table, n_params=4)["p_value"])


def test_period_transactions_fit_is_not_rejected_for_data_from_the_model_itself():
    s = simulate_beta_geo(4000, **TRUE, T=35.0, seed=9, time_step=1 / 7)
    res = chi_square(period_transactions(BetaGeo().fit(s), s), n_params=4)
    assert res["df"] >= 1 and res["p_value"] > 0.001, res


def test_period_transactions_rejects_a_bad_max_frequency(cdnow):
    with pytest.raises(ValueError, match="max_frequency must be a whole number >= 1"):
        period_transactions(BetaGeo().fit(cdnow), cdnow, max_frequency=0)


# -- calibration / holdout ------------------------------------------------------------------------

def test_calibration_holdout_table_equals_a_per_customer_computation(tmp_path):
    rng = np.random.default_rng(3)
    n = 400
    days = rng.integers(0, 300, size=(n, 6))
    rows = [(i, pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(d)), 1000)
            for i in range(n) for d in days[i, : rng.integers(1, 7)]]
    tx = pd.DataFrame(rows, columns=["person_id", "ts", "amount_fen"])
    s = rfm.calibration_and_holdout_data(tx, "2024-08-01", "2024-10-27", time_unit="W")
    s = s[s["T"] > 0]
    m = BetaGeo().fit(s)
    tab = calibration_holdout(m, s, max_frequency=3)
    assert tab["n"].sum() == len(s)
    for _, row in tab.iterrows():
        k = row["calibration_purchases"]
        grp = s[s["frequency"] >= 3] if k == "3+" else s[s["frequency"] == int(k)]
        actual = []
        pred = []
        for _, cust in grp.iterrows():  # one customer at a time
            one = cust.to_frame().T.astype({"frequency": float, "t_x": float, "T": float})
            pred.append(float(m.expected_purchases(float(cust["duration_holdout"]), one)[0]))
            actual.append(cust["frequency_holdout"])
        assert row["n"] == len(grp)
        assert row["actual_mean"] == pytest.approx(np.mean(actual))
        assert row["predicted_mean"] == pytest.approx(np.mean(pred), rel=1e-9)
        assert row["actual_total"] == pytest.approx(sum(actual))


def test_calibration_holdout_names_a_missing_holdout_column(cdnow):
    with pytest.raises(ValueError, match="column 'frequency_holdout'"):
        calibration_holdout(BetaGeo().fit(cdnow), cdnow)


def test_purchase_score_formulas():
    res = purchase_score([1.0, 2.0, 0.5], [1, 4, 0])
    assert res["predicted_total"] == 3.5 and res["actual_total"] == 5
    assert res["mae"] == pytest.approx((0 + 2 + 0.5) / 3)
    assert res["rmse"] == pytest.approx(np.sqrt((0 + 4 + 0.25) / 3))
    assert res["total_error"] == pytest.approx(3.5 / 5 - 1)
    assert np.isnan(purchase_score([1.0, 1.0], [0, 0])["total_error"])


# -- scoring against the truth --------------------------------------------------------------------

def test_p_alive_score_and_calibration_formulas():
    p = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 1.0])
    o = np.array([1, 1, 0, 0, 0, 1], dtype=bool)
    res = p_alive_score(p, o)
    assert res["brier"] == pytest.approx(np.mean((p - o) ** 2))
    assert res["brier_reference"] == pytest.approx(0.25)
    assert res["brier_skill"] == pytest.approx(1 - res["brier"] / 0.25)
    assert res["bias"] == pytest.approx(p.mean() - 0.5)
    tab = p_alive_calibration(p, o, bins=[0, 0.5, 1])
    assert tab["n"].tolist() == [2, 4] and tab["bin"].tolist() == ["0%-50%", "50%-100%"]
    assert tab["alive_share"].tolist() == [0.0, 0.75]
    assert ((tab["lower_95"] <= tab["alive_share"]) & (tab["alive_share"] <= tab["upper_95"])).all()
    with pytest.raises(ValueError, match="P\\(alive\\) must be in \\[0, 1\\]; 1 value"):
        p_alive_score([0.5, 1.5], [1, 0])
    with pytest.raises(ValueError, match="2 forecasts but 3 outcomes"):
        p_alive_score([0.5, 0.5], [1, 0, 1])


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    import privdomain as pdm

    root = tmp_path_factory.mktemp("clvtruth")
    return pdm.simulate("tea", persons=1500, seed=3, out=root / "tea")


def test_p_alive_scored_against_the_simulators_truth(simulated):
    before = _sha(Path(simulated.path))
    w = rfm.rfm_summary(simulated, time_unit="W")
    w = w[w["T"] > 0]
    end = pd.Timestamp(simulated.manifest["end"]) + pd.Timedelta(days=1)
    alive = truth_alive(simulated, end, w["person_id"])
    assert alive.index.tolist() == w["person_id"].tolist() and alive.dtype == bool
    # brute force from the stages table: alive unless a churned stage began by the end
    st = pd.read_parquet(Path(simulated.path) / "truth" / "stages.parquet")
    churned = st[st["stage"] == "churned"].groupby("person_id")["valid_from"].min()
    end_tz = end.tz_localize("Asia/Shanghai")
    brute = [not (pid in churned.index and churned[pid] <= end_tz) for pid in w["person_id"]]
    assert alive.tolist() == brute
    assert 0 < alive.mean() < 1
    bg = BetaGeo().fit(w)
    res = p_alive_score(bg.probability_alive(w), alive)
    assert res["n"] == len(w) and res["alive_share"] == pytest.approx(np.mean(brute))
    assert 0 <= res["brier"] <= 1
    tab = p_alive_calibration(bg.probability_alive(w), alive)
    assert tab["n"].sum() == len(w)
    assert _sha(Path(simulated.path)) == before


def test_truth_alive_refuses_a_dataset_without_truth_and_unknown_persons(tmp_path, simulated):
    with pytest.raises(DatasetError, match="no truth/stages.parquet"):
        truth_alive(tmp_path, "2024-12-31")
    with pytest.raises(DatasetError, match="no row for 1 requested person"):
        truth_alive(simulated, "2024-12-31", [-5])


def test_small_fits_forecast_finite_values_when_a_and_b_run_to_infinity():
    s = simulate_beta_geo(80, r=0.5, alpha=5.0, a=0.8, b=3.0, T=30.0, seed=1, time_step=1 / 7)
    m = BetaGeo().fit(s)
    m.params_[["a", "b"]] = [3e6, 5e6]  # what a fit on ~80 buyers can return
    e = m.expected_purchases(26.0, s)
    assert np.isfinite(e).all() and (e >= 0).all()
    # the limit of a fixed dropout probability pi = a / (a + b): alive customers buy (1 - E e^{-lambda pi t}) / pi
    pi = 3 / 8
    r, alpha = m.params_["r"], m.params_["alpha"]
    x, T = s["frequency"].to_numpy(), s["T"].to_numpy()
    limit = (1 - ((alpha + T) / (alpha + T + pi * 26.0)) ** (r + x)) / pi * m.probability_alive(s)
    assert np.allclose(e, limit, rtol=1e-4)
    assert np.isfinite(m.expected_purchases(np.array([1.0, 26.0]))).all()


def test_the_package_namespace_exports_the_checks():
    for name in ("period_transactions", "chi_square", "calibration_holdout", "truth_alive", "p_alive_score",
                 "p_alive_calibration", "purchase_score"):
        assert name in clv.__all__ and callable(getattr(clv, name))
