"""Run the parameterised notebooks into HTML reports (``privdomain report``).

The notebooks live in ``notebooks/`` as jupytext percent-format ``.py`` files (the
readable source of truth). For each report the runner

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

Examples
--------
>>> import tempfile, json, pathlib
>>> d = tempfile.mkdtemp()
>>> record_metrics({"gmv_yuan": 1234.5, "buyers": 7}, output_dir=d, name="demo")
>>> json.loads((pathlib.Path(d) / "demo.metrics.json").read_text())["buyers"]
7
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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
)
#: The scenario the topic notebooks run on, and the exceptions (a notebook whose topic
#: one scenario shows best: the tea scenario holds the randomised coupon experiment).
TOPIC_SCENARIO = "beauty"
TOPIC_SCENARIOS = {"experiments": "tea"}
#: Attribution windows in days (0 = same day) passed to every notebook.
WINDOWS: tuple[int, ...] = (0, 7, 15, 30)
CASE_NOTEBOOK = "case_study"
KERNEL_NAME = "privdomain-report"
PARAMS_FILE = "report-params.json"
_METRICS_SUFFIX = ".metrics.json"


# ----------------------------------------------------------------------------- data


def repo_root() -> Path:
    """The project folder (holding ``notebooks/``) of this source checkout."""
    return Path(__file__).resolve().parents[2]


def notebooks_dir() -> Path:
    """The folder of the notebook sources (``notebooks/`` of the checkout)."""
    return repo_root() / "notebooks"


def default_data_dir(scenario: str) -> Path:
    """Where a notebook run by hand keeps its simulated data: ``synthetic/data/<scenario>``."""
    return repo_root() / "synthetic" / "data" / scenario


def load_or_simulate(scenario: str, persons: int, seed: int, data_dir: str | os.PathLike | None = None,
                     force: bool = False):
    """Open the simulated dataset for these parameters, simulating it first if needed.

    The folder is reused when it holds a dataset simulated with the same
    ``scenario``, ``persons`` and ``seed`` (recorded in ``report-params.json``);
    otherwise (or with ``force``) it is simulated again, with ground truth.

    Returns
    -------
    privdomain.io.Dataset
    """
    from .io import open_dataset

    folder = Path(data_dir) if data_dir else default_data_dir(scenario)
    wanted = {"scenario": scenario, "persons": int(persons), "seed": int(seed)}
    stamp = folder / PARAMS_FILE
    if not force and stamp.exists() and (folder / "dataset.json").exists():
        try:
            if json.loads(stamp.read_text()) == wanted:
                return open_dataset(folder)
        except ValueError:
            pass
    from .simulate import simulate

    if stamp.exists():
        stamp.unlink()
    ds = simulate(scenario=scenario, persons=int(persons), seed=int(seed), out=folder, truth=True)
    stamp.write_text(json.dumps(wanted) + "\n")
    return ds


# -------------------------------------------------------------------------- metrics


def overview(data: Any, con: Any | None = None) -> dict[str, Any]:
    """Headline numbers of an events table: the first cell of every report.

    * ``events``: rows; ``persons``: distinct persons with any event;
    * ``buyers``: persons with a ``pay`` event; ``orders``: distinct paid ``order_id``;
    * ``gmv_yuan`` (成交额 GMV) = sum(``amount_fen`` of ``pay``) / 100;
    * ``buyer_rate`` (购买转化率 buyer conversion rate) = buyers / persons;
    * ``aov_yuan`` (客单价 average order value) = GMV / orders;
    * ``orders_per_buyer`` = orders / buyers; ``first_day``, ``last_day``, ``days``.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "mp_visit"),
    ...     (1, "2024-05-01 10:05", "pay", {"order_id": 1, "amount_fen": 9900}),
    ...     (2, "2024-05-03 09:00", "mp_visit")])
    >>> o = overview(ev)
    >>> o["buyers"], o["gmv_yuan"], o["buyer_rate"], o["days"]
    (1, 99.0, 0.5, 3)
    """
    from .backend import execute, to_table
    from .schema import PURCHASE

    t = to_table(data, "events", con=con)
    pay = t.touchpoint == PURCHASE
    expr = t.aggregate(events=t.count(), persons=t.person_id.nunique(), buyers=t.person_id.nunique(where=pay),
                       orders=t.order_id.nunique(where=pay), gmv_fen=t.amount_fen.sum(where=pay),
                       first=t.ts.min(), last=t.ts.max())
    row = execute(expr, con=con).iloc[0]
    import pandas as pd

    persons, buyers, orders = int(row["persons"]), int(row["buyers"]), int(row["orders"])
    gmv = 0.0 if pd.isna(row["gmv_fen"]) else float(row["gmv_fen"]) / 100
    first, last = pd.Timestamp(row["first"]).date(), pd.Timestamp(row["last"]).date()
    return {
        "events": int(row["events"]), "persons": persons, "buyers": buyers, "orders": orders, "gmv_yuan": gmv,
        "buyer_rate": buyers / persons if persons else float("nan"),
        "aov_yuan": gmv / orders if orders else float("nan"),
        "orders_per_buyer": orders / buyers if buyers else float("nan"),
        "first_day": first.isoformat(), "last_day": last.isoformat(), "days": (last - first).days + 1,
    }



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
    path.write_text(json.dumps(old, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_metrics(path: str | os.PathLike) -> dict[str, Any]:
    """Read a metrics JSON file."""
    return json.loads(Path(path).read_text())


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


def plan(cases: Sequence[str], persons: int, seed: int, out: str | os.PathLike, topics: bool = True,
         notebooks: str | os.PathLike | None = None, windows: Sequence[int] = WINDOWS) -> list[Job]:
    """The reports to build: one case study per case, then the topic notebooks.

    Topic notebooks run on :data:`TOPIC_SCENARIO`'s data (or the one
    :data:`TOPIC_SCENARIOS` names; simulated once, shared with the case study) when
    ``topics`` is true.
    """
    folder = Path(notebooks) if notebooks else notebooks_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"no notebook folder at {folder}: the reports are built from a source checkout "
                                f"of privdomain (its notebooks/ folder)")
    out = Path(out)
    work = out / "_work"

    def params(scenario: str, name: str) -> dict[str, Any]:
        return {"scenario": scenario, "persons": int(persons), "seed": int(seed), "windows": list(windows),
                "data_dir": str((out / "data" / scenario).resolve()),
                "output_dir": str((work / name).resolve()), "report_name": name}

    jobs: list[Job] = []
    case_src = folder / f"{CASE_NOTEBOOK}.py"
    for case in cases:
        if case not in CASES:
            raise ValueError(f"unknown case {case!r}: choose one of {', '.join(CASES)}")
        jobs.append(Job(case, case_src, params(case, case), case, "case", _case_title(folder, case)))
    if topics:
        for src in topic_sources(folder):
            scenario = TOPIC_SCENARIOS.get(src.stem, TOPIC_SCENARIO)
            jobs.append(Job(src.stem, src, params(scenario, src.stem), scenario, "topic", notebook_title(src)))
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
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": ["report-header"]})


def render_html(nb, html_path: str | os.PathLike, title: str, hide_code: bool = True) -> Path:
    """Render a notebook node to a standalone HTML file (code cells hidden by default).

    Cells tagged ``remove-cell`` (notes for someone editing the notebook) are left out.
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
    path.write_text(embed_cjk_font(body), encoding="utf-8")
    return path


