"""Benchmark: importing a 10M-row order export (``privdomain import table``) against pandas reading it.

One CSV of order rows as a brand's system exports them (order time without a zone, user
id, paid amount in yuan with two decimals, order id; 10,000,000 rows, 2,000,000 users)
is generated once into ``/tmp/bench_data``. In the same run, each in its own process so
that its peak memory (ru_maxrss) is its own:

* ``privdomain``: :func:`privdomain.importers.import_table` into a dataset folder
  (chunked reading, exact yuan -> fen, identity unification, Parquet, manifest with the
  source's hash, then the dataset is read back through the events layer's check);
* ``pandas``: ``pandas.read_csv(dtype=str)`` of the same file, the baseline a user would
  otherwise start from (it reads only; no conversion, no writing).

Target (the bring-your-own-data issue): the import stays under 2 GB of memory.

Usage: ``python benchmarks/bench_import.py [--rows 10000000] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAPPING = "ts=下单时间,person_id=用户ID,amount=实付金额,order_id=订单号"


def source(rows: int) -> Path:
    path = Path("/tmp/bench_data") / f"orders_{rows // 1_000_000}M.csv"
    if path.exists():
        return path
    import numpy as np
    import pandas as pd

    print(f"generating {rows:,} order rows into {path} (once)...", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    tmp = path.with_suffix(".partial")
    with tmp.open("w", encoding="utf-8") as f:
        f.write("下单时间,用户ID,实付金额,订单号\n")
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            secs = rng.integers(0, 365 * 86400, n)
            ts = (pd.Timestamp("2024-01-01") + pd.to_timedelta(secs, unit="s")).strftime("%Y-%m-%d %H:%M:%S")
            user = rng.integers(1, rows // 5 + 1, n)
            fen = rng.integers(100, 100_000, n)
            yuan = [f"{v // 100}.{v % 100:02d}" for v in fen]
            order = np.arange(start, start + n)
            pd.DataFrame({"t": ts, "u": user, "a": yuan, "o": order}).to_csv(f, header=False, index=False)
    tmp.rename(path)
    return path


def child(variant: str, src: Path) -> None:
    if variant == "pandas":
        import pandas as pd

        t0 = time.perf_counter()
        df = pd.read_csv(src, dtype=str)
        rows = len(df)
    else:
        from privdomain import events
        from privdomain.importers import import_table

        out = Path(tempfile.mkdtemp(prefix="bench-import-")) / "ds"
        t0 = time.perf_counter()
        res = import_table(src, out, MAPPING, unit="yuan", tz="Asia/Shanghai")
        rows = events.check(res.dataset.path).rows
        shutil.rmtree(out.parent)
    sec = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": sec, "peak_mb": peak, "rows": rows}))


def run(variant: str, src: Path) -> dict:
    res = subprocess.run([sys.executable, __file__, "--child", variant, "--src", str(src)],
                         capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"{variant} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--quick", action="store_true", help="1M rows: a smoke test")
    ap.add_argument("--child", choices=["privdomain", "pandas"])
    ap.add_argument("--src")
    args = ap.parse_args()
    if args.child:
        child(args.child, Path(args.src))
        return 0
    src = source(1_000_000 if args.quick else args.rows)
    print(f"source: {src} ({src.stat().st_size / 1e6:,.0f} MB)")
    res = {v: run(v, src) for v in ("pandas", "privdomain")}
    for v, r in res.items():
        print(f"  {v:<11} {r['seconds']:8.1f} s   peak {r['peak_mb'] / 1024:5.2f} GB   rows {r['rows']:,}")
    a, b = res["privdomain"], res["pandas"]
    print(f"  ratio import / pandas.read_csv: time {a['seconds'] / b['seconds']:.1f}x, "
          f"memory {a['peak_mb'] / b['peak_mb']:.2f}x; import under 2 GB: {a['peak_mb'] < 2048}")
    return 0 if a["rows"] == b["rows"] and a["peak_mb"] < 2048 else 1


if __name__ == "__main__":
    raise SystemExit(main())
