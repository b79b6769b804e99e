"""Dataset folders are read only as their manifest lists them, and never outside the folder."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from privdomain import io
from privdomain.errors import DatasetError, UsageError
from privdomain.examples import events_frame


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def products(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"product_id": np.arange(n, dtype="int64"), "name": ["tea"] * n, "category": ["drink"] * n,
                         "price_fen": np.full(n, 1900, dtype="int64")})


@pytest.fixture
def ds(tmp_path, small_events) -> Path:
    """A dataset of 10 events in two parts (3 + 7 rows), 3 products and a truth table."""
    root = tmp_path / "ds"
    (root / "truth").mkdir(parents=True)
    io._write_parquet(pd.DataFrame({"person_id": np.array([1, 2], dtype="int64"), "stage": ["new", "new"]}),
                      root / "truth" / "stages.parquet")
    io.write_dataset(root, {"events": iter([small_events.iloc[:3], small_events.iloc[3:]]), "products": products()})
    return root


def manifest(root: Path) -> dict:
    return json.loads((root / io.MANIFEST).read_text())


def save(root: Path, m: dict) -> None:
    (root / io.MANIFEST).write_text(json.dumps(m))


# --- the manifest lists every file ----------------------------------------------------------


def test_manifest_lists_every_parquet_file_with_its_rows_truth_included(ds):
    m = manifest(ds)
    assert m["files"] == {"events/part-00000.parquet": 3, "events/part-00001.parquet": 7, "products.parquet": 3,
                          "truth/stages.parquet": 2}
    assert m["row_counts"] == {"events": 10, "products": 3}
    assert not list(ds.glob(".*.tmp")), "the manifest is written through a temporary file renamed into place"


def test_a_second_write_manifest_lists_files_written_after_it(ds):
    io._write_parquet(pd.DataFrame({"channel": ["group"], "share": [1.0]}), ds / "truth" / "shapley.parquet")
    with pytest.raises(io.FilesError, match=r"truth/shapley.parquet: stray file"):
        io.verify_files(ds)
    io.write_manifest(ds, {})
    assert manifest(ds)["files"]["truth/shapley.parquet"] == 1
    assert io.verify_files(ds) == {"events": 10, "products": 3, "truth/shapley": 1, "truth/stages": 2}


def test_write_manifest_refuses_counts_that_disagree_with_the_files(ds):
    before = digest(ds)
    with pytest.raises(io.FilesError, match=r"events: files hold 10 rows, the counts given say 11"):
        io.write_manifest(ds, {"events": 11})
    with pytest.raises(DatasetError, match=r"table name '\.\./x' is a path"):
        io.write_manifest(ds, {"../x": 1})
    assert digest(ds) == before


# --- read_manifest ------------------------------------------------------------------------------


def test_a_missing_manifest_is_a_dataset_error_and_a_file_not_found_error(tmp_path):
    with pytest.raises(io.ManifestMissing, match="no dataset.json") as err:
        io.read_manifest(tmp_path)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, DatasetError)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.read_manifest(tmp_path / "nope")
    (tmp_path / "f.csv").write_text("x\n")
    with pytest.raises(io.ManifestMissing, match="is a file, not a dataset folder"):
        io.open_dataset(tmp_path / "f.csv")


@pytest.mark.parametrize("text, message", [
    ("{", r"is not valid JSON: .* line 1, column 2"),
    ("42", "must hold a JSON object, got int"),
    ('{"row_counts": [1]}', "row_counts must be an object"),
    ('{"row_counts": {"events": -1}}', r"row_counts.events: row count -1 is not a non-negative integer"),
    ('{"row_counts": {"events": true}}', r"row count True is not a non-negative integer"),
    ('{"row_counts": {"/etc/passwd": 1}}', r"'/etc/passwd' is a path"),
    ('{"row_counts": {"C:\\\\x": 1}}', r"is a path"),
    ('{"row_counts": {"persns": 1}}', r"unknown table 'persns'; did you mean 'persons'"),
    ('{"row_counts": {"events": 1}, "files": {"events/../../../x.parquet": 1}}', r"no '\.\.'"),
    ('{"row_counts": {"events": 1}, "files": {"events/a/b.parquet": 1}}', r"nested folders"),
    ('{"row_counts": {"events": 1}, "files": {"events.csv": 1}}', r"is not a dataset file"),
    ('{"row_counts": {}, "files": {"products.parquet": 1}}', r"row_counts has no table 'products'"),
    ('{"row_counts": {"events": 2}, "files": {"events.parquet": 1}}', r"files entries sum to 1"),
    ('{"row_counts": {}, "end": 20241231}', r"end: 20241231 is not a date"),
    ("[" * 100000 + "]" * 100000, r"nested too deeply|not valid JSON"),
])
def test_a_corrupt_manifest_is_a_manifest_error_naming_the_file(tmp_path, text, message):
    (tmp_path / io.MANIFEST).write_text(text)
    before = digest(tmp_path)
    with pytest.raises(io.ManifestError, match=message) as err:
        io.read_manifest(tmp_path)
    assert str(tmp_path / io.MANIFEST) in str(err.value)
    assert isinstance(err.value, ValueError)
    assert digest(tmp_path) == before


def test_a_manifest_pointing_outside_the_folder_opens_nothing(tmp_path, small_events, monkeypatch):
    outside = tmp_path / "secret.parquet"
    io._write_parquet(small_events, outside)
    root = tmp_path / "ds"
    root.mkdir()
    save(root, {"row_counts": {"../secret": 10}})
    opened = []
    real = pq.read_table
    monkeypatch.setattr(pq, "read_table", lambda f, *a, **k: opened.append(f) or real(f, *a, **k))
    monkeypatch.setattr(pq, "read_metadata", lambda f, *a, **k: opened.append(f))
    for call in (io.read_dataset, io.verify_files, lambda p: io.read_table(p, "../secret")):
        with pytest.raises((DatasetError, UsageError), match=r"secret"):
            call(root)
    assert opened == []


def test_a_symlink_out_of_the_folder_is_not_read(ds, tmp_path, monkeypatch):
    outside = tmp_path / "elsewhere.parquet"
    shutil.move(ds / "products.parquet", outside)
    os.symlink(outside, ds / "products.parquet")
    with pytest.raises(io.FilesError, match=r"products.parquet: resolves outside the dataset folder"):
        io.read_table(ds, "products")


# --- verify_files ---------------------------------------------------------------------------


def test_verify_files_returns_the_row_counts(ds):
    assert io.verify_files(ds) == {"events": 10, "products": 3, "truth/stages": 2}
    assert io.verify_files(ds, ["events"]) == {"events": 10}
    assert io.verify_files(ds, "products") == {"products": 3}


def test_a_missing_part_is_named_and_is_a_file_not_found_error(ds):
    (ds / "events" / "part-00001.parquet").unlink()
    with pytest.raises(io.FilesMissing, match=r"events/part-00001.parquet: missing") as err:
        io.verify_files(ds, ["events"])
    assert isinstance(err.value, FileNotFoundError)
    assert [(p.kind, p.file) for p in err.value.problems] == [("missing", "events/part-00001.parquet")]
    assert io.verify_files(ds, ["products"]) == {"products": 3}


def test_a_stray_part_is_named_and_never_read(ds):
    shutil.copy(ds / "events" / "part-00001.parquet", ds / "events" / "part-00002.parquet")
    for call in (lambda: io.verify_files(ds), lambda: io.read_table(ds, "events"), lambda: io.read_dataset(ds),
                 lambda: io.null_counts(ds, "events", ["person_id"])):
        with pytest.raises(io.FilesError, match=r"events/part-00002.parquet: stray file"):
            call()


def test_a_stray_single_file_next_to_a_table_folder_is_named(ds, small_events):
    io._write_parquet(small_events, ds / "events.parquet")
    with pytest.raises(io.FilesError, match=r"events.parquet: stray file"):
        io.verify_files(ds, ["events"])


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.write_bytes(b""), "is empty (0 bytes)"),
    (lambda f: f.write_bytes(f.read_bytes()[:-20]), "is not a readable Parquet file"),
    (lambda f: f.write_bytes(b"event_id\n1\n"), "is not a readable Parquet file"),
], ids=["zero-byte", "truncated", "csv-named-parquet"])
def test_an_unreadable_part_is_named(ds, damage, message):
    part = ds / "events" / "part-00000.parquet"
    damage(part)
    with pytest.raises(io.FilesError, match=re.escape(f"events/part-00000.parquet: {message}")):
        io.verify_files(ds, ["events"])


def test_a_part_rewritten_with_other_rows_is_named_with_both_counts(ds, small_events):
    io._write_parquet(small_events.iloc[:5], ds / "events" / "part-00000.parquet")
    with pytest.raises(io.FilesError, match=r"events/part-00000.parquet: holds 5 rows, the manifest says 3"):
        io.read_table(ds, "events")


def test_truth_files_are_checked_when_the_manifest_lists_them(ds):
    (ds / "truth" / "stages.parquet").unlink()
    with pytest.raises(io.FilesMissing, match=r"truth/stages.parquet: missing"):
        io.verify_files(ds)
    assert io.verify_files(ds, ["events"]) == {"events": 10}


def test_an_unknown_table_name_is_a_usage_error_with_a_suggestion(ds):
    with pytest.raises(UsageError, match=r"unknown table 'event'; did you mean 'events'"):
        io.verify_files(ds, ["event"])
    with pytest.raises(io.FilesMissing, match=r"table 'persons' is not in the dataset"):
        io.read_table(ds, "persons")
    with pytest.raises(io.FilesMissing, match=r"table 'persons' is not in the dataset"):
        io.read_dataset(ds, ["persons"])


def test_an_old_manifest_without_files_is_checked_by_table_totals(ds, small_events):
    m = manifest(ds)
    del m["files"]
    save(ds, m)
    assert io.verify_files(ds) == {"events": 10, "products": 3}
    shutil.copy(ds / "events" / "part-00001.parquet", ds / "events" / "part-00002.parquet")
    with pytest.raises(io.FilesError, match=r"events: manifest says 10 rows, files hold 17"):
        io.verify_files(ds)


def test_read_dataset_opens_only_the_tables_the_manifest_lists(ds, small_events):
    io._write_parquet(products(), ds / "campaigns.parquet")  # not in the manifest: never opened
    out = io.read_dataset(ds)
    assert sorted(out) == ["events", "products"]
    pd.testing.assert_frame_equal(out["events"], small_events)


def test_read_table_reads_a_truth_table_through_the_checks(ds):
    assert io.read_table(ds, "truth/stages")["person_id"].tolist() == [1, 2]
    shutil.copy(ds / "truth" / "stages.parquet", ds / "truth" / "other.parquet")
    assert io.read_table(ds, "truth/stages")["person_id"].tolist() == [1, 2], "a stray elsewhere does not matter"
    with pytest.raises(io.FilesError, match=r"truth/other.parquet: stray file"):
        io.verify_files(ds)
    with pytest.raises(io.FilesMissing, match=r"lists no truth/other.parquet"):
        io.read_table(ds, "truth/other")
    m = manifest(ds)
    del m["files"]
    save(ds, m)
    assert io.read_table(ds, "truth/other")["person_id"].tolist() == [1, 2], "an old manifest reads what is there"


def test_verify_files_reads_footers_only(ds, monkeypatch):
    monkeypatch.setattr(pq, "read_table", lambda *a, **k: pytest.fail("a data page was read"))
    assert io.verify_files(ds)["events"] == 10


# --- CSV import is exact ------------------------------------------------------------------------


def test_csv_integers_are_read_exactly_and_fractional_fen_stays_visible(tmp_path):
    ev = events_frame([(1, "2024-05-01 10:00", "pay", {"order_id": 2**62 + 1, "amount_fen": 9900})])
    out = ev.assign(ts=ev["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S+08:00"))
    out.to_csv(tmp_path / "a.csv", index=False)
    back = io.read_events_csv(tmp_path / "a.csv")
    assert back["order_id"].tolist() == [2**62 + 1] and str(back["order_id"].dtype) == "Int64"
    (tmp_path / "b.csv").write_text((tmp_path / "a.csv").read_text().replace(",9900,", ",1989.9999999999998,"))
    back = io.read_events_csv(tmp_path / "b.csv")
    assert back["amount_fen"].tolist() == ["1989.9999999999998"], "the value is kept as written, not rounded"
    (tmp_path / "c.csv").write_text((tmp_path / "a.csv").read_text().replace(",9900,", ",9900.0,"))
    assert io.read_events_csv(tmp_path / "c.csv")["amount_fen"].tolist() == [9900]


@pytest.mark.parametrize("data, message", [
    (b"", "the file is empty"),
    (b"\n\n", "no header row"),
    (b"PK\x03\x04rest", "Excel workbook"),
    (b"PAR1rest", "a Parquet file"),
    (b"a,b\n1,2\n3,4,5,6\n", "not a valid CSV file"),
], ids=["zero-byte", "blank-lines", "xlsx", "parquet", "ragged"])
def test_csv_import_errors_name_the_file(tmp_path, data, message):
    f = tmp_path / "e.csv"
    f.write_bytes(data)
    with pytest.raises(io.CSVImportError, match=message) as err:
        io.read_events_csv(f)
    assert str(f) in str(err.value) and isinstance(err.value, ValueError)
    assert f.read_bytes() == data


def test_timestamps_are_stored_in_microseconds_and_finer_values_are_refused(tmp_path):
    import pyarrow.parquet as pq

    from privdomain.examples import events_frame

    ev = events_frame([(1, "2024-05-01 10:00:00.123456", "mp_visit")])
    ds = io.write_dataset(tmp_path / "ds", {"events": ev})
    part = next((tmp_path / "ds" / "events").glob("*.parquet"))
    assert "timeUnit=microseconds" in str(pq.ParquetFile(part).schema.column(ev.columns.get_loc("ts")))
    assert io.read_table(ds.path, "events")["ts"].tolist() == ev["ts"].tolist()
    finer = ev.assign(ts=ev.ts + pd.Timedelta(nanoseconds=7))
    with pytest.raises(Exception, match="lose data"):
        io.write_dataset(tmp_path / "ns", {"events": finer})
