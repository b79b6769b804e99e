"""Run the parameterised notebooks into HTML reports (``privdomain report``).

The notebooks live in ``notebooks/`` as jupytext percent-format ``.py`` files (the
readable source of truth) and ship inside the package as ``privdomain/notebooks``
(:func:`notebooks_dir`), so an installed wheel builds reports from any folder. For
each report the runner

1. simulates the case's scenario once per run into ``<out>/data/<case>``
   (:func:`load_or_simulate`; deterministic for a given seed);
2. converts the ``.py`` source to a notebook (jupytext) and executes it with
   papermill, injecting the parameters (``scenario``, ``persons``, ``seed``,
   ``windows``, ``data_dir``, ``output_dir``, ``report_name``) into its
   ``parameters`` cell. The kernel is the Python running the runner (the
   project's own environment), through a private kernelspec in a temporary
   folder, so the user's Jupyter set-up is neither used nor changed;
3. renders the executed notebook to HTML without code cells (nbconvert) as
   ``<out>/<name>.html``, moves the metrics the notebook recorded with
   :func:`record_metrics` to ``<out>/<name>.metrics.json`` and keeps the executed
   notebook in ``<out>/notebooks/<name>.ipynb``;
4. writes ``<out>/index.html`` linking every report and ``<out>/summary.json``.

A failing notebook does not stop the others. It is reported with its failing cell,
rendered *with* code as ``<out>/<name>.failed.html``; the report's previous
``.html`` and ``.metrics.json`` are removed so nothing partial looks complete, and
:func:`build_reports` returns results whose :attr:`Result.ok` is False (the command
exits non-zero).

What the runner writes, and what it never touches
-------------------------------------------------
* **Only its own folder.** ``out`` must be missing, empty, or a folder an earlier
  run wrote (it holds the marker file ``.privdomain-report``, or a ``summary.json``
  with ``"generator": "privdomain report"``). Any other folder is refused with a
  :class:`ReportFolderError` before anything is written (:func:`claim_report_folder`).
* **Whole files only.** Every file (each ``.html``, ``.metrics.json``, executed
  notebook, ``index.html``, ``summary.json``) is made in a uniquely named work folder
  ``<out>/.privdomain-work-XXXX`` or a temporary file next to it and moved into place
  with :func:`os.replace` once complete, so a killed run never leaves half a file.
  The work folder is removed at the end (one left by a killed run is removed by the
  next run); no other folder is ever deleted.
* **A truthful index.** ``index.html`` and ``summary.json`` are rewritten whenever a
  report finishes: at the start every planned report is ``pending``, then ``ok`` or
  ``failed``; a run killed outright (SIGKILL) leaves an index that says the run did
  not finish. The index links only files that exist.
* **Interrupted runs keep the previous reports.** On SIGINT or SIGTERM the runner
  kills its notebook kernels (each in its own process group) at once, marks the
  reports that did not finish as ``interrupted``, writes the index and summary and
  raises :class:`ReportsInterrupted` (the command exits 130 or 143). A report not
  rebuilt keeps its previous files, linked from the index as the *previous report*
  with its build time, so nothing stale passes for new.

Examples
--------
>>> import tempfile, json, pathlib
>>> d = tempfile.mkdtemp()
>>> record_metrics({"gmv_yuan": 1234.5, "buyers": 7}, output_dir=d, name="demo")
>>> json.loads((pathlib.Path(d) / "demo.metrics.json").read_text())["buyers"]
7
"""

from __future__ import annotations

import contextlib
import functools
import html
import json
import math
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import PrivdomainError, UsageError

__all__ = [
    "CASES", "TOPICS", "WINDOWS", "MARKER", "GENERATOR", "Job", "Result", "ReportFolderError", "ReportsInterrupted",
    "DATA_ENV", "TOPIC_NEEDS", "atomic_write", "build_data_reports", "build_reports", "data_topics", "claim_report_folder", "embed_cjk_font", "is_report_folder", "load_or_simulate",
    "declared_parameters", "load_source", "metrics_path", "notebook_title", "plan", "project_kernel", "read_metrics",
    "record_metrics", "render_html", "run_job", "topic_sources", "write_index",
]

#: The scenario presets that have a case-study report, in report order.
CASES: tuple[str, ...] = ("beauty", "tea", "sportswear", "apparel", "eyewear")
#: Topic notebooks in teaching order (those present in the notebooks folder are run).
TOPICS: tuple[str, ...] = (
    "quickstart",
    "simulate_and_inspect",
    "funnels_official_account",
    "touchpoints_channels",
    "attribution_roi",
    "lifecycle_clv",
    "experiments",
    "audiences",
    "own_data",
)
#: The scenario the topic notebooks run on, and the exceptions (a notebook whose topic
#: one scenario shows best: the tea scenario holds the randomised coupon experiment).
TOPIC_SCENARIO = "beauty"
TOPIC_SCENARIOS = {"experiments": "tea", "audiences": "sportswear"}
#: Attribution windows in days (0 = same day) passed to every notebook.
WINDOWS: tuple[int, ...] = (0, 7, 15, 30)
CASE_NOTEBOOK = "case_study"
#: Set (to the dataset folder) while ``privdomain report --data`` runs its notebooks:
#: :func:`load_or_simulate` then only opens the folder, never simulates.
DATA_ENV = "PRIVDOMAIN_REPORT_DATA"
KERNEL_NAME = "privdomain-report"
PARAMS_FILE = "report-params.json"
_METRICS_SUFFIX = ".metrics.json"


# ----------------------------------------------------------------------------- data


def repo_root() -> Path | None:
    """The source checkout privdomain runs from, or None for an installed package.

    A checkout (or an editable install of one) is the folder two levels above the
    package folder that holds ``pyproject.toml`` and ``src/privdomain``; an installed wheel
    lives in ``site-packages`` and has none. Nothing in the package needs it: the
    notebooks and scenario presets ship inside the package (:func:`notebooks_dir`).
    """
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() and (root / "src" / "privdomain").is_dir() else None


def notebooks_dir() -> Path:
    """The folder of the notebook sources and ``cases.yaml``, shipped as package data.

    ``privdomain/notebooks`` inside the installed package; in a source checkout a link
    to the top-level ``notebooks/`` (the place they are edited), so an editable install
    runs the notebooks as they are being edited.
    """
    return Path(str(resources.files("privdomain") / "notebooks"))


def default_data_dir(scenario: str) -> Path:
    """Where a notebook run by hand keeps its simulated data: ``synthetic/data/<scenario>``.

    Under the source checkout when privdomain runs from one, else under the current
    working directory (never inside an installed package).
    """
    return (repo_root() or Path.cwd()) / "synthetic" / "data" / scenario


def load_or_simulate(scenario: str, persons: int, seed: int, data_dir: str | os.PathLike | None = None,
                     force: bool = False):
    """Open the simulated dataset for these parameters, simulating it first if needed.

    The folder is reused when it holds a dataset simulated with the same
    ``scenario``, ``persons`` and ``seed`` (recorded in ``report-params.json``);
    otherwise (or with ``force``) it is simulated again, with ground truth. A folder
    that holds a dataset the simulator did not write (an import: its manifest has no
    ``simulator`` entry) is opened as it is and never simulated over, and so is any
    folder during a ``privdomain report --data`` run (the environment variable
    :data:`DATA_ENV` is set).

    Returns
    -------
    privdomain.io.Dataset
    """
    from ..io import open_dataset, read_manifest

    folder = Path(data_dir) if data_dir else default_data_dir(scenario)
    if os.environ.get(DATA_ENV):  # a `privdomain report --data` run: the dataset is read, never simulated
        if not (folder / "dataset.json").is_file():
            from ..errors import DatasetError

            raise DatasetError(folder, "not a dataset folder (no dataset.json); a report on your own data reads "
                                       "datasets and never simulates")
        return open_dataset(folder)
    if (folder / "dataset.json").exists() and not (folder / PARAMS_FILE).exists():
        try:
            own = "simulator" not in read_manifest(folder)
        except PrivdomainError:
            own = False
        if own:  # a dataset of your own (an import): read it, never simulate over it
            return open_dataset(folder)
    wanted = {"scenario": scenario, "persons": int(persons), "seed": int(seed)}
    stamp = folder / PARAMS_FILE
    if not force and stamp.exists() and (folder / "dataset.json").exists():
        try:
            if json.loads(stamp.read_text()) == wanted:
                return open_dataset(folder)
        except ValueError:
            pass
    from ..simulate import simulate

    if stamp.exists():
        stamp.unlink()
    ds = simulate(scenario=scenario, persons=int(persons), seed=int(seed), out=folder, truth=True)
    atomic_write(stamp, json.dumps(wanted) + "\n")
    return ds


