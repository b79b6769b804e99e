"""Benchmark: every metric at 10M persons on one machine (wall time, CPU time, peak memory).

Simulates ``--persons`` persons (default 10,000,000, the ``beauty`` preset, no truth) and
runs every step of the scale issue on the dataset, each **in its own child process**,
so the peak resident memory (``ru_maxrss``) of a step is its own:

funnel (4 steps, 7-day window), the Official Account board (article rates), the
touchpoint map, the channel cube, the live board, path building plus every attribution
model, windowed ad attribution (multi-level ROI), the acquiring channels (``acquisition``,
calibration's rule for untested channels), the daily lifecycle board, cohorts,
repurchase, the RFM summary, identity unification and the audience tags.

For the three heaviest steps a hand-written DuckDB SQL query runs in the same run, after
every step, as the baseline (its own child process, the same DuckDB settings): the funnel (the query of
``bench_funnel.py``), the RFM summary and path building (the straightforward query: the
journey windows over all events and an ordered ``string_agg``, which is what privdomain
did before it was restructured). Each baseline's result is compared with the step's.

The simulator is timed at ``--small`` persons (default 1M) and at ``--persons`` in the same
run (linear scaling means the large run takes at most ``persons / small * 1.1`` times the
small one; its peak must stay under 3 GB).

Every child runs under ``PRIVDOMAIN_MEMORY_LIMIT`` (``--memory-limit``, default 8GB; the
SQL baselines get the same DuckDB ``memory_limit``). A step that fails is recorded with
its error, and the run goes on. CPU time is user + system time of the child (all its
threads); on a shared machine it is the steadier figure, wall time the noisier one.

Usage::

    nice python benchmarks/bench_scale.py --persons 10000000 --out /tmp/bench_data/beauty_10m \\
        --json /tmp/bench_scale.json
    python benchmarks/bench_scale.py --persons 20000 --small 5000 --out /tmp/scale_smoke   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FUNNEL_STEPS = ["oa_push", "oa_article_open", "mp_click", "pay"]
WINDOW_DAYS = 7


# ------------------------------------------------------------------ the steps (child side)
def _steps(path: str) -> dict:
    """name -> a function of no argument returning a small dict that summarises its result."""
    import pandas as pd

    from privdomain import (
        attribution,
        channel_cube,
        cohorts,
        funnel,
        identity,
        io,
        lifecycle,
        live,
        officialaccount,
        repurchase,
        rfm,
        touchpoints,
    )

    meta = io.read_manifest(path)
    start, end = meta["start"], meta["end"]

    def f_funnel():
        out = funnel.funnel(path, FUNNEL_STEPS, window=f"{WINDOW_DAYS}D")
        return {"rows": len(out), "persons": [int(x) for x in out["persons"]]}

    def f_paths():
        res = attribution.attribute(path)  # builds the paths once, then every model
        return {"rows": len(res), "paths": int(res.attrs["rows"]), "conversions": int(res.attrs["purchases"]),
                "partitions": res.attrs.get("partitions")}

    def f_roi():
        out = attribution.multi_level_roi(path)
        return {"rows": len(out)}

    def f_identity():
        # the distinct ids the surfaces saw, in the engine by id-hash partition; then the components in scipy
        ids = identity.observed_ids(path)
        links = pd.read_parquet(Path(path) / "id_links.parquet", dtype_backend="pyarrow")
        out = identity.unify(ids, links)
        return {"rows": len(out), "ids": len(ids), "links": len(links), "unified": int(out["unified_id"].max()) + 1}

    def f_tags():
        # at 10M persons the tags go to a file chunk by chunk (``tags(out=...)``): the frame of
        # every person's tags alone is several GB in pandas (``tags`` peaked at 9.65 GiB)
        import tempfile

        import pyarrow.parquet as pq

        from privdomain import audience

        with tempfile.TemporaryDirectory(dir=Path(path).parent) as tmp:
            out = audience.tags(path, as_of=end, out=Path(tmp) / "tags.parquet")
            return {"rows": pq.ParquetFile(out).metadata.num_rows}

    def f_report():
        # the report notebooks that apply to the dataset (``privdomain report --data``), one
        # at a time; each notebook runs in its own kernel process, so the peak that matters is
        # that of the largest process, sampled here every half second (ru_maxrss of this
        # process does not see the kernels)
        import tempfile
        import threading

        import psutil

        from privdomain.reports import runner

        peaks: dict[int, float] = {}
        stop = threading.Event()

        def sample() -> None:
            me = psutil.Process()
            while not stop.wait(0.5):
                for p in me.children(recursive=True):
                    try:
                        rss = p.memory_info().rss / 1024**3
                        if "ipykernel" not in " ".join(p.cmdline()):
                            continue
                    except psutil.Error:
                        continue
                    peaks[p.pid] = max(peaks.get(p.pid, 0.0), rss)  # one kernel per notebook, in run order

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        with tempfile.TemporaryDirectory(dir=Path(path).parent) as tmp:
            results, skipped = runner.build_data_reports(path, Path(tmp) / "reports", jobs=1, progress=False,
                                                         timeout=4 * 3600, handle_signals=False)
        stop.set()
        th.join()
        kernels = list(peaks.values())
        return {"reports": {r.name: {"ok": r.ok, "seconds": round(r.seconds, 1), "error": (r.error or "")[:200],
                                     "peak_gb": round(kernels[i], 2) if i < len(kernels) else None}
                            for i, r in enumerate(results)},
                "skipped": sorted(skipped), "largest_process_gb": round(max(peaks.values(), default=0.0), 2)}

    def f_rfm():
        out = rfm.rfm_summary(path)
        return {"rows": len(out), "frequency": int(out["frequency"].sum())}

    return {
        "funnel": f_funnel,
        "oa_board": lambda: {"rows": len(officialaccount.article_rates(path))},
        "touchpoint_map": lambda: {"rows": len(touchpoints.touchpoint_flows(path))},
        "channel_cube": lambda: {"rows": len(channel_cube.channel_cube(path))},
        "live_board": lambda: {"rows": len(live.live_board(path))},
        "paths_attribute": f_paths,
        "multi_level_roi": f_roi,
        "acquisition": lambda: {"rows": len(attribution.acquisition(path))},
        "lifecycle_board": lambda: {"rows": len(lifecycle.lifecycle_board(path, start, end, freq="D"))},
        "cohorts": lambda: {"rows": len(cohorts.cohort_table(path))},
        "repurchase": lambda: {"rows": len(repurchase.repurchase_rate(path))},
        "rfm": f_rfm,
        "identity_unify": f_identity,
        "audience_tags": f_tags,
        "report_data": f_report,
    }


STEP_NAMES = ["funnel", "oa_board", "touchpoint_map", "channel_cube", "live_board", "paths_attribute",
              "multi_level_roi", "acquisition", "lifecycle_board", "cohorts", "repurchase", "rfm", "identity_unify",
              "audience_tags", "report_data"]


def sql_rfm(files: str) -> str:
    """RFM by hand: Beijing purchase days per person, frequency = days - 1."""
    return f"""
