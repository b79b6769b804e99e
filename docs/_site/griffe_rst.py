"""Griffe extension: the reStructuredText of the docstrings, read as Markdown.

The docstrings are numpy style, written for both Sphinx-minded readers and ``help()``:
roles (``:func:`x```), math (``:math:`x``` and ``.. math::`` blocks), literal blocks
(a paragraph ending in ``::``) and simple tables (``====  ====``). mkdocstrings renders
docstrings as Markdown, so each is rewritten once, when the docstring is loaded:

* ``:func:`x``` and the other object roles -> ```x``` (code);
* ``:math:`x``` -> ``\\(x\\)`` and ``.. math::`` blocks -> ``$$ ... $$`` (pymdownx.arithmatex);
* ``text::`` before an indented block -> ``text:`` (the block stays a code block);
* simple tables -> Markdown tables;
* a ``Modules`` section of ``name  description`` lines -> a Markdown table;
* doctests outside an Examples section -> fenced code.

The source keeps its reStructuredText; only the site's copy changes.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

__all__ = ["RestructuredText", "to_markdown"]

_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|data|attr|exc|obj|const):`~?([^`]+)`")
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_BORDER = re.compile(r"^(\s*)(=+)((?: +=+)+)\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _math_blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith(".. math::"):
            base = _indent(line)
            first = line.strip()[len(".. math::"):].strip()  # ".. math:: x" holds its first line
            body: list[str] = [" " * (base + 4) + first] if first else []
            i += 1
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
                body.append(lines[i])
                i += 1
            while body and not body[-1].strip():
                i -= 1
                body.pop()
            text = [b.strip() for b in body if b.strip()]
            pad = " " * base
            out += [f"{pad}$$", *(pad + t for t in text), f"{pad}$$"]
            continue
        out.append(line)
        i += 1
    return out


def _columns(border: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"=+", border)]


def _cells(line: str, cols: list[tuple[int, int]]) -> list[str]:
    cells = []
    for k, (start, end) in enumerate(cols):
        stop = cols[k + 1][0] if k + 1 < len(cols) else len(line)
        cells.append(line[start:stop].strip() if k + 1 < len(cols) else line[start:].strip())
        del end
    return [c.replace("|", "\\|") for c in cells]


def _tables(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _BORDER.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        cols = _columns(lines[i])
        pad = m.group(1)
        j = i + 1
        rows: list[str] = []
        borders = [i]
        while j < len(lines) and lines[j].strip():
            if _BORDER.match(lines[j]):
                borders.append(j)
            else:
                rows.append(lines[j])
            j += 1
        # a header row sits between the first two of three borders; else the rows have no header
        header_rows = borders[1] - borders[0] - 1 if len(borders) == 3 else 0
        table: list[list[str]] = []
        for r in rows:
            cells = _cells(r, cols)
            if table and not cells[0]:  # a continuation line: its cells continue the row above
                table[-1] = [f"{a} {b}".strip() for a, b in zip(table[-1], cells)]
            else:
                table.append(cells)
        header = table[0] if header_rows == 1 else [""] * len(cols)
        body = table[1:] if header_rows == 1 else table
        if out and out[-1].strip():
            out.append("")
        out.append(pad + "| " + " | ".join(header) + " |")
        out.append(pad + "|" + "---|" * len(cols))
        out += [pad + "| " + " | ".join(r) + " |" for r in body]
        i = j
    return out


def _literal_markers(lines: list[str]) -> list[str]:
    out = list(lines)
    for k, line in enumerate(lines):
        if line.rstrip().endswith("::") and line.strip() != "::" and not line.strip().startswith(".."):
            nxt = lines[k + 1] if k + 1 < len(lines) else ""
            if not nxt.strip():
                out[k] = line.rstrip()[:-1]
    return out


def _doctests(lines: list[str]) -> list[str]:
    """Fence the doctests that stand outside an Examples section (which griffe fences itself)."""
    out: list[str] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and line.strip() and re.fullmatch(r"\s*-{3,}\s*", lines[i + 1]):
            section = line.strip().lower()
        if line.lstrip().startswith(">>>") and section not in ("examples", "example"):
            pad = line[: _indent(line)]
            block: list[str] = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i][len(pad):] if lines[i].startswith(pad) else lines[i].strip())
                i += 1
            if out and out[-1].strip():
                out.append("")
            out += [pad + "```pycon", *(pad + b for b in block), pad + "```"]
            continue
        out.append(line)
        i += 1
    return out


def _modules_sections(lines: list[str]) -> list[str]:
    """A ``Modules`` section of ``name  description`` lines as a Markdown table.

    (As a numpy section, griffe would take the paragraphs after it for more items.)
    """
    out: list[str] = []
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.strip() == "Modules" and k + 1 < len(lines) and re.fullmatch(r"\s*-{3,}\s*", lines[k + 1]):
            rows: list[list[str]] = []
            k += 2
            while k < len(lines) and lines[k].strip():
                m = re.match(r"^(\S+)\s{2,}(.+)$", lines[k])
                if m:
                    rows.append([_ROLE.sub(lambda r: r.group(1), m.group(1)).strip("`"), m.group(2).strip()])
                elif rows:
                    rows[-1][1] += " " + lines[k].strip()
                k += 1
            out += ["| module | what it holds |", "| --- | --- |"]
            out += [f"| `{name}` | {text} |" for name, text in rows]
            continue
        out.append(line)
        k += 1
    return out


def to_markdown(text: str) -> str:
    """One docstring's reStructuredText constructs as Markdown (see the module docstring)."""
    lines = _modules_sections(text.splitlines())
    lines = _doctests(lines)
    lines = _math_blocks(lines)
    lines = _tables(lines)
    lines = _literal_markers(lines)
    text = "\n".join(lines)
    text = _MATH_ROLE.sub(lambda m: "\\(" + m.group(1) + "\\)", text)
    return _ROLE.sub(lambda m: "`" + m.group(1) + "`", text)


class RestructuredText(griffe.Extension):
    """Rewrite every loaded docstring with :func:`to_markdown`."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