def _plain(value: Any) -> Any:
    """Make a value JSON-able: numpy scalars to Python, NaN to None, keys to str."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def metrics_path(output_dir: str | os.PathLike, name: str) -> Path:
    """``<output_dir>/<name>.metrics.json``."""
    return Path(output_dir) / f"{name}{_METRICS_SUFFIX}"


def record_metrics(metrics: Mapping[str, Any], output_dir: str | os.PathLike | None, name: str) -> None:
    """Merge key metrics into ``<output_dir>/<name>.metrics.json`` (called from notebooks).

    Later calls add to (and overwrite keys of) earlier ones, so a notebook can
    record its metrics section by section. Values are made JSON-able (numpy
    scalars to Python numbers, NaN to null). With an empty ``output_dir`` (a
    notebook run by hand) nothing is written. Returns nothing, so that a call as
    the last line of a notebook cell prints nothing.
    """
    if not output_dir:
        return
    path = metrics_path(output_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update(_plain(dict(metrics)))
    atomic_write(path, json.dumps(old, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_metrics(path: str | os.PathLike) -> dict[str, Any]:
    """Read a metrics JSON file."""
    return json.loads(Path(path).read_text())


# --------------------------------------------------------------------- safe writes

#: The marker file a report folder holds: a folder with it (or with a ``summary.json``
#: whose ``generator`` is :data:`GENERATOR`) is one ``privdomain report`` wrote.
MARKER = ".privdomain-report"
GENERATOR = "privdomain report"
#: Prefix of the runner's own work folders inside the output folder.
WORK_PREFIX = ".privdomain-work-"
SUMMARY_VERSION = 2


class ReportFolderError(PrivdomainError, ValueError):
    """The output folder cannot be used (not a folder, not writable, or not a report folder).

    Raised before anything is written; ``path`` is the folder and ``problem`` says why.
    """

    def __init__(self, path: Any, problem: str):
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")


class ReportsInterrupted(PrivdomainError):
    """:func:`build_reports` was stopped by SIGINT or SIGTERM.

    Raised after the kernels were stopped and a consistent ``index.html`` and
    ``summary.json`` were written.

    Attributes
    ----------
    signum : int
        The signal received.
    exit_code : int
        ``128 + signum`` (130 for SIGINT, 143 for SIGTERM), what the command exits with.
    results : list of Result
        One per planned report; those not finished have status ``"interrupted"``.
    out : Path
        The output folder.
    """

    def __init__(self, signum: int, results: Sequence[Result], out: Path):
        self.signum, self.results, self.out = int(signum), list(results), out
        self.exit_code = 128 + self.signum
        built = sum(r.ok for r in self.results)
        super().__init__(f"interrupted by {_signame(self.signum)}: {built} of {len(self.results)} report(s) built in "
                         f"this run; {out / 'index.html'} marks the others as interrupted")


def _signame(signum: int | None) -> str | None:
    if signum is None:
        return None
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_current_umask()


def _write_all(fh: Any, data: bytes) -> None:
    """Write ``data`` to the open file ``fh`` (one place, so a test can make it fail midway)."""
    fh.write(data)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` whole or not at all.

    The bytes go to a temporary file in the same folder, which is flushed to disk and
    moved over ``path`` with :func:`os.replace`; on any error the temporary file is
    removed and ``path`` keeps its previous content.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(p, "hello").read_text()
    'hello'
    """
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_all(fh, raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _move_into_place(src: Path, dst: Path) -> None:
    """Move a finished file from the work folder (same file system) over ``dst``."""
    with contextlib.suppress(OSError):
        os.chmod(src, _FILE_MODE)
    os.replace(src, dst)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _read_summary(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _legacy_summary(data: Mapping[str, Any]) -> bool:
    """A ``summary.json`` of a runner from before the marker file (same keys, report entries)."""
    reps = data.get("reports")
    return (set(data) == {"persons", "seed", "ok", "reports"} and isinstance(reps, list) and bool(reps)
            and all(isinstance(r, dict) and {"name", "kind", "ok", "seconds", "html"} <= set(r) for r in reps))


def is_report_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder ``privdomain report`` wrote (its marker or its ``summary.json``)."""
    path = Path(path)
    if (path / MARKER).is_file():
        return True
    data = _read_summary(path)
    return bool(data) and (data.get("generator") == GENERATOR or _legacy_summary(data))


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


PLACEHOLDERS = frozenset({".gitkeep", ".keep"})
"""Files that only keep an empty folder in version control: a folder holding nothing else is empty."""


def claim_report_folder(out: str | os.PathLike) -> Path:
    """Check that ``out`` may receive reports, create it if missing, mark it; return it resolved.

    ``out`` may be missing (it is created), empty (or holding only a ``.gitkeep``), or a folder an earlier run wrote
    (:func:`is_report_folder`). Anything else raises :class:`ReportFolderError`
    before anything is written: a file, a folder of the user's, a folder that
    cannot be written, a folder another running ``privdomain report`` is writing.
    """
    out = Path(out)
    if out.is_symlink() and not out.exists():
        raise ReportFolderError(out, "is a broken symbolic link")
    if out.exists():
        if not out.is_dir():
            raise ReportFolderError(out, "exists and is not a folder; give a new or empty folder for the reports")
        try:
            with os.scandir(out) as entries:  # a placeholder that keeps an empty folder in git counts as empty
                empty = all(e.name in PLACEHOLDERS and e.is_file() for e in entries)
        except OSError as exc:
            raise ReportFolderError(out, f"cannot be read ({exc.strerror or exc})") from None
        if not empty and not is_report_folder(out):
            raise ReportFolderError(out, f"is not empty and was not written by `privdomain report` (no {MARKER} "
                                         f"marker or summary.json of its own); give a new or empty folder "
                                         f"(nothing was written)")
        prev = _read_summary(out) or {}
        if prev.get("status") == "running" and prev.get("pid") != os.getpid() and _pid_alive(prev.get("pid")):
            raise ReportFolderError(out, f"another `privdomain report` (pid {prev.get('pid')}) is writing here")
    else:
        try:
            out.mkdir(parents=True)
        except OSError as exc:
            raise ReportFolderError(out, f"cannot be created ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ReportFolderError(out, "is not writable")
    if not (out / MARKER).is_file():
        try:
            atomic_write(out / MARKER, json.dumps({"generator": GENERATOR}) + "\n")
        except OSError as exc:
            raise ReportFolderError(out, f"is not writable ({exc.strerror or exc})") from None
    return out.resolve()


def _clean_stale_work(out: Path, keep: Path | None = None) -> None:
    """Remove the work folders runs that are no longer running left in ``out`` (by their owner file)."""
    for folder in out.glob(WORK_PREFIX + "*"):
        if keep is not None and folder == keep:
            continue
        try:
            owner = json.loads((folder / "owner.json").read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(owner, dict) or owner.get("generator") != GENERATOR:
            continue
        if owner.get("pid") != os.getpid() and _pid_alive(owner.get("pid")):
            continue
        shutil.rmtree(folder, ignore_errors=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------------ notebooks


@dataclass
class Job:
    """One report to build: a notebook source run with parameters."""

    name: str
    source: Path
    parameters: dict[str, Any]
    scenario: str
    kind: str = "topic"  # "case" or "topic"
    title: str = ""
    #: for a report on your own data (``--data``): the header line naming the dataset
    data_note: str = ""


@dataclass
class Result:
    """What happened to one report."""

    name: str
    kind: str
    scenario: str
    title: str
    ok: bool
    seconds: float
    html: str | None = None
    metrics: str | None = None
    notebook: str | None = None
    failed_html: str | None = None
    cell: int | None = None
    error: str | None = None
    headline: dict[str, Any] = field(default_factory=dict)
    #: "ok", "failed", "interrupted" (the run stopped before it finished) or "pending" (in a
    #: run still going, or one killed outright); empty means "ok" or "failed" from ``ok``
    status: str = ""
    #: when this report's files were written (ISO 8601, UTC), None when nothing was written
    built_at: str | None = None
    #: for a report not rebuilt (interrupted or pending): the earlier build whose files are
    #: still in the folder (``html``, ``metrics``, ``built_at``, ``persons``, ``seed``), or None
    previous: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.status:
            self.status = "ok" if self.ok else "failed"


def notebook_title(source: str | os.PathLike) -> str:
    """The first Markdown heading of a percent-format notebook source."""
    for line in Path(source).read_text(encoding="utf-8").splitlines():
        m = re.match(r"^#\s+#+\s+(.*\S)", line)
        if m:
            return m.group(1)
    return Path(source).stem


def topic_sources(folder: str | os.PathLike | None = None) -> list[Path]:
    """The topic notebook sources present, in teaching order (then any others by name)."""
    folder = Path(folder) if folder else notebooks_dir()
    present = {p.stem: p for p in folder.glob("*.py") if p.stem != CASE_NOTEBOOK and not p.stem.startswith("_")}
    ordered = [present.pop(n) for n in TOPICS if n in present]
    return ordered + [present[n] for n in sorted(present)]


_PARAMETERS_CELL = re.compile(r'^# %% tags=\["parameters"\]\n(.*?)(?=^# %%|\Z)', re.M | re.S)


def declared_parameters(source: str | os.PathLike) -> set[str]:
    """The names a notebook source assigns in its ``parameters`` cell.

    The runner injects ``windows`` only into the notebooks that declare it (papermill
    would otherwise add a parameter the notebook never reads).

    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "n.py"
    >>> _ = p.write_text('# %% tags=["parameters"]\\nseed = 7  # a seed\\nwindows = [0, 7]\\n\\n# %%\\nx = 1\\n')
    >>> sorted(declared_parameters(p))
    ['seed', 'windows']
    """
    m = _PARAMETERS_CELL.search(Path(source).read_text(encoding="utf-8"))
    return set(re.findall(r"^([A-Za-z_]\w*)\s*=", m.group(1), re.M)) if m else set()


def _params_for(src: Path, params: dict[str, Any]) -> dict[str, Any]:
    if "windows" in params and "windows" not in declared_parameters(src):
        params = {k: v for k, v in params.items() if k != "windows"}
    return params


def plan(cases: Sequence[str], persons: int, seed: int, out: str | os.PathLike, topics: bool = True,
         notebooks: str | os.PathLike | None = None, windows: Sequence[int] = WINDOWS,
         work: str | os.PathLike | None = None) -> list[Job]:
    """The reports to build: one case study per case, then the topic notebooks.

    Topic notebooks run on :data:`TOPIC_SCENARIO`'s data (or the one
    :data:`TOPIC_SCENARIOS` names; simulated once, shared with the case study) when
    ``topics`` is true. A notebook records its metrics into ``<work>/<name>``
    (``work`` defaults to ``<out>/.privdomain-work``; :func:`build_reports` passes its
    own uniquely named work folder). Nothing is written.
    """
    folder = Path(notebooks) if notebooks else notebooks_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"no notebook folder at {folder}: privdomain's notebooks ship inside the package "
                                f"(privdomain/notebooks) and are missing here: reinstall privdomain")
    out = Path(out)
    work = Path(work) if work is not None else out / WORK_PREFIX.rstrip("-")

    def params(scenario: str, name: str) -> dict[str, Any]:
        return {"scenario": scenario, "persons": int(persons), "seed": int(seed), "windows": list(windows),
                "data_dir": str((out / "data" / scenario).resolve()),
                "output_dir": str((work / name).resolve()), "report_name": name}

    jobs: list[Job] = []
    case_src = folder / f"{CASE_NOTEBOOK}.py"
    for case in cases:
        if case not in CASES:
            raise ValueError(f"unknown case {case!r}: choose one of {', '.join(CASES)}")
        jobs.append(Job(case, case_src, _params_for(case_src, params(case, case)), case, "case",
                        _case_title(folder, case)))
    if topics:
        for src in topic_sources(folder):
            scenario = TOPIC_SCENARIOS.get(src.stem, TOPIC_SCENARIO)
            jobs.append(Job(src.stem, src, _params_for(src, params(scenario, src.stem)), scenario, "topic",
                            notebook_title(src)))
    return jobs



def _case_title(folder: Path, case: str) -> str:
    stories = folder / "cases.yaml"
    if stories.exists():
        import yaml

        story = (yaml.safe_load(stories.read_text(encoding="utf-8")) or {}).get(case) or {}
        if story.get("title"):
            return str(story["title"])
    return f"Case study: {case}"


@contextmanager
def project_kernel():
    """A kernelspec for the running Python, visible only to this process.

    Writes ``kernels/privdomain-report/kernel.json`` (``sys.executable -m
    ipykernel_launcher``) into a temporary folder and puts that folder first on
    ``JUPYTER_PATH`` for the duration; yields the kernel name.
    """
    tmp = Path(tempfile.mkdtemp(prefix="privdomain-kernel-"))
    spec = tmp / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--IPKernelApp.log_level=CRITICAL"],
        "display_name": "privdomain (project environment)",
        "language": "python",
        "metadata": {"supported_encryption": ["curve"]},
        "env": {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONWARNINGS": "ignore::DeprecationWarning"},
    }))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(tmp)] + ([old] if old else []))
    try:
        yield KERNEL_NAME
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old
        shutil.rmtree(tmp, ignore_errors=True)


def load_source(source: str | os.PathLike):
    """Read a jupytext percent-format ``.py`` (or an ``.ipynb``) as a notebook node."""
    import jupytext

    nb = jupytext.read(str(source))
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "privdomain", "language": "python"}
    nb.metadata.pop("jupytext", None)
    return nb


def _header_cell(job: Job):
    import nbformat

    p = job.parameters
    text = (f"<small>[← all reports](index.html) · scenario `{job.scenario}` · {p['persons']:,} persons · "
            f"seed {p['seed']} · simulated data</small>")
    if job.data_note:
        text = f"<small>[← all reports](index.html) · {html.escape(job.data_note)}</small>"
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": ["report-header"]})


def render_html(nb, html_path: str | os.PathLike, title: str, hide_code: bool = True) -> Path:
    """Render a notebook node to a standalone HTML file (code cells hidden by default).

    Cells tagged ``remove-cell`` (notes for someone editing the notebook) are left out.
    The file is written whole or not at all (:func:`atomic_write`).
    """
    import logging

    from nbconvert import HTMLExporter

    logging.getLogger("traitlets").setLevel(logging.ERROR)  # not the alt-text notice on every figure
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(template_name="lab")
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"remove-cell"}, enabled=True), True)
    exporter.exclude_input = hide_code
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    path = Path(html_path)
    atomic_write(path, embed_cjk_font(offline_page(body, figure_alts(nb))))
    return path


def figure_alts(nb) -> list[str]:
    """The alt text of each PNG output of a notebook, in order (see :func:`privdomain.plotting.figure_title`)."""
    out = []
    for cell in nb.cells:
        if "remove-cell" in cell.get("metadata", {}).get("tags", []):
            continue
        for o in cell.get("outputs", []):
            if "image/png" in o.get("data", {}):
                md = o.get("metadata", {}).get("image/png", {})
                out.append(str(md.get("alt") or "Figure without a title"))
    return out


def offline_page(page: str, alts: list[str] | None = None) -> str:
    """A report page that works offline and for screen readers.

    Drops every ``<script src=...>`` loaded from the network (require.js and MathJax from a
    CDN, often unreachable in mainland China; no report uses them) and the MathJax set-up,
    and gives each output figure its alt text (``alts``, in page order).

    >>> offline_page('<script src="https://cdn.x/require.js"></script><p>ok</p>')
    '<p>ok</p>'
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page, features="html.parser")
    for tag in soup.find_all("script"):
        src = tag.get("src", "")
        text = tag.string or ""
        if src.startswith(("http:", "https:", "//")) or "MathJax" in text:
            tag.decompose()
    imgs = soup.select("div.jp-RenderedImage img")
    if alts is not None and len(alts) == len(imgs):
        for img, alt in zip(imgs, alts):
            img["alt"] = alt
    return str(soup)


