"""Report pages work offline and for screen readers: no scripts from the network, figures described."""

from __future__ import annotations

import re

import nbformat
from nbclient import NotebookClient

from privdomain.reports import runner as reports


def _executed(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nfrom privdomain import plotting\n"
                                  "plotting.use_style()\nfig, ax = plt.subplots()\n"
                                  "_ = ax.set_title('复购率 repurchase rate by week')\nplt.show()"),
        nbformat.v4.new_code_cell("fig, ax = plt.subplots()\n_ = ax.plot([1, 2])"),
    ])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def test_a_rendered_page_loads_no_script_from_the_network_and_describes_each_figure(tmp_path):
    nb = _executed(tmp_path)
    page = reports.render_html(nb, tmp_path / "page.html", "page").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=\"(https?:)?//", page)
    assert not re.search(r"<script[^>]*>[^<]*MathJax", page)
    alts = re.findall(r'<img alt="([^"]*)"', page) or re.findall(r'alt="([^"]*)"', page)
    assert alts == ["Figure: 复购率 repurchase rate by week", "Figure without a title"]
    assert "No description has been provided" not in page


def test_offline_page_keeps_inline_scripts_and_leaves_alts_alone_when_the_count_differs():
    page = '<script>var x = 1;</script><div class="jp-RenderedImage"><img src="data:,"></div>'
    out = reports.offline_page(page, ["a", "b"])
    assert "var x = 1" in out and 'alt="a"' not in out
    assert 'alt="a"' in reports.offline_page(page, ["a"])
