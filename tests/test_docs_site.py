"""The documentation site builds without a warning and holds what it promises.

``mkdocs build --strict`` (mkdocs.yml) runs once into a temporary folder; the pages of the
user guide, the notebooks and the API reference are then read back. The docstrings'
reStructuredText is rewritten as Markdown for the site (docs/_site/griffe_rst.py); that
rewrite is checked on small inputs first.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE_TOOLS = ROOT / "docs" / "_site"

pytestmark = pytest.mark.xdist_group("docs_site")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_docs_site_{name}", SITE_TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(page: Path) -> str:
    """A page's visible text without whitespace (tags dropped, entities decoded)."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(encoding="utf-8"), flags=re.S)
    return _squeeze(html.unescape(re.sub(r"<[^>]+>", " ", body)))


def _squeeze(text: str) -> str:
    """Text without whitespace: code is split into highlighted tokens, inline code into tags."""
    return "".join(text.split())


def _plain(rst: str) -> str:
    """Docstring or Markdown text as it reads on the page (without whitespace): no markup."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", rst)
    return _squeeze(text.replace("`", ""))


# ---- the reStructuredText -> Markdown rewrite ------------------------------------------------


def test_roles_become_code_and_math_becomes_arithmatex():
    rst = _load("griffe_rst")
    out = rst.to_markdown("Uses :func:`~privdomain.funnel.funnel` and :class:`Step`; rate :math:`\\lambda > 0`.")
    assert out == "Uses `privdomain.funnel.funnel` and `Step`; rate \\(\\lambda > 0\\)."


def test_math_block_becomes_display_math():
    rst = _load("griffe_rst")
    out = rst.to_markdown("Likelihood\n\n.. math::\n\n    L = a + b\n      + c\n\nevaluated in logs.")
    assert out.splitlines() == ["Likelihood", "", "$$", "L = a + b", "+ c", "$$", "", "evaluated in logs."]
    one_line = rst.to_markdown("Error\n\n.. math:: se = \\sqrt{a}\n    + b\n\nthen.")  # the body starts on the directive
    assert one_line.splitlines() == ["Error", "", "$$", "se = \\sqrt{a}", "+ b", "$$", "", "then."]


def test_simple_table_becomes_markdown_table():
    rst = _load("griffe_rst")
    src = ("Columns\n\n=====  ==========\nname   meaning\n=====  ==========\n``a``  first | one\nb      second,\n"
           "       continued\n=====  ==========\n")
    out = rst.to_markdown(src).splitlines()
    assert out[2:] == ["| name | meaning |", "|---|---|", "| ``a`` | first \\| one |", "| b | second, continued |"]


def test_modules_section_becomes_table_and_keeps_the_next_paragraph():
    rst = _load("griffe_rst")
    src = ("Modules\n-------\n:mod:`~pkg.a`  does a\nb        does b,\n         over two lines\n\n"
           "Every model returns a frame.")
    out = rst.to_markdown(src).splitlines()
    assert out == ["| module | what it holds |", "| --- | --- |", "| `pkg.a` | does a |",
                   "| `b` | does b, over two lines |", "", "Every model returns a frame."]


def test_doctests_outside_examples_are_fenced_and_examples_left_to_griffe():
    rst = _load("griffe_rst")
    out = rst.to_markdown("Normalise.\n\n>>> f([1])\n['a', 'b']\n\nExamples\n--------\n>>> g()\n1\n").splitlines()
    assert out[:6] == ["Normalise.", "", "```pycon", ">>> f([1])", "['a', 'b']", "```"]
    assert out[-2:] == [">>> g()", "1"]  # an Examples section: griffe renders it as code itself


def test_literal_block_marker_loses_one_colon():
    rst = _load("griffe_rst")
    assert rst.to_markdown("A folder holds::\n\n    events.parquet\n") == "A folder holds:\n\n    events.parquet"


# ---- the site -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    paths = [str(ROOT / "src"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
                          "--site-dir", str(out)], cwd=out, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    assert "WARNING" not in run.stderr, run.stderr[-6000:]
    return out


def test_home_page_is_the_readme(site):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = next(line for line in readme.splitlines()[1:] if line.strip())
    assert _plain(first) in _text(site / "index.html")
    assert _plain("`make docs` builds the documentation site") in _text(site / "index.html")


def test_every_user_guide_page_is_built_with_its_title(site):
    hooks = _load("hooks")
    guides = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert sorted(page for _, page in hooks.GUIDE) == guides  # every guide is in the navigation
    for name in guides:
        title = (ROOT / "docs" / name).read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
        page = site / name.replace(".md", ".html")
        assert page.exists(), name
        assert _plain(title) in _text(page), name


def test_every_notebook_has_a_page_with_its_code(site):
    import jupytext

    sources = sorted((ROOT / "notebooks").glob("*.py"))
    assert len(sources) >= 9
    for path in sources:
        page = site / "notebooks" / f"{path.stem}.html"
        assert page.exists(), path.name
        nb = jupytext.read(path)
        code = [c.source for c in nb.cells if c.cell_type == "code" and c.source.strip()]
        text = _text(page)
        assert _squeeze(code[0].splitlines()[0]) in text, path.name  # the parameters cell
        assert _squeeze(code[-1].splitlines()[0]) in text, path.name  # ... through the last cell
        assert f"notebooks/{path.name}" in text


def test_every_api_module_has_a_page_with_its_docstrings(site):
    hooks = _load("hooks")
    modules = hooks.api_modules()
    assert len(modules) == len(set(modules)) >= 25
    for public in modules:
        module = importlib.import_module(public)
        page = site / "api" / f"{public.removeprefix('privdomain.')}.html"
        assert page.exists(), public
        text = _text(page)
        assert public in text
        first = _plain(module.__doc__.strip().splitlines()[0])
        assert first in text, (public, first)
        assert not _rst_left(text), public


def _rst_left(text: str) -> bool:
    """Whether page text still shows reStructuredText: roles, math directives, table borders."""
    return bool(re.search(r":(func|class|mod|meth|data|attr|exc|math):", text)) or "..math::" in text or "====" in text


def test_api_index_lists_every_module_with_its_summary(site):
    hooks = _load("hooks")
    text = _text(site / "api" / "index.html")
    assert not _rst_left(text)
    for public in hooks.api_modules():
        summary = importlib.import_module(public).__doc__.strip().split("\n\n")[0]
        assert _plain(summary).rstrip(".") in text, public


def test_api_page_shows_the_funnel_function_docstring(site):
    from privdomain import funnel

    text = _text(site / "api" / "funnel.html")
    lines = funnel.funnel.__doc__.strip().splitlines()
    assert _plain(lines[0]) in text  # "Persons reaching each step of a funnel, ..."
    assert _plain(" ".join(lines[2:4])) in text  # the paragraph after it
    for parameter in ("steps", "window"):  # the Parameters section, item by item
        described = re.search(rf"\n    {parameter}\n        (.+)\n", funnel.funnel.__doc__).group(1)
        assert _plain(described) in text, parameter
    page = (site / "api" / "funnel.html").read_text(encoding="utf-8")
    assert re.search(r'id="privdomain\.[\w.]*funnel\.funnel"', page)  # the function's own heading


def test_formulas_reach_the_page_as_math(site):
    page = (site / "api" / "clv.html").read_text(encoding="utf-8")
    assert page.count('class="arithmatex"') >= 5
    assert (site / "javascripts" / "mathjax.js").exists()
