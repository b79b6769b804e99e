"""Speed and memory of the journey simulator.

Usage::

    .venv/bin/python benchmarks/bench_simulate.py                 # 10k and 100k persons
    .venv/bin/python benchmarks/bench_simulate.py --persons 10000 100000 1000000 --workers 2

For each size, in a fresh child process (so peak memory is that run's own):
simulate the ``beauty`` preset (no truth) and write the Parquet dataset, then, in
the same process, time numpy drawing the same number of rows as there are
events, with the events table's width (16 columns: 13 int64 + 3 float64). The
numpy time is drawn once before and once after the run (averaged, so the load of a
shared machine hits both alike). The ratio simulate / numpy is the figure of merit (target <= 3 at 1M persons), and
peak RSS must stay <= 3 GB.

Baseline: a straightforward per-person Python loop using Faker per row (names,
phones, cities) and ``random`` for the journey, run on 10k persons and
extrapolated linearly; the ratio to the vectorised simulator is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(persons: int, workers: int, scenario: str) -> dict:
    import numpy as np

    from privdomain.simulate import simulate

    def draw(rows: int) -> float:
        # numpy drawing the same number of rows, in chunks of 1M rows (bounded memory)
        rng = np.random.default_rng(0)
        t = time.perf_counter()
        left = rows
        while left > 0:
            k = min(left, 1_000_000)
            ints = rng.integers(0, 2**40, (13, k))
            floats = rng.random((3, k))
            del ints, floats
            left -= k
        return time.perf_counter() - t

    # the machine is shared: draw before and after the run and average, so load hits both alike
    before = draw(persons * 20)
    out = Path(tempfile.mkdtemp(prefix="bench_sim_"))
    t = time.perf_counter()
    ds = simulate(scenario, persons=persons, seed=1, out=out, truth=False, workers=workers)
    sim = time.perf_counter() - t
    rows = ds.manifest["row_counts"]["events"]
    size = sum(p.stat().st_size for p in (out / "events").glob("*.parquet"))
    shutil.rmtree(out)
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    after = draw(rows)
    numpy_s = (before * rows / (persons * 20) + after) / 2
    return {"persons": persons, "workers": workers, "events": rows, "simulate_s": sim, "numpy_draw_s": numpy_s,
            "ratio": sim / numpy_s, "peak_rss_mb": max(peak_self, peak_kids), "parquet_mb": size / 2**20}


def faker_loop(persons: int) -> float:
    """Seconds for a per-person Python loop with Faker per row (the naive baseline)."""
    import pandas as pd
    from faker import Faker

    fake = Faker("zh_CN")
    Faker.seed(0)
    random.seed(0)
    t = time.perf_counter()
    people, events = [], []
    eid = 0
    for pid in range(persons):
        people.append({"person_id": pid, "name": fake.name(), "phone": fake.phone_number(), "city": fake.city_name(),
                       "province": fake.province(), "occupation": fake.job()})
        ts = random.uniform(0, 365)
        for _ in range(random.randint(1, 4)):
            events.append({"event_id": eid, "person_id": pid, "ts": ts, "touchpoint": "moments_ad_view",
                           "id_value": fake.uuid4()})
            eid += 1
            if random.random() < 0.3:
                ts += random.expovariate(1.0)
                events.append({"event_id": eid, "person_id": pid, "ts": ts, "touchpoint": "moments_ad_click",
                               "id_value": fake.uuid4()})
                eid += 1
        for _ in range(random.randint(5, 25)):
            ts += random.expovariate(1 / 10)
            events.append({"event_id": eid, "person_id": pid, "ts": ts,
                           "touchpoint": random.choice(["oa_push", "mp_visit", "group_message", "wecom_chat"]),
                           "id_value": fake.uuid4()})
            eid += 1
            if random.random() < 0.05:
                events.append({"event_id": eid, "person_id": pid, "ts": ts + 0.01, "touchpoint": "pay",
                               "id_value": fake.uuid4(), "amount_fen": random.randint(1000, 50000)})
                eid += 1
    out = Path(tempfile.mkdtemp(prefix="bench_loop_"))
    pd.DataFrame(events).to_parquet(out / "events.parquet")
    pd.DataFrame(people).to_parquet(out / "persons.parquet")
    shutil.rmtree(out)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--scenario", default="beauty")
    ap.add_argument("--baseline-persons", type=int, default=10_000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(_child(a.persons[0], a.workers, a.scenario)))
        return
    results = []
    for n in a.persons:
        cmd = [sys.executable, __file__, "--child", "--persons", str(n), "--workers", str(a.workers),
               "--scenario", a.scenario]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True,
                                        env={**os.environ, "PYTHONHASHSEED": "0"}).stdout.strip().splitlines()[-1])
        results.append(res)
        print(f"{n:>9,} persons  {res['events']:>11,} events  simulate+write {res['simulate_s']:7.2f} s  "
              f"numpy draw {res['numpy_draw_s']:6.2f} s  ratio {res['ratio']:5.2f}  "
              f"peak RSS {res['peak_rss_mb']:7.0f} MB  parquet {res['parquet_mb']:6.1f} MB  "
              f"(workers={a.workers})", flush=True)
    base = faker_loop(a.baseline_persons)
    print(f"per-person Python loop with Faker: {a.baseline_persons:,} persons in {base:.2f} s")
    for res in results:
        extrap = base * res["persons"] / a.baseline_persons
        print(f"  extrapolated to {res['persons']:,} persons: {extrap:8.1f} s  -> vectorised simulator is "
              f"{extrap / res['simulate_s']:6.1f} x faster")


if __name__ == "__main__":
    main()
