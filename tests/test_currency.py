"""Money is shown in the dataset's currency: one formatter (plotting.money), the currency read from the manifest."""

from __future__ import annotations

import math

import pytest

from privdomain import glossary, io, plotting


@pytest.mark.parametrize("value, currency, digits, want", [
    (1234.5, "CNY", 2, "¥1,234.50"),
    (1234.5, "USD", 2, "$1,234.50"),
    (1234.5, "EUR", 2, "€1,234.50"),
    (1234.5, "GBP", 2, "1,234.50 GBP"),
    (1234.5, "JPY", 0, "1,234 JPY"),  # not ¥: that sign is the yuan's here
    (-0.5, "usd", 2, "-$0.50"),
    (1234.5, "RMB", 0, "¥1,234"),
    (float("nan"), "USD", 2, "n/a"),
    (None, "CNY", 2, "n/a"),
])
def test_money_formats_every_currency_unambiguously(value, currency, digits, want):
    assert plotting.money(value, currency, digits) == want


def test_compact_money_keeps_the_yuan_format_and_shortens_others_by_thousands():
    for v in (999.0, 123_456.0, 3.2e8):
        assert plotting.money(v, "CNY", 0, compact=True) == plotting.yuan(v)
    assert plotting.money(2_500_000, "USD", compact=True) == "$2.50M"
    assert plotting.money(7.1e9, "GBP", compact=True) == "7.10B GBP"
    # the compact form reads back to the amount within its rounding
    assert math.isclose(float(plotting.money(2_504_000, "USD", compact=True)[1:-1]) * 1e6, 2_504_000, rel_tol=5e-3)


def test_the_currency_comes_from_the_dataset_and_defaults_to_yuan(tmp_path):
    usd = io.write_dataset(tmp_path / "usd", {}, meta={"currency": "USD"})
    plain = io.write_dataset(tmp_path / "plain", {})
    assert plotting.currency_of(usd) == "USD" and plotting.currency_of(str(usd.path)) == "USD"
    assert plotting.currency_of(plain) == "CNY"
    assert plotting.currency_of(tmp_path / "missing") == "CNY"
    fmt = plotting.money_format(plotting.currency_of(usd))
    assert fmt(99.4) == "$99" and "¥" not in fmt(1e6)


def test_glossary_money_units_follow_the_currency():
    usd = glossary.table(["gmv", "aov", "buyers"], currency="USD")
    cny = glossary.table(["gmv", "aov", "buyers"])
    assert usd.count("| USD |") == 2 and "yuan" not in usd and "| persons |" in usd
    assert cny.count("| yuan |") == 2
    assert "<td>EUR</td>" in glossary.table(["gmv"], fmt="html", currency="EUR")
