"""The journey engine: candidate touches per person, realised per "world".

One block of persons is simulated in two steps.

1. :func:`make_block` draws everything that does not depend on which channels
   are switched on: persons (entry channel, entry time ``t0``, latent traits,
   dropout time ``tau``), the membership edges (will this person follow the
   Official Account after an ad click? after what delay?) and the *candidate
   touches* ("rows"): every ad view, store visit, Mini Program visit, article
   push, group message, guide chat, live view, SMS and QR scan the person could
   get, each with its time, its engagement draws (opened, clicked...), its
   conversion uniform ``u`` and purchase time ``tp``. Candidates are generated
   over the widest window any world could open (a lower bound of the join time),
   so every world uses the same draws (common random numbers).
2. :func:`run_world` takes a set of channels switched off (and an experiment
   mode) and decides, fully vectorised over rows, which candidates happen:

   * membership: ``join[c] = min over parents p of (arrival[p] + delay[p, c])``
     for the edges that fire, with channels switched off removed;
   * a touch happens if its channel is on, the person joined before it and
     ``t < tau`` (churned persons unfollow and stop engaging);
   * a touch triggers a purchase if ``u < p`` where ``p = base * interest *
     affinity`` (times the coupon multiplier when treated), at ``tp = t + delay``
     (lognormal delays give the long tail), kept if ``tp < min(tau, end)``;
   * saturation: a person buys at most once per purchase cycle (``cycle_days``)
     from "considered" triggers: the earliest trigger of a cycle wins, so
     channels overlap and credit is not additive. Official Account article
     orders are impulse orders and are not saturated (so the three article rates
     are exactly the configured ones);
   * after-sale touches (product QR scans after a purchase, SMS to CRM members)
     are realised from the first pass of purchases and can add repurchases in
     cycles without one;
   * fission: paid purchases are shared with probability ``share_rate``.
     The "pool" persons (entry channel ``fission``) are friends at levels
     1..``depth`` (:func:`fission_levels`); everyone else is level 0. A level-k
     friend has one potential referrer at level k - 1, drawn among those whose
     earliest possible share precedes the friend's own arrival ``t0``, and is
     brought by the referrer's first share in the world (if she accepts and it
     comes before ``t0``), so friends bring friends of friends. Levels are
     realised in order, each from the purchases of the level above; a friend
     gets a coupon touch that can convert at once. With fission off, or without
     a share in time, pool persons arrive organically at ``t0`` (Mini Program
     visits).

Secondary draws of a purchase (paid, product, refund, share...) are a hash of
the row's key, so they are the same in every world.

>>> from privdomain.simulate.scenario import load_scenario
>>> from privdomain.simulate.journeys import make_block, run_world
>>> blk = make_block(load_scenario("tea"), seed=1, block=0, n=300)
>>> w = run_world(blk)
>>> bool(len(w["purchase_rows"]) > 0)
True
"""

from __future__ import annotations

import numpy as np

from . import population
from .arms import treated
from .basket import amounts
from .rng import block_rng, exponential, hash_uniform, lognormal_delay
from .scenario import AD_SURFACES, ENTRY_CHANNELS, Scenario

__all__ = [
    "KINDS",
    "K",
    "MEMBER",
    "INF",
    "MONTH",
    "LEAD",
    "ROWCOLS",
    "schedule",
    "campaign_windows",
    "campaign_id",
    "make_block",
    "PERSON_ARRAYS",
    "fission_levels",
    "run_world",
    "article_clicked",
]


KINDS = ["ad", "store", "mp", "oa", "group", "guide", "live", "sms", "qr", "friend"]
K = {k: i for i, k in enumerate(KINDS)}
MEMBER = ["guide", "official_account", "group", "live"]
INF = np.inf
MONTH = 30.4
LEAD = 4.0 / 1440  # a Mini Program purchase comes at least 4 minutes after its trigger (view, cart, order)
ROWCOLS = ["person", "kind", "gate", "t", "item", "p", "u", "tp", "e1", "e2", "uc", "parent", "sat", "t2"]


# ---------------------------------------------------------------- helpers
def _poisson_rows(rng, start, end, rate):
    span = np.maximum(end - start, 0.0)
    span = np.where(np.isfinite(span), span, 0.0)
    n = rng.poisson(rate * span)
    person = np.repeat(np.arange(len(start)), n)
    t = start[person] + rng.random(len(person)) * span[person]
    # waking hours: keep the day, spread the time of day over 09:00-22:00
    day = np.floor(t)
    return person, day + (9.0 + 13.0 * (t - day)) / 24.0


def _scheduled_rows(times, start, end):
    k0 = np.searchsorted(times, np.where(np.isfinite(start), start, np.inf), "left")
    k1 = np.searchsorted(times, np.minimum(end, np.inf), "left")
    cnt = np.maximum(k1 - k0, 0)
    person = np.repeat(np.arange(len(start)), cnt)
    # item = k0[person] + the row's rank within its person, in one repeat
    item = np.arange(len(person)) - np.repeat(np.cumsum(cnt) - cnt - k0, cnt)
    return person, item


