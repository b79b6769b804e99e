"""Attribution benchmark: exact Markov and Shapley on 1M customers' paths, against the peers.

Usage::

    .venv/bin/python benchmarks/bench_attribution.py [--customers 1000000] [--channels 8]
        [--events 20000000] [--no-peers] [--no-events] [--simulated] [--quick] [--score]

What it does, all in one run:

1. Generates a synthetic path table for ``--customers`` customers over ``--channels``
   channels with numpy (seeded): a first-order Markov walk over channels, path
   length 1 + Geometric(0.3) capped at 15, conversion from a logistic model of the
   channels touched, conversion value log-normal. It is written to
   ``benchmarks/out/paths.parquet`` (and CSV) so every tool reads the same table.
2. Times privdomain's exact Markov removal effects (order 1), exact Shapley, and
   the six rule-based models from the path table, each in a fresh subprocess
   (best of ``--repeat``; peak RSS of that process). Exactness is checked against
   an independent power iteration of the chain (``privdomain.testing.reference``).
3. Installs the peers into ``benchmarks/.peers/venv`` (never a project dependency):
   ``channelattribution`` (Markov by simulation, default settings) and
   ``marketing-attribution-models`` (MAM; grouped-journey input), runs them in
   subprocesses on the same table, and prints time, peak memory, the ratio to ours
   and how far their channel shares are from the exact ones (percentage points).
   If an install fails the reason is printed and the comparison skipped.
4. Generates ``--events`` raw events (numpy, ``--events/8`` persons; or the
   simulator with ``--simulated``, sportswear preset) and times path building (Ibis on
   DuckDB) plus exact Markov, and the windowed ad attribution, from those events
   (wall and CPU seconds).

``--score`` instead simulates every preset (``--score-persons``, ``--score-seeds``) and
prints each model's mean absolute error against the simulator's true incremental and
Shapley shares, ``calibrated`` (Markov calibrated with the presets' lift tests) included,
and how often the lift intervals cover the true effect.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PEERS = HERE / ".peers"
PEER_VENV = PEERS / "venv"
PEER_PACKAGES = ["channelattribution", "marketing-attribution-models", "matplotlib", "pyarrow"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------- data
def make_paths(customers: int, channels: int, seed: int = 1, max_len: int = 15) -> pd.DataFrame:
    """Synthetic path table (numpy): see the module doc."""
    rng = np.random.default_rng(seed)
    names = np.array([f"ch{i:02d}" for i in range(channels)], dtype=object)
    init = rng.dirichlet(np.ones(channels))
    trans = rng.dirichlet(np.ones(channels) * 0.7, size=channels)
    effect = rng.normal(0.0, 0.6, channels)
    length = np.minimum(1 + rng.geometric(0.3, customers) - 1, max_len)
    codes = np.full((customers, max_len), -1, dtype=np.int64)
    codes[:, 0] = rng.choice(channels, size=customers, p=init)
    cum = np.cumsum(trans, axis=1)
    for k in range(1, max_len):
        alive = length > k
        u = rng.random(alive.sum())
        prev = codes[alive, k - 1]
        codes[alive, k] = np.minimum((u[:, None] > cum[prev]).sum(axis=1), channels - 1)
    touched = np.zeros((customers, channels), dtype=bool)
    for k in range(max_len):
        ok = codes[:, k] >= 0
        touched[np.flatnonzero(ok), codes[ok, k]] = True
    logit = -3.0 + touched @ effect + 0.15 * length
    conv = rng.random(customers) < 1 / (1 + np.exp(-logit))
    value = np.where(conv, np.round(rng.lognormal(5.0, 0.6, customers), 2), 0.0)
    key = np.zeros(customers, dtype=np.int64)
    for k in range(max_len):
        key = key * (channels + 1) + (codes[:, k] + 1)
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    total_conv = np.bincount(inv, weights=conv)
    total_value = np.bincount(inv, weights=value)
    total_null = np.bincount(inv, weights=~conv)
    paths = [" > ".join(names[row[row >= 0]]) for row in codes[first]]
    return pd.DataFrame({"path": paths, "total_conversions": total_conv.astype(np.int64),
                         "total_conversion_value": np.round(total_value, 2),
                         "total_null": total_null.astype(np.int64)})


def make_events(n_events: int, channels: int = 8, seed: int = 2, folder: Path | None = None) -> Path:
    """Raw events (numpy), written as a dataset folder of Parquet parts.

    Columns: event_id, ts, person_id, touchpoint, channel, amount_fen (pays),
    campaign_id (ad views/clicks and shares, 40 campaigns), referrer_person_id (3% of rows).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from privdomain import schema

    folder = folder or OUT / f"events_v2_{n_events}"
    part_dir = folder / "events"
    if part_dir.exists() and any(part_dir.glob("*.parquet")):
        return folder
    part_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    touch = [t for t in schema.TOUCHPOINTS if t not in schema.ORDER_TOUCHPOINTS]
    families = list(dict.fromkeys(schema.CHANNEL_OF[t] for t in touch))[:channels]
    touch = [t for t in touch if schema.CHANNEL_OF[t] in families]
    persons = max(n_events // 8, 1)
    block = 2_000_000
    start = pd.Timestamp("2024-01-01", tz="Asia/Shanghai").value // 1000
    event_id = 0
    for part, lo in enumerate(range(0, n_events, block)):
        n = min(block, n_events - lo)
        person = np.sort(rng.integers(0, persons, n))
        ts = start + rng.integers(0, 180 * 86400, n) * 1_000_000
        is_pay = rng.random(n) < 0.04
        tp = np.where(is_pay, "pay", np.array(touch, dtype=object)[rng.integers(0, len(touch), n)])
        chan = np.array([schema.CHANNEL_OF[t] for t in touch] + ["mini_program"], dtype=object)
        chan_of = dict(zip([*touch, "pay"], chan))
        channel = pd.Series(tp).map(chan_of).to_numpy(dtype=object)
        amount = np.where(is_pay, rng.integers(1_000, 90_000, n), 0)
        is_ad = np.isin(tp, schema.AD_VIEWS + schema.AD_CLICKS + ["share"])
        campaign = np.where(is_ad, rng.integers(0, 40, n), -1)
        referrer = np.where(rng.random(n) < 0.03, rng.integers(0, persons, n), -1)
        table = pa.table({
            "event_id": pa.array(np.arange(event_id, event_id + n), pa.int64()),
            "ts": pa.array(ts, pa.timestamp("us", tz="Asia/Shanghai")),
            "person_id": pa.array(person, pa.int64()),
            "touchpoint": pa.array(tp.astype(str)),
            "channel": pa.array(channel.astype(str)),
            "amount_fen": pa.array(amount, pa.int64(), mask=~is_pay),
            "campaign_id": pa.array(campaign, pa.int64(), mask=campaign < 0),
            "referrer_person_id": pa.array(referrer, pa.int64(), mask=referrer < 0),
        })
        pq.write_table(table, part_dir / f"part-{part:05d}.parquet")
        event_id += n
    return folder


# --------------------------------------------------------------------------- workers (subprocess)
def _timed(fn, repeat: int):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def worker(name: str, table: str, repeat: int) -> dict:
    """Run one tool on the path table and return seconds, peak RSS and channel shares."""
    pt = pd.read_parquet(table)
    base = peak_rss_mb()
    if name.startswith("ours"):
        from privdomain import attribution

        if name == "ours-markov":
            sec, r = _timed(lambda: attribution.markov(pt), repeat)
        elif name == "ours-markov-2":
            sec, r = _timed(lambda: attribution.markov(pt, order=2), repeat)
        elif name == "ours-shapley":
            sec, r = _timed(lambda: attribution.shapley(pt), repeat)
        elif name == "ours-rules":
            sec, r = _timed(lambda: attribution.rule_based(pt), repeat)
            r = r[r.model == "linear"]
        elif name == "ours-parse":
            sec, _ = _timed(lambda: attribution.parse(pt), repeat)
            return {"seconds": sec, "peak_mb": peak_rss_mb(), "base_mb": base}
        else:
            raise SystemExit(f"unknown worker {name}")
        shares = dict(zip(r["channel"], r["share"]))
        extra = {"removal_effect": dict(zip(r["channel"], r["removal_effect"]))} if "removal_effect" in r else {}
        return {"seconds": sec, "peak_mb": peak_rss_mb(), "base_mb": base, "shares": shares, **extra}
    if name == "ca-markov":
        import contextlib
        import io

        import ChannelAttribution as ca

        data = pt.rename(columns={"total_conversions": "conv", "total_conversion_value": "value",
                                  "total_null": "null"})

        def run():
            with contextlib.redirect_stdout(io.StringIO()):
                return ca.markov_model(data, "path", "conv", var_value="value", var_null="null", order=1,
                                       sep=">", verbose=False, flg_pro=False, out_more=True)

        sec, r = _timed(run, repeat)
        res = r["result"] if isinstance(r, dict) else r[0]
        res = res.assign(channel_name=res["channel_name"].astype(str).str.strip())
        tot = res["total_conversions"].sum()
        shares = dict(zip(res["channel_name"], res["total_conversions"] / tot))
        return {"seconds": sec, "peak_mb": peak_rss_mb(), "base_mb": base, "shares": shares}
    if name in ("mam-markov", "mam-shapley"):
        import mam

        conv = pt[pt.total_conversions > 0].assign(has_conv=True, occ=lambda d: d.total_conversions,
                                                   val=lambda d: d.total_conversion_value)
        null = pt[pt.total_null > 0].assign(has_conv=False, occ=lambda d: d.total_null, val=0.0)
        grouped = pd.concat([conv, null], ignore_index=True)[["path", "has_conv", "occ", "val"]]

        def run():
            m = mam.MAM(grouped, format_type="grouped_journey", channels_colname="path",
                        journey_with_conv_colname="has_conv", occurrences_colname="occ", path_separator=" > ")
            res = m.run_markov() if name == "mam-markov" else m.run_shapley()
            return m, res

        sec, (m, res) = _timed(run, repeat)
        out = {"seconds": sec, "peak_mb": peak_rss_mb(), "base_mb": base}
        if name == "mam-markov":
            re = res.metadata["removal_effect"]["removal_effect"]
            out["shares"] = {str(k): float(v / re.sum()) for k, v in re.items()}
        else:
            agg = res.to_pandas()
            out["shares"] = dict(zip(agg.iloc[:, 0].astype(str), agg.iloc[:, 1] / agg.iloc[:, 1].sum()))
        return out
    raise SystemExit(f"unknown worker {name}")


def run_worker(python: str, name: str, table: Path, repeat: int, timeout: float = 900) -> dict | None:
    cmd = [python, str(Path(__file__).resolve()), "--worker", name, "--table", str(table), "--repeat", str(repeat)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {name}: timed out after {timeout:.0f} s")
        return None
    if p.returncode != 0:
        print(f"  {name}: failed ({p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode})")
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def ensure_peers() -> str | None:
    py = PEER_VENV / "bin" / "python"
    if not py.exists():
        print("installing peers into", PEER_VENV)
        r = subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], capture_output=True, text=True)
        if r.returncode != 0:
            print("  could not create the peers venv:", r.stderr.strip()[-300:])
            return None
    check = subprocess.run([str(py), "-c", "import ChannelAttribution, mam"], capture_output=True, text=True)
    if check.returncode != 0:
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", *PEER_PACKAGES], capture_output=True, text=True)
        if r.returncode != 0:
            print("  peer install failed; continuing with our figures only:", r.stderr.strip()[-500:])
            return None
    return str(py)


