"""Lift tests in the simulator: randomised holdouts never exposed to a channel.

A scenario declares lift tests under ``lift_tests``, one per channel::

    lift_tests:
      official_account: {holdout: 0.1}                  # withheld pushes, per person
      sms: {holdout: 0.1, start: 2024-03-01, days: 120}
      live: {holdout: 0.2, unit: city}                  # geo holdout: whole cities

``holdout`` is the share of units held out, ``start`` (default: the scenario's
start) and ``days`` (default: to its end) the test window, ``unit`` ``person``
(default) or ``city`` (a geo test for channels a brand cannot withhold per
person: the city is the person's ``persons.city``). Testable channels:
:data:`TESTABLE`; store visits and QR codes on products cannot be withheld.

Assignment
    A unit is held out when a hash of (seed, channel, unit) is below ``holdout``:
    no generator state is used, so the arms do not depend on blocks or workers
    and a scenario without lift tests simulates exactly as before.
Suppression
    In every world, a held-out person's candidate touches of the channel inside
    the window do not happen (:func:`suppressed_rows`): no ad view (so no click,
    no arrival by that ad), no pushed article, no group message, guide chat, live
    view or SMS; a fission friend held out is not brought by the share (she
    arrives on her own, as with fission off). A held-out person does not arrive
    through the channel nor join it inside the window (no follow of the Official
    Account, no WeCom add by a guide, no group or live membership), and neither
    the memberships she would have joined through it: inside the window she
    lives in the world without the channel, which is what the truth's
    incrementality (the channel switched off) is about.
Truth
    For each test the simulator re-runs the block with the arms of that test
    swapped (same persons, same draws: common random numbers), so it knows every
    person's conversions and revenue in the window both exposed and held out.
    ``truth/lift.parquet``: per test, the true incremental conversions and
    revenue of the treated persons (exposed minus held out, in the window), the
    average effect per person, and the arm sizes.

>>> from privdomain.simulate.lift import TESTABLE
>>> "store" in TESTABLE
False
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .rng import hash_uniform
from .scenario import AD_SURFACES, Scenario

#: Channels a lift test may withhold.
TESTABLE = [*AD_SURFACES, "official_account", "group", "guide", "live", "sms", "fission"]
UNITS = ("person", "city")
#: The ``assignments.experiment`` name of a channel's lift test.
PREFIX = "lift_"


def experiment_name(channel: str) -> str:
    """``lift_<channel>``: the experiment name in the assignments table.

    >>> experiment_name("sms")
    'lift_sms'
    """
    return PREFIX + channel


def end_date(sc: Scenario, test: dict):
    """The day after the test's last day (the window is ``[start, end)``), at most the day after the period."""
    import datetime as dt

    return min(test["start"] + dt.timedelta(days=int(test["days"])), sc.end + dt.timedelta(days=1))


def window(sc: Scenario, test: dict) -> tuple[float, float]:
    """The test window in days since the scenario start: ``[s, e)``."""
    s = float((test["start"] - sc.start).days)
    return s, min(s + float(test["days"]), float(sc.days))


def _unit_key(seed: int, channel: str) -> np.uint64:
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, 0x11F7, sum(map(ord, channel)), len(channel)])
    return np.uint64(int(ss.generate_state(1, np.uint64)[0]))


def assign(B: dict) -> dict[str, dict]:
    """Per lift test of the scenario: the held-out persons of block ``B`` and the window.

    Returns ``{channel: {"held": bool[n], "s": day, "e": day, "gate": channel index,
    "unit": ...}}`` (empty without lift tests).
    """
    sc = B["sc"]
    out: dict[str, dict] = {}
    for ch, test in getattr(sc, "lift_tests", {}).items():
        key = _unit_key(B["seed"], ch)
        if test["unit"] == "city":
            units = np.asarray(B["prof"]["city"], dtype=np.uint64)
        else:
            units = (np.arange(B["n"]) + B["offset"]).astype(np.uint64)
        with np.errstate(over="ignore"):
            held = hash_uniform(units * np.uint64(0x9E3779B1) + key, 31) < test["holdout"]
        s, e = window(sc, test)
        out[ch] = {"held": held, "s": s, "e": e, "gate": sc.channels.index(ch), "unit": test["unit"]}
    return out


def swapped(lift: dict[str, dict], channel: str) -> dict[str, dict]:
    """The lift arms with the arms of ``channel``'s test swapped (everyone else as assigned)."""
    out = dict(lift)
    out[channel] = {**lift[channel], "held": ~lift[channel]["held"]}
    return out