WITH p AS (SELECT person_id, (epoch_us(ts) + 8 * 3600 * 1000000::BIGINT) // (86400 * 1000000::BIGINT) AS d,
                  coalesce(amount_fen, 0) AS fen
           FROM read_parquet('{files}') WHERE touchpoint = 'pay'),
days AS (SELECT person_id, d, sum(fen) AS fen FROM p GROUP BY ALL),
per AS (SELECT person_id, count(*) - 1 AS frequency, min(d) AS d0, max(d) AS dx,
               (sum(fen) - arg_min(fen, d)) / greatest(count(*) - 1, 1) / 100.0 AS monetary
        FROM days GROUP BY person_id)
SELECT count(*) AS rows, sum(frequency) AS frequency FROM per
"""


def sql_paths(files: str, window_days: int = 30) -> str:
    """Path building by hand, the straightforward way: journey windows over all events, ordered string_agg."""
    w = window_days * 86400
    return f"""
WITH b AS (
  SELECT * FROM (
    SELECT person_id, ts, event_id, (touchpoint = 'pay')::BIGINT AS is_pay,
           coalesce(amount_fen, 0)::BIGINT AS amount_fen,
           CASE WHEN referrer_person_id IS NOT NULL AND touchpoint <> 'pay' THEN 'fission'
                ELSE channel::VARCHAR END AS ch
    FROM read_parquet('{files}')
    WHERE touchpoint NOT IN ('order', 'refund', 'share', 'product_view', 'add_to_cart'))
  WHERE is_pay = 1 OR ch <> 'mini_program'),
