"""MkDocs hook: the pages of the documentation site that are generated, not written.

* ``index.md``: the README (the home page; one text, kept in one place).
* ``notebooks/<name>.md``: one page per jupytext notebook in ``notebooks/``, built from its
  source (markdown cells as text, code cells as code); nothing is executed, so the build
  stays fast. The reports (``make report``) show the notebooks with their outputs.
* ``api/<name>.md``: one page per public module, rendered by mkdocstrings from the
  docstrings. The list of modules is :data:`API` below, the only place to edit it.

Modules are named by their public (README) names. A public name that is an alias of a
module living elsewhere (``privdomain.funnel`` kept importable for a module moved to a
subfolder) is followed to the module that defines it, and the page keeps the public name
as its title.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

#: The API reference: section -> public modules, in the order of the site's navigation.
#: Add, remove or rename a module here (and nowhere else).
API: dict[str, list[str]] = {
    "Data layer": ["schema", "contract", "io", "events", "validate", "errors", "privacy", "importers", "inventory"],
    "Simulator": ["simulate"],
    "Boards": ["funnel", "officialaccount", "touchpoints", "channel_cube", "live", "boards.overview"],
    "Attribution and identity": ["attribution", "identity"],
    "Lifecycle and value": ["lifecycle", "repurchase", "cohorts", "rfm", "clv"],
    "Experiments and audiences": ["experiments", "audience"],
    "Reports": ["reports", "plotting", "glossary", "exercises"],
}

#: The user guide, in reading order (files of docs/).
GUIDE: list[tuple[str, str]] = [
    ("The domain", "domain.md"),
    ("The simulator", "simulator.md"),
    ("Funnels", "funnels.md"),
    ("Attribution", "attribution.md"),
    ("Lifecycle", "lifecycle.md"),
    ("Audiences", "audiences.md"),
    ("Your own data", "own-data.md"),
    ("Glossary", "glossary.md"),
    ("Reports", "reports.md"),
    ("Scale", "scale.md"),
    ("Benchmarks", "benchmarks.md"),
    ("Architecture", "architecture.md"),
]

ROOT = Path(__file__).resolve().parents[2]


def api_modules() -> list[str]:
    """Every public module of the API reference, as ``privdomain.<name>``."""
    return [f"privdomain.{name}" for names in API.values() for name in names]


def notebook_names(root: Path = ROOT) -> list[str]:
    """The notebooks of ``notebooks/``, in reading order: the report runner's topics in its
    teaching order (``privdomain.reports.runner.TOPICS``), then the others by name."""
    from privdomain.reports.runner import TOPICS

    found = sorted(p.stem for p in (root / "notebooks").glob("*.py"))
    return [n for n in TOPICS if n in found] + [n for n in found if n not in TOPICS]


def _defining_module(public: str) -> str:
    """The module that defines ``public``: itself, or the module an alias points to."""
    src = str(ROOT / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    return importlib.import_module(public).__name__


def _summary(public: str) -> str:
    """The first paragraph of a module's docstring, on one line, roles as code."""
    doc = (importlib.import_module(public).__doc__ or "").strip()
    paragraph = " ".join(doc.split("\n\n")[0].split()).rstrip(".")
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", paragraph).replace("|", "\\|")


def api_page(public: str) -> str:
    """The markdown of one API page (a mkdocstrings directive)."""
    return (
        f"::: {_defining_module(public)}\n"
        "    options:\n"
        f'      heading: "{public}"\n'
        f'      toc_label: "{public}"\n'
    )


def api_index() -> str:
    lines = [
        "# API reference",
        "",
        "One page per public module, rendered from its docstrings (numpy style, with the",
        "formula and a short runnable example). `import privdomain as pdm` gives every module",
        "below as `pdm.<name>`.",
        "",
    ]
    for section, names in API.items():
        lines += [f"## {section}", "", "| module | what it holds |", "| --- | --- |"]
        lines += [f"| [`privdomain.{n}`]({n}.md) | {_summary(f'privdomain.{n}')} |" for n in names]
        lines.append("")
    return "\n".join(lines)


def _markdown_cell(source: str) -> str:
    return source.strip() + "\n"


def notebook_page(path: Path) -> str:
    """One notebook as a page: its markdown cells as text and its code cells as code."""
    import jupytext

    nb = jupytext.read(path)
    parts = [
        f"!!! note \"Notebook `notebooks/{path.name}`\"\n"
        "    A parameterised notebook (jupytext percent format), shown here without its outputs.\n"
        f"    Run it with `privdomain report`, or open `notebooks/{path.name}` in JupyterLab (`make lab`).\n"
    ]
    title_seen = False
    for cell in nb.cells:
        source = cell.source.strip()
        if not source:
            continue
        if cell.cell_type == "markdown":
            if not title_seen and source.startswith("# "):
                title, _, rest = source.partition("\n")
                parts.insert(0, title + "\n")
                source = rest.strip()
                title_seen = True
                if not source:
                    continue
            parts.append(_markdown_cell(source))
        elif cell.cell_type == "code":
            tags = cell.metadata.get("tags", [])
            label = ' title="parameters"' if "parameters" in tags else ""
            parts.append(f"```python{label}\n{source}\n```\n")
    if not title_seen:
        parts.insert(0, f"# {path.stem.replace('_', ' ').capitalize()}\n")
    return "\n".join(parts)


# ---- MkDocs events -------------------------------------------------------------------------


def on_config(config: Any, **kwargs: Any) -> Any:
    """The navigation: home, the user guide, the notebooks, the API reference."""
    config.nav = [
        {"Home": "index.md"},
        {"User guide": [{title: page} for title, page in GUIDE]},
        {"Notebooks": [f"notebooks/{name}.md" for name in notebook_names()]},
        {
            "API reference": ["api/index.md"]
            + [{section: [{f"privdomain.{n}": f"api/{n}.md"} for n in names]} for section, names in API.items()]
        },
    ]
    return config


MATHJAX = """window.MathJax = {
  tex: {inlineMath: [["\\\\(", "\\\\)"]], displayMath: [["\\\\[", "\\\\]"]], processEscapes: true, processEnvironments: true},
  options: {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"}
};
"""


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    """Add the generated pages (README as home, notebooks, API) to the site's files."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, "javascripts/mathjax.js", content=MATHJAX))

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "index.md", content=readme))
    for name in notebook_names():
        page = notebook_page(ROOT / "notebooks" / f"{name}.py")
        files.append(File.generated(config, f"notebooks/{name}.md", content=page))
    files.append(File.generated(config, "api/index.md", content=api_index()))
    for public in api_modules():
        name = public.removeprefix("privdomain.")
        files.append(File.generated(config, f"api/{name}.md", content=api_page(public)))
    return files