# the CJK subset first: it holds only the page's non-ASCII characters, so Latin text
# falls through to the reader's fonts (browsers split runs reliably at that point,
# less so when the fallback comes last)
_FONT_STACK = '"privdomain CJK", system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif'


@functools.lru_cache(maxsize=16)
def _font_style(chars: str) -> str:
    """The ``<style>`` embedding the CJK font subset for ``chars`` (cached: the index is written often)."""
    import base64
    import io

    from fontTools import subset
    from fontTools.ttLib import TTFont

    from ..plotting import find_cjk_font

    opts = subset.Options()
    opts.notdef_outline = True
    opts.layout_features = []  # no OpenType layout: plain horizontal text needs none
    font = TTFont(str(find_cjk_font().path), lazy=True)
    sub = subset.Subsetter(opts)
    sub.populate(text=chars)
    sub.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return ("<style>@font-face{font-family:\"privdomain CJK\";"
            f"src:url(data:font/otf;base64,{data}) format(\"opentype\");}}"
            f":root{{--jp-content-font-family:{_FONT_STACK};--jp-ui-font-family:{_FONT_STACK};"
            f"--jp-code-font-family:\"privdomain CJK\",Menlo,Consolas,\"DejaVu Sans Mono\",monospace;}}"
            f"body{{font-family:{_FONT_STACK};}}</style>")