def suppressed_rows(B: dict, lift: dict[str, dict], t: np.ndarray) -> np.ndarray:
    """Rows (candidate touches) that do not happen: a held-out person's touch of the tested
    channel inside the window (by the row time ``t``)."""
    R = B["rows"]
    off = np.zeros(len(t), dtype=bool)
    for ch, L in lift.items():
        if ch == "fission":
            continue  # friends are held out at their arrival (see held_friend_time)
        m = (R["gate"] == L["gate"]) & (t >= L["s"]) & (t < L["e"])
        m[m] = L["held"][R["person"][m]]
        off |= m
    return off


def held_arrival(lift: dict[str, dict], channel: str, t: np.ndarray) -> np.ndarray:
    """Per person: an arrival by ``channel`` at ``t`` that the lift test withholds."""
    L = lift.get(channel)
    if L is None:
        return np.zeros(len(t), dtype=bool)
    return L["held"] & (t >= L["s"]) & (t < L["e"])


def outcomes(B: dict, w: dict, lift: dict[str, dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per test: each person's paid purchases and revenue (fen) with the pay event in the window.

    The pay event comes a minute after the order (``purchase_tp``) and its time is
    written in whole seconds, as here.
    """
    paid = w["paid"]
    pp = w["purchase_person"][paid]
    tp = np.floor((w["purchase_tp"][paid] + 1.0 / 1440) * 86400.0) / 86400.0
    amt = w["amount_fen"][paid].astype(np.float64)
    out = {}
    for ch, L in lift.items():
        m = (tp >= L["s"]) & (tp < L["e"])
        out[ch] = (np.bincount(pp[m], minlength=B["n"]).astype(np.float64),
                   np.bincount(pp[m], weights=amt[m], minlength=B["n"]))
    return out


TRUTH_COLUMNS = ["channel", "experiment", "unit", "holdout", "start", "end", "persons", "treated", "held_out",
                 "incremental_conversions", "incremental_revenue_fen", "effect_conversions_per_person",
                 "effect_revenue_fen_per_person", "conversions_treated", "revenue_fen_treated",
                 "conversions_held_out", "revenue_fen_held_out"]


def truth_frame(sc: Scenario, sums: dict[str, list[float]]) -> pd.DataFrame:
    """``truth/lift.parquet``: one row per lift test.

    ``incremental_conversions`` / ``incremental_revenue_fen``: the conversions
    (revenue) of the treated persons in the window minus what the same persons
    would have had held out. ``effect_*_per_person``: the average effect over
    every person in the test (both arms), what a difference in means estimates.
    """
    rows = []
    for ch, test in getattr(sc, "lift_tests", {}).items():
        v = sums.get(ch)
        if v is None:
            continue
        n, nt, nh, ic, ir, ac, ar, ct, rt, ch_, rh = v
        rows.append({"channel": ch, "experiment": experiment_name(ch), "unit": test["unit"],
                     "holdout": float(test["holdout"]), "start": test["start"].isoformat(),
                     "end": end_date(sc, test).isoformat(),
                     "persons": int(n), "treated": int(nt), "held_out": int(nh),
                     "incremental_conversions": ic, "incremental_revenue_fen": ir,
                     "effect_conversions_per_person": ac / n if n else float("nan"),
                     "effect_revenue_fen_per_person": ar / n if n else float("nan"),
                     "conversions_treated": ct, "revenue_fen_treated": rt,
                     "conversions_held_out": ch_, "revenue_fen_held_out": rh})
    return pd.DataFrame(rows, columns=TRUTH_COLUMNS)


def assignments_frame(B: dict, sc: Scenario, s_ns: int, tz: str) -> list[pd.DataFrame]:
    """Assignment rows of the lift tests of one block (``lift_<channel>``, ``treatment``/``holdout``)."""
    parts = []
    for ch, L in B["lift"].items():
        n = B["n"]
        at = np.full(n, s_ns + int(L["s"]) * 86400 * 1_000_000_000, dtype=np.int64).astype("datetime64[ns]")
        parts.append(pd.DataFrame({
            "person_id": (np.arange(n) + B["offset"]).astype(np.int64), "experiment": experiment_name(ch),
            "arm": np.where(L["held"], "holdout", "treatment").astype(object),
            "assigned_at": pd.DatetimeIndex(at).tz_localize("UTC").tz_convert(tz)}))
    return parts


def manifest_meta(sc: Scenario) -> dict[str, dict]:
    """What the dataset manifest says of the lift tests (window, unit, holdout): no truth."""
    out = {}
    for ch, test in getattr(sc, "lift_tests", {}).items():
        out[ch] = {"experiment": experiment_name(ch), "start": test["start"].isoformat(),
                   "end": end_date(sc, test).isoformat(),
                   "unit": test["unit"], "holdout": float(test["holdout"])}
    return out


__all__ = ["PREFIX", "TESTABLE", "TRUTH_COLUMNS", "UNITS", "assign", "assignments_frame",
           "end_date", "experiment_name", "held_arrival", "manifest_meta", "outcomes", "suppressed_rows", "swapped",
           "truth_frame", "window"]

