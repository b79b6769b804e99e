"""Ground truth of a simulated dataset: stages, incrementality, Shapley, experiments.

Lifecycle stages (``truth/stages.parquet``), the simulator's latent state of a
person at time t, in the words of the default stage model:

* ``prospect``: reached (first touch at or before t), no purchase yet, not dropped out;
* ``new``: first paid purchase within the last 30 days;
* ``resurrected``: a paid purchase within the last 30 days that came after a gap
  of 90+ days without one (a dormant buyer came back);
* ``loyal``: last paid purchase within 90 days and >= 3 paid purchases in the last 365 days;
* ``active``: last paid purchase within 90 days (and none of the above);
* ``dormant``: a buyer with no paid purchase for 90+ days who has not dropped out
  (t < tau): they may still buy;
* ``churned``: t >= tau, the latent dropout time: the person will never buy again
  (a prospect who drops out is churned too).

Precedence: churned > new > resurrected > loyal > active > dormant; prospect
applies to non-buyers. Intervals are [valid_from, valid_to); valid_to is null
when the stage is still open at the end of the period.

Incrementality (``truth/incrementality.parquet``): for each channel family c,
conversions (paid purchases) and revenue with every channel on, and again with c
switched off, from the same persons and the same draws (common random numbers).

Shapley (``truth/shapley.parquet``): v(S) = conversions (revenue) when only the
channels in S are on (the Mini Program's organic visits are always on);
phi_c = sum over S not containing c of |S|!(k-|S|-1)!/k! (v(S+c) - v(S)),
computed exactly over all 2^k coalitions, per person (v is a sum over persons), on
a sample of persons; totals are scaled to the population and the standard error
is N * sd(per-person phi) / sqrt(n) (0 when the sample is the population).

>>> from privdomain.simulate.truth import STAGES
>>> STAGES[0]
'prospect'
"""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd

from .. import schema
from . import lift as lift_tests
from .journeys import INF, make_block, run_world
from .orders import prepare_experiments, repurchase_in_window
from .scenario import Scenario

__all__ = [
    "STAGES",
    "EPS",
    "world_totals",
    "per_person",
    "stage_code",
    "stages_block",
    "incrementality_block",
    "incrementality_frame",
    "experiments_block",
    "experiments_frame",
    "shapley",
    "traits_frame",
    "lift_block",
]


STAGES = ["prospect", "new", "active", "loyal", "dormant", "churned", "resurrected"]
NEW_DAYS, ACTIVE_DAYS, LOYAL_WINDOW, LOYAL_MIN = 30.0, 90.0, 365.0, 3
EPS = 1e-7  # days (under 10 ms): absorbs float rounding at the 30/90/365-day boundaries


def world_totals(w: dict) -> tuple[int, int]:
    """Conversions (paid purchases) and revenue (fen) of a world."""
    paid = w["paid"]
    return int(paid.sum()), int(w["amount_fen"][paid].sum())