def schedule(sc: Scenario) -> dict[str, np.ndarray]:
    """Scenario-wide schedules in days since start: articles (20:00), lives (20:00), SMS (10:00)."""
    D = sc.days
    out = {}
    for name, key, per, hour in (("articles", "official_account", "articles_per_week", 20.0 / 24),
                                 ("lives", "live", "sessions_per_month", 20.0 / 24),
                                 ("sms", "sms", "per_month", 10.0 / 24)):
        if sc.has(key) and sc.sections[key][per] > 0:
            gap = (7.0 if per == "articles_per_week" else MONTH) / sc.sections[key][per]
            n = int(np.floor((D - hour) / gap)) + 1
            out[name] = np.floor(np.arange(n) * gap) + hour
        else:
            out[name] = np.zeros(0)
    return out


def campaign_windows(sc: Scenario, surface: str) -> np.ndarray:
    """Start day of each campaign of an ad surface (equal windows over the period)."""
    k = sc.sections[surface]["campaigns"]
    return np.arange(k) * (sc.days / k)


def campaign_id(surface: str, k: np.ndarray | int) -> np.ndarray | int:
    return (AD_SURFACES.index(surface) + 1) * 100 + k


# ---------------------------------------------------------------- block
def make_block(sc: Scenario, seed: int, block: int, n: int, offset: int = 0) -> dict:
    """Draw one block of ``n`` persons and all their candidate touches (world-independent)."""
    rng = block_rng(seed, block)
    D = float(sc.days)
    chans = sc.channels
    entries = list(sc.entry)
    entry = rng.choice(len(entries), n, p=np.array([sc.entry[e] for e in entries]))
    entry_name = np.asarray(entries, dtype=object)[entry]
    t0 = rng.random(n) * D
    aff_names = [*chans, "mini_program"]
    tr = population.draw_traits(rng, n, sc.traits, aff_names, t0)
    prof = population.draw_profiles(rng, n)
    B: dict = {"sc": sc, "seed": seed, "block": block, "n": n, "offset": offset, "D": D,
               "entry": entry_name, "t0": t0, "prof": prof, **tr, "aff_names": aff_names,
               "phase": rng.random(n) * sc.cycle_days,
               "key": np.uint64(int(np.random.SeedSequence([int(seed), int(block)]).generate_state(1, np.uint64)[0])),
               "sched": schedule(sc)}
    nstores = sc.sections["store"]["stores"] if sc.has("store") else 1
    B["store"] = rng.integers(0, nstores, n) + 1
    gps = sc.sections["guide"]["guides_per_store"] if sc.has("guide") else 1
    B["guide"] = (B["store"] - 1) * gps + rng.integers(0, gps, n) + 1
    # membership edges
    B["edges"] = {}
    for c in MEMBER:
        if not sc.has(c):
            continue
        sec = sc.sections[c]
        for parent, q in sec["join"].items():
            ok = rng.random(n) < q
            delay = rng.exponential(max(sec["join_delay_days"], 1e-9), n) if sec["join_delay_days"] > 0 else \
                np.zeros(n)
            B["edges"][(parent, c)] = (ok, delay)
    # fission pool: levels 1..depth (level 0 = everyone who does not enter by fission)
    pool = entry_name == "fission"
    B["pool"] = pool
    fis = sc.sections.get("fission", {})
    depth = int(fis.get("depth", 1))
    level = fission_levels(B["key"], pool, depth, sc.entry.get("fission", 0.0))
    B["level"], B["depth"] = level, depth
    B["u_ref"] = np.zeros(n)
    B["u_ref"][pool] = rng.random(int(pool.sum()))  # picks the referrer (see _draw_referrers)
    B["referrer"] = np.full(n, -1)
    B["accept"] = rng.random(n) < fis.get("accept_rate", 0.0)
    B["friend_delay"] = rng.exponential(fis.get("friend_delay_days", 1.0), n)
    B["max_mult"] = _max_multiplier(sc)
    # candidate touches level by level: level 0 (everyone but the pool), then the pool's levels 1..depth,
    # each from the earliest its referrers (level k - 1) could have shared
    B["row_parts"], B["phase_rows"] = [], []
    B["friend_lb"] = np.full(n, INF)
    reach0 = _entry_times(B, _all_on(B), B["friend_lb"], phase=0)
    _add_phase_rows(B, rng, reach0, phase=0)
    for k in range(1, depth + 1):
        lb_share = _potential_first_share(B, B["row_parts"][-2:], B["phase_rows"][k - 1][0])
        _draw_referrers(B, k, lb_share)
        ref = B["referrer"]
        ok = (level == k) & (ref >= 0) & B["accept"]
        B["friend_lb"][ok] = lb_share[ref[ok]] + B["friend_delay"][ok]
        _add_level_rows(B, rng, k, np.flatnonzero(level == k))
    # the rows of every level, concatenated once
    parts = B.pop("row_parts")
    B["rows"] = {c: np.concatenate([q[c] for q in parts]) for c in ROWCOLS}
    from .lift import assign

    B["lift"] = assign(B)  # lift-test arms: hashes, no generator state
    return B


#: the per-person arrays a level's candidate touches are drawn from
PERSON_ARRAYS = ["entry", "t0", "pool", "level", "interest", "tau", "affinity", "store", "guide", "friend_lb"]


