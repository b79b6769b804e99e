"""Turn a realised world into schema events, ids and id links (one block).

Ids per surface (what the data carries in ``id_type`` / ``id_value``):

=====================  ==================================================
surface                id the surface sees
=====================  ==================================================
Official Account       ``oa_openid`` (follow, push, open, mp_click)
Mini Program           ``mp_openid`` (visits, cart, MP orders, live, QR, shares)
ads, groups            ``unionid``
WeCom guide            ``wecom_external_id`` (add, chat, guide orders)
store, SMS             ``phone_hash`` (the member's phone at the till / in the CRM)
=====================  ==================================================

An id value is a prefix plus a 64-bit mix of (seed, person, id type): distinct
per person, and reversible to the seed and person id (both in the dataset anyway).
``phone_hash`` is :func:`population.phone_hash` of the CRM phone: a keyed hash
(SipHash-2-4 under :func:`population.phone_key`), so it does not give the phone
number back. ``id_links`` holds the pairs the platform knows (openid <->
unionid), membership sign-up (unionid <-> phone_hash, CRM members only) and
WeCom (external id <-> unionid), each missing with the scenario's
``ids.missing`` probability.

>>> ID_PREFIX["oa_openid"]
'oa'
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from . import population
from .journeys import K, article_clicked, hash_uniform
from .rng import mix
from .scenario import AD_SURFACES

__all__ = [
    "TP",
    "CH",
    "IDT",
    "ID_PREFIX",
    "IDCOLS",
    "MIN",
    "ORDER_KIND_CHANNEL",
    "id_strings",
    "block_ids",
    "block_events",
    "time_sort",
    "events_schema",
    "events_table",
    "id_links_table",
]


TP = {t: i for i, t in enumerate(schema.TOUCHPOINTS)}
CH = {c: i for i, c in enumerate(schema.CHANNELS)}
IDT = {t: i for i, t in enumerate(schema.ID_TYPES)}
ID_PREFIX = {"oa_openid": "oa", "mp_openid": "mp", "unionid": "un", "wecom_external_id": "wx", "phone_hash": "ph"}
IDCOLS = ["campaign_id", "article_id", "live_id", "store_id", "guide_id", "product_id", "order_id", "amount_fen",
          "referrer_person_id"]
MIN = 1.0 / 1440
ORDER_KIND_CHANNEL = {K["store"]: "store", K["guide"]: "guide", K["live"]: "live"}


class _Buf:
    """Event parts as emitted (dense columns per part, sparse id columns only where a part has them)."""

    def __init__(self):
        self.parts: list[dict] = []

    def add(self, t, person, tp: str, idt: str, channel: str | None = None, **ids):
        n = len(t)
        if n == 0:
            return
        d = {"t": np.asarray(t, np.float64), "person": np.asarray(person, np.int64),
             "tp": np.full(n, TP[tp], np.int8), "ch": np.full(n, CH[channel or schema.CHANNEL_OF[tp]], np.int8),
             "idt": np.full(n, IDT[idt], np.int8)}
        for c in IDCOLS:
            v = ids.get(c)
            if v is not None:
                d[c] = np.broadcast_to(np.asarray(v, np.int64), (n,))
        self.parts.append(d)

    def first_seen(self, n: int) -> np.ndarray:
        """The time of each person's first event emitted so far (``inf`` for none)."""
        out = np.full(n, np.inf)
        for p in self.parts:
            np.minimum.at(out, p["person"], p["t"])
        return out

    def dense(self) -> dict[str, np.ndarray]:
        keys = ["t", "person", "tp", "ch", "idt"]
        if not self.parts:
            return {"t": np.zeros(0), "person": np.zeros(0, np.int64),
                    **{k: np.zeros(0, np.int8) for k in keys[2:]}}
        return {k: np.concatenate([p[k] for p in self.parts]) for k in keys}

    def sparse(self, pos: np.ndarray, size: int) -> dict[str, pa.Array]:
        """The id columns in output order: ``pos[i]`` is row i's output position (-1: dropped).

        Scatters each part's values to their positions, so only the rows that carry an id
        are touched; the rest are null: a validity bitmap over slots left unset (neither
        Arrow nor Parquet reads a null slot's value, so the files do not depend on them).
        """
        values = {c: np.empty(size, np.int64) for c in IDCOLS}
        valid = {c: np.zeros(size, bool) for c in IDCOLS}
        at = 0
        for p in self.parts:
            m = len(p["t"])
            cols = [c for c in IDCOLS if c in p]
            if cols:
                where = pos[at:at + m]
                ok = where >= 0
                every = bool(ok.all())
                w = where if every else where[ok]
                for c in cols:
                    v = p[c] if p[c].strides[0] == 0 or every else p[c][ok]
                    v = v[0] if v.strides[0] == 0 else v  # a constant column
                    values[c][w] = v
                    valid[c][w] = v >= 0
            at += m
        out = {}
        for c in IDCOLS:
            nulls = size - int(np.count_nonzero(valid[c]))
            bitmap = pa.py_buffer(np.packbits(valid[c], bitorder="little")) if nulls else None
            out[c] = pa.Array.from_buffers(pa.int64(), size, [bitmap, pa.py_buffer(values[c])], null_count=nulls)
        return out