def per_person(w: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    paid = w["paid"]
    pp = w["purchase_person"][paid]
    return (np.bincount(pp, minlength=n).astype(np.float64),
            np.bincount(pp, weights=w["amount_fen"][paid].astype(np.float64), minlength=n))


def stage_code(t, reach, tau, last, prev, first, count365):
    """Stage (index into STAGES) at times t given purchase facts (vectorised)."""
    code = np.full(len(t), -1, dtype=np.int8)
    bought = np.isfinite(last)
    gap = t - last + EPS  # a change point at purchase + 30 days already belongs to the next stage
    code[bought & (gap >= ACTIVE_DAYS)] = STAGES.index("dormant")
    code[bought & (gap < ACTIVE_DAYS)] = STAGES.index("active")
    code[bought & (gap < ACTIVE_DAYS) & (count365 >= LOYAL_MIN)] = STAGES.index("loyal")
    code[bought & (gap < NEW_DAYS) & (last - prev >= ACTIVE_DAYS)] = STAGES.index("resurrected")
    code[bought & (gap < NEW_DAYS) & (last == first)] = STAGES.index("new")
    code[~bought & (t >= reach)] = STAGES.index("prospect")
    code[(t >= tau) & (t >= reach)] = STAGES.index("churned")
    return code


def stages_block(B: dict, w: dict, start_ns: int, first_event: np.ndarray) -> pd.DataFrame:
    """Stage intervals of the persons of one block in the factual world.

    ``first_event`` is each person's first event time (days; inf if none): the
    person is reached (a prospect) from then on.
    """
    n, D = B["n"], B["D"]
    paid = w["paid"]
    pp = w["purchase_person"][paid].astype(np.int64)
    pt = w["purchase_tp"][paid]
    o = np.lexsort((pt, pp))
    pp, pt = pp[o], pt[o]
    reach = first_event
    tau = B["tau"]
    # candidate change points: reach, tau, each purchase + 0/30/90/365 days
    cp_p = [np.arange(n), np.arange(n)] + [pp] * 4
    cp_t = [reach, tau] + [pt, pt + NEW_DAYS, pt + ACTIVE_DAYS, pt + LOYAL_WINDOW]
    cp_p = np.concatenate(cp_p)
    cp_t = np.concatenate(cp_t)
    ok = np.isfinite(cp_t) & (cp_t < D) & np.isfinite(reach[cp_p])
    cp_p, cp_t = cp_p[ok], np.maximum(cp_t[ok], reach[cp_p[ok]])
    o = np.lexsort((cp_t, cp_p))
    cp_p, cp_t = cp_p[o], cp_t[o]
    # purchase facts at each change point: index of the last purchase at or before t
    span = D + LOYAL_WINDOW + 35.0  # person-major keys that stay exact to ~1e-8 days
    key_p = pp * span + pt
    key_c = cp_p * span + cp_t
    j = np.searchsorted(key_p, key_c, "right") - 1
    start_of = np.searchsorted(pp, cp_p, "left")
    has = (j >= start_of) & (j >= 0)
    jj = np.where(has, j, 0)
    last = np.where(has, pt[jj] if len(pt) else INF, INF)
    last = np.where(has, last, np.nan)
    prev = np.where(has & (jj - 1 >= start_of), pt[np.maximum(jj - 1, 0)] if len(pt) else 0, -np.inf)
    first = np.where(has, pt[np.minimum(start_of, max(len(pt) - 1, 0))] if len(pt) else 0, np.nan)
    k365 = np.searchsorted(key_p, key_c - LOYAL_WINDOW + EPS, "left")
    count = np.where(has, jj - np.maximum(k365, start_of) + 1, 0)
    last = np.where(has, last, np.inf * 0 + np.nan)
    code = stage_code(cp_t, reach[cp_p], tau[cp_p], np.where(has, last, np.nan), prev,
                      first, count)
    # nan-last means not bought: stage_code treats isfinite(last) as bought
    keep = code >= 0
    cp_p, cp_t, code = cp_p[keep], cp_t[keep], code[keep]
    change = np.ones(len(code), dtype=bool)
    change[1:] = (cp_p[1:] != cp_p[:-1]) | (code[1:] != code[:-1])
    cp_p, cp_t, code = cp_p[change], cp_t[change], code[change]
    nxt_same = np.zeros(len(code), dtype=bool)
    nxt_same[:-1] = cp_p[1:] == cp_p[:-1]
    valid_to = np.full(len(code), np.nan)
    valid_to[:-1] = np.where(nxt_same[:-1], cp_t[1:], np.nan)

    def ts(x):
        sec = np.floor(np.nan_to_num(x, nan=0.0) * 86400).astype(np.int64)
        s = pd.DatetimeIndex((start_ns + sec * 1_000_000_000).astype("datetime64[ns]")).tz_localize("UTC")
        s = s.tz_convert(schema.TIMEZONE)
        return s.where(~np.isnan(x))

    return pd.DataFrame({
        "person_id": (cp_p + B["offset"]).astype(np.int64),
        "stage": np.asarray(STAGES, dtype=object)[code],
        "valid_from": ts(cp_t),
        "valid_to": ts(valid_to),
    })


def incrementality_block(B: dict, w: dict, treat: str, assignment: dict | None) -> dict[str, list[int]]:
    """Per channel: [conversions, revenue, conversions_without, revenue_without] of one block."""
    conv, rev = world_totals(w)
    out = {}
    for c in B["sc"].channels:
        wc = run_world(B, off={c}, treat=treat, assignment=assignment)
        c2, r2 = world_totals(wc)
        out[c] = [conv, rev, c2, r2]
    return out


def incrementality_frame(sums: dict[str, list[int]]) -> pd.DataFrame:
    rows = []
    for c, (conv, rev, c2, r2) in sums.items():
        rows.append({"channel": c, "conversions": conv, "revenue_fen": rev, "conversions_without": c2,
                     "revenue_without_fen": r2, "incremental_conversions": conv - c2,
                     "incremental_revenue_fen": rev - r2})
    df = pd.DataFrame(rows, columns=["channel", "conversions", "revenue_fen", "conversions_without",
                                     "revenue_without_fen", "incremental_conversions", "incremental_revenue_fen"])
    df["share_conversions"] = df["incremental_conversions"] / df["conversions"].where(df["conversions"] > 0)
    df["share_revenue"] = df["incremental_revenue_fen"] / df["revenue_fen"].where(df["revenue_fen"] > 0)
    return df.astype({c: "int64" for c in df.columns[1:7]})


def experiments_block(B: dict) -> list[dict]:
    """Per experiment arm: sums needed for the true effect (all treated vs none, same draws)."""
    sc = B["sc"]
    out = []
    if not sc.experiments:
        return out
    w_all = run_world(B, treat="all", assignment=B["assignment"])
    w_none = B["base_world"]
    for ename, ex in sc.experiments.items():
        if ename == "coupon_tiers":
            y1 = repurchase_in_window(B, w_all, ex)
            y0 = repurchase_in_window(B, w_none, ex)
            for tname in ex["tiers"]:
                m = B["tier_name"] == tname
                out.append({"experiment": ename, "arm": tname, "n": int(m.sum()),
                            "y1": float(y1[m].sum()), "y0": float(y0[m].sum())})
        else:
            out.append({"experiment": ename, "arm": "all", "n": int(B["eligible"][ename].sum()),
                        "y1": 0.0, "y0": 0.0})
    return out


def experiments_frame(sc: Scenario, sums: list[dict]) -> pd.DataFrame:
    """truth/experiments.parquet: one row per experiment arm with the true effect."""
    if not sums:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ["experiment", "arm", "outcome", "true_effect",
                                                                   "unit", "control_arm"]}).astype(
            {"true_effect": "float64"}).assign(persons=pd.Series(dtype="int64"))
    df = pd.DataFrame(sums).groupby(["experiment", "arm"], sort=False, as_index=False).sum()
    rows = []
    for r in df.itertuples():
        if r.experiment == "coupon_tiers":
            eff = (r.y1 - r.y0) / r.n if r.n else float("nan")
            rows.append({"experiment": r.experiment, "arm": f"{r.arm}:treatment", "control_arm": f"{r.arm}:holdout",
                         "outcome": "repurchase_30d" if
                         sc.experiments["coupon_tiers"]["days"] == 30 else
                         f"repurchase_{sc.experiments['coupon_tiers']['days']}d",
                         "true_effect": eff, "unit": "difference in probability (treatment - holdout)",
                         "persons": int(r.n)})
        else:
            ex = sc.experiments[r.experiment]
            cr = sc.sections["official_account"]["click_rate"]
            rows.append({"experiment": r.experiment, "arm": "treatment", "control_arm": "holdout",
                         "outcome": "article_click_given_open",
                         "true_effect": cr * (ex["click_multiplier"] - 1.0),
                         "unit": "difference in probability of mp_click given oa_article_open",
                         "persons": int(r.n)})
    cols = ["experiment", "arm", "outcome", "true_effect", "unit", "control_arm", "persons"]
    return pd.DataFrame(rows)[cols]


