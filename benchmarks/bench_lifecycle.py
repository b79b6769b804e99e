"""Benchmark: the daily lifecycle board (persons per stage per day over 365 days).

Target: 1M persons / 20M events over 365 days in <= 10 s and <= 2 GB peak memory.

Usage::

    .venv/bin/python benchmarks/bench_lifecycle.py [--persons 1000000] [--quick] [--no-peer]

Data: a dataset folder generated once to ``--data`` (default /tmp/bench_lifecycle) and
reused. It is made by the package's simulator when available (``--source sim``), else
(``--source numpy``, the default while the simulator cannot reach this size quickly) by a
vectorised numpy generator in this script: each person has a first-touch day, about
``--events-per-person`` events spread uniformly from it to the end of the year, a
per-person purchase propensity (Beta(0.5, 6), so repeat buyers exist) and log-normal
pay amounts. Only the columns the lifecycle needs are written (event_id, ts,
person_id, touchpoint, channel, amount_fen).

Each measurement runs in a fresh Python process, so the peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which includes DuckDB's in-process
memory) is that of the measured call alone. Baselines measured in the same run:

* the same board on the peer size (``--peer-persons``, default 20k persons with 10 events
  each, the density of the issue's 100k users / 1M events: retentioneering was measured at
  11.1 GB there, above this machine's 8 GB allowance for a peer, so it runs smaller);
* retentioneering (peer; installed only into benchmarks/.peers/venv_lifecycle):
  ``Eventstream.to_daily_states()`` on the same persons (see ``_PEER`` below), under an
  8 GB address-space cap; skipped with a printed reason if it cannot be installed;
* a pandas person x day table (the materialising approach the interval method avoids)
  on the same persons, to show why it is avoided.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
START, END = "2024-01-01", "2024-12-30"  # 365 days
DAY0 = 19723  # 2024-01-01 as a day number
PEER_VENV = HERE / ".peers" / "venv_lifecycle"

TOUCH = np.array(["moments_ad_view", "moments_ad_click", "oa_push", "oa_article_open", "mp_visit", "product_view",
                  "add_to_cart", "group_message", "wecom_chat", "sms", "order", "pay"])
TOUCH_P = np.array([0.18, 0.04, 0.16, 0.08, 0.16, 0.12, 0.05, 0.08, 0.04, 0.05, 0.04, 0.0])
CHANNEL = {"moments_ad_view": "moments_ad", "moments_ad_click": "moments_ad", "oa_push": "official_account",
           "oa_article_open": "official_account", "mp_visit": "mini_program", "product_view": "mini_program",
           "add_to_cart": "mini_program", "group_message": "group", "wecom_chat": "guide", "sms": "sms",
           "order": "mini_program", "pay": "mini_program"}


def generate_numpy(out: Path, persons: int, events_per_person: float, seed: int = 1, block: int = 100_000) -> int:
    """Write a synthetic events dataset with bounded memory; returns the number of events."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from privdomain.io import write_manifest

    (out / "events").mkdir(parents=True, exist_ok=True)
    for old in (out / "events").glob("part-*.parquet"):
        old.unlink()
    total = 0
    base = TOUCH_P / TOUCH_P.sum()
    for b, lo in enumerate(range(0, persons, block)):
        rng = np.random.default_rng([seed, b])
        n_p = min(block, persons - lo)
        pid = np.arange(lo, lo + n_p, dtype="int64")
        first = rng.integers(-180, 365, n_p)  # first touch day relative to START
        counts = 1 + rng.poisson(events_per_person - 1, n_p)
        who = np.repeat(np.arange(n_p), counts)
        f = first[who]
        span = np.maximum(365 - f, 1)
        is_first = np.zeros(len(who), bool)
        is_first[np.concatenate([[0], np.cumsum(counts)[:-1]])] = True
        day = np.where(is_first, f, f + (rng.random(len(who)) * span).astype("int64"))
        propensity = rng.beta(0.5, 6.0, n_p)[who]
        tp_idx = rng.choice(len(TOUCH), size=len(who), p=base)
        paid = rng.random(len(who)) < propensity
        tp_idx[paid] = len(TOUCH) - 1
        tp = TOUCH[tp_idx]
        secs = (DAY0 + day) * 86400 + rng.integers(0, 86400, len(who)) - 8 * 3600  # Beijing wall time -> UTC
        amount = np.where(paid, np.round(np.exp(rng.normal(8.5, 0.7, len(who)))).astype("int64"), 0)
        chan = np.vectorize(CHANNEL.get)(tp)
        table = pa.table({
            "event_id": pa.array(np.arange(total, total + len(who), dtype="int64")),
            "ts": pa.array(secs * 1_000_000_000, type=pa.timestamp("ns", tz="Asia/Shanghai")),
            "person_id": pa.array(pid[who]),
            "touchpoint": pa.array(tp),
            "channel": pa.array(chan),
            "amount_fen": pa.array(amount, mask=~paid, type=pa.int64()),
        })
        pq.write_table(table, out / "events" / f"part-{b:05d}.parquet", compression="zstd")
        total += len(who)
    write_manifest(out, {"events": total}, {"scenario": "bench_lifecycle_numpy", "seed": seed, "persons": persons})
    return total


