"""Benchmark: audience tags, a composed selection, an overlap and an export on millions of persons.

Each step runs in its own child process, so that its wall time, CPU time and peak
resident memory (ru_maxrss) are its own:

* ``tags``: :func:`privdomain.audience.tags` with ``out=`` (the tag table written to
  Parquet in person-id chunks, :func:`privdomain.audience.tags.write_tags`);
* ``select``: :func:`privdomain.audience.select` of a composed condition on the tag file
  (only the columns the condition reads are loaded);
* ``overlap``: four segments selected from the file and :func:`privdomain.audience.overlap`;
* ``export``: the composed segment's ids with one hop of ``id_links`` and a key, to Parquet;
* ``baseline_tags``, ``baseline_select``, ``baseline_export``: the same work written by hand
  in DuckDB SQL, with the same DuckDB settings: per-person aggregates with ``FILTER`` and
  ``count(DISTINCT ...)`` and one ``max`` per touchpoint (the behaviour tags and purchase
  days only: no lifecycle stage, RFM segment, persons columns or preferred channel, so a
  lower bound on the engine work of the tags); the composed condition in SQL over the
  same tag file (the same persons); the segment's ids from the events and one hop of the
  links in one SQL statement (no pseudonymisation). A pandas baseline is not run: the events
  of ten million persons (about 190M rows) do not fit in 4 GB as a DataFrame.

Data: ``simulate("beauty", persons=N, seed=3)`` (no truth), generated once into
``/tmp/bench_data/beauty_<N>`` and reused, or ``--data PATH``. Tags as of 2024-10-31.

``PRIVDOMAIN_MEMORY_LIMIT`` (e.g. ``4GB``) sets DuckDB's memory limit for both
variants (``--memory-limit`` sets it for the run). Peak memory is the whole child
process: Python, DuckDB and the results.

Usage: ``python benchmarks/bench_audience.py [--persons 10000000] [--data PATH] [--quick]``
(``--quick``: 100,000 persons).
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

AS_OF = "2024-10-31"
KEY = "bench-audience-key-0123456789abcdef"
#: the composed condition of :func:`_condition` in SQL over the tag file (a test on a null is false)
SEGMENT_SQL = ("(coalesce(stage = 'dormant', false) OR (coalesce(days_since_live_view < 30, false) "
               "AND NOT coalesce(days_since_pay < 90, false))) AND coalesce(city_tier <= 3, false)")
STEPS = ("tags", "select", "overlap", "export", "baseline_tags", "baseline_select", "baseline_export")


def dataset(persons: int) -> Path:
    path = Path("/tmp/bench_data") / f"beauty_{persons}"
    if not (path / "dataset.json").exists():
        from privdomain.simulate import simulate

        print(f"generating {persons:,} persons into {path} (once)...", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        simulate(scenario="beauty", persons=persons, seed=3, out=path, truth=False)
    return path


def _condition():
    from privdomain.audience import Did, Tag

    return ((Tag("stage") == "dormant") | (Did("live_view", within_days=30) & ~Did("pay", within_days=90))) \
        & (Tag("city_tier") <= 3)


def _d0() -> int:
    import pandas as pd

    return int((pd.Timestamp(AS_OF) - pd.Timestamp("1970-01-01")).days)


def _duckdb():
    import duckdb

    from privdomain import backend

    con = duckdb.connect()
    limit = os.environ.get("PRIVDOMAIN_MEMORY_LIMIT")
    if limit:
        con.execute(f"SET memory_limit = '{limit}'")
    settings = backend.default_settings() if hasattr(backend, "default_settings") else {}
    if isinstance(settings, dict) and settings.get("temp_directory"):
        con.execute(f"SET temp_directory = '{settings['temp_directory']}'")
    return con


def baseline_tags_sql(data: Path, out: Path) -> str:
    from privdomain.events import known_touchpoints

    d0 = _d0()
    files = data / "events" / "*.parquet"
    since = ",\n  ".join(f"{d0} - max(d) FILTER (touchpoint = '{tp}') AS days_since_{tp}"
                         for tp in known_touchpoints(str(data)))
    windows = ",\n  ".join(f"count(DISTINCT {k}) FILTER (d > {d0 - w}) AS {k}s_{w}d"
                           for w in (7, 30, 90) for k in ("touchpoint", "channel"))
    return f"""
