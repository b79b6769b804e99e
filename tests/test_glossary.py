"""The glossary: one definition per term, rendered into every notebook and docs/glossary.md."""

import re
from pathlib import Path

import pytest

from privdomain import glossary
from privdomain.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def test_docs_glossary_is_generated_from_the_module_and_up_to_date():
    text = (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8")
    assert text == glossary.document(), "docs/glossary.md is stale: python -m privdomain.glossary > docs/glossary.md"


def test_every_term_has_names_definition_formula_and_unit():
    for key, t in glossary.TERMS.items():
        for field in ("zh", "en", "definition", "formula", "unit"):
            assert getattr(t, field).strip(), f"{key}: {field} is empty"


def test_no_two_terms_share_a_chinese_or_english_name():
    for attr in ("zh", "en"):
        names = [getattr(t, attr) for k, t in glossary.TERMS.items() if k not in ("t_x",)]
        dupes = {n for n in names if names.count(n) > 1}
        assert not dupes, f"{attr} names used twice: {dupes}"


def test_the_names_that_used_to_collide_now_have_distinct_terms_and_formulas():
    zh = {t.zh: t for t in glossary.TERMS.values()}
    assert "转化率" not in zh and "点击率" not in zh, "bare 转化率 / 点击率 are ambiguous"
    conversions = [t for t in glossary.TERMS.values() if t.zh.endswith("转化率")]
    assert len(conversions) >= 5 and len({t.formula for t in conversions}) == len(conversions)
    clicks = [t for t in glossary.TERMS.values() if t.zh.endswith("点击率")]
    assert len(clicks) == 2 and clicks[0].formula != clicks[1].formula
    assert glossary.term("repeat_aov").formula != glossary.term("total_spend").formula
    assert "revenue" in glossary.term("roi").en and "/ spend" in glossary.term("roi").formula
    assert glossary.term("uplift_pp").unit == "pp" and glossary.term("relative_lift").unit == "%"


def test_table_renders_the_keys_in_order_in_markdown_and_html():
    md = glossary.table(["roi", "buyer_rate"]).splitlines()
    assert md[0].startswith("| term") and md[1].startswith("| ---")
    assert len(md) == 4
    assert md[2].startswith("| 投资回报率 ROI (revenue / spend) |")
    assert md[3].startswith("| 购买转化率 buyer conversion rate |")
    html = glossary.table(["roi"], fmt="html")
    assert html.startswith("<table") and html.count("<tr>") == 2 and "(direct + fission revenue) / spend" in html


def test_a_pipe_in_a_formula_cannot_break_the_markdown_table(monkeypatch):
    t = glossary.Term("条件", "conditional", "mean given a wave", "mean(Y | wave g)", "yuan")
    monkeypatch.setitem(glossary.TERMS, "conditional_mean", t)
    row = glossary.table(["conditional_mean"]).splitlines()[2]
    assert "mean(Y \\| wave g)" in row
    assert row.count("|") - row.count("\\|") == 5


def test_unknown_key_and_format_are_usage_errors_naming_them():
    with pytest.raises(UsageError, match=r"unknown glossary term 'buyer_rat'.*did you mean 'buyer_rate'"):
        glossary.table(["buyer_rat"])
    with pytest.raises(UsageError, match=r"unknown glossary format 'pdf'"):
        glossary.table(["roi"], fmt="pdf")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_render_definitions_from_the_glossary_not_by_hand(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"^# \| (metric|column) \| definition \| formula \|", text, flags=re.M), \
        f"{path.name} has a hand-written definition table"
    for keys in re.findall(r"glossary\.table\((\[[^\]]*\])", text):
        for key in re.findall(r"['\"]([a-zA-Z0-9_]+)['\"]", keys):
            assert key in glossary.TERMS, f"{path.name} asks for unknown term {key!r}"


def test_the_notebooks_that_define_terms_use_the_glossary():
    users = {p.stem for p in NOTEBOOKS if "glossary.table(" in p.read_text(encoding="utf-8")}
    assert {"case_study", "quickstart", "experiments", "attribution_roi", "funnels_official_account",
            "touchpoints_channels", "lifecycle_clv", "simulate_and_inspect"} <= users


def test_every_schema_touchpoint_and_channel_has_a_bilingual_display_name():
    from privdomain import schema

    for key, labels in ((schema.TOUCHPOINTS, glossary.TOUCHPOINT_LABELS), (schema.CHANNELS, glossary.CHANNEL_LABELS)):
        missing = [k for k in key if k not in labels]
        assert not missing, f"no display name for {missing}"
        for k in key:
            zh, _, en = labels[k].partition(" ")
            assert re.search(r"[\u4e00-\u9fff]", zh) and re.search(r"[A-Za-z]", en), f"{k}: {labels[k]!r}"
            assert labels[k] != k
    assert glossary.display_name("mp_visit") == "小程序访问 Mini Program visit"
    assert glossary.display_name("oa_article_open", "touchpoint") == "图文打开 OA article open"


def test_every_lifecycle_stage_and_attribution_model_has_a_bilingual_display_name():
    from privdomain import attribution, lifecycle

    for keys, labels in (((*lifecycle.STAGES, *lifecycle.AIPL_STAGES), glossary.STAGE_LABELS),
                         (attribution.MODELS, glossary.MODEL_LABELS)):
        for k in keys:
            assert k in labels, f"no display name for {k}"
            assert re.search(r"[\u4e00-\u9fff]", labels[k]) and k.replace("_", " ").split()[0] in labels[k].lower()
    assert [glossary.display_name(s, "stage") for s in ("new", "active", "dormant", "churned")] == \
        ["新客 new", "活跃 active", "沉睡 dormant", "流失 churned"]


def test_display_name_keeps_unknown_ids_and_rejects_an_unknown_kind():
    assert glossary.display_name("my_event") == "my_event"
    assert glossary.display_name("live", "channel") == "直播 live stream"
    assert glossary.display_name("live", "touchpoint") == "live"  # not a touchpoint id
    assert glossary.display_names(["pay", "order"], "touchpoint") == ["支付 pay", "下单 order"]
    with pytest.raises(UsageError, match="stages"):
        glossary.display_name("new", "stages")


def test_display_path_names_each_channel_of_a_journey():
    assert glossary.display_path("official_account > live") == "公众号 Official Account > 直播 live stream"
    assert glossary.display_path("moments_ad") == "朋友圈广告 Moments ads"
    assert glossary.display_path("a > sms", sep=" > ") == "a > 短信 SMS"
