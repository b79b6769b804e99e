"""A retargeting campaign on a lookalike audience against a normal campaign, with its truth.

A scenario with a ``retarget`` section runs, after the journeys, two Moments ad campaigns
that start on ``start`` and last ``days`` days::

    retarget:
      start: 2024-11-01      # campaign start; the audience is cut from the tags of the day before
      days: 14
      seed_days: 90          # seed: persons who paid in the seed_days days before start
      audience: 0.1          # audience size, as a share of the tagged persons
      treat: 0.5             # share of each audience that is shown the ads (the rest is the holdout)
      response: 0.08         # chance an active person of average interest buys because of the ads
      reactivation: 0.1      # the same for a person who has dropped out, relative to an active one
      cost_fen: 1500         # spend per treated person
      target: 1.46           # the calibrated ROI ratio (lookalike over normal), and its tolerance
      tolerance: 0.2

Audiences
    On the dataset just written, :func:`privdomain.audience.tags` as of the day before
    ``start``; the seed is the persons with a ``pay`` in the last ``seed_days`` days, and
    :func:`privdomain.audience.lookalike` expands it. The **lookalike** audience is the
    seed plus the best-scored non-seed persons, ``audience`` x tagged persons in all; the
    **normal** audience is as many persons drawn at random (a keyed hash of the person
    id) from the tagged persons outside the lookalike audience: the untargeted campaign.
Randomisation
    In each audience a hash of (seed, person) below ``treat`` puts the person in the
    ``treatment`` arm (shown the ads), else in the ``holdout``; the arms go to
    ``assignments`` as experiments ``retarget_lookalike`` and ``retarget_normal``.
Response (the truth)
    Every audience person has a potential response: with probability

    .. math:: p_i = \\min\\left(1,\\ r\\,\\frac{\\text{interest}_i}{\\overline{\\text{interest}}}
              \\cdot (1 \\text{ if } \\tau_i > s \\text{ else } \\rho)\\right)

    (``r`` = ``response``, ``rho`` = ``reactivation``, ``tau`` the latent dropout day, ``s``
    the start, the mean interest over all simulated persons) she buys one product (drawn
    by the catalogue's weights) because of the ads. The draw is made for everyone in the
    audiences (common random numbers) and realised only in the treatment arm: a
    ``moments_ad_view`` for every treated person, and ``moments_ad_click``, ``order`` and
    ``pay`` for the treated responders, all inside the campaign window. These purchases
    come on top of the journeys (the holdout shows what would have happened anyway).
    ``truth/retarget.parquet`` holds per audience person: campaign, arm, lookalike score,
    whether she was active at the start, ``p_response``, ``responds`` (the potential
    outcome), the product she would buy and its ``price_fen``, ``revenue_fen`` (the
    price if she responds, else 0) and ``expected_revenue_fen`` (``p_response`` x the
    catalogue's weighted mean price) (its revenue, 0 if she does not respond).
ROI
    A campaign's true ROI is the revenue of its treated responders over its spend
    (``cost_fen`` x treated persons), and its expected ROI the treated persons'
    ``expected_revenue_fen`` over the spend (free of the response and product draws);
    :func:`true_roi` reads both. The
    lookalike campaign reaches more persons who are still active and interested, which is
    where its higher ROI comes from; ``reactivation`` is the calibrated parameter (the
    sportswear preset's ratio is about 1.46, the case's figure).

>>> from privdomain.simulate.retarget import CAMPAIGN_IDS
>>> CAMPAIGN_IDS["lookalike"], CAMPAIGN_IDS["normal"]
(900, 901)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import io, schema
from ..errors import UsageError
from .rng import hash_uniform
from .scenario import Scenario

__all__ = ["CAMPAIGN_IDS", "EXPERIMENTS", "audiences", "case_table", "response_probability", "run", "true_roi", "window"]

#: campaign ids of the two campaigns (after the scenario's own ad campaigns)
CAMPAIGN_IDS = {"lookalike": 900, "normal": 901}
#: the ``assignments.experiment`` name of each campaign
EXPERIMENTS = {"lookalike": "retarget_lookalike", "normal": "retarget_normal"}
_SALT = {"normal": 0x5E1EC7, "treat": 0x7EA7, "respond": 0x2E5B, "product": 0x9A0D, "time": 0x71AE}


def window(sc: Scenario) -> tuple[int, int]:
    """The campaign window in days since the scenario start: ``[s, e)`` (clipped to the period)."""
    r = sc.retarget
    s = (r["start"] - sc.start).days
    return s, min(s + int(r["days"]), sc.days)


def _uniform(seed: int, salt: int, person_id: np.ndarray) -> np.ndarray:
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, 0xAD5, salt])
    key = np.uint64(int(ss.generate_state(1, np.uint64)[0]))
    with np.errstate(over="ignore"):
        return hash_uniform(np.asarray(person_id, dtype=np.uint64) * np.uint64(0x9E3779B1) + key, 31)


def audiences(tags: pd.DataFrame, sc: Scenario, seed: int) -> pd.DataFrame:
    """The two audiences and their arms: ``person_id``, ``campaign``, ``arm``, ``score``, ``in_seed``.

    ``tags`` is :func:`privdomain.audience.tags` as of the day before the start.
    """
    from .. import audience

    r = sc.retarget
    if tags.empty:
        return pd.DataFrame({"person_id": pd.Series([], dtype="int64"), "campaign": pd.Series([], dtype=object),
                             "arm": pd.Series([], dtype=object), "score": pd.Series([], dtype="float64"),
                             "in_seed": pd.Series([], dtype=bool)})
    size = max(1, int(round(r["audience"] * len(tags))))
    seed_seg = audience.select(tags, audience.Did("pay", within_days=int(r["seed_days"])))
    try:
        sc_ = audience.lookalike(tags, seed_seg).scores
    except UsageError:  # a seed of no one or everyone (a tiny population): no model, others drawn at random
        sc_ = pd.DataFrame({"person_id": tags["person_id"].to_numpy(dtype="int64"),
                            "score": _uniform(seed, _SALT["normal"] + 1, tags["person_id"].to_numpy(dtype="int64")),
                            "in_seed": tags["person_id"].isin(seed_seg.person_ids).to_numpy()})
    out = sc_[~sc_["in_seed"]].sort_values(["score", "person_id"], ascending=[False, True], kind="stable")
    extra = out["person_id"].to_numpy(dtype="int64")[: max(0, size - seed_seg.size)]
    look = np.union1d(seed_seg.person_ids, extra)
    rest = np.setdiff1d(tags["person_id"].to_numpy(dtype="int64"), look)
    u = _uniform(seed, _SALT["normal"], rest)
    normal = np.sort(rest[np.argsort(u, kind="stable")[: min(len(look), len(rest))]])
    pid = np.r_[look, normal]
    frame = pd.DataFrame({"person_id": pid,
                          "campaign": np.r_[["lookalike"] * len(look), ["normal"] * len(normal)].astype(object)})
    treated = _uniform(seed, _SALT["treat"], pid) < r["treat"]
    frame["arm"] = np.where(treated, "treatment", "holdout").astype(object)
    frame["score"] = frame["person_id"].map(sc_.set_index("person_id")["score"]).to_numpy(dtype="float64")
    frame["in_seed"] = np.isin(pid, seed_seg.person_ids)
    return frame.sort_values("person_id", kind="stable").reset_index(drop=True)


def response_probability(interest: np.ndarray, dropout_day: np.ndarray, start_day: float, response: float,
                         reactivation: float, mean_interest: float) -> np.ndarray:
    """``p = min(1, response * interest / mean_interest * (1 if dropout_day > start_day else reactivation))``.

    >>> response_probability(np.array([1.0, 2.0]), np.array([500.0, 10.0]), 300.0, 0.1, 0.5, 1.0).tolist()
    [0.1, 0.1]
    """
    active = np.asarray(dropout_day, dtype="float64") > start_day
    p = response * np.asarray(interest, dtype="float64") / mean_interest * np.where(active, 1.0, reactivation)
    return np.minimum(p, 1.0)


def _responses(aud: pd.DataFrame, traits: pd.DataFrame, sc: Scenario, seed: int, products: pd.DataFrame) -> pd.DataFrame:
    r = sc.retarget
    s, _ = window(sc)
    tr = traits.set_index("person_id")
    pid = aud["person_id"].to_numpy(dtype="int64")
    interest = tr["interest"].reindex(pid).to_numpy(dtype="float64")
    tau = tr["dropout_day"].reindex(pid).to_numpy(dtype="float64")
    p = response_probability(interest, tau, float(s), r["response"], r["reactivation"],
                             float(traits["interest"].mean()))
    responds = _uniform(seed, _SALT["respond"], pid) < p
    w = np.array([float(x.get("weight", 1.0)) for x in sc.products])
    cum = np.cumsum(w / w.sum())
    k = np.minimum(np.searchsorted(cum, _uniform(seed, _SALT["product"], pid), side="right"), len(w) - 1)
    out = aud.copy()
    out["active"] = tau > s
    out["p_response"] = p
    out["responds"] = responds
    out["product_id"] = products["product_id"].to_numpy(dtype="int64")[k]
    out["price_fen"] = products["price_fen"].to_numpy(dtype="int64")[k]
    price = products["price_fen"].to_numpy(dtype="float64")
    out["expected_revenue_fen"] = p * float(np.sum(w / w.sum() * price[: len(w)]))
    out["revenue_fen"] = np.where(responds, products["price_fen"].to_numpy(dtype="int64")[k], 0).astype("int64")
    return out


def _campaign_events(resp: pd.DataFrame, sc: Scenario, seed: int, first_ids: pd.DataFrame, s_ns: int,
                     next_event: int, next_order: int) -> pd.DataFrame:
    """The events of the treated persons: a view each, then click, order and pay for the responders."""
    s, e = window(sc)
    t = resp[resp["arm"] == "treatment"].reset_index(drop=True)
    u = _uniform(seed, _SALT["time"], t["person_id"].to_numpy(dtype="int64"))
    view = (s + u * (e - s) * 0.8) * 86400.0  # seconds since the scenario start; room left for the purchase
    rows = [pd.DataFrame({"person_id": t["person_id"], "sec": view, "touchpoint": "moments_ad_view",
                          "campaign_id": t["campaign"].map(CAMPAIGN_IDS), "product_id": pd.NA,
                          "order_id": pd.NA, "amount_fen": pd.NA, "k": 0})]
    b = t[t["responds"]].reset_index(drop=True)
    vb = view[t["responds"].to_numpy()]
    oid = next_order + np.arange(len(b))
    for k, (tp, lag) in enumerate((("moments_ad_click", 30.0), ("order", 600.0), ("pay", 660.0)), start=1):
        rows.append(pd.DataFrame({"person_id": b["person_id"], "sec": vb + lag, "touchpoint": tp,
                                  "campaign_id": b["campaign"].map(CAMPAIGN_IDS) if k == 1 else pd.NA,
                                  "product_id": b["product_id"] if k > 1 else pd.NA,
                                  "order_id": oid if k > 1 else pd.NA,
                                  "amount_fen": b["revenue_fen"] if k > 1 else pd.NA, "k": k}))
    ev = pd.concat(rows, ignore_index=True).sort_values(["sec", "person_id", "k"], kind="stable")
    ev = ev.merge(first_ids, on="person_id", how="left")
    ts = pd.DatetimeIndex((s_ns + np.floor(ev["sec"].to_numpy()).astype(np.int64) * 1_000_000_000)
                          .astype("datetime64[ns]")).tz_localize("UTC").tz_convert(schema.TIMEZONE)
    n = len(ev)
    out = pd.DataFrame({
        "event_id": next_event + np.arange(n, dtype=np.int64),
        "ts": ts,
        "person_id": ev["person_id"].to_numpy(dtype="int64"),
        "id_type": ev["id_type"].astype(object).to_numpy(),
        "id_value": ev["id_value"].astype(object).to_numpy(),
        "touchpoint": ev["touchpoint"].to_numpy(dtype=object),
        "channel": ev["touchpoint"].map(lambda x: "moments_ad" if x.startswith("moments_ad") else "mini_program")
        .to_numpy(dtype=object),
    })
    for c in ("campaign_id", "product_id", "order_id", "amount_fen"):
        out[c] = pd.array(ev[c].to_numpy(dtype=object), dtype="Int64")
    for c in ("article_id", "live_id", "store_id", "guide_id", "referrer_person_id"):
        out[c] = pd.array([pd.NA] * n, dtype="Int64")
    return out


def _first_ids(root: Path, persons: np.ndarray) -> pd.DataFrame:
    """Per person of ``persons``: the id of her first event (the id her campaign events carry)."""
    import pyarrow.dataset as pads

    tab = pads.dataset(str(root / "events")).to_table(
        columns=["person_id", "event_id", "id_type", "id_value"],
        filter=pads.field("person_id").isin(persons.tolist()))
    df = tab.to_pandas()
    df = df.sort_values(["person_id", "event_id"], kind="stable").drop_duplicates("person_id")
    return df[["person_id", "id_type", "id_value"]].astype({"id_type": object, "id_value": object})


def _append_part(path: Path, extra: pd.DataFrame) -> int:
    part = pd.read_parquet(path)
    cats = [c for c in part.columns if isinstance(part[c].dtype, pd.CategoricalDtype)]
    both = pd.concat([part.astype({c: object for c in cats}), extra[part.columns]], ignore_index=True)
    both["ts"] = both["ts"].astype(part["ts"].dtype)
    both = both.sort_values(["ts", "event_id"], kind="stable").reset_index(drop=True)
    both = both.astype({c: "category" for c in cats})
    io._write_parquet(both, path)
    return len(both)


def run(root: str | Path, sc: Scenario, seed: int, traits: pd.DataFrame, want_truth: bool,
        block_ranges: list[tuple[int, int, int]]) -> dict[str, int]:
    """Run the scenario's retargeting campaigns on the dataset written in ``root`` (in place).

    Appends the campaign events to the events parts, the two campaigns and their arms to
    ``campaigns`` and ``assignments``, writes ``truth/retarget.parquet`` when
    ``want_truth``, and returns the new row counts for the manifest.
    """
    from .. import audience
    from .scenario import start_ns

    root = Path(root)
    as_of = sc.retarget["start"] - dt.timedelta(days=1)
    try:
        tags = audience.tags(root, as_of=as_of.isoformat())
    except UsageError:  # a tiny population without a purchase: no audience, no campaign events
        tags = pd.DataFrame({"person_id": pd.Series([], dtype="int64")})
    products = pd.read_parquet(root / "products.parquet")
    resp = _responses(audiences(tags, sc, seed), traits, sc, seed, products)
    del tags
    s_ns = start_ns(sc)
    treated_ids = resp.loc[resp["arm"] == "treatment", "person_id"].to_numpy(dtype="int64")
    import pyarrow.dataset as pads

    evd = pads.dataset(str(root / "events"))
    mx = evd.to_table(columns=["event_id", "order_id"]).to_pandas()
    next_event = int(mx["event_id"].max()) + 1 if len(mx) else 0
    next_order = int(mx["order_id"].max()) + 1 if mx["order_id"].notna().any() else 1
    del mx
    new = _campaign_events(resp, sc, seed, _first_ids(root, treated_ids), s_ns, next_event, next_order)
    total = 0
    for b, size, off in block_ranges:
        path = root / "events" / f"part-{b:05d}.parquet"
        mine = new[(new["person_id"] >= off) & (new["person_id"] < off + size)]
        total += _append_part(path, mine) if len(mine) else pq_rows(path)
    s, e = window(sc)
    camps = pd.read_parquet(root / "campaigns.parquet")
    start_ts, end_ts = (pd.Timestamp(s_ns + d * 86400 * 1_000_000_000, tz="UTC").tz_convert(schema.TIMEZONE)
                        for d in (s, e))
    n_treated = resp[resp["arm"] == "treatment"].groupby("campaign").size()
    add = pd.DataFrame({"campaign_id": [CAMPAIGN_IDS[c] for c in CAMPAIGN_IDS],
                        "name": [f"retarget_{c}" for c in CAMPAIGN_IDS], "channel": "moments_ad",
                        "start": [start_ts] * 2, "end": [end_ts] * 2,
                        "spend_fen": [int(round(sc.retarget["cost_fen"] * int(n_treated.get(c, 0))))
                                      for c in CAMPAIGN_IDS]})
    camps = pd.concat([camps, add.astype({"start": camps["start"].dtype, "end": camps["end"].dtype})],
                      ignore_index=True)
    io._write_parquet(camps, root / "campaigns.parquet")
    asg = pd.read_parquet(root / "assignments.parquet")
    arms = pd.DataFrame({"person_id": resp["person_id"].to_numpy(dtype="int64"),
                         "experiment": resp["campaign"].map(EXPERIMENTS).to_numpy(dtype=object),
                         "arm": resp["arm"].to_numpy(dtype=object),
                         "assigned_at": pd.Series([start_ts] * len(resp)).astype(asg["assigned_at"].dtype)})
    cats = [c for c in asg.columns if isinstance(asg[c].dtype, pd.CategoricalDtype)]
    asg = pd.concat([asg.astype({c: object for c in cats}), arms], ignore_index=True)
    io._write_parquet(asg, root / "assignments.parquet")
    if want_truth:
        cols = ["person_id", "campaign", "arm", "in_seed", "score", "active", "p_response", "responds",
                "product_id", "price_fen", "revenue_fen", "expected_revenue_fen"]
        io._write_parquet(resp[cols].reset_index(drop=True), root / "truth" / "retarget.parquet")
    return {"events": total, "campaigns": len(camps), "assignments": len(asg)}


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def true_roi(data: Any) -> pd.DataFrame:
    """Per campaign, from ``truth/retarget.parquet`` and ``campaigns``: treated persons, true
    responders and revenue, spend and true ROI (revenue of the treated responders over spend).
    The ratio ``lookalike / normal`` is ``roi[0] / roi[1]`` (:func:`case_table` returns it;
    ``attrs["ratio"]`` and ``attrs["expected_ratio"]`` keep it for one release).
    """
    root = Path(data.path if isinstance(data, io.Dataset) else data)
    t = pd.read_parquet(root / "truth" / "retarget.parquet")
    camps = pd.read_parquet(root / "campaigns.parquet").set_index("campaign_id")
    tr = t[t["arm"] == "treatment"]
    g = tr.groupby("campaign")
    out = pd.DataFrame({"treated": g.size(), "responders": g["responds"].sum().astype("int64"),
                        "revenue_fen": g["revenue_fen"].sum().astype("int64"),
                        "expected_revenue_fen": g["expected_revenue_fen"].sum()})
    out = out.reindex(list(CAMPAIGN_IDS))
    out = out.fillna({"treated": 0, "responders": 0, "revenue_fen": 0, "expected_revenue_fen": 0.0}).astype(
        {"treated": "int64", "responders": "int64", "revenue_fen": "int64"})
    out["spend_fen"] = [int(camps.loc[CAMPAIGN_IDS[c], "spend_fen"]) for c in out.index]
    spend = out["spend_fen"].where(out["spend_fen"] > 0).astype("float64")
    out["roi"] = out["revenue_fen"].astype("float64") / spend
    out["expected_roi"] = out["expected_revenue_fen"].astype("float64") / spend
    out.index.name = "campaign"
    out = out.reset_index()
    with np.errstate(divide="ignore", invalid="ignore"):
        out.attrs["ratio"] = float(np.float64(out.loc[0, "roi"]) / np.float64(out.loc[1, "roi"]))
        out.attrs["expected_ratio"] = float(np.float64(out.loc[0, "expected_roi"]) / np.float64(out.loc[1, "expected_roi"]))
    return out


def case_table(data: Any) -> tuple[pd.DataFrame, dict[str, float]]:
    """The retargeting case: each campaign's estimated ROI (from arms and pays,
    :func:`privdomain.audience.campaign_roi`) beside its true ROI, and the ratio.

    Returns
    -------
    (pandas.DataFrame, dict)
        Per campaign: ``n_treated``, ``n_holdout``, ``roi`` with ``roi_lo``/``roi_hi``
        (the estimate), ``true_roi`` (revenue of the treated responders over spend),
        ``expected_roi``, ``true_incremental_fen`` (true revenue per treated person) beside
        the estimate ``incremental_fen``; and ``{"ratio", "lo", "hi", "true_ratio",
        "expected_ratio", "target", "tolerance"}``.
    """
    from .. import audience

    root = Path(data.path if isinstance(data, io.Dataset) else data)
    est = pd.concat([audience.campaign_roi(root, EXPERIMENTS[c], CAMPAIGN_IDS[c]).assign(campaign=c)
                     for c in CAMPAIGN_IDS], ignore_index=True)
    tr = true_roi(root)
    out = est.merge(tr[["campaign", "responders", "revenue_fen", "roi", "expected_roi"]]
                    .rename(columns={"roi": "true_roi", "revenue_fen": "true_revenue_fen"}), on="campaign")
    out["true_incremental_fen"] = out["true_revenue_fen"] / out["n_treated"]
    ratio = audience.roi_ratio(est.iloc[[0]], est.iloc[[1]])
    params = json_params(root)
    with np.errstate(divide="ignore", invalid="ignore"):  # from the columns, not the frame's attrs
        true_ratio = float(np.float64(tr.loc[0, "roi"]) / np.float64(tr.loc[1, "roi"]))
        expected_ratio = float(np.float64(tr.loc[0, "expected_roi"]) / np.float64(tr.loc[1, "expected_roi"]))
    ratio.update({"true_ratio": true_ratio, "expected_ratio": expected_ratio,
                  "target": float(params.get("target", float("nan"))),
                  "tolerance": float(params.get("tolerance", float("nan")))})
    cols = ["campaign", "n_treated", "n_holdout", "incremental_fen", "incremental_lo", "incremental_hi",
            "true_incremental_fen", "spend_fen", "roi", "roi_lo", "roi_hi", "true_roi", "expected_roi", "responders"]
    return out[cols], ratio


def json_params(root: Path) -> dict[str, Any]:
    """The ``retarget`` section of ``truth/params.json`` (empty when absent)."""
    import json

    p = Path(root) / "truth" / "params.json"
    if not p.exists():
        return {}
    return dict(json.loads(p.read_text(encoding="utf-8")).get("retarget") or {})
