"""The bring-your-own-data notebook and its logic (privdomain.inventory) on a CDNOW import and a clickstream CSV.

What the dataset holds and which metrics apply are checked against the source files read
here with plain pandas; the notebook builds through ``report --data``, shows no ``nan``,
shows money in the dataset's currency and leaves the dataset byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from privdomain import importers, inventory, reports
from privdomain.errors import UsageError

DATA = Path(__file__).parent / "data"
CDNOW = DATA / "cdnow_sample.txt"
CLICKS = DATA / "clickstream_gb18030.csv"


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("own") / "cdnow"
    importers.import_table(CDNOW, out, "ts=date,person_id=customer,amount=dollars",
                           columns=["master_id", "customer", "date", "cds", "dollars"], sep="whitespace",
                           time_format="%Y%m%d", unit="yuan", currency="USD", tz="UTC")
    return out


@pytest.fixture(scope="module")
def clicks(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("own") / "clicks"
    importers.import_table(CLICKS, out, "ts=时间,person_id=用户ID,event=事件,amount=金额,order_id=订单号", unit="yuan",
                           purchase_event="支付", order_event="下单", touchpoints={"浏览": "web", "加购": "web"})
    return out


def raw_cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW, sep=r"\s+", header=None, names=["master_id", "customer", "date", "cds", "dollars"],
                       dtype={"customer": str, "date": str})


def raw_clicks() -> pd.DataFrame:
    return pd.read_csv(CLICKS, encoding="gb18030")


def test_inventory_of_cdnow_matches_the_source_file(cdnow):
    raw = raw_cdnow()
    inv = inventory.inventory(cdnow)
    assert inv.touchpoints[["touchpoint", "events"]].values.tolist() == [["pay", len(raw)]]
    assert inv.repeat_buyers == int((raw.groupby("customer")["date"].nunique() >= 2).sum())
    assert (inv.timezone, inv.currency) == ("UTC", "USD")
    assert str(inv.first.date()) == pd.to_datetime(raw["date"]).min().strftime("%Y-%m-%d")
    assert str(inv.last.date()) == pd.to_datetime(raw["date"]).max().strftime("%Y-%m-%d")
    rows = dict(zip(inv.tables["table"], inv.tables["rows"]))
    assert rows == {"events": len(raw), "persons": raw["customer"].nunique()}


def test_what_applies_to_cdnow_and_why_the_rest_does_not(cdnow):
    a = inventory.applicability(cdnow).set_index("metric")
    assert set(a.index[a["applies"]]) == {"daily_volume", "rfm", "repurchase_rate", "cohorts", "lifecycle_board",
                                          "clv"}
    assert a.loc["funnel", "why"] == "needs two kinds of events or more"
    assert "touches before the purchases" in a.loc["channel_cube", "why"]
    assert a.loc["article_rates_daily", "why"] == "needs the table(s) articles_daily"
    with pytest.raises(UsageError, match="funnel does not apply.*two kinds of events"):
        inventory.run(cdnow, "funnel")
    with pytest.raises(UsageError, match="did you mean 'funnel'"):
        inventory.run(cdnow, "funel")


def test_clickstream_funnel_steps_and_results_match_a_per_person_loop(clicks):
    raw = raw_clicks()
    inv = inventory.inventory(clicks)
    touches = raw.loc[~raw["事件"].isin(["下单", "支付"]), "事件"].value_counts()
    steps = inventory.funnel_steps(inv)
    assert steps == [*touches.index[:3], "pay"]
    a = inventory.applicability(clicks, inv=inv).set_index("metric")
    repeat = int((raw[raw["事件"] == "支付"].assign(d=lambda d: d["时间"].str[:10]).groupby("用户ID")["d"].nunique()
                  >= 2).sum())
    assert inv.repeat_buyers == repeat and not a.loc["clv", "applies"]
    assert a.loc["clv", "why"] == f"needs 10 buyers with a second purchase day (the dataset has {repeat})"
    assert a.loc["funnel", "applies"] and a.loc["attribution", "applies"]
    # ordered funnel within 7 days of the first step, person by person
    names = {"pay": "支付"}
    raw = raw.assign(ts=pd.to_datetime(raw["时间"])).sort_values("ts", kind="stable")
    reached = [0] * len(steps)
    for _, g in raw.groupby("用户ID"):
        starts = g.loc[g["事件"] == names.get(steps[0], steps[0]), "ts"]
        best = 0
        for t0 in starts:
            level, t = 1, t0
            for s in steps[1:]:
                nxt = g.loc[(g["事件"] == names.get(s, s)) & (g["ts"] >= t) & (g["ts"] <= t0 + pd.Timedelta("7D")),
                            "ts"]
                if nxt.empty:
                    break
                level, t = level + 1, nxt.iloc[0]
            best = max(best, level)
        for i in range(best):
            reached[i] += 1
    f = inventory.run(clicks, "funnel", inv=inv)
    assert f["persons"].tolist() == reached
    assert (f["conversion_from_first_low"] <= f["conversion_from_first"]).all()
    assert (f["conversion_from_first"] <= f["conversion_from_first_high"]).all()


def test_lifecycle_clv_is_skipped_on_data_without_repeat_buyers(clicks, cdnow):
    run, skipped = reports.data_topics(clicks)
    assert [p.stem for p in run] == ["quickstart", "own_data"]
    assert skipped["lifecycle_clv"].startswith("needs 10 buyers with a second purchase day (the dataset has 0)")
    assert "lifecycle_clv" in [p.stem for p in reports.data_topics(cdnow)[0]]


@pytest.mark.parametrize("name", ["cdnow", "clicks"])
def test_the_notebook_builds_on_the_dataset_without_nan(name, cdnow, clicks, tmp_path):
    data = {"cdnow": cdnow, "clicks": clicks}[name]
    only = tmp_path / "notebooks"
    only.mkdir()
    shutil.copy(reports.notebooks_dir() / "own_data.py", only / "own_data.py")
    before = tree(data)
    results, skipped = reports.build_data_reports(data, tmp_path / "out", jobs=1, progress=False, notebooks=only,
                                                  handle_signals=False)
    assert [r.name for r in results] == ["own_data"] and results[0].ok, results[0].error
    assert tree(data) == before
    page = (tmp_path / "out" / "own_data.html").read_text(encoding="utf-8")
    body = re.sub(r"<style.*?</style>|<[^>]+>", " ", page.split("<body", 1)[1], flags=re.S)
    assert not re.search(r"(?i)\bnan\b", body)
    metrics = json.loads((tmp_path / "out" / "own_data.metrics.json").read_text())
    a = inventory.applicability(data)
    assert metrics["applies"] == sorted(a.loc[a["applies"], "metric"])
    assert set(metrics["skipped"]) == set(a.loc[~a["applies"], "metric"])
    for metric in metrics["rows_shown"]:
        assert f"{metric}: " in body  # a section per metric that applies
    if name == "cdnow":
        assert "¥" not in page and "$" in page  # money in dollars
        assert metrics["rows_shown"]["clv"] >= 5
    else:
        assert "浏览" in body and "funnel: " in body
