"""Plain per-person Python versions of the metrics: slow, obviously correct.

Used by the tests (property tests hold the fast Ibis versions equal to these) and
by teaching notebooks. Never call these on large data.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd

from ..schema import TIMEZONE

__all__ = [
    "daily_volume",
    "attribution_paths",
    "attribution_rule",
    "markov_removal_effects",
    "shapley_permutations",
    "lifecycle_stage",
    "lifecycle_stages_by_day",
    "lifecycle_board",
    "lifecycle_flows",
    "funnel_persons",
    "funnel_trends",
    "funnel",
    "ad_attribution",
    "campaign_frame",
    "touchpoint_frame",
    "rfm_summary",
    "pareto_nbd_log_likelihood",
    "beta_geo_probability_alive",
    "repurchase_rate",
    "purchase_gaps",
    "kaplan_meier",
    "cohort_table",
    "article_rates",
    "channel_cube",
    "touchpoint_flows",
]


def _local_day(ts: pd.Timestamp):
    return ts.tz_convert(TIMEZONE).date()


def daily_volume(events: pd.DataFrame) -> pd.DataFrame:
    """Reference for :func:`privdomain.boards.touchpoints.daily_volume`: a loop over rows."""
    counts: dict[tuple, int] = defaultdict(int)
    people: dict[tuple, set] = defaultdict(set)
    for ts, person, tp in zip(events["ts"], events["person_id"], events["touchpoint"]):
        key = (_local_day(ts), tp)
        counts[key] += 1
        people[key].add(person)
    rows = [(day, tp, counts[(day, tp)], len(people[(day, tp)])) for (day, tp) in sorted(counts)]
    return pd.DataFrame(rows, columns=["day", "touchpoint", "events", "persons"]).astype(
        {"events": "int64", "persons": "int64"}
    )


# --------------------------------------------------------------------------- attribution
def _path_rows(path_table: pd.DataFrame, sep: str = " > "):
    for path, conv, value, null in zip(path_table["path"], path_table["total_conversions"],
                                       path_table.get("total_conversion_value", [0.0] * len(path_table)),
                                       path_table.get("total_null", [0] * len(path_table))):
        if float(conv) + float(null) > 0:  # rows without journeys carry nothing
            yield path.split(sep), float(conv), float(value), float(null)


def attribution_paths(events: pd.DataFrame, window_days: float = 30, marketing_channels=None) -> pd.DataFrame:
    """Reference for :func:`privdomain.attribution.build_paths`: a loop over persons."""
    from ..schema import ORDER_TOUCHPOINTS, PURCHASE

    funnel = ("product_view", "add_to_cart")
    table: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])

    def is_marketing(c):
        return c != "mini_program" if marketing_channels is None else c in set(marketing_channels)

    def path_of(kept):
        kept = [c for c in kept if is_marketing(c)]
        return " > ".join(kept) if kept else "direct"

    ev = events.sort_values(["person_id", "ts", "event_id"])
    for _, rows in ev.groupby("person_id", sort=True):
        refs = rows["referrer_person_id"] if "referrer_person_id" in rows else [None] * len(rows)
        chans = ["fission" if (r is not None and not pd.isna(r)) else c for c, r in zip(rows["channel"], refs)]
        recs = list(zip(rows["ts"], rows["event_id"], rows["touchpoint"], chans, rows["amount_fen"]))
        # touches at the same instant as a pay come before it
        recs.sort(key=lambda r: (r[0], r[2] == PURCHASE, r[1]))
        recs = [r for r in recs if r[2] == PURCHASE or (r[2] not in ORDER_TOUCHPOINTS and r[2] != "share"
                                                         and r[2] not in funnel and is_marketing(r[3]))]
        pending: list[tuple] = []
        last_ts = None
        for ts, _eid, tp, ch, amount in recs:
            if pending and last_ts is not None and (ts - last_ts).total_seconds() / 86400.0 > window_days:
                end = pending[-1][0]  # the touches expired: a non-converting journey
                kept = [c for (t, c) in pending if (end - t).total_seconds() / 86400.0 <= window_days]
                table[path_of(kept)][2] += 1
                pending = []
            last_ts = ts
            if tp == PURCHASE:
                kept = [c for (t, c) in pending if (ts - t).total_seconds() / 86400.0 <= window_days]
                row = table[path_of(kept)]
                row[0] += 1
                row[1] += float(amount) / 100.0
                pending = []
            else:
                pending.append((ts, ch))
        if pending:
            end = pending[-1][0]
            kept = [c for (t, c) in pending if (end - t).total_seconds() / 86400.0 <= window_days]
            table[path_of(kept)][2] += 1
    rows = [(p, int(v[0]), float(v[1]), int(v[2])) for p, v in sorted(table.items())]
    return pd.DataFrame(rows, columns=["path", "total_conversions", "total_conversion_value", "total_null"])


def attribution_rule(path_table: pd.DataFrame, model: str, half_life: float = 7.0,
                     position_weights=(0.4, 0.2, 0.4), direct=("direct", "mini_program")) -> dict:
    """Reference for one rule-based model: ``{channel: (conversions, value)}`` by a loop over paths."""
    credit: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    f, m, la = (x / sum(position_weights) for x in position_weights)
    for chans, conv, value, _null in _path_rows(path_table):
        n = len(chans)
        if model == "first_touch":
            w = [1.0 if i == 0 else 0.0 for i in range(n)]
        elif model == "last_touch":
            w = [1.0 if i == n - 1 else 0.0 for i in range(n)]
        elif model == "last_non_direct":
            idx = [i for i, c in enumerate(chans) if c not in direct]
            last = idx[-1] if idx else n - 1
            w = [1.0 if i == last else 0.0 for i in range(n)]
        elif model == "linear":
            w = [1.0 / n] * n
        elif model == "time_decay":
            raw = [0.5 ** ((n - 1 - i) / half_life) for i in range(n)]
            w = [x / sum(raw) for x in raw]
        elif model == "position_based":
            if n == 1:
                w = [1.0]
            elif n == 2:
                w = [f / (f + la), la / (f + la)]
            else:
                w = [f] + [m / (n - 2)] * (n - 2) + [la]
        else:
            raise ValueError(model)
        for c, wi in zip(chans, w):
            credit[c][0] += wi * conv
            credit[c][1] += wi * value
    return {c: tuple(v) for c, v in credit.items()}


def markov_removal_effects(path_table: pd.DataFrame, order: int = 1, tol: float = 1e-15,
                           max_iter: int = 1_000_000) -> dict:
    """Reference for :func:`privdomain.attribution.markov`: power iteration of the absorbing chain.

    Transition counts are gathered in dicts keyed by state tuples, the chain's
    distribution is pushed forward from ``start`` until the mass left in transient
    states is below ``tol``; removing a channel sends transitions into any state
    containing it to ``null``. Returns ``{"p": ..., "removal": {channel: RE}}``.
    """
    counts: dict[tuple, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
    for chans, conv, _value, null in _path_rows(path_table):
        prev: tuple = ("<start>",)
        for i in range(len(chans)):
            state = tuple(chans[max(0, i - order + 1): i + 1])
            counts[prev][state] += conv + null
            prev = state
        counts[prev][("<conv>",)] += conv
        counts[prev][("<null>",)] += null

    def absorb(removed: str | None) -> float:
        dist = {("<start>",): 1.0}
        converted = 0.0
        for _ in range(max_iter):
            nxt: dict[tuple, float] = defaultdict(float)
            for s, mass in dist.items():
                out = counts[s]
                total = sum(out.values())
                for t, c in out.items():
                    if t == ("<conv>",):
                        converted += mass * c / total
                    elif t == ("<null>",) or (removed is not None and removed in t):
                        continue
                    else:
                        nxt[t] += mass * c / total
            dist = nxt
            if sum(dist.values()) < tol:
                break
        return converted

    channels = sorted({c for s in counts for c in s if not c.startswith("<")})
    p = absorb(None)
    return {"p": p, "removal": {c: 1.0 - absorb(c) / p for c in channels}}


def shapley_permutations(path_table: pd.DataFrame, coalition: str = "conversions") -> dict:
    """Reference for :func:`privdomain.attribution.shapley`: average marginal contribution
    over every ordering of the channels, ``v(S)`` by a scan of the paths (small n only)."""
    from itertools import permutations

    rows = [(set(ch), conv, null) for ch, conv, _v, null in _path_rows(path_table)]
    channels = sorted(set().union(*(r[0] for r in rows)))

    def v(s: frozenset) -> float:
        conv = sum(c for ch, c, _n in rows if ch <= s)
        if coalition == "conversions":
            return conv
        journeys = sum(c + n for ch, c, n in rows if ch <= s)
        return conv / journeys if journeys else 0.0

    phi = dict.fromkeys(channels, 0.0)
    perms = list(permutations(channels))
    for perm in perms:
        s: frozenset = frozenset()
        for c in perm:
            phi[c] += v(s | {c}) - v(s)
            s = s | {c}
    return {c: x / len(perms) for c, x in phi.items()}


# --------------------------------------------------------------------------- lifecycle
def _beijing_day_number(ts: pd.Timestamp) -> int:
    return (ts.tz_convert(TIMEZONE).tz_localize(None).normalize() - pd.Timestamp("1970-01-01")).days


def _lifecycle_histories(events: pd.DataFrame) -> dict:
    """Per person: first day, sorted purchase days with their paid fen, touch levels by day."""
    people: dict = {}
    for ts, person, tp, fen in zip(events["ts"], events["person_id"], events["touchpoint"],
                                   events["amount_fen"] if "amount_fen" in events else [None] * len(events)):
        d = _beijing_day_number(ts)
        h = people.setdefault(int(person), {"first": d, "pay": {}, "touch": defaultdict(set)})
        h["first"] = min(h["first"], d)
        h["touch"][d].add(tp)
        if tp == "pay":
            h["pay"][d] = h["pay"].get(d, 0) + (0 if fen is None or pd.isna(fen) else int(fen))
    return people


def lifecycle_stage(history: dict, day: int, model=None) -> str | None:
    """Reference for one person's stage at the end of day number ``day`` (None = not yet touched).

    Mirrors :mod:`privdomain.lifecycle` by applying the documented rules literally.
    """
    from ..lifecycle.stages import AIPLModel, StageModel

    m = model or StageModel()
    if day < history["first"]:
        return None
    if isinstance(m, AIPLModel):
        lo = day - m.window_days + 1
        levels = [3 if tp == "pay" else 2 if tp in m.interest_touchpoints else 1
                  for d, tps in history["touch"].items() if lo <= d <= day for tp in tps]
        pays = [d for d in history["pay"] if lo <= d <= day]
        if len(pays) >= m.loyalty_purchases:
            return "loyalty"
        top = max(levels, default=0)
        return {3: "purchase", 2: "interest", 1: "awareness", 0: "lapsed"}[top]
    bought = sorted(d for d in history["pay"] if d <= day)
    if not bought:
        return "prospect"
    last = bought[-1]
    recency = day - last
    if recency >= m.churn_days:
        return "churned"
    if recency >= m.dormant_days:
        return "dormant"
    if len(bought) == 1 and day - bought[0] < m.new_days:
        return "new"
    if (m.resurrected_days is not None and len(bought) >= 2 and last - bought[-2] >= m.gap
            and recency < m.resurrected_days):
        return "resurrected"
    value = sum(history["pay"][d] for d in bought)
    if len(bought) >= m.loyal_purchases or (m.loyal_value_fen is not None and value >= m.loyal_value_fen):
        return "loyal"
    return "active"


def lifecycle_stages_by_day(events: pd.DataFrame, days: list[int], model=None) -> dict:
    """``{(person_id, day): stage}`` for every person and day number: the person x day loop."""
    out = {}
    for person, h in _lifecycle_histories(events).items():
        for d in days:
            s = lifecycle_stage(h, d, model)
            if s is not None:
                out[(person, d)] = s
    return out


def lifecycle_board(events: pd.DataFrame, snapshot_days: list[int], model=None) -> pd.DataFrame:
    """Reference for :func:`privdomain.lifecycle.lifecycle_board`: stage of every person on every snapshot.

    Returns ``snapshot`` (day number), ``stage``, ``persons`` for the non-zero counts.
    """
    counts: dict = defaultdict(int)
    for (_, d), s in lifecycle_stages_by_day(events, snapshot_days, model).items():
        counts[(d, s)] += 1
    rows = sorted((d, s, n) for (d, s), n in counts.items())
    return pd.DataFrame(rows, columns=["snapshot", "stage", "persons"])


def lifecycle_flows(events: pd.DataFrame, snapshot_days: list[int], model=None) -> pd.DataFrame:
    """Reference for :func:`privdomain.lifecycle.stage_flows`: pair each person's stages on consecutive snapshots.

    Returns ``snapshot`` (day number of the later snapshot), ``from_stage`` ("(entry)" when the
    person was not yet touched at the earlier one), ``to_stage``, ``persons``.
    """
    stages = lifecycle_stages_by_day(events, snapshot_days, model)
    persons = {p for p, _ in stages}
    counts: dict = defaultdict(int)
    for p in persons:
        for a, b in zip(snapshot_days[:-1], snapshot_days[1:]):
            if (p, b) in stages:
                counts[(b, stages.get((p, a), "(entry)"), stages[(p, b)])] += 1
    rows = sorted((d, f, t, n) for (d, f, t), n in counts.items())
    return pd.DataFrame(rows, columns=["snapshot", "from_stage", "to_stage", "persons"])


# --------------------------------------------------------------------------------------
# Funnels (mirrors privdomain.boards.funnel)
# --------------------------------------------------------------------------------------


def _funnel_match(events: pd.DataFrame, where) -> list[bool]:
    """Which rows match a funnel step filter, row by row."""
    from collections.abc import Mapping

    from ..boards.funnel import Step

    if isinstance(where, Step):
        where = where.where
    if isinstance(where, str):
        return [tp == where for tp in events["touchpoint"]]
    if isinstance(where, Mapping):
        out = []
        for _, row in events.iterrows():
            ok = True
            for col, value in where.items():
                v = row[col]
                allowed = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
                if pd.isna(v) or v not in allowed:
                    ok = False
            out.append(ok)
        return out
    # a callable works on Ibis columns: evaluate that one filter with the backend
    from .. import backend
    from ..boards.funnel import predicate

    t = backend.to_table(events)
    return [bool(x) for x in backend.execute(t.select(m=predicate(t, where)))["m"]]


def _max_matching(events: list[int], m: list[list[bool]], n: int) -> int:
    """Most steps that distinct events can serve (Kuhn's augmenting paths)."""
    owner: dict[int, int] = {}  # step -> event

    def place(e: int, seen: set) -> bool:
        for k in range(n):
            if m[k][e] and k not in seen:
                seen.add(k)
                if k not in owner or place(owner[k], seen):
                    owner[k] = e
                    return True
        return False

    for e in events:
        place(e, set())
    return len(owner)


def funnel_persons(events: pd.DataFrame, steps, window="7D", mode="ordered", exclusions=(), attempts="every",
                   breakdown=None, attribution="first_touch", attribution_step=None, breakdown_nulls="skip",
                   ties="event_id", reported="first_start", period=None) -> pd.DataFrame:
    """Reference for :func:`privdomain.boards.funnel.funnel_persons`: a loop over persons and attempts.

    With ``period`` (a function of an attempt's start time), one row per person and
    period, from the attempts starting in that period (the reference of funnel trends).
    """
    from ..boards.funnel import as_exclusions, as_steps, parse_window

    steps = as_steps(steps)
    n = len(steps)
    if attribution == "all_steps" and breakdown is not None:
        # the funnel on each value's events, the value held constant
        records = []
        for v in events[breakdown].dropna().unique():
            sub = events[events[breakdown] == v]
            per = funnel_persons(sub, steps, window, mode, exclusions, attempts, ties=ties, reported=reported)
            for r in per.to_dict("records"):
                for k in range(n):
                    r[f"value_{k + 1}"] = v if (not r["excluded"] and r["steps_reached"] > k) else None
                records.append((r["person_id"], v, r))
        cols = ["person_id", "steps_reached", "excluded", "start", *[f"ts_{k + 1}" for k in range(n)],
                *[f"value_{k + 1}" for k in range(n)]]
        records.sort(key=lambda t: (t[0], t[1]))
        return pd.DataFrame([r for _, _, r in records], columns=cols)
    excl = as_exclusions(exclusions, n)
    w = parse_window(window)
    ev = events.reset_index(drop=True)
    m0 = [_funnel_match(ev, s.where) for s in steps]
    ev = ev.assign(_rank=[next((k + 1 for k in range(n) if m0[k][i]), n + 1) for i in range(len(ev))])
    order = ["person_id", "ts", "_rank", "event_id"] if ties == "simultaneous" else ["person_id", "ts", "event_id"]
    ev = ev.sort_values(order, kind="stable").reset_index(drop=True)
    m = [_funnel_match(ev, s.where) for s in steps]
    x = [_funnel_match(ev, e.where) for e in excl]
    ts = [t.tz_convert(TIMEZONE).tz_localize(None) for t in ev["ts"]]
    vals = list(ev[breakdown]) if breakdown is not None else [None] * len(ev)
    simultaneous = ties == "simultaneous"

    def after(i, lo):  # is event i after event lo?
        return ts[i] > ts[lo] if simultaneous else i > lo

    rows = []
    for person, idx in ev.groupby("person_id", sort=True).indices.items():
        idx = list(idx)
        attempts_ = []  # (sort key, start pos, completions, dropped)
        if mode in ("unordered", "any_order"):
            anchors = [i for i in idx if any(m[k][i] for k in range(n))]
        else:
            anchors = [i for i in idx if m[0][i]]
        if attempts == "first":
            anchors = anchors[:1]
        for a in anchors:
            if mode == "unordered":
                firsts = []
                for k in range(n):
                    f = next((i for i in idx if i >= a and m[k][i]), None)
                    if f is None or ts[f] - ts[a] > w:
                        break
                    firsts.append(f)
                if not firsts:
                    continue
                comps = [max(firsts[: k + 1]) for k in range(len(firsts))]
                start = min(firsts)
            elif mode == "any_order":
                inside = [i for i in idx if i >= a and ts[i] - ts[a] <= w]
                comps = []
                for j in range(len(inside)):
                    served = _max_matching(inside[: j + 1], m, n)
                    while len(comps) < served:
                        comps.append(inside[j])
                start = a
            else:
                comps = [a]
                for k in range(1, n):
                    if mode == "ordered":
                        q = next((i for i in idx if i > comps[-1] and m[k][i]), None)
                    else:
                        q = comps[-1] + 1 if comps[-1] + 1 <= idx[-1] and m[k][comps[-1] + 1] else None
                    if q is None or ts[q] - ts[a] > w:
                        break
                    comps.append(q)
                start = a
            dropped = False
            for e, ex in enumerate(excl):
                if len(comps) < ex.from_step:
                    continue
                lo = comps[ex.from_step - 1]
                if len(comps) >= ex.to_step:
                    hi = comps[ex.to_step - 1]
                    between = [i for i in idx if after(i, lo) and after(hi, i)]
                else:
                    between = [i for i in idx if after(i, lo) and ts[i] - ts[a] <= w]
                if any(x[e][i] for i in between):
                    dropped = True
            level = len(comps)
            if reported == "latest_start":
                key = (dropped, -level, ts[comps[-1]], -ts[start].value, -start, -a)
            else:
                key = (dropped, -level, ts[start], start, a)
            attempts_.append((key, start, comps, dropped))
        groups: dict = defaultdict(list)
        for r in attempts_:
            groups[period(ts[r[1]]) if period is not None else 0].append(r)
        for pkey in sorted(groups):
            _, start, comps, dropped = min(groups[pkey], key=lambda r: r[0])
            level = len(comps)
            row = {"person_id": int(person), "steps_reached": 0 if dropped else level, "excluded": dropped,
                   "start": ts[start]}
            for k in range(n):
                row[f"ts_{k + 1}"] = ts[comps[k]] if (not dropped and k < level) else pd.NaT
            if breakdown is not None:
                skip = breakdown_nulls == "skip"
                firsts_ = [vals[start]] + [vals[c] for c in comps]
                lasts_ = [vals[c] for c in reversed(comps)]
                for k in range(n):
                    if dropped or k >= level:
                        v = None
                    elif attribution == "first_touch":
                        v = next((y for y in firsts_ if not pd.isna(y)), None) if skip else vals[start]
                    elif attribution == "last_touch":
                        v = next((y for y in lasts_ if not pd.isna(y)), None) if skip else lasts_[0]
                    elif attribution == "step":
                        v = vals[comps[attribution_step - 1]] if level >= attribution_step else None
                    else:
                        v = vals[comps[k]]
                    row[f"value_{k + 1}"] = v
            if period is not None:
                row["period"] = pkey
            rows.append(row)
    cols = ["person_id", "steps_reached", "excluded", "start", *[f"ts_{k + 1}" for k in range(n)]]
    if breakdown is not None:
        cols += [f"value_{k + 1}" for k in range(n)]
    if period is not None:
        cols.append("period")
    return pd.DataFrame(rows, columns=cols)


def funnel_trends(events: pd.DataFrame, steps, window="7D", freq="D", mode="ordered", to_step=None,
                  exclusions=(), attempts="every", ties="event_id") -> pd.DataFrame:
    """Reference for :func:`privdomain.boards.funnel.funnel_trends`: entrants and conversions per entry period."""
    import math

    from ..boards.funnel import as_steps, parse_window

    n = len(as_steps(steps))
    to_step = n if to_step is None else to_step

    def period(t: pd.Timestamp) -> pd.Timestamp:
        day = t.normalize()
        if freq == "W":
            return day - pd.Timedelta(days=day.weekday())
        if freq == "M":
            return day.replace(day=1)
        return day

    per = funnel_persons(events, steps, window, mode, exclusions, attempts, ties=ties, period=period)
    last = max(t.tz_convert(TIMEZONE).tz_localize(None) for t in events["ts"]) if len(events) else None
    step = {"D": pd.DateOffset(days=1), "W": pd.DateOffset(days=7), "M": pd.DateOffset(months=1)}[freq]
    z = 1.959963984540054
    rows = []
    for p in sorted(set(per["period"])):
        g = per[per["period"] == p]
        entered = int((~g["excluded"]).sum())
        converted = int(((~g["excluded"]) & (g["steps_reached"] >= to_step)).sum())
        if entered:
            q = converted / entered
            centre = (q + z * z / (2 * entered)) / (1 + z * z / entered)
            half = z * math.sqrt(q * (1 - q) / entered + z * z / (4 * entered**2)) / (1 + z * z / entered)
            lo, hi = max(0.0, centre - half), min(1.0, centre + half)
        else:
            q = lo = hi = float("nan")
        rows.append({"period": p, "entered": entered, "converted": converted, "conversion": q, "ci_low": lo,
                     "ci_high": hi, "excluded": int(g["excluded"].sum()),
                     "complete": bool(p + step + parse_window(window) <= last)})
    return pd.DataFrame(rows, columns=["period", "entered", "converted", "conversion", "ci_low", "ci_high",
                                       "excluded", "complete"])


def funnel(events: pd.DataFrame, steps, window="7D", mode="ordered", exclusions=(), attempts="every",
           breakdown=None, attribution="first_touch", persons: pd.DataFrame | None = None,
           attribution_step=None, breakdown_nulls="skip", ties="event_id", reported="first_start") -> pd.DataFrame:
    """Reference for :func:`privdomain.boards.funnel.funnel`: counts and times from the per-person loop."""
    import numpy as np

    from ..boards.funnel import as_steps

    steps = as_steps(steps)
    n = len(steps)
    person_level = breakdown is not None and breakdown not in events.columns
    per = funnel_persons(events, steps, window, mode, exclusions, attempts,
                         None if person_level else breakdown, attribution, attribution_step, breakdown_nulls,
                         ties, reported)
    lookup = dict(zip(persons["person_id"], persons[breakdown])) if person_level else {}
    cells: dict = defaultdict(list)  # (value, step) -> [(dt_prev, dt_start)]
    for _, r in per.iterrows():
        if r["excluded"]:
            continue
        if attribution == "step" and not person_level and breakdown is not None \
                and r["steps_reached"] < attribution_step:
            continue
        for k in range(1, int(r["steps_reached"]) + 1):
            if breakdown is None:
                v = None
            elif person_level:
                v = lookup.get(r["person_id"])
            else:
                v = r[f"value_{k}"]
            if v is not None and pd.isna(v):
                v = None  # one group for missing values (None, NaN and NA alike)
            dt_prev = (r[f"ts_{k}"] - r[f"ts_{k - 1}"]).total_seconds() if k > 1 else float("nan")
            cells[(v, k)].append((dt_prev, (r[f"ts_{k}"] - r["start"]).total_seconds()))
    values = list(dict.fromkeys(v for v, _ in cells)) if breakdown is not None else [None]
    rows = []
    for v in values:
        first = len(cells.get((v, 1), []))
        prev = None
        for k in range(1, n + 1):
            c = cells.get((v, k), [])
            count = len(c)
            d = np.array([a for a, _ in c], dtype=float)
            s = np.array([b for _, b in c], dtype=float)
            q = {name: (float(np.quantile(d, p)) if k > 1 and count else float("nan"))
                 for name, p in [("p25", .25), ("median", .5), ("p75", .75), ("p90", .9)]}
            if k == 1:
                conv_prev = 1.0 if count else float("nan")
            else:
                conv_prev = count / prev if prev else float("nan")
            rows.append({
                "value": v, "step": k, "step_name": steps[k - 1].label(k - 1), "persons": count,
                "conversion_from_previous": conv_prev,
                "conversion_from_first": count / first if first else float("nan"),
                "p25_seconds": q["p25"], "median_seconds": q["median"], "p75_seconds": q["p75"],
                "p90_seconds": q["p90"], "mean_seconds": float(d.mean()) if k > 1 and count else float("nan"),
                "median_seconds_from_start": float(np.median(s)) if count else float("nan"),
            })
            prev = count
    out = pd.DataFrame(rows, columns=["value", "step", "step_name", "persons", "conversion_from_previous",
                                      "conversion_from_first", "p25_seconds", "median_seconds", "p75_seconds",
                                      "p90_seconds", "mean_seconds", "median_seconds_from_start"])
    every_attempt_dropped = per.groupby("person_id")["excluded"].all() if len(per) else pd.Series(dtype=bool)
    out["persons_with_step1"] = len(every_attempt_dropped)
    out["excluded_persons"] = int(every_attempt_dropped.sum())
    if breakdown is None:
        return out.drop(columns="value")
    out = out.rename(columns={"value": breakdown})
    return out.sort_values([breakdown, "step"], na_position="last", kind="stable").reset_index(drop=True)


def ad_attribution(events: pd.DataFrame, windows=(0, 7, 15, 30, 90), touch: str = "click",
                   fission_depth: int = 3) -> dict:
    """Reference for :func:`privdomain.attribution.ad_attribution`: a loop over purchases.

    Returns ``{(campaign_id, window): [direct_orders, direct_fen, fission_orders, fission_fen]}``
    (only non-zero entries).
    """
    from ..schema import AD_CLICKS, AD_VIEWS, PURCHASE

    kinds = AD_CLICKS if touch == "click" else AD_VIEWS
    ev = events.sort_values(["ts", "event_id"])
    rows = list(zip(ev["event_id"], ev["ts"], ev["person_id"], ev["touchpoint"], ev["campaign_id"],
                    ev["amount_fen"], ev["referrer_person_id"]))
    ads: dict[int, list] = defaultdict(list)  # person -> [(ts, event_id, campaign)]
    arrival: dict[int, tuple] = {}
    shares: dict[int, list] = defaultdict(list)  # person -> [(ts, event_id, campaign or None)]
    for eid, ts, person, tp, camp, _amount, ref in rows:
        if person not in arrival:
            arrival[person] = (ts, None if pd.isna(ref) else int(ref))
        if tp in kinds and not pd.isna(camp):
            ads[person].append((ts, eid, int(camp)))
        if tp == "share":
            shares[person].append((ts, eid, None if pd.isna(camp) else int(camp)))

    def shared_ad(person, before):
        best = None
        for s_ts, s_id, s_camp in shares.get(person, []):
            if s_ts > before:
                continue
            touches = [a for a in ads.get(person, []) if a[0] <= s_ts and (s_camp is None or a[2] == s_camp)]
            if not touches:
                continue
            ad = s_camp if s_camp is not None else max(touches, key=lambda a: (a[0], a[1]))[2]
            if best is None or (s_ts, s_id) > best[0]:
                best = ((s_ts, s_id), ad)
        return None if best is None else best[1]

    def fission_ad(person):
        child = person
        for _depth in range(fission_depth):
            ts, ref = arrival[child]
            if ref is None or ref not in arrival:
                return None
            ad = shared_ad(ref, ts)
            if ad is not None:
                return ad
            child = ref
        return None

    out: dict = defaultdict(lambda: [0, 0, 0, 0])
    for _eid, ts, person, tp, _camp, amount, _ref in rows:
        if tp != PURCHASE:
            continue
        fen = 0 if pd.isna(amount) else int(amount)
        prior = [a for a in ads.get(person, []) if a[0] <= ts]
        latest = max(prior, key=lambda a: (a[0], a[1])) if prior else None
        f_ad = fission_ad(person)
        for w in windows:
            lim = max(int(w), 1)
            if latest is not None and 0 <= (_local_day(ts) - _local_day(latest[0])).days < lim:
                rec = out[(latest[2], int(w))]
                rec[0] += 1
                rec[1] += fen
            elif f_ad is not None and (_local_day(ts) - _local_day(arrival[person][0])).days < lim:
                rec = out[(f_ad, int(w))]
                rec[2] += 1
                rec[3] += fen
    return dict(out)


def campaign_frame(events: pd.DataFrame, assignments: pd.DataFrame, experiment: str, window_days: int = 30,
                   pre_days: int = 90) -> pd.DataFrame:
    """Reference for :func:`privdomain.experiments.data.campaign_frame`: a loop over persons and their payments."""
    window, pre = pd.Timedelta(days=window_days), pd.Timedelta(days=pre_days)
    pays: dict[int, list] = defaultdict(list)
    for pid, tp, ts, fen in zip(events["person_id"], events["touchpoint"], events["ts"], events["amount_fen"]):
        if tp == "pay":
            pays[int(pid)].append((ts, 0 if pd.isna(fen) else int(fen)))
    rows = []
    for pid, exp, arm, t0 in zip(assignments["person_id"], assignments["experiment"], assignments["arm"],
                                 assignments["assigned_at"]):
        if exp != experiment:
            continue
        orders = revenue = prior = pre_n = pre_rev = 0
        for ts, fen in pays[int(pid)]:
            if t0 <= ts < t0 + window:
                orders += 1
                revenue += fen
            if ts < t0:
                prior += 1
                if ts >= t0 - pre:
                    pre_n += 1
                    pre_rev += fen
        tier = "first_time" if prior == 0 else "2-5" if prior < 5 else "5+"
        rows.append({"person_id": int(pid), "arm": arm, "segment": tier, "prior_purchases": prior,
                     "pre_purchases": pre_n, "pre_revenue": pre_rev / 100, "orders": orders,
                     "converted": int(orders >= 1), "repurchased": int(orders >= 1 and prior + orders >= 2),
                     "revenue": revenue / 100})
    return pd.DataFrame(rows).sort_values("person_id").reset_index(drop=True)


def touchpoint_frame(events: pd.DataFrame) -> pd.DataFrame:
    """Reference for :func:`privdomain.experiments.data.touchpoint_frame`: touches before each first payment."""
    first_pay: dict[int, pd.Timestamp] = {}
    for pid, tp, ts in zip(events["person_id"], events["touchpoint"], events["ts"]):
        if tp == "pay" and (int(pid) not in first_pay or ts < first_pay[int(pid)]):
            first_pay[int(pid)] = ts
    touched: dict[int, set] = defaultdict(set)
    people = set()
    for pid, tp, ts in zip(events["person_id"], events["touchpoint"], events["ts"]):
        people.add(int(pid))
        if tp in ("order", "pay", "refund"):
            continue
        if int(pid) not in first_pay or ts < first_pay[int(pid)]:
            touched[int(pid)].add(tp)
    cols = sorted(set().union(*touched.values())) if touched else []
    rows = [{"person_id": p, "purchased": int(p in first_pay), **{c: int(c in touched[p]) for c in cols}}
            for p in sorted(people)]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------
# RFM summary and CLV likelihoods (mirrors privdomain.clv.rfm and privdomain.clv)


def rfm_summary(transactions: pd.DataFrame, person_col: str, time_col: str, value_col: str,
                observation_end, unit_days: float = 1.0) -> pd.DataFrame:
    """Reference for :func:`privdomain.clv.rfm.rfm_summary` (``merge_period="D"``,
    ``monetary="repeat"``, no touchpoint filter): a loop over persons and their days."""
    end = pd.Timestamp(observation_end).normalize()
    days: dict = defaultdict(lambda: defaultdict(float))
    for person, ts, value in zip(transactions[person_col], transactions[time_col], transactions[value_col]):
        ts = pd.Timestamp(ts)
        if ts.tzinfo is not None:
            ts = ts.tz_convert(TIMEZONE).tz_localize(None)
        day = ts.normalize()
        if day <= end:
            days[person][day] += float(value)
    rows = []
    for person in sorted(days):
        spend = days[person]
        ordered = sorted(spend)
        first, last = ordered[0], ordered[-1]
        repeat = [spend[d] for d in ordered[1:]]
        rows.append({
            person_col: person,
            "frequency": float(len(ordered) - 1),
            "t_x": (last - first).days / unit_days,
            "T": (end - first).days / unit_days,
            "time_since_last": (end - last).days / unit_days,
            "total_value": sum(spend.values()),
            "monetary_value": sum(repeat) / len(repeat) if repeat else 0.0,
        })
    return pd.DataFrame(rows, columns=[person_col, "frequency", "t_x", "T", "time_since_last", "total_value",
                                       "monetary_value"])


def pareto_nbd_log_likelihood(r: float, alpha: float, s: float, beta: float, x: float, t_x: float, T: float) -> float:
    """Reference for the Pareto/NBD log-likelihood of :class:`privdomain.clv.ParetoNBD`:
    the death-time integral evaluated by adaptive quadrature instead of hypergeometric
    functions,

    .. math:: L = \\frac{\\Gamma(r+x)\\alpha^r\\beta^s}{\\Gamma(r)}\\left[(\\alpha+T)^{-(r+x)}(\\beta+T)^{-s}
              + s\\int_{t_x}^{T}(\\alpha+\\tau)^{-(r+x)}(\\beta+\\tau)^{-(s+1)}d\\tau\\right].
    """
    import math

    from scipy.integrate import quad

    # factor out the integrand's value at t_x so the quadrature works on O(1) numbers
    log_f0 = -(r + x) * math.log(alpha + t_x) - (s + 1) * math.log(beta + t_x)

    def scaled(tau: float) -> float:
        return math.exp(-(r + x) * math.log(alpha + tau) - (s + 1) * math.log(beta + tau) - log_f0)

    integral, _ = quad(scaled, t_x, T, epsabs=0.0, epsrel=1e-12, limit=200)
    first = -(r + x) * math.log(alpha + T) - s * math.log(beta + T)
    second = math.log(s) + log_f0 + math.log(integral) if integral > 0 else -math.inf
    top = max(first, second)
    bracket = top + math.log(math.exp(first - top) + math.exp(second - top))
    return math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha) + s * math.log(beta) + bracket