def id_strings(seed: int, person_id: np.ndarray, idt: np.ndarray, phones: np.ndarray | None = None,
               phone_key: bytes | None = None) -> pa.Array:
    """The id value strings of (person, id type) pairs.

    ``phone_hash`` values are :func:`population.phone_hash` of ``phones`` (when given)
    under ``phone_key`` (default: :func:`population.phone_key` of the seed), so a store
    or SMS row carries the keyed hash of the CRM number.
    """
    key = (np.uint64(int(seed) & 0xFFFFFFFF) << np.uint64(40)) ^ (person_id.astype(np.uint64) * np.uint64(8) +
                                                                  idt.astype(np.uint64))
    h = mix(mix(key))
    if phones is not None:
        ph = idt == IDT["phone_hash"]
        if ph.any():
            key = phone_key if phone_key is not None else population.phone_key(seed)
            h[ph] = population.phone_digest(phones[ph], key)
    digits = pc.cast(pa.array(h), pa.string())
    return pc.binary_join_element_wise(_prefixes().take(pa.array(np.asarray(idt, np.int8))), digits, "")


@functools.cache
def _prefixes() -> pa.Array:
    return pa.array([ID_PREFIX[t] for t in schema.ID_TYPES], pa.string())


def block_ids(B: dict, codes: np.ndarray) -> pa.Array:
    """The id strings of a block's (id type, person) ``codes`` (``id_type_code * n + person``).

    Each string is computed once per block, when first asked for: the events ask for
    the ids they carry, the id links for the pairs they list.
    """
    n, k = B["n"], len(schema.ID_TYPES)
    if "_ids" not in B:
        B["_ids"] = (np.full(k * n, -1, np.int64), [], 0)  # position of a code's string, chunks, count
    where, chunks, count = B["_ids"]
    need = np.zeros(k * n, bool)  # the codes asked for that have no string yet (codes are small integers)
    need[codes] = True
    new = np.flatnonzero(need & (where < 0))
    if len(new):
        person = new % n
        gid = person + B["offset"]
        idt = (new // n).astype(np.int8)
        ph = idt == IDT["phone_hash"]
        phones = np.zeros(len(new), np.int64)
        phones[ph] = population.phone_numbers(gid[ph], B["prof"]["prefix"][person[ph]], B["seed"])
        chunks.append(id_strings(B["seed"], gid, idt, phones, B.get("phone_key")))
        where[new] = count + np.arange(len(new))
        B["_ids"] = (where, chunks, count + len(new))
    if len(chunks) > 1:
        chunks[:] = [pa.concat_arrays(chunks)]
    return chunks[0].take(pa.array(where[codes])) if chunks else pa.array([], pa.string())


def block_events(B: dict, W: dict, treat: str, assignment: dict | None) -> dict:
    """Events (schema order, sorted by time), id links and per-person facts of one block."""
    sc, D = B["sc"], B["D"]
    R = B["rows"]
    real = W["realised"]
    t = W["t"]
    kind, person, item, gate = R["kind"], R["person"], R["item"], R["gate"]
    buf = _Buf()
    visits: list[tuple[np.ndarray, np.ndarray]] = []  # (time, row) of every Mini Program visit, for browsing
    # ads
    for s in AD_SURFACES:
        if not sc.has(s):
            continue
        m = np.flatnonzero(real & (kind == K["ad"]) & (gate == sc.channels.index(s)))
        buf.add(t[m], person[m], f"{s}_view", "unionid", campaign_id=item[m])
        c = m[R["e1"][m]]
        buf.add(t[c] + 0.5 * MIN, person[c], f"{s}_click", "unionid", campaign_id=item[c])
        buf.add(t[c] + 1.0 * MIN, person[c], "mp_visit", "mp_openid")
        visits.append((t[c] + 1.0 * MIN, c))
    m = np.flatnonzero(real & (kind == K["store"]))
    buf.add(t[m], person[m], "store_visit", "phone_hash", store_id=item[m])
    m = np.flatnonzero(real & (kind == K["mp"]))
    buf.add(t[m], person[m], "mp_visit", "mp_openid")
    visits.append((t[m], m))
    # Official Account pushes, opens, clicks into the Mini Program
    m = np.flatnonzero(real & (kind == K["oa"]))
    if len(m):
        buf.add(t[m], person[m], "oa_push", "oa_openid", article_id=item[m])
        o = m[R["e1"][m]]
        topen = t[o] + R["t2"][o]
        buf.add(topen, person[o], "oa_article_open", "oa_openid", article_id=item[o])
        clicked = article_clicked(B, treat, assignment)
        cm = clicked[o]
        buf.add(topen[cm] + MIN, person[o][cm], "mp_click", "oa_openid", article_id=item[o][cm])
        buf.add(topen[cm] + 1.5 * MIN, person[o][cm], "mp_visit", "mp_openid")
        visits.append((topen[cm] + 1.5 * MIN, o[cm]))
    m = np.flatnonzero(real & (kind == K["group"]))
    buf.add(t[m], person[m], "group_message", "unionid")
    m = np.flatnonzero(real & (kind == K["guide"]))
    buf.add(t[m], person[m], "wecom_chat", "wecom_external_id", guide_id=item[m])
    m = np.flatnonzero(real & (kind == K["live"]))
    buf.add(t[m], person[m], "live_view", "mp_openid", live_id=item[m])
    i = m[R["e1"][m]]
    buf.add(t[i] + 2 * MIN, person[i], "live_interact", "mp_openid", live_id=item[i])
    _live_traffic(B, buf, m, t[m], W["joins"].get("live"))
    m = np.flatnonzero(real & (kind == K["sms"]))
    buf.add(t[m], person[m], "sms", "phone_hash")
    m = np.flatnonzero(real & (kind == K["qr"]))
    buf.add(t[m], person[m], "qr_scan", "mp_openid")
    # a friend's first touch carries the referrer
    m = np.flatnonzero(real & (kind == K["friend"]))
    ref_global = B["referrer"] + B["offset"]
    buf.add(t[m], person[m], "mp_visit", "mp_openid", referrer_person_id=ref_global[person[m]])
    visits.append((t[m], m))
    _browse(B, buf, np.concatenate([v[0] for v in visits]), np.concatenate([v[1] for v in visits]), SALT_MP)
    # membership joins
    J = W["joins"]
    for c, tp, idt in (("official_account", "oa_follow", "oa_openid"), ("group", "group_join", "unionid"),
                       ("guide", "wecom_add", "wecom_external_id")):
        if c in J:
            who = np.flatnonzero(J[c] < D)
            buf.add(J[c][who], who, tp, idt, guide_id=B["guide"][who] if c == "guide" else None)
    # purchases
    rows = W["purchase_rows"]
    if len(rows):
        sec = W["secondary"]
        pp = person[rows]
        tpp = W["purchase_tp"]
        k = kind[rows]
        order_id = (np.int64(B["block"]) << np.int64(32)) + np.arange(1, len(rows) + 1, dtype=np.int64)
        prod = W["product"] + 1
        amt = W["amount_fen"]
        ref = np.where(k == K["friend"], ref_global[pp], -1)
        paid = sec["paid"]
        refund = paid & sec["refund"] & (tpp + 2 * MIN + sec["refund_delay"] < D)
        mpm = ~np.isin(k, list(ORDER_KIND_CHANNEL))
        buf.add(tpp[mpm] - 3 * MIN, pp[mpm], "product_view", "mp_openid", product_id=prod[mpm],
                referrer_person_id=ref[mpm])
        buf.add(tpp[mpm] - 1 * MIN, pp[mpm], "add_to_cart", "mp_openid", product_id=prod[mpm],
                referrer_person_id=ref[mpm])
        _abandoned_before(B, buf, rows[mpm], pp[mpm], tpp[mpm], buf.first_seen(B["n"]))
        lm = k == K["live"]  # an order in a live stream follows a click on the product in the stream
        buf.add(tpp[lm] - 3 * MIN, pp[lm], "product_view", "mp_openid", product_id=prod[lm],
                live_id=item[rows][lm])
        buf.add(tpp[lm] - 1 * MIN, pp[lm], "add_to_cart", "mp_openid", product_id=prod[lm],
                live_id=item[rows][lm])
        for kk, chan, idt, col in ((None, "mini_program", "mp_openid", None), (K["store"], "store", "phone_hash",
                                                                              "store_id"),
                                   (K["guide"], "guide", "wecom_external_id", "guide_id"),
                                   (K["live"], "live", "mp_openid", "live_id")):
            sel = mpm if kk is None else (k == kk)
            extra = {} if col is None else {col: item[rows][sel]}
            common = dict(product_id=prod[sel], order_id=order_id[sel], amount_fen=amt[sel],
                          referrer_person_id=ref[sel], **extra)
            buf.add(tpp[sel], pp[sel], "order", idt, chan, **common)
            ps = paid[sel]
            buf.add(tpp[sel][ps] + MIN, pp[sel][ps], "pay", idt, chan,
                    **{c: v[ps] for c, v in common.items()})
            rs = refund[sel]
            buf.add(tpp[sel][rs] + 2 * MIN + sec["refund_delay"][sel][rs], pp[sel][rs], "refund", idt, chan,
                    **{c: v[rs] for c, v in common.items()})
    sr = W["share_rows"]
    buf.add(W["share_t"], person[sr], "share", "mp_openid")
    ev = buf.dense()
    t = ev["t"]
    dropped = ~(t < D)  # after the end of the period
    n_keep = len(t) - int(np.count_nonzero(dropped))
    # whole seconds since the start; a dropped event gets a second after every kept one, so it sorts last
    sec = np.floor(np.where(dropped, 0.0, t) * 86400.0).astype(np.int64)
    sec[dropped] = int(D * 86400) + 1
    order, (sec, person_s, tp_s) = time_sort(sec, ev["person"], ev["tp"])
    idx = order[:n_keep]
    pos = np.full(len(t), -1, np.int64)
    pos[idx] = np.arange(n_keep, dtype=np.int64)
    out = {"person": person_s[:n_keep], "tp": tp_s[:n_keep].astype(np.int8), "ch": ev["ch"][idx],
           "idt": ev["idt"][idx]}
    out.update(buf.sparse(pos, n_keep))
    out["sec"] = sec[:n_keep]
    out["code"] = out["idt"].astype(np.int64) * B["n"] + out["person"]  # (id type, person): see block_ids
    return out


SALT_MP, SALT_LIVE, SALT_CART = 61, 71, 91  # hash salts of the browsing draws (the purchase draws use 1-11)


def _browse_products(B: dict, u: np.ndarray) -> np.ndarray:
    """Product ids (1-based) of browsing views: the catalogue's weights, from uniforms ``u``."""
    w = np.array([p["weight"] for p in B["sc"].products], dtype=np.float64)
    cdf = np.cumsum(w) / w.sum()
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(w) - 1) + 1