def embed_cjk_font(page: str) -> str:
    """Embed a subset of the CJK font holding exactly the page's non-ASCII characters.

    So that Chinese text renders on a reader's machine without CJK fonts: the subset
    (tens of kB for a report) is put into the page as a base64 ``@font-face`` and
    put first in the page's font stacks, so that the browser takes from it exactly
    the page's Chinese characters.
    """
    chars = "".join(sorted({c for c in page if ord(c) > 127}))
    if not chars:
        return page
    style = _font_style(chars)
    return page.replace("</head>", style + "\n</head>", 1) if "</head>" in page else style + page


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ADDED_TAGS = {"injected-parameters", "papermill-error-cell-tag", "report-header"}


def _failing_cell(nb) -> tuple[int | None, str | None, str | None]:
    """The failing cell as (1-based number in the ``.py`` source, error, the line that raised).

    Cells the run added (papermill's injected parameters and error banners) are not
    counted, so the number is the cell's position in the notebook source a reader edits.
    """
    number = 0
    for cell in nb.cells:
        if _ADDED_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        number += 1
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                where = ""
                for frame in output.get("traceback", []):
                    for ln in _ANSI.sub("", frame).splitlines():
                        if ln.lstrip().startswith("---->"):
                            where = re.sub(r"^\s*---->\s*", "line ", ln).strip()
                            break
                    if where:
                        break
                return number, f"{output.get('ename')}: {output.get('evalue')}", where[:100] or None
    return None, None, None



# ------------------------------------------------------------------------- kernels


def _kill_kernel(km: Any) -> bool:
    """Kill a started kernel's process group at once; True if it was running."""
    prov = getattr(km, "provisioner", None)
    proc = getattr(prov, "process", None)
    if proc is None:
        return False
    try:
        if proc.poll() is not None:
            return False
        pgid = getattr(prov, "pgid", None)
        # the kernel runs in its own session (jupyter_client starts it so); never our own group
        if pgid and hasattr(os, "killpg") and pgid != os.getpgrp():
            os.killpg(pgid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError, OSError):
        return False
    return True


def _kill_child_kernels() -> int:
    """Kill any kernel process among this process's children (those a manager had not reported yet)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a dependency of the notebook stack
        return 0
    killed = 0
    for child in psutil.Process().children(recursive=True):
        try:
            if "ipykernel_launcher" in " ".join(child.cmdline()):
                child.kill()
                killed += 1
        except (psutil.Error, OSError):
            continue
    return killed


class _Flag:
    """A stop flag a signal handler may set (a plain attribute: no lock, so no deadlock)."""

    def __init__(self) -> None:
        self.value = False

    def set(self) -> None:
        self.value = True

    def is_set(self) -> bool:
        return self.value


class _Interrupt(BaseException):
    """Raised by the signal handler while the main thread simulates (not an ``Exception``)."""


class _Run:
    """The state of one :func:`build_reports` run: results so far, kernels, the stop flag."""

    def __init__(self, out: Path, jobs: Sequence[Job], persons: int, seed: int, previous: dict[str, Any] | None):
        self.out, self.jobs, self.persons, self.seed = out, list(jobs), persons, seed
        self.previous = previous or {}
        self.run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{os.getpid()}"
        self.started = _now()
        self.stop = _Flag()
        self.signum: int | None = None
        self.in_simulation = False
        self.lock = threading.RLock()  # publishing a report's files and rewriting the index
        self.results: dict[str, Result] = {}
        self.final = False
        self._kernels: list[Any] = []
        self._klock = threading.Lock()
        self.manager_class = _tracked_manager_class(self)
        self.data: dict[str, Any] | None = None  # a --data run: the dataset, its currency, the topics skipped

    # kernels
    def add_kernel(self, km: Any) -> None:
        with self._klock:
            self._kernels.append(km)
        if self.stop.is_set():  # started while stopping: it must not outlive the run
            _kill_kernel(km)

    def kill_kernels(self) -> int:
        with self._klock:
            kms = list(self._kernels)
        killed = sum(_kill_kernel(km) for km in kms)
        killed += _kill_child_kernels()
        deadline = time.monotonic() + 1.0
        for km in kms:  # reap them (they die at once; a zombie is not left behind)
            proc = getattr(getattr(km, "provisioner", None), "process", None)
            with contextlib.suppress(Exception):
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
        return killed

    # results and the index
    def previous_build(self, name: str) -> dict[str, Any] | None:
        """The earlier build whose ``<name>.html`` is in the folder, if any."""
        page = self.out / f"{name}.html"
        if not page.is_file():
            return None
        info: dict[str, Any] = {"html": page.name, "built_at": None, "persons": None, "seed": None}
        entry = next((r for r in self.previous.get("reports", []) if isinstance(r, dict) and r.get("name") == name),
                     None)
        if entry is not None:
            if entry.get("status", "ok" if entry.get("ok") else "failed") == "ok" and entry.get("ok"):
                info.update(built_at=entry.get("built_at"), persons=self.previous.get("persons"),
                            seed=self.previous.get("seed"))
            elif isinstance(entry.get("previous"), dict):
                info.update({k: entry["previous"].get(k) for k in ("built_at", "persons", "seed")})
        if metrics_path(self.out, name).is_file():
            info["metrics"] = metrics_path(self.out, name).name
        return info

    def earlier(self) -> list[dict[str, Any]]:
        """Reports of earlier runs not in this run's plan whose page is still in the folder."""
        planned = {j.name for j in self.jobs}
        found: dict[str, dict[str, Any]] = {}
        prev = self.previous
        for entry in list(prev.get("earlier", [])) + list(prev.get("reports", [])):
            if not isinstance(entry, dict) or entry.get("name") in planned or not entry.get("html"):
                continue
            if not (self.out / str(entry["html"])).is_file():
                continue
            if entry in prev.get("reports", []):
                if not entry.get("ok"):
                    continue
                entry = {**entry, "persons": entry.get("persons", prev.get("persons")),
                         "seed": entry.get("seed", prev.get("seed"))}
            found[str(entry["name"])] = entry
        return list(found.values())

    def snapshot(self, unfinished: str) -> list[Result]:
        out = []
        for job in self.jobs:
            res = self.results.get(job.name)
            if res is None:
                error = {"interrupted": f"interrupted by {_signame(self.signum)} before it finished",
                         "failed": "the report did not finish (an error outside the notebook; see the log)"
                         }.get(unfinished)
                res = Result(job.name, job.kind, job.scenario, job.title, ok=False, seconds=0.0, error=error,
                             status=unfinished, previous=self.previous_build(job.name))
            out.append(res)
        return out

    def write_journal(self, status: str) -> list[Result]:
        """Rewrite ``index.html`` and ``summary.json`` with the state now (call with the lock held)."""
        unfinished = {"interrupted": "interrupted", "running": "pending"}.get(status, "failed")
        results = self.snapshot(unfinished)
        write_index(results, self.out, persons=self.persons, seed=self.seed, status=status,
                    signal_name=_signame(self.signum), run_id=self.run_id, started=self.started,
                    earlier=self.earlier(), data=self.data)
        return results

    def publish(self, job: Job, res: Result, staged: _Staged) -> bool:
        """Move a finished report's files into the folder and update the index (False once stopping)."""
        with self.lock:
            if self.stop.is_set() or self.final:
                return False
            _publish(job, res, staged, self.out, journal=lambda: self._record(res))
            return True

    def _record(self, res: Result) -> None:
        self.results[res.name] = res
        self.write_journal("running")


