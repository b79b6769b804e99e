"""The simulator on Spark: the person blocks run on Spark executors and the dataset equals a local run's."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from privdomain.errors import UsageError
from privdomain.simulate import load_scenario, simulate

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]


@pytest.fixture(scope="module")
def spark():
    import os
    import sys

    from pyspark.sql import SparkSession

    before = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable  # the executors import privdomain: this interpreter

    session = (SparkSession.builder.master("local[2]").appName("privdomain-simulate-test")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.memory", "1g")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.default.parallelism", "2")
               .config("spark.ui.showConsoleProgress", "false")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if before is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = before


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_a_simulation_on_spark_equals_the_local_one_row_for_row(tmp_path, spark):
    # small blocks so that the 1,100 persons make 6 blocks (the last one short), spread over 2 executors
    sc = dataclasses.replace(load_scenario("beauty"), block_size=200)
    local = Path(simulate(sc, persons=1100, seed=11, out=tmp_path / "local", truth=True, shapley_sample=300))
    dist = Path(simulate(sc, persons=1100, seed=11, out=tmp_path / "spark", truth=True, shapley_sample=300,
                         engine="spark", spark=spark))
    files = _files(local)
    assert files == _files(dist)
    assert sum(f.startswith("events/part-") for f in files) == 6
    assert {"truth/stages.parquet", "truth/incrementality.parquet", "truth/shapley.parquet"} <= set(files)
    for f in files:
        a, b = local / f, dist / f
        if f.endswith(".parquet"):
            fa, fb = pd.read_parquet(a), pd.read_parquet(b)
            assert len(fa) == len(fb), f
            pd.testing.assert_frame_equal(fa, fb, check_exact=True, obj=f)
        else:
            assert json.loads(a.read_text()) == json.loads(b.read_text()), f
    events = pd.read_parquet(dist / "events")
    assert len(events) > 10_000 and events["person_id"].nunique() > 1000  # a real dataset, not an empty one


def test_an_unknown_engine_is_refused_by_name_before_anything_is_written(tmp_path):
    with pytest.raises(UsageError, match="unknown engine 'sprak'; did you mean 'spark'"):
        simulate("tea", persons=10, out=tmp_path / "x", engine="sprak")
    assert not (tmp_path / "x").exists()
