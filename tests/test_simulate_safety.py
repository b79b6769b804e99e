"""simulate() checks every argument first, writes atomically and never deletes what it did not write."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

import privdomain
from privdomain import io
from privdomain.errors import UsageError
from privdomain.simulate import ScenarioError, load_scenario, runner, simulate

SRC = Path(privdomain.__file__).resolve().parents[1]
TEA = (Path(privdomain.__file__).parent / "scenarios" / "tea.yaml").read_text(encoding="utf-8")


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (its whole content, user files included)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def temp_folders(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if p.name.startswith(".") and ".partial-" in p.name)


@pytest.fixture
def prev(tmp_path) -> Path:
    """A previous dataset (with truth) and a user's file beside it."""
    ds = simulate("tea", persons=60, seed=1, out=tmp_path / "ds", truth=True, shapley_sample=20)
    (tmp_path / "notes.txt").write_text("the user's own notes")
    return ds.path


def assert_untouched(tmp_path: Path, before: dict[str, str]) -> None:
    assert snapshot(tmp_path) == before
    assert temp_folders(tmp_path) == []


# ------------------------------------------------------------ every argument is checked before the disk
@pytest.mark.parametrize("kwargs, message", [
    ({"persons": 10**12}, "persons: must be an integer <= 1,000,000,000 (got 1000000000000)"),
    ({"persons": 0}, "persons: must be an integer >= 1 (got 0)"),
    ({"persons": -5}, "persons: must be an integer >= 1"),
    ({"persons": 2.5}, "persons: must be an integer (got float 2.5)"),
    ({"persons": "100"}, "persons: must be an integer (got str '100')"),
    ({"persons": True}, "persons: must be an integer (got bool True)"),
    ({"seed": -1}, "seed: must be an integer >= 0 (got -1)"),
    ({"seed": 2**64}, "seed: must be an integer <= 18,446,744,073,709,551,615"),
    ({"seed": 1.5}, "seed: must be an integer (got float 1.5)"),
    ({"workers": 0}, "workers: must be an integer >= 1 (got 0)"),
    ({"workers": 10**6}, "workers: must be an integer <= 256"),
    ({"truth": "yes"}, "truth: must be True or False (got str 'yes')"),
    ({"truth": None}, "truth: must be True or False"),
    ({"progress": 1}, "progress: must be True or False (got int 1)"),
    ({"shapley_sample": 0}, "shapley_sample: must be an integer >= 1"),
    ({"key": b"short"}, "key: must be at least 16 bytes (got 5)"),
    ({"key": 12345}, "key: must be bytes or text (got int)"),
    ({"scenario": 42}, "scenario: must be a preset name, a YAML path or a Scenario (got int 42)"),
    ({"out": 42}, "out: must be a folder path (got int 42)"),
    ({"out": ""}, "out: must be a folder path (got an empty path)"),
    ({"out": "bad\x00name"}, "out: a path cannot hold a NUL character"),
    ({"out": "x" * 230}, "out: the folder name is too long (230 bytes; at most 200)"),
])
def test_a_bad_argument_is_refused_and_nothing_on_disk_changes(tmp_path, prev, kwargs, message):
    before = snapshot(tmp_path)
    args = {"scenario": "tea", "persons": 50, "out": prev, **kwargs}
    with pytest.raises(UsageError) as e:
        simulate(**args)
    assert message in str(e.value)
    assert_untouched(tmp_path, before)


def test_a_typo_of_10_to_the_12_persons_says_why_and_deletes_nothing(tmp_path, prev):
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match="about 20 billion events.*nothing was written"):
        simulate("tea", persons=10**12, out=prev)
    assert_untouched(tmp_path, before)
    assert io.open_dataset(prev).manifest["persons"] == 60


def test_an_unknown_scenario_is_refused_and_nothing_changes(tmp_path, prev):
    before = snapshot(tmp_path)
    with pytest.raises(ScenarioError, match="unknown scenario 'taa'; did you mean 'tea'"):
        simulate("taa", persons=50, out=prev)
    assert_untouched(tmp_path, before)


