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

import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import io, schema
from . import events as E
from . import population, truth
from .journeys import INF, campaign_id, campaign_windows, make_block, run_world
from .orders import prepare_experiments, products_frame
from .scenario import AD_SURFACES, Scenario, load_scenario


def start_ns(sc: Scenario) -> int:
    return int(pd.Timestamp(sc.start.isoformat(), tz=schema.TIMEZONE).value)


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
    sc, seed, b, n, offset, out, want_truth = args
    B = make_block(sc, seed, b, n, offset)
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
    if want_truth:
        first = np.full(n, np.inf)
        np.minimum.at(first, ev["person"], ev["sec"] / 86400.0)
        res["stages"] = truth.stages_block(B, W, s_ns, first)
        res["incrementality"] = truth.incrementality_block(B, W, mode, assignment)
        res["experiments"] = truth.experiments_block(B)
        res["traits"] = truth.traits_frame(B)
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
    if not parts:
        return schema.empty("assignments").astype({"assigned_at": f"datetime64[ns, {schema.TIMEZONE}]"})
    return pd.concat(parts, ignore_index=True)


def blocks(sc: Scenario, persons: int) -> list[tuple[int, int, int]]:
    """(block, size, offset) of a population."""
    bs = sc.block_size
    return [(b, min(bs, persons - b * bs), b * bs) for b in range((persons + bs - 1) // bs)]


def simulate(
    scenario: str | os.PathLike | Scenario = "beauty",
    persons: int | None = None,
    seed: int = 1,
    out: str | os.PathLike | None = None,
    truth: bool = True,
    workers: int = 1,
    progress: bool = False,
    shapley_sample: int = 4000,
) -> io.Dataset:
    """Simulate a scenario and write a dataset folder (Parquet tables + ``truth/``).

    Parameters
    ----------
    scenario
        A preset name (:func:`list_scenarios`), a YAML path or a :class:`Scenario`.
    persons
        Population size (default: the scenario's ``persons``).
    seed
        The seed: same scenario, persons and seed give byte-identical files.
    out
        Output folder (default ``synthetic/data/<scenario>``); an existing dataset folder (or
        empty folder) is replaced; any other existing folder is refused (ValueError).
    truth
        Also write the ground truth in ``out/truth/``.
    workers
        Processes over blocks (the output does not depend on it).
    progress
        Show a tqdm progress bar over blocks.
    shapley_sample
        Persons in the Shapley sample (see :func:`privdomain.simulate.truth.shapley`).

    Returns
    -------
    privdomain.io.Dataset
    """
    sc = load_scenario(scenario)
    n = int(persons if persons is not None else sc.persons)
    if n < 1:
        raise ValueError(f"persons: must be >= 1 (got {n})")
    root = Path(out if out is not None else Path("synthetic/data") / sc.name)
    if root.exists():
        if root.is_file() or (any(root.iterdir()) and not (root / io.MANIFEST).exists()):
            raise ValueError(f"out: {root} exists and is not a dataset folder (no {io.MANIFEST}); "
                             f"refusing to replace it")
        shutil.rmtree(root)
    (root / "events").mkdir(parents=True)
    todo = [(sc, seed, b, size, off, str(root), truth) for b, size, off in blocks(sc, n)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=f"simulate {sc.name}", unit="block")
    collected: dict[str, list] = {k: [] for k in ("assignments", "stages", "traits", "experiments")}
    incr: dict[str, list[int]] = {}
    n_events = 0
    # persons and id links go to their files block by block, as the blocks arrive in order
    sinks = {k: io.TableSink(root / f"{k}.parquet") for k in ("persons", "id_links")}

    def take(res, defer=None):
        """Collect a block's results; ``defer(f, x)`` runs the sink writes elsewhere (else here)."""
        nonlocal n_events
        n_events += res["events"]
        for k, sink in sinks.items():
            if defer is None:
                sink.write(res.pop(k))
            else:
                defer(sink.write, res.pop(k))
        for k in collected:
            if k in res:
                collected[k].append(res[k])
        for c, v in res.get("incrementality", {}).items():
            incr[c] = [a + b for a, b in zip(incr.get(c, [0, 0, 0, 0]), v)]
        if bar is not None:
            bar.update(1)

    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for res in ex.map(_run_block, todo):
                take(res)
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
    if bar is not None:
        bar.close()
    counts = {"events": n_events}
    for k, sink in sinks.items():
        counts[k] = sink.close()
    tables: dict[str, pd.DataFrame] = {**static_tables(sc, n)}
    tables["assignments"] = pd.concat(collected["assignments"], ignore_index=True)
    for name, df in tables.items():
        io._write_parquet(df, root / f"{name}.parquet")
        counts[name] = len(df)
    meta = {"scenario": sc.name, "seed": int(seed), "persons": n, "start": sc.start.isoformat(),
            "end": sc.end.isoformat(), "block_size": sc.block_size, "simulator": "privdomain.simulate"}
    io.write_manifest(root, counts, meta)
    if truth:
        write_truth(root, sc, seed, n, collected, incr, shapley_sample)
    return io.Dataset(root)


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


__all__ = ["simulate", "static_tables", "blocks", "INF"]