def _add_level_rows(B, rng, k: int, who: np.ndarray) -> None:
    """The candidate touches of fission level ``k`` >= 1, drawn on the sub-block of ``who``.

    Only level-k persons have rows at level k, so ``who`` is them (any superset, such as
    the whole block, gives the same rows: a test checks it).
    """
    sub = _persons_subset(B, who)
    _add_phase_rows(sub, rng, _entry_times(sub, _all_on(B), sub["friend_lb"], phase=k), phase=k)
    for part in B["row_parts"][-2:]:
        part["person"] = who[part["person"]].astype(np.int32)


def _persons_subset(B, who: np.ndarray) -> dict:
    """A view of block ``B`` restricted to the persons ``who`` (numbered 0..len(who)-1).

    Shares the row lists, so rows added on it land in the block (with local person
    numbers, which the caller maps back). The draws do not change: every generator call
    of :func:`_add_phase_rows` draws per row, or per person with a rate of zero (no draw)
    for the persons left out.
    """
    sub = {**B, "n": len(who), **{k: B[k][who] for k in PERSON_ARRAYS}}
    sub["edges"] = {e: (ok[who], delay[who]) for e, (ok, delay) in B["edges"].items()}
    return sub


def _draw_referrers(B, k: int, lb_share: np.ndarray) -> None:
    """Referrers of the level-``k`` friends: level-(k-1) persons who could share in time.

    A friend's referrer is drawn, with weight interest (keen customers bring more
    friends), among the level-(k-1) persons whose earliest possible first share
    (``lb_share``, the lower bound over all worlds) comes before the friend's own
    arrival ``t0``; none (-1) if there is no such person. Whether the share really
    happens, and in time, is decided per world (:func:`run_world`).
    """
    lv, t0 = B["level"], B["t0"]
    who = np.flatnonzero(lv == k)
    cand = np.flatnonzero((lv == k - 1) & np.isfinite(lb_share))
    B["referrer"][who] = -1
    if not len(who) or not len(cand):
        return
    order = np.argsort(lb_share[cand], kind="stable")
    cand = cand[order]
    ls = lb_share[cand]
    w = np.cumsum(B["interest"][cand])
    m = np.searchsorted(ls, t0[who], "left")  # candidates sharing before the friend's arrival
    has = m > 0
    who, m = who[has], m[has]
    pick = np.searchsorted(w, B["u_ref"][who] * w[m - 1], "right")
    B["referrer"][who] = cand[np.minimum(pick, m - 1)]


def fission_levels(key: np.uint64, pool: np.ndarray, depth: int, share: float) -> np.ndarray:
    """Referral level per person: 0 outside the fission pool, 1..``depth`` in it.

    A pool person's referrer is taken to be anyone at all, so it is in the pool
    itself with probability ``share`` (the scenario's ``entry.fission``): the level
    is geometric, ``P(k) = (1 - share) share^(k-1)``, conditioned on ``k <= depth``.
    Every person then has about ``share`` potential friends one level below,
    whatever their own level. The draw is a hash of the block key and the person
    (no generator state is used).

    >>> pool = np.array([False, True, True, True])
    >>> fission_levels(np.uint64(7), pool, 1, 0.25).tolist()
    [0, 1, 1, 1]
    >>> lv = fission_levels(np.uint64(7), np.ones(100_000, bool), 3, 0.25)
    >>> [round(float(np.mean(lv == k)), 2) for k in (1, 2, 3)]
    [0.76, 0.19, 0.05]
    """
    n = len(pool)
    level = pool.astype(np.int8)
    if depth <= 1 or not pool.any():
        return level
    q = min(max(float(share), 0.0), 1.0)
    # cumulative probabilities of levels 1..depth
    w = np.full(depth, 1.0) if q >= 1.0 else (1.0 - q) * q ** np.arange(depth)
    cdf = np.cumsum(w) / w.sum()
    u = hash_uniform(key + np.arange(n, dtype=np.uint64), 21)
    lv = 1 + np.searchsorted(cdf[:-1], u, "right")
    return np.where(pool, lv, 0).astype(np.int8)


def _max_multiplier(sc: Scenario) -> float:
    ct = sc.experiments.get("coupon_tiers")
    return max([1.0] + [t["multiplier"] for t in ct["tiers"].values()]) if ct else 1.0


def _all_on(B) -> np.ndarray:
    return np.zeros(len(B["sc"].channels), dtype=bool)


def _is_off(B, off: np.ndarray, channel: str) -> bool:
    chans = B["sc"].channels
    return channel not in chans or bool(off[chans.index(channel)])


def _empty_rows() -> dict:
    return {c: [] for c in ROWCOLS}


def _append(R, **cols):
    n = len(cols["person"])
    defaults = {"item": 0, "p": 0.0, "u": 1.0, "tp": INF, "e1": False, "e2": False, "uc": 1.0, "parent": -1,
                "sat": True, "gate": -1, "t2": 0.0}
    for c in ROWCOLS:
        v = cols.get(c, defaults.get(c))
        R[c].append(np.broadcast_to(np.asarray(v), (n,)) if np.ndim(v) == 0 else np.asarray(v))


