"""The command line: help everywhere, bench discovery."""

import pytest
from typer.testing import CliRunner

from privdomain.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", ["validate", "simulate", "report", "bench"])
def test_every_subcommand_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_bench_lists_the_benchmark_scripts():
    result = runner.invoke(app, ["bench", "--list"])
    assert result.exit_code == 0
    assert {"simulate", "funnel", "attribution", "clv", "lifecycle"} <= set(result.output.split())


def test_bench_rejects_an_unknown_name():
    result = runner.invoke(app, ["bench", "--only", "nope"])
    assert result.exit_code == 2 and "unknown benchmark nope" in result.output


def test_every_listed_module_imports():
    import privdomain

    for name in privdomain._LAZY:
        assert getattr(privdomain, name).__name__ == f"privdomain.{name}"


def test_simulate_refuses_an_unknown_engine_by_name_and_writes_nothing(tmp_path):
    result = runner.invoke(app, ["simulate", "--scenario", "tea", "--persons", "10", "--out", str(tmp_path / "d"),
                                 "--engine", "sprak"])
    assert result.exit_code == 2
    assert "unknown engine 'sprak'; did you mean 'spark'?" in result.output
    assert not (tmp_path / "d").exists()