def test_a_scenario_asking_for_too_many_persons_is_refused(tmp_path, prev):
    f = tmp_path / "huge.yaml"
    f.write_text(TEA.replace("\npersons: 20000\n", "\npersons: 2000000000\n", 1), encoding="utf-8")
    before = snapshot(tmp_path)
    with pytest.raises(ScenarioError, match="huge.yaml: persons: must be an integer <= 1_000_000_000"):
        simulate(f, out=prev)
    assert_untouched(tmp_path, before)


# ------------------------------------------------------------ what may be replaced
def test_a_dataset_the_simulator_wrote_is_replaced_by_the_new_one(tmp_path, prev):
    old_events = snapshot(prev)
    ds = simulate("tea", persons=80, seed=2, out=prev, truth=False)
    assert ds.manifest["persons"] == 80 and ds.manifest["seed"] == 2
    assert not (prev / "truth").exists()  # the old truth went with the old dataset
    assert snapshot(prev) != old_events
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "the user's own notes"
    assert privdomain.validate(prev).ok


def test_an_empty_folder_may_be_the_target(tmp_path):
    (tmp_path / "empty").mkdir()
    ds = simulate("tea", persons=30, out=tmp_path / "empty", truth=False)
    assert ds.manifest["persons"] == 30 and sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_a_folder_that_is_not_a_dataset_is_refused_and_kept(tmp_path):
    user = tmp_path / "mine"
    (user / "sub").mkdir(parents=True)
    (user / "report.xlsx").write_bytes(b"PK\x03\x04 a spreadsheet")
    (user / "sub" / "data.parquet").write_bytes(b"PAR1")
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match=r"mine exists and is not a dataset the simulator wrote \(no dataset.json\)"):
        simulate("tea", persons=30, out=user)
    assert_untouched(tmp_path, before)


def test_a_dataset_another_tool_wrote_is_refused_and_kept(tmp_path, small_events):
    io.write_dataset(tmp_path / "real", {"events": small_events}, meta={"source": "crm export"})
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match="its dataset.json is not one the simulator wrote"):
        simulate("tea", persons=30, out=tmp_path / "real")
    assert_untouched(tmp_path, before)


def test_a_corrupt_manifest_is_refused_and_kept(tmp_path, prev):
    (prev / "dataset.json").write_text('{"simulator": "privdomain.simulate", ')
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match="not a dataset the simulator wrote"):
        simulate("tea", persons=30, out=prev)
    assert_untouched(tmp_path, before)


@pytest.mark.parametrize("extra", ["notes.md", "analysis/chart.png", "events/part-00099.parquet",
                                   "truth/my_labels.parquet"])
def test_a_simulator_dataset_holding_a_user_file_is_refused_and_the_file_survives(tmp_path, prev, extra):
    f = prev / extra
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(b"the user's file " + extra.encode())
    before = snapshot(tmp_path)
    with pytest.raises(UsageError) as e:
        simulate("tea", persons=30, out=prev)
    msg = str(e.value)
    shown = "analysis/" if extra.startswith("analysis") else extra
    assert f"holds 1 file(s) or folder(s) the simulator did not write ('{shown}')" in msg
    assert "nothing was changed" in msg
    assert_untouched(tmp_path, before)


def test_a_file_at_the_target_is_refused(tmp_path):
    f = tmp_path / "out"
    f.write_text("a file, not a folder")
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match="exists and is a file"):
        simulate("tea", persons=30, out=f)
    assert_untouched(tmp_path, before)


def test_a_target_under_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="is a file, so .* cannot be created"):
        simulate("tea", persons=30, out=tmp_path / "f" / "ds")
    assert (tmp_path / "f").read_text() == "x"


def test_the_working_folder_is_never_the_target(tmp_path, prev, monkeypatch):
    monkeypatch.chdir(prev)
    before = snapshot(tmp_path)
    for out in (".", tmp_path):
        with pytest.raises(UsageError, match="is the working folder or holds it"):
            simulate("tea", persons=30, out=out)
    assert_untouched(tmp_path, before)


def test_a_target_reached_through_a_link_is_written_in_place(tmp_path, prev):
    (tmp_path / "link").symlink_to(prev, target_is_directory=True)
    ds = simulate("tea", persons=40, out=tmp_path / "link", truth=False)
    assert ds.manifest["persons"] == 40 and (tmp_path / "link").is_symlink()
    assert io.read_manifest(prev)["persons"] == 40


