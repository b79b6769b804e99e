"""Run a scenario block by block and write the dataset (and its truth).

Persons ``[b * block_size, (b + 1) * block_size)`` form block ``b``; each block
is simulated from its own seed stream and written as ``events/part-{b:05d}``,
so the files are identical whatever the number of worker processes.

>>> import tempfile
>>> from privdomain.simulate import simulate
>>> ds = simulate("tea", persons=200, seed=3, out=tempfile.mkdtemp(), truth=False)
>>> ds.manifest["persons"]
200
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import secrets
import signal
import sys
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import io, schema
from ..errors import UsageError, short_repr
from ..privacy import as_key
from . import events as E
from . import lift as lift_tests
from . import population, retarget, truth
from .basket import products_frame
from .journeys import INF, campaign_id, campaign_windows, make_block, run_world
from .orders import prepare_experiments
from .scenario import AD_SURFACES, Scenario, check_name, load_scenario, start_ns
from .scenario import MAX_PERSONS as MAX_SCENARIO_PERSONS


def _ts(sc: Scenario, days: np.ndarray) -> pd.Series:
    sec = np.floor(np.asarray(days, dtype=float) * 86400).astype(np.int64)
    idx = pd.DatetimeIndex((start_ns(sc) + sec * 1_000_000_000).astype("datetime64[ns]")).tz_localize("UTC")
    return pd.Series(idx.tz_convert(schema.TIMEZONE))


def static_tables(sc: Scenario, persons: int | None = None) -> dict[str, pd.DataFrame]:
    """campaigns, products, articles, lives of a scenario (no randomness).

    An ad surface's ``budget_yuan`` is its spend for the scenario's ``persons``; a run
    of ``persons`` persons spends in proportion (the simulated persons are the
    audience the budget buys), split equally over the surface's campaigns.
    """
    scale = (persons if persons is not None else sc.persons) / sc.persons
    from .journeys import schedule

    D = sc.days
    camps = []
    for s in AD_SURFACES:
        if not sc.has(s):
            continue
        sec = sc.sections[s]
        starts = campaign_windows(sc, s)
        k = len(starts)
        ends = np.r_[starts[1:], D]
        spend = round(sec["budget_yuan"] * 100 * scale / k)
        for i in range(k):
            camps.append((campaign_id(s, i), f"{s}_{i + 1:02d}", s, starts[i], ends[i], spend))
    cf = pd.DataFrame(camps, columns=["campaign_id", "name", "channel", "s", "e", "spend_fen"])
    campaigns = pd.DataFrame({"campaign_id": cf["campaign_id"].astype(np.int64), "name": cf["name"],
                              "channel": cf["channel"], "start": _ts(sc, cf["s"]), "end": _ts(sc, cf["e"]),
                              "spend_fen": cf["spend_fen"].astype(np.int64)}) if camps else schema.empty("campaigns")
    sched = schedule(sc)
    art = sched["articles"]
    articles = pd.DataFrame({"article_id": np.arange(1, len(art) + 1, dtype=np.int64),
                             "account": f"{sc.name} official account",
                             "title": pd.Series([f"{sc.name} article {i + 1}" for i in range(len(art))],
                                                dtype=object),
                             "published_at": _ts(sc, art)})
    lv = sched["lives"]
    hours = sc.sections["live"]["hours"] if sc.has("live") else 1.0
    lives = pd.DataFrame({"live_id": np.arange(1, len(lv) + 1, dtype=np.int64),
                          "title": pd.Series([f"{sc.name} live {i + 1}" for i in range(len(lv))], dtype=object),
                          "start": _ts(sc, lv), "end": _ts(sc, lv + hours / 24)})
    return {"campaigns": campaigns, "products": products_frame(sc), "articles": articles, "lives": lives}


def _run_block(args, write=None) -> dict[str, Any]:
    """Simulate one block and write its events part (through ``write(frame, path)`` if given)."""
    sc, seed, b, n, offset, out, want_truth, phone_key = args
    B = make_block(sc, seed, b, n, offset)
    B["phone_key"] = phone_key
    assignment = prepare_experiments(B)
    mode = "assigned" if sc.experiments else "none"
    W = run_world(B, treat=mode, assignment=assignment)
    s_ns = start_ns(sc)
    ev = E.block_events(B, W, mode, assignment)
    frame = E.events_table(B, ev, s_ns)
    if out is not None:
        path = Path(out) / "events" / f"part-{b:05d}.parquet"
        (write or io._write_parquet)(frame, path)
    n_events = len(frame)
    del frame
    crm = W["crm"]
    paid_count = np.bincount(W["purchase_person"][W["paid"]], minlength=n)
    crm_ns = np.where(np.isfinite(crm), s_ns + (np.floor(np.where(np.isfinite(crm), crm, 0) * 86400)
                                                  ).astype(np.int64) * 1_000_000_000, -1)
    acq = _acquisition(B, W)
    pid = np.arange(n, dtype=np.int64) + offset
    res: dict[str, Any] = {
        "block": b, "events": n_events,
        "persons": population.persons_table(pid, B["prof"], acq, crm_ns, paid_count, seed),
        "id_links": E.id_links_table(B, ev, crm),
        "assignments": _assignments(B, sc, s_ns),
    }
    if want_truth or sc.retarget:
        res["traits"] = truth.traits_frame(B)  # the retargeting campaign's response reads them
    if want_truth:
        first = np.full(n, np.inf)
        np.minimum.at(first, ev["person"], ev["sec"] / 86400.0)
        res["stages"] = truth.stages_block(B, W, s_ns, first)
        res["incrementality"] = truth.incrementality_block(B, W, mode, assignment)
        res["experiments"] = truth.experiments_block(B)
        res["lift"] = truth.lift_block(B, W, mode, assignment)
    return res


def _acquisition(B, W) -> np.ndarray:
    """The channel family of the person's entry route (fission only when the share brought them)."""
    acq = B["entry"].copy()
    pool = B["pool"]
    acq[pool & ~np.isfinite(W["friend"])] = "mini_program"
    return acq