def _browse(B: dict, buf: _Buf, tv: np.ndarray, rows: np.ndarray, salt: int,
            view_rate: float | None = None, live_id: np.ndarray | None = None) -> None:
    """Browsing after visits that buys nothing: a product view, then maybe a cart that is abandoned.

    Visit ``i`` (at ``tv[i]``, by candidate row ``rows[i]``) views a product with
    ``view_rate`` (default the scenario's ``browsing.view_rate``) a minute or more later; the
    view adds the product to the cart with ``browsing.cart_rate``; no order follows (orders come
    only from the purchase model). The draws are hashes of the row's key: the same in every
    world and whatever the number of workers. ``live_id`` tags the events of a live stream.
    """
    if not len(rows):
        return
    br = B["sc"].browsing
    rate = br["view_rate"] if view_rate is None else view_rate
    keys = B["key"] + rows.astype(np.uint64)
    seen = hash_uniform(keys, salt) < rate
    idx = np.flatnonzero(seen)
    k = keys[idx]
    person = B["rows"]["person"][rows[idx]]
    prod = _browse_products(B, hash_uniform(k, salt + 1))
    t_view = tv[idx] + MIN * (1.0 - 3.0 * np.log1p(-hash_uniform(k, salt + 2)))  # 1 min + Exp(mean 3 min)
    lid = None if live_id is None else live_id[idx]
    buf.add(t_view, person, "product_view", "mp_openid", product_id=prod, live_id=lid)
    cart = hash_uniform(k, salt + 3) < br["cart_rate"]
    t_cart = t_view[cart] + MIN * (1.0 - 2.0 * np.log1p(-hash_uniform(k[cart], salt + 4)))
    buf.add(t_cart, person[cart], "add_to_cart", "mp_openid", product_id=prod[cart],
            live_id=None if lid is None else lid[cart])