def pp_gap(a: dict, b: dict) -> float:
    keys = set(a) | set(b)
    return 100 * max(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in keys)


def versions(py: str) -> str:
    code = ("from importlib.metadata import version as v;"
            "print('channelattribution', v('channelattribution'), '/ marketing-attribution-models',"
            " v('marketing-attribution-models'))")
    r = subprocess.run([py, "-c", code], capture_output=True, text=True)
    return r.stdout.strip()


def score_all(persons: int, seeds: Sequence[int] = (1,), scenarios: Sequence[str] | None = None) -> None:
    """Simulate each scenario and print every model's MAE (pp) against the true shares.

    ``calibrated`` is the Markov credit calibrated with the scenario's lift tests
    (:func:`privdomain.attribution.calibrated`); each lift estimate's interval is
    checked against the simulator's true effect (coverage over scenarios, tests,
    metrics and seeds).
    """
    from privdomain import attribution
    from privdomain.attribution.scoring import channel_gaps
    from privdomain.simulate import list_scenarios, simulate

    pd.set_option("display.width", 200)
    frames, gaps, lifts = [], [], []
    for seed in seeds:
        for sc in scenarios or list_scenarios():
            t0 = time.perf_counter()
            ds = simulate(scenario=sc, persons=persons, seed=seed, out=OUT / f"score_{sc}", truth=True)
            res = attribution.attribute(ds, models=[*attribution.MODELS, "markov_2", "shapley_rate"])
            lf = attribution.lifts(ds)
            cal = attribution.calibrated(ds, base="markov", lifts=lf, attribution=res[res.model == "markov_1"])
            attrs = dict(res.attrs)
            res = pd.concat([res, cal[res.columns.drop("removal_effect")]], ignore_index=True)
            res.attrs = attrs
            label = sc if len(seeds) == 1 else f"{sc}/{seed}"
            frames.append(attribution.score(res, ds, scenario=label))
            g = channel_gaps(res, ds, metrics=["conversions"])
            gaps.append(g.assign(scenario=label))
            lifts.append(attribution.score_lift(lf, ds).assign(scenario=label))
            print(f"{label}: {persons:,} persons, {int(res.attrs.get('purchases', 0)):,} purchases, "
                  f"{lf['channel'].nunique()} lift tests ({time.perf_counter() - t0:.0f} s)")
    s = pd.concat(frames, ignore_index=True)
    conv = s[s.metric == "conversions"]
    for truth in ("incremental", "shapley"):
        wide = conv[conv.truth == truth].pivot(index="model", columns="scenario", values="mae_pp")
        wide["mean"] = wide.mean(axis=1)
        print(f"\nMAE (pp) of conversion shares vs the true {truth} shares")
        print(wide.sort_values("mean").round(1).to_string())
    g = pd.concat(gaps, ignore_index=True)
    g = g[(g.truth == "incremental") & g.model.isin(["markov_1", "shapley", "last_touch", "calibrated"])]
    worst = g.loc[g.groupby(["scenario", "model"])["gap_pp"].apply(lambda x: x.abs().idxmax())]
    print("\nlargest channel gap (model share - true incremental share, pp)")
    print(worst[["scenario", "model", "channel", "model_share", "true_share", "gap_pp"]].round(3).to_string(index=False))
    lf = pd.concat(lifts, ignore_index=True)
    print(f"\nlift intervals (95%): {int(lf['covered'].sum())} of {len(lf)} cover the true effect "
          f"({100 * lf['covered'].mean():.1f}%)")
    print(lf.groupby("metric")["covered"].agg(["sum", "count", "mean"]).to_string())
    s.to_csv(OUT / "attribution_scores.csv", index=False)
    lf.to_csv(OUT / "lift_coverage.csv", index=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smoke run: 100k customers, 1M events, one repeat")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-events", action="store_true")
    ap.add_argument("--simulated", action="store_true", help="use privdomain.simulate for the raw events")
    ap.add_argument("--score", action="store_true",
                    help="only: simulate every scenario and score each model against the truth")
    ap.add_argument("--score-persons", type=int, default=20_000)
    ap.add_argument("--score-seeds", type=int, nargs="+", default=[1], help="seeds to score (replications)")
    ap.add_argument("--score-scenarios", nargs="+", default=None, help="presets to score (default: all)")
    ap.add_argument("--worker")
    ap.add_argument("--table")
    args = ap.parse_args()
    if args.quick:
        args.customers, args.events, args.repeat = min(args.customers, 100_000), min(args.events, 1_000_000), 1
    if args.worker:
        print(json.dumps(worker(args.worker, args.table, args.repeat)))
        return

    OUT.mkdir(parents=True, exist_ok=True)
    if args.score:
        score_all(args.score_persons, args.score_seeds, args.score_scenarios)
        return
    t0 = time.perf_counter()
    pt = make_paths(args.customers, args.channels)
    table = OUT / f"paths_{args.customers}_{args.channels}.parquet"
    pt.to_parquet(table, index=False)
    pt.to_csv(table.with_suffix(".csv"), index=False)
    print(f"path table: {args.customers:,} customers, {args.channels} channels, {len(pt):,} distinct paths, "
          f"{int(pt.total_conversions.sum()):,} conversions ({time.perf_counter() - t0:.1f} s to generate)")

    from privdomain.testing import reference

    t0 = time.perf_counter()
    exact = reference.markov_removal_effects(pt, order=1, tol=1e-16)
    re = exact["removal"]
    exact_shares = {k: v / sum(re.values()) for k, v in re.items()}
    print(f"independent exact Markov (power iteration, reference.py): {time.perf_counter() - t0:.1f} s")

    rows = []
    ours = {}
    for name in ("ours-parse", "ours-markov", "ours-markov-2", "ours-shapley", "ours-rules"):
        r = run_worker(sys.executable, name, table, args.repeat)
        if r:
            ours[name] = r
            gap = f"{pp_gap(r['shares'], exact_shares):.2e} pp" if name == "ours-markov" else ""
            rows.append((name, r["seconds"], r["peak_mb"], r["base_mb"], gap))
    py = None if args.no_peers else ensure_peers()
    peers = {}
    if py:
        print("peers:", versions(py))
        for name, rep in (("ca-markov", args.repeat), ("mam-markov", 1), ("mam-shapley", 1)):
            r = run_worker(py, name, table, rep)
            if r:
                peers[name] = r
                gap = f"{pp_gap(r['shares'], exact_shares):.3f} pp" if "markov" in name else ""
                rows.append((name, r["seconds"], r["peak_mb"], r["base_mb"], gap))
    print(f"\n{'tool':<16}{'seconds':>10}{'peak MB':>10}{'base MB':>10}  max |share - exact Markov share|")
    for name, sec, peak, base, gap in rows:
        print(f"{name:<16}{sec:>10.3f}{peak:>10.0f}{base:>10.0f}  {gap}")
    if "ours-markov" in ours:
        om = ours["ours-markov"]["seconds"]
        for peer in ("ca-markov", "mam-markov"):
            if peer in peers:
                print(f"ratio ours-markov / {peer}: {om / peers[peer]['seconds']:.3f}x (target for ca: <= 0.3x)")
        if "ours-shapley" in ours:
            print(f"ours-shapley on {args.channels} channels: {ours['ours-shapley']['seconds']:.3f} s (target <= 2 s)")
        if "mam-shapley" in peers and "ours-shapley" in ours:
            gap = pp_gap(peers["mam-shapley"]["shares"], ours["ours-shapley"]["shares"])
            print(f"mam-shapley (max_size=4, conv_rate) vs our exact Shapley: max gap {gap:.2f} pp")

    for wide in sorted({args.channels, 12, 15}):
        if wide == args.channels:
            continue
        wpt = make_paths(args.customers, wide, seed=3)
        wtable = OUT / f"paths_{args.customers}_{wide}.parquet"
        wpt.to_parquet(wtable, index=False)
        r = run_worker(sys.executable, "ours-shapley", wtable, args.repeat)
        if r:
            print(f"ours-shapley on {wide} channels ({len(wpt):,} distinct paths): {r['seconds']:.3f} s, "
                  f"peak RSS {r['peak_mb']:.0f} MB")

    if not args.no_events:
        print(f"\nraw events: {args.events:,}")
        t0 = time.perf_counter()
        if args.simulated:
            from privdomain.simulate import simulate

            folder = OUT / "simulated"
            # the sportswear preset makes about 8.4 events per person
            simulate(scenario="sportswear", persons=max(args.events * 10 // 84, 1), seed=1, out=folder, truth=False)
        else:
            folder = make_events(args.events)
        print(f"  generated/loaded in {time.perf_counter() - t0:.1f} s: {folder}")
        campaigns = str(folder) if (Path(folder) / "campaigns.parquet").exists() else None
        code = (
            "import time, json, resource, os\n"
            "from privdomain import attribution\n"
            "t0 = time.perf_counter()\n"
            "c0 = sum(os.times()[:2])\n"
            f"pt = attribution.build_paths({str(folder)!r}, window='30D')\n"
            "t1 = time.perf_counter()\n"
            "c1 = sum(os.times()[:2])\n"
            "r = attribution.markov(pt)\n"
            "t2 = time.perf_counter()\n"
            "c2 = sum(os.times()[:2])\n"
            f"ad = attribution.ad_attribution({str(folder)!r}, campaigns={campaigns!r})\n"
            "t3 = time.perf_counter()\n"
            "c3 = sum(os.times()[:2])\n"
            "print(json.dumps({'paths': len(pt), 'build': t1 - t0, 'markov': t2 - t1, 'ad': t3 - t2,"
            " 'ad_orders': int(ad[ad.window == 90]['orders'].sum()), 'build_cpu': c1 - c0, 'ad_cpu': c3 - c2,"
            " 'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
        )
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if p.returncode:
            print("  failed:", p.stderr.strip()[-500:])
        else:
            r = json.loads(p.stdout.strip().splitlines()[-1])
            print(f"  build_paths (Ibis/DuckDB): {r['build']:.2f} s ({r['build_cpu']:.1f} CPU-s) -> "
                  f"{r['paths']:,} distinct paths; "
                  f"exact Markov: {r['markov']:.3f} s; total {r['build'] + r['markov']:.2f} s; "
                  f"peak RSS {r['peak_mb']:.0f} MB")
            print(f"  ad_attribution (5 windows, clicks, fission depth 3): {r['ad']:.2f} s ({r['ad_cpu']:.1f} CPU-s); "
                  f"{r['ad_orders']:,} purchases credited at 90 days")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
