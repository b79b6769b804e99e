import hashlib

import pandas as pd
import pytest

from privdomain import io


def digest(folder):
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*.parquet")):
        h.update(f.read_bytes())
    return h.hexdigest()


def test_round_trip_keeps_dtypes_and_values(tmp_path, small_events):
    io.write_dataset(tmp_path / "ds", {"events": small_events}, meta={"seed": 3, "scenario": "hand"})
    back = io.read_dataset(tmp_path / "ds")["events"]
    pd.testing.assert_frame_equal(back, small_events)


def test_manifest_records_counts_and_meta(tmp_path, small_events):
    io.write_dataset(tmp_path / "ds", {"events": small_events}, meta={"seed": 3})
    io.write_dataset(tmp_path / "ds", {"products": pd.DataFrame({"product_id": [1], "name": ["x"],
                                                                 "category": ["c"], "price_fen": [5]})})
    m = io.read_manifest(tmp_path / "ds")
    assert m["row_counts"] == {"events": 10, "products": 1}
    assert m["seed"] == 3 and m["timezone"] == "Asia/Shanghai" and m["schema_version"]


def test_same_frame_gives_byte_identical_files(tmp_path, small_events):
    io.write_dataset(tmp_path / "a", {"events": small_events})
    io.write_dataset(tmp_path / "b", {"events": small_events})
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_rewriting_events_removes_old_parts(tmp_path, small_events):
    io.write_dataset(tmp_path / "ds", {"events": iter([small_events.iloc[:3], small_events.iloc[3:]])})
    io.write_dataset(tmp_path / "ds", {"events": small_events})
    assert len(list((tmp_path / "ds" / "events").glob("*.parquet"))) == 1
    assert len(io.read_table(tmp_path / "ds", "events")) == 10


def test_open_dataset_requires_a_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.json"):
        io.open_dataset(tmp_path)


def test_csv_import_parses_offsets_to_beijing(tmp_path, small_events):
    out = small_events.copy()
    out["ts"] = out["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(tmp_path / "e.csv", index=False)
    back = io.read_events_csv(tmp_path / "e.csv")
    assert str(back["ts"].dtype) == "datetime64[ns, Asia/Shanghai]"
    assert (back["ts"] == small_events["ts"]).all()
    assert back["order_id"].dtype == "Int64"


def test_csv_import_rejects_non_utf8_with_the_byte_offset(tmp_path):
    (tmp_path / "e.csv").write_bytes("id_value\n微信\n".encode("gbk"))
    with pytest.raises(io.CSVImportError, match=r"line 2, byte 11"):
        io.read_events_csv(tmp_path / "e.csv")
