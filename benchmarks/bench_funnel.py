"""Benchmark: a 4-step ordered funnel with a 7-day window on about 20M events.

Compares :func:`privdomain.boards.funnel.funnel` (Ibis expressions run by DuckDB) with a
hand-written DuckDB SQL query of the same funnel (same semantics: every step-1
event starts an attempt, earliest match per step, window from step 1, the first
attempt reaching furthest is reported), timed in the same run. Each variant runs in
its own process so that its peak memory (ru_maxrss) is its own. The script checks
that both give the same persons per step and the same median times to convert.

Data: the ``apparel`` scenario of the simulator (700k persons ~ 20.7M events),
generated once into ``/tmp/bench_data`` and reused.

Both variants run with the same DuckDB settings: the package's defaults
(:func:`privdomain.backend.default_settings`: a spill folder in the system temp folder,
DuckDB's own memory limit), which privdomain applies on its own and the SQL variant
sets explicitly. ``--memory-limit 2GB`` sets one limit for both (through
``PRIVDOMAIN_MEMORY_LIMIT`` for privdomain). Peak memory is the peak resident set size (ru_maxrss) of each process.

Usage: ``python benchmarks/bench_funnel.py [--persons 700000] [--repeat 2] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

FUNNELS = {
    "shop": ["mp_visit", "product_view", "add_to_cart", "pay"],
    "article": ["oa_push", "oa_article_open", "mp_click", "pay"],
}
WINDOW_DAYS = 7


def dataset(persons: int) -> Path:
    path = Path("/tmp/bench_data") / f"apparel_{persons // 1000}k"
    if not (path / "dataset.json").exists():
        from privdomain.simulate import simulate

        print(f"generating {persons:,} persons into {path} (once)...", flush=True)
        simulate(scenario="apparel", persons=persons, seed=1, out=path, truth=False)
    return path


def hand_sql(path: Path, steps: list[str]) -> str:
    """The funnel written by hand for DuckDB: running counts per step, then one join per step."""
    files = path / "events" / "*.parquet"
    inlist = ", ".join(f"'{s}'" for s in steps)
    w_us = WINDOW_DAYS * 86400 * 1_000_000
    flags = ", ".join(f"touchpoint = '{s}' AS m{k}" for k, s in enumerate(steps, 1))
    counts = ", ".join(f"sum(m{k}::BIGINT) OVER w AS c{k}" for k in range(1, 5))
    exprs = []
    for k in (2, 3, 4):
        d = f"(r.u{k} - r.u{k - 1}) / 1e6"
        exprs += [f"quantile_cont({d}, 0.25)", f"median({d})", f"quantile_cont({d}, 0.75)",
                  f"quantile_cont({d}, 0.9)", f"avg({d})"]
    exprs += [f"median((r.u{k} - r.u1) / 1e6)" for k in (1, 2, 3, 4)]
    stats = ",\n       ".join(exprs)
    return f"""
WITH f AS (SELECT person_id, event_id, epoch_us(ts) AS us, {flags}
           FROM read_parquet('{files}') WHERE touchpoint IN ({inlist})),
c AS (SELECT *, {counts} FROM f
      WINDOW w AS (PARTITION BY person_id ORDER BY us, event_id ROWS UNBOUNDED PRECEDING)),
a  AS (SELECT person_id, c1 AS a, us AS u1, c2 FROM c WHERE m1),
s2 AS (SELECT person_id, c2 AS o, us AS u2, c3 FROM c WHERE m2),
s3 AS (SELECT person_id, c3 AS o, us AS u3, c4 FROM c WHERE m3),
s4 AS (SELECT person_id, c4 AS o, us AS u4 FROM c WHERE m4),
j AS (SELECT a.person_id, a.a, a.u1, s2.u2, s3.u3, s4.u4,
             1 + (s2.u2 IS NOT NULL)::INT + (s3.u3 IS NOT NULL)::INT + (s4.u4 IS NOT NULL)::INT AS lvl
      FROM a LEFT JOIN s2 ON s2.person_id = a.person_id AND s2.o = a.c2 + 1 AND s2.u2 <= a.u1 + {w_us}
             LEFT JOIN s3 ON s3.person_id = a.person_id AND s3.o = s2.c3 + 1 AND s3.u3 <= a.u1 + {w_us}
             LEFT JOIN s4 ON s4.person_id = a.person_id AND s4.o = s3.c4 + 1 AND s4.u4 <= a.u1 + {w_us}),
