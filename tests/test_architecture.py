"""The package's structure: layers checked by import-linter (pyproject.toml), private names kept private."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "privdomain"


def _private_imports() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        out.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {alias.name}")
    return out


def test_no_private_name_is_imported_across_modules():
    assert _private_imports() == []


def test_the_check_sees_a_private_import(tmp_path, monkeypatch):
    (tmp_path / "m.py").write_text("from .other import _hidden\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path)
    assert _private_imports() == ["m.py:1 imports _hidden"]


def test_the_layer_contracts_hold():
    import subprocess
    import sys

    root = PACKAGE.parents[1]
    lint = Path(sys.executable).with_name("lint-imports")
    res = subprocess.run([str(lint), "--config", str(root / "pyproject.toml")], cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "Contracts: " in res.stdout and " broken" in res.stdout and "0 broken" in res.stdout