def _tracked_manager_class(run: _Run) -> type:
    """A kernel manager class that reports each kernel it starts to ``run`` (so it can be killed)."""
    from jupyter_client.manager import AsyncKernelManager

    class TrackedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            await super()._async_launch_kernel(kernel_cmd, **kw)
            run.add_kernel(self)

    return TrackedKernelManager


# ------------------------------------------------------------------------- one job


@dataclass
class _Staged:
    """A report's finished files in the work folder, waiting to be moved into place."""

    html: Path | None = None
    metrics: Path | None = None
    notebook: Path | None = None
    failed_html: Path | None = None


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _execute(job: Job, work: Path, kernel_name: str, timeout: int,
             manager_class: type | None = None) -> tuple[Result, _Staged]:
    """Run the notebook and render its pages, all inside ``work``; nothing in the output folder changes."""
    import nbformat
    import papermill as pm

    staging = Path(job.parameters["output_dir"])
    staging.mkdir(parents=True, exist_ok=True)
    _unlink(metrics_path(staging, job.name))
    executed = work / f"{job.name}.ipynb"
    _unlink(executed)
    start = time.perf_counter()
    error = cell = None
    try:
        nb = load_source(job.source)
        extra = {"kernel_manager_class": manager_class} if manager_class is not None else {}
        # no cwd: papermill would chdir the whole process, which other threads share
        pm.execute_notebook(nb, str(executed), parameters=job.parameters, kernel_name=kernel_name,
                            progress_bar=False, request_save_on_cell_execute=False, execution_timeout=timeout,
                            **extra)
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none stops the run
        error = f"{exc.ename}: {exc.evalue}" if hasattr(exc, "ename") else _error_text(exc)
    res = Result(job.name, job.kind, job.scenario, job.title, ok=error is None, seconds=time.perf_counter() - start)
    staged = _Staged()
    done = None
    try:
        done = nbformat.read(str(executed), as_version=4) if executed.exists() else None
        if done is not None:
            staged.notebook = executed
            bad, msg, where = _failing_cell(done)  # also catches an error output that did not stop the run
            if bad is not None:
                cell, error, res.ok = bad, error or msg, False
                error = f"{error} (in: {where})" if where else error
            done.cells.insert(0, _header_cell(job))
        if res.ok:
            if done is None:
                raise RuntimeError(f"the executed notebook of {job.name} is missing")
            staged.html = render_html(done, work / f"{job.name}.html", job.title)
            staged_metrics = metrics_path(staging, job.name)
            if staged_metrics.exists():
                res.headline = read_metrics(staged_metrics)
                staged.metrics = staged_metrics
        else:
            res.cell, res.error = cell, error
            if done is not None:
                staged.failed_html = render_html(done, work / f"{job.name}.failed.html", f"FAILED: {job.title}",
                                                 hide_code=False)
    except Exception as exc:  # noqa: BLE001 - a rendering failure fails this report only
        res.ok, res.status, res.cell = False, "failed", cell
        res.error = "rendering failed: " + _error_text(exc)
        staged.html = staged.metrics = staged.failed_html = None
    res.status = "ok" if res.ok else "failed"
    return res, staged


def _publish(job: Job, res: Result, staged: _Staged, out: Path, journal: Callable[[], None] | None = None) -> None:
    """Move a report's finished files over its old ones, then (for a failure) remove the old page.

    Each move is an :func:`os.replace`, so every file is either the old or the new one.
    The index (``journal``) is rewritten before anything the old index links is removed.
    """
    name = job.name
    res.built_at = _now()
    if staged.notebook is not None:
        nbdir = out / "notebooks"
        nbdir.mkdir(exist_ok=True)
        _move_into_place(staged.notebook, nbdir / f"{name}.ipynb")
        res.notebook = f"notebooks/{name}.ipynb"
    if res.ok and staged.html is not None:
        if staged.metrics is not None:
            _move_into_place(staged.metrics, metrics_path(out, name))
            res.metrics = metrics_path(out, name).name
        else:
            _unlink(metrics_path(out, name))  # an old file would pass for this run's metrics
        _move_into_place(staged.html, out / f"{name}.html")
        res.html = f"{name}.html"
        if journal:
            journal()
        _unlink(out / f"{name}.failed.html")
    else:
        res.ok, res.status, res.html, res.metrics = False, "failed", None, None
        if staged.failed_html is not None:
            _move_into_place(staged.failed_html, out / f"{name}.failed.html")
            res.failed_html = f"{name}.failed.html"
        else:
            _unlink(out / f"{name}.failed.html")
        if journal:
            journal()
        # a failed report leaves nothing that looks complete
        _unlink(out / f"{name}.html")
        _unlink(metrics_path(out, name))


def run_job(job: Job, out: str | os.PathLike, kernel_name: str = KERNEL_NAME, timeout: int = 1200, *,
            work: str | os.PathLike | None = None, _run: _Run | None = None) -> Result:
    """Execute one notebook, render it and move its files into ``out``; never raises for a failing notebook.

    The notebook runs and its pages are rendered in a work folder (``work``, or a
    private ``<out>/.privdomain-work-XXXX`` removed at the end); the finished files
    then replace the report's old ones with :func:`os.replace`, so a run stopped
    midway leaves the old files whole. A failing notebook leaves
    ``<out>/<name>.failed.html`` and removes the old ``<name>.html`` and
    ``<name>.metrics.json``.
    """
    out = Path(out).resolve()
    own_work = work is None
    work_dir = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=out)) if own_work else Path(work)
    staging = Path(job.parameters["output_dir"])
    own_staging = not staging.exists()
    try:
        res, staged = _execute(job, work_dir, kernel_name, timeout,
                               manager_class=_run.manager_class if _run is not None else None)
        if _run is None:
            _publish(job, res, staged, out)
        elif not _run.publish(job, res, staged):
            res.ok, res.status = False, "interrupted"
        return res
    finally:
        if own_work:
            shutil.rmtree(work_dir, ignore_errors=True)
        if own_staging:
            shutil.rmtree(staging, ignore_errors=True)