def shapley(sc: Scenario, seed: int, persons: int, sample: int = 4000, treat: str = "none") -> pd.DataFrame:
    """Exact Shapley credit over the scenario's channels on a sample of persons.

    The sample is block 0 of the population when the population fits in one block
    and is no larger than ``sample`` (then it is the population and se = 0); else
    an independent sample of ``sample`` persons from the same scenario and seed
    (its own seed stream). Totals are scaled by N / n.
    """
    chans = list(sc.channels)
    k = len(chans)
    if k > 12:
        raise ValueError(f"shapley: {k} channels; exact Shapley is limited to 12 channels")
    if persons <= min(sample, sc.block_size):
        B, n, scale, exact = make_block(sc, seed, 0, persons), persons, 1.0, True
    else:
        from .rng import SHAPLEY_STREAM

        B, n, scale, exact = make_block(sc, seed, SHAPLEY_STREAM, sample), sample, persons / sample, False
    assignment = prepare_experiments(B)
    mode = "assigned" if sc.experiments else "none"
    values_c = np.zeros((1 << k, n))
    values_r = np.zeros((1 << k, n))
    for mask in range(1 << k):
        off = {chans[i] for i in range(k) if not (mask >> i) & 1}
        w = run_world(B, off=off, treat=mode, assignment=assignment)
        values_c[mask], values_r[mask] = per_person(w, B["n"])
    phi_c = np.zeros((k, n))
    phi_r = np.zeros((k, n))
    for i in range(k):
        bit = 1 << i
        for size in range(k):
            wgt = factorial(size) * factorial(k - size - 1) / factorial(k)
            for S in combinations([j for j in range(k) if j != i], size):
                m = sum(1 << j for j in S)
                phi_c[i] += wgt * (values_c[m | bit] - values_c[m])
                phi_r[i] += wgt * (values_r[m | bit] - values_r[m])
    tot_c, tot_r = phi_c.sum(axis=1) * scale, phi_r.sum(axis=1) * scale
    se_c = np.zeros(k) if exact else persons * phi_c.std(axis=1, ddof=1) / np.sqrt(n)
    se_r = np.zeros(k) if exact else persons * phi_r.std(axis=1, ddof=1) / np.sqrt(n)
    sc_sum, sr_sum = tot_c.sum(), tot_r.sum()
    return pd.DataFrame({
        "channel": chans,
        "shapley_conversions": tot_c,
        "shapley_revenue_fen": tot_r,
        "se_conversions": se_c,
        "se_revenue_fen": se_r,
        "share_conversions": tot_c / sc_sum if sc_sum else np.nan,
        "share_revenue": tot_r / sr_sum if sr_sum else np.nan,
        "persons_sampled": np.full(k, n, dtype=np.int64),
    })


