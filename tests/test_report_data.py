"""``privdomain report --data DIR``: reports on your own dataset, read only, never simulated."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privdomain import importers
from privdomain.cli import app
from privdomain.errors import DatasetError, UsageError
from privdomain.reports import runner as reports

DATA = Path(__file__).parent / "data"
CDNOW = DATA / "cdnow_sample.txt"
runner = CliRunner()


def tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (hidden ones included)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cdnow_ds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cdnow") / "cdnow"
    importers.import_table(CDNOW, out, "ts=date,person_id=customer,amount=dollars",
                           columns=["master_id", "customer", "date", "cds", "dollars"], sep="whitespace",
                           time_format="%Y%m%d", unit="yuan", currency="USD", tz="UTC")
    return out


def test_report_data_builds_the_customer_value_report_and_leaves_the_dataset_byte_identical(cdnow_ds, tmp_path):
    before = tree(cdnow_ds)
    out = tmp_path / "reports"
    res = runner.invoke(app, ["report", "--data", str(cdnow_ds), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert tree(cdnow_ds) == before  # nothing simulated into it, nothing written
    page = (out / "lifecycle_clv.html").read_text(encoding="utf-8")
    assert "Lifecycle, repurchase and customer value" in page and "money in USD" in page
    metrics = json.loads((out / "lifecycle_clv.metrics.json").read_text())
    assert metrics["buyers"] == 2357  # CDNOW's customers, not a simulation
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["currency"] == "USD"
    assert "needs the simulator's truth/" in summary["data"]["skipped"]["simulate_and_inspect"]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Topics skipped" in index and "funnels_official_account" in index
    assert "skipped attribution_roi" in res.output
    for name in ("lifecycle_clv", "quickstart", "index"):  # money in the dataset's currency, never in yuan
        html = (out / f"{name}.html").read_text(encoding="utf-8")
        assert "¥" not in html and "$" in html, name
    assert re.search(r"CLV <strong>\$[0-9][0-9,]*</strong> per buyer", page)  # the 26-week CLV, in dollars


def test_topics_that_need_what_the_dataset_lacks_are_skipped_with_the_reason(cdnow_ds):
    run, skipped = reports.data_topics(cdnow_ds)
    assert [p.stem for p in run] == ["quickstart", "lifecycle_clv", "own_data"]
    assert skipped["funnels_official_account"] == "needs the table(s) articles"
    assert skipped["experiments"].startswith("needs the simulator's truth/")


def test_load_or_simulate_opens_an_imported_dataset_instead_of_simulating_over_it(cdnow_ds):
    before = tree(cdnow_ds)
    ds = reports.load_or_simulate("beauty", 100, 1, cdnow_ds)
    assert Path(ds.path) == cdnow_ds and tree(cdnow_ds) == before
    assert not (cdnow_ds / reports.PARAMS_FILE).exists()


def test_load_or_simulate_never_simulates_during_a_data_run(tmp_path, monkeypatch):
    monkeypatch.setenv(reports.DATA_ENV, str(tmp_path))
    with pytest.raises(DatasetError, match="dataset.json"):
        reports.load_or_simulate("beauty", 100, 1, tmp_path / "empty")
    assert not (tmp_path / "empty").exists()


def test_report_data_refuses_an_out_folder_inside_the_dataset(cdnow_ds):
    before = tree(cdnow_ds)
    with pytest.raises(UsageError, match="overlap"):
        reports.build_data_reports(cdnow_ds, cdnow_ds / "reports", progress=False)
    assert tree(cdnow_ds) == before


def test_cli_report_data_with_a_case_is_a_usage_error(cdnow_ds, tmp_path):
    res = runner.invoke(app, ["report", "--data", str(cdnow_ds), "--case", "tea", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "without --case" in res.output


def test_a_dataset_that_declares_its_own_purchase_event_gets_the_purchase_topics(tmp_path):
    src = tmp_path / "c.csv"
    rows = [f"2024-01-0{d} 10:0{d},{u},{e},{'9.9' if e == 'purchase' else ''}"  # 10 buyers who came back
            for u in "abcdefghij" for d in (1, 2) for e in ("view", "purchase")]
    src.write_text("t,u,e,a\n" + "\n".join(rows) + "\n", encoding="utf-8")
    ds = importers.import_table(src, tmp_path / "ds", "ts=t,person_id=u,event=e,amount=a", unit="yuan",
                                touchpoints={"view": "web", "purchase": "web"}).dataset.path
    man = json.loads((ds / "dataset.json").read_text(encoding="utf-8"))
    man["purchase_event"] = "purchase"  # a dataset that declares its own purchase name
    (ds / "dataset.json").write_text(json.dumps(man), encoding="utf-8")
    run, skipped = reports.data_topics(ds)
    assert "lifecycle_clv" in [p.stem for p in run] and "lifecycle_clv" not in skipped
    man.pop("purchase_event")  # undeclared, 'purchase' is just another touchpoint: the topic is skipped, saying why
    (ds / "dataset.json").write_text(json.dumps(man), encoding="utf-8")
    _, skipped = reports.data_topics(ds)
    assert "needs pay events" in skipped["lifecycle_clv"] and "purchase_event" in skipped["lifecycle_clv"]