def _finish_rows(R) -> dict:
    dtypes = {"person": np.int32, "kind": np.int8, "gate": np.int8, "t": np.float64, "item": np.int32,
              "p": np.float32, "u": np.float32, "tp": np.float64, "e1": bool, "e2": bool, "uc": np.float32,
              "parent": np.int64, "sat": bool, "t2": np.float32}
    size = sum(len(a) for a in R["person"])
    out = {}
    for c in ROWCOLS:  # each part is cast (and a constant broadcast) as it is copied into place
        out[c] = np.empty(size, dtype=dtypes[c])
        at = 0
        for a in R[c]:
            out[c][at:at + len(a)] = a
            at += len(a)
    return out


def _entry_times(B, off, friend_time, phase: int) -> dict[str, np.ndarray]:
    """Arrival time per entry route of the persons of one level (inf elsewhere).

    ``phase`` is the fission level: 0 for everyone outside the pool, k >= 1 for
    the pool persons of level k (``friend_time``: when their referrer's share
    brings them; inf when it does not).
    """
    e, t0, pool = B["entry"], B["t0"], B["pool"]
    out = {}
    if phase >= 1:
        in_phase = B["level"] == phase  # friends arrive by fission or on their own only (no other key)
        fis_on = not _is_off(B, off, "fission")
        ft = np.where(in_phase & fis_on & (friend_time < t0), friend_time, INF)
        out["fission"] = ft
        out["mini_program"] = np.where(in_phase & ~np.isfinite(ft), t0, INF)
        return out
    for ch in ENTRY_CHANNELS:
        if ch in ("fission", "mini_program"):
            continue
        on = not _is_off(B, off, ch)
        out[ch] = np.where(~pool & (e == ch) & on, t0, INF)
    out["fission"] = np.full(B["n"], INF)
    out["mini_program"] = np.where(~pool & (e == "mini_program"), t0, INF)
    return out


def _first_by_person(n, person, t) -> np.ndarray:
    out = np.full(n, INF)
    if len(person):
        np.minimum.at(out, person, t)
    return out


def _joins(B, arrivals: dict[str, np.ndarray], off, lift: dict | None = None) -> dict[str, np.ndarray]:
    """Membership join times: min over firing edges of parent arrival + delay.

    A person held out of a membership channel's lift test does not join it inside the
    test window (so neither do the memberships joined through it).
    """
    sc, n = B["sc"], B["n"]
    src = dict(arrivals)
    for c in MEMBER:
        if not sc.has(c) or _is_off(B, off, c):
            src[c] = np.full(n, INF)
            continue
        t = src[c] if c == "official_account" and c in src else np.full(n, INF)
        for parent in sc.sections[c]["join"]:
            if parent not in src:  # nobody arrives that way (a friend never arrives by an ad)
                continue
            ok, delay = B["edges"][(parent, c)]
            t = np.minimum(t, np.where(ok, src[parent] + delay, INF))
        if lift and c in lift:
            from .lift import held_arrival

            t = np.where(held_arrival(lift, c, t), INF, t)
        src[c] = t
    return src


def _reach(arr: dict[str, np.ndarray]) -> np.ndarray:
    """First arrival at the brand: the person's first touch (ads count from the first click)."""
    keys = ["store", "official_account", "mini_program", "fission", *[s for s in AD_SURFACES if s + "_click" in arr]]
    out = np.full(len(next(iter(arr.values()))), INF)
    for k in keys:
        kk = k + "_click" if k in AD_SURFACES else k
        if kk in arr:
            out = np.minimum(out, arr[kk])
    return out


def _aff(B, channel: str) -> np.ndarray:
    return B["affinity"][:, B["aff_names"].index(channel)]


