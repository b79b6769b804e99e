"""The package stands alone: the built wheel, installed outside the checkout, simulates and reports.

The wheel is built from a copy of the checkout's sources (``python -m build --wheel``)
and installed without dependencies into a fresh virtual environment in a temporary
folder; the dependencies are those of the environment running the tests (a ``.pth``
file lists its site-packages, whose own ``.pth`` files, such as an editable install
of the checkout, are not processed). The commands then run from a temporary folder.
The source layout's links (``src/privdomain/notebooks`` and ``src/privdomain/scenarios``)
are checked too: the notebooks and presets are edited where they are.
"""

import hashlib
import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from privdomain.cli import app
from privdomain.reports import runner as reports
from privdomain.simulate.scenario import list_scenarios

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "src"  # the checkout's package (CI's .venv may sit in the checkout too: its site-packages are fine)
NOTEBOOKS = ROOT / "notebooks"
SCENARIOS = ROOT / "synthetic" / "scenarios"
SHIPPED = {  # what the wheel must carry, as {name in the wheel: file of the checkout}
    **{f"privdomain/notebooks/{p.name}": p for p in sorted(NOTEBOOKS.glob("*.py"))},
    "privdomain/notebooks/cases.yaml": NOTEBOOKS / "cases.yaml",
    **{f"privdomain/scenarios/{p.name}": p for p in sorted(SCENARIOS.glob("*.yaml"))},
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hashes() -> dict[str, str]:
    return {str(p): _sha(p.read_bytes()) for p in SHIPPED.values()}


def _run(cmd: list, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _source_copy(dest: Path) -> Path:
    """The files a wheel is built from, copied with the package-data links kept as links."""
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", ".ipynb_checkpoints", "*.ipynb")
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for folder in ("src", "notebooks", "synthetic/scenarios"):
        shutil.copytree(ROOT / folder, dest / folder, symlinks=True, ignore=skip)
    return dest


def test_source_layout_links_the_edited_folders():
    """In the checkout the package data are links to notebooks/ and synthetic/scenarios/ (edits are seen)."""
    assert (ROOT / "src" / "privdomain" / "notebooks").is_symlink()
    assert (ROOT / "src" / "privdomain" / "scenarios").is_symlink()
    assert reports.notebooks_dir().resolve() == NOTEBOOKS.resolve()
    assert {p.name for p in reports.notebooks_dir().iterdir()} >= {"cases.yaml", "case_study.py"}
    assert list_scenarios() == sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
    assert reports.repo_root() == ROOT


def test_bench_outside_a_checkout_says_where_benchmarks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["bench", "--list"])
    assert result.exit_code == 2
    assert "source checkout" in result.output and "make bench" in result.output
    assert str(tmp_path / "benchmarks") in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_simulates_and_reports(tmp_path):
    before = _hashes()
    # 1. build the wheel from a copy of the sources (nothing is written into the checkout)
    tree = _source_copy(tmp_path / "tree")
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", dist, tree], cwd=tmp_path)
    (wheel,) = dist.glob("privdomain-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        missing = sorted(set(SHIPPED) - names)
        assert not missing, f"the wheel lacks {missing}"
        for name, src in SHIPPED.items():
            assert _sha(zf.read(name)) == _sha(src.read_bytes()), name

    # 2. a fresh environment outside the checkout, the wheel installed into it without dependencies
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp_path)
                   .stdout.strip())
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index",
          "--no-compile", wheel], cwd=tmp_path)
    deps = [p for p in site.getsitepackages() if Path(p).is_dir() and not Path(p).resolve().is_relative_to(SOURCES)]
    (purelib / "privdomain-test-dependencies.pth").write_text("\n".join(deps) + "\n")
    share = Path(sys.prefix) / "share" / "jupyter"  # nbconvert's templates, data files of the dependencies
    if share.is_dir():
        (venv / "share").mkdir(exist_ok=True)
        (venv / "share" / "jupyter").symlink_to(share, target_is_directory=True)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join([str(bindir), env.get("PATH", "")])
    env["MPLBACKEND"] = "Agg"
    work = tmp_path / "work"
    work.mkdir()

    # 3. the installed package is the one imported, and the checkout is not importable at all
    probe = ("import json, sys, privdomain; from privdomain import reports; "
             "print(json.dumps([privdomain.__file__, str(reports.notebooks_dir()), reports.repo_root(), sys.path, "
             "[m for m in sys.modules if 'editable' in m]]))")
    file, nbdir, root, path, editable = json.loads(_run([python, "-c", probe], cwd=work, env=env).stdout)
    assert Path(file).resolve().is_relative_to(purelib.resolve()), file
    assert Path(nbdir).resolve().is_relative_to(purelib.resolve()), nbdir
    assert root is None
    inside = [p for p in path if p and (Path(p).resolve().is_relative_to(SOURCES) or Path(p).resolve() == ROOT)]
    assert not inside, f"the checkout's sources are on sys.path: {inside}"
    assert editable == [], f"an editable install's finder is loaded: {editable}"

    # 4. the commands, from a folder that is not the checkout
    privdomain = bindir / "privdomain"
    _run([privdomain, "simulate", "--scenario", "tea", "--persons", 300, "--out", "ds"], cwd=work, env=env)
    manifest = json.loads((work / "ds" / "dataset.json").read_text())
    assert manifest["scenario"] == "tea" and manifest["persons"] == 300 and manifest["row_counts"]["persons"] == 300
    _run([privdomain, "report", "--case", "tea", "--persons", 300, "--out", "out"], cwd=work, env=env)
    html = (work / "out" / "tea.html").read_text(encoding="utf-8")
    assert "<html" in html.lower() and len(html) > 10_000
    summary = json.loads((work / "out" / "summary.json").read_text())
    assert summary["ok"] is True and [(r["name"], r["ok"]) for r in summary["reports"]] == [("tea", True)]
    assert (work / "out" / "index.html").is_file()
    assert _hashes() == before, "files of the checkout changed"


def test_doctest_collection_does_not_import_the_notebooks(tmp_path):
    """``--doctest-modules`` on src/privdomain must not import (run) the notebooks through their link."""
    (tmp_path / "record_imports.py").write_text(
        "import json, os, sys\n"
        "def pytest_collection_finish(session):\n"
        "    files = [getattr(m, '__file__', None) or '' for m in list(sys.modules.values())]\n"
        "    open(os.environ['RECORD_IMPORTS'], 'w').write(json.dumps(files))\n")
    record = tmp_path / "imported.json"
    env = {**os.environ, "RECORD_IMPORTS": str(record),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(SOURCES), os.environ.get("PYTHONPATH", "")])}
    _run([sys.executable, "-m", "pytest", "-p", "record_imports", "-p", "no:cacheprovider", "--collect-only", "-q",
          "src/privdomain"], cwd=ROOT, env=env)
    files = json.loads(record.read_text())
    assert any(f.endswith("reports.py") for f in files)  # the recorder saw the package's modules
    notebooks = sorted(f for f in files if f and Path(f).resolve().parent == NOTEBOOKS.resolve())
    assert notebooks == [], f"collection imported notebooks: {notebooks}"