def beta_geo_probability_alive(r: float, alpha: float, a: float, b: float, x: float, t_x: float, T: float) -> float:
    """Reference for :meth:`privdomain.clv.BetaGeo.probability_alive`: Bayes' rule over the
    dropout probability p by quadrature, with the purchase rate integrated analytically.

    Given (lambda, p), alive at T has likelihood (1-p)^x lambda^x e^{-lambda T} and "died after
    the last purchase" p(1-p)^{x-1} lambda^x e^{-lambda t_x} (x > 0); integrating lambda over
    Gamma(r, alpha) gives (alpha+T)^{-(r+x)} and (alpha+t_x)^{-(r+x)} up to a common factor.
    """
    import math

    from scipy.integrate import quad
    from scipy.stats import beta as beta_dist

    if x == 0:
        return 1.0
    w_alive = math.exp(-(r + x) * (math.log(alpha + T) - math.log(alpha + t_x)))
    alive, _ = quad(lambda p: (1 - p) ** x * w_alive * beta_dist.pdf(p, a, b), 0, 1, limit=200)
    dead, _ = quad(lambda p: p * (1 - p) ** (x - 1) * beta_dist.pdf(p, a, b), 0, 1, limit=200)
    return alive / (alive + dead)


# --------------------------------------------------------------------------- repurchase and cohorts
def _purchase_day_lists(events: pd.DataFrame, as_of: int) -> dict:
    """Per person: sorted distinct purchase day numbers on or before ``as_of``."""
    days: dict = defaultdict(set)
    for ts, person, tp in zip(events["ts"], events["person_id"], events["touchpoint"]):
        d = _beijing_day_number(ts)
        if tp == "pay" and d <= as_of:
            days[int(person)].add(d)
    return {p: sorted(v) for p, v in days.items()}