def _assignments(B, sc: Scenario, s_ns: int) -> pd.DataFrame:
    parts = []
    for ename, ex in sc.experiments.items():
        elig = B["eligible"][ename]
        who = np.flatnonzero(elig)
        arm = np.where(B["assignment"][ename][who], "treatment", "holdout").astype(object)
        if ename == "coupon_tiers":
            arm = (B["tier_name"][who] + ":" + arm).astype(object)
        day = (ex["start"] - sc.start).days
        at = pd.Timestamp(s_ns + day * 86400 * 1_000_000_000, tz="UTC").tz_convert(schema.TIMEZONE)
        parts.append(pd.DataFrame({"person_id": (who + B["offset"]).astype(np.int64), "experiment": ename,
                                   "arm": arm, "assigned_at": pd.Series([at] * len(who), dtype=f"datetime64[ns, "
                                                                                            f"{schema.TIMEZONE}]")}))
    parts += lift_tests.assignments_frame(B, sc, s_ns, schema.TIMEZONE)
    if not parts:
        return schema.empty("assignments").astype({"assigned_at": f"datetime64[ns, {schema.TIMEZONE}]"})
    return pd.concat(parts, ignore_index=True)


def blocks(sc: Scenario, persons: int) -> list[tuple[int, int, int]]:
    """(block, size, offset) of a population."""
    bs = sc.block_size
    return [(b, min(bs, persons - b * bs), b * bs) for b in range((persons + bs - 1) // bs)]


MAX_PERSONS = MAX_SCENARIO_PERSONS
"""Largest population :func:`simulate` accepts (10**9: about 20 billion events, terabytes of Parquet)."""
MAX_SEED = 2**64 - 1
"""Largest seed (seeds are non-negative integers, as for ``numpy.random.SeedSequence``)."""
MAX_WORKERS = 256
KEY_ENV = "PRIVDOMAIN_KEY"
"""Environment variable holding the key of the ``phone_hash`` ids when ``simulate(key=...)`` is not given."""
SIMULATOR = "privdomain.simulate"
"""What a dataset written by :func:`simulate` says in its manifest's ``simulator`` entry."""
DEFAULT_ROOT = Path("synthetic/data")
TABLE_FILES = ("persons", "id_links", "campaigns", "products", "articles", "lives", "assignments")
TRUTH_FILES = ("stages.parquet", "persons.parquet", "incrementality.parquet", "experiments.parquet",
               "shapley.parquet", "lift.parquet", "retarget.parquet", "params.json")


def simulate(
    scenario: str | os.PathLike | Scenario = "beauty",
    persons: int | None = None,
    seed: int = 1,
    out: str | os.PathLike | None = None,
    truth: bool = True,
    workers: int = 1,
    progress: bool = False,
    shapley_sample: int = 4000,
    key: bytes | str | None = None,
    engine: str = "local",
    spark: Any | None = None,
) -> io.Dataset:
    """Simulate a scenario and write a dataset folder (Parquet tables + ``truth/``).

    Every argument is checked before anything is written. The dataset is written into
    a temporary sibling folder (``.<name>.partial-<pid>-<random>``, manifest last) and
    moved into place only when complete, so a run that fails or is killed (even with
    SIGKILL) leaves ``out`` as it was; temporary folders of killed runs are removed by
    the next run into the same place.

    Parameters
    ----------
    scenario
        A preset name (:func:`list_scenarios`), a YAML path or a :class:`Scenario`. Text
        is read as a file only when it looks like a path (it holds ``/`` or ends in
        ``.yaml`` / ``.yml``); otherwise it names a preset.
    persons
        Population size, 1 to 10**9 (default: the scenario's ``persons``).
    seed
        The seed, an integer from 0 to 2**64 - 1: same scenario, persons, seed (and
        key) give byte-identical files.
    out
        Output folder (default ``synthetic/data/<scenario name>``). It may be missing,
        an empty folder, or a dataset this function wrote before (its ``dataset.json``
        says ``"simulator": "privdomain.simulate"``), which is replaced. Anything else
        is refused, and so is a simulator's dataset that holds files the simulator did
        not write (a note, a notebook, a stray part): move them out first. Nothing but
        the simulator's own files is ever deleted.
    truth
        Also write the ground truth in ``out/truth/``.
    workers
        Processes over blocks (the output does not depend on it).
    progress
        Show a tqdm progress bar over blocks.
    shapley_sample
        Persons in the Shapley sample (see :func:`privdomain.simulate.truth.shapley`).
    key
        Secret key (bytes or text, at least 16 bytes) of the ``phone_hash`` ids, which
        are a keyed hash of the persons' phone numbers (see
        :func:`privdomain.simulate.population.phone_key`). Default: the environment
        variable ``PRIVDOMAIN_KEY`` if set, else a key derived from the seed (then
        anyone who knows the seed, which the manifest records, can recompute the ids).
        The manifest records which (``phone_hash_key``), never the key.
    engine
        ``"local"`` (default): this machine, ``workers`` processes. ``"spark"``: the person
        blocks are distributed over the executors of a Spark session (each block is
        simulated from its own seed stream, so the files are the same as a local run's,
        row for row); each executor writes its blocks' events parts into ``out`` and
        hands back the block's persons, id links and truth, which the driver writes as
        today. ``out`` must be a folder every executor can write (local mode: any
        folder; a cluster: a shared file system such as ``/dbfs/...`` or NFS), and
        privdomain must be installed on the executors. ``workers`` is then unused.
    spark
        The ``pyspark.sql.SparkSession`` for ``engine="spark"``. Default: the active
        session, else a new one (``local[*]`` unless ``spark-submit`` set a master).

    Returns
    -------
    privdomain.io.Dataset

    Raises
    ------
    ScenarioError
        The scenario cannot be loaded (unknown preset, bad file, bad name).
    privdomain.errors.UsageError
        A bad argument, or an ``out`` that is not safe to write (see above).
    """
    checked = _check_arguments(persons, seed, workers, truth, progress, shapley_sample, key)
    if engine not in ENGINES:
        raise UsageError.unknown("engine", engine, ENGINES)
    _check_out_argument(out)
    sc = load_scenario(scenario)
    n = checked["persons"] if checked["persons"] is not None else sc.persons
    if n > MAX_PERSONS:
        raise UsageError(f"persons: at most {MAX_PERSONS:,} (the scenario asks for {n:,})")
    seed = checked["seed"]
    phone_key, key_source = _phone_key(seed, key)
    given = Path(out) if out is not None else DEFAULT_ROOT / check_name(sc.name, sc.source or "scenario")
    root = _resolve_out(given)
    parent = root.parent
    if parent.is_dir():
        _clean_stale(parent, root.name)  # may restore a dataset a killed run had set aside
    plan = _classify_out(root, given)
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / _temp_name(root.name)
    tmp.mkdir()
    try:
        with _sigterm_raises():
            session = _spark_session(spark) if engine == "spark" else None
            _write(tmp, sc, n, seed, truth, workers, progress, shapley_sample, phone_key, key_source, session)
            _commit(tmp, root, plan)
    except BaseException:
        _remove_own(tmp)
        raise
    return io.Dataset(given)


def _check_int(name: str, v: Any, lo: int, hi: int, why: str = "") -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise UsageError(f"{name}: must be an integer (got {type(v).__name__} {short_repr(v)})")
    v = int(v)
    if v < lo:
        raise UsageError(f"{name}: must be an integer >= {lo} (got {short_repr(v)})")
    if v > hi:
        raise UsageError(f"{name}: must be an integer <= {hi:,} (got {short_repr(v)}){why}")
    return v


def _check_arguments(persons, seed, workers, truth, progress, shapley_sample, key) -> dict[str, Any]:
    """Every plain argument of :func:`simulate`, checked (UsageError naming it)."""
    out: dict[str, Any] = {}
    out["persons"] = None if persons is None else _check_int(
        "persons", persons, 1, MAX_PERSONS,
        f": {MAX_PERSONS:,} persons already make about 20 billion events (terabytes of Parquet); "
        f"nothing was written")
    out["seed"] = _check_int("seed", seed, 0, MAX_SEED, " (seeds are 64-bit)")
    out["workers"] = _check_int("workers", workers, 1, MAX_WORKERS)
    out["shapley_sample"] = _check_int("shapley_sample", shapley_sample, 1, MAX_PERSONS)
    for name, v in (("truth", truth), ("progress", progress)):
        if not isinstance(v, (bool, np.bool_)):
            raise UsageError(f"{name}: must be True or False (got {type(v).__name__} {short_repr(v)})")
    if key is not None:
        as_key(key, "key")
    return out


def _check_out_argument(out: Any) -> None:
    if out is None:
        return
    if not isinstance(out, (str, os.PathLike)):
        raise UsageError(f"out: must be a folder path (got {type(out).__name__} {short_repr(out)})")
    text = os.fspath(out)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if "\x00" in text:
        raise UsageError(f"out: a path cannot hold a NUL character (got {short_repr(text)})")
    if text.strip() == "":
        raise UsageError("out: must be a folder path (got an empty path)")


def _phone_key(seed: int, key: bytes | str | None) -> tuple[bytes, str]:
    """The ``phone_hash`` key and where it came from (``argument``, ``PRIVDOMAIN_KEY`` or ``seed``)."""
    if key is not None:
        return population.phone_key(seed, key), "argument"
    env = os.environ.get(KEY_ENV)
    if env:
        return population.phone_key(seed, as_key(env, KEY_ENV)), KEY_ENV
    return population.phone_key(seed), "seed"


# ------------------------------------------------------------ safe writes
def _own_files(persons: Any, block_size: Any) -> set[str] | None:
    """The relative paths a simulator's dataset of ``persons`` in blocks of ``block_size`` may hold."""
    if isinstance(persons, bool) or isinstance(block_size, bool) or not isinstance(persons, int) \
            or not isinstance(block_size, int) or persons < 0 or block_size < 1:
        return None
    parts = -(-persons // block_size)
    own = {io.MANIFEST, "events", "truth", *(f"{t}.parquet" for t in TABLE_FILES),
           *(f"truth/{f}" for f in TRUTH_FILES)}
    own.update(f"events/part-{b:05d}.parquet" for b in range(parts))
    return own


_OWN_PATTERN = re.compile(r"dataset\.json|events|truth|events/part-\d{5}\.parquet"
                          r"|(" + "|".join(TABLE_FILES) + r")\.parquet"
                          r"|truth/(" + "|".join(re.escape(f) for f in TRUTH_FILES) + ")")


def _entries(folder: Path) -> list[tuple[str, Path, bool]]:
    """(relative posix path, path, is a real folder) of everything under ``folder`` (links not followed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        d = Path(dirpath)
        for name in dirnames:
            p = d / name
            found.append((p.relative_to(folder).as_posix(), p, not p.is_symlink()))
        for name in filenames:
            p = d / name
            found.append((p.relative_to(folder).as_posix(), p, False))
    return found


def _foreign(folder: Path, own: set[str]) -> list[str]:
    """Entries of ``folder`` the simulator did not write (links are never its own); a foreign
    folder is listed once, as ``name/``, without its contents."""
    found = []
    for rel, p, is_dir in sorted(_entries(folder)):
        if rel in own and not p.is_symlink():
            continue
        if any(rel.startswith(f) for f in found if f.endswith("/")):
            continue
        found.append(rel + "/" if is_dir else rel)
    return found


def _resolve_out(given: Path) -> Path:
    """The folder to write (symbolic links resolved), checked: not a root, not the working folder,
    under a folder one may write in."""
    root = Path(os.path.realpath(given))
    if root.parent == root:
        raise UsageError(f"out: {given} is a file-system root; give a folder for the dataset")
    if len(os.fsencode(root.name)) > 200:
        raise UsageError(f"out: the folder name is too long ({len(os.fsencode(root.name))} bytes; at most 200)")
    cwd = Path(os.path.realpath(os.getcwd()))
    if root == cwd or root in cwd.parents:
        raise UsageError(f"out: {given} is the working folder or holds it; give a folder of its own")
    for up in [root.parent, *root.parent.parents]:
        if up.exists():
            if not up.is_dir():
                raise UsageError(f"out: {up} is a file, so {given} cannot be created")
            if not os.access(up, os.W_OK | os.X_OK):
                raise UsageError(f"out: no permission to write in {up}")
            break
    return root


def _classify_out(root: Path, given: Path) -> dict[str, Any]:
    """What is at ``root`` now: nothing, an empty folder or a simulator's dataset (else UsageError)."""
    if not os.path.lexists(root):
        return {"kind": "new"}
    if not root.is_dir():
        raise UsageError(f"out: {given} exists and is a file, not a folder; refusing to replace it")
    if not any(root.iterdir()):
        return {"kind": "empty"}
    manifest = root / io.MANIFEST
    meta: Any = None
    if manifest.is_file() and not manifest.is_symlink():
        try:
            meta = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = None
    if not isinstance(meta, dict) or meta.get("simulator") != SIMULATOR:
        why = (f"no {io.MANIFEST}" if not manifest.exists() else
               f"its {io.MANIFEST} is not one the simulator wrote")
        raise UsageError(f"out: {given} exists and is not a dataset the simulator wrote ({why}); refusing to "
                         f"replace it (nothing was changed): give an empty or new folder")
    own = _own_files(meta.get("persons"), meta.get("block_size"))
    if own is None:
        raise UsageError(f"out: {given}/{io.MANIFEST} says the simulator wrote it but has no valid persons and "
                         f"block_size; refusing to replace it (nothing was changed)")
    foreign = _foreign(root, own)
    if foreign:
        raise UsageError(f"out: {given} holds {len(foreign)} file(s) or folder(s) the simulator did not write "
                         f"({', '.join(short_repr(f, 80) for f in foreign[:5])}{', ...' if len(foreign) > 5 else ''});"
                         f" refusing to replace it (nothing was changed): move them out or give another folder")
    return {"kind": "replace", "own": own, "given": given}


def _temp_name(name: str, kind: str = "partial") -> str:
    """``.<name>.<kind>-<pid>-<8 hex>``: a new dataset being written (``partial``) or an old one set
    aside while the new one is moved in (``replaced``, only where paths cannot be swapped atomically)."""
    return f".{name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (when unsure: yes, so its folder is left alone)."""
    if pid == os.getpid() or os.name != "posix":  # os.kill(pid, 0) would end the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _clean_stale(parent: Path, name: str) -> None:
    """Tidy up after earlier runs into ``parent/name`` whose process is gone.

    A ``partial`` folder is removed (the simulator's files in it). A ``replaced`` folder is
    an old dataset set aside by a run killed before it moved the new one in: it is moved
    back to ``name`` when nothing is there, else removed.
    """
    rx = re.compile(r"\." + re.escape(name) + r"\.(partial|replaced)-(\d+)-[0-9a-f]{8}")
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return
    for p in entries:
        m = rx.fullmatch(p.name)
        if not m or not p.is_dir() or p.is_symlink() or _alive(int(m.group(2))):
            continue
        if m.group(1) == "replaced" and not os.path.lexists(parent / name):
            os.rename(p, parent / name)
        else:
            _remove_own(p)


def _remove_own(folder: Path) -> None:
    """Delete the simulator's files in ``folder`` (by name), then the folder if that emptied it.

    Anything else found there is left in place, with a warning.
    """
    if not folder.is_dir() or folder.is_symlink():
        return
    entries = _entries(folder)
    for rel, p, is_dir in sorted(entries, key=lambda e: -e[0].count("/")):
        if not _OWN_PATTERN.fullmatch(rel) or (p.is_symlink()):
            continue
        try:
            if is_dir:
                p.rmdir()
            else:
                p.unlink()
        except OSError:
            pass
    try:
        folder.rmdir()
    except OSError:
        left = [rel for rel, _, _ in _entries(folder)]
        warnings.warn(f"{folder}: left in place, it holds files the simulator did not write: "
                      f"{', '.join(left[:5])}", stacklevel=3)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _commit(tmp: Path, root: Path, plan: dict[str, Any]) -> None:
    """Move the complete dataset in ``tmp`` to ``root``; then delete the old dataset's own files."""
    if plan["kind"] in ("new", "empty"):
        try:
            os.rename(tmp, root)  # atomic; replaces an empty folder, fails on a non-empty one
        except OSError as e:
            raise UsageError(f"out: {root} changed during the run ({e.strerror}); the new dataset was not "
                             f"moved in and nothing there was changed") from None
        return
    foreign = _foreign(root, plan["own"])  # files may have been added during the run
    if foreign:
        raise UsageError(f"out: {plan['given']} gained file(s) or folder(s) the simulator did not write during the run "
                         f"({', '.join(short_repr(f, 80) for f in foreign[:5])}); it was left as it was")
    if _exchange(tmp, root):
        _remove_own(tmp)  # now the old dataset
        return
    # no atomic swap here: set the old dataset aside, move the new one in (with SIGTERM held back);
    # a run killed in between leaves the old one in a "replaced" folder, which the next run restores
    aside = root.parent / _temp_name(root.name, "replaced")
    held = hasattr(signal, "pthread_sigmask")
    if held:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        os.rename(root, aside)
        try:
            os.rename(tmp, root)
        except OSError:
            os.rename(aside, root)
            raise
    finally:
        if held:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    _remove_own(aside)


@contextlib.contextmanager
def _sigterm_raises():
    """While writing, SIGTERM raises SystemExit (so the temporary folder is removed), unless handled already."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


ENGINES = ("local", "spark")
"""Where :func:`simulate` runs the person blocks."""


def _spark_session(spark: Any | None) -> Any:
    """The given session, the active one, or a new one (``local[*]`` unless a master is configured)."""
    if spark is not None:
        return spark
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise UsageError("engine='spark' needs pyspark: pip install 'privdomain[spark]'") from e
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName("privdomain-simulate")
    if not SparkConf().contains("spark.master"):
        builder = builder.master("local[*]")
        # local executors run this Python (the one privdomain is installed in), unless told otherwise
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return builder.getOrCreate()


def _spark_results(session: Any, todo: list) -> Any:
    """``_run_block`` over ``todo`` on Spark executors, results in block order.

    The blocks go out in waves of twice the default parallelism (one Spark partition per
    block), so the driver holds the results of one wave at a time; each executor writes
    its events parts itself and returns the block's small tables.
    """
    ctx = session.sparkContext
    wave = max(1, int(ctx.defaultParallelism)) * 2
    for i in range(0, len(todo), wave):
        chunk = todo[i:i + wave]
        yield from ctx.parallelize(chunk, len(chunk)).map(_run_block).collect()


def _write(root: Path, sc: Scenario, n: int, seed: int, want_truth: bool, workers: int, progress: bool,
           shapley_sample: int, phone_key: bytes, key_source: str, spark: Any | None = None) -> None:
    """Write the whole dataset into ``root`` (a fresh folder); the manifest last.

    With ``spark`` (a SparkSession) the blocks run on its executors (:func:`_spark_results`).
    """
    (root / "events").mkdir()
    todo = [(sc, seed, b, size, off, str(root), want_truth, phone_key) for b, size, off in blocks(sc, n)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=f"simulate {sc.name}", unit="block")
    collected: dict[str, list] = {k: [] for k in ("stages", "traits", "experiments")}
    incr: dict[str, list[int]] = {}
    lift_sums: dict[str, list[float]] = {}
    n_events = 0
    # persons, id links and assignments go to their files block by block, as the blocks arrive
    # in order (assignments are several rows a person: 80M rows at 10M persons, too many to hold)
    sinks = {k: io.TableSink(root / f"{k}.parquet") for k in ("persons", "id_links", "assignments")}

    def take(res, defer=None):
        """Collect a block's results; ``defer(f, x)`` runs the sink writes elsewhere (else here)."""
        nonlocal n_events
        n_events += res["events"]
        for k, sink in sinks.items():
            part = res.pop(k)
            if isinstance(part, pd.DataFrame):
                if not len(part):
                    continue  # an empty block adds no rows (and its empty frame's types may differ)
                part = io._to_arrow(part)
            if defer is None:
                sink.write(part)
            else:
                defer(sink.write, part)
        for k in collected:
            if k in res:
                collected[k].append(res[k])
        for c, v in res.get("incrementality", {}).items():
            incr[c] = [a + b for a, b in zip(incr.get(c, [0, 0, 0, 0]), v)]
        for c, v in res.get("lift", {}).items():  # summed in block order: the same floats whatever the workers
            lift_sums[c] = [a + b for a, b in zip(lift_sums.get(c, [0.0] * len(v)), v)]
        if bar is not None:
            bar.update(1)

    try:
        if spark is not None:
            for res in _spark_results(spark, todo):
                take(res)
        elif workers > 1 and len(todo) > 1:
            ex = ProcessPoolExecutor(max_workers=workers)
            try:
                for res in ex.map(_run_block, todo):
                    take(res)
            finally:
                ex.shutdown(wait=True, cancel_futures=True)
        else:
            # write block b's events in a thread while block b + 1 is simulated (Arrow releases the GIL);
            # at most one events part in flight keeps memory bounded
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=1) as pool:
                pending = []

                def write(frame, path):
                    for f in pending:
                        f.result()
                    pending.clear()
                    pending.append(pool.submit(io._write_parquet, frame, path))

                def defer(f, x):  # queued in the writer thread behind the events part in flight
                    pending.append(pool.submit(f, x))

                for args in todo:
                    take(_run_block(args, write), defer)
                for f in pending:
                    f.result()
    finally:
        if bar is not None:
            bar.close()
    counts = {"events": n_events}
    for k, sink in sinks.items():
        counts[k] = sink.close()
    tables: dict[str, pd.DataFrame] = {**static_tables(sc, n)}
    if not counts["assignments"]:  # no block had any: an empty table with the columns
        tables["assignments"] = schema.empty("assignments").astype(
            {"assigned_at": f"datetime64[ns, {schema.TIMEZONE}]"})
    for name, df in tables.items():
        io._write_parquet(df, root / f"{name}.parquet")
        counts[name] = len(df)
    if want_truth:
        write_truth(root, sc, seed, n, collected, incr, shapley_sample)
        if sc.lift_tests:
            io._write_parquet(lift_tests.truth_frame(sc, lift_sums), root / "truth" / "lift.parquet")
    meta = {"scenario": sc.name, "seed": int(seed), "persons": n, "start": sc.start.isoformat(),
            "end": sc.end.isoformat(), "block_size": sc.block_size, "simulator": SIMULATOR,
            "phone_hash_key": key_source}
    if sc.lift_tests:
        meta["lift_tests"] = lift_tests.manifest_meta(sc)
    io.write_manifest(root, counts, meta)  # last, after truth/: a folder without it is not a dataset
    if sc.retarget:  # the campaign reads the dataset just written, appends to it, then refreshes the manifest
        traits = pd.concat(collected["traits"], ignore_index=True)
        io.write_manifest(root, retarget.run(root, sc, seed, traits, want_truth, blocks(sc, n)))


def write_truth(root: Path, sc: Scenario, seed: int, n: int, collected, incr, shapley_sample: int) -> None:
    t = root / "truth"
    t.mkdir(exist_ok=True)
    io._write_parquet(pd.concat(collected["stages"], ignore_index=True), t / "stages.parquet")
    io._write_parquet(pd.concat(collected["traits"], ignore_index=True), t / "persons.parquet")
    io._write_parquet(truth.incrementality_frame(incr), t / "incrementality.parquet")
    io._write_parquet(truth.experiments_frame(sc, [r for part in collected["experiments"] for r in part]),
           t / "experiments.parquet")
    sh = truth.shapley(sc, seed, n, sample=shapley_sample)
    io._write_parquet(sh, t / "shapley.parquet")
    params = sc.to_dict()
    params["seed"] = int(seed)
    params["persons"] = n
    if sc.has("official_account"):
        oa = sc.sections["official_account"]
        params["article_rates"] = {"open_rate": oa["open_rate"], "click_rate": oa["click_rate"],
                                   "conversion_rate": oa["conversion_rate"]}
    (t / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


__all__ = ["simulate", "static_tables", "blocks", "INF", "KEY_ENV", "MAX_PERSONS", "MAX_SEED", "SIMULATOR", "ENGINES"]