COPY (
WITH e AS (SELECT person_id, touchpoint::VARCHAR AS touchpoint, channel::VARCHAR AS channel,
                  (epoch_us(ts) + 28800000000::BIGINT) // 86400000000 AS d
           FROM read_parquet('{files}'))
SELECT person_id, min(d) AS first_active, max(d) AS last_active, {d0} - max(d) AS days_since_active,
  {windows},
  {since},
  count(DISTINCT d) FILTER (touchpoint = 'pay') AS purchase_days
FROM e WHERE d <= {d0} GROUP BY person_id ORDER BY person_id
) TO '{out}' (FORMAT PARQUET)"""


def child(step: str, data: Path, work: Path) -> dict:
    from privdomain import audience

    tagfile = work / "tags.parquet"
    basefile = work / "baseline_tags.parquet"
    t0, c0 = time.perf_counter(), time.process_time()
    info: dict = {}
    if step == "tags":
        audience.tags(str(data), as_of=AS_OF, out=tagfile)
        import pyarrow.parquet as pq

        md = pq.ParquetFile(tagfile).metadata
        info = {"rows": md.num_rows, "columns": md.num_columns}
    elif step == "select":
        seg = audience.select(tagfile, _condition())
        info = {"size": seg.size, "population": seg.population}
    elif step == "overlap":
        from privdomain.audience import Tag

        segs = {"dormant": audience.select(tagfile, Tag("stage") == "dormant"),
                "live": audience.select(tagfile, Tag("live_viewer")),
                "guide": audience.select(tagfile, Tag("guide_added")),
                "reader": audience.select(tagfile, Tag("article_reader"))}
        t1 = time.perf_counter()
        ov = audience.overlap(segs)
        info = {"sizes": {k: v.size for k, v in segs.items()}, "combinations": len(ov.intersections),
                "overlap_only_s": round(time.perf_counter() - t1, 2)}
    elif step == "export":
        seg = audience.select(tagfile, _condition())
        t1 = time.perf_counter()
        out = audience.export(seg, str(data), key=KEY, path=work / "export.parquet", format="parquet", overwrite=True)
        info = {"persons": seg.size, "ids": len(out), "export_only_s": round(time.perf_counter() - t1, 2)}
    elif step == "baseline_tags":
        con = _duckdb()
        con.execute(baseline_tags_sql(data, basefile))
        info = {"rows": con.execute(f"SELECT count(*) FROM '{basefile}'").fetchone()[0]}
    elif step == "baseline_select":
        con = _duckdb()
        ids = con.execute(f"SELECT person_id FROM '{tagfile}' WHERE {SEGMENT_SQL} ORDER BY person_id").fetchnumpy()
        info = {"size": len(ids["person_id"])}
    elif step == "baseline_export":
        con = _duckdb()
        files = data / "events" / "*.parquet"
        links = data / "id_links.parquet"
        q = f"""
COPY (
WITH seg AS (SELECT person_id FROM '{tagfile}' WHERE {SEGMENT_SQL}),
known AS (SELECT DISTINCT e.person_id, e.id_type::VARCHAR AS id_type, e.id_value::VARCHAR AS id_value
          FROM read_parquet('{files}') e SEMI JOIN seg USING (person_id)),
hop AS (SELECT k.person_id, l.id_type_b::VARCHAR AS id_type, l.id_value_b::VARCHAR AS id_value
        FROM known k JOIN '{links}' l ON k.id_type = l.id_type_a::VARCHAR AND k.id_value = l.id_value_a::VARCHAR
        UNION SELECT k.person_id, l.id_type_a::VARCHAR, l.id_value_a::VARCHAR
        FROM known k JOIN '{links}' l ON k.id_type = l.id_type_b::VARCHAR AND k.id_value = l.id_value_b::VARCHAR),
ids AS (SELECT * FROM known UNION SELECT * FROM hop)
SELECT * FROM ids WHERE id_type IN ('unionid', 'mp_openid', 'oa_openid', 'wecom_external_id', 'phone_hash')
) TO '{work / "baseline_export.parquet"}' (FORMAT PARQUET)"""
        con.execute(q)
        info = {"ids": con.execute(f"SELECT count(*) FROM '{work / 'baseline_export.parquet'}'").fetchone()[0],
                "pseudonymised": False}
    else:
        raise SystemExit(f"unknown step {step}")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"step": step, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_mb": round(peak / 2**20), **info}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=10_000_000)
    ap.add_argument("--data", type=Path, default=None, help="reuse this dataset folder")
    ap.add_argument("--work", type=Path, default=None, help="folder for the tag file and exports")
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory limit, e.g. 4GB")
    ap.add_argument("--only", action="append", choices=STEPS)
    ap.add_argument("--quick", action="store_true", help="100,000 persons")
    ap.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.memory_limit:
        os.environ["PRIVDOMAIN_MEMORY_LIMIT"] = a.memory_limit
    persons = 100_000 if a.quick else a.persons
    data = a.data if a.data is not None else dataset(persons)
    work = a.work or Path("/tmp/bench_data") / f"audience_{data.name}"
    work.mkdir(parents=True, exist_ok=True)
    if a.child:
        print(json.dumps(child(a.child, data, work)))
        return
    print(f"data {data}  memory limit {os.environ.get('PRIVDOMAIN_MEMORY_LIMIT', '(DuckDB default)')}", flush=True)
    results = []
    for step in a.only or STEPS:
        cmd = [sys.executable, __file__, "--child", step, "--data", str(data), "--work", str(work)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            res = {"step": step, "failed": p.returncode, "error": p.stderr.strip().splitlines()[-1:]}
        else:
            res = json.loads(p.stdout.strip().splitlines()[-1])
        results.append(res)
        print(json.dumps(res), flush=True)
    print("| step | wall s | CPU s | peak MB | result |")
    print("|---|---|---|---|---|")
    for r in results:
        rest = {k: v for k, v in r.items() if k not in ("step", "wall_s", "cpu_s", "peak_mb")}
        print(f"| {r['step']} | {r.get('wall_s', '-')} | {r.get('cpu_s', '-')} | {r.get('peak_mb', '-')} | {rest} |")


if __name__ == "__main__":
    main()