def ensure_data(path: Path, persons: int, epp: float, source: str) -> dict:
    manifest = path / "dataset.json"
    if manifest.exists():
        meta = json.loads(manifest.read_text())
        if meta.get("persons") == persons or meta.get("row_counts", {}).get("persons") == persons:
            return meta
    t = time.perf_counter()
    if source == "sim":
        from privdomain.simulate import simulate

        simulate(scenario="tea", persons=persons, seed=1, out=str(path), truth=False)
        meta = json.loads(manifest.read_text())
        meta["persons"] = persons
    else:
        generate_numpy(path, persons, epp)
        meta = json.loads(manifest.read_text())
    print(f"generated {path} ({source}) in {time.perf_counter() - t:.1f} s: {meta['row_counts']['events']:,} events")
    return meta


_OURS = """
import resource, sys, time, json
t = time.perf_counter()
from privdomain.lifecycle import lifecycle_board
imp = time.perf_counter() - t
t = time.perf_counter()
b = lifecycle_board(sys.argv[1], sys.argv[2], sys.argv[3], freq="D")
el = time.perf_counter() - t
print(json.dumps({"seconds": el, "import_seconds": imp,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": len(b), "population_last": int(b.population.iloc[-1])}))
"""

_FLOWS = """
import resource, sys, time, json
from privdomain.lifecycle import stage_flows
t = time.perf_counter()
f = stage_flows(sys.argv[1], sys.argv[2], sys.argv[3], freq=sys.argv[4])
el = time.perf_counter() - t
print(json.dumps({"seconds": el, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": len(f)}))
"""

_PANDAS = """
import resource, sys, time, json
import numpy as np, pandas as pd
from privdomain.io import read_table
ev = read_table(sys.argv[1], "events", columns=["person_id", "ts", "touchpoint"])
ev = ev[ev.person_id < int(sys.argv[4])]
t = time.perf_counter()
# person x day table: for every person and day, days since the last purchase -> stage (no new/loyal detail)
ev["day"] = (ev.ts.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None).dt.normalize() - pd.Timestamp(sys.argv[2])).dt.days
days = np.arange(0, 365)
first = ev.groupby("person_id").day.min()
grid = pd.MultiIndex.from_product([first.index, days], names=["person_id", "day"]).to_frame(index=False)
grid = grid.merge(first.rename("first").reset_index(), on="person_id")
grid = grid[grid.day >= grid["first"]]
pay = ev[ev.touchpoint == "pay"][["person_id", "day"]].drop_duplicates().assign(last=lambda d: d.day)
grid = grid.sort_values("day")
pay = pay.sort_values("day")
grid = pd.merge_asof(grid, pay, on="day", by="person_id", direction="backward")
rec = grid.day - grid["last"]
stage = np.select([grid["last"].isna(), rec >= 180, rec >= 90], ["prospect", "churned", "dormant"], "active")
board = pd.DataFrame({"day": grid.day, "stage": stage}).value_counts()
el = time.perf_counter() - t
print(json.dumps({"seconds": el, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": int(len(board)), "grid_rows": int(len(grid))}))
"""

# retentioneering (5.x): Eventstream.to_daily_states() expands every user's path to one row per
# calendar day labelled with an engagement state (new, current, reactivated, resurrected,
# at_risk_wau, at_risk_mau, dormant): its lifecycle board is the count of those rows per day.
_PEER = """
import resource, sys, time, json
import pandas as pd
import pyarrow.dataset as ds
tab = ds.dataset(sys.argv[1] + "/events", format="parquet").to_table(
    columns=["person_id", "ts", "touchpoint"], filter=ds.field("person_id") < int(sys.argv[2]))
raw = tab.to_pandas()
raw["ts"] = raw.ts.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
t = time.perf_counter()
from retentioneering.eventstream import Eventstream
stream = Eventstream(raw, schema={"path_cols": ["person_id"], "event_col": "touchpoint", "timestamp_col": "ts"})
df = stream.to_daily_states().to_dataframe()
board = df.groupby([df["ts"].dt.floor("D"), "touchpoint"]).size()
el = time.perf_counter() - t
print(json.dumps({"seconds": el, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": int(len(board)), "state_rows": int(len(df))}))
"""