s AS (SELECT *, lag(ts) OVER w AS pts, lag(is_pay) OVER w AS ppay FROM b
      WINDOW w AS (PARTITION BY person_id ORDER BY ts, is_pay, event_id)),
j AS (SELECT *, sum((pts IS NULL OR ppay = 1 OR epoch(ts) - epoch(pts) > {w})::BIGINT)
                  OVER (PARTITION BY person_id ORDER BY ts, is_pay, event_id ROWS UNBOUNDED PRECEDING) AS journey
      FROM s),
e AS (SELECT *, max(ts) OVER (PARTITION BY person_id, journey) AS conv_ts FROM j),
per AS (SELECT person_id, journey, max(is_pay) AS converted, sum(amount_fen * is_pay) AS value_fen,
               string_agg(CASE WHEN is_pay = 0 AND epoch(conv_ts) - epoch(ts) <= {w} THEN ch END, ' > '
                          ORDER BY ts, is_pay, event_id) AS path
        FROM e GROUP BY person_id, journey),
pt AS (SELECT coalesce(path, 'direct') AS path, sum(converted) AS total_conversions,
              sum(1 - converted) AS total_null FROM per GROUP BY 1)
SELECT count(*) AS paths, sum(total_conversions) AS conversions, sum(total_null) AS null FROM pt
"""


def _baseline(name: str, path: str, limit: str | None) -> dict:
    import duckdb

    from privdomain import backend

    settings = backend.default_settings()
    if limit:
        settings["memory_limit"] = limit
    con = duckdb.connect(config=settings)
    con.execute("SET enable_progress_bar = false")
    files = str(Path(path) / "events" / "*.parquet")
    if name == "funnel":
        sys.path.insert(0, str(HERE))
        from bench_funnel import hand_sql

        r = con.sql(hand_sql(Path(path), FUNNEL_STEPS)).fetchone()
        return {"persons": [int(x) for x in r[:4]]}
    if name == "rfm":
        r = con.sql(sql_rfm(files)).fetchone()
        return {"rows": int(r[0]), "frequency": int(r[1])}
    if name == "paths_attribute":
        r = con.sql(sql_paths(files)).fetchone()
        return {"paths": int(r[0]), "conversions": int(r[1]), "null": int(r[2])}
    raise SystemExit(f"no baseline for {name}")


def child(kind: str, name: str, path: str, limit: str | None, persons: int | None) -> None:
    if limit:
        os.environ["PRIVDOMAIN_MEMORY_LIMIT"] = limit
    steps = _steps(path) if kind == "step" else None  # imports are not timed
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the report step's notebook kernels
    if kind == "simulate":
        from privdomain.simulate import simulate

        ds = simulate("beauty", persons=persons, seed=3, out=path, truth=False)
        summary = {"events": int(ds.manifest["row_counts"]["events"])}
    elif kind == "sql":
        summary = _baseline(name, path, limit)
    else:
        summary = steps[name]()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    cpu += (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_gb": r1.ru_maxrss / 1024**2, "result": summary}))


# ------------------------------------------------------------------ the parent
def run(kind: str, name: str, path: Path, limit: str | None, persons: int | None = None,
        timeout: float = 4 * 3600) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--step", name, "--data", str(path)]
    if limit:
        cmd += ["--memory-limit", limit]
    if persons:
        cmd += ["--persons", str(persons)]
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"step": name, "kind": kind, "ok": False, "error": f"timed out after {timeout:.0f} s",
                "wall_s": time.perf_counter() - t0}
    if res.returncode:
        lines = [x for x in res.stderr.strip().splitlines() if x.strip()]
        err = next((x for x in reversed(lines) if "Error" in x or "Exception" in x), lines[-1] if lines else "?")
        return {"step": name, "kind": kind, "ok": False, "error": err[:300], "wall_s": time.perf_counter() - t0}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    return {"step": name, "kind": kind, "ok": True, **out}


def show(r: dict) -> str:
    label = f"{r['step']}{' (SQL)' if r['kind'] == 'sql' else ''}"
    if not r["ok"]:
        return f"  {label:<24} FAILED after {r['wall_s']:7.1f} s: {r['error']}"
    return (f"  {label:<24} wall {r['wall_s']:8.1f} s  cpu {r['cpu_s']:8.1f} s  peak {r['peak_gb']:5.2f} GB  "
            f"{json.dumps(r['result'])[:120]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=10_000_000)
    ap.add_argument("--small", type=int, default=1_000_000, help="the smaller simulation timed for linearity")
    ap.add_argument("--out", default=None, help="dataset folder (default /tmp/bench_data/beauty_<persons>)")
    ap.add_argument("--memory-limit", default="8GB", help="DuckDB memory_limit of every step (default 8GB)")
    ap.add_argument("--steps", default=",".join(STEP_NAMES))
    ap.add_argument("--baselines", default="funnel,rfm,paths_attribute")
    ap.add_argument("--reuse", action="store_true", help="reuse the dataset at --out if it is there (no simulation)")
    ap.add_argument("--json", default=None, help="write every result to this file")
    ap.add_argument("--child", choices=["step", "sql", "simulate"])
    ap.add_argument("--step")
    ap.add_argument("--data")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.step, args.data, args.memory_limit, args.persons)
        return 0
    out = Path(args.out or f"/tmp/bench_data/beauty_{args.persons}")
    limit = args.memory_limit
    results: list[dict] = []

    def record(r: dict) -> None:
        results.append(r)
        print(show(r), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({"persons": args.persons, "small": args.small,
                                                   "memory_limit": limit, "data": str(out),
                                                   "results": results}, indent=1))

    print(f"bench_scale: {args.persons:,} persons into {out}; DuckDB memory_limit {limit}; "
          f"{os.cpu_count()} cores", flush=True)
    if not (args.reuse and (out / "dataset.json").exists()):
        small = out.parent / f".{out.name}.small"
        record(run("simulate", f"simulate_{args.small}", small, limit, args.small))
        shutil.rmtree(small, ignore_errors=True)
        record(run("simulate", f"simulate_{args.persons}", out, limit, args.persons))
        a, b = results[-2], results[-1]
        if a["ok"] and b["ok"]:
            ratio, size = b["wall_s"] / a["wall_s"], args.persons / args.small
            print(f"  simulator: {ratio:.2f}x the time for {size:.0f}x the persons (cpu {b['cpu_s'] / a['cpu_s']:.2f}x); "
                  f"linear within {1.1 * size:.0f}x: {ratio <= 1.1 * size}; peak under 3 GB: {b['peak_gb'] < 3}",
                  flush=True)
    done = {}
    for name in filter(None, args.steps.split(",")):  # every step first, then the baselines
        done[name] = run("step", name, out, limit)
        record(done[name])
    for name in filter(None, args.baselines.split(",")):
        s = run("sql", name, out, limit)
        record(s)
        r = done.get(name)
        if r and r["ok"] and s["ok"]:
            same = all(r["result"][k] == v for k, v in s["result"].items() if k in r["result"])
            print(f"    privdomain / SQL: wall {r['wall_s'] / s['wall_s']:.2f}x, cpu {r['cpu_s'] / s['cpu_s']:.2f}x, "
                  f"peak {r['peak_gb'] / s['peak_gb']:.2f}x; results agree: {same}", flush=True)
    failed = [r["step"] for r in results if not r["ok"] and r["kind"] != "sql"]
    failed += [f"report_data:{k}" for r in results if r["ok"] and r["step"] == "report_data"
               for k, v in r["result"]["reports"].items() if not v["ok"]]
    over = [r["step"] for r in results if r["ok"] and r["kind"] == "step"
            and max(r["peak_gb"], r["result"].get("largest_process_gb", 0)) > 8]
    print(f"failed: {failed or 'none'}; over 8 GB: {over or 'none'}")
    return 1 if failed or over else 0


if __name__ == "__main__":
    raise SystemExit(main())
