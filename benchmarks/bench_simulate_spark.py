"""Benchmark: the simulator on local Spark against the local run, and the two datasets compared row for row.

Simulates ``--persons`` persons (default 1,000,000, the ``beauty`` preset, seed 3, no
truth) three ways, each in its own child process: locally (``workers=1``), and with
``engine="spark"`` on ``local[1]`` and ``local[2]`` sessions. Prints wall time, CPU
time of the child and peak memory of the driver's Python (and, through psutil when installed, the CPU time and summed peak memory of the
child's descendants while the session is alive: the JVM and Spark's Python workers). Then every table of the Spark datasets is compared with the local one
(``pandas.testing.assert_frame_equal``, exact), file by file.

Usage: ``python benchmarks/bench_simulate_spark.py [--persons 1000000] [--out /tmp/bench_sim_spark]``
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def child(kind: str, persons: int, out: str) -> None:
    import os

    from privdomain.simulate import simulate

    spark = None
    if kind != "local":
        from pyspark.sql import SparkSession

        os.environ["PYSPARK_PYTHON"] = sys.executable
        cores = kind.split("_")[1]
        spark = (SparkSession.builder.master(f"local[{cores}]").appName("bench-simulate")
                 .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                 .config("spark.driver.memory", "2g").getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
    t0 = time.perf_counter()
    ds = simulate("beauty", persons=persons, seed=3, out=out, truth=False,
                  engine="local" if spark is None else "spark", spark=spark)
    wall = time.perf_counter() - t0
    kids_cpu, kids_peak = _tree()
    if spark is not None:
        spark.stop()
    me = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"kind": kind, "wall_s": wall, "cpu_s": me.ru_utime + me.ru_stime,
                      "children_cpu_s": kids_cpu, "peak_gb": me.ru_maxrss / 1024**2,
                      "children_peak_gb": kids_peak,
                      "events": int(ds.manifest["row_counts"]["events"])}))


def _tree() -> tuple[float, float]:
    """CPU seconds and summed peak RSS (GB, VmHWM) of this process's descendants (the JVM, Spark's Python workers)."""
    try:
        import psutil
    except ImportError:
        return float("nan"), float("nan")
    cpu, peak = 0.0, 0.0
    for p in psutil.Process().children(recursive=True):
        try:
            t = p.cpu_times()
            cpu += t.user + t.system
            for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak += int(line.split()[1]) / 1024**2
        except (psutil.Error, OSError):
            pass
    return cpu, peak


def same(a: Path, b: Path) -> tuple[int, int]:
    """(files compared, rows compared); raises when a file differs."""
    import pandas as pd

    fa = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert fa == fb, (set(fa) ^ set(fb))
    rows = 0
    for f in fa:
        if f.endswith(".parquet"):
            x, y = pd.read_parquet(a / f), pd.read_parquet(b / f)
            pd.testing.assert_frame_equal(x, y, check_exact=True, obj=f)
            rows += len(x)
        else:
            assert json.loads((a / f).read_text()) == json.loads((b / f).read_text()), f
    return len(fa), rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--out", default="/tmp/bench_sim_spark")
    ap.add_argument("--kinds", default="local,spark_1,spark_2")
    ap.add_argument("--child")
    ap.add_argument("--data")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.persons, args.data)
        return 0
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    res = {}
    for kind in args.kinds.split(","):
        out = root / kind
        shutil.rmtree(out, ignore_errors=True)
        p = subprocess.run([sys.executable, __file__, "--child", kind, "--persons", str(args.persons),
                            "--data", str(out)], capture_output=True, text=True)
        if p.returncode:
            print(f"{kind} failed:\n{p.stderr[-3000:]}")
            return 1
        res[kind] = json.loads(p.stdout.strip().splitlines()[-1])
        r = res[kind]
        print(f"{kind:<8} wall {r['wall_s']:7.1f} s  cpu {r['cpu_s']:7.1f} s (+ {r['children_cpu_s']:7.1f} s in "
              f"workers)  peak {r['peak_gb']:.2f} GB (workers {r['children_peak_gb']:.2f} GB)  "
              f"events {r['events']:,}", flush=True)
    for kind in res:
        if kind != "local" and "local" in res:
            files, rows = same(root / "local", root / kind)
            print(f"{kind} equals local: {files} files, {rows:,} rows, every value")
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