# ------------------------------------------------------------ the default folder and preset names
@pytest.mark.parametrize("name", ["../../escape", "/tmp/escape", "a/../../b", "..\\..\\escape", ".."])
def test_a_scenario_name_cannot_take_the_default_output_out_of_synthetic_data(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    sc = dataclasses.replace(load_scenario("tea"), name=name)  # a Scenario built by hand, unchecked
    with pytest.raises(ScenarioError, match="name: must be a plain folder name"):
        simulate(sc, persons=20, truth=False)
    f = tmp_path / "evil.yaml"
    f.write_text(TEA.replace("name: tea", f"name: {json.dumps(name)}"), encoding="utf-8")
    with pytest.raises(ScenarioError, match="evil.yaml: name: must be a plain folder name"):
        simulate(str(f), persons=20, truth=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.yaml"]
    assert not (tmp_path.parent / "escape").exists() and not Path("/tmp/escape").exists()


def test_the_default_output_is_synthetic_data_slash_the_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "mine.yaml"
    f.write_text(TEA.replace("name: tea", "name: my_tea"), encoding="utf-8")
    ds = simulate(str(f), persons=20, truth=False)
    assert Path(ds.path) == Path("synthetic/data/my_tea")
    assert io.read_manifest(tmp_path / "synthetic" / "data" / "my_tea")["scenario"] == "my_tea"


def test_a_folder_or_file_named_like_a_preset_does_not_hijack_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "beauty").mkdir()
    (tmp_path / "beauty" / "x.yaml").write_text("name: hijack")
    (tmp_path / "tea").write_text("name: hijack\n")
    before = snapshot(tmp_path)
    assert load_scenario("beauty").name == "beauty" and load_scenario("tea").name == "tea"
    ds = simulate("tea", persons=20, out=tmp_path / "out", truth=False)
    assert ds.manifest["scenario"] == "tea"
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("out/")} == before


def test_text_that_looks_like_a_path_is_a_file(tmp_path):
    with pytest.raises(ScenarioError, match=r"tea.yml: no such scenario file"):
        load_scenario(str(tmp_path / "tea.yml"))
    with pytest.raises(ScenarioError, match=r"no such scenario file"):
        load_scenario("./tea")


# ------------------------------------------------------------ temporary folders, failures, fallbacks
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporary_folders_of_dead_runs_are_removed_by_the_next_run(tmp_path, prev):
    dead = _dead_pid()
    stale = tmp_path / f".ds.partial-{dead}-0123abcd"
    shutil.copytree(prev, stale)
    (stale / "dataset.json").unlink()
    kept = tmp_path / f".ds.partial-{dead}-4567cdef"  # someone put a file there: it stays
    (kept / "events").mkdir(parents=True)
    shutil.copy(prev / "events" / "part-00000.parquet", kept / "events")
    (kept / "mine.txt").write_text("keep")
    alive = tmp_path / f".ds.partial-{os.getppid()}-89abcdef"  # a run still going: untouched
    alive.mkdir()
    other = tmp_path / f".other.partial-{dead}-0123abcd"  # another target's: untouched
    other.mkdir()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        simulate("tea", persons=30, out=prev, truth=False)
    assert not stale.exists() and alive.exists() and other.exists()
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*")) == ["mine.txt"]
    assert any("mine.txt" in str(w.message) for w in caught)