def _abandoned_before(B: dict, buf: _Buf, rows: np.ndarray, person: np.ndarray, tp: np.ndarray,
                      first: np.ndarray) -> None:
    """The carts a buyer abandoned before a Mini Program order (candidate ``rows``, ordered at ``tp``).

    Each cart she fills is ordered with ``browsing.checkout_rate``: before the order she
    abandoned a geometric number of carts (mean ``(1 - r) / r``, at most 20), each in a
    session of its own (``mp_visit``, ``product_view``, ``add_to_cart`` of a catalogue
    product) between her first event (``first``, per person) and 10 minutes before the
    order, an exponential time (mean a day) before it. An order within minutes of her
    first event has none; sessions that fall in the same second are one session.
    """
    r = B["sc"].browsing["checkout_rate"]
    if not len(rows) or r >= 1.0:
        return
    keys = B["key"] + rows.astype(np.uint64)
    u = hash_uniform(keys, SALT_CART)
    n_ab = np.minimum(np.floor(np.log1p(-u) / np.log1p(-r)), 20).astype(np.int64) if r > 0 else np.full(len(rows), 20)
    latest = tp - 10 * MIN
    gap = latest - (first[person] + 2 * MIN)
    n_ab[~(gap > 0)] = 0
    src = np.repeat(np.arange(len(rows)), n_ab)
    if not len(src):
        return
    j = np.arange(len(src)) - np.repeat(np.cumsum(n_ab) - n_ab, n_ab)  # 0.. within a purchase
    k = (keys[src] << np.uint64(5)) + j.astype(np.uint64)
    back = np.minimum(-np.log1p(-hash_uniform(k, SALT_CART + 1)), hash_uniform(k, SALT_CART + 2) * gap[src])
    tv = latest[src] - back
    who = person[src]
    # sessions are written in whole seconds: two in the same second would be one session seen twice
    sec = np.floor(tv * 86400.0).astype(np.int64)
    keep = np.sort(np.unique((who.astype(np.int64) << np.int64(34)) + sec, return_index=True)[1])
    tv, who, k = tv[keep], who[keep], k[keep]
    prod = _browse_products(B, hash_uniform(k, SALT_CART + 3))
    buf.add(tv, who, "mp_visit", "mp_openid")
    buf.add(tv + MIN, who, "product_view", "mp_openid", product_id=prod)
    buf.add(tv + 3 * MIN, who, "add_to_cart", "mp_openid", product_id=prod)


