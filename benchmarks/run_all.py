"""Run every benchmark script in this folder, one after another.

Each ``bench_*.py`` prints its own figures and the ratios against a baseline measured
in the same run; the latest recorded results are in ``docs/benchmarks.md``.

Usage: ``python benchmarks/run_all.py [--quick]`` (``--quick`` passes ``--quick`` on,
for the scripts that accept it: smaller sizes, for a smoke run).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for script in sorted(here.glob("bench_*.py")):
        print(f"\n=== {script.name} ===", flush=True)
        code = subprocess.call([sys.executable, str(script), *argv])
        if code:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
