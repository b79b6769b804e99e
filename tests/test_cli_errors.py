"""The command line's error corpus: every user error is one ``error:`` line, a non-zero exit, no traceback.

Each case runs the CLI (typer's CliRunner; two through a real subprocess), asserts the
exit code, that stderr has an ``error:`` line (or the validator's problem list) naming
the problem, that no traceback is shown, and with sha256 hashes that no input file
changed.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from privdomain import cli
from privdomain.cli import app, describe_error
from privdomain.errors import DataError, UsageError
from privdomain.reports import runner as reports

runner = CliRunner()
SRC = Path(__file__).resolve().parents[1] / "src"


def _hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (and the listing itself, by the keys)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Bad inputs of every kind, written once."""
    root = tmp_path_factory.mktemp("bad-inputs")
    (root / "empty.csv").write_bytes(b"")
    (root / "header.csv").write_text("event_id,person_id,ts,touchpoint\n")
    (root / "notes.txt").write_text("hello\n")
    (root / "book.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    table = pa.table({"a": list(range(2000))})
    pq.write_table(table, root / "full.parquet")
    data = (root / "full.parquet").read_bytes()
    (root / "truncated.parquet").write_bytes(data[: len(data) // 2])
    (root / "corrupt").mkdir()
    (root / "corrupt" / "dataset.json").write_text('{"row_counts": ')
    (root / "missing").mkdir()
    (root / "missing" / "dataset.json").write_text(json.dumps({"row_counts": {"events": 3, "persons": 2}}))
    (root / "nomanifest").mkdir()
    (root / "gbk.csv").write_bytes("person_id,ts,touchpoint\n1,2024-05-01 10:00,支付\n".encode("gbk"))
    (root / "bad.yaml").write_text("a: [1, 2\n")
    (root / "a_file").write_text("I am a file, not a folder\n")
    user = root / "user-folder"
    user.mkdir()
    (user / "index.html").write_text("<html>my own page</html>")
    (user / "summary.json").write_text('{"mine": true}')
    (user / "_work").mkdir()
    (user / "_work" / "draft.txt").write_text("my draft")
    return root


def _clean_failure(result, code: int | None, *needles: str) -> None:
    """Exit ``code`` (any non-zero if None), one ``error:`` line or a problem list naming a needle, no traceback."""
    err = result.stderr
    assert result.exit_code != 0
    if code is not None:
        assert result.exit_code == code, (result.exit_code, err)
    assert "Traceback" not in err + result.stdout
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    error_lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    if error_lines:
        assert len(error_lines) == 1, err
        assert len([ln for ln in err.splitlines() if ln.strip()]) == 1, err  # nothing but that line
    else:  # the validator's own problem list
        assert ": invalid" in err, err
    assert any(n.lower() in err.lower() for n in needles), (needles, err)


# ------------------------------------------------------------------ option values


@pytest.mark.parametrize("args, needle", [
    (["simulate", "--persons", "0"], "--persons"),
    (["simulate", "--persons", "-5"], "--persons"),
    (["simulate", "--persons", "many"], "--persons"),
    (["simulate", "--seed", "-1"], "--seed"),
    (["simulate", "--workers", "0"], "--workers"),
    (["report", "--case", "beauty", "--persons", "0"], "--persons"),
    (["report", "--case", "beauty", "--jobs", "0"], "--jobs"),
    (["report", "--case", "beauty", "--seed", "-1"], "--seed"),
    (["simulate", "--frobnicate"], "--frobnicate"),
    (["frobnicate"], "frobnicate"),
])
def test_bad_option_values_are_one_line_before_anything_is_touched(args, needle, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset.json").write_text('{"row_counts": {}}')  # a previous result that must survive
    before = _hashes(tmp_path)
    result = runner.invoke(app, [*args, "--out", str(out)] if args[0] in ("simulate", "report") else args)
    _clean_failure(result, 2, needle)
    assert _hashes(tmp_path) == before


def test_report_needs_a_case_and_names_unknown_ones():
    _clean_failure(runner.invoke(app, ["report"]), 2, "--case NAME or --all")
    _clean_failure(runner.invoke(app, ["report", "--case", "shoes"]), 2, "unknown case shoes")


def test_bench_unknown_name():
    _clean_failure(runner.invoke(app, ["bench", "--only", "nope"]), 2, "unknown benchmark nope")


# ------------------------------------------------------------------ report folders


def test_report_into_a_file_is_refused(inputs):
    before = _hashes(inputs)
    result = runner.invoke(app, ["report", "--case", "beauty", "--out", str(inputs / "a_file")])
    _clean_failure(result, 1, "a_file: exists and is not a folder")
    assert _hashes(inputs) == before


def test_report_into_a_folder_under_a_file_is_refused(inputs):
    before = _hashes(inputs)
    result = runner.invoke(app, ["report", "--case", "beauty", "--out", str(inputs / "a_file" / "reports")])
    _clean_failure(result, 1, "cannot be created")
    assert _hashes(inputs) == before


def test_report_into_a_users_folder_is_refused_untouched(inputs):
    user = inputs / "user-folder"
    before = _hashes(inputs)
    result = runner.invoke(app, ["report", "--case", "beauty", "--out", str(user)])
    _clean_failure(result, 1, "not written by `privdomain report`")
    assert _hashes(inputs) == before
    assert sorted(p.name for p in user.iterdir()) == ["_work", "index.html", "summary.json"]


def test_report_into_an_unwritable_folder_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "locked"
    out.mkdir()
    real_access = os.access
    # the tests may run as root, for whom a read-only mode does not stop a write: ask os.access
    monkeypatch.setattr(reports.os, "access",
                        lambda p, mode: False if Path(p) == out and mode & os.W_OK else real_access(p, mode))
    result = runner.invoke(app, ["report", "--case", "beauty", "--out", str(out)])
    _clean_failure(result, 1, "locked: is not writable")
    assert list(out.iterdir()) == []


def test_report_into_a_folder_that_cannot_be_created_in_proc():
    result = runner.invoke(app, ["report", "--case", "beauty", "--out", "/proc/privdomain-reports"])
    _clean_failure(result, 1, "/proc/privdomain-reports: cannot be created")


# ------------------------------------------------------------------ validate inputs


@pytest.mark.parametrize("name, needles", [
    ("does-not-exist.csv", ["does-not-exist.csv: no such file or folder"]),
    ("empty.csv", ["empty.csv"]),
    ("header.csv", ["empty", "header.csv"]),
    ("notes.txt", ["notes.txt"]),
    ("book.xlsx", ["book.xlsx"]),
    ("truncated.parquet", ["truncated.parquet"]),
    ("corrupt", ["corrupt: invalid JSON", "corrupt"]),
    ("missing", ["missing"]),
    ("nomanifest", ["no dataset.json", "nomanifest"]),
    ("gbk.csv", ["utf-8", "gbk.csv"]),
])
def test_validate_bad_inputs_end_in_one_line_or_the_problem_list(inputs, name, needles):
    before = _hashes(inputs)
    result = runner.invoke(app, ["validate", str(inputs / name)])
    _clean_failure(result, 1, *needles)
    assert _hashes(inputs) == before


# ------------------------------------------------------------------ simulate inputs


@pytest.mark.parametrize("scenario, needle", [
    ("nosuch", "unknown scenario 'nosuch'"),
    ("bad.yaml", "yaml"),
])
def test_simulate_bad_scenarios_are_one_line(inputs, tmp_path, scenario, needle, monkeypatch):
    monkeypatch.chdir(inputs)
    before = _hashes(inputs)
    result = runner.invoke(app, ["simulate", "--scenario", scenario, "--persons", "100", "--out", str(tmp_path / "o")])
    _clean_failure(result, 2, needle)
    assert _hashes(inputs) == before
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ exceptions of every kind


@pytest.mark.parametrize("exc, code, needle", [
    (RuntimeError("boom"), 1, "error: internal error: RuntimeError: boom (run with --debug for the traceback)"),
    (KeyboardInterrupt(), 130, "error: interrupted"),
    (PermissionError(13, "Permission denied", "/data/x.parquet"), 1, "error: /data/x.parquet: permission denied"),
    (IsADirectoryError(21, "Is a directory", "/data"), 1, "error: /data: is a folder, a file was expected"),
    (NotADirectoryError(20, "Not a directory", "/data/f"), 1, "/data/f: is not a folder"),
    (OSError(28, "No space left on device", "/data/out"), 1, "/data/out: No space left on device"),
    (DataError("events", "amount_fen", "must be a non-negative integer", 3, [-1]), 1,
     "error: x: events: column 'amount_fen' must be a non-negative integer: 3 row(s)"),
    (UsageError.unknown("step", "payy", ["pay", "order"]), 2, "did you mean 'pay'?"),
    (UnicodeDecodeError("utf-8", b"\xd6\xa7", 0, 1, "invalid start byte"), 1, "save the file as UTF-8"),
    (ValueError("line one\nline two"), 1, "error: x: line one line two"),
])
def test_any_exception_from_validate_is_one_line(tmp_path, monkeypatch, exc, code, needle):
    import importlib

    validate_mod = importlib.import_module("privdomain.validate")

    def broken(path):
        raise exc

    monkeypatch.setattr(validate_mod, "validate_dataset", broken)
    (tmp_path / "x").write_text("x")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["validate", "x"])
    _clean_failure(result, code, needle)


def test_yaml_and_arrow_errors_are_described_on_one_line():
    import yaml

    try:
        yaml.safe_load("a: [1, 2\n")
    except yaml.YAMLError as exc:
        code, msg = describe_error(exc)
    assert code == 2 and msg.startswith("invalid YAML:") and "\n" not in msg
    code, msg = describe_error(pa.lib.ArrowInvalid("Parquet magic bytes not found"))
    assert code == 1 and "not a valid Parquet" in msg and "magic bytes" in msg


def test_debug_shows_the_traceback(inputs, monkeypatch):
    import importlib

    def broken(path):
        raise pa.lib.ArrowInvalid("Parquet magic bytes not found")

    monkeypatch.setattr(importlib.import_module("privdomain.validate"), "validate_dataset", broken)
    result = runner.invoke(app, ["--debug", "validate", str(inputs / "truncated.parquet")])
    assert isinstance(result.exception, pa.lib.ArrowInvalid)  # re-raised, so a traceback is printed
    monkeypatch.setenv("PRIVDOMAIN_DEBUG", "1")
    result = runner.invoke(app, ["validate", str(inputs / "truncated.parquet")])
    assert isinstance(result.exception, pa.lib.ArrowInvalid)
    monkeypatch.delenv("PRIVDOMAIN_DEBUG")
    result = runner.invoke(app, ["validate", str(inputs / "truncated.parquet")])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_a_bug_is_an_internal_error_line_even_outside_the_commands(monkeypatch):
    def broken(*a, **k):
        raise LookupError("nowhere")

    monkeypatch.setattr(cli, "_print_results", broken)
    monkeypatch.setattr(reports, "build_reports", lambda *a, **k: [])
    result = runner.invoke(app, ["report", "--case", "beauty", "--out", "unused"])
    _clean_failure(result, 1, "error: internal error: LookupError: nowhere (run with --debug")


@pytest.mark.parametrize("args, needle", [
    (["simulate", "--persons", "0"], "--persons"),
    (["validate", "truncated.parquet"], "truncated.parquet"),
])
def test_a_real_process_prints_one_line_and_no_traceback(inputs, args, needle):
    before = _hashes(inputs)
    env = dict(os.environ, PYTHONPATH=str(SRC))
    env.pop("PRIVDOMAIN_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "privdomain.cli", *args], cwd=inputs, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (1, 2)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    if args[0] == "validate":  # the validator's own problem list: the file, then each broken rule
        assert lines[0] == f"{needle}: invalid" and "not a readable Parquet file" in proc.stderr, proc.stderr
    else:
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert _hashes(inputs) == before