def repurchase_rate(events: pd.DataFrame, windows: list[int], as_of: int) -> pd.DataFrame:
    """Reference for :func:`privdomain.lifecycle.repurchase.repurchase_rate` (one segment): a loop over buyers."""
    lists = _purchase_day_lists(events, as_of)
    rows = []
    for w in windows:
        buyers = repeat = late = 0
        for days in lists.values():
            if days[0] + w > as_of:
                late += 1
                continue
            buyers += 1
            repeat += len(days) > 1 and days[1] - days[0] <= w
        rows.append((w, buyers, repeat, late))
    return pd.DataFrame(rows, columns=["window_days", "buyers", "repurchasers", "not_observable"])


def purchase_gaps(events: pd.DataFrame, as_of: int) -> list[tuple[int, bool]]:
    """Reference gaps for :func:`privdomain.lifecycle.repurchase.purchase_gaps`: (days, repurchased) per purchase day."""
    out = []
    for days in _purchase_day_lists(events, as_of).values():
        for a, b in zip(days, days[1:] + [None]):
            out.append((b - a, True) if b is not None else (as_of - a, False))
    return out


def kaplan_meier(durations: list[float], observed: list[bool]) -> list[tuple[float, float]]:
    """Product-limit estimate ``[(t, S(t))]`` at each event time (censored at t leave after t)."""
    s, out = 1.0, []
    for t in sorted({d for d, o in zip(durations, observed) if o}):
        at_risk = sum(1 for d in durations if d >= t)
        events_ = sum(1 for d, o in zip(durations, observed) if o and d == t)
        s *= 1 - events_ / at_risk
        out.append((t, s))
    return out