b AS (SELECT person_id, arg_min({{'u1': u1, 'u2': u2, 'u3': u3, 'u4': u4}}, (-lvl, u1, a)) AS r
      FROM j GROUP BY person_id)
SELECT count(*) AS p1, count(r.u2) AS p2, count(r.u3) AS p3, count(r.u4) AS p4,
       {stats}
FROM b
"""


def child(variant: str, name: str, path: Path, repeat: int, memory_limit: str | None) -> None:
    steps = FUNNELS[name]
    if memory_limit:
        os.environ["PRIVDOMAIN_MEMORY_LIMIT"] = memory_limit
    import duckdb  # imports are not timed

    from privdomain import backend
    from privdomain.boards.funnel import funnel

    settings = backend.default_settings()
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        if variant == "privdomain":
            out = funnel(path, steps, window=f"{WINDOW_DAYS}D")  # the package's default connection
            persons = out["persons"].tolist()
            cols = ["p25_seconds", "median_seconds", "p75_seconds", "p90_seconds", "mean_seconds"]
            medians = [float(out.loc[k, c]) for k in (1, 2, 3) for c in cols]
            medians += out["median_seconds_from_start"].astype(float).tolist()
        else:
            con = duckdb.connect(config=settings)
            r = con.sql(hand_sql(path, steps)).fetchone()
            persons, medians = list(r[:4]), [float(x) for x in r[4:]]
        sec = time.perf_counter() - t0
        best = sec if best is None else min(best, sec)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": best, "peak_mb": peak, "persons": persons, "medians": medians}))


def run(variant: str, name: str, path: Path, repeat: int, memory_limit: str | None) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--funnel", name, "--data", str(path), "--repeat", str(repeat)]
    if memory_limit:
        cmd += ["--memory-limit", memory_limit]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"{variant} on funnel {name} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=700_000)
    ap.add_argument("--repeat", type=int, default=2, help="runs per variant (best time reported)")
    ap.add_argument("--quick", action="store_true", help="50k persons, one run: a smoke test")
    ap.add_argument("--funnels", default="shop,article")
    ap.add_argument("--memory-limit", default=None,
                    help="DuckDB memory_limit for both variants (default: the package's, DuckDB's own)")
    ap.add_argument("--child", choices=["privdomain", "duckdb_sql"])
    ap.add_argument("--funnel")
    ap.add_argument("--data")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.funnel, Path(args.data), args.repeat, args.memory_limit)
        return 0
    persons, repeat = (50_000, 1) if args.quick else (args.persons, args.repeat)
    path = dataset(persons)
    import duckdb

    n_events = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}/events/*.parquet')").fetchone()[0]
    from privdomain import backend

    limit = args.memory_limit or backend.default_settings().get("memory_limit", "DuckDB's default (80% of RAM)")
    print(f"data: {path} ({persons:,} persons, {n_events:,} events); window {WINDOW_DAYS} days; best of {repeat}; "
          f"DuckDB memory_limit {limit} for both")
    ok = True
    for name in args.funnels.split(","):
        res = {v: run(v, name, path, repeat, args.memory_limit) for v in ("duckdb_sql", "privdomain")}
        a, b = res["privdomain"], res["duckdb_sql"]
        agree = a["persons"] == b["persons"] and all(
            abs(x - y) <= 1e-6 * max(1.0, abs(y)) for x, y in zip(a["medians"], b["medians"]))
        ok &= agree
        print(f"\nfunnel {name}: {' -> '.join(FUNNELS[name])}")
        print(f"  persons per step: {a['persons']}  median s between steps: {a['medians'][1:15:5]}")
        for v in ("privdomain", "duckdb_sql"):
            r = res[v]
            print(f"  {v:<11} {r['seconds']:7.2f} s   peak {r['peak_mb'] / 1024:5.2f} GB")
        print(f"  ratio privdomain / hand-written SQL = {a['seconds'] / b['seconds']:.2f}   results agree: {agree}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