# ---------------------------------------------------------------------------- build


def _failed_all(jobs: Iterable[Job], error: str) -> list[Result]:
    return [Result(j.name, j.kind, j.scenario, j.title, ok=False, seconds=0.0, error=error) for j in jobs]


@contextmanager
def _signals(run: _Run, enabled: bool):
    """Route SIGINT and SIGTERM to ``run``'s stop flag for the duration (main thread only)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        run.stop.set()
        if run.signum is None:
            run.signum = signum
        if run.in_simulation:
            run.in_simulation = False
            raise _Interrupt(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def build_reports(cases: Sequence[str] = CASES, persons: int = 50_000, seed: int = 7, out: str | os.PathLike = "reports",
                  topics: bool = True, jobs: int = 2, progress: bool = True, notebooks: str | os.PathLike | None = None,
                  simulate: Callable[..., Any] | None = None, timeout: int = 1200,
                  handle_signals: bool = True) -> list[Result]:
    """Simulate each case once, run its notebooks, render HTML, write the index.

    Parameters
    ----------
    cases
        Case names (see :data:`CASES`).
    persons, seed
        Simulation size and seed, the same for every case.
    out
        Output folder (``index.html``, ``summary.json``, ``<name>.html``,
        ``<name>.metrics.json``, ``notebooks/``, ``data/``): missing, empty, or one
        an earlier run wrote (else :class:`ReportFolderError`, nothing written).
    topics
        Also run the topic notebooks (on :data:`TOPIC_SCENARIO`'s data).
    jobs
        Notebooks executed at once (each in its own kernel process).
    progress
        Show a progress bar naming the notebooks running.
    notebooks
        Folder of notebook sources (default :func:`notebooks_dir`).
    simulate
        ``simulate(scenario, persons, seed, data_dir)``; default :func:`load_or_simulate`
        with ``force=True`` (a fresh simulation per run).
    timeout
        Seconds a notebook cell may run.
    handle_signals
        Catch SIGINT and SIGTERM (when called from the main thread): the kernels are
        killed at once, the index marks the unfinished reports ``interrupted`` and
        :class:`ReportsInterrupted` is raised.

    Returns
    -------
    list of Result
        One per report, in :func:`plan` order; ``all(r.ok for r in results)`` when
        every report was built.

    Raises
    ------
    UsageError
        ``persons`` or ``jobs`` below 1, an unknown case (before anything is written).
    ReportFolderError
        ``out`` is not a folder the reports may be written into.
    ReportsInterrupted
        On SIGINT or SIGTERM, after the index and summary were written.
    """
    from tqdm.auto import tqdm

    if int(persons) < 1:
        raise UsageError(f"persons must be at least 1, got {persons}")
    if int(jobs) < 1:
        raise UsageError(f"jobs must be at least 1, got {jobs}")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise UsageError.unknown("case", unknown[0], CASES)
    all_jobs = plan(cases, persons, seed, out, topics=topics, notebooks=notebooks)  # checks before any write
    out = claim_report_folder(out)
    _clean_stale_work(out)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=out))
    try:
        atomic_write(work / "owner.json", json.dumps({"generator": GENERATOR, "pid": os.getpid()}) + "\n")
        for job in all_jobs:
            job.parameters["output_dir"] = str(work / "metrics" / job.name)
            job.parameters["data_dir"] = str(out / "data" / job.scenario)
        run = _Run(out, all_jobs, int(persons), int(seed), _read_summary(out))
        with _signals(run, handle_signals):
            results = _build(run, all_jobs, work, jobs, progress, simulate, timeout, tqdm)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if run.stop.is_set():
        raise ReportsInterrupted(run.signum or signal.SIGINT, results, out)
    return results


def _build(run: _Run, all_jobs: list[Job], work: Path, jobs: int, progress: bool,
           simulate: Callable[..., Any] | None, timeout: int, tqdm: Any) -> list[Result]:
    out = run.out
    simulate = simulate or (lambda s, n, k, d: load_or_simulate(s, n, k, d, force=True))
    scenarios = list(dict.fromkeys(j.scenario for j in all_jobs))
    bar = tqdm(total=len(scenarios) + len(all_jobs), desc="reports", unit="step", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    with run.lock:
        run.write_journal("running")
    ready: list[Job] = []
    try:
        for scenario in scenarios:
            if run.stop.is_set():
                break
            bar.set_postfix_str(f"{'checking' if run.data is not None else 'simulating'} {scenario}")
            mine = [j for j in all_jobs if j.scenario == scenario]
            try:
                run.in_simulation = True
                try:
                    simulate(scenario, run.persons, run.seed, out / "data" / scenario)
                finally:
                    run.in_simulation = False
                ready += mine
            except Exception as exc:  # noqa: BLE001 - reported per report, the others go on
                msg = "simulation failed: " + _error_text(exc)
                for job, res in zip(mine, _failed_all(mine, msg)):
                    run.publish(job, res, _Staged())
                bar.update(len(mine))
            bar.update(1)
    except _Interrupt:
        pass
    if not run.stop.is_set():
        _run_notebooks(run, ready, work, jobs, timeout, bar)
    bar.close()
    if run.stop.is_set():
        run.kill_kernels()
    with run.lock:
        run.final = True
        if run.stop.is_set():
            status = "interrupted"
        else:
            done = [run.results.get(j.name) for j in all_jobs]
            status = "complete" if all(r is not None and r.ok for r in done) else "failed"
        return run.write_journal(status)


def _run_notebooks(run: _Run, ready: list[Job], work: Path, jobs: int, timeout: int, bar: Any) -> None:
    """Run the notebooks on ``jobs`` daemon threads; return when all are done or the run is stopping."""
    todo: queue.Queue[Job] = queue.Queue()
    for job in ready:
        todo.put(job)
    running: list[str] = []

    with project_kernel() as kernel:

        def worker() -> None:
            while not run.stop.is_set():
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                running.append(job.name)
                bar.set_postfix_str("running " + ", ".join(running))
                try:
                    run_job(job, run.out, kernel_name=kernel, timeout=timeout, work=work, _run=run)
                except Exception as exc:  # noqa: BLE001 - e.g. a full disk while publishing: this report fails
                    with contextlib.suppress(Exception):
                        run.publish(job, Result(job.name, job.kind, job.scenario, job.title, ok=False, seconds=0.0,
                                                error=_error_text(exc)), _Staged())
                finally:
                    running.remove(job.name)
                    bar.set_postfix_str("running " + ", ".join(running) if running else "")
                    bar.update(1)

        # daemon threads: once stopping, the process need not wait for a thread stuck on a dead kernel
        threads = [threading.Thread(target=worker, name=f"privdomain-report-{i}", daemon=True)
                   for i in range(min(jobs, max(len(ready), 1)))]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads) and not run.stop.is_set():
            time.sleep(0.05)
        if run.stop.is_set():
            run.kill_kernels()
            for t in threads:  # a short grace, so that threads see the dead kernels and stop quietly
                t.join(timeout=0.1)


# ---------------------------------------------------------------------------- index

_INDEX_CSS = """
body{max-width:980px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.5}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%} td,th{text-align:left;padding:.45em .6em;border-bottom:1px solid #eee;
vertical-align:top} th{background:#f5f7f6} .ok{color:#2e7d5b;font-weight:600} .failed{color:#c44e52;font-weight:700}
.stale{color:#b36b00;font-weight:700} .muted{color:#777;font-size:.9em} code{background:#f3f3f3;padding:0 .25em}
"""

_HEADLINES = 3


def _headline_text(metrics: Mapping[str, Any]) -> str:
    if isinstance(metrics.get("summary"), str):  # a notebook's own one-line summary
        return html.escape(metrics["summary"])
    items = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float, str)) and k != "scenario"][:_HEADLINES]
    parts = []
    for k, v in items:
        if isinstance(v, float):
            v = f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        elif isinstance(v, (dict, list)):
            continue
        parts.append(f"{html.escape(str(k))} = {html.escape(str(v))}")
    return "; ".join(parts)


def _link(out: Path, target: str | None, text: str, cls: str = "") -> str:
    """An ``<a>`` to ``target`` if that file exists in ``out``, else the plain text (never a dead link)."""
    if target and (out / target).is_file():
        klass = f' class="{cls}"' if cls else ""
        return f'<a{klass} href="{html.escape(target)}">{text}</a>'
    return text


def _built_text(info: Mapping[str, Any]) -> str:
    bits = [f"built {info['built_at']}" if info.get("built_at") else "built by an earlier run"]
    if info.get("persons"):
        bits.append(f"{int(info['persons']):,} persons")
    if info.get("seed") is not None:
        bits.append(f"seed {info['seed']}")
    return html.escape(", ".join(bits))


def _row(r: Result, out: Path) -> str:
    if r.status == "ok":
        status = '<span class="ok">ok</span>'
        link = _link(out, r.html, html.escape(r.title))
        extra = _headline_text(r.headline)
        if r.metrics and (out / r.metrics).is_file():
            extra += " " + _link(out, r.metrics, "metrics JSON", "muted")
    elif r.status == "failed":
        status = '<span class="failed">FAILED</span>'
        link = html.escape(r.title)
        where = f"cell {r.cell}: " if r.cell is not None else ""
        extra = f"{html.escape(where)}<code>{html.escape(r.error or '')}</code>"
        if r.failed_html and (out / r.failed_html).is_file():
            extra += " " + _link(out, r.failed_html, "notebook with the error")
    else:  # interrupted, or pending in a run not finished
        label = "INTERRUPTED" if r.status == "interrupted" else "not rebuilt yet"
        status = f'<span class="stale">{label}</span>'
        link = html.escape(r.title)
        extra = html.escape(r.error or "not finished in this run")
        prev = r.previous or {}
        if prev.get("html") and (out / prev["html"]).is_file():
            extra += ("; " + _link(out, prev["html"], "previous report")
                      + f' <span class="stale">(stale: {_built_text(prev)})</span>')
    return (f"<tr><td>{link}</td><td>{html.escape(r.scenario)}</td><td>{status}</td>"
            f"<td>{r.seconds:.0f} s</td><td>{extra}</td></tr>")


def _earlier_row(entry: Mapping[str, Any], out: Path) -> str:
    title = html.escape(str(entry.get("title") or entry.get("name")))
    link = _link(out, entry.get("html"), title)
    return (f"<tr><td>{link}</td><td>{html.escape(str(entry.get('scenario', '')))}</td>"
            f'<td><span class="stale">earlier run</span></td><td></td><td>{_built_text(entry)}</td></tr>')


def write_index(results: Sequence[Result], out: str | os.PathLike, persons: int | None = None,
                seed: int | None = None, *, status: str | None = None, signal_name: str | None = None,
                run_id: str | None = None, started: str | None = None,
                earlier: Sequence[Mapping[str, Any]] = (), data: Mapping[str, Any] | None = None) -> Path:
    """Write ``index.html`` linking every report and ``summary.json``, each whole or not at all.

    ``status`` is the run's: ``"complete"`` (every report ok), ``"failed"``,
    ``"interrupted"`` (``signal_name`` says by what) or ``"running"`` (the index a run
    keeps while it goes; it is what stays if the run is killed outright). By default
    it follows the results. Each report shows its own status; a report not rebuilt
    links its previous page marked stale. The index links only files that exist, and
    ``summary.json`` says ``"ok": true`` only for a complete run. ``data`` (a ``--data``
    run): ``{"path", "currency", "skipped": {topic: why}}``, shown instead of the
    simulation parameters.
    """
    out = Path(out)
    if status is None:
        status = "complete" if all(r.status == "ok" for r in results) else "failed"
    failed = [r for r in results if r.status == "failed"]
    unfinished = [r for r in results if r.status in ("interrupted", "pending")]
    built = [r for r in results if r.status == "ok"]
    rows: dict[str, list[str]] = {"case": [], "topic": []}
    for r in results:
        rows.setdefault(r.kind, []).append(_row(r, out))
    head = "<tr><th>report</th><th>scenario</th><th>status</th><th>time</th><th>key figures</th></tr>"
    sections = []
    for kind, heading in (("case", "Case studies 案例"), ("topic", "Topic notebooks 专题")):
        if rows.get(kind):
            sections.append(f"<h2>{heading}</h2><table>{head}{''.join(rows[kind])}</table>")
    kept = [e for e in earlier if e.get("html") and (out / str(e["html"])).is_file()]
    if kept:
        sections.append("<h2>Earlier runs (not part of this run)</h2><table>"
                        f"{head}{''.join(_earlier_row(e, out) for e in kept)}</table>")
    params = " · ".join(x for x in (f"{persons:,} persons per scenario" if persons else "",
                                    f"seed {seed}" if seed is not None else "") if x)
    banner = []
    if status == "running":
        banner.append(f'<p class="stale">A run started {html.escape(started or "")} has not finished: '
                      f"{len(built)} of {len(results)} reports built so far. If no <code>privdomain report</code> "
                      f"is running, it was killed; reports not rebuilt link their previous page, marked stale.</p>")
    elif status == "interrupted":
        banner.append(f'<p class="failed">Interrupted by {html.escape(signal_name or "a signal")}: '
                      f"{len(built)} of {len(results)} reports built in this run; {len(unfinished)} INTERRUPTED "
                      f"(their previous page, if any, is linked and marked stale).</p>")
    if failed:
        banner.append(f'<p class="failed">{len(failed)} of {len(results)} reports FAILED.</p>')
    if status == "complete":
        banner.append(f'<p class="ok">All {len(results)} reports built.</p>')
    intro = (f'<p class="muted">Built from simulated data ({html.escape(params)}). The case figures quoted in the '
             f"case studies are those reported by 2020 trade articles on Tencent's private-domain products, not "
             f"results of this package.</p>")
    if data is not None:
        from ..plotting import money as _money

        skipped = "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>"
                          for k, v in dict(data.get("skipped") or {}).items())
        intro = (f'<p class="muted">Built from your dataset <code>{html.escape(str(data.get("path")))}</code> '
                 f"(read only; nothing simulated). Money in {html.escape(str(data.get('currency', 'CNY')))}, "
                 f"e.g. {html.escape(_money(1234.5, str(data.get('currency', 'CNY'))))}.</p>"
                 + (f"<h2>Topics skipped</h2><ul>{skipped}</ul>" if skipped else ""))
    page = f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>privdomain reports</title>
<style>{_INDEX_CSS}</style></head><body>
<h1>privdomain reports 私域运营分析报告</h1>
{intro}
{''.join(banner)}
{''.join(sections)}
</body></html>
"""
    reports_json = []
    for r in results:
        entry = asdict(r)
        for key in ("html", "metrics", "notebook", "failed_html"):  # never name a file that is not there
            if entry[key] and not (out / entry[key]).is_file():
                entry[key] = None
        reports_json.append(entry)
    summary = {
        "generator": GENERATOR, "version": SUMMARY_VERSION, "run_id": run_id, "status": status,
        "signal": signal_name, "pid": os.getpid() if status == "running" else None, "started": started,
        "updated": _now(), "persons": persons, "seed": seed,
        "ok": status == "complete" and not failed and not unfinished,
        "reports": reports_json, "earlier": [dict(e) for e in kept],
    }
    if data is not None:
        summary["data"] = dict(data)
    # the summary first: a run killed between the two leaves the newer, truthful one
    atomic_write(out / "summary.json", json.dumps(_plain(summary), indent=2, ensure_ascii=False) + "\n")
    atomic_write(out / "index.html", embed_cjk_font(page))
    return out / "index.html"


# ----------------------------------------------------------------------- your own data

#: What each topic notebook needs from a dataset: tables, touchpoints with rows, ground
#: truth (``truth/``). A notebook not listed is not run on your own data.
TOPIC_NEEDS: dict[str, dict[str, Any]] = {
    "quickstart": {},
    "simulate_and_inspect": {"truth": True, "why": "it shows what the simulator generated and the truth it kept"},
    "funnels_official_account": {"touchpoints": ("oa_push", "oa_article_open", "mp_click", "pay"),
                                 "tables": ("articles",)},
    "touchpoints_channels": {"touchpoints": ("mp_visit", "pay", "live_view"), "tables": ("lives",)},
    "attribution_roi": {"tables": ("campaigns",), "touchpoints": ("pay",), "truth": True,
                        "why": "its last section scores the models against the simulator's truth"},
    "lifecycle_clv": {"touchpoints": ("pay",), "amounts": True, "repeat_buyers": 10},
    "lifecycle_truth": {"truth": True, "why": "it compares stages with the simulator's true stages"},
    "experiments": {"tables": ("assignments",), "truth": True,
                    "why": "it compares estimates with the simulator's true effects"},
    "audiences": {"touchpoints": ("pay", "mp_visit")},  # behaviour tags need more than orders
    "own_data": {},  # what the dataset holds and which metrics apply: runs on any dataset
}


def data_topics(data_dir: str | os.PathLike, notebooks: str | os.PathLike | None = None
                ) -> tuple[list[Path], dict[str, str]]:
    """The topic notebooks that apply to a dataset folder, and why each other one is skipped.

    Reads the manifest, the files' footers and the events' touchpoint counts (the events
    layer's check); writes nothing into the folder.
    """
    from .. import events as events_layer
    from .. import io

    folder = Path(notebooks) if notebooks else notebooks_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"no notebook folder at {folder}: privdomain's notebooks ship inside the package "
                                f"(privdomain/notebooks) and are missing here: reinstall privdomain")
    root = Path(data_dir)
    manifest = io.read_manifest(root)
    io.verify_files(root)
    tables = set(manifest.get("row_counts", {}))
    truth = any(str(k).startswith("truth/") for k in manifest.get("files") or {})
    counts = events_layer.check(root).touchpoints
    run: list[Path] = []
    skipped: dict[str, str] = {}
    for src in topic_sources(folder):
        need = TOPIC_NEEDS.get(src.stem)
        if need is None:
            skipped[src.stem] = "not known to apply to your own data"
            continue
        missing_tables = [t for t in need.get("tables", ()) if t not in tables]
        missing_tps = [t for t in need.get("touchpoints", ()) if not counts.get(t)]
        if need.get("truth") and not truth:
            skipped[src.stem] = f"needs the simulator's truth/ ({need.get('why', 'it reads ground truth')})"
        elif missing_tables:
            skipped[src.stem] = f"needs the table(s) {', '.join(missing_tables)}"
        elif missing_tps:
            skipped[src.stem] = (f"needs {', '.join(missing_tps)} events (the dataset has none; a purchase under "
                                 f"another name is declared in the manifest as \"purchase_event\")")
        elif need.get("amounts") and "amount_fen" not in events_layer.check(root).columns:
            skipped[src.stem] = "needs purchase amounts (amount_fen)"
        elif need.get("repeat_buyers") and (repeat := _repeat_buyers(root)) < need["repeat_buyers"]:
            skipped[src.stem] = (f"needs {need['repeat_buyers']} buyers with a second purchase day (the dataset has "
                                 f"{repeat}): its CLV models fit nothing on one-time buyers")
        else:
            run.append(src)
    return run, skipped


def _repeat_buyers(root: Path) -> int:
    from ..inventory import inventory

    return inventory(root).repeat_buyers


def _tree_hashes(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}


def build_data_reports(data_dir: str | os.PathLike, out: str | os.PathLike = "reports", *, jobs: int = 2,
                       progress: bool = True, notebooks: str | os.PathLike | None = None, timeout: int = 1200,
                       handle_signals: bool = True) -> tuple[list[Result], dict[str, str]]:
    """Run the topic notebooks that apply to your own dataset (``privdomain report --data``).

    Never simulates (:data:`DATA_ENV` is set for the notebooks' kernels, so
    :func:`load_or_simulate` only opens the folder) and never writes into ``data_dir``:
    ``out`` may not be inside it, and the folder's files (sizes and modification
    times) are compared before and after the run.

    Returns
    -------
    results, skipped
        One :class:`Result` per notebook run; ``{topic: why}`` for the topics skipped.

    Raises
    ------
    UsageError
        ``out`` inside ``data_dir`` (or the other way round), or no topic applies.
    privdomain.errors.DatasetError
        ``data_dir`` is not a dataset folder matching its manifest.
    ReportFolderError
        ``out`` is not a folder the reports may be written into.
    """
    from tqdm.auto import tqdm

    from .. import io

    if int(jobs) < 1:
        raise UsageError(f"jobs must be at least 1, got {jobs}")
    root = Path(data_dir).resolve()
    out_r = Path(out).resolve()
    if out_r == root or root in out_r.parents or out_r in root.parents:
        raise UsageError(f"--out {out} and --data {data_dir} overlap: the reports are never written into (or "
                         f"around) your dataset; give another --out folder")
    srcs, skipped = data_topics(root, notebooks)
    if not srcs:
        raise UsageError(f"no topic notebook applies to {data_dir}: " +
                         "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    vocab = io.vocabulary(root)
    manifest = io.read_manifest(root)
    before = _tree_hashes(root)
    out_p = claim_report_folder(out)
    _clean_stale_work(out_p)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=out_p))
    note = (f"your dataset `{root.name}` · {manifest.get('row_counts', {}).get('events', 0):,} "
            f"events · money in {vocab.currency} · read only, nothing simulated")
    all_jobs = []
    for src in srcs:
        params = {"scenario": root.name, "persons": 0, "seed": 0, "windows": list(WINDOWS), "data_dir": str(root),
                  "output_dir": str(work / "metrics" / src.stem), "report_name": src.stem}
        all_jobs.append(Job(src.stem, src, _params_for(src, params), root.name, "topic", notebook_title(src),
                            data_note=note))
    old_env = os.environ.get(DATA_ENV)
    os.environ[DATA_ENV] = str(root)
    try:
        atomic_write(work / "owner.json", json.dumps({"generator": GENERATOR, "pid": os.getpid()}) + "\n")
        run = _Run(out_p, all_jobs, 0, 0, _read_summary(out_p))
        run.data = {"path": str(root), "currency": vocab.currency, "skipped": skipped}
        with _signals(run, handle_signals):
            results = _build(run, all_jobs, work, jobs, progress, lambda *a: None, timeout, tqdm)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if old_env is None:
            os.environ.pop(DATA_ENV, None)
        else:
            os.environ[DATA_ENV] = old_env
    if _tree_hashes(root) != before:
        raise PrivdomainError(f"{data_dir}: files changed during the report run (they must only be read)")
    if run.stop.is_set():
        raise ReportsInterrupted(run.signum or signal.SIGINT, results, out_p)
    return results, skipped