def cohort_table(events: pd.DataFrame, freq: str, cohort_on: str, active_on: str, as_of: int) -> pd.DataFrame:
    """Reference for :func:`privdomain.lifecycle.cohorts.cohort_table` (one segment): loops over persons and periods.

    Returns ``cohort`` (period start Timestamp), ``period``, ``cohort_size``, ``active``, ``revenue_fen``.
    """
    def key(d: int) -> int:
        if freq == "W":
            return d - (d + 3) % 7
        ts = pd.Timestamp(d, unit="D")
        return ts.year * 12 + ts.month - 1

    def start(k: int) -> pd.Timestamp:
        return pd.Timestamp(k, unit="D") if freq == "W" else pd.Timestamp(year=k // 12, month=k % 12 + 1, day=1)

    def steps(a: int, b: int) -> int:
        return (b - a) // 7 if freq == "W" else b - a

    per: dict = defaultdict(list)
    for ts, person, tp, fen in zip(events["ts"], events["person_id"], events["touchpoint"], events["amount_fen"]):
        d = _beijing_day_number(ts)
        if d <= as_of:
            per[int(person)].append((d, tp, 0 if pd.isna(fen) else int(fen)))
    size: dict = defaultdict(int)
    active: dict = defaultdict(set)
    revenue: dict = defaultdict(int)
    for person, evs in per.items():
        anchor = [d for d, tp, _ in evs if tp == "pay" or cohort_on == "first_touch"]
        if not anchor:
            continue
        c = key(min(anchor))
        size[c] += 1
        for d, tp, fen in evs:
            k = steps(c, key(d))
            if k < 0:
                continue
            if tp == "pay" or active_on == "any":
                active[(c, k)].add(person)
            if tp == "pay":
                revenue[(c, k)] += fen
    rows = []
    for c in sorted(size):
        for k in range(steps(c, key(as_of)) + 1):
            rows.append((start(c), k, size[c], len(active[(c, k)]), revenue[(c, k)]))
    return pd.DataFrame(rows, columns=["cohort", "period", "cohort_size", "active", "revenue_fen"])


def article_rates(events: pd.DataFrame, window="7D", by="article", articles: pd.DataFrame | None = None,
                  purchase: str = "pay") -> pd.DataFrame:
    """Reference for :func:`privdomain.boards.officialaccount.article_rates` (no period filter): loops over rows."""
    w = pd.Timedelta(window)
    acc = dict(zip(articles["article_id"], articles["account"])) if articles is not None else {}
    sets: dict = defaultdict(lambda: defaultdict(set))
    counts: dict = defaultdict(lambda: defaultdict(int))
    clicks = defaultdict(list)  # person -> [(ts, key)]
    pays = defaultdict(list)  # person -> [(ts, event_id, amount)]
    for r in events.itertuples(index=False):
        if r.touchpoint == purchase:
            pays[r.person_id].append((r.ts, r.event_id, int(r.amount_fen)))
        if r.touchpoint not in ("oa_push", "oa_article_open", "mp_click", "share") or pd.isna(r.article_id):
            continue
        key = int(r.article_id) if by == "article" else acc.get(int(r.article_id))
        if key is None:
            continue
        sets[key][r.touchpoint].add(r.person_id)
        counts[key][r.touchpoint] += 1
        if r.touchpoint == "mp_click":
            clicks[r.person_id].append((r.ts, key))
    driven: dict = defaultdict(dict)  # key -> {pay event id: (person, amount)}
    for person, cl in clicks.items():
        for cts, key in cl:
            for pts, pid, amount in pays.get(person, []):
                if cts <= pts <= cts + w:
                    driven[key][pid] = (person, amount)
    rows = []
    for key in sorted(sets):
        d = driven.get(key, {})
        rec = {"key": key, "received": len(sets[key]["oa_push"]), "opened": len(sets[key]["oa_article_open"]),
               "clicked": len(sets[key]["mp_click"]), "ordered": len({p for p, _ in d.values()})}
        rec["open_rate"] = rec["opened"] / rec["received"] if rec["received"] else float("nan")
        rec["click_rate"] = rec["clicked"] / rec["opened"] if rec["opened"] else float("nan")
        rec["conversion_rate"] = rec["ordered"] / rec["clicked"] if rec["clicked"] else float("nan")
        rec.update(reads=counts[key]["oa_article_open"], shares=counts[key]["share"], orders=len(d),
                   gmv=sum(a for _, a in d.values()) / 100)
        rows.append(rec)
    cols = ["key", "received", "opened", "clicked", "ordered", "open_rate", "click_rate", "conversion_rate",
            "reads", "shares", "orders", "gmv"]
    return pd.DataFrame(rows, columns=cols).rename(columns={"key": "article_id" if by == "article" else "account"})


def channel_cube(events: pd.DataFrame, windows=(1, 7, 30)) -> pd.DataFrame:
    """Reference for :func:`privdomain.boards.channel_cube.channel_cube`: a loop over persons and their pays."""
    order_tps = {"order", "pay", "refund"}
    ev = events.sort_values(["person_id", "ts", "event_id"], kind="stable")
    channels = sorted({c for c, tp in zip(ev["channel"], ev["touchpoint"]) if tp not in order_tps})
    cells: dict = {(c, d): {"orders": 0, "gmv": 0, "buyers": {}} for c in channels for d in windows}
    for _, g in ev.groupby("person_id", sort=True):
        first_day = g["ts"].iloc[0].tz_convert(TIMEZONE).date()
        touches = [(ts, ch) for ts, ch, tp in zip(g["ts"], g["channel"], g["touchpoint"]) if tp not in order_tps]
        pays = [(ts, int(a)) for ts, a, tp in zip(g["ts"], g["amount_fen"], g["touchpoint"]) if tp == "pay"]
        for rank, (pts, amount) in enumerate(pays):
            for d in windows:
                for ch in channels:
                    before = [ts for ts, c in touches if c == ch and pd.Timedelta(0) <= pts - ts <= pd.Timedelta(days=d)]
                    if not before:
                        continue
                    cell = cells[(ch, d)]
                    cell["orders"] += 1
                    cell["gmv"] += amount
                    person = g["person_id"].iloc[0]
                    if person not in cell["buyers"]:  # pays are visited in order: this is the first credited one
                        touch_day = max(before).tz_convert(TIMEZONE).date()
                        kind = "repeat" if rank > 0 else ("first_visit" if first_day == touch_day else "returning")
                        cell["buyers"][person] = kind
    rows = []
    for (ch, d), cell in sorted(cells.items()):
        kinds = list(cell["buyers"].values())
        rows.append({"channel": ch, "window_days": d, "orders": cell["orders"], "buyers": len(kinds),
                     "gmv": cell["gmv"] / 100, "first_visit_buyers": kinds.count("first_visit"),
                     "returning_visitor_buyers": kinds.count("returning"), "repeat_buyers": kinds.count("repeat")})
    return pd.DataFrame(rows, columns=["channel", "window_days", "orders", "buyers", "gmv", "first_visit_buyers",
                                       "returning_visitor_buyers", "repeat_buyers"])


def touchpoint_flows(events: pd.DataFrame, gap="30min") -> pd.DataFrame:
    """Reference for :func:`privdomain.boards.touchpoints.touchpoint_flows` (touchpoint level, no entry/exit)."""
    g = pd.Timedelta(gap)
    moves: dict = defaultdict(int)
    movers: dict = defaultdict(set)
    ev = events.sort_values(["person_id", "ts", "event_id"], kind="stable")
    for person, grp in ev.groupby("person_id", sort=True):
        rows = list(zip(grp["ts"], grp["touchpoint"]))
        for (t0, a), (t1, b) in zip(rows[:-1], rows[1:]):
            if t1 - t0 <= g:
                moves[(a, b)] += 1
                movers[(a, b)].add(person)
    out = pd.DataFrame([(a, b, n, len(movers[(a, b)])) for (a, b), n in moves.items()],
                       columns=["source", "target", "transitions", "persons"])
    out["share_of_source"] = out["transitions"] / out.groupby("source")["transitions"].transform("sum")
    out = out.sort_values(["transitions", "source", "target"], ascending=[False, True, True], kind="stable")
    return out.reset_index(drop=True)
