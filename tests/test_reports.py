"""The report runner: parameters in, HTML without code out, failures isolated and reported."""

import json
import math
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from privdomain.boards.overview import overview
from privdomain.cli import app
from privdomain.reports import runner as reports

TINY = textwrap.dedent('''\
    # %% [markdown]
    # # Tiny case study
    #
    # 复购率 repurchase rate = buyers with two or more orders / buyers.

    # %% tags=["parameters"]
    scenario = "beauty"
    persons = 100
    seed = 1
    windows = [0, 7]
    data_dir = ""
    output_dir = ""
    report_name = "tiny"

    # %%
    from privdomain import plotting, reports
    plotting.use_style()
    SECRET_CODE_MARKER = 41 + 1
    reports.record_metrics({"scenario": scenario, "persons": persons, "windows": windows,
                            "data_dir": data_dir}, output_dir, report_name)

    # %% [markdown]
    # ## 图 Figure

    # %%
    ax = plotting.new_axes("复购率 repurchase rate")
    ax.plot([1, 2, 3])
    if scenario == "tea":
        raise RuntimeError("tea is broken on purpose")
    reports.record_metrics({"answer": SECRET_CODE_MARKER}, output_dir, report_name)
    ''')


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One build of two cases from a tiny case notebook: beauty passes, tea fails in cell 5."""
    root = tmp_path_factory.mktemp("reports")
    nbdir = root / "notebooks"
    nbdir.mkdir()
    (nbdir / "case_study.py").write_text(TINY, encoding="utf-8")
    out = root / "out"
    out.mkdir()
    # leftovers of an earlier successful tea build (in a folder an earlier run marked as
    # its own) must not survive a failed one
    (out / reports.MARKER).write_text('{"generator": "privdomain report"}\n')
    (out / "tea.html").write_text("old report")
    (out / "tea.metrics.json").write_text("{}")
    simulated = []
    here = os.getcwd()
    os.chdir(root)  # a relative output folder, two notebooks at once (the `make report` situation)
    try:
        results = reports.build_reports(["beauty", "tea"], persons=123, seed=9, out="out", topics=False,
                                        notebooks=nbdir, progress=False, jobs=2,
                                        simulate=lambda *args: simulated.append(args))
    finally:
        os.chdir(here)
    return out, results, simulated


def test_each_case_is_simulated_once_with_the_run_parameters(built):
    out, _, simulated = built
    assert [(s, n, k, Path(d).name) for s, n, k, d in simulated] == [("beauty", 123, 9, "beauty"), ("tea", 123, 9, "tea")]


def test_parameters_reach_the_notebook_and_metrics_land_next_to_the_report(built):
    out, results, _ = built
    beauty = results[0]
    assert beauty.ok and beauty.html == "beauty.html"
    metrics = json.loads((out / "beauty.metrics.json").read_text())
    assert metrics == {"scenario": "beauty", "persons": 123, "windows": [0, 7, 15, 30],
                       "data_dir": str((out / "data" / "beauty").resolve()), "answer": 42}
    assert beauty.headline["answer"] == 42


def test_html_has_markdown_and_figures_but_no_code(built):
    out, _, _ = built
    page = (out / "beauty.html").read_text(encoding="utf-8")
    assert "复购率 repurchase rate = buyers with two or more orders" in page
    assert "data:image/png;base64" in page
    assert "SECRET_CODE_MARKER" not in page
    assert 'href="index.html"' in page  # the way back to the index


def test_a_failing_notebook_does_not_stop_the_others_and_names_its_cell(built):
    out, results, _ = built
    tea = results[1]
    assert not tea.ok
    assert tea.cell == 5  # the fifth cell of the .py source (the injected parameters are not counted)
    assert "RuntimeError: tea is broken on purpose" in tea.error
    assert 'raise RuntimeError("tea is broken on purpose")' in tea.error
    assert results[0].ok


def test_a_failed_report_leaves_nothing_that_looks_complete(built):
    out, _, _ = built
    assert not (out / "tea.html").exists()
    assert not (out / "tea.metrics.json").exists()
    failed = (out / "tea.failed.html").read_text(encoding="utf-8")
    assert "tea is broken on purpose" in failed and "SECRET_CODE_MARKER" in failed  # code shown for debugging
    assert not list(out.glob(".privdomain-work-*"))  # the run's own work folder is gone


def test_index_links_every_report_and_marks_the_failure(built):
    out, _, _ = built
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="beauty.html"' in index
    assert "FAILED" in index and "tea is broken on purpose" in index and "cell 5" in index
    assert "1 of 2 reports FAILED" in index
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is False
    assert [r["ok"] for r in summary["reports"]] == [True, False]


def test_a_failed_simulation_fails_that_case_only(tmp_path):
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    (nbdir / "case_study.py").write_text(TINY, encoding="utf-8")

    def simulate(scenario, *_):
        raise ValueError(f"no scenario {scenario}")

    results = reports.build_reports(["eyewear"], persons=10, seed=1, out=tmp_path / "out", topics=False,
                                    notebooks=nbdir, progress=False, simulate=simulate)
    assert not results[0].ok
    assert "simulation failed: ValueError: no scenario eyewear" in results[0].error
    assert "FAILED" in (tmp_path / "out" / "index.html").read_text()


def test_record_metrics_merges_and_makes_values_json_safe(tmp_path):
    reports.record_metrics({"a": np.int64(3), "b": np.float64(0.25)}, tmp_path, "x")
    reports.record_metrics({"b": math.nan, "c": np.array([1, 2])}, tmp_path, "x")
    assert reports.read_metrics(tmp_path / "x.metrics.json") == {"a": 3, "b": None, "c": [1, 2]}
    reports.record_metrics({"a": 1}, "", "y")  # a notebook run by hand writes nothing
    assert not (tmp_path / "y.metrics.json").exists() and not Path("y.metrics.json").exists()


def test_the_kernel_is_this_python_and_the_jupyter_path_is_restored(monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager

    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    with reports.project_kernel() as name:
        spec = KernelSpecManager().get_kernel_spec(name)
        assert spec.argv[0] == sys.executable
    assert "JUPYTER_PATH" not in __import__("os").environ


def test_plan_runs_case_studies_then_topics_on_the_topic_scenario(tmp_path):
    nbdir = tmp_path
    for name in ("case_study", "lifecycle_clv", "quickstart", "experiments", "zz_extra", "_draft"):
        (nbdir / f"{name}.py").write_text(f"# %% [markdown]\n# # Title of {name}\n")
    jobs = reports.plan(["tea", "beauty"], 100, 1, tmp_path / "out", notebooks=nbdir)
    assert [(j.name, j.kind, j.scenario) for j in jobs] == [
        ("tea", "case", "tea"), ("beauty", "case", "beauty"),
        ("quickstart", "topic", "beauty"), ("lifecycle_clv", "topic", "beauty"), ("experiments", "topic", "tea"),
        ("zz_extra", "topic", "beauty")]
    assert jobs[2].title == "Title of quickstart"
    with pytest.raises(ValueError, match="unknown case 'shoes'"):
        reports.plan(["shoes"], 100, 1, tmp_path, notebooks=nbdir)


def test_cli_report_needs_a_case_and_rejects_unknown_ones():
    runner = CliRunner()
    assert runner.invoke(app, ["report"]).exit_code == 2
    res = runner.invoke(app, ["report", "--case", "shoes"])
    assert res.exit_code == 2 and "unknown case shoes" in res.output


def test_pages_embed_a_cjk_font_subset_with_their_chinese_characters(built):
    import base64
    import io
    import re

    from fontTools.ttLib import TTFont

    out, _, _ = built
    page = (out / "beauty.html").read_text(encoding="utf-8")
    data = re.search(r"url\(data:font/otf;base64,([A-Za-z0-9+/=]+)\)", page).group(1)
    cmap = TTFont(io.BytesIO(base64.b64decode(data))).getBestCmap()
    assert {ord(c) for c in "复购率"} <= set(cmap)
    assert len(data) < 400_000  # a subset, not the 16 MB font


def test_case_stories_exist_for_every_case_with_the_fields_the_notebook_reads():
    from privdomain.reports import cases

    for case in reports.CASES:
        story = cases.case_story(case)
        for key in ("title", "brand", "what_was_done", "reported", "journey", "headline", "headline_question",
                    "next_steps"):
            assert story[key], f"{case}: {key} is empty"
    with pytest.raises(ValueError, match="no story for case 'shoes'"):
        cases.case_story("shoes")


def test_top_paths_merge_repeated_channels_and_journey_stats_match_a_loop():
    import pandas as pd

    from privdomain import attribution

    pt = pd.DataFrame({"path": ["ad > ad > oa", "ad > oa", "oa", "oa > mp > oa"],
                       "total_conversions": [2, 1, 0, 4], "total_conversion_value": [200.0, 50.0, 0.0, 80.0],
                       "total_null": [5, 3, 9, 1]})
    top = attribution.top_paths(pt, n=3)
    assert top[["path", "conversions", "journeys"]].values.tolist() == [
        ["oa > mp > oa", 4, 5], ["ad > oa", 3, 11], ["oa", 0, 9]]
    assert top["share"].tolist() == [4 / 7, 3 / 7, 0.0]
    # brute force over the individual converting journeys
    journeys = []
    for path, n in zip(pt["path"], pt["total_conversions"]):
        journeys += [path.split(" > ")] * n
    stats = attribution.journey_stats(pt)
    assert stats["touches_per_conversion"] == pytest.approx(sum(map(len, journeys)) / len(journeys))
    assert stats["channels_per_conversion"] == pytest.approx(sum(len(set(j)) for j in journeys) / len(journeys))
    assert stats["multi_channel_share"] == pytest.approx(sum(len(set(j)) > 1 for j in journeys) / len(journeys))


def test_overview_matches_a_pandas_count(small_events):
    ov = overview(small_events)
    pays = small_events[small_events["touchpoint"] == "pay"]
    assert ov["persons"] == small_events["person_id"].nunique() == 3
    assert ov["buyers"] == pays["person_id"].nunique() == 1
    assert ov["gmv_yuan"] == pays["amount_fen"].sum() / 100
    assert ov["aov_yuan"] == 99.0 and ov["buyer_rate"] == pytest.approx(1 / 3)
    assert (ov["first_day"], ov["last_day"], ov["days"]) == ("2024-05-01", "2024-05-03", 3)


def test_windows_are_injected_only_into_the_notebooks_that_declare_them(tmp_path):
    jobs = reports.plan(["tea"], 100, 1, tmp_path / "out")
    given = {j.name: "windows" in j.parameters for j in jobs}
    declared = {j.name: "windows" in reports.declared_parameters(j.source) for j in jobs}
    assert given == declared
    assert given["tea"] and given["attribution_roi"]  # the two notebooks that read them
    assert sum(given.values()) == 2 and len(given) >= 9
