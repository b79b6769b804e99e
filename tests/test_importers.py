"""Importers: bring your own data (``privdomain import KIND SRC... --out DIR``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from privdomain import attribution, clv, events, importers, io, schema
from privdomain.boards import channel_cube, funnel, officialaccount
from privdomain.cli import app
from privdomain.clv import rfm
from privdomain.errors import DataError, DatasetError, PrivdomainError, UsageError
from privdomain.importers import export
from privdomain.validate import validate

DATA = Path(__file__).parent / "data"
CDNOW = DATA / "cdnow_sample.txt"
YOUSHU = DATA / "youshu_orders_sample.jsonl"
MP = DATA / "mp_orders_sample.csv"
CLICKS = DATA / "clickstream_gb18030.csv"
CDNOW_ARGS = dict(columns=["master_id", "customer", "date", "cds", "dollars"], sep="whitespace",
                  time_format="%Y%m%d", unit="yuan", currency="USD", tz="UTC")
runner = CliRunner()


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def hashes(*paths: Path) -> dict[str, str]:
    return {str(p): sha(p) for p in paths}


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# ---------------------------------------------------------------------------------- CDNOW


@pytest.fixture(scope="module")
def cdnow_ds(tmp_path_factory) -> Path:
    before = sha(CDNOW)
    out = tmp_path_factory.mktemp("cdnow") / "ds"
    importers.import_table(CDNOW, out, "ts=date,person_id=customer,amount=dollars", **CDNOW_ARGS)
    assert sha(CDNOW) == before
    return out


def test_cdnow_through_import_table_reproduces_the_published_bgnbd_estimates(cdnow_ds):
    summary = rfm.rfm_summary(cdnow_ds, as_of="1997-09-30", time_unit="W", merge_period="D",
                              monetary="repeat")
    m = clv.BetaGeo().fit(summary)
    assert [float(f"{m.params_[k]:.3g}") for k in ("r", "alpha", "a", "b")] == [0.243, 4.41, 0.793, 2.43]
    assert round(m.log_likelihood_, 1) == -9582.4 and m.n_ == 2357


def test_an_import_passes_validate_and_lists_sources_with_hashes_and_kept_rows(cdnow_ds):
    assert validate(cdnow_ds).ok
    man = io.read_manifest(cdnow_ds)
    src = man["import"]["sources"][0]
    assert src["file"] == CDNOW.name and src["sha256"] == sha(CDNOW) and src["rows"] == 6919
    assert man["import"]["rows_read"] == man["import"]["rows_kept"] == 6919 and man["import"]["dropped"] == {}
    assert man["currency"] == "USD" and man["source_timezone"] == "UTC" and man["purchase_event"] == "pay"


def test_amounts_in_a_major_unit_become_exact_minor_units(cdnow_ds):
    ev = io.read_table(cdnow_ds, "events")
    raw = pd.read_csv(CDNOW, sep=r"\s+", header=None, dtype=str)[4]
    want = sorted(int(v.replace(".", "")) for v in raw)  # every CDNOW amount has two decimals
    assert sorted(ev["amount_fen"].astype(int)) == want


def test_string_person_ids_keep_their_text_and_leading_zeros(cdnow_ds):
    ev = io.read_table(cdnow_ds, "events")
    assert set(ev["id_value"]) >= {"0001", "0002"} and (ev["id_type"] == "user_id").all()
    assert ev.groupby("person_id")["id_value"].nunique().max() == 1


# ------------------------------------------------------------------------ money and errors


def test_to_minor_units_is_exact_decimal_arithmetic():
    s = pd.Series(["0.1", "0.20", "19.99", "1,299.00", "¥5", None, 1989.99])
    got = importers.to_minor_units(s, digits=2, unit="major", where="f", column="c").tolist()
    assert got == [10, 20, 1999, 129900, 500, pd.NA, 198999]


def test_fractional_minor_units_are_an_error_naming_column_rule_and_count(tmp_path):
    src = write_csv(tmp_path / "o.csv", "时间,用户,金额\n2024-01-01 10:00,a,19.999\n2024-01-02 10:00,b,1.005\n"
                                        "2024-01-03 10:00,c,2.50\n")
    before = hashes(src)
    with pytest.raises(DataError) as e:
        importers.import_table(src, tmp_path / "ds", "ts=时间,person_id=用户,amount=金额", unit="yuan")
    assert e.value.column == "金额" and e.value.count == 2 and "whole minor units" in str(e.value)
    assert not (tmp_path / "ds").exists() and hashes(src) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds.import-")]


def test_fen_amounts_must_be_whole(tmp_path):
    src = write_csv(tmp_path / "o.csv", "ts,uid,fee\n2024-01-01 10:00,a,990.5\n")
    with pytest.raises(DataError, match=r"'fee' must be whole minor units .*1 row"):
        importers.import_table(src, tmp_path / "ds", "ts=ts,person_id=uid,amount=fee", unit="fen")


def test_unknown_column_in_the_mapping_suggests_the_closest(tmp_path):
    with pytest.raises(PrivdomainError, match=r"person_id is mapped to column 'custmer'; did you mean 'customer'\?"):
        importers.import_table(CDNOW, tmp_path / "ds", "ts=date,person_id=custmer", **CDNOW_ARGS)


def test_unknown_mapping_field_is_a_usage_error_with_a_suggestion(tmp_path):
    with pytest.raises(UsageError, match=r"unknown mapping field 'amont'; did you mean 'amount'\?"):
        importers.import_table(CDNOW, tmp_path / "ds", "ts=date,person_id=customer,amont=dollars", **CDNOW_ARGS)
    with pytest.raises(UsageError, match="needs ts and person_id"):
        importers.import_table(CDNOW, tmp_path / "ds", "person_id=customer", **CDNOW_ARGS)
    with pytest.raises(UsageError, match="not FIELD=COLUMN"):
        importers.parse_pairs("ts=date,person_id")


def test_unparseable_time_names_column_format_and_row_count(tmp_path):
    src = write_csv(tmp_path / "o.csv", "t,u,a\n2024-01-01 10:00,a,1\nyesterday,b,2\n2024-13-45,c,3\n")
    with pytest.raises(DataError) as e:
        importers.import_table(src, tmp_path / "ds", "ts=t,person_id=u,amount=a")
    assert e.value.column == "t" and e.value.count == 2 and "must be a time" in str(e.value)
    assert "yesterday" in str(e.value)


def test_wall_clock_times_are_read_in_the_stated_zone(tmp_path):
    src = write_csv(tmp_path / "o.csv", "t,u,a\n2024-01-01 16:30:00,a,1\n")
    importers.import_table(src, tmp_path / "utc", "ts=t,person_id=u,amount=a", tz="UTC")
    importers.import_table(src, tmp_path / "bj", "ts=t,person_id=u,amount=a")
    utc = io.read_table(tmp_path / "utc", "events")["ts"][0]
    bj = io.read_table(tmp_path / "bj", "events")["ts"][0]
    assert str(utc) == "2024-01-02 00:30:00+08:00" and str(bj) == "2024-01-01 16:30:00+08:00"


def test_rows_without_person_id_are_dropped_and_counted_never_silently(tmp_path):
    src = write_csv(tmp_path / "o.csv", "t,u,a\n2024-01-01 10:00,a,1\n2024-01-01 11:00,,2\n2024-01-01 12:00, ,3\n")
    r = importers.import_table(src, tmp_path / "ds", "ts=t,person_id=u,amount=a")
    assert r.dropped == {"no person id": 2} and r.rows_kept == 1 and r.rows_read == 3
    assert io.read_manifest(tmp_path / "ds")["import"]["dropped"] == {"no person id": 2}
    assert "2 no person id" in r.summary()


def test_an_event_name_outside_the_vocabulary_must_be_declared(tmp_path):
    src = write_csv(tmp_path / "c.csv", "t,u,e,a\n2024-01-01 10:00,a,view,\n2024-01-01 10:05,a,purchase,9.9\n")
    with pytest.raises(DataError) as e:
        importers.import_table(src, tmp_path / "ds", "ts=t,person_id=u,event=e,amount=a", unit="yuan")
    assert e.value.column == "e" and "must be a known event" in str(e.value) and "--touchpoint" in str(e.value)
    r = importers.import_table(src, tmp_path / "ds", "ts=t,person_id=u,event=e,amount=a", unit="yuan",
                               purchase_event="purchase", touchpoints={"view": "web"})
    assert validate(r.dataset.path).ok
    assert events.check(r.dataset.path).touchpoints == {"view": 1, "pay": 1}
    man = io.read_manifest(r.dataset.path)
    assert man["touchpoints"] == {"view": "web"} and man["source_events"] == {"purchase": "pay"}


def test_gb18030_csv_is_detected_and_a_wrong_declared_encoding_is_named(tmp_path):
    before = hashes(CLICKS)
    r = importers.import_table(CLICKS, tmp_path / "ds", "ts=时间,person_id=用户ID,event=事件,amount=金额,order_id=订单号",
                               unit="yuan", purchase_event="支付", order_event="下单",
                               touchpoints={"浏览": "web", "加购": "web"})
    assert validate(r.dataset.path).ok and r.rows_kept == 100
    assert importers.detect_encoding(CLICKS) == "gb18030"
    with pytest.raises(PrivdomainError, match="not valid text in declared encoding utf-8: byte"):
        importers.import_table(CLICKS, tmp_path / "ds2", "ts=时间,person_id=用户ID", encoding="utf-8")
    assert hashes(CLICKS) == before


def test_parquet_and_small_chunks_give_the_same_dataset_as_csv(tmp_path):
    src = write_csv(tmp_path / "o.csv", "t,u,a,o\n" + "".join(
        f"2024-01-{1 + i % 28:02d} 10:00,u{i % 7},{i}.5,ord{i}\n" for i in range(50)))
    pq_src = tmp_path / "o.parquet"
    pd.read_csv(src, dtype=str).to_parquet(pq_src)
    a = importers.import_table(src, tmp_path / "a", "ts=t,person_id=u,amount=a,order_id=o", unit="yuan")
    b = importers.import_table(pq_src, tmp_path / "b", "ts=t,person_id=u,amount=a,order_id=o", unit="yuan",
                               chunk_rows=7)
    ea, eb = io.read_table(a.dataset.path, "events"), io.read_table(b.dataset.path, "events")
    pd.testing.assert_frame_equal(ea, eb)
    assert len(list((b.dataset.path / "events").glob("*.parquet"))) == 8


def test_a_folder_the_import_did_not_write_is_refused_untouched(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="holds files an import did not write"):
        importers.import_table(CDNOW, out, "ts=date,person_id=customer,amount=dollars", **CDNOW_ARGS)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_id_link_columns_unify_persons(tmp_path):
    src = write_csv(tmp_path / "o.csv", "t,member,union,a\n2024-01-01 10:00,m1,U1,1\n2024-01-02 10:00,m2,U1,2\n"
                                        "2024-01-03 10:00,m3,,3\n")
    r = importers.import_table(src, tmp_path / "ds", "ts=t,person_id=member,unionid=union,amount=a",
                               id_type="member_id")
    ev = io.read_table(r.dataset.path, "events").sort_values("ts")
    assert ev["person_id"].tolist()[0] == ev["person_id"].tolist()[1] != ev["person_id"].tolist()[2]
    assert r.persons == 2 and validate(r.dataset.path).ok


def test_vocabulary_reads_the_manifest_and_refuses_unknown_names():
    v = schema.vocabulary({"currency": "usd", "touchpoints": {"view": "web"}, "purchase_event": "pay"})
    assert (v.currency, v.minor_per_major, v.channel_of()["view"]) == ("USD", 100, "web")
    assert schema.vocabulary(currency="JPY").minor_per_major == 1
    with pytest.raises(UsageError, match="unknown time zone"):
        schema.vocabulary(timezone="Mars/Olympus")
    with pytest.raises(UsageError, match="touchpoints must map"):
        schema.vocabulary({"touchpoints": ["view"]})


# ----------------------------------------------------------------------------- Youshu orders


@pytest.fixture(scope="module")
def youshu_ds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("youshu") / "ds"
    importers.import_youshu_orders(YOUSHU, out)
    return out


def test_youshu_status_codes_become_order_pay_and_refund_events(youshu_ds):
    assert validate(youshu_ds).ok
    ev = io.read_table(youshu_ds, "events")
    per_order = ev.groupby("order_id")["touchpoint"].apply(lambda s: ",".join(sorted(s)))
    assert sorted(per_order) == sorted(["order", "order,pay", "order,pay", "order,pay,refund", "order,pay",
                                        "order,pay"])
    pays = ev[ev.touchpoint == "pay"].sort_values("ts")
    assert pays["amount_fen"].tolist() == [15980, 10, 29900, 5900, 10000]  # payment_amount, in fen exactly
    assert sorted(ev.loc[ev.touchpoint == "pay", "channel"]) == ["guide", "live", "mini_program", "mini_program",
                                                                 "store"]


def test_youshu_user_info_ids_are_linked_and_unified_and_phones_hashed(youshu_ds):
    ev = io.read_table(youshu_ds, "events")
    links = io.read_table(youshu_ds, "id_links")
    assert "13800138000" not in set(links["id_value_a"]) | set(links["id_value_b"])
    # orders 1-3 share UNION_A / one phone; order 6 shares member M0001 with order 3; 4 and 5 share an openid
    assert ev["person_id"].nunique() == 2
    man = io.read_manifest(youshu_ds)
    assert man["import"]["notes"] == {"amount chain does not add up (kept)": 1,
                                      "status 1280 refunding: paid, refund not complete": 1}
    assert man["wxapp_scenes"]["1001"] == 2


def test_unknown_youshu_status_code_names_the_code_and_count_and_can_be_mapped(tmp_path):
    lines = YOUSHU.read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[0])
    rec["order_status"] = "1130"
    src = tmp_path / "o.jsonl"
    src.write_text("\n".join([json.dumps(rec), *lines[1:]]) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        importers.import_youshu_orders(src, tmp_path / "ds")
    assert e.value.column == "order_status" and e.value.count == 1 and "1130" in str(e.value)
    r = importers.import_youshu_orders(src, tmp_path / "ds", status_map={"1130": "order"})
    assert validate(r.dataset.path).ok


def test_youshu_csv_with_flat_fields_reads_like_json_lines(tmp_path):
    src = write_csv(tmp_path / "o.csv", "external_order_id,create_time,pay_time,order_status,order_amount,"
                                        "payment_amount,user_info.open_id,user_info.union_id,order_source\n"
                                        "A1,1714528800000,1714528860000,1180,19.90,19.90,o1,U1,wxapp\n"
                                        "A2,1714615200000,,1110,5.00,,o2,U1,wxapp\n")
    r = importers.import_youshu_orders(src, tmp_path / "ds")
    ev = io.read_table(r.dataset.path, "events")
    assert validate(r.dataset.path).ok and ev["person_id"].nunique() == 1
    assert ev.loc[ev.touchpoint == "pay", "amount_fen"].tolist() == [1990]


# --------------------------------------------------------------------------------- MP orders


def test_mp_orders_export_reads_statuses_fees_and_beijing_times(tmp_path):
    before = hashes(MP)
    r = importers.import_mp_orders(MP, tmp_path / "ds")
    assert validate(r.dataset.path).ok and hashes(MP) == before
    ev = io.read_table(r.dataset.path, "events")
    assert ev.groupby("touchpoint").size().to_dict() == {"order": 4, "pay": 3, "refund": 1}
    assert r.dropped == {"no person id": 1}  # order 4200005 carries no openid or unionid
    pay = ev[ev.touchpoint == "pay"].sort_values("ts")
    assert str(pay["ts"].iloc[0]) == "2024-06-01 10:01:00+08:00"
    assert ev.groupby("order_id")["person_id"].first().nunique() == 2


# ------------------------------------------------------------------------------ round trips


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    import privdomain as pdm

    return pdm.simulate("beauty", persons=1500, seed=4, out=tmp_path_factory.mktemp("sim") / "ds", truth=False).path


def _rfm(ds: Path) -> pd.DataFrame:
    s = rfm.rfm_summary(ds, time_unit="D").drop(columns="person_id")
    return s.sort_values(list(s.columns)).reset_index(drop=True)


def _pay_by_channel(ds: Path) -> pd.DataFrame:
    ev = io.read_table(ds, "events")
    pay = ev[ev.touchpoint == "pay"]
    return pay.groupby("channel")["amount_fen"].agg(["count", "sum"]).astype("int64")


def test_table_round_trip_gives_equal_funnel_rfm_channel_cube_and_attribution(simulated, tmp_path):
    csv = export.export_table(simulated, tmp_path / "events.csv")
    r = importers.import_table(csv, tmp_path / "ds", export.TABLE_MAPPING, unit="yuan")
    ds = r.dataset.path
    assert validate(ds).ok
    steps = ["mp_visit", "add_to_cart", "order", "pay"]
    pd.testing.assert_frame_equal(funnel.funnel(simulated, steps, window="7D"), funnel.funnel(ds, steps, window="7D"))
    pd.testing.assert_frame_equal(_rfm(simulated), _rfm(ds))
    pd.testing.assert_frame_equal(channel_cube.channel_cube(simulated), channel_cube.channel_cube(ds))
    pd.testing.assert_frame_equal(attribution.attribute(simulated), attribution.attribute(ds))


@pytest.mark.parametrize("kind", ["youshu-orders", "mp-orders"])
def test_order_export_round_trip_gives_equal_rfm_order_funnel_and_paid_gmv(simulated, tmp_path, kind):
    if kind == "youshu-orders":
        src = export.export_youshu_orders(simulated, tmp_path / "orders.jsonl")
        r = importers.import_youshu_orders(src, tmp_path / "ds")
    else:
        src = export.export_mp_orders(simulated, tmp_path / "orders.csv")
        r = importers.import_mp_orders(src, tmp_path / "ds")
    ds = r.dataset.path
    assert validate(ds).ok
    pd.testing.assert_frame_equal(_rfm(simulated), _rfm(ds))
    steps = ["order", "pay", "refund"]
    pd.testing.assert_frame_equal(funnel.funnel(simulated, steps, window="30D"),
                                  funnel.funnel(ds, steps, window="30D"))
    if kind == "youshu-orders":  # the Youshu record carries the order's channel; the MP export does not
        pd.testing.assert_frame_equal(_pay_by_channel(simulated), _pay_by_channel(ds))
    else:
        assert _pay_by_channel(simulated)["sum"].sum() == _pay_by_channel(ds)["sum"].sum()


# ------------------------------------------------------------------------------------- CLI


def test_cli_import_table_writes_a_valid_dataset_and_reports_kept_rows(tmp_path):
    out = tmp_path / "ds"
    res = runner.invoke(app, ["import", "table", str(CDNOW), "--out", str(out), "--map",
                              "ts=date,person_id=customer,amount=dollars", "--columns",
                              "master_id,customer,date,cds,dollars", "--sep", "whitespace", "--time-format",
                              "%Y%m%d", "--unit", "yuan", "--currency", "USD", "--tz", "UTC"])
    assert res.exit_code == 0, res.output
    assert "6,919 source rows read, 6,919 kept, dropped: none" in res.output
    assert validate(out).ok


def test_cli_import_reads_a_yaml_mapping_file(tmp_path):
    m = tmp_path / "map.yaml"
    m.write_text("map:\n  ts: 时间\n  person_id: 用户ID\n  event: 事件\n  amount: 金额\n  order_id: 订单号\n"
                 "unit: yuan\npurchase_event: 支付\norder_event: 下单\ntouchpoints:\n  浏览: web\n  加购: web\n",
                 encoding="utf-8")
    res = runner.invoke(app, ["import", "table", str(CLICKS), "--out", str(tmp_path / "ds"), "--map", str(m)])
    assert res.exit_code == 0, res.output
    assert io.read_manifest(tmp_path / "ds")["source_events"] == {"支付": "pay", "下单": "order"}


def test_cli_import_errors_are_one_line_naming_the_column(tmp_path):
    res = runner.invoke(app, ["import", "youshu-orders", str(MP), "--out", str(tmp_path / "ds")])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "no 'external_order_id'" in lines[0] and "a Youshu order record" in lines[0]
    assert "mp_orders_sample.csv" in lines[0]


# ---------------------------------------------------------------------------- WeCom contacts

WECOM = DATA / "wecom_contacts_sample.jsonl"


def test_wecom_contacts_become_wecom_add_events_by_guide_and_unionid_links(tmp_path):
    before = hashes(WECOM)
    r = importers.import_wecom_contacts(WECOM, tmp_path / "ds")
    assert validate(r.dataset.path).ok and hashes(WECOM) == before
    ev = io.read_table(r.dataset.path, "events")
    assert (ev["touchpoint"] == "wecom_add").all() and (ev["channel"] == "guide").all() and len(ev) == 4
    assert r.dropped == {"contact without a follow_user (no guide, no add time)": 1}
    assert ev["person_id"].nunique() == 2  # wmEXT_0001 and wmEXT_0004 share UNION_A
    man = io.read_manifest(r.dataset.path)
    assert ev.groupby("guide_id").size()[man["guides"]["zhangsan"]] == 2
    assert man["state"] == {"store_sh_01": 1, "live_0503": 1, "ad_moments": 1}
    assert str(ev.sort_values("ts")["ts"].iloc[0]) == "2024-05-01 10:00:00+08:00"


def test_wecom_round_trip_gives_equal_adds_per_guide_and_funnel(simulated, tmp_path):
    src = export.export_wecom_contacts(simulated, tmp_path / "contacts.jsonl")
    ds = importers.import_wecom_contacts(src, tmp_path / "ds").dataset.path
    assert validate(ds).ok

    def per_guide(d: Path) -> pd.Series:
        ev = io.read_table(d, "events")
        adds = ev[ev.touchpoint == "wecom_add"]
        return adds.groupby("guide_id").agg(adds=("event_id", "size"), persons=("person_id", "nunique"))

    pd.testing.assert_frame_equal(per_guide(simulated), per_guide(ds))
    pd.testing.assert_frame_equal(funnel.funnel(simulated, ["wecom_add"]), funnel.funnel(ds, ["wecom_add"]))


def test_excel_without_openpyxl_names_the_missing_package(tmp_path, monkeypatch):
    import sys

    book = tmp_path / "orders.xlsx"
    book.write_bytes(b"PK\x03\x04 not really a workbook")
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    with pytest.raises(PrivdomainError, match=r"orders.xlsx: reading Excel needs openpyxl"):
        importers.import_table(book, tmp_path / "ds", "ts=t,person_id=u")
    assert not (tmp_path / "ds").exists()


# -------------------------------------------------------------------------- OA articles

ARTICLES = DATA / "oa_article_summary_sample.json"


def test_oa_articles_are_added_to_an_imported_dataset_as_daily_aggregates(tmp_path):
    ds = importers.import_mp_orders(MP, tmp_path / "ds").dataset.path
    before = hashes(ARTICLES)
    r = importers.import_oa_articles(ARTICLES, ds)
    assert validate(ds).ok and hashes(ARTICLES) == before
    daily = io.read_table(ds, "articles_daily")
    assert len(daily) == 3 and daily["int_page_read_user"].sum() == 1920
    assert daily["target_user"].isna().sum() == 1  # not in the export: null, never 0
    assert str(daily["day"].min()) == "2024-05-01 00:00:00+08:00"
    assert r.manifest["articles_import"]["sources"][0]["sha256"] == sha(ARTICLES)
    assert io.read_manifest(ds)["row_counts"]["events"] == r.events


def test_oa_articles_need_a_dataset_an_import_wrote(tmp_path):
    with pytest.raises(PrivdomainError, match="adds article statistics to a dataset an import wrote"):
        importers.import_oa_articles(ARTICLES, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_an_article_day_given_twice_is_named(tmp_path):
    ds = importers.import_mp_orders(MP, tmp_path / "ds").dataset.path
    doc = json.loads(ARTICLES.read_text(encoding="utf-8"))
    src = tmp_path / "twice.json"
    src.write_text(json.dumps({"list": doc["list"] + doc["list"][:1]}), encoding="utf-8")
    with pytest.raises(DataError) as e:
        importers.import_oa_articles(src, ds)
    assert e.value.column == "msgid" and e.value.count == 2 and "once per article and day" in str(e.value)


def test_oa_articles_round_trip_keeps_every_daily_figure(simulated, tmp_path):
    csv = export.export_table(simulated, tmp_path / "events.csv")
    ds = importers.import_table(csv, tmp_path / "ds", export.TABLE_MAPPING, unit="yuan").dataset.path
    src = export.export_oa_articles(simulated, tmp_path / "articles.json")
    importers.import_oa_articles(src, ds)
    assert validate(ds).ok
    daily = io.read_table(ds, "articles_daily")
    want = export.article_summary(simulated)
    got = daily.assign(ref_date=daily["day"].dt.strftime("%Y-%m-%d"))[list(want.columns)]
    pd.testing.assert_frame_equal(got.astype({c: "int64" for c in want.columns if c != "ref_date"}), want)
    # the daily figures agree with the article board computed from the imported events
    rates = officialaccount.article_rates(ds).set_index("article_id")
    per_article = want.groupby("article_id")["target_user"].sum()
    assert (per_article >= rates["received"].reindex(per_article.index).fillna(0)).all()


def test_the_official_account_board_runs_on_the_platforms_daily_statistics(simulated, tmp_path):
    src = export.export_oa_articles(simulated, tmp_path / "articles.json")
    csv = export.export_table(simulated, tmp_path / "events.csv")
    ds = importers.import_table(csv, tmp_path / "ds", export.TABLE_MAPPING, unit="yuan").dataset.path
    importers.import_oa_articles(src, ds)
    board = officialaccount.article_rates_daily(ds).set_index("article_id")
    # brute force from the simulated events: distinct persons per article and Beijing day, summed over days
    ev = io.read_table(getattr(simulated, "path", simulated), "events")
    a = ev[ev["article_id"].notna()].assign(day=lambda d: d.ts.dt.tz_convert("Asia/Shanghai").dt.date)
    per_day = a.groupby(["article_id", "day", "touchpoint"])["person_id"].nunique().unstack(fill_value=0)
    want = per_day.groupby(level="article_id").sum()
    for col, tp in (("delivered", "oa_push"), ("opened", "oa_article_open"), ("clicked", "mp_click")):
        got = board[col].reindex(want.index).fillna(0)
        assert (got.values == want[tp].values).all(), col
    sel = want["oa_push"] > 0
    np.testing.assert_allclose(board["open_rate"].reindex(want.index)[sel], (want["oa_article_open"] / want["oa_push"])[sel])
    # conversions come from the events (person-level), joined on the article
    rates = officialaccount.article_rates(ds).set_index("article_id")
    assert (board["ordered"].reindex(rates.index) == rates["ordered"]).all()
    # statistics alone (no events): conversion columns are missing, never zero
    daily = io.read_table(ds, "articles_daily")
    alone = officialaccount.article_rates_daily(daily)
    assert alone["ordered"].isna().all() and alone["open_rate"].notna().any()
