"""Every bad input gets a clear message naming table, column, rule, row count and examples."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import privdomain as pdm
from privdomain import io
from privdomain.cli import app
from privdomain.examples import events_frame
from privdomain.validate import ValidationError, validate

runner = CliRunner()


def problems(df, table="events"):
    return validate(df, table, raise_on_error=False).problems


def only(df, table="events"):
    probs = problems(df, table)
    assert len(probs) == 1, [str(p) for p in probs]
    return probs[0]


def test_good_events_pass_and_report_row_counts(small_events):
    report = validate(small_events)
    assert report.ok
    assert report.row_counts == {"events": len(small_events)}


def test_missing_column_is_named(small_events):
    p = only(small_events.drop(columns=["touchpoint"]))
    assert (p.column, p.rule) == ("touchpoint", "required column is missing")


def test_extra_column_is_named(small_events):
    p = only(small_events.assign(colour="red"))
    assert p.column == "colour" and p.rule.startswith("unknown column")


def test_wrong_dtype_counts_the_rows_that_are_not_integers(small_events):
    df = small_events.copy()
    df["person_id"] = df["person_id"].astype(object)
    df.loc[[2, 5], "person_id"] = "abc"
    p = only(df)
    assert p.column == "person_id" and "wrong dtype" in p.rule
    assert p.rows == 2 and p.examples == (2, 5)


def test_naive_timestamps_are_rejected(small_events):
    df = small_events.copy()
    df["ts"] = df["ts"].dt.tz_localize(None)
    p = only(df)
    assert p.column == "ts" and "timezone-aware" in p.rule and p.rows == len(df)


def test_unparseable_and_naive_text_timestamps_are_counted_separately(small_events):
    df = small_events.copy()
    text = df["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S+08:00").astype(object)
    text.iloc[1] = "yesterday"
    text.iloc[3] = "2024-05-01 10:00:00"
    df["ts"] = text
    probs = {p.rule.split(":")[0]: p for p in problems(df)}
    assert probs["unparseable timestamp"].examples == (1,)
    assert probs["naive timestamp"].examples == (3,)


def test_null_where_not_allowed(small_events):
    df = small_events.copy()
    df["id_value"] = df["id_value"].astype(object)
    df.loc[4, "id_value"] = None
    p = only(df)
    assert (p.column, p.rows, p.examples) == ("id_value", 1, (4,))
    assert "null" in p.rule


def test_unknown_touchpoint(small_events):
    df = small_events.copy()
    df.loc[[0, 7], "touchpoint"] = "tiktok_ad"
    p = only(df)
    assert (p.column, p.rows, p.examples) == ("touchpoint", 2, (0, 7))
    assert "not allowed" in p.rule


def test_negative_amount(small_events):
    df = small_events.copy()
    df.loc[5, "amount_fen"] = -100
    p = only(df)
    assert (p.column, p.rows, p.examples) == ("amount_fen", 1, (5,))
    assert "non-negative" in p.rule


def test_duplicate_event_ids(small_events):
    df = small_events.copy()
    df.loc[3, "event_id"] = df.loc[2, "event_id"]
    p = only(df)
    assert (p.column, p.rule, p.rows, p.examples) == ("event_id", "duplicate event id", 2, (2, 3))


def test_orphan_refund(small_events):
    df = small_events.copy()
    df.loc[8, "order_id"] = 999
    p = only(df)
    assert p.column == "order_id" and "orphan" in p.rule and p.examples == (8,)


def test_order_row_needs_an_order_id_and_amount(small_events):
    df = small_events.copy()
    df.loc[4, "order_id"] = pd.NA
    df.loc[5, "amount_fen"] = pd.NA
    rules = {p.column: p for p in problems(df)}
    assert rules["order_id"].examples == (4,)
    assert rules["amount_fen"].examples == (5,)


def test_empty_events_table():
    p = only(events_frame([]))
    assert p.rule == "table is empty"


def test_several_problems_are_all_reported_at_once(small_events):
    df = small_events.copy()
    df.loc[0, "touchpoint"] = "nope"
    df.loc[5, "amount_fen"] = -1
    df.loc[3, "event_id"] = df.loc[2, "event_id"]
    with pytest.raises(ValidationError) as err:
        validate(df)
    text = str(err.value)
    assert "events.touchpoint" in text and "events.amount_fen" in text and "events.event_id" in text
    assert text.startswith("events: 3 problems")


def test_other_tables_have_their_own_rules():
    products = pd.DataFrame({"product_id": [1, 2], "name": ["a", "b"], "category": ["x", "y"], "price_fen": [5, 6]})
    assert validate(products, "products").ok
    p = only(products.assign(product_id=[1, 1]), "products")
    assert (p.column, p.rows) == ("product_id", 2)


def test_validate_does_not_mutate_its_input(small_events):
    before = small_events.copy()
    validate(small_events)
    pd.testing.assert_frame_equal(small_events, before)


# --- the command line -------------------------------------------------------


def write_csv(df, path, encoding="utf-8"):
    out = df.copy()
    out["ts"] = out["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S+08:00")
    path.write_bytes(out.to_csv(index=False).encode(encoding))
    return path


def test_cli_good_dataset_prints_summary_and_exits_0(tmp_path, small_events):
    io.write_dataset(tmp_path / "ds", {"events": small_events, "persons": _persons([1, 2, 3])})
    result = runner.invoke(app, ["validate", str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "events: 10 rows" in result.output


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (lambda df: df.drop(columns=["channel"]), "events.channel: required column is missing"),
        (lambda df: df.assign(extra=1), "events.extra: unknown column"),
        (lambda df: df.assign(touchpoint=df["touchpoint"].replace("oa_push", "fax")), "events.touchpoint: value not allowed"),
        (lambda df: df.assign(amount_fen=df["amount_fen"].fillna(0) * -1 - 1), "events.amount_fen: non-negative amount"),
        (lambda df: df.assign(event_id=0), "events.event_id: duplicate event id: 10 rows break it"),
        (lambda df: df.assign(order_id=df["order_id"].where(df["touchpoint"] != "refund", 77)), "orphan refund"),
    ],
    ids=["missing-column", "extra-column", "unknown-touchpoint", "negative-amount", "duplicate-ids", "orphan-refund"],
)
def test_cli_bad_csv_names_the_rule_and_exits_1(tmp_path, small_events, breakage, expected):
    path = write_csv(breakage(small_events), tmp_path / "events.csv")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output


def test_cli_naive_and_unparseable_csv_timestamps(tmp_path, small_events):
    path = write_csv(small_events, tmp_path / "events.csv")
    text = path.read_text().replace("2024-05-01T09:05:00+08:00", "2024-05-01 09:05:00")
    text = text.replace("2024-05-02T07:59:00+08:00", "not a time")
    path.write_text(text)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "events.ts: unparseable timestamp: 1 row breaks it (row 9)" in result.output
    assert "events.ts: naive timestamp" in result.output


def test_cli_null_in_required_column(tmp_path, small_events):
    df = small_events.copy()
    df["id_value"] = df["id_value"].astype(object)
    df.loc[[1, 2], "id_value"] = None
    result = runner.invoke(app, ["validate", str(write_csv(df, tmp_path / "e.csv"))])
    assert result.exit_code == 1
    assert "events.id_value: null where a value is required: 2 rows break it (rows 1, 2)" in result.output


def test_cli_non_utf8_csv(tmp_path, small_events):
    df = small_events.copy()
    df["id_value"] = "微信用户"
    path = write_csv(df, tmp_path / "gbk.csv", encoding="gbk")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "not valid utf-8 text" in result.output


def test_cli_empty_table(tmp_path):
    (tmp_path / "e.csv").write_text(",".join(pdm.schema.EVENTS.columns) + "\n")
    result = runner.invoke(app, ["validate", str(tmp_path / "e.csv")])
    assert result.exit_code == 1 and "events: table is empty" in result.output


def test_cli_dataset_manifest_disagreeing_with_files(tmp_path, small_events):
    ds = io.write_dataset(tmp_path / "ds", {"events": small_events, "persons": _persons([1, 2, 3])})
    manifest = json.loads((ds.path / "dataset.json").read_text())
    manifest["row_counts"]["events"] = 11
    (ds.path / "dataset.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["validate", str(ds.path)])
    assert result.exit_code == 1
    assert "row_counts says 11 rows for events but its files entries sum to 10" in result.output
    del manifest["files"]  # a manifest written before files were listed: table totals are compared
    (ds.path / "dataset.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["validate", str(ds.path)])
    assert result.exit_code == 1 and "manifest says 11 rows, files hold 10" in result.output


def test_cli_missing_path(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "no such file or folder" in result.output


def test_every_command_has_help():
    for args in (["--help"], ["validate", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.output


def _persons(ids):
    n = len(ids)
    return pd.DataFrame({
        "person_id": np.array(ids, dtype="int64"),
        "gender": ["female"] * n, "age_band": ["25-34"] * n, "province": ["广东"] * n, "city": ["深圳"] * n,
        "city_tier": np.ones(n, dtype="int64"), "occupation": ["教师"] * n, "device": ["ios"] * n,
        "member_level": ["none"] * n,
        "crm_join_date": pd.Series([pd.NaT] * n, dtype="datetime64[ns, Asia/Shanghai]"),
        "name": ["张三"] * n, "phone": ["13800000000"] * n, "acquisition_channel": ["moments_ad"] * n,
    })

