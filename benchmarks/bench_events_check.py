"""Benchmark: what the events layer's checks cost against a 4-step funnel on about 20M events.

Every metric reads its events through :func:`privdomain.events.read`, which checks a
dataset folder against its manifest (Parquet footers) and checks the rows once per
version of the files in a process (one aggregate query, one read of ``event_id``).
This script measures, in one run on the same data:

* ``funnel``: a 4-step ordered funnel (7-day window) with the check already done;
* ``check, first``: the full check of the folder (footers, the aggregate query and the
  event-id read), as the first metric on a dataset pays it;
* ``check, again``: what every later metric pays (footers and the fingerprint);
* ``check, Ibis table, first`` / ``again``: the same events given as an Ibis table (no
  manifest, no footers: the aggregate queries plus a group-by on ``event_id``), then
  the same table again (kept in the process).

Data: the ``apparel`` scenario (700k persons ~ 20.7M events) in ``/tmp/bench_data``,
generated once (shared with ``bench_funnel.py``).

Usage: ``python benchmarks/bench_events_check.py [--persons 700000] [--repeat 3] [--quick]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from bench_funnel import dataset  # the same 20.7M-event data, generated once

SHOP = ["mp_visit", "product_view", "add_to_cart", "pay"]
ARTICLE = ["oa_push", "oa_article_open", "mp_click", "pay"]


def best(f, repeat: int, before=None) -> float:
    out = None
    for _ in range(repeat):
        if before is not None:
            before()
        t0 = time.perf_counter()
        f()
        sec = time.perf_counter() - t0
        out = sec if out is None else min(out, sec)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=700_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="50k persons, one run: a smoke test")
    args = ap.parse_args()
    persons, repeat = (50_000, 1) if args.quick else (args.persons, args.repeat)
    path = dataset(persons)

    from privdomain import backend, events
    from privdomain.boards.funnel import funnel

    def clear() -> None:  # as for a dataset never checked before: nothing kept in memory or on disk
        events.clear_cache()
        os.environ["PRIVDOMAIN_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-events-check-")

    n = events.check(path).rows
    print(f"data: {path} ({persons:,} persons, {n:,} events); best of {repeat}")
    funnel(path, SHOP, window="7D")  # warm the file cache and the check
    res = {
        "funnel shop (checked)": best(lambda: funnel(path, SHOP, window="7D"), repeat),
        "funnel article (checked)": best(lambda: funnel(path, ARTICLE, window="7D"), repeat),
        "check, first": best(lambda: events.check(path), repeat, before=clear),
        "check, again": best(lambda: events.check(path), repeat),
    }
    table = backend.connect().read_parquet(str(path / "events" / "*.parquet"))
    res["check, Ibis table, first"] = best(lambda: events.check(table), repeat, before=clear)
    res["check, Ibis table, again"] = best(lambda: events.check(table), repeat)
    for k, v in res.items():
        print(f"  {k:<26} {v:7.3f} s")
    for f in ("funnel shop (checked)", "funnel article (checked)"):
        for c in ("check, first", "check, again", "check, Ibis table, first", "check, Ibis table, again"):
            print(f"  {c} / {f}: {res[c] / res[f]:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