# the CJK subset first: it holds only the page's non-ASCII characters, so Latin text
# falls through to the reader's fonts (browsers split runs reliably at that point,
# less so when the fallback comes last)
_FONT_STACK = '"privdomain CJK", system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif'


def embed_cjk_font(page: str) -> str:
    """Embed a subset of the CJK font holding exactly the page's non-ASCII characters.

    So that Chinese text renders on a reader's machine without CJK fonts: the subset
    (tens of kB for a report) is put into the page as a base64 ``@font-face`` and
    put first in the page's font stacks, so that the browser takes from it exactly
    the page's Chinese characters.
    """
    import base64
    import io

    from fontTools import subset
    from fontTools.ttLib import TTFont

    from .plotting import find_cjk_font

    chars = "".join(sorted({c for c in page if ord(c) > 127}))
    if not chars:
        return page
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
    style = ("<style>@font-face{font-family:\"privdomain CJK\";"
             f"src:url(data:font/otf;base64,{data}) format(\"opentype\");}}"
             f":root{{--jp-content-font-family:{_FONT_STACK};--jp-ui-font-family:{_FONT_STACK};"
             f"--jp-code-font-family:\"privdomain CJK\",Menlo,Consolas,\"DejaVu Sans Mono\",monospace;}}"
             f"body{{font-family:{_FONT_STACK};}}</style>")
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


def _clear(out: Path, name: str) -> None:
    for p in (out / f"{name}.html", metrics_path(out, name), out / f"{name}.failed.html"):
        if p.exists():
            p.unlink()


