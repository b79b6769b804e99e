"""The report runner never destroys what it did not write, writes whole files, and tells the truth when stopped.

In-process tests use a tiny notebook and no simulation (a few seconds each); the fault
tests run ``privdomain report --case beauty --persons 500`` in a subprocess, once to
completion and then stopped with SIGTERM and with SIGKILL while its kernel runs.
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from privdomain.errors import UsageError
from privdomain.reports import runner as reports

SRC = Path(__file__).resolve().parents[1] / "src"

TINY = textwrap.dedent('''\
    # %% [markdown]
    # # Tiny case study

    # %% tags=["parameters"]
    scenario = "beauty"
    persons = 100
    seed = 1
    windows = [0, 7]
    data_dir = ""
    output_dir = ""
    report_name = "tiny"

    # %%
    from privdomain import reports
    reports.record_metrics({"persons": persons, "seed": seed}, output_dir, report_name)
    print("built for seed", seed)
    ''')


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_links_exist(out: Path) -> list[str]:
    """Every href of the index is a file in the folder; every file the summary names exists."""
    index = (out / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', index)
    for link in links:
        assert (out / link).is_file(), f"index.html links {link}, which does not exist"
    summary = json.loads((out / "summary.json").read_text())
    for r in summary["reports"]:
        for key in ("html", "metrics", "notebook", "failed_html"):
            if r[key]:
                assert (out / r[key]).is_file(), f"summary.json names {r[key]}, which does not exist"
        if r["status"] != "ok":
            assert r["ok"] is False and r["html"] is None
    return links


@pytest.fixture
def nbdir(tmp_path) -> Path:
    folder = tmp_path / "nb"
    folder.mkdir()
    (folder / "case_study.py").write_text(TINY, encoding="utf-8")
    return folder


def _build(out, nbdir, seed=1, cases=("beauty",), **kw):
    return reports.build_reports(list(cases), persons=100, seed=seed, out=out, topics=False, notebooks=nbdir,
                                 progress=False, simulate=lambda *a: None, **kw)


# -------------------------------------------------------------------- whose folder


def test_a_users_folder_is_refused_and_left_byte_identical(tmp_path, nbdir):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "index.html").write_text("<html>my own index</html>")
    (user / "summary.json").write_text('{"my": "numbers"}')
    (user / "_work").mkdir()
    (user / "_work" / "draft.ipynb").write_text("{}")
    before = _hashes(user)
    with pytest.raises(reports.ReportFolderError, match="not written by `privdomain report`") as err:
        _build(user, nbdir)
    assert err.value.path == user and "mine" in str(err.value)
    assert _hashes(user) == before  # nothing overwritten, nothing deleted, no marker added


def test_a_file_given_as_the_folder_is_refused(tmp_path, nbdir):
    target = tmp_path / "report.html"
    target.write_text("a file")
    with pytest.raises(reports.ReportFolderError, match="exists and is not a folder"):
        _build(target, nbdir)
    assert target.read_text() == "a file"


def test_arguments_are_checked_before_the_folder_is_created(tmp_path, nbdir):
    out = tmp_path / "new"
    with pytest.raises(UsageError, match="unknown case 'shoes'"):
        _build(out, nbdir, cases=("shoes",))
    with pytest.raises(UsageError, match="jobs must be at least 1, got 0"):
        _build(out, nbdir, jobs=0)
    assert not out.exists()


def test_another_running_report_in_the_folder_is_refused(tmp_path, nbdir):
    out = tmp_path / "busy"
    out.mkdir()
    (out / reports.MARKER).write_text("{}")
    (out / "summary.json").write_text(json.dumps({"generator": reports.GENERATOR, "status": "running",
                                                  "pid": os.getppid(), "reports": []}))
    before = _hashes(out)
    with pytest.raises(reports.ReportFolderError, match=f"another `privdomain report` \\(pid {os.getppid()}\\)"):
        _build(out, nbdir)
    assert _hashes(out) == before


def test_a_rerun_into_its_own_folder_replaces_its_reports_and_keeps_the_users_files(tmp_path, nbdir):
    out = tmp_path / "reports"
    first = _build(out, nbdir, seed=1)
    assert first[0].ok and (out / reports.MARKER).is_file()
    assert json.loads((out / "summary.json").read_text())["generator"] == "privdomain report"
    # the user adds a _work folder and a note; a stale work folder of a killed run is lying there too
    (out / "_work").mkdir()
    (out / "_work" / "keep.txt").write_text("mine")
    (out / "notes.md").write_text("my notes")
    stale = out / (reports.WORK_PREFIX + "killed")
    stale.mkdir()
    (stale / "owner.json").write_text(json.dumps({"generator": reports.GENERATOR, "pid": 2**22 + 12345}))
    unknown = out / (reports.WORK_PREFIX + "unknown")
    unknown.mkdir()  # no owner file: not provably ours, left alone
    second = _build(out, nbdir, seed=2)
    assert second[0].ok
    assert json.loads((out / "beauty.metrics.json").read_text()) == {"persons": 100, "seed": 2}
    assert (out / "_work" / "keep.txt").read_text() == "mine" and (out / "notes.md").read_text() == "my notes"
    assert not stale.exists() and unknown.is_dir()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["ok"] is True and summary["reports"][0]["status"] == "ok"
    assert _assert_links_exist(out) == ["beauty.html", "beauty.metrics.json"]
    assert sorted(p.name for p in out.glob(reports.WORK_PREFIX + "*")) == [unknown.name]


def test_a_folder_of_the_runner_before_the_marker_is_recognised(tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "summary.json").write_text(json.dumps({"persons": 10, "seed": 1, "ok": True, "reports": [
        {"name": "beauty", "kind": "case", "ok": True, "seconds": 1.0, "html": "beauty.html"}]}))
    assert reports.is_report_folder(out)
    (out / "summary.json").write_text(json.dumps({"persons": 10, "seed": 1, "ok": True, "reports": []}))
    assert not reports.is_report_folder(out)  # not provably ours


# -------------------------------------------------------------------- whole files


def _half_then_fail(fh, data):
    fh.write(data[: len(data) // 2])
    raise OSError(28, "No space left on device")


def test_a_write_that_fails_midway_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "index.html"
    target.write_text("previous index")
    monkeypatch.setattr(reports, "_write_all", _half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        reports.atomic_write(target, "x" * 10_000)
    assert target.read_text() == "previous index"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html"]  # no temporary file left


def test_an_html_export_that_fails_midway_leaves_the_previous_page_whole(tmp_path, monkeypatch):
    import nbformat

    page = tmp_path / "beauty.html"
    page.write_text("<html>previous report</html>")
    before = _sha(page)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 复购率 title\n\nbody " * 50)])
    monkeypatch.setattr(reports, "_write_all", _half_then_fail)
    with pytest.raises(OSError):
        reports.render_html(nb, page, "title")
    assert _sha(page) == before and sorted(p.name for p in tmp_path.iterdir()) == ["beauty.html"]


def test_an_index_write_that_fails_leaves_index_and_summary_as_they_were(tmp_path, monkeypatch):
    (tmp_path / "index.html").write_text("old index")
    (tmp_path / "summary.json").write_text('{"old": true}')
    before = _hashes(tmp_path)
    res = reports.Result("beauty", "case", "beauty", "Beauty", ok=True, seconds=1.0, html="beauty.html")
    monkeypatch.setattr(reports, "_write_all", _half_then_fail)
    with pytest.raises(OSError):
        reports.write_index([res], tmp_path, persons=10, seed=1)
    assert _hashes(tmp_path) == before


def test_the_index_never_links_a_missing_file_nor_calls_it_ok(tmp_path):
    (tmp_path / "real.html").write_text("x")
    ok = reports.Result("real", "case", "beauty", "Real", ok=True, seconds=1.0, html="real.html")
    ghost = reports.Result("ghost", "case", "tea", "Ghost", ok=True, seconds=1.0, html="ghost.html",
                           metrics="ghost.metrics.json")
    cut = reports.Result("cut", "case", "tea", "Cut", ok=False, seconds=0.0, status="interrupted",
                         error="interrupted by SIGTERM before it finished", previous={"html": "gone.html"})
    reports.write_index([ok, ghost, cut], tmp_path, persons=10, seed=1, status="interrupted",
                        signal_name="SIGTERM")
    links = _assert_links_exist(tmp_path)
    assert links == ["real.html"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ok"] is False and summary["status"] == "interrupted" and summary["signal"] == "SIGTERM"
    assert [r["html"] for r in summary["reports"]] == ["real.html", None, None]
    assert "Interrupted by SIGTERM" in (tmp_path / "index.html").read_text()


def test_a_rendering_failure_fails_the_report_and_leaves_no_partial_page(tmp_path, nbdir, monkeypatch):
    out = tmp_path / "reports"
    assert _build(out, nbdir)[0].ok
    real = reports.render_html

    def crashing(nb, path, title, hide_code=True):
        Path(path).write_text("<html><body>half a page")  # the exporter dies midway through its file
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(reports, "render_html", crashing)
    res = _build(out, nbdir)[0]
    monkeypatch.setattr(reports, "render_html", real)
    assert not res.ok and res.status == "failed" and "rendering failed: RuntimeError: exporter crashed" in res.error
    assert not (out / "beauty.html").exists()  # neither half a page nor the previous one passing for new
    assert not [p for p in out.rglob("*") if "half a page" in (p.read_text(errors="replace") if p.is_file() else "")]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is False and summary["reports"][0]["status"] == "failed"
    _assert_links_exist(out)


# -------------------------------------------------------------------- interrupted


def test_a_signal_during_the_simulation_marks_every_report_interrupted(tmp_path, nbdir):
    out = tmp_path / "reports"
    assert _build(out, nbdir)[0].ok
    kept = {p: _sha(out / p) for p in ("beauty.html", "beauty.metrics.json")}

    def simulate(*args):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler interrupts this at once
        raise AssertionError("not interrupted")

    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in a job started in the background
    start = time.perf_counter()
    with pytest.raises(reports.ReportsInterrupted) as err:
        reports.build_reports(["beauty"], persons=100, seed=3, out=out, topics=False, notebooks=nbdir,
                              progress=False, simulate=simulate)
    assert time.perf_counter() - start < 3
    assert err.value.exit_code == 130 and "interrupted by SIGINT" in str(err.value)
    assert [r.status for r in err.value.results] == ["interrupted"]
    assert {p: _sha(out / p) for p in kept} == kept  # the previous report is kept whole
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["ok"] is False
    entry = summary["reports"][0]
    assert entry["status"] == "interrupted" and entry["html"] is None and entry["previous"]["html"] == "beauty.html"
    assert entry["previous"]["seed"] == 1  # the stale page is labelled with the run that built it
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "INTERRUPTED" in index and "previous report" in index and "stale" in index
    _assert_links_exist(out)
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored


# -------------------------------------------------------------------- fault tests (subprocess)


def _report_cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "privdomain.cli", "report", "--case", "beauty", "--persons", "500", "--seed", "7",
            "--jobs", "1", "--out", str(out)]


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    env.pop("PRIVDOMAIN_DEBUG", None)
    return env


def _kernels_of(proc: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in proc.children(recursive=True):
        try:
            if "ipykernel_launcher" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def _running(procs: list[psutil.Process]) -> list[int]:
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def _start_and_wait_for_kernel(out: Path) -> tuple[subprocess.Popen, list[psutil.Process]]:
    proc = subprocess.Popen(_report_cmd(out), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 90
    kernels: list[psutil.Process] = []
    while not kernels and time.monotonic() < deadline and proc.poll() is None:
        kernels = _kernels_of(parent)
        time.sleep(0.05)
    assert kernels, "the notebook kernel never started"
    time.sleep(1.0)  # the notebook is running now
    return proc, kernels


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A folder holding a completed real report run, and the hashes of its report files."""
    out = tmp_path_factory.mktemp("fault") / "reports"
    done = subprocess.run(_report_cmd(out), env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    files = ("beauty.html", "beauty.metrics.json", "notebooks/beauty.ipynb")
    return out, {f: _sha(out / f) for f in files}


def test_sigterm_stops_the_kernels_within_3_s_and_leaves_a_truthful_index(finished):
    out, previous = finished
    proc, kernels = _start_and_wait_for_kernel(out)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 143, err[-2000:]
    assert took < 3.5, f"exited {took:.1f} s after SIGTERM"
    assert _running(kernels) == []
    assert "error: interrupted by SIGTERM" in err and "Traceback" not in err
    assert {f: _sha(out / f) for f in previous} == previous  # the previous reports are byte-identical
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["ok"] is False and summary["signal"] == "SIGTERM"
    assert [(r["name"], r["status"]) for r in summary["reports"]] == [("beauty", "interrupted")]
    assert summary["reports"][0]["previous"]["html"] == "beauty.html"
    links = _assert_links_exist(out)
    assert "beauty.html" in links  # as the previous report, marked stale
    assert "INTERRUPTED" in (out / "index.html").read_text(encoding="utf-8")
    assert not list(out.glob(reports.WORK_PREFIX + "*"))


def test_sigkill_leaves_the_previous_reports_whole_and_an_index_that_says_so(finished):
    out, previous = finished
    proc, kernels = _start_and_wait_for_kernel(out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 5  # an orphaned kernel notices its parent is gone (ipykernel polls each second)
    while _running(kernels) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _running(kernels) == []
    assert {f: _sha(out / f) for f in previous} == previous
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "running" and summary["ok"] is False  # what the killed run had got to
    assert [r["status"] for r in summary["reports"]] == ["pending"]
    _assert_links_exist(out)
    assert "has not finished" in (out / "index.html").read_text(encoding="utf-8")
    assert not list(out.rglob("*.part"))  # no half-written file anywhere


def test_the_repository_reports_folder_with_its_gitkeep_is_taken_as_empty(tmp_path):
    # `make report` writes into the checkout's reports/, which git keeps with a .gitkeep
    out = tmp_path / "reports"
    out.mkdir()
    (out / ".gitkeep").write_text("")
    assert reports.claim_report_folder(out) == out.resolve()
    assert (out / ".gitkeep").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / ".gitkeep").write_text("")
    (other / "notes.md").write_text("mine")
    with pytest.raises(reports.ReportFolderError, match="is not empty"):
        reports.claim_report_folder(other)


def test_make_report_writes_into_the_repository_reports_folder():
    root = Path(__file__).resolve().parents[1]
    assert (root / "reports" / ".gitkeep").exists()
    assert "--out reports" in (root / "Makefile").read_text()
    entries = {p.name for p in (root / "reports").iterdir()}
    assert entries <= {".gitkeep"} or reports.is_report_folder(root / "reports")
