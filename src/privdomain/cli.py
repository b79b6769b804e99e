"""The ``privdomain`` command line: ``validate``, ``simulate``, ``report``, ``bench``."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    name="privdomain",
    help="Private-domain (私域) analytics for the WeChat ecosystem.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Private-domain (私域) analytics for the WeChat ecosystem."""


@app.command()
def validate(
    path: Path = typer.Argument(..., help="A dataset folder, or an events CSV / Parquet file."),
) -> None:
    """Check a dataset against the schema; print every broken rule (exit 1) or a summary (exit 0)."""
    from .validate import validate_dataset

    if not path.exists():
        typer.echo(f"error: {path} does not exist", err=True)
        raise typer.Exit(1)
    report = validate_dataset(path)
    if report.ok:
        typer.echo(f"{path}: " + report.summary())
        return
    typer.echo(f"{path}: invalid\n" + report.summary(), err=True)
    raise typer.Exit(1)


@app.command()
def simulate(
    scenario: str = typer.Option("beauty", "--scenario", help="A preset name or a scenario YAML path."),
    persons: int = typer.Option(None, "--persons", help="Population size (default: the scenario's)."),
    seed: int = typer.Option(1, "--seed", help="Seed: same seed, same bytes."),
    out: Path = typer.Option(None, "--out", help="Output folder (default synthetic/data/<scenario>)."),
    truth: bool = typer.Option(False, "--truth/--no-truth", help="Also write the ground truth in OUT/truth/."),
    workers: int = typer.Option(1, "--workers", help="Processes over person blocks (output does not change)."),
) -> None:
    """Simulate a scenario and write a dataset folder (with a progress bar)."""
    from .simulate import ScenarioError
    from .simulate import simulate as run

    try:
        ds = run(scenario, persons=persons, seed=seed, out=out, truth=truth, workers=workers, progress=True)
    except ScenarioError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    counts = ds.manifest["row_counts"]
    typer.echo(f"{ds.path}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


@app.command()
def report(
    case: list[str] = typer.Option(None, "--case", help="A case to build (repeat for several): beauty, tea, sportswear, apparel, eyewear."),
    all_cases: bool = typer.Option(False, "--all", help="Build every case study and the topic notebooks."),
    persons: int = typer.Option(50_000, "--persons", min=100, help="Simulated persons per scenario."),
    seed: int = typer.Option(7, "--seed", help="Simulation seed."),
    out: Path = typer.Option(Path("reports"), "--out", help="Output folder (index.html, one HTML per report)."),
    topics: bool = typer.Option(None, "--topics/--no-topics", help="Also run the topic notebooks (default: with --all)."),
    jobs: int = typer.Option(2, "--jobs", min=1, help="Notebooks run at once."),
) -> None:
    """Simulate the cases and run the notebooks into HTML reports with an index (exit 1 if any fails)."""
    from .reports import CASES, build_reports

    if not all_cases and not case:
        typer.echo("error: give --case NAME or --all", err=True)
        raise typer.Exit(2)
    cases = list(CASES) if all_cases else list(dict.fromkeys(case))
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        typer.echo(f"error: unknown case {', '.join(unknown)}; choose from {', '.join(CASES)}", err=True)
        raise typer.Exit(2)
    results = build_reports(cases, persons=persons, seed=seed, out=out, topics=all_cases if topics is None else topics,
                            jobs=jobs)
    failed = [r for r in results if not r.ok]
    for r in results:
        status = "ok    " if r.ok else "FAILED"
        where = f" cell {r.cell}" if r.cell is not None else ""
        detail = f"{out / r.html}" if r.ok else f"{where}: {r.error}"
        typer.echo(f"{status} {r.name:<28} {r.seconds:6.1f} s  {detail}", err=not r.ok)
    typer.echo(f"index: {out / 'index.html'}")
    if failed:
        typer.echo(f"{len(failed)} of {len(results)} reports failed", err=True)
        raise typer.Exit(1)


@app.command()
def bench(
    name: list[str] = typer.Option(None, "--only", help="Run only these benchmarks (e.g. funnel, clv); repeat."),
    quick: bool = typer.Option(False, "--quick", help="Smaller sizes, for a smoke run (scripts that support it)."),
    listing: bool = typer.Option(False, "--list", help="List the benchmark scripts and exit."),
) -> None:
    """Run the speed and memory benchmarks in benchmarks/ (figures and ratios; see docs/benchmarks.md)."""
    import subprocess
    import sys

    folder = next((f for f in (Path.cwd() / "benchmarks", Path(__file__).resolve().parents[2] / "benchmarks")
                   if f.is_dir()), None)
    if folder is None:
        typer.echo("error: no benchmarks/ folder here; run from a clone of the repository", err=True)
        raise typer.Exit(2)
    scripts = sorted(folder.glob("bench_*.py"))
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
