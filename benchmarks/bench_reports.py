"""Time to build the case-study reports (the `make report` target: <= 3 minutes at 50k persons).

Runs :func:`privdomain.reports.build_reports` on every case (and, with ``--topics``, the
topic notebooks) and prints the time of each simulation and each notebook, the total
wall time, and peak memory of this process and of the notebook kernels. The baseline,
measured in the same run, is an empty notebook executed through the same runner: the
fixed cost (kernel start, imports, rendering) that every report pays.

Usage: ``python benchmarks/bench_reports.py [--persons 50000] [--seed 7] [--jobs 2] [--topics] [--quick]``
(``--quick``: 5,000 persons).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from privdomain.reports import runner as reports

EMPTY = """# %% [markdown]
# # Empty

# %% tags=["parameters"]
scenario = "beauty"
persons = 0
seed = 0
windows = [0]
data_dir = ""
output_dir = ""
report_name = "empty"

# %%
from privdomain import plotting

plotting.use_style()
"""


def _peak_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--topics", action="store_true", help="also run the topic notebooks")
    ap.add_argument("--quick", action="store_true", help="5,000 persons")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "reports")
    args = ap.parse_args(argv)
    persons = 5_000 if args.quick else args.persons

    # baseline: an empty notebook through the same runner (kernel start + imports + rendering)
    tmp = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    (tmp / "case_study.py").write_text(EMPTY)
    t0 = time.perf_counter()
    base = reports.build_reports(["beauty"], persons=1, seed=1, out=tmp / "out", topics=False, notebooks=tmp,
                                 progress=False, simulate=lambda *a: None)
    baseline = time.perf_counter() - t0
    shutil.rmtree(tmp, ignore_errors=True)
    assert base[0].ok, base[0].error

    sims: dict[str, float] = {}

    def timed_simulate(scenario, n, seed, folder):
        s = time.perf_counter()
        reports.load_or_simulate(scenario, n, seed, folder, force=True)
        sims[scenario] = time.perf_counter() - s

    if args.out.exists():
        shutil.rmtree(args.out)
    start = time.perf_counter()
    results = reports.build_reports(list(reports.CASES), persons=persons, seed=args.seed, out=args.out,
                                    topics=args.topics, jobs=args.jobs, progress=False, simulate=timed_simulate)
    wall = time.perf_counter() - start

    print(f"reports at {persons:,} persons per case, seed {args.seed}, {args.jobs} notebooks at once")
    for name, s in sims.items():
        print(f"  simulate {name:<12} {s:7.1f} s")
    for r in results:
        print(f"  notebook {r.name:<26} {r.seconds:7.1f} s  {'ok' if r.ok else 'FAILED: ' + str(r.error)}")
    print(f"baseline (empty notebook through the runner): {baseline:.1f} s")
    print(f"simulation total: {sum(sims.values()):.1f} s; notebooks total (sum over kernels): "
          f"{sum(r.seconds for r in results):.1f} s")
    print(f"wall time, all reports: {wall:.1f} s ({wall / 60:.2f} min; target <= 3 min) = "
          f"{wall / baseline:.0f} x the empty-notebook baseline")
    print(f"peak memory: runner {_peak_mib(resource.RUSAGE_SELF):.0f} MiB, "
          f"largest kernel {_peak_mib(resource.RUSAGE_CHILDREN):.0f} MiB")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
