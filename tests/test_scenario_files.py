"""Scenario files are read strictly: every bad file is a ScenarioError naming the file and what broke."""

from __future__ import annotations

import hashlib
import resource
import time
from pathlib import Path

import pytest

import privdomain
from privdomain.errors import PrivdomainError
from privdomain.simulate import ScenarioError, load_scenario, simulate

TEA = (Path(privdomain.__file__).parent / "scenarios" / "tea.yaml").read_text(encoding="utf-8")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(tmp_path: Path, text: str | bytes, name: str = "bad.yaml") -> Path:
    f = tmp_path / name
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text, encoding="utf-8")
    return f


def load_refused(f: Path) -> str:
    """Load ``f``, expecting a ScenarioError; the file must be unchanged. Returns the message."""
    before = sha(f)
    with pytest.raises(ScenarioError) as e:
        load_scenario(f)
    assert sha(f) == before
    return str(e.value)


def test_scenario_error_is_a_privdomain_error_and_a_value_error():
    assert issubclass(ScenarioError, PrivdomainError) and issubclass(ScenarioError, ValueError)


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.inf"])
def test_a_number_must_be_finite(tmp_path, value):
    f = write(tmp_path, TEA.replace("open_rate: 0.1", f"open_rate: {value}"))
    msg = load_refused(f)
    assert "official_account.open_rate: must be a finite number" in msg and msg.startswith("bad.yaml")


def test_a_number_too_large_for_a_float_is_refused(tmp_path):
    f = write(tmp_path, TEA.replace("open_rate: 0.1", "open_rate: " + "9" * 400))
    msg = load_refused(f)
    assert "official_account.open_rate: must be a finite number" in msg and len(msg) < 400


def test_an_integer_too_long_to_read_is_refused_with_its_line(tmp_path):
    f = write(tmp_path, TEA.replace("\npersons: 20000\n", "\npersons: " + "9" * 5000 + "\n", 1))
    msg = load_refused(f)
    assert "a number of 5000 characters is too long (line " in msg and len(msg) < 200


def test_a_yaml_syntax_error_is_one_line_naming_the_file_and_line(tmp_path):
    msg = load_refused(write(tmp_path, "name: [tea\n"))
    assert msg.startswith("bad.yaml: not valid YAML:") and "line 2" in msg and "\n" not in msg


def test_a_duplicate_key_is_named_with_both_lines(tmp_path):
    lines = TEA.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("cycle_days:"))
    lines.insert(at + 1, "cycle_days: 30")
    msg = load_refused(write(tmp_path, "\n".join(lines)))
    assert f"duplicate key 'cycle_days' at lines {at + 1} and {at + 2}" in msg and msg.startswith("bad.yaml")


def test_a_duplicate_nested_key_is_refused(tmp_path):
    f = write(tmp_path, TEA.replace("  open_rate: 0.1", "  open_rate: 0.1\n  open_rate: 0.2"))
    assert "duplicate key 'open_rate'" in load_refused(f)


@pytest.mark.parametrize("key, date", [("start", "2024-02-30"), ("end", "2023-13-01"),
                                       ("experiments.coupon_tiers.start", "2024-09-31")])
def test_an_impossible_date_names_its_key(tmp_path, key, date):
    text = {"start": TEA.replace("start: 2024-01-01", f"start: {date}", 1),
            "end": TEA.replace("end: 2024-12-31", f"end: {date}", 1)}.get(key)
    if text is None:
        text = TEA.replace("    start: 2024-09-01", f"    start: {date}")
        assert text != TEA
    msg = load_refused(write(tmp_path, text))
    assert f"{key}: is not a real date" in msg and date in msg


def test_a_gbk_file_names_the_file_and_the_byte_offset(tmp_path):
    raw = TEA.replace("title: Tea-drinks", "title: 奶茶 Tea-drinks").encode("gbk")
    f = write(tmp_path, raw, "gbk.yaml")
    msg = load_refused(f)
    offset = raw.index("奶".encode("gbk"))
    assert str(f) in msg and "not valid UTF-8" in msg and f"byte offset {offset}" in msg and "line 2" in msg


def test_an_alias_bomb_fails_fast_in_bounded_memory(tmp_path):
    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 25):  # 30**24 leaves if expanded
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        rows.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 30) + "]")
    rows.append("name: bomb")
    f = write(tmp_path, "\n".join(rows) + "\n", "bomb.yaml")
    assert 2000 < f.stat().st_size < 3000
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    msg = load_refused(f)
    assert time.perf_counter() - t < 2.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 50_000  # kB: no expansion happened
    assert "YAML aliases are not allowed (found *a)" in msg and "line 2" in msg