def run_job(job: Job, out: str | os.PathLike, kernel_name: str = KERNEL_NAME, timeout: int = 1200) -> Result:
    """Execute one notebook and render it; never raises for a failing notebook."""
    import nbformat
    import papermill as pm

    out = Path(out).resolve()
    nbdir = out / "notebooks"
    nbdir.mkdir(parents=True, exist_ok=True)
    staging = Path(job.parameters["output_dir"])
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, exist_ok=True)
    _clear(out, job.name)
    executed = nbdir / f"{job.name}.ipynb"
    if executed.exists():
        executed.unlink()
    start = time.perf_counter()
    error = cell = None
    try:
        nb = load_source(job.source)
        # no cwd: papermill would chdir the whole process, which other threads share
        pm.execute_notebook(nb, str(executed), parameters=job.parameters, kernel_name=kernel_name,
                            progress_bar=False, request_save_on_cell_execute=False, execution_timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - every failure is reported, none stops the run
        error = (f"{exc.ename}: {exc.evalue}" if hasattr(exc, "ename")
                 else "".join(traceback.format_exception_only(type(exc), exc)).strip())
    seconds = time.perf_counter() - start
    res = Result(job.name, job.kind, job.scenario, job.title, ok=error is None, seconds=seconds,
                 notebook=str(executed.relative_to(out)) if executed.exists() else None)
    done = nbformat.read(str(executed), as_version=4) if executed.exists() else None
    if done is not None:
        bad, msg, where = _failing_cell(done)  # also catches an error output that did not stop the run
        if bad is not None:
            cell, error, res.ok = bad, error or msg, False
            error = f"{error} (in: {where})" if where else error
        done.cells.insert(0, _header_cell(job))
    try:
        _finish_job(job, res, done, out, staging, cell, error)
    except Exception as exc:  # noqa: BLE001 - a rendering failure fails this report only
        res.ok, res.html, res.metrics = False, None, None
        res.error = "rendering failed: " + "".join(traceback.format_exception_only(type(exc), exc)).strip()
        _clear(out, job.name)
    shutil.rmtree(staging, ignore_errors=True)
    return res


def _finish_job(job: Job, res: Result, done: Any, out: Path, staging: Path, cell: int | None,
                error: str | None) -> None:
    if res.ok:
        if done is None:
            raise RuntimeError(f"the executed notebook {out / 'notebooks' / (job.name + '.ipynb')} is missing")
        render_html(done, out / f"{job.name}.html", job.title)
        res.html = f"{job.name}.html"
        staged = metrics_path(staging, job.name)
        if staged.exists():
            shutil.move(str(staged), metrics_path(out, job.name))
            res.metrics = metrics_path(out, job.name).name
            res.headline = read_metrics(metrics_path(out, job.name))
    else:
        res.cell, res.error = cell, error
        if done is not None:
            render_html(done, out / f"{job.name}.failed.html", f"FAILED: {job.title}", hide_code=False)
            res.failed_html = f"{job.name}.failed.html"


# ---------------------------------------------------------------------------- build


def _failed_all(jobs: Iterable[Job], error: str) -> list[Result]:
    return [Result(j.name, j.kind, j.scenario, j.title, ok=False, seconds=0.0, error=error) for j in jobs]


def build_reports(cases: Sequence[str] = CASES, persons: int = 50_000, seed: int = 7, out: str | os.PathLike = "reports",
                  topics: bool = True, jobs: int = 2, progress: bool = True, notebooks: str | os.PathLike | None = None,
                  simulate: Callable[..., Any] | None = None) -> list[Result]:
    """Simulate each case once, run its notebooks, render HTML, write the index.

    Parameters
    ----------
    cases
        Case names (see :data:`CASES`).
    persons, seed
        Simulation size and seed, the same for every case.
    out
        Output folder (``index.html``, ``<name>.html``, ``<name>.metrics.json``,
        ``notebooks/``, ``data/``).
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

    Returns
    -------
    list of Result
        One per report, in :func:`plan` order; ``all(r.ok for r in results)`` when
        every report was built.
    """
    from tqdm.auto import tqdm

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    all_jobs = plan(cases, persons, seed, out, topics=topics, notebooks=notebooks)
    simulate = simulate or (lambda s, n, k, d: load_or_simulate(s, n, k, d, force=True))
    scenarios = list(dict.fromkeys(j.scenario for j in all_jobs))
    results: dict[str, Result] = {}
    bar = tqdm(total=len(scenarios) + len(all_jobs), desc="reports", unit="step", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    ready: list[Job] = []
    for scenario in scenarios:
        bar.set_postfix_str(f"simulating {scenario}")
        mine = [j for j in all_jobs if j.scenario == scenario]
        try:
            simulate(scenario, persons, seed, out / "data" / scenario)
            ready += mine
        except Exception as exc:  # noqa: BLE001 - reported per report, the others go on
            msg = "simulation failed: " + "".join(traceback.format_exception_only(type(exc), exc)).strip()
            for r in _failed_all(mine, msg):
                _clear(out, r.name)
                results[r.name] = r
        bar.update(1)
    running: list[str] = []

    def one(job: Job) -> Result:
        running.append(job.name)
        bar.set_postfix_str("running " + ", ".join(running))
        try:
            return run_job(job, out, kernel_name=kernel)
        finally:
            running.remove(job.name)
            bar.set_postfix_str("running " + ", ".join(running) if running else "")
            bar.update(1)

    bar.update(len(all_jobs) - len(ready))
    with project_kernel() as kernel:
        if jobs <= 1:
            for job in ready:
                results[job.name] = one(job)
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                for job, res in zip(ready, pool.map(one, ready)):
                    results[job.name] = res
    bar.close()
    ordered = [results[j.name] for j in all_jobs]
    write_index(ordered, out, persons=persons, seed=seed)
    shutil.rmtree(out / "_work", ignore_errors=True)
    return ordered


# ---------------------------------------------------------------------------- index

_INDEX_CSS = """
body{max-width:980px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.5}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;width:100%} td,th{text-align:left;padding:.45em .6em;border-bottom:1px solid #eee;
vertical-align:top} th{background:#f5f7f6} .ok{color:#2e7d5b;font-weight:600} .failed{color:#c44e52;font-weight:700}
.muted{color:#777;font-size:.9em} code{background:#f3f3f3;padding:0 .25em}
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


def write_index(results: Sequence[Result], out: str | os.PathLike, persons: int | None = None,
                seed: int | None = None) -> Path:
    """Write ``index.html`` linking every report (failures marked) and ``summary.json``."""
    out = Path(out)
    failed = [r for r in results if not r.ok]
    rows: dict[str, list[str]] = {"case": [], "topic": []}
    for r in results:
        if r.ok:
            status = '<span class="ok">ok</span>'
            link = f'<a href="{html.escape(r.html or "")}">{html.escape(r.title)}</a>'
            extra = _headline_text(r.headline)
            if r.metrics:
                extra += f' <a class="muted" href="{html.escape(r.metrics)}">metrics JSON</a>'
        else:
            status = '<span class="failed">FAILED</span>'
            link = html.escape(r.title)
            where = f"cell {r.cell}: " if r.cell is not None else ""
            extra = f"{html.escape(where)}<code>{html.escape(r.error or '')}</code>"
            if r.failed_html:
                extra += f' <a href="{html.escape(r.failed_html)}">notebook with the error</a>'
        rows[r.kind].append(f"<tr><td>{link}</td><td>{html.escape(r.scenario)}</td><td>{status}</td>"
                            f"<td>{r.seconds:.0f} s</td><td>{extra}</td></tr>")
    head = "<tr><th>report</th><th>scenario</th><th>status</th><th>time</th><th>key figures</th></tr>"
    sections = []
    for kind, heading in (("case", "Case studies 案例"), ("topic", "Topic notebooks 专题")):
        if rows[kind]:
            sections.append(f"<h2>{heading}</h2><table>{head}{''.join(rows[kind])}</table>")
    params = " · ".join(x for x in (f"{persons:,} persons per scenario" if persons else "",
                                    f"seed {seed}" if seed is not None else "") if x)
    banner = (f'<p class="failed">{len(failed)} of {len(results)} reports FAILED.</p>' if failed
              else f'<p class="ok">All {len(results)} reports built.</p>')
    page = f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>privdomain reports</title>
<style>{_INDEX_CSS}</style></head><body>
<h1>privdomain reports 私域运营分析报告</h1>
<p class="muted">Built from simulated data ({html.escape(params)}). The case figures quoted in the case studies are
those reported by 2020 trade articles on Tencent's private-domain products, not results of this package.</p>
{banner}
{''.join(sections)}
</body></html>
"""
    (out / "index.html").write_text(embed_cjk_font(page), encoding="utf-8")
    summary = {"persons": persons, "seed": seed, "ok": not failed, "reports": [asdict(r) for r in results]}
    (out / "summary.json").write_text(json.dumps(_plain(summary), indent=2, ensure_ascii=False) + "\n")
    return out / "index.html"