def _live_traffic(B: dict, buf: _Buf, rows: np.ndarray, tv: np.ndarray, joined: np.ndarray | None) -> None:
    """Visits, product clicks and warm-up traffic of live viewers (candidate ``rows`` viewed at ``tv``).

    A viewer opens the Mini Program from the stream (``browsing.live_visit_rate``: an
    ``mp_visit`` carrying the ``live_id``) and clicks a product there (``live_click_rate``:
    a ``product_view`` with the ``live_id``), which she may add to the cart (``cart_rate``)
    without ordering. A viewer came through the session's warm-up page (``warmup_rate``):
    an ``mp_visit`` with the ``live_id`` uniformly within ``warmup_hours`` before the start,
    if she had joined the live audience by then. A viewer also watches the replay
    (``replay_rate``): a second ``live_view`` after the end (``live.hours`` after the start),
    1 minute + Exp(mean 1 day) later, if that falls within the data.
    """
    if not len(rows):
        return
    sc = B["sc"]
    br = sc.browsing
    R = B["rows"]
    lid = R["item"][rows]
    keys = B["key"] + rows.astype(np.uint64)
    person = R["person"][rows]
    v = hash_uniform(keys, SALT_LIVE) < br["live_visit_rate"]
    t_visit = tv[v] + MIN * (1.0 - 5.0 * np.log1p(-hash_uniform(keys[v], SALT_LIVE + 1)))
    buf.add(t_visit, person[v], "mp_visit", "mp_openid", live_id=lid[v])
    _browse(B, buf, t_visit, rows[v], SALT_LIVE + 2, view_rate=br["live_click_rate"], live_id=lid[v])
    start = B["sched"]["lives"][lid - 1]
    tw = start - hash_uniform(keys, SALT_LIVE + 8) * br["warmup_hours"] / 24.0
    w = hash_uniform(keys, SALT_LIVE + 9) < br["warmup_rate"]
    if joined is not None:
        w &= tw >= joined[person]
    w &= tw >= 0
    buf.add(tw[w], person[w], "mp_visit", "mp_openid", live_id=lid[w])
    rate = br.get("replay_rate", 0.0)
    if rate > 0:
        tr = start + sc.sections["live"]["hours"] / 24.0 + MIN - np.log1p(-hash_uniform(keys, SALT_LIVE + 11))
        r = (hash_uniform(keys, SALT_LIVE + 10) < rate) & (tr < float(sc.days))
        buf.add(tr[r], person[r], "live_view", "mp_openid", live_id=lid[r])


