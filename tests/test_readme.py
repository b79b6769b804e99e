"""The README's Python example runs as written (on a small population)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    block = block.replace("persons=20_000", "persons=2_000")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["summary"]["frequency"].ge(0).all()
    assert len(namespace["ds"].manifest["row_counts"]) >= 5
