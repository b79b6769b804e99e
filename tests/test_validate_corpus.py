"""A corpus of bad inputs: each becomes a named problem in the report of ``validate``, never a traceback.

One small simulated dataset (beauty, 2000 persons, three events parts) is the base; each
case corrupts a copy of it (or writes a single file) and asserts that the report names
the rule, the column and the row count, and that validate changed no input file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from privdomain import io, schema
from privdomain.cli import app
from privdomain.simulate import load_scenario, simulate
from privdomain.validate import ValidationError, validate, validate_dataset

PRESETS = ["beauty", "tea", "apparel", "eyewear", "sportswear"]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    sc = load_scenario("beauty").replace(block_size=700)
    ds = simulate(sc, persons=2000, seed=3, out=tmp_path_factory.mktemp("base") / "beauty", truth=True,
                  shapley_sample=200)
    # the simulator lists truth/ when it writes the manifest last; a second call lists files written after it
    io.write_manifest(ds.path, {})
    assert len(list((ds.path / "events").glob("*.parquet"))) == 3
    return ds.path


def digest(path: Path) -> dict[str, str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


# --- corrupting helpers -------------------------------------------------------------------


def events(root: Path) -> pd.DataFrame:
    return io.read_table(root, "events")


def put(root: Path, table: str, df: pd.DataFrame, refresh: bool = True) -> None:
    """Write ``df`` as ``table`` (one part for events) and, by default, list it in the manifest."""
    if table == "events":
        for f in (root / "events").glob("*.parquet"):
            f.unlink()
        io._write_parquet(df, root / "events" / "part-00000.parquet")
    elif table.startswith("truth/"):
        io._write_parquet(df, root / f"{table}.parquet")
    else:
        io._write_parquet(df, root / f"{table}.parquet")
    if refresh:
        io.write_manifest(root, {} if table.startswith("truth/") else {table: len(df)})


def edit_events(fn: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], Path]:
    def corrupt(root: Path) -> Path:
        put(root, "events", fn(events(root).copy()))
        return root
    return corrupt


def edit_manifest(fn: Callable[[dict], object]) -> Callable[[Path], Path]:
    def corrupt(root: Path) -> Path:
        m = json.loads((root / io.MANIFEST).read_text())
        out = fn(m)
        (root / io.MANIFEST).write_text(out if isinstance(out, str) else json.dumps(m))
        return root
    return corrupt


def write_bytes(rel: str, data: bytes) -> Callable[[Path], Path]:
    def corrupt(root: Path) -> Path:
        (root / rel).write_bytes(data)
        return root
    return corrupt


def truncate(rel: str) -> Callable[[Path], Path]:
    def corrupt(root: Path) -> Path:
        f = root / rel
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        return root
    return corrupt


def delete(rel: str) -> Callable[[Path], Path]:
    def corrupt(root: Path) -> Path:
        (root / rel).unlink()
        return root
    return corrupt


def copy_part(src: str, dst: str) -> Callable[[Path], Path]:
    def corrupt(root: Path) -> Path:
        shutil.copy(root / src, root / dst)
        return root
    return corrupt


def rows_of(df: pd.DataFrame, tp: str, n: int) -> pd.Index:
    return df.index[df["touchpoint"] == tp][:n]


def _set(df: pd.DataFrame, idx, col: str, value) -> pd.DataFrame:
    df.loc[idx, col] = value
    return df


def csv_file(name: str, fn: Callable[[str], str] | None = None, raw: bytes | None = None,
             frame: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> Callable[[Path], Path]:
    """An events CSV (the first 300 events, ts with +08:00) written next to the dataset, then corrupted."""
    def corrupt(root: Path) -> Path:
        path = root.parent / name
        if raw is not None:
            path.write_bytes(raw)
            return path
        ev = events(root).iloc[:300].copy()
        ev = frame(ev) if frame else ev
        if isinstance(ev["ts"].dtype, pd.DatetimeTZDtype):
            ev["ts"] = ev["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S+08:00")
        text = ev.to_csv(index=False)
        path.write_text(fn(text) if fn else text, encoding="utf-8")
        return path
    return corrupt


def fractional_fen(df: pd.DataFrame) -> pd.DataFrame:
    pay = df.index[df["touchpoint"] == "pay"][:6]
    amount = df["amount_fen"].astype("float64")
    amount[pay] = 19.9 * 100  # 1989.9999999999998: a float yuan amount times 100
    df["amount_fen"] = amount
    return df


def loaded_twice(df: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([df, df], ignore_index=True)


def loaded_twice_new_ids(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.concat([df, df], ignore_index=True)
    out["event_id"] = np.arange(len(out), dtype="int64")
    return out


def persons_in_truth_unknown(root: Path) -> Path:
    st = pd.read_parquet(root / "truth" / "stages.parquet")
    st.loc[st.index[:4], "person_id"] = 10**9
    put(root, "truth/stages", st)
    return root


def assignments_unknown(root: Path) -> Path:
    asg = pd.DataFrame({"person_id": np.array([5, 10**9, 10**9 + 1], dtype="int64"), "experiment": ["e"] * 3,
                        "arm": ["treatment"] * 3,
                        "assigned_at": pd.Series(pd.to_datetime(["2024-03-01"] * 3)).dt.tz_localize(schema.TIMEZONE)})
    put(root, "assignments", asg)
    return root


def symlink_outside(root: Path) -> Path:
    outside = root.parent / "outside.parquet"
    shutil.copy(root / "products.parquet", outside)
    (root / "products.parquet").unlink()
    os.symlink(outside, root / "products.parquet")
    return root


def drop_persons_table(root: Path) -> Path:
    (root / "persons.parquet").unlink()
    m = json.loads((root / io.MANIFEST).read_text())
    del m["row_counts"]["persons"]
    del m["files"]["persons.parquet"]
    (root / io.MANIFEST).write_text(json.dumps(m))
    return root


def shrink_persons(root: Path) -> Path:
    put(root, "persons", pd.read_parquet(root / "persons.parquet").iloc[:-1], refresh=False)
    return root


def _truncated_copy(root: Path) -> Path:
    f = root.parent / "events.parquet"
    data = (root / "events" / "part-00000.parquet").read_bytes()
    f.write_bytes(data[: len(data) // 3])
    return f


def _prices_in_yuan(root: Path) -> Path:
    pr = pd.read_parquet(root / "products.parquet")
    put(root, "products", pr.assign(price_fen=pr["price_fen"] // 100))
    return root


@dataclass(frozen=True)
class Case:
    id: str
    corrupt: Callable[[Path], Path]
    column: str | None  # None: a problem of a file or of the manifest
    rule: str  # a substring of the problem's rule
    rows: int | None = None  # the count the report must give
    file: str = ""  # a substring of the problem's file
    warning: bool = False  # a warning, not a problem


CASES = [
    # --- the manifest
    Case("manifest-missing", delete(io.MANIFEST), None, "no dataset.json"),
    Case("manifest-not-json", write_bytes(io.MANIFEST, b"{\"row_counts\": {"), None, "is not valid JSON"),
    Case("manifest-not-object", write_bytes(io.MANIFEST, b"[1, 2, 3]"), None, "must hold a JSON object, got list"),
    Case("manifest-empty", write_bytes(io.MANIFEST, b""), None, "is empty"),
    Case("manifest-not-utf8", write_bytes(io.MANIFEST, "{\"行\": 1}".encode("gbk")), None, "is not UTF-8"),
    Case("manifest-table-is-a-path", edit_manifest(lambda m: m["row_counts"].update({"../../etc/x": 5})), None,
         "'../../etc/x' is a path"),
    Case("manifest-file-absolute", edit_manifest(lambda m: m["files"].update({"/tmp/x.parquet": 1})), None,
         "an absolute or Windows path"),
    Case("manifest-file-dotdot", edit_manifest(lambda m: m["files"].update({"events/../../x.parquet": 1})), None,
         "no '..'"),
    Case("manifest-unknown-table", edit_manifest(lambda m: m["row_counts"].update({"event": 1})), None,
         "did you mean 'events'"),
    Case("manifest-count-not-integer", edit_manifest(lambda m: m["row_counts"].update({"persons": "2000"})), None,
         "row count '2000' is not a non-negative integer"),
    Case("manifest-counts-disagree", edit_manifest(lambda m: m["row_counts"].update({"persons": 1999})), None,
         "row_counts says 1999 rows for persons but its files entries sum to 2000"),
    Case("manifest-bad-period", edit_manifest(lambda m: m.update({"start": "2024-02-30"})), None,
         "start: '2024-02-30' is not a date"),
    # --- the files
    Case("missing-events-part", delete("events/part-00001.parquet"), None, "missing", file="part-00001"),
    Case("stray-events-part", copy_part("events/part-00000.parquet", "events/part-00007.parquet"), None,
         "stray file", file="events/part-00007.parquet"),
    Case("truncated-events-part", truncate("events/part-00002.parquet"), None, "not a readable Parquet file",
         file="part-00002"),
    Case("zero-byte-events-part", write_bytes("events/part-00000.parquet", b""), None, "is empty (0 bytes)",
         file="part-00000"),
    Case("non-parquet-part", write_bytes("events/part-00001.parquet", b"event_id,ts\n1,2\n"), None,
         "not a readable Parquet file", file="part-00001"),
    Case("rows-differ-from-manifest", shrink_persons, None, "holds 1,999 rows, the manifest says 2,000",
         file="persons.parquet"),
    Case("missing-table-file", delete("products.parquet"), None, "missing", file="products.parquet"),
    Case("symlink-outside-folder", symlink_outside, None, "resolves outside the dataset folder",
         file="products.parquet"),
    Case("required-table-missing", drop_persons_table, None, "required table is missing"),
    Case("truth-file-missing", delete("truth/stages.parquet"), None, "missing", file="truth/stages.parquet"),
    Case("truth-stray-file", copy_part("truth/shapley.parquet", "truth/shapley_old.parquet"), None, "stray file",
         file="truth/shapley_old.parquet"),
    Case("truth-truncated", truncate("truth/persons.parquet"), None, "not a readable Parquet file",
         file="truth/persons.parquet"),
    Case("truth-persons-unknown", persons_in_truth_unknown, "person_id", "not in persons.person_id", 4),
    # --- event rows
    Case("fractional-fen", edit_events(fractional_fen), "amount_fen", "fractional fen", 6),
    Case("negative-amount", edit_events(lambda d: _set(d, rows_of(d, "pay", 3), "amount_fen", -100)), "amount_fen",
         "non-negative amount", 3),
    Case("naive-timestamps", edit_events(lambda d: d.assign(ts=d["ts"].dt.tz_localize(None))), "ts",
         "timezone-aware", None),
    Case("epoch-integer-timestamps", edit_events(lambda d: d.assign(ts=d["ts"].astype("int64") // 10**9)), "ts",
         "numeric timestamps", None),
    Case("text-timestamps", edit_events(lambda d: d.assign(ts=d["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S+08:00"))),
         "ts", "timestamps are text", None),
    Case("outside-manifest-period",
         edit_events(lambda d: _set(d, d.index[:5], "ts", d.loc[d.index[:5], "ts"] + pd.Timedelta(days=400))), "ts",
         "outside the manifest's period", 5),
    Case("channel-inconsistent-with-touchpoint", edit_events(lambda d: _set(d, rows_of(d, "oa_push", 7), "channel",
                                                                         "live")),
         "channel", "oa_push on live", 7),
    Case("order-on-ad-channel", edit_events(lambda d: _set(d, rows_of(d, "pay", 2), "channel", "moments_ad")),
         "channel", "channel inconsistent with touchpoint", 2),
    Case("event-person-not-in-persons", edit_events(lambda d: _set(d, d.index[:3], "person_id", 10**9)),
         "person_id", "not in persons.person_id", 3),
    Case("refund-of-unknown-order", edit_events(lambda d: _set(d, rows_of(d, "refund", 2), "order_id", 10**12)),
         "order_id", "orphan refund", 2),
    Case("product-not-in-products", edit_events(lambda d: _set(d, rows_of(d, "pay", 4), "product_id", 999_999)),
         "product_id", "not in products.product_id", 4),
    Case("campaign-not-in-campaigns",
         edit_events(lambda d: _set(d, rows_of(d, "moments_ad_view", 5), "campaign_id", 999_999)),
         "campaign_id", "not in campaigns.campaign_id", 5),
    Case("assignment-person-unknown", assignments_unknown, "person_id", "not in persons.person_id", 2),
    Case("duplicate-event-id", edit_events(lambda d: _set(d, d.index[[10, 20]], "event_id", int(d["event_id"][5]))),
         "event_id", "duplicate event id", 3),
    Case("file-loaded-twice", edit_events(loaded_twice), "event_id", "was a file loaded twice?", None),
    Case("file-loaded-twice-new-ids", edit_events(loaded_twice_new_ids), "", "loaded twice with new event ids",
         None),
    Case("touchpoint-wrong-case", edit_events(lambda d: _set(d, rows_of(d, "pay", 5), "touchpoint", "Pay")),
         "touchpoint", "'Pay' (did you mean 'pay'?)", 5),
    Case("null-person-id", edit_events(lambda d: d.assign(person_id=d["person_id"].astype("Int64").mask(
        d.index.isin(d.index[:2])))), "person_id", "null where a value is required", 2),
    Case("text-column-holds-lists", edit_events(lambda d: d.assign(id_value=[[1, 2]] * len(d))), "id_value",
         "values must be text, got ndarray", None),
    Case("integer-column-holds-booleans", edit_events(lambda d: d.assign(person_id=d["person_id"] % 2 == 0)),
         "person_id", "wrong dtype bool: must be integers", None),
    Case("amounts-in-yuan", edit_events(lambda d: d.assign(amount_fen=d["amount_fen"] // 100)), "amount_fen",
         "look like yuan", None, warning=True),
    Case("prices-in-yuan", lambda root: _prices_in_yuan(root), "price_fen", "prices look like yuan", 5,
         warning=True),
    # --- single files
    Case("csv-zero-byte", csv_file("events.csv", raw=b""), None, "the file is empty (0 bytes)"),
    Case("csv-header-only", csv_file("events.csv", raw=(",".join(schema.EVENTS.columns) + "\n").encode()), None,
         "table is empty"),
    Case("csv-fractional-fen", csv_file("events.csv", frame=fractional_fen), "amount_fen", "fractional fen", None),
    Case("csv-naive-timestamps", csv_file("events.csv", lambda t: t.replace("+08:00", "", 4)), "ts",
         "naive timestamp", 4),
    Case("csv-unparseable-timestamps", csv_file("events.csv", lambda t: t.replace("2024-", "20x4-", 3)), "ts",
         "unparseable timestamp", 3),
    Case("csv-is-an-excel-workbook", csv_file("events.csv", raw=b"PK\x03\x04" + b"\x00" * 60), None,
         "Excel workbook"),
    Case("csv-binary-junk", csv_file("events.csv", raw=b"abc\x00\x01\x02" * 50), None, "binary data"),
    Case("csv-ragged-rows", csv_file("events.csv", raw=b"a,b\n1,2\n3,4,5,6\n"), None, "not a valid CSV file"),
    Case("csv-not-events", csv_file("events.csv", raw=b"name,price\ntea,19.9\n"), "ts",
         "required column is missing"),
    Case("txt-file", csv_file("events.txt", raw=b"hello, this is not data\n"), None, "unsupported file type '.txt'"),
    Case("xlsx-file", csv_file("events.xlsx", raw=b"PK\x03\x04" + b"\x00" * 60), None,
         "unsupported file type '.xlsx'"),
    Case("parquet-truncated-file", lambda root: _truncated_copy(root), None,
         "not a readable Parquet file"),
]


def test_the_corpus_is_large_and_its_ids_unique():
    assert len(CASES) >= 35
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_named_problem_and_no_file_changes(case, base, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(base, root, symlinks=True)
    target = case.corrupt(root)
    before = {**digest(root), **(digest(target) if target != root else {})}
    report = validate_dataset(target)
    after = {**digest(root), **(digest(target) if target != root else {})}
    assert after == before, "validate changed an input file"
    found = report.warnings if case.warning else report.problems
    text = report.summary()
    assert "Traceback" not in text
    if not case.warning:
        assert not report.ok, text
    matches = [p for p in found if case.rule in p.rule and case.file in p.file
               and (case.column is None or p.column == case.column)]
    assert matches, f"no problem with rule {case.rule!r} (column {case.column!r}) in:\n{text}"
    if case.rows is not None:
        assert matches[0].rows == case.rows, str(matches[0])
        assert f"{case.rows} row" in str(matches[0])


@pytest.mark.parametrize("case", [c for c in CASES if not c.warning and c.id.startswith(("manifest-", "stray",
                                                                                            "truncated", "csv-zero",
                                                                                            "fractional", "txt"))],
                         ids=lambda c: c.id)
def test_the_cli_prints_the_problem_and_exits_1_without_a_traceback(case, base, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(base, root, symlinks=True)
    target = case.corrupt(root)
    before = digest(root)
    result = CliRunner().invoke(app, ["validate", str(target)])
    assert result.exit_code == 1, result.output
    assert case.rule in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert digest(root) == before


def test_validate_raises_validation_error_naming_the_rule(base, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(base, root)
    edit_events(fractional_fen)(root)
    with pytest.raises(ValidationError, match=r"events.amount_fen: fractional fen.*: 6 rows break it") as err:
        validate(root)
    assert isinstance(err.value, ValueError)


# --- no false positives -----------------------------------------------------------------


def test_the_base_dataset_is_clean(base):
    report = validate_dataset(base)
    assert report.ok, report.summary()
    assert report.warnings == [], report.summary()
    assert report.row_counts["persons"] == 2000


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_simulates_a_dataset_without_problems(preset, tmp_path):
    ds = simulate(preset, persons=1500, seed=11, out=tmp_path / preset, truth=True, shapley_sample=100)
    report = validate_dataset(ds.path)
    assert report.ok, report.summary()
    assert not [w for w in report.warnings if w.table != "truth" and w.table != io.MANIFEST], report.summary()
    io.write_manifest(ds.path, {})  # with truth/ listed too, nothing to warn about
    report = validate_dataset(ds.path)
    assert report.ok and report.warnings == [], report.summary()


def test_a_nullable_float_amount_column_of_whole_numbers_is_fine(base, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(base, root)
    edit_events(lambda d: d.assign(amount_fen=d["amount_fen"].astype("float64")))(root)
    assert str(pd.read_parquet(root / "events").dtypes["amount_fen"]) == "float64"
    report = validate_dataset(root)
    assert report.ok, report.summary()


def test_persons_without_name_and_phone_are_valid(base, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(base, root)
    put(root, "persons", pd.read_parquet(root / "persons.parquet").drop(columns=["name", "phone"]))
    report = validate_dataset(root)
    assert report.ok, report.summary()


def test_csv_with_mixed_offsets_is_read_as_instants(base, tmp_path):
    ev = events(base).iloc[:200].copy()
    utc = ev["ts"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    local = ev["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S+08:00")
    text = ev.assign(ts=local.where(ev.index % 2 == 0, utc))
    path = tmp_path / "mixed.csv"
    text.to_csv(path, index=False)
    report = validate_dataset(path)
    assert report.ok, report.summary()
    back = io.read_events_csv(path)
    assert (back["ts"] == ev["ts"].reset_index(drop=True)).all()


def test_an_object_column_of_mixed_time_zones_converts_exactly():
    from privdomain.examples import events_frame

    ev = events_frame([(1, "2024-05-01 09:00", "mp_visit"), (1, "2024-05-01 10:00", "product_view")])
    mixed = ev.assign(ts=pd.Series([ev["ts"][0].tz_convert("UTC"), ev["ts"][1]], dtype=object))
    assert mixed["ts"].dtype == object
    assert validate(mixed).ok
    half_naive = ev.assign(ts=pd.Series([ev["ts"][0].tz_localize(None), ev["ts"][1]], dtype=object))
    probs = validate(half_naive, raise_on_error=False).problems
    assert [(p.column, p.rows, p.examples) for p in probs] == [("ts", 1, (0,))]
    assert "naive" in probs[0].rule
