"""One metric, three inputs (pandas, Parquet dataset, Ibis table), equal to its per-person reference."""

import os
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from privdomain import backend, io, schema
from privdomain.boards.touchpoints import daily_volume
from privdomain.examples import events_frame
from privdomain.testing import reference


def test_days_are_beijing_calendar_days():
    # 23:30 and 00:30 Beijing are the same UTC day but two Beijing days
    ev = events_frame([(1, "2024-05-01 23:30", "mp_visit"), (1, "2024-05-02 00:30", "mp_visit")])
    out = daily_volume(ev)
    assert [str(d) for d in out["day"]] == ["2024-05-01", "2024-05-02"]


def test_utc_input_is_converted_not_relabelled():
    ev = events_frame([(1, "2024-05-01 16:30", "mp_visit")])
    ev["ts"] = ev["ts"].dt.tz_convert("UTC")  # 08:30 UTC == 16:30 Beijing
    t = backend.to_table(ev)
    got = backend.execute(t.select("ts"))["ts"].iloc[0]
    assert got == pd.Timestamp("2024-05-01 16:30")


def test_pandas_parquet_and_ibis_inputs_agree(tmp_path, small_events):
    from_pandas = daily_volume(small_events)
    ds = io.write_dataset(tmp_path / "ds", {"events": small_events})
    from_path = daily_volume(ds.path)
    from_dataset = daily_volume(ds)
    con = ibis.duckdb.connect()
    from_ibis = daily_volume(con.create_table("events", small_events))
    for other in (from_path, from_dataset, from_ibis):
        pd.testing.assert_frame_equal(from_pandas, other)
    pd.testing.assert_frame_equal(from_pandas, reference.daily_volume(small_events))


def test_user_connection_is_used(small_events):
    con = ibis.duckdb.connect()
    out = daily_volume(small_events, con=con)
    assert out["events"].sum() == len(small_events)


def test_parquet_events_in_several_blocks_read_as_one(tmp_path, small_events):
    blocks = [small_events.iloc[:4], small_events.iloc[4:]]
    io.write_dataset(tmp_path / "ds", {"events": iter(blocks)})
    assert len(list((tmp_path / "ds" / "events").glob("*.parquet"))) == 2
    assert daily_volume(tmp_path / "ds")["events"].sum() == len(small_events)


