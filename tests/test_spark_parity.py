"""Spark parity: every public metric on an Ibis PySpark connection equals DuckDB's result.

One local Spark session (``local[2]``, UI off, small memory) for the module; one small
simulated dataset read by both engines. Counts must agree exactly and floats to 1e-9
relative. Every result Spark hands back is recorded: none may be event-level (the
metrics aggregate inside the engine).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import ibis
import pandas as pd
import pytest

from privdomain import attribution, backend, identity, simulate
from privdomain import events as events_layer
from privdomain.attribution import windows as ad_windows
from privdomain.boards import channel_cube, funnel, live, officialaccount, touchpoints
from privdomain.clv import rfm
from privdomain.examples import events_frame
from privdomain.io import write_dataset
from privdomain.lifecycle import cohorts, repurchase
from privdomain.lifecycle import stages as lifecycle
from privdomain.testing import reference

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

PERSONS = 1500


@pytest.fixture(scope="module")
def spark_con():
    """An Ibis PySpark connection on a local session; every execute's row count is recorded."""
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("privdomain-parity")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.memory", "1g")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.default.parallelism", "2")
               .config("spark.ui.showConsoleProgress", "false")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    con = ibis.pyspark.connect(session)
    rows: list[int] = []
    plain = con.execute

    def recording(expr, *args, **kwargs):
        out = plain(expr, *args, **kwargs)
        rows.append(len(out) if hasattr(out, "__len__") else 1)
        return out

    plain_arrow = con.to_pyarrow

    def recording_arrow(expr, *args, **kwargs):
        out = plain_arrow(expr, *args, **kwargs)
        rows.append(out.num_rows)
        return out

    con.execute = recording
    con.to_pyarrow = recording_arrow
    con.rows_returned = rows
    yield con
    session.stop()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    ds = simulate(scenario="beauty", persons=PERSONS, seed=5, out=tmp_path_factory.mktemp("spark") / "ds",
                  truth=False)
    return Path(ds)


@pytest.fixture(scope="module")
def n_events(dataset) -> int:
    return len(pd.read_parquet(dataset / "events"))


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False,
                                  check_exact=False, rtol=1e-9, atol=0)
    for col in a.columns:  # counts exactly: integer columns compared without tolerance
        if pd.api.types.is_integer_dtype(a[col]):
            assert (a[col].to_numpy() == b[col].to_numpy()).all(), col


STEPS = ["oa_article_open", "mp_visit", "pay"]
METRICS = {
    "funnel_ordered": lambda d, c: funnel.funnel(d, STEPS, con=c),
    "funnel_any_order": lambda d, c: funnel.funnel(d, STEPS, mode="any_order", con=c),
    "article_rates": lambda d, c: officialaccount.article_rates(d, con=c),
    "daily_volume": lambda d, c: touchpoints.daily_volume(d, con=c),
    "touchpoint_flows": lambda d, c: touchpoints.touchpoint_flows(d, con=c),
    "touchpoint_flows_in_2_partitions": lambda d, c: touchpoints.touchpoint_flows(d, entry_exit=True, partitions=2,
                                                                                  con=c),
    "touchpoint_nodes": lambda d, c: touchpoints.touchpoint_nodes(d, partitions=2, con=c),
    "ad_attribution": lambda d, c: ad_windows.ad_attribution(d, partitions=2, con=c),
    "multi_level_roi": lambda d, c: ad_windows.multi_level_roi(d, con=c),
    "channel_cube": lambda d, c: channel_cube.channel_cube(d, con=c),
    "live_board": lambda d, c: live.live_board(d, con=c),
    "rfm_summary": lambda d, c: rfm.rfm_summary(d, con=c),
    "lifecycle_board": lambda d, c: lifecycle.lifecycle_board(d, "2024-02-01", "2024-03-31", freq="W", con=c),
    "cohort_table": lambda d, c: cohorts.cohort_table(d, con=c),
    "repurchase_rate": lambda d, c: repurchase.repurchase_rate(d, con=c),
    "build_paths": lambda d, c: attribution.build_paths(d, con=c),
    "unify_observed_ids": lambda d, c: identity.unify(identity.observed_ids(d, partitions=2, con=c),
                                                      pd.read_parquet(Path(d) / "id_links.parquet")),
    "acquisition": lambda d, c: attribution.acquisition(d, partitions=2, con=c),
    "attribute": lambda d, c: attribution.attribute(d, models=("last_touch", "linear", "markov"), con=c),
}


@pytest.mark.parametrize("name", list(METRICS))
def test_a_metric_on_spark_equals_duckdb(name, dataset, spark_con, n_events):
    before = len(spark_con.rows_returned)
    on_duckdb = METRICS[name](str(dataset), None)
    on_spark = METRICS[name](str(dataset), spark_con)
    assert len(on_duckdb) > 0
    assert (on_duckdb.select_dtypes("number").fillna(0).abs().to_numpy() > 0).any()  # something was counted
    _same(on_duckdb, on_spark)
    returned = spark_con.rows_returned[before:]
    assert returned, "the metric did not run on Spark"
    # aggregated results only: never a row per event (or anything near it) back to the driver
    assert max(returned) < n_events / 4, (name, max(returned), n_events)


def test_the_path_table_on_spark_is_the_reference(dataset, spark_con):
    events = pd.read_parquet(dataset / "events")
    ref = reference.attribution_paths(events)
    got = attribution.build_paths(str(dataset), con=spark_con)
    assert got["path"].tolist() == ref["path"].tolist()
    assert got["total_conversions"].tolist() == ref["total_conversions"].tolist()
    assert got["total_null"].tolist() == ref["total_null"].tolist()


def test_spark_reads_the_stored_instants_as_utc_and_days_are_beijing_days(tmp_path, spark_con):
    # 16:30 UTC on May 1 is 00:30 on May 2 in Beijing: a different day
    ev = events_frame([(1, "2024-05-02 00:30", "sms"), (2, "2024-05-01 23:30", "sms"),
                       (3, "2024-05-01 07:59", "sms")])
    root = write_dataset(tmp_path / "ds", {"events": ev})
    files = sorted(Path(root).rglob("*.parquet"))
    digests = {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    t = backend.to_table(Path(root), "events", con=spark_con, localise=False)
    assert t.schema()["ts"].timezone == "UTC"
    vol = touchpoints.daily_volume(Path(root), con=spark_con)
    by_day = vol.groupby(vol.columns[0])[vol.select_dtypes("number").columns[0]].sum()
    assert [str(pd.Timestamp(d).date()) for d in by_day.index] == ["2024-05-01", "2024-05-02"]
    assert by_day.tolist() == [2, 1]
    assert {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files} == digests


def test_an_ibis_spark_table_with_a_stated_zone_gives_the_duckdb_paths(dataset, spark_con):
    table = spark_con.read_parquet(str(dataset / "events" / "*.parquet"))
    assert table.schema()["ts"].timezone is None  # Ibis types Spark timestamps without a zone
    with pytest.raises(ValueError, match="'ts' must be timezone-aware"):
        attribution.build_paths(table)
    stated = events_layer.assume_timezone(table, "UTC")
    _same(attribution.build_paths(str(dataset)), attribution.build_paths(stated))