def test_a_run_that_fails_midway_leaves_the_previous_dataset_and_no_temporary_folder(tmp_path, prev, monkeypatch):
    before = snapshot(tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(runner, "write_truth", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        simulate("tea", persons=200, out=prev, truth=True)
    assert_untouched(tmp_path, before)


def test_without_an_atomic_swap_the_old_dataset_is_set_aside_then_removed(tmp_path, prev, monkeypatch):
    monkeypatch.setattr(runner, "_exchange", lambda a, b: False)
    ds = simulate("tea", persons=70, out=prev, truth=False)
    assert ds.manifest["persons"] == 70
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "notes.txt"]


def test_a_dataset_set_aside_by_a_killed_run_is_restored_when_nothing_replaced_it(tmp_path, prev):
    before = snapshot(prev)
    aside = tmp_path / f".ds.replaced-{_dead_pid()}-0123abcd"
    prev.rename(aside)
    with pytest.raises(UsageError, match="holds 1 file"):  # restored first, then checked as usual
        (aside / "x.txt").write_text("a user file")
        simulate("tea", persons=30, out=prev, truth=False)
    (prev / "x.txt").unlink()
    assert snapshot(prev) == before and not aside.exists()


# ------------------------------------------------------------ faults: SIGTERM and SIGKILL mid-run
SLOW_RUN = """
import sys, time
from privdomain import io
from privdomain.simulate import simulate
write = io._write_parquet
seen = []
def slow(data, path):  # a slow disk: every events and truth file takes a while, so the run is caught mid-way
    write(data, path)
    if "events" in str(path) or "truth" in str(path):
        seen.append(path)  # the first of each kind waits long enough for a loaded machine to send the signal
        kind = "events" if "events" in str(path) else "truth"
        time.sleep(3.0 if sum(kind in str(p) for p in seen) == 1 else 0.25)
io._write_parquet = slow
simulate(sys.argv[1], persons=int(sys.argv[2]), seed=5, out=sys.argv[3], truth=True, shapley_sample=50)
"""


def _start_and_signal(tmp_path: Path, out: Path, sig: int, when: str = "events/part-*.parquet"
                      ) -> subprocess.CompletedProcess:
    """Run a 4,000-person simulation in blocks of 400 into ``out``; send ``sig`` once a file
    matching ``when`` is in its temporary folder."""
    sc = tmp_path / "blocks.yaml"
    sc.write_text(TEA.replace("\npersons: 20000\n", "\npersons: 20000\nblock_size: 400\n", 1), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(sc), "4000", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(f".{out.name}.partial-{proc.pid}-*/{when}")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never wrote an events part"
        time.sleep(0.01)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_sigterm_mid_run_leaves_the_previous_dataset_byte_identical_and_no_temporary_folder(tmp_path, prev):
    before = snapshot(prev)
    res = _start_and_signal(tmp_path, prev, signal.SIGTERM)
    assert res.returncode == 128 + signal.SIGTERM, res.stderr.decode()[-2000:]
    assert snapshot(prev) == before
    assert temp_folders(tmp_path) == []
    assert io.read_manifest(prev)["persons"] == 60


def test_sigkill_mid_run_leaves_the_previous_dataset_and_a_partial_folder_no_one_takes_for_a_dataset(tmp_path, prev):
    before = snapshot(prev)
    res = _start_and_signal(tmp_path, prev, signal.SIGKILL)
    assert res.returncode == -signal.SIGKILL
    assert snapshot(prev) == before and io.read_manifest(prev)["persons"] == 60
    (partial,) = temp_folders(tmp_path)
    assert list(partial.glob("events/part-*.parquet")) and not (partial / "dataset.json").exists()
    with pytest.raises((FileNotFoundError, ValueError)):
        io.open_dataset(partial)
    with pytest.raises((FileNotFoundError, ValueError)):
        io.read_manifest(partial)
    # the next run tidies up after the killed one
    ds = simulate("tea", persons=50, out=prev, truth=False)
    assert ds.manifest["persons"] == 50 and temp_folders(tmp_path) == []


def test_sigkill_of_a_first_run_leaves_no_folder_at_the_target(tmp_path):
    out = tmp_path / "fresh"
    res = _start_and_signal(tmp_path, out, signal.SIGKILL)
    assert res.returncode == -signal.SIGKILL
    assert not out.exists()
    with pytest.raises((FileNotFoundError, ValueError)):
        io.open_dataset(out)


def test_sigkill_while_writing_truth_leaves_the_previous_dataset_and_no_manifest_in_the_partial_folder(tmp_path,
                                                                                                      prev):
    before = snapshot(prev)
    res = _start_and_signal(tmp_path, prev, signal.SIGKILL, when="truth/stages.parquet")
    assert res.returncode == -signal.SIGKILL
    assert snapshot(prev) == before
    (partial,) = temp_folders(tmp_path)
    assert (partial / "truth" / "stages.parquet").exists() and not (partial / "dataset.json").exists()
    with pytest.raises((FileNotFoundError, ValueError), match="dataset.json"):
        privdomain.validate(partial)
    with pytest.raises((FileNotFoundError, ValueError)):
        io.open_dataset(partial)