def test_a_merge_key_is_refused(tmp_path):
    f = write(tmp_path, TEA.replace("orders:\n", "orders:\n  <<: {pay_rate: 0.5}\n", 1))
    assert "merge keys" in load_refused(f)


def test_an_offending_value_is_shown_in_at_most_200_characters(tmp_path):
    f = write(tmp_path, TEA.replace("cycle_days: 7", "cycle_days: " + "x" * 100_000))
    msg = load_refused(f)
    assert "cycle_days: must be a number" in msg
    assert len(msg) < 300 and "x" * 190 in msg and "x" * 201 not in msg


def test_a_huge_unknown_key_is_cut_too(tmp_path):
    f = write(tmp_path, "k" * 1000 + ": 1\n" + TEA)
    msg = load_refused(f)
    assert "unknown key" in msg and "k" * 190 in msg and "k" * 201 not in msg


@pytest.mark.parametrize("text, what", [
    ("- a\n- b\n", "must be a mapping"),
    ("just text\n", "must be a mapping"),
    ("42\n", "must be a mapping"),
    ("", "empty"),
    ("   \n\n", "empty"),
    ("# only a comment\n", "the scenario is empty"),
])
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path, text, what):
    msg = load_refused(write(tmp_path, text))
    assert msg.startswith(str(tmp_path / "bad.yaml")) or msg.startswith("bad.yaml")
    assert what in msg


def test_binary_junk_is_not_a_text_file(tmp_path):
    junk = bytes(range(256)) * 4
    msg = load_refused(write(tmp_path, junk, "junk.yaml"))
    assert "junk.yaml" in msg and "not a text file" in msg and "byte offset 0" in msg


def test_control_characters_are_not_valid_yaml(tmp_path):
    msg = load_refused(write(tmp_path, "name: tea\x07\n"))
    assert "bad.yaml: not valid YAML" in msg


def test_deep_nesting_is_refused(tmp_path):
    msg = load_refused(write(tmp_path, "name: " + "[" * 5000 + "]" * 5000 + "\n"))
    assert "nested deeper than 32 levels" in msg


def test_a_key_that_is_not_text_is_refused(tmp_path):
    msg = load_refused(write(tmp_path, TEA + "\n1: one\n"))
    assert "key 1 is not text" in msg


def test_a_folder_is_not_a_scenario_file(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ScenarioError, match="dir.yaml: is a folder"):
        load_scenario(tmp_path / "dir.yaml")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ScenarioError, match="nope.yaml: no such scenario file"):
        load_scenario(tmp_path / "nope.yaml")


def test_a_too_large_file_is_refused_before_it_is_read(tmp_path):
    f = write(tmp_path, TEA + "#" * 1_100_000 + "\n")
    assert "too large for a scenario file" in load_refused(f)


@pytest.mark.parametrize("name", ["../../escape", "/tmp/abs", "a/b", "a\\b", "..", ".hidden", "x" * 65, ""])
def test_a_scenario_name_must_be_a_plain_folder_name(tmp_path, name):
    f = write(tmp_path, TEA.replace("name: tea", f"name: {name!r}"))
    msg = load_refused(f)
    assert "name: must be a plain folder name" in msg


def test_a_good_file_still_loads_and_a_bom_is_accepted(tmp_path):
    f = write(tmp_path, b"\xef\xbb\xbf" + TEA.replace("name: tea", "name: my-tea.v2").encode("utf-8"), "ok.yaml")
    sc = load_scenario(f)
    assert sc.name == "my-tea.v2" and sc.start.isoformat() == "2024-01-01"
    assert sc.experiments["coupon_tiers"]["start"].isoformat() == "2024-09-01"


def test_a_bad_scenario_file_changes_nothing_on_disk(tmp_path):
    prev = simulate("tea", persons=30, seed=1, out=tmp_path / "ds", truth=False)
    before = {p: sha(p) for p in prev.path.rglob("*") if p.is_file()}
    f = write(tmp_path, TEA.replace("open_rate: 0.1", "open_rate: .nan"))
    with pytest.raises(ScenarioError, match="must be a finite number"):
        simulate(f, persons=30, out=prev.path)
    assert {p: sha(p) for p in prev.path.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "ds"]