def _add_phase_rows(B, rng, entry: dict[str, np.ndarray], phase: int) -> None:
    """Generate the candidate touches of one fission level (``phase``) from lower-bound arrival/join times."""
    sc, n, D = B["sc"], B["n"], B["D"]
    R = _empty_rows()
    interest, tau = B["interest"], B["tau"]
    end = np.minimum(tau, D)
    chans = sc.channels
    arr = dict(entry)
    # ads (level 0 only: the pool never arrives by ads)
    for s in AD_SURFACES:
        if not sc.has(s) or phase >= 1:
            continue
        sec = sc.sections[s]
        who = np.flatnonzero(arr[s] < INF)
        extra = rng.poisson(sec["views"] - 1.0, len(who))
        person = np.concatenate([who, np.repeat(who, extra)])
        t = np.concatenate([B["t0"][who], B["t0"][np.repeat(who, extra)] + rng.random(int(extra.sum())) *
                            sec["view_days"]])
        keep = t < D
        person, t = person[keep], t[keep]
        clicked = rng.random(len(t)) < sec["ctr"]
        camp = campaign_id(s, np.searchsorted(campaign_windows(sc, s), t, "right") - 1)
        tclick = t + 0.5 / 1440
        p = np.where(clicked, sec["conversion"] * interest[person] * _aff(B, s)[person], 0.0)
        tp = tclick + LEAD + lognormal_delay(rng.random(len(t)), sec["delay"]["median_days"], sec["delay"]["sigma"])
        _append(R, person=person, kind=K["ad"], gate=chans.index(s), t=t, item=camp, p=p, u=rng.random(len(t)),
                tp=tp, e1=clicked)
        arr[s + "_click"] = _first_by_person(n, person[clicked], tclick[clicked])
    joins = _joins(B, arr, _all_on(B))
    reach = _reach(arr)
    # store visits: the first at arrival, then repeat visits
    if sc.has("store") and phase == 0:
        sec = sc.sections["store"]
        who = np.flatnonzero(arr["store"] < INF)
        rp, rt = _poisson_rows(rng, arr["store"], end, sec["visits_per_month"] / MONTH)
        person = np.concatenate([who, rp])
        t = np.concatenate([arr["store"][who], rt])
        p = sec["conversion"] * interest[person] * _aff(B, "store")[person]
        _append(R, person=person, kind=K["store"], gate=chans.index("store"), t=t, item=B["store"][person], p=p,
                u=rng.random(len(t)), tp=t + 10.0 / 1440)
    # Mini Program visits (organic, never switched off)
    sec = sc.sections["mini_program"]
    person, t = _poisson_rows(rng, reach, end, sec["visits_per_month"] / MONTH)
    # an organic arrival is itself a Mini Program visit (at t0)
    first = np.flatnonzero(((B["level"] == phase) if phase >= 1 else (~B["pool"] & (B["entry"] == "mini_program")))
                           & (B["t0"] < D))
    person = np.concatenate([first, person])
    t = np.concatenate([B["t0"][first], t])
    p = sec["conversion"] * interest[person] * _aff(B, "mini_program")[person]
    tp = t + LEAD + lognormal_delay(rng.random(len(t)), sec["delay"]["median_days"], sec["delay"]["sigma"])
    _append(R, person=person, kind=K["mp"], t=t, p=p, u=rng.random(len(t)), tp=tp)
    # Official Account article pushes
    if sc.has("official_account"):
        sec = sc.sections["official_account"]
        times = B["sched"]["articles"]
        person, item = _scheduled_rows(times, joins["official_account"], end)
        t = times[item]
        m = len(t)
        opened = rng.random(m) < sec["open_rate"]
        uc = rng.random(m)
        clicked = opened & (uc < sec["click_rate"])
        topen = t + exponential(rng.random(m), 0.1)
        tp = topen + 1.0 / 1440 + LEAD + lognormal_delay(rng.random(m), sec["delay"]["median_days"], sec["delay"]["sigma"])
        _append(R, person=person, kind=K["oa"], gate=chans.index("official_account"), t=t, item=item + 1,
                p=np.where(clicked, sec["conversion_rate"], 0.0), u=rng.random(m), tp=tp, e1=opened, e2=clicked,
                uc=uc, sat=False, t2=topen - t)
    for kind, ch, rate_key, per in (("group", "group", "messages_per_week", 7.0),
                                    ("guide", "guide", "chats_per_week", 7.0)):
        if not sc.has(ch):
            continue
        sec = sc.sections[ch]
        person, t = _poisson_rows(rng, joins[ch], end, sec[rate_key] / per)
        p = sec["conversion"] * interest[person] * _aff(B, ch)[person]
        tp = t + LEAD + lognormal_delay(rng.random(len(t)), sec["delay"]["median_days"], sec["delay"]["sigma"])
        item = B["guide"][person] if ch == "guide" else 0
        _append(R, person=person, kind=K[kind], gate=chans.index(ch), t=t, item=item, p=p, u=rng.random(len(t)),
                tp=tp)
    if sc.has("live"):
        sec = sc.sections["live"]
        times = B["sched"]["lives"]
        person, item = _scheduled_rows(times, joins["live"], end)
        viewed = rng.random(len(person)) < sec["view_rate"]
        person, item = person[viewed], item[viewed]
        m = len(person)
        t = times[item] + rng.random(m) * sec["hours"] / 24 * 0.6
        p = sec["conversion"] * interest[person] * _aff(B, "live")[person]
        tp = t + rng.random(m) * sec["hours"] / 24 * 0.4
        _append(R, person=person, kind=K["live"], gate=chans.index("live"), t=t, item=item + 1, p=p,
                u=rng.random(m), tp=tp, e1=rng.random(m) < sec["interact_rate"])
    if phase >= 1 and sc.has("fission"):
        sec = sc.sections["fission"]
        who = np.flatnonzero(np.isfinite(B["friend_lb"]) & (B["level"] == phase))
        m = len(who)
        dl = LEAD + lognormal_delay(rng.random(m), 0.02, 1.0)
        # t and tp are set per world (the friend's arrival); tp here stores the delay
        _append(R, person=who, kind=K["friend"], gate=chans.index("fission"), t=B["friend_lb"][who],
                p=sec["conversion"] * interest[who], u=rng.random(m), tp=dl)
    R = _finish_rows(R)
    # after-sale touches from the potential purchases of this level
    R2 = _empty_rows()
    base = B["phase_rows"][-1][1] if B["phase_rows"] else 0
    pot, tp_eff = _potential(B, R)
    pidx = np.flatnonzero(pot)
    crm_lb = _first_by_person(n, R["person"][pidx], tp_eff[pidx])
    if sc.has("store") and phase == 0:
        crm_lb = np.minimum(crm_lb, arr["store"])
    if sc.has("qr_code"):
        sec = sc.sections["qr_code"]
        keys = B["key"] + (np.uint64(base) + pidx.astype(np.uint64))
        scan = hash_uniform(keys, 11) < sec["scan_rate"]
        par = pidx[scan]
        person = R["person"][par]
        t = tp_eff[par] + exponential(rng.random(len(par)), sec["scan_delay_days"])
        keep = t < end[person]
        par, person, t = par[keep], person[keep], t[keep]
        p = sec["conversion"] * interest[person] * _aff(B, "qr_code")[person]
        tp = t + LEAD + lognormal_delay(rng.random(len(t)), sec["delay"]["median_days"], sec["delay"]["sigma"])
        _append(R2, person=person, kind=K["qr"], gate=chans.index("qr_code"), t=t, p=p, u=rng.random(len(t)),
                tp=tp, parent=par + base)
    if sc.has("sms"):
        sec = sc.sections["sms"]
        times = B["sched"]["sms"]
        person, item = _scheduled_rows(times, crm_lb, np.minimum(tau + 60.0, D))
        t = times[item]
        p = sec["conversion"] * interest[person] * _aff(B, "sms")[person]
        tp = t + LEAD + lognormal_delay(rng.random(len(t)), sec["delay"]["median_days"], sec["delay"]["sigma"])
        _append(R2, person=person, kind=K["sms"], gate=chans.index("sms"), t=t, item=item + 1, p=p,
                u=rng.random(len(t)), tp=tp)
    R2 = _finish_rows(R2)
    # B["phase_rows"][k]: the row range [a, b) of level k (a person's rows all lie in her level's range)
    B["row_parts"] += [R, R2]
    B["phase_rows"].append((base, base + len(R["person"]) + len(R2["person"])))
    if phase == 0:
        B["arrivals0_lb"] = arr


