"""The ``privdomain`` command line: ``validate``, ``simulate``, ``import``, ``report``, ``bench``.

Every user error ends in exactly one ``error: ...`` line on stderr and a non-zero exit
code, never a traceback: privdomain's own errors (:class:`privdomain.errors.PrivdomainError`,
the simulator's ``ScenarioError``), bad values, missing or unreadable files, unreadable
Parquet, YAML or text, and bad options (``--persons 0``). ``--debug`` (or the
environment variable ``PRIVDOMAIN_DEBUG=1``) shows the traceback instead. An
unexpected exception (a bug) prints ``error: internal error: <type>: <message> (run
with --debug for the traceback)``. Exit codes: 1 for a data or file problem, 2 for a
usage problem, 130 for Ctrl-C (SIGINT), 143 for SIGTERM during ``report``.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

try:  # typer >= 0.22 carries its own copy of click
    from typer._click import exceptions as _cx
    from typer._click.globals import get_current_context as _current_context
except ImportError:  # pragma: no cover - older typer runs on click itself
    from click import exceptions as _cx
    from click import get_current_context as _current_context

_NoArgsIsHelp = getattr(_cx, "NoArgsIsHelpError", ())
_PASS_THROUGH = (typer.Exit, typer.Abort, _cx.ClickException, SystemExit)

__all__ = ["app", "main", "describe_error"]

_MAX_MESSAGE = 500
_DEBUG_ENV = "PRIVDOMAIN_DEBUG"


def _one_line(text: str, limit: int = _MAX_MESSAGE) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _debug_wanted() -> bool:
    ctx = _current_context(silent=True)
    if ctx is not None and ctx.find_root().params.get("debug"):
        return True
    return os.environ.get(_DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _filename(exc: OSError) -> str:
    name = exc.filename if exc.filename is not None else ""
    return f"{name}: " if name != "" else ""


def describe_error(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one-line message (without ``error: ``) the command line shows for ``exc``.

    Examples
    --------
    >>> describe_error(FileNotFoundError(2, "No such file or directory", "x.csv"))
    (1, 'x.csv: no such file or folder')
    >>> describe_error(RuntimeError("boom"))[1]
    'internal error: RuntimeError: boom (run with --debug for the traceback)'
    """
    from .errors import PrivdomainError, UsageError

    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted"
    code = getattr(exc, "exit_code", None)
    if isinstance(exc, PrivdomainError):
        if isinstance(code, int) and code > 0:
            return code, _one_line(str(exc))
        usage = isinstance(exc, UsageError) or type(exc).__name__ == "ScenarioError"  # a wrong argument or file
        return (2 if usage else 1), _one_line(str(exc))
    if isinstance(exc, json.JSONDecodeError):
        return 1, _one_line(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    if isinstance(exc, UnicodeDecodeError):
        return 1, _one_line(f"cannot read text as {exc.encoding}: byte {exc.object[exc.start:exc.start + 1]!r} at "
                            f"position {exc.start} ({exc.reason}); save the file as UTF-8")
    if isinstance(exc, FileNotFoundError):
        return 1, _one_line(f"{_filename(exc)}no such file or folder" if exc.filename else str(exc))
    if isinstance(exc, IsADirectoryError):
        return 1, _one_line(f"{_filename(exc)}is a folder, a file was expected" if exc.filename else str(exc))
    if isinstance(exc, NotADirectoryError):
        return 1, _one_line(f"{_filename(exc)}is not a folder" if exc.filename else str(exc))
    if isinstance(exc, PermissionError):
        return 1, _one_line(f"{_filename(exc)}permission denied" if exc.filename else str(exc))
    if isinstance(exc, OSError):
        return 1, _one_line(f"{_filename(exc)}{exc.strerror or exc}")
    yaml = sys.modules.get("yaml")
    if yaml is not None and isinstance(exc, yaml.YAMLError):
        return 2, _one_line(f"invalid YAML: {exc}")
    arrow = sys.modules.get("pyarrow.lib")
    if arrow is not None and isinstance(exc, (arrow.ArrowInvalid, arrow.ArrowException)):
        return 1, _one_line(f"cannot read the data (not a valid Parquet/Arrow file?): {exc}")
    if isinstance(exc, ValueError):
        return 1, _one_line(str(exc) or type(exc).__name__)
    return 1, _one_line(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")


def _fail(exc: BaseException) -> int:
    code, message = describe_error(exc)
    typer.echo(f"error: {message}", err=True)
    return code


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any exception of a command into one ``error:`` line and an exit code (``--debug``: re-raise)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _PASS_THROUGH:
            raise
        except (Exception, KeyboardInterrupt) as exc:
            if _debug_wanted():
                raise
            raise typer.Exit(_fail(exc)) from None

    return wrapper


class _Group(TyperGroup):
    """The root group: usage errors as one ``error:`` line; a backstop for anything a command let out."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        try:
            rv = super().main(args=argv, prog_name=prog_name, complete_var=complete_var, standalone_mode=False,
                              **extra)
            code = rv if isinstance(rv, int) else 0
        except _NoArgsIsHelp as exc:
            exc.show()
            code = exc.exit_code
        except _cx.UsageError as exc:
            hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            typer.echo(f"error: {_one_line(exc.format_message())}{hint}", err=True)
            code = exc.exit_code
        except _cx.ClickException as exc:
            typer.echo(f"error: {_one_line(exc.format_message())}", err=True)
            code = exc.exit_code
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            code = 1
        except SystemExit:
            raise
        except (Exception, KeyboardInterrupt) as exc:
            if "--debug" in argv or _debug_wanted():
                raise
            code = _fail(exc)
        if not standalone_mode:
            return code
        sys.exit(code)


app = typer.Typer(
    name="privdomain",
    help="Private-domain (私域) analytics for the WeChat ecosystem.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Group,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", envvar=_DEBUG_ENV,
                               help="Show the full traceback of an error (also PRIVDOMAIN_DEBUG=1)."),
) -> None:
    """Private-domain (私域) analytics for the WeChat ecosystem."""


@app.command()
@_guard
def validate(
    path: Path = typer.Argument(..., help="A dataset folder, or an events CSV / Parquet file."),
) -> None:
    """Check a dataset against the schema; print every broken rule (exit 1) or a summary (exit 0)."""
    from .validate import validate_dataset

    if not path.exists():
        typer.echo(f"error: {path}: no such file or folder", err=True)
        raise typer.Exit(1)
    try:
        report = validate_dataset(path)
    except Exception as exc:  # noqa: BLE001 - whatever the reader raises, one line naming the input
        if _debug_wanted():
            raise
        code, message = describe_error(exc)
        if not message.startswith("internal error") and str(path) not in message:
            message = f"{path}: {message}"
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(code) from None
    if report.ok:
        typer.echo(f"{path}: " + report.summary())
        return
    typer.echo(f"{path}: invalid\n" + report.summary(), err=True)
    raise typer.Exit(1)


@app.command()
@_guard
def simulate(
    scenario: str = typer.Option("beauty", "--scenario", help="A preset name or a scenario YAML path."),
    persons: int = typer.Option(None, "--persons", min=1, help="Population size (default: the scenario's)."),
    seed: int = typer.Option(1, "--seed", min=0, help="Seed: same seed, same bytes."),
    out: Path = typer.Option(None, "--out", help="Output folder (default synthetic/data/<scenario>)."),
    truth: bool = typer.Option(False, "--truth/--no-truth", help="Also write the ground truth in OUT/truth/."),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes over person blocks (output does not change)."),
    engine: str = typer.Option("local", "--engine",
                               help="local (this machine) or spark (person blocks on Spark executors; same output)."),
) -> None:
    """Simulate a scenario and write a dataset folder (with a progress bar)."""
    from .simulate import simulate as run

    ds = run(scenario, persons=persons, seed=seed, out=out, truth=truth, workers=workers, progress=True,
             engine=engine)
    counts = ds.manifest["row_counts"]
    typer.echo(f"{ds.path}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


@app.command()
@_guard
def report(
    case: list[str] = typer.Option(None, "--case", help="A case to build (repeat for several): beauty, tea, sportswear, apparel, eyewear."),
    all_cases: bool = typer.Option(False, "--all", help="Build every case study and the topic notebooks."),
    persons: int = typer.Option(50_000, "--persons", min=100, help="Simulated persons per scenario."),
    seed: int = typer.Option(7, "--seed", min=0, help="Simulation seed."),
    out: Path = typer.Option(Path("reports"), "--out",
                             help="Output folder (index.html, one HTML per report): new, empty, or one an earlier "
                                  "`privdomain report` wrote; any other folder is refused untouched."),
    topics: bool = typer.Option(None, "--topics/--no-topics", help="Also run the topic notebooks (default: with --all)."),
    jobs: int = typer.Option(2, "--jobs", min=1, help="Notebooks run at once."),
    data: Path = typer.Option(None, "--data", help="Your own dataset folder (e.g. from `privdomain import`): run "
                                                   "the topic notebooks that apply to it; it is only read, never "
                                                   "simulated over or written."),
) -> None:
    """Simulate the cases and run the notebooks into HTML reports with an index (exit 1 if any fails).

    With ``--data DIR`` nothing is simulated: the topic notebooks that apply to the
    dataset in DIR run on it, and the index lists the topics skipped and why.

    Ctrl-C or SIGTERM stops the running notebooks at once: the index marks the reports
    not finished as interrupted (their previous pages stay, marked stale) and the
    command exits 130 (SIGINT) or 143 (SIGTERM).
    """
    from .reports.runner import CASES, ReportsInterrupted, build_data_reports, build_reports

    if data is not None:
        if case or all_cases:
            typer.echo("error: --data runs the topic notebooks on your dataset; give it without --case/--all", err=True)
            raise typer.Exit(2)
        try:
            results, skipped = build_data_reports(data, out, jobs=jobs)
        except ReportsInterrupted as exc:
            _print_results(exc.results, out)
            raise
        for name, why in skipped.items():
            typer.echo(f"skipped {name:<28} {why}")
        failed = [r for r in results if not r.ok]
        _print_results(results, out)
        if failed:
            typer.echo(f"{len(failed)} of {len(results)} reports failed", err=True)
            raise typer.Exit(1)
        return
    if not all_cases and not case:
        typer.echo("error: give --case NAME or --all", err=True)
        raise typer.Exit(2)
    cases = list(CASES) if all_cases else list(dict.fromkeys(case))
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        typer.echo(f"error: unknown case {', '.join(unknown)}; choose from {', '.join(CASES)}", err=True)
        raise typer.Exit(2)
    try:
        results = build_reports(cases, persons=persons, seed=seed, out=out,
                                topics=all_cases if topics is None else topics, jobs=jobs)
    except ReportsInterrupted as exc:
        _print_results(exc.results, out)
        if _debug_wanted():
            raise
        code = _fail(exc)
        # the index is written and the kernels are dead; do not wait at exit for the worker
        # threads still blocked on those kernels (or for ZeroMQ's teardown)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    failed = [r for r in results if not r.ok]
    _print_results(results, out)
    if failed:
        typer.echo(f"{len(failed)} of {len(results)} reports failed", err=True)
        raise typer.Exit(1)


def _print_results(results: list, out: Path) -> None:
    for r in results:
        status = {"ok": "ok    ", "failed": "FAILED", "interrupted": "INTERRUPTED"}.get(r.status, r.status.upper())
        where = f" cell {r.cell}" if r.cell is not None else ""
        detail = f"{out / r.html}" if r.ok else f"{where}: {r.error}"
        typer.echo(f"{status} {r.name:<28} {r.seconds:6.1f} s  {detail}", err=not r.ok)
    typer.echo(f"index: {out / 'index.html'}")


import_app = typer.Typer(
    name="import",
    help="Import your own data (order exports, any table) into a dataset folder that passes validate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(import_app, name="import")


def _import_done(result: Any) -> None:
    typer.echo(result.summary())
    notes = result.manifest.get("import", {}).get("notes") or {}
    for what, n in notes.items():
        typer.echo(f"note: {n:,} {what}")


def _pairs(text: list[str] | None, what: str) -> dict[str, str]:
    from .importers import parse_pairs

    out: dict[str, str] = {}
    for t in text or []:
        out.update(parse_pairs(t, what))
    return out


@import_app.command("table")
@_guard
def import_table_cmd(
    sources: list[Path] = typer.Argument(..., help="CSV (any encoding), Excel (.xlsx) or Parquet files, same columns."),
    out: Path = typer.Option(..., "--out", help="Dataset folder to write (new, empty, or an earlier import)."),
    mapping: str = typer.Option(None, "--map", help="FIELD=COLUMN pairs: ts=下单时间,person_id=用户ID,amount=实付金额 "
                                                    "(or a YAML mapping file)."),
    unit: str = typer.Option(None, "--unit", help="Money unit of the amounts: yuan (major) or fen (minor)."),
    currency: str = typer.Option(None, "--currency", help="ISO currency code (default CNY)."),
    tz: str = typer.Option(None, "--tz", help="Time zone of wall-clock times (default Asia/Shanghai)."),
    time_format: str = typer.Option(None, "--time-format", help="strftime format (%Y%m%d), epoch_ms or epoch_s."),
    purchase_event: str = typer.Option(None, "--purchase-event", help="The source's name of a purchase (default pay)."),
    refund_event: str = typer.Option(None, "--refund-event", help="The source's name of a refund."),
    order_event: str = typer.Option(None, "--order-event", help="The source's name of an order placed."),
    touchpoint: list[str] = typer.Option(None, "--touchpoint", help="Declare an event with its channel family: "
                                                                    "view=web (repeat, or comma-separated)."),
    id_type: str = typer.Option(None, "--id-type", help="What person_id holds (default user_id)."),
    order_channel: str = typer.Option(None, "--order-channel", help="Channel of purchases without a channel column."),
    encoding: str = typer.Option(None, "--encoding", help="CSV encoding (default: detected: utf-8, gb18030)."),
    sep: str = typer.Option(None, "--sep", help="CSV separator (default ','; 'whitespace' for blank-separated)."),
    columns: str = typer.Option(None, "--columns", help="Column names of a file without a header row (a,b,c)."),
) -> None:
    """Import any table (CSV, Excel, Parquet) with a column mapping."""
    from .importers import import_table, load_mapping

    opts: dict[str, Any] = {}
    if mapping and Path(mapping).suffix.lower() in (".yaml", ".yml"):
        opts = load_mapping(mapping)
        mapping = opts.pop("map")
    if not mapping:
        raise typer.BadParameter("give --map FIELD=COLUMN,... or a YAML mapping file", param_hint="--map")
    given = {"unit": unit, "currency": currency, "tz": tz, "time_format": time_format,
             "purchase_event": purchase_event, "refund_event": refund_event, "order_event": order_event,
             "id_type": id_type, "order_channel": order_channel, "encoding": encoding, "sep": sep}
    opts.update({k: v for k, v in given.items() if v is not None})
    if touchpoint:
        opts["touchpoints"] = {**(opts.get("touchpoints") or {}), **_pairs(touchpoint, "--touchpoint")}
    if columns:
        opts["columns"] = [c.strip() for c in columns.split(",")]
    known = {"unit", "currency", "tz", "time_format", "purchase_event", "refund_event", "order_event",
             "touchpoints", "id_type", "order_channel", "encoding", "sep", "columns", "sheet"}
    for k in opts:
        if k not in known:
            from .errors import UsageError

            raise UsageError.unknown("mapping file option", k, sorted(known | {"map"}))
    _import_done(import_table(sources, out, mapping, **opts))


@import_app.command("youshu-orders")
@_guard
def import_youshu_cmd(
    sources: list[Path] = typer.Argument(..., help="Youshu data-api order records: JSON lines, JSON or CSV."),
    out: Path = typer.Option(..., "--out", help="Dataset folder to write (new, empty, or an earlier import)."),
    unit: str = typer.Option("yuan", "--unit", help="Money unit of the amounts (Youshu: yuan)."),
    currency: str = typer.Option("CNY", "--currency", help="ISO currency code."),
    status_map: list[str] = typer.Option(None, "--status-map", help="Other status codes: 1130=order (or pay, refund)."),
    encoding: str = typer.Option(None, "--encoding", help="Text encoding (default: detected)."),
) -> None:
    """Import Youshu data-api order records (order / pay / refund events, id links, channels)."""
    from .importers import import_youshu_orders

    _import_done(import_youshu_orders(sources, out, unit=unit, currency=currency,
                                      status_map=_pairs(status_map, "--status-map"), encoding=encoding))


@import_app.command("mp-orders")
@_guard
def import_mp_cmd(
    sources: list[Path] = typer.Argument(..., help="Mini Program order exports: CSV, Excel or Parquet."),
    out: Path = typer.Option(..., "--out", help="Dataset folder to write (new, empty, or an earlier import)."),
    unit: str = typer.Option("fen", "--unit", help="Money unit of total_fee / refund_fee (default fen)."),
    currency: str = typer.Option("CNY", "--currency", help="ISO currency code."),
    tz: str = typer.Option("Asia/Shanghai", "--tz", help="Time zone of the wall-clock times."),
    time_format: str = typer.Option(None, "--time-format", help="strftime format of the times (default ISO 8601)."),
    status_map: list[str] = typer.Option(None, "--status-map", help="Other status values: 部分退款=refund."),
    encoding: str = typer.Option(None, "--encoding", help="CSV encoding (default: detected)."),
) -> None:
    """Import a plain Mini Program order export (order / pay / refund events)."""
    from .importers import import_mp_orders

    _import_done(import_mp_orders(sources, out, unit=unit, currency=currency, tz=tz, time_format=time_format,
                                  status_map=_pairs(status_map, "--status-map"), encoding=encoding))


@import_app.command("wecom-contacts")
@_guard
def import_wecom_cmd(
    sources: list[Path] = typer.Argument(..., help="WeCom external-contact records: JSON lines, JSON or CSV."),
    out: Path = typer.Option(..., "--out", help="Dataset folder to write (new, empty, or an earlier import)."),
    encoding: str = typer.Option(None, "--encoding", help="Text encoding (default: detected)."),
) -> None:
    """Import WeCom external contacts (wecom_add events by guide, unionid links)."""
    from .importers import import_wecom_contacts

    _import_done(import_wecom_contacts(sources, out, encoding=encoding))


@import_app.command("oa-articles")
@_guard
def import_oa_articles_cmd(
    sources: list[Path] = typer.Argument(..., help="Datacube getarticlesummary results: JSON, JSON lines or CSV."),
    out: Path = typer.Option(..., "--out", help="A dataset folder an earlier import wrote (the articles join its "
                                                "events)."),
    encoding: str = typer.Option(None, "--encoding", help="Text encoding (default: detected)."),
) -> None:
    """Add Official Account article statistics per article and day (the articles_daily table)."""
    from .importers import import_oa_articles

    _import_done(import_oa_articles(sources, out, encoding=encoding))


@app.command()
@_guard
def bench(
    name: list[str] = typer.Option(None, "--only", help="Run only these benchmarks (e.g. funnel, clv); repeat."),
    quick: bool = typer.Option(False, "--quick", help="Smaller sizes, for a smoke run (scripts that support it)."),
    listing: bool = typer.Option(False, "--list", help="List the benchmark scripts and exit."),
) -> None:
    """Run the speed and memory benchmarks of a source checkout (benchmarks/ in the current folder).

    The benchmarks are scripts of the repository, not part of the installed package: run
    this from the top folder of a clone (or ``make bench``, or one script by hand:
    ``python benchmarks/bench_funnel.py``). Results: docs/benchmarks.md.
    """
    import subprocess
    import sys

    folder = Path.cwd() / "benchmarks"
    scripts = sorted(folder.glob("bench_*.py"))
    if not scripts:
        typer.echo(f"error: no benchmark scripts in {folder}: the benchmarks are scripts of the source checkout, not "
                   "of the installed package; run this from the top folder of a clone of privdomain (or `make bench`, "
                   "or one script: `python benchmarks/bench_funnel.py`)", err=True)
        raise typer.Exit(2)
    if listing:
        typer.echo("\n".join(s.stem.removeprefix("bench_") for s in scripts))
        return
    if name:
        known = {s.stem.removeprefix("bench_"): s for s in scripts}
        unknown = [n for n in name if n not in known]
        if unknown:
            typer.echo(f"error: unknown benchmark {', '.join(unknown)}; choose from {', '.join(known)}", err=True)
            raise typer.Exit(2)
        scripts = [known[n] for n in name]
    failed = []
    for script in scripts:
        typer.echo(f"=== {script.name} ===")
        flags = ["--quick"] if quick and "--quick" in script.read_text() else []
        if subprocess.call([sys.executable, str(script), *flags]):
            failed.append(script.name)
    if failed:
        typer.echo(f"failed: {', '.join(failed)}", err=True)
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