@st.composite
def random_events(draw):
    n = draw(st.integers(1, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    start = pd.Timestamp("2024-05-01", tz=schema.TIMEZONE)
    seconds = rng.integers(0, 5 * 86400, n)
    rows = [
        (int(p), start + pd.Timedelta(seconds=int(s)), str(tp))
        for p, s, tp in zip(rng.integers(0, 8, n), seconds, rng.choice(schema.TOUCHPOINTS[:12], n))
    ]
    return events_frame(rows)


@settings(max_examples=40, deadline=None)
@given(random_events())
def test_daily_volume_equals_per_person_reference(ev):
    pd.testing.assert_frame_equal(daily_volume(ev), reference.daily_volume(ev))


def test_duckdb_fast_path_and_portable_cast_give_the_same_local_times(tmp_path, small_events, monkeypatch):
    io.write_dataset(tmp_path / "ds", {"events": small_events})
    fast = backend.execute(backend.to_table(tmp_path / "ds").select("event_id", "ts").order_by("event_id"))
    monkeypatch.setattr(backend, "_is_duckdb", lambda t: False)
    cast = backend.execute(backend.to_table(tmp_path / "ds").select("event_id", "ts").order_by("event_id"))
    pd.testing.assert_frame_equal(fast, cast)
    expected = small_events["ts"].dt.tz_localize(None).to_numpy()
    assert (fast["ts"].to_numpy() == expected).all()


def test_default_connection_spills_to_the_temp_folder_and_the_user_can_limit_its_memory(monkeypatch, tmp_path):
    from privdomain import backend

    monkeypatch.setattr(backend, "_DEFAULT_CON", None)
    monkeypatch.setenv("PRIVDOMAIN_MEMORY_LIMIT", "1GB")
    monkeypatch.setenv("PRIVDOMAIN_TEMP_DIRECTORY", str(tmp_path / "spill"))
    con = backend.connect()
    limit, temp = con.raw_sql("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    assert limit == "953.6 MiB" and Path(temp).parent == tmp_path / "spill"  # a folder of its own under it
    con = backend.connect(memory_limit="512MB")
    assert con.raw_sql("SELECT current_setting('memory_limit')").fetchone()[0] == "488.2 MiB"
    # by default no limit is imposed (DuckDB's own, 80% of memory) and spills go to the temp folder
    monkeypatch.delenv("PRIVDOMAIN_MEMORY_LIMIT")
    monkeypatch.delenv("PRIVDOMAIN_TEMP_DIRECTORY")
    settings = backend.default_settings()
    assert "memory_limit" not in settings and backend.MEMORY_LIMIT is None
    assert Path(settings["temp_directory"]).parent.name == "privdomain_duckdb"
    monkeypatch.setenv("PRIVDOMAIN_MEMORY_LIMIT", "none")
    assert "memory_limit" not in backend.default_settings()
    monkeypatch.setattr(backend, "_DEFAULT_CON", None)


def test_parse_bytes_reads_duckdb_sizes():
    from privdomain.backend import parse_bytes

    assert parse_bytes("1.8 GiB") == int(1.8 * 2**30)
    assert parse_bytes("8GB") == 8 * 10**9
    assert parse_bytes("512 MiB") == 512 * 2**20
    assert parse_bytes("none") is None and parse_bytes("") is None


def test_partitions_keep_each_partition_under_half_the_duckdb_memory_limit():
    import ibis

    from privdomain.backend import memory_limit_bytes, partitions_for

    con = ibis.duckdb.connect(memory_limit="2GB")
    limit = memory_limit_bytes(con)
    assert 1.8e9 < limit <= 2e9
    k = partitions_for(20_772_622, 200.0, con=con)
    assert 20_772_622 * 200.0 / k <= limit / 2 < 20_772_622 * 200.0 / (k - 1)  # the fewest that fit
    assert partitions_for(1_000, 200.0, con=con) == 1
    assert partitions_for(10**9, 200.0, con=object()) == 1  # not DuckDB: the engine spills on its own


def test_each_connection_spills_into_a_folder_of_its_own_and_dead_processes_folders_are_swept(tmp_path):
    """Two DuckDB connections sharing a spill folder overwrite each other's files (duckdb#15173)."""
    import subprocess
    import sys

    from privdomain import backend

    a, b = backend.spill_directory(tmp_path), backend.spill_directory(tmp_path)
    assert a != b and a.parent == b.parent == tmp_path
    # a folder of a process that is gone is removed; a live process's folder and other files are not
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = tmp_path / f"{int(dead.stdout)}-0123abcd"
    live = tmp_path / f"{os.getpid()}-89abcdef"
    other = tmp_path / "12345-not-ours"
    for d in (gone, live, other):
        d.mkdir()
        (d / "duckdb_temp_storage_DEFAULT-0.tmp").write_bytes(b"x")
    backend.spill_directory(tmp_path)
    assert not gone.exists() and live.exists() and other.exists()


def test_two_connections_spilling_at_once_both_get_the_right_answer(tmp_path):
    import ibis
    import numpy as np

    from privdomain import backend

    cons = [ibis.duckdb.connect(**{**backend.default_settings(), "memory_limit": "40MB", "threads": 1})
            for _ in range(2)]
    n = 3_000_000
    sql = (f"SELECT sum(x * rn) FROM (SELECT x, row_number() OVER (ORDER BY x DESC) AS rn FROM "
           f"(SELECT (i * 7919) % {n} AS x FROM range({n}) r(i)))")
    x = np.sort((np.arange(n, dtype=np.int64) * 7919) % n)[::-1]
    expected = int((x.astype(object) * np.arange(1, n + 1).astype(object)).sum())
    import threading

    got: list = [None, None]

    def run(k: int) -> None:
        got[k] = int(cons[k].raw_sql(sql).fetchone()[0])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert got == [expected, expected]