def traits_frame(B: dict) -> pd.DataFrame:
    """truth/persons.parquet rows of one block: the latent traits."""
    df = pd.DataFrame({
        "person_id": (np.arange(B["n"]) + B["offset"]).astype(np.int64),
        "entry_channel": B["entry"].astype(object),
        "interest": B["interest"],
        "purchase_rate": B["interest"],
        "price_sensitivity": B["price_sensitivity"],
        "churn_hazard": B["churn_hazard"],
        "dropout_day": B["tau"],
    })
    for i, c in enumerate(B["aff_names"]):
        df[f"affinity_{c}"] = B["affinity"][:, i]
    return df


def lift_block(B: dict, w: dict, treat: str, assignment: dict | None) -> dict[str, list[float]]:
    """Lift tests: per test, sums over the block for :func:`privdomain.simulate.lift.truth_frame` (one extra world per test)."""
    lift = B["lift"]
    if not lift:
        return {}
    fact = lift_tests.outcomes(B, w, lift)
    out = {}
    for ch, L in lift.items():
        wf = run_world(B, treat=treat, assignment=assignment, lift=lift_tests.swapped(lift, ch))
        flip = lift_tests.outcomes(B, wf, {ch: L})[ch]
        held = L["held"]
        yc, yr = fact[ch]
        fc, fr = flip
        exp_c = np.where(held, fc, yc)  # exposed potential outcome
        exp_r = np.where(held, fr, yr)
        hol_c = np.where(held, yc, fc)  # held-out potential outcome
        hol_r = np.where(held, yr, fr)
        tr = ~held
        out[ch] = [float(B["n"]), float(tr.sum()), float(held.sum()),
                   float((exp_c - hol_c)[tr].sum()), float((exp_r - hol_r)[tr].sum()),
                   float((exp_c - hol_c).sum()), float((exp_r - hol_r).sum()),
                   float(yc[tr].sum()), float(yr[tr].sum()), float(yc[held].sum()), float(yr[held].sum())]
    return out