def _potential(B, R) -> tuple[np.ndarray, np.ndarray]:
    """Candidate rows that convert in some world, and their earliest purchase times.

    A friend's coupon row holds its earliest arrival in ``t`` and its delay in ``tp``.
    """
    sc = B["sc"]
    end = np.minimum(B["tau"], B["D"])[R["person"]]
    tp_eff = np.where(R["kind"] == K["friend"], R["t"] + R["tp"], R["tp"])
    pot = (R["u"] < np.minimum(R["p"] * B["max_mult"], 1.0)) & (tp_eff < end)
    if sc.has("official_account") and "article_redesign" in sc.experiments:
        ex = sc.experiments["article_redesign"]
        oa = (R["kind"] == K["oa"]) & R["e1"] & (R["uc"] < sc.sections["official_account"]["click_rate"] *
                                                  ex["click_multiplier"])
        pot |= oa & (R["u"] < sc.sections["official_account"]["conversion_rate"]) & (tp_eff < end)
    return pot, tp_eff


def _potential_first_share(B, parts: list[dict], base: int) -> np.ndarray:
    """Earliest possible first share per person over all worlds, from the rows of one level.

    ``parts`` are the level's consecutive row parts, the first at row ``base``.
    A lower bound of when the level's persons can first bring a friend of the next level.
    """
    sc, n = B["sc"], B["n"]
    out = np.full(n, INF)
    if not sc.has("fission"):
        return out
    for R in parts:
        pot, tp_eff = _potential(B, R)
        idx = np.flatnonzero(pot)
        d = _secondary(B, idx + base)
        ok = d["paid"] & d["share"]
        np.minimum.at(out, R["person"][idx[ok]], tp_eff[idx[ok]] + d["share_delay"][ok])
        base += len(R["person"])
    return out