def time_sort(sec: np.ndarray, person: np.ndarray, tp: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sort events by (second, person, touchpoint code), ties in their given order.

    Returns the order (positions in the input) and the three fields in that order.
    When the four fields (second, person, touchpoint, position) fit in 64 bits, as they
    do for a block of a year's events, they are packed into one unsigned key whose values
    are sorted (a plain sort of values takes a third of an argsort's time) and read back
    from its bits; otherwise a lexicographic argsort. Fields must be non-negative.

    >>> order, (sec, person, tp) = time_sort(np.array([5, 1, 5, 1]), np.array([0, 2, 0, 1]),
    ...                                      np.array([3, 0, 2, 0]))
    >>> order.tolist(), sec.tolist(), person.tolist(), tp.tolist()
    ([3, 1, 2, 0], [1, 1, 5, 5], [1, 2, 0, 0], [0, 0, 2, 3])
    """
    m = len(sec)
    fields = [np.asarray(sec, np.int64), np.asarray(person, np.int64), np.asarray(tp, np.int64)]
    if m == 0:
        return np.zeros(0, np.int64), fields
    bits = [int(f.max()).bit_length() for f in fields] + [(m - 1).bit_length()]
    if min(int(f.min()) for f in fields) < 0:
        raise ValueError("time_sort: fields must be non-negative")
    if sum(bits) > 64:
        order = np.lexsort((np.arange(m), fields[2], fields[1], fields[0]))
        return order, [f[order] for f in fields]
    shifts = np.cumsum([*bits[1:], 0][::-1])[::-1].tolist()  # each field's lowest bit
    key = np.zeros(m, np.uint64)
    for f, sh in zip([*fields, np.arange(m)], shifts):
        key |= f.astype(np.uint64) << np.uint64(sh)
    key.sort()

    def take(i: int) -> np.ndarray:
        return ((key >> np.uint64(shifts[i])) & np.uint64((1 << bits[i]) - 1)).view(np.int64)

    return take(3), [take(0), take(1), take(2)]


_CATEGORIES = {"id_type": schema.ID_TYPES, "touchpoint": schema.TOUCHPOINTS, "channel": schema.CHANNELS}


@functools.cache
def events_schema() -> pa.Schema:
    """Arrow schema of a simulated events part, with the pandas metadata that makes
    ``read_parquet`` give categoricals, tz-aware ``ts`` and nullable ``Int64`` ids."""
    one = {"event_id": np.zeros(1, np.int64),
           "ts": pd.DatetimeIndex([0], dtype="datetime64[ns]").tz_localize("UTC").tz_convert(schema.TIMEZONE),
           "person_id": np.zeros(1, np.int64)}
    for c in ("id_type", "id_value", "touchpoint", "channel"):
        one[c] = pd.Categorical.from_codes([0], categories=_CATEGORIES.get(c, ["x"]))
    for c in IDCOLS:
        one[c] = pd.array([1], dtype="Int64")
    sch = pa.Schema.from_pandas(pd.DataFrame(one), preserve_index=False)
    i = sch.get_field_index("id_value")
    return sch.set(i, pa.field("id_value", pa.dictionary(pa.int32(), pa.string())))


def _dictionary(codes: np.ndarray, values: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes), values)


def events_table(B: dict, ev: dict, start_ns: int) -> pa.Table:
    """Schema events of one block as an Arrow table (dictionary text columns, nullable ids).

    Built straight from the numpy columns (no pandas frame in between); read back with
    pandas it gives the schema's dtypes (categoricals, tz-aware ``ts``, ``Int64`` ids).
    """
    n_ev = len(ev["sec"])
    codes = ev["code"]
    # distinct (id type, person) codes without sorting: codes are small integers
    present = np.bincount(codes, minlength=len(schema.ID_TYPES) * B["n"]) > 0
    used = np.flatnonzero(present)
    remap = (np.cumsum(present) - 1).astype(np.int32)
    strings = block_ids(B, used)
    ts_ns = (start_ns + ev["sec"] * 1_000_000_000).view("datetime64[ns]")
    cols = [
        pa.array((np.int64(B["block"]) << np.int64(32)) + np.arange(n_ev, dtype=np.int64)),
        pa.array(ts_ns, pa.timestamp("ns", tz=schema.TIMEZONE)),
        pa.array(ev["person"] + B["offset"]),
        _dictionary(ev["idt"].astype(np.int8), _category_values("id_type")),
        _dictionary(remap[codes], strings),
        _dictionary(ev["tp"].astype(np.int8), _category_values("touchpoint")),
        _dictionary(ev["ch"].astype(np.int8), _category_values("channel")),
    ]
    cols += [ev[c] for c in IDCOLS]
    return pa.Table.from_arrays(cols, schema=events_schema())


@functools.cache
def _category_values(column: str) -> pa.Array:
    return pa.array(_CATEGORIES[column], pa.string())


def id_links_table(B: dict, ev: dict, crm: np.ndarray) -> pa.Table:
    """Pairs of ids known to be one person, with some links missing (see module doc)."""
    sc, n = B["sc"], B["n"]
    seen = np.zeros(len(schema.ID_TYPES) * n, dtype=bool)
    seen[ev["code"]] = True
    seen = seen.reshape(len(schema.ID_TYPES), n).T
    miss = sc.ids["missing"]
    pkeys = (B["key"] ^ np.uint64(0x1D1D)) + np.arange(n, dtype=np.uint64)
    member = np.isfinite(crm)
    specs = [("oa_openid", "unionid", "platform", seen[:, IDT["oa_openid"]], miss["platform"], 51),
             ("mp_openid", "unionid", "platform", seen[:, IDT["mp_openid"]], miss["platform"], 52),
             ("wecom_external_id", "unionid", "wecom", seen[:, IDT["wecom_external_id"]], miss["wecom"], 53),
             ("unionid", "phone_hash", "membership", member & seen.any(axis=1), miss["membership"], 54)]
    parts = []
    for a, b, src, has, p_miss, salt in specs:
        who = np.flatnonzero(has & (hash_uniform(pkeys, salt) >= p_miss))
        if not len(who):
            continue
        k = len(who)
        parts.append(pa.table({"id_type_a": pa.repeat(a, k), "id_value_a": block_ids(B, IDT[a] * n + who),
                               "id_type_b": pa.repeat(b, k), "id_value_b": block_ids(B, IDT[b] * n + who),
                               "source": pa.repeat(src, k)}))
    if not parts:
        return pa.table({c: pa.array([], pa.string()) for c in schema.empty("id_links").columns})
    return pa.concat_tables(parts)