def _limit_memory() -> None:  # the peer runs under an 8 GB address-space cap
    import resource

    cap = 8 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def run(python: str, code: str, *args: str, timeout: int = 1800, capped: bool = False) -> dict | None:
    env = {**os.environ, "POSTHOG_DISABLED": "1", "DO_NOT_TRACK": "1"}
    p = subprocess.run([python, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT, env=env, preexec_fn=_limit_memory if capped else None)
    if p.returncode:
        lines = [ln for ln in p.stderr.splitlines() if ln.strip() and "PostHog" not in ln]
        errors = [ln for ln in lines if "Error" in ln or "Exception" in ln]
        print(f"  failed: {(errors or lines or [str(p.returncode)])[-1].strip()}")
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


def peer_python() -> str | None:
    py = PEER_VENV / "bin" / "python"
    if not py.exists():
        print(f"installing retentioneering into {PEER_VENV} ...", flush=True)
        r = subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], capture_output=True, text=True)
        if r.returncode:
            print(f"  skipped retentioneering: cannot create venv: {r.stderr.strip()[-200:]}")
            return None
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "retentioneering"], capture_output=True, text=True)
        if r.returncode:
            print(f"  skipped retentioneering: pip install failed: {r.stderr.strip()[-300:]}")
            return None
    r = subprocess.run([str(py), "-c", "import retentioneering"], capture_output=True, text=True)
    if r.returncode:
        print(f"  skipped retentioneering: import failed: {r.stderr.strip().splitlines()[-1]}")
        return None
    return str(py)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--events-per-person", type=float, default=20.0)
    ap.add_argument("--data", default="/tmp/bench_lifecycle")
    ap.add_argument("--source", choices=["numpy", "sim"], default="numpy")
    ap.add_argument("--peer-persons", type=int, default=20_000,
                    help="size of the peer comparison (retentioneering needs ~11 GB at 100k users / 1M events)")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--quick", action="store_true", help="100k persons, no peer")
    a = ap.parse_args()
    if a.quick:
        a.persons, a.no_peer, a.peer_persons = 100_000, True, 5_000
        a.data = a.data.rstrip("/") + "_quick"
    data = Path(a.data)
    meta = ensure_data(data, a.persons, a.events_per_person, a.source)
    n_events = meta["row_counts"]["events"]
    py = sys.executable
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared); data: {a.persons:,} persons, {n_events:,} events, board {START}..{END} daily")

    ours = run(py, _OURS, data, START, END)
    if ours:
        ok = ours["seconds"] <= 10 and ours["peak_mb"] <= 2048
        print(f"privdomain lifecycle_board, {a.persons:,} persons: {ours['seconds']:.2f} s "
              f"(+ {ours['import_seconds']:.1f} s package import), peak {ours['peak_mb']:.0f} MB "
              f"({'meets' if ok else 'MISSES'} <= 10 s and <= 2 GB); load average now {os.getloadavg()[0]:.1f}")

    for freq in ("W", "D"):
        fl = run(py, _FLOWS, data, START, END, freq)
        if fl:
            print(f"privdomain stage_flows ({'weekly' if freq == 'W' else 'daily'}), {a.persons:,} persons: "
                  f"{fl['seconds']:.2f} s, peak {fl['peak_mb']:.0f} MB, {fl['rows']:,} flow rows")

    small = data.parent / (data.name + f"_{a.peer_persons}")
    meta_s = ensure_data(small, a.peer_persons, a.events_per_person / 2, a.source)
    ours_s = run(py, _OURS, small, START, END)
    if ours_s:
        print(f"privdomain lifecycle_board, {a.peer_persons:,} persons / {meta_s['row_counts']['events']:,} events: "
              f"{ours_s['seconds']:.2f} s, peak {ours_s['peak_mb']:.0f} MB")
    pandas_n = a.peer_persons
    pd_res = run(py, _PANDAS, small, START, END, pandas_n)
    if pd_res:
        print(f"pandas person x day table, {pandas_n:,} persons ({pd_res['grid_rows']:,} person-days, fewer stages): "
              f"{pd_res['seconds']:.2f} s, peak {pd_res['peak_mb']:.0f} MB")
    if not a.no_peer:
        ppy = peer_python()
        if ppy:
            peer = run(ppy, _PEER, small, a.peer_persons, capped=True)
            if peer and ours_s:
                print(f"retentioneering daily states, {a.peer_persons:,} users: {peer['seconds']:.2f} s, peak "
                      f"{peer['peak_mb']:.0f} MB; privdomain is {peer['seconds'] / ours_s['seconds']:.1f}x faster, "
                      f"{peer['peak_mb'] / ours_s['peak_mb']:.1f}x less memory")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