def _secondary(B, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Hash-based draws of candidate purchases: paid, share, refund, product, quantity."""
    sc = B["sc"]
    keys = B["key"] + idx.astype(np.uint64)
    o = sc.orders
    fis = sc.sections.get("fission", {"share_rate": 0.0})
    return {
        "paid": hash_uniform(keys, 1) < o["pay_rate"],
        "share": hash_uniform(keys, 2) < fis["share_rate"],
        "share_delay": exponential(hash_uniform(keys, 3), 0.5),
        "refund": hash_uniform(keys, 4) < o["refund_rate"],
        "refund_delay": exponential(hash_uniform(keys, 5), o["refund_delay_days"]),
        "u_product": hash_uniform(keys, 6),
        "qty": 1 + (hash_uniform(keys, 7) < o["second_item_rate"]).astype(np.int64),
        "u_arm": hash_uniform(keys, 8),
    }


# ---------------------------------------------------------------- worlds
def run_world(B: dict, off: frozenset[str] | set[str] = frozenset(), treat: str = "none",
              assignment: dict | None = None, lift: dict | None = None) -> dict:
    """Realise one world: channels in ``off`` switched off; experiment mode ``treat``.

    ``treat`` is ``"none"`` (nobody treated), ``"all"`` (every eligible person
    treated) or ``"assigned"`` (the random arms in ``assignment``: person-level
    boolean arrays per experiment, see :func:`privdomain.simulate.orders.assign`).
    ``lift`` holds the lift-test arms (default: the block's, ``B["lift"]``; see
    :mod:`privdomain.simulate.lift`): held-out persons are not exposed to the
    tested channel inside the test window.

    Returns a dict with the purchases (row index, time, paid, amount...), the
    realised rows mask, membership join times, CRM join times, shares, and the
    pool's arrival times.
    """
    sc, n, D = B["sc"], B["n"], B["D"]
    chans = sc.channels
    offm = np.array([c in off for c in chans], dtype=bool)
    R = B["rows"]
    t = R["t"].copy()
    tp = R["tp"].copy()
    gate_on = np.ones(len(t), dtype=bool)
    g = R["gate"]
    has_gate = g >= 0
    gate_on[has_gate] = ~offm[g[has_gate]]
    lift = B.get("lift", {}) if lift is None else lift
    if lift:
        from .lift import suppressed_rows

        gate_on &= ~suppressed_rows(B, lift, t)
    person = R["person"]
    kind = R["kind"]
    p = R["p"].astype(np.float64)
    # experiments change probabilities
    p = _apply_experiments(B, p, treat, assignment)
    out = {"off": frozenset(off), "treat": treat}
    # ---- level 0: everyone outside the fission pool
    arr = _entry_times(B, offm, np.full(n, INF), phase=0)
    if lift:
        from .lift import held_arrival

        for surf in [*AD_SURFACES, "official_account"]:  # arrivals by a withheld channel do not happen
            if surf in arr:
                arr[surf] = np.where(held_arrival(lift, surf, arr[surf]), INF, arr[surf])
    arr = _ad_clicks(B, arr, offm, phase_range=B["phase_rows"][0], gate_on=gate_on)
    joins = _joins(B, arr, offm, lift)
    reach = _reach(arr)
    buy, real = _phase_purchases(B, B["phase_rows"][0], t, tp, p, gate_on, joins, reach, arr, offm)
    buys, reals = [buy], [real]
    arrival = dict(arr)
    friend = np.full(n, INF)
    fis_on = sc.has("fission") and not offm[chans.index("fission")]
    # ---- levels 1..depth: a level-k friend arrives after the first share of her referrer (level k - 1)
    for k in range(1, B["depth"] + 1):
        lk = B["level"] == k
        ft = np.full(n, INF)
        if fis_on:
            first_share = _first_share(B, buy, n, tp)
            ok = lk & (B["referrer"] >= 0) & B["accept"]
            ft[ok] = first_share[B["referrer"][ok]] + B["friend_delay"][ok]
            if "fission" in lift:
                from .lift import held_arrival

                ft = np.where(held_arrival(lift, "fission", ft), INF, ft)
        a, b = B["phase_rows"][k]
        fr = np.flatnonzero(kind[a:b] == K["friend"]) + a
        arr = _entry_times(B, offm, ft, phase=k)
        if len(fr):
            at = arr["fission"][person[fr]]
            t[fr] = at
            tp[fr] = at + R["tp"][fr]
        jk = _joins(B, arr, offm, lift)
        rk = _reach(arr)
        buy, real = _phase_purchases(B, B["phase_rows"][k], t, tp, p, gate_on, jk, rk, arr, offm)
        buys.append(buy)
        reals.append(real)
        joins = {c: np.where(lk, jk[c], joins[c]) for c in MEMBER}
        reach = np.where(lk, rk, reach)
        arrival = {c: np.minimum(arrival.get(c, INF), arr.get(c, INF)) for c in set(arrival) | set(arr)}
        friend = np.minimum(friend, arr["fission"])
    realised = np.concatenate(reals)
    rows = np.concatenate(buys)
    rows.sort()
    sec = _secondary(B, rows)
    pr = person[rows]
    out.update({
        "t": t, "tp_all": tp, "realised": realised, "purchase_rows": rows, "purchase_person": pr,
        "purchase_tp": tp[rows], "paid": sec["paid"], "secondary": sec,
        "joins": {c: joins[c] for c in MEMBER},
        "arrival": arrival,
        "friend": friend,
        "reach": reach,
    })
    out["amount_fen"], out["product"] = amounts(B, rows, sec, treat, assignment, p_rows=None)
    out["crm"] = _crm(B, out)
    if sc.has("fission") and not offm[chans.index("fission")]:
        ok = sec["paid"] & sec["share"] & (tp[rows] + sec["share_delay"] < D)
        out["share_rows"] = rows[ok]
        out["share_t"] = tp[rows][ok] + sec["share_delay"][ok]
    else:
        out["share_rows"] = np.zeros(0, np.int64)
        out["share_t"] = np.zeros(0)
    return out


def _ad_clicks(B, arr, offm, phase_range, gate_on=None):
    R = B["rows"]
    a, b = phase_range
    for s in AD_SURFACES:
        if not B["sc"].has(s):
            continue
        sel = np.flatnonzero((R["kind"][a:b] == K["ad"]) & (R["gate"][a:b] == B["sc"].channels.index(s)) &
                             R["e1"][a:b]) + a
        if gate_on is not None:  # views a lift test withheld bring no click
            sel = sel[gate_on[sel]]
        if offm[B["sc"].channels.index(s)]:
            arr[s + "_click"] = np.full(B["n"], INF)
        else:
            arr[s + "_click"] = _first_by_person(B["n"], R["person"][sel], R["t"][sel] + 0.5 / 1440)
    return arr


def _phase_purchases(B, rng_, t, tp, p, gate_on, joins, reach, arr, offm):
    a, b = rng_
    R = B["rows"]
    person = R["person"][a:b]
    kind = R["kind"][a:b]
    tt = t[a:b]
    tau = B["tau"][person]
    end = np.minimum(tau, B["D"])
    real = gate_on[a:b].copy()
    # membership-gated kinds
    for k, c in (("oa", "official_account"), ("group", "group"), ("guide", "guide"), ("live", "live")):
        m = kind == K[k]
        if m.any():
            jt = joins[c][person[m]]
            real[m] &= (tt[m] >= jt) & (tt[m] < tau[m])
    m = kind == K["mp"]
    real[m] &= (tt[m] >= reach[person[m]]) & (tt[m] < tau[m])
    m = kind == K["store"]
    if m.any():
        real[m] &= np.isfinite(arr["store"][person[m]])
    m = kind == K["friend"]
    real[m] &= np.isfinite(tt[m])
    pass2 = (kind == K["sms"]) | (kind == K["qr"])
    tpp = tp[a:b]
    conv = real & (R["u"][a:b] < p[a:b]) & (tpp < end)
    c1 = np.flatnonzero(conv & ~pass2)
    keep1 = _dedupe(B, c1 + a, person[c1], tpp[c1], R["sat"][a:b][c1], tp)
    # CRM join: first purchase, or the store visit
    crm = _first_by_person(B["n"], R["person"][keep1], tp[keep1])
    if "store" in arr:  # friends never arrive at a store
        crm = np.minimum(crm, arr["store"])
    # after-sale touches
    ms = kind == K["sms"]
    real[ms] &= tt[ms] >= crm[person[ms]]
    mq = np.flatnonzero(kind == K["qr"])
    if len(mq):
        is_buy = np.zeros(len(R["person"]), dtype=bool)
        is_buy[keep1] = _secondary(B, keep1)["paid"]
        real[mq] &= is_buy[R["parent"][a:b][mq]]
    conv2 = real & pass2 & (R["u"][a:b] < p[a:b]) & (tpp < end)
    c2 = np.flatnonzero(conv2)
    keep2 = _dedupe(B, c2 + a, person[c2], tpp[c2], np.ones(len(c2), bool), tp, taken=keep1)
    return np.concatenate([keep1, keep2]), real


def _dedupe(B, rows, person, tp, sat, tp_all, taken=None):
    """Keep non-saturating purchases and the earliest saturating one per person and cycle."""
    cyc = B["sc"].cycle_days
    bucket = np.floor((tp + B["phase"][person]) / cyc).astype(np.int64)
    key = person.astype(np.int64) * 1_000_000 + bucket
    s = np.flatnonzero(sat)
    if taken is not None and len(taken):
        R = B["rows"]
        tperson = R["person"][taken].astype(np.int64)
        tkey = tperson * 1_000_000 + np.floor((tp_all[taken] + B["phase"][tperson]) / cyc).astype(np.int64)
        s = s[~np.isin(key[s], tkey)]
    order = s[np.lexsort((tp[s], key[s]))]
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    kept = np.concatenate([rows[order[first]], rows[~sat]])
    return np.sort(kept)


def _first_share(B, buy_rows, n, tp_all):
    out = np.full(n, INF)
    if not len(buy_rows):
        return out
    sec = _secondary(B, buy_rows)
    ok = sec["paid"] & sec["share"]
    tpx = tp_all[buy_rows]
    np.minimum.at(out, B["rows"]["person"][buy_rows[ok]], tpx[ok] + sec["share_delay"][ok])
    return out


def _crm(B, w) -> np.ndarray:
    crm = _first_by_person(B["n"], w["purchase_person"], w["purchase_tp"])
    if B["sc"].has("store"):
        crm = np.minimum(crm, w["arrival"].get("store", INF))
    return crm


def article_clicked(B, treat: str, assignment: dict | None) -> np.ndarray:
    """Clicked flag of every row (only OA rows can be clicked), with the article redesign applied."""
    R, sc = B["rows"], B["sc"]
    clicked = R["e2"].copy()
    ex = sc.experiments.get("article_redesign")
    if ex is None or treat == "none":
        return clicked
    s = (ex["start"] - sc.start).days
    tr = treated(B, "article_redesign", treat, assignment)
    m = (R["kind"] == K["oa"]) & (R["t"] >= s) & (R["t"] < s + ex["days"]) & tr[R["person"]]
    clicked[m] = R["e1"][m] & (R["uc"][m] < sc.sections["official_account"]["click_rate"] * ex["click_multiplier"])
    return clicked


def _apply_experiments(B, p, treat, assignment):
    sc = B["sc"]
    R = B["rows"]
    if "article_redesign" in sc.experiments and treat != "none":
        oa = R["kind"] == K["oa"]
        cl = article_clicked(B, treat, assignment)
        p = np.where(oa, np.where(cl, sc.sections["official_account"]["conversion_rate"], 0.0), p)
    ct = sc.experiments.get("coupon_tiers")
    if ct is None or treat == "none":
        return p
    s = (ct["start"] - sc.start).days
    inwin = (R["t"] >= s) & (R["t"] < s + ct["days"])
    mult = np.where(treated(B, "coupon_tiers", treat, assignment), B["tier_mult"], 1.0)
    return np.where(inwin, p * mult[R["person"]], p)
