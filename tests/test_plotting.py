"""The figure style: Chinese text renders with the packaged CJK font, no missing glyphs."""

import io
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from privdomain import plotting  # noqa: E402

CHINESE = "复购率 repurchase rate · 打开率 open rate · 私域 GMV ¥1,234 −5%"


def _glyph_warnings(draw) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = draw()
        fig.savefig(io.BytesIO(), format="png")
        plt.close(fig)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def _figure_with_chinese():
    fig, ax = plt.subplots()
    ax.set_title(CHINESE)
    ax.set_xlabel("天数 days since first touch")
    ax.bar(["朋友圈广告", "搜一搜", "视频号"], [3, -1, 2])
    ax.legend(["转化率 conversion rate"])
    return fig


def test_default_matplotlib_font_lacks_chinese_glyphs_so_the_check_can_fail():
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"]}):
        assert _glyph_warnings(_figure_with_chinese), "DejaVu Sans should miss CJK glyphs"


def test_use_style_renders_chinese_without_a_missing_glyph_warning():
    font = plotting.use_style()
    assert font.path.exists()
    assert matplotlib.rcParams["font.sans-serif"][0] == font.family
    assert _glyph_warnings(_figure_with_chinese) == []


def test_the_cjk_font_comes_from_a_python_package_not_the_system():
    font = plotting.find_cjk_font()
    assert "site-packages" in str(font.path) or "privdomain" in str(font.path)
    assert font.family == "Noto Sans CJK SC"


@pytest.mark.parametrize("helper", ["bar", "line", "funnel", "heatmap"])
def test_helpers_draw_chinese_labels_cleanly(helper):
    plotting.use_style()
    df = pd.DataFrame({"渠道 channel": ["公众号", "社群", "导购"], "gmv": [1200.0, 800.0, 300.0],
                       "day": [1, 2, 3]})

    def draw():
        if helper == "bar":
            ax = plotting.bar(df, "渠道 channel", "gmv", title="渠道 GMV by channel", values="yuan")
            plotting.yuan_axis(ax)
        elif helper == "line":
            ax = plotting.line(df, "day", "gmv", title="累计 GMV cumulative")
        elif helper == "funnel":
            ax = plotting.funnel(["曝光 view", "点击 click", "支付 pay"], [1000, 120, 9], title="漏斗 funnel")
        else:
            table = pd.DataFrame([[1.0, 0.4], [1.0, 0.3]], index=["2024-01 首购", "2024-02 首购"], columns=["M0", "M1"])
            ax = plotting.heatmap(table, title="留存 retention")
        return ax.figure

    assert _glyph_warnings(draw) == []


def _wilson(k: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return centre - half, centre + half


def test_funnel_labels_each_step_with_its_rate_n_and_wilson_interval():
    plotting.use_style()
    ax = plotting.funnel(["a", "b", "c"], [200, 50, 10])
    texts = [t.get_text() for t in ax.texts]
    lo1, hi1 = _wilson(50, 200)
    lo2, hi2 = _wilson(10, 50)
    assert texts == ["200", f"50  (25.0% of n = 200, 95% CI {lo1:.1%} to {hi1:.1%})",
                     f"10  (20.0% of n = 50, 95% CI {lo2:.1%} to {hi2:.1%})"]
    plt.close(ax.figure)
    rates = plotting.step_rates(["a", "b", "c"], [200, 50, 10])
    assert rates["n"].tolist() == [0, 200, 50] and rates.loc[1:, "rate"].tolist() == [0.25, 0.2]
    assert rates.loc[1, "low"] == pytest.approx(lo1) and rates.loc[2, "high"] == pytest.approx(hi2)
    assert bool(rates.loc[0, "too_small"]) and not rates.loc[1, "too_small"]
    ax = plotting.funnel(["a", "b"], [20, 5])  # n < 30: marked
    assert ax.texts[1].get_text().startswith("5  (⚠ 25.0% of n = 20")
    plt.close(ax.figure)


def test_money_and_share_formatting():
    assert plotting.yuan(999.4) == "¥999"
    assert plotting.yuan(250_000) == "¥25.0万"
    assert plotting.yuan(-3e8) == "-¥3.00亿"
    assert plotting.percent(0.5) == "50.0%"
    assert plotting.label("复购率", "repurchase rate") == "复购率 repurchase rate"


def test_yuan_puts_the_sign_before_the_currency_and_reads_nan_as_na():
    assert plotting.yuan(-12037.744) == "-¥12,038"
    assert plotting.yuan(-12037.744, sign=True) == "-¥12,038"
    assert plotting.yuan(12037.744, sign=True) == "+¥12,038"
    assert plotting.yuan(12037.744) == "¥12,038"
    assert plotting.yuan(-0.2) == "¥0"  # rounds to zero: no "-¥0"
    assert plotting.yuan(-2.5e5, sign=True) == "-¥25.0万"
    assert plotting.yuan(float("nan")) == "n/a"
    assert plotting.yuan(1.5, digits=2) == "¥1.50"


def test_lifecycle_plots_label_stages_in_chinese_and_english():
    from privdomain import glossary, plot_lifecycle

    board = pd.DataFrame({"period": pd.to_datetime(["2024-01-01"] * 3 + ["2024-01-08"] * 3),
                          "stage": ["new", "active", "dormant"] * 2, "persons": [3, 1, 2, 2, 2, 1]})
    ax = plot_lifecycle.plot_stage_area(board)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(legend) == sorted(["新客 new", "活跃 active", "沉睡 dormant"])
    plt.close(ax.figure)
    flows = pd.DataFrame({"period": pd.to_datetime(["2024-01-08"] * 3), "from_stage": ["active", "active", "new"],
                          "to_stage": ["active", "dormant", "active"], "persons": [8, 2, 3]})
    ax = plot_lifecycle.plot_stage_sankey(flows)
    texts = {t.get_text() for t in ax.texts}
    assert {"活跃 active (10)", "新客 new (3)", "沉睡 dormant (2)", "活跃 active (11)"} <= texts
    plt.close(ax.figure)
    ax = plot_lifecycle.plot_stage_flows(flows)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks and all(t == glossary.STAGE_LABELS[t.split()[-1]] for t in ticks), ticks
    plt.close(ax.figure)


def test_stage_sankey_keeps_labels_of_thin_bands_apart():
    from privdomain import plot_lifecycle

    flows = pd.DataFrame({"period": pd.to_datetime(["2024-01-08"] * 4),
                          "from_stage": ["active", "active", "active", "dormant"],
                          "to_stage": ["dormant", "loyal", "resurrected", "churned"], "persons": [300, 1, 1, 50]})
    ax = plot_lifecycle.plot_stage_sankey(flows)
    right = sorted(t.get_position()[1] for t in ax.texts if t.get_position()[0] > 0.5)
    assert len(right) == 4
    # heights are shares of the 352 persons plus a 0.02 gap between nodes, so the stack is
    # at least 1 high: labels at least 4% of it apart; unspaced, two 1-person bands'
    # labels would be 1/352 + 0.02 = 0.023 apart
    gaps = [b - a for a, b in zip(right, right[1:])]
    assert min(gaps) >= 0.04 * 0.99, gaps
    plt.close(ax.figure)
