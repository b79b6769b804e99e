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


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
