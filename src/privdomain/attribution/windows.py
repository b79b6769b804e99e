"""Windowed ad attribution with fission credit, and multi-level ROI (Youshu's ad analysis).

Definitions (all days are Beijing calendar days)
------------------------------------------------
ad
    A campaign (``campaign_id``); the schema has no finer creative id. An **ad
    touch** is an event with a ``campaign_id`` whose touchpoint is an ad click
    (:data:`privdomain.schema.AD_CLICKS`; ``touch="click"``) or, separately, an ad
    view (:data:`~privdomain.schema.AD_VIEWS`; ``touch="view"``).
purchase
    A ``pay`` event; revenue = its ``amount_fen`` (refunds are not netted).
days since the touch
    ``d = day(pay) - day(touch)``. A window of ``W`` days holds ``0 <= d < W``
    (the touch day is day 1), so ``W = 7`` covers days 1-7 and an order on day 8
    falls in the 15-day window only. ``W = 0`` means **same day** (``d = 0``, as
    ``W = 1``).
direct
    A purchase by person P is credited to the ad of **P's latest ad touch at or
    before the pay** (ties: later event id). It is direct at window ``W`` when
    that touch is within ``W``. Several ads never share one purchase.
fission
    Person F *arrived* with their first event (earliest ts, then event id). If it
    carries ``referrer_person_id = R1``, F's referral chain is ``R1``, ``R1``'s own
    arrival referrer ``R2``, ... up to ``fission_depth`` levels (default 3;
    longer chains, and cycles, stop there). A person R **shared ad A** before a
    time t if R has a ``share`` event at or before t, whose ``campaign_id`` is A
    (or, when the share has no campaign, whose ad is R's latest ad touch before
    the share), and R had an ad touch on A at or before that share. F's fission
    ad is the ad shared by the nearest ancestor ``R_k`` before the arrival of the
    person below it in the chain (the latest such share); ``k`` is the depth.
    A purchase by F is a **fission** purchase of that ad at window ``W`` when it is
    not direct at ``W`` and ``day(pay) - day(F's arrival) < W``. So a friend's
    order through a share counts as fission, never as direct, unless the friend
    touched an ad themselves.
ROI
    ``(direct + fission revenue) / spend`` at each window; spend from the
    ``campaigns`` table (``spend_fen``), NaN without it.

Examples
--------
>>> from privdomain.examples import events_frame
>>> from privdomain.attribution.windows import ad_attribution
>>> ev = events_frame([
...     (1, "2024-05-01 10:00", "moments_ad_click", {"campaign_id": 7}),
...     (1, "2024-05-08 10:00", "pay", {"order_id": 1, "amount_fen": 9900})])
>>> r = ad_attribution(ev, windows=(7, 15))
>>> r[["campaign_id", "window", "direct_orders"]].values.tolist()
[[7, 7, 0], [7, 15, 1]]
>>> r["direct_revenue"].tolist()
[0.0, 99.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd

from .. import events as events_layer
from .. import schema
from ..backend import TableLike, execute
from ..contract import Duration, duration_days, events_input, window_days

__all__ = [
    "WINDOWS",
    "credited_purchases",
    "COLUMNS",
    "ad_attribution",
    "roi_curve",
    "multi_level_roi",
    "roi_by_window",
    "roi_ratio_interval",
    "total_roi_curve",
]


WINDOWS = (0, 7, 15, 30, 90)


def _touch_kinds(touch: str) -> list[str]:
    if touch == "click":
        return list(schema.AD_CLICKS)
    if touch == "view":
        return list(schema.AD_VIEWS)
    raise ValueError(f"touch must be 'click' or 'view', got {touch!r}")


def _latest(t: ibis.Table, key: Sequence[str], order: Sequence[Any]) -> ibis.Table:
    """Keep the first row per ``key`` under ``order`` (row_number is 0-based)."""
    w = ibis.window(group_by=list(key), order_by=list(order))
    return t.mutate(_rn=ibis.row_number().over(w)).filter(lambda x: x._rn == 0).drop("_rn")


def credited_purchases(events: TableLike, touch: str = "click", fission_depth: int = 3,
                       *, con: Any | None = None, partitions: int | None = None) -> ibis.Table:
    """Ibis expression: one row per purchase with its direct and fission candidates.

    Columns: ``pay_event_id``, ``person_id``, ``pay_ts``, ``amount_fen``,
    ``first_pay`` (1 if it is the person's first purchase), ``d_campaign``,
    ``d_days`` (days since the latest ad touch, null if none), ``f_campaign``,
    ``f_days`` (days since the person's arrival), ``f_depth``. ``partitions``: the
    window over all events that finds each person's arrival runs in this many
    person-hash partitions in turn (None: enough for the DuckDB memory limit,
    :func:`privdomain.events.person_partitions`).

    >>> from privdomain.backend import execute
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([(1, "2024-05-01 10:00", "search_ad_click", {"campaign_id": 3}),
    ...                    (1, "2024-05-04 10:00", "pay", {"order_id": 1, "amount_fen": 100})])
    >>> execute(credited_purchases(ev))[["d_campaign", "d_days", "first_pay"]].values.tolist()
    [[3, 3, 1]]
    """
    if fission_depth < 0:
        raise ValueError(f"fission_depth must be >= 0, got {fission_depth}")
    t = _ad_events(events, con)
    k = events_layer.person_partitions(events, partitions, con=con)
    kinds = _touch_kinds(touch)
    return _credited(t, kinds, con, _fission(t, kinds, fission_depth, con, _arrivals(t, con, k)))


def _ad_events(events: TableLike, con: Any | None) -> ibis.Table:
    t = events_layer.read(events, con=con)
    for col in ("event_id", "person_id", "ts", "touchpoint", "campaign_id", "amount_fen", "referrer_person_id"):
        if col not in t.columns:
            raise ValueError(f"events need a {col!r} column for ad attribution")
    return t


def _arrivals(t: ibis.Table, con: Any | None, parts: int) -> ibis.Table:
    """Persons whose first event carries a referrer (``f_person``, ``arr_ts``, ``ref``), as an in-memory table.

    Small, so it is computed once and joined as a memtable (the window over all events is the
    expensive step and would otherwise be repeated at every chain level); the window runs in
    ``parts`` person-hash partitions in turn.
    """
    id_type = "string" if t.person_id.type().is_string() else "int64"  # person ids as integers or as text
    frames = []
    for i in range(parts):
        tp = t.filter(events_layer.person_part(t.person_id, i, parts)) if parts > 1 else t
        first = _latest(tp.select("person_id", "ts", "event_id", "referrer_person_id"), ["person_id"],
                        ["ts", "event_id"])
        first = first.filter(first.referrer_person_id.notnull())
        frames.append(execute(first.select(f_person=first.person_id, arr_ts=first.ts,
                                           ref=first.referrer_person_id.cast(id_type)), con=con))
    edge_df = pd.concat(frames, ignore_index=True) if parts > 1 else frames[0]
    kind = object if id_type == "string" else "int64"
    edge_df = pd.DataFrame({"f_person": edge_df["f_person"].astype(kind),
                            "arr_ts": pd.to_datetime(edge_df["arr_ts"]).astype("datetime64[us]"),
                            "ref": edge_df["ref"].astype(kind)})
    return ibis.memtable(edge_df, schema={"f_person": id_type, "arr_ts": "timestamp(6)", "ref": id_type})


def _fission(t: ibis.Table, kinds: list[str], fission_depth: int, con: Any | None,
             arrivals: ibis.Table) -> ibis.Table | None:
    """Persons who arrived through a chain of shares that started at an ad, as an in-memory table.

    ``fp`` (the person), ``f_campaign`` (the ad of the nearest ancestor within
    ``fission_depth`` links who shared it), ``f_depth`` and ``arr_ts``. Small (one row
    per referred person), so it is computed once and joined to each person partition's
    purchases, rather than joining every share to every ad touch again in each partition.
    None when ``fission_depth`` is 0.
    """
    if fission_depth < 1:
        return None
    ads = t.filter(t.touchpoint.isin(kinds) & t.campaign_id.notnull()).select(
        a_person=t.person_id, a_ts=t.ts, a_id=t.event_id, a_campaign=t.campaign_id.cast("int64"))
    # qualifying shares: the ad shared and an ad touch on it by the sharer at or before the share
    shares = t.filter(t.touchpoint == "share").select(
        s_person=t.person_id, s_ts=t.ts, s_id=t.event_id, s_campaign=t.campaign_id.cast("int64"))
    sj = shares.inner_join(ads, [shares.s_person == ads.a_person, ads.a_ts <= shares.s_ts])
    sj = sj.filter(sj.s_campaign.isnull() | (sj.s_campaign == sj.a_campaign))
    sj = _latest(sj, ["s_id"], [ibis.desc(sj.a_ts), ibis.desc(sj.a_id)])
    qshares = sj.select(q_person=sj.s_person, q_ts=sj.s_ts, q_id=sj.s_id,
                        q_campaign=ibis.coalesce(sj.s_campaign, sj.a_campaign))
    edges = arrivals
    ej = edges.left_join(qshares, [edges.ref == qshares.q_person, qshares.q_ts <= edges.arr_ts])
    ej = _latest(ej, ["f_person"], [ibis.desc(ej.q_ts), ibis.desc(ej.q_id)])
    edge = ej.select(e_child=ej.f_person, e_parent=ej.ref, e_ad=ej.q_campaign)
    # walk up the chain: nearest ancestor that shared an ad
    chain = edge.select(c_person=edge.e_child, parent1=edge.e_parent, ad1=edge.e_ad)
    for k in range(2, fission_depth + 1):
        e = edge.select(**{f"x{k}": edge.e_child, f"parent{k}": edge.e_parent, f"ad{k}": edge.e_ad})
        chain = chain.left_join(e, chain[f"parent{k - 1}"] == e[f"x{k}"]).drop(f"x{k}")
    ad = ibis.coalesce(*[chain[f"ad{k}"] for k in range(1, fission_depth + 1)]) if fission_depth > 1 \
        else chain.ad1
    depth = ibis.cases(*[(chain[f"ad{k}"].notnull(), k) for k in range(1, fission_depth + 1)], else_=None)
    fis = chain.select(fp=chain.c_person, f_campaign=ad, f_depth=depth.cast("int64"))
    fis = fis.filter(fis.f_campaign.notnull())
    fis = fis.inner_join(arrivals, fis.fp == arrivals.f_person).select("fp", "f_campaign", "f_depth", "arr_ts")
    schema_ = fis.schema()
    df = execute(fis, con=con)
    df["arr_ts"] = pd.to_datetime(df["arr_ts"]).astype("datetime64[us]")
    return ibis.memtable(df, schema={**dict(schema_.items()), "arr_ts": "timestamp(6)"})


def _credited(t: ibis.Table, kinds: list[str], con: Any | None, fission: ibis.Table | None,
              part: tuple[int, int] | None = None) -> ibis.Table:
    """:func:`credited_purchases` of the purchases of person partition ``part = (i, k)`` (all with None).

    ``fission``: :func:`_fission` of the same events (None: no fission credit)."""
    ads = t.filter(t.touchpoint.isin(kinds) & t.campaign_id.notnull()).select(
        a_person=t.person_id, a_ts=t.ts, a_id=t.event_id, a_campaign=t.campaign_id.cast("int64"))
    pays = t.filter(t.touchpoint == schema.PURCHASE)
    own_ads = ads
    if part is not None and part[1] > 1:
        pays = pays.filter(events_layer.person_part(pays.person_id, *part))
        own_ads = ads.filter(events_layer.person_part(ads.a_person, *part))
    pays = pays.select(
        pay_event_id=pays.event_id, person_id=pays.person_id, pay_ts=pays.ts,
        amount_fen=pays.amount_fen.cast("int64").fill_null(0))
    # direct: the latest ad touch at or before the pay
    j = pays.left_join(own_ads, [pays.person_id == own_ads.a_person, own_ads.a_ts <= pays.pay_ts])
    j = _latest(j, ["pay_event_id"], [ibis.desc(j.a_ts), ibis.desc(j.a_id)])
    direct = j.select(
        "pay_event_id", "person_id", "pay_ts", "amount_fen",
        d_campaign=j.a_campaign,
        d_days=j.pay_ts.date().delta(j.a_ts.date(), unit="day"),
    )
    if fission is not None:
        out = direct.left_join(fission, direct.person_id == fission.fp)
        out = out.mutate(f_days=out.pay_ts.date().delta(out.arr_ts.date(), unit="day")).drop("fp", "arr_ts")
    else:
        out = direct.mutate(f_campaign=ibis.null("int64"), f_depth=ibis.null("int64"), f_days=ibis.null("int64"))
    w = ibis.window(group_by=out.person_id, order_by=[out.pay_ts, out.pay_event_id])
    return out.mutate(first_pay=(ibis.row_number().over(w) == 0).cast("int64"))


def _pay_groups(cps: list[ibis.Table], con: Any | None, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Purchases counted per (direct ad, days since its touch, fission ad, days since arrival, *extra).

    One pass over the purchases of each person partition (``cps``), the counts added up;
    the windows are then applied to this small frame.
    """
    keys = ["d_campaign", "d_days", "f_campaign", "f_days", *extra]

    def counts(part: tuple[int, int]) -> pd.DataFrame:
        cp = cps[part[0]]
        out = execute(cp.group_by(keys).agg(orders=cp.count(), revenue_fen=cp.amount_fen.sum()), con=con)
        return out if len(cps) == 1 else out.astype({c: "float64" for c in keys})  # nullable keys, one dtype

    return events_layer.sum_over_partitions(counts, len(cps), keys)


def _acquired_by(cp: ibis.Table, horizon: int = 90) -> ibis.Table:
    """``cp`` with ``acq_campaign``: the campaign credited with its buyer's first purchase within ``horizon`` days.

    The direct ad if its touch was fewer than ``horizon`` days before, else the fission ad
    if she arrived fewer than ``horizon`` days before; null when neither (on every
    purchase of the buyer, so her later purchases can be counted for that campaign).
    """
    is_d = cp.d_days.notnull() & (cp.d_days < horizon)
    is_f = ~is_d & cp.f_days.notnull() & (cp.f_days < horizon)
    first = cp.first_pay == 1
    own = ibis.cases((first & is_d, cp.d_campaign), (first & is_f, cp.f_campaign), else_=ibis.null("int64"))
    return cp.mutate(acq_campaign=own.max().over(ibis.window(group_by=cp.person_id)))


def _per_window(groups: pd.DataFrame, windows: Sequence[int]) -> pd.DataFrame:
    """Long frame: campaign_id, window, kind (direct / fission), orders, revenue_fen."""
    parts = []
    d_days = groups["d_days"].astype("float64")
    f_days = groups["f_days"].astype("float64")
    for w in windows:
        lim = max(int(w), 1)
        is_d = (d_days < lim).to_numpy()  # NaN compares False
        is_f = ~is_d & (f_days < lim).to_numpy()
        for kind, mask, col in (("direct", is_d, "d_campaign"), ("fission", is_f, "f_campaign")):
            x = groups.loc[mask, [col, "orders", "revenue_fen"]].rename(columns={col: "campaign_id"})
            x = x.groupby("campaign_id", as_index=False)[["orders", "revenue_fen"]].sum()
            if len(x):
                parts.append(x.assign(kind=kind, window=int(w)))
    cols = ["campaign_id", "window", "kind", "orders", "revenue_fen"]
    out = pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame({c: [] for c in cols})
    return out.astype({"campaign_id": "int64", "orders": "int64", "revenue_fen": "int64"})


def _ad_volume(events: TableLike, con: Any | None) -> pd.DataFrame:
    """Exposures, clicks, clickers and the most frequent channel (ties: the first name) per campaign.

    The channel is picked from per-(campaign, channel) counts rather than with a ``mode``
    aggregate, which Ibis does not compile on every engine (Spark).
    """
    t = events_layer.read(events, con=con)
    ad = t.filter(t.campaign_id.notnull() & t.touchpoint.isin(schema.AD_VIEWS + schema.AD_CLICKS))
    vol = execute(ad.group_by(campaign_id=ad.campaign_id.cast("int64")).agg(
        exposures=ad.touchpoint.isin(schema.AD_VIEWS).cast("int64").sum(),
        clicks=ad.touchpoint.isin(schema.AD_CLICKS).cast("int64").sum(),
        clickers=ad.person_id.nunique(where=ad.touchpoint.isin(schema.AD_CLICKS)),
    ), con=con)
    ch = execute(ad.group_by(campaign_id=ad.campaign_id.cast("int64"), channel=ad.channel).agg(n=ad.count()),
                 con=con)
    ch = ch.dropna(subset=["channel"]).sort_values(["campaign_id", "n", "channel"], ascending=[True, False, True],
                                                   kind="stable").drop_duplicates("campaign_id")
    return vol.merge(ch[["campaign_id", "channel"]], on="campaign_id", how="left")


def _campaign_frame(events: TableLike, campaigns: Any | None, con: Any | None) -> pd.DataFrame:
    vol = _ad_volume(events, con)
    vol["campaign_id"] = vol["campaign_id"].astype("int64")
    if campaigns is None:
        vol["spend"] = np.nan
        return vol
    camp = campaigns if isinstance(campaigns, pd.DataFrame) else execute(events_layer.table(campaigns, "campaigns", con=con))
    for col in ("campaign_id", "spend_fen"):
        if col not in camp.columns:
            raise ValueError(f"campaigns need a {col!r} column")
    camp = camp[["campaign_id", "spend_fen"] + (["channel"] if "channel" in camp.columns else [])].copy()
    camp["campaign_id"] = camp["campaign_id"].astype("int64")
    camp["spend"] = camp["spend_fen"].astype("float64") / 100.0
    out = camp.drop(columns="spend_fen").merge(vol, on="campaign_id", how="outer", suffixes=("", "_ev"))
    if "channel_ev" in out.columns:
        out["channel"] = out["channel"].fillna(out["channel_ev"])
        out = out.drop(columns="channel_ev")
    return out


COLUMNS = ["level", "campaign_id", "channel", "window", "exposures", "clicks", "clickers", "spend",
           "direct_orders", "direct_revenue", "fission_orders", "fission_revenue", "orders", "revenue", "roi"]


def ad_attribution(events: TableLike, campaigns: Any | None = None, windows: Sequence[Duration | int] = WINDOWS,
                   touch: str = "click", fission_depth: int = 3, level: str = "campaign",
                   *, con: Any | None = None, partitions: int | None = None) -> pd.DataFrame:
    """Orders and revenue credited to each ad at each lookback window (see the module doc).

    Parameters
    ----------
    events
        Events (frame, dataset path or Ibis table).
    campaigns
        The campaigns table (``campaign_id``, ``spend_fen``, ``channel``) as a frame or
        dataset path; without it spend and ROI are NaN.
    windows
        Lookback windows: durations in whole days (``"7D"``; ``"0D"`` = same day) or
        bare numbers of days; the ``window`` column holds them in days.
    touch
        ``"click"`` or ``"view"``: which ad touches earn direct credit.
    fission_depth
        How many referral levels to follow (0 = no fission credit).
    level
        ``"campaign"`` (one row per campaign and window), ``"channel"`` (summed per ad
        channel) or ``"both"``.
    partitions
        Run the per-person windows (each person's latest ad touch before a pay, first
        event, first purchase) in this many person-hash partitions in turn and add up
        the order and revenue counts (a person is in one partition); None picks enough
        for the DuckDB memory limit (:func:`privdomain.events.person_partitions`).
        The result does not depend on it.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`: ``level``, ``campaign_id`` (-1 on channel rows),
        ``channel``, ``window``, ``exposures``, ``clicks``, ``clickers``, ``spend``
        (yuan), ``direct_orders``, ``direct_revenue``, ``fission_orders``,
        ``fission_revenue``, ``orders``, ``revenue`` (yuan), ``roi``. ``.attrs``:
        ``purchases``, ``revenue`` (all purchases) and ``unattributed_purchases`` at
        the longest window.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([
    ...     (1, "2024-05-01 10:00", "moments_ad_click", {"campaign_id": 7}),
    ...     (1, "2024-05-01 10:01", "share", {"campaign_id": 7}),
    ...     (2, "2024-05-02 09:00", "mp_visit", {"referrer_person_id": 1}),
    ...     (2, "2024-05-02 10:00", "pay", {"order_id": 1, "amount_fen": 5000})])
    >>> r = ad_attribution(ev, windows=(0, 7))
    >>> r[["window", "direct_orders", "fission_orders"]].values.tolist()
    [[0, 0, 1], [7, 0, 1]]
    """
    if level not in ("campaign", "channel", "both"):
        raise ValueError(f"level must be 'campaign', 'channel' or 'both', got {level!r}")
    windows = sorted(set(window_days(windows)))
    if any(w < 0 for w in windows):
        raise ValueError(f"windows must be >= 0 days, got {windows}")
    if fission_depth < 0:
        raise ValueError(f"fission_depth must be >= 0, got {fission_depth}")
    parts = events_layer.person_partitions(events, partitions, con=con)
    groups = _pay_groups(_partition_credits(events, touch, fission_depth, con, parts), con)
    return _ad_table(events, campaigns, windows, touch, fission_depth, level, con, groups, parts)


def _partition_credits(events: TableLike, touch: str, fission_depth: int, con: Any | None,
                       parts: int) -> list[ibis.Table]:
    """:func:`credited_purchases` of each person-hash partition of ``parts``."""
    t, kinds = _ad_events(events, con), _touch_kinds(touch)
    fission = _fission(t, kinds, fission_depth, con, _arrivals(t, con, parts))
    return [_credited(t, kinds, con, fission, (i, parts)) for i in range(parts)]


def _ad_table(events: TableLike, campaigns: Any | None, windows: list[int], touch: str, fission_depth: int,
              level: str, con: Any | None, groups: pd.DataFrame, parts: int) -> pd.DataFrame:
    """:func:`ad_attribution`'s rows from the counted purchases (:func:`_pay_groups`)."""
    long = _per_window(groups, windows)
    totals = {"n": int(groups["orders"].sum()), "fen": int(groups["revenue_fen"].sum())}
    camp = _campaign_frame(events, campaigns, con)
    if not long.empty:
        wide = long.pivot_table(index=["campaign_id", "window"], columns="kind", values=["orders", "revenue_fen"],
                                aggfunc="sum", fill_value=0)
        wide.columns = [f"{k}_{v}" for v, k in wide.columns]
        wide = wide.reset_index()
    else:
        wide = pd.DataFrame(columns=["campaign_id", "window"])
    for k in ("direct", "fission"):
        for v in ("orders", "revenue_fen"):
            if f"{k}_{v}" not in wide.columns:
                wide[f"{k}_{v}"] = 0
    ids = sorted(set(camp["campaign_id"]).union(wide["campaign_id"].astype("int64")))
    grid = pd.MultiIndex.from_product([ids, windows], names=["campaign_id", "window"]).to_frame(index=False)
    wide["campaign_id"] = wide["campaign_id"].astype("int64")
    wide["window"] = wide["window"].astype("int64")
    out = grid.merge(wide, on=["campaign_id", "window"], how="left").merge(camp, on="campaign_id", how="left")
    for c in ("exposures", "clicks", "clickers", "direct_orders", "fission_orders"):
        out[c] = out[c].fillna(0).astype("int64")
    out["direct_revenue"] = out["direct_revenue_fen"].fillna(0).astype("float64") / 100.0
    out["fission_revenue"] = out["fission_revenue_fen"].fillna(0).astype("float64") / 100.0
    out["level"] = "campaign"
    frames = []
    if level in ("campaign", "both"):
        frames.append(out)
    if level in ("channel", "both"):
        ch = out.assign(channel=out["channel"].fillna("unknown")).groupby(["channel", "window"], as_index=False)[
            ["exposures", "clicks", "clickers", "spend", "direct_orders", "direct_revenue", "fission_orders",
             "fission_revenue"]].sum(min_count=1)
        for c in ("exposures", "clicks", "clickers", "direct_orders", "fission_orders"):
            ch[c] = ch[c].fillna(0).astype("int64")
        ch["level"] = "channel"
        ch["campaign_id"] = -1
        frames.append(ch)
    res = pd.concat(frames, ignore_index=True)
    res["orders"] = res["direct_orders"] + res["fission_orders"]
    res["revenue"] = res["direct_revenue"] + res["fission_revenue"]
    with np.errstate(divide="ignore", invalid="ignore"):
        res["roi"] = np.where(res["spend"] > 0, res["revenue"] / res["spend"], np.nan)
    res = res[COLUMNS].sort_values(["level", "campaign_id", "channel", "window"]).reset_index(drop=True)
    res["campaign_id"] = res["campaign_id"].astype("int64")
    longest = res[(res.level == res.level.iloc[0]) & (res.window == windows[-1])] if len(res) else res
    credited = int(longest["orders"].sum()) if len(longest) else 0
    res.attrs = {"purchases": int(totals["n"]), "revenue": float(totals["fen"]) / 100.0,
                 "unattributed_purchases": int(totals["n"]) - credited, "touch": touch,
                 "fission_depth": fission_depth, "partitions": parts}
    return res


@events_input(renamed={"max_days": "horizon"})
def roi_curve(events: TableLike, campaigns: Any | None = None, horizon: Duration = "90D", touch: str = "click",
              fission_depth: int = 3, *, con: Any | None = None) -> pd.DataFrame:
    """Cumulative credited revenue and ROI by day since the touch (the stepwise rise).

    Row ``day = d`` holds the revenue of window ``d + 1`` (days since the touch
    ``<= d``; fission purchases counted from the friend's arrival day), for
    ``d = 0 .. D - 1`` where ``D`` is ``horizon`` in whole days (a duration, ``"90D"``).

    Returns ``campaign_id``, ``day``, ``revenue`` (cumulative, yuan), ``spend``,
    ``roi``, ``roi_over_same_day``.

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([
    ...     (1, "2024-05-01 10:00", "moments_ad_click", {"campaign_id": 7}),
    ...     (1, "2024-05-01 12:00", "pay", {"order_id": 1, "amount_fen": 1000}),
    ...     (1, "2024-05-03 10:00", "pay", {"order_id": 2, "amount_fen": 3000})])
    >>> roi_curve(ev, horizon="4D")["revenue"].tolist()
    [10.0, 10.0, 40.0, 40.0]
    """
    max_days = int(np.ceil(duration_days(horizon, name="horizon")))
    cp = credited_purchases(events, touch=touch, fission_depth=fission_depth, con=con)
    is_d = cp.d_days.notnull() & (cp.d_days < max_days)
    x = cp.mutate(
        campaign_id=ibis.cases((is_d, cp.d_campaign), else_=cp.f_campaign),
        day=ibis.cases((is_d, cp.d_days), else_=cp.f_days),
    )
    x = x.filter(x.campaign_id.notnull() & (x.day < max_days))
    daily = execute(x.group_by(["campaign_id", "day"]).agg(fen=x.amount_fen.sum()), con=con)
    camp = _campaign_frame(events, campaigns, con)[["campaign_id", "spend"]]
    ids = sorted(set(camp["campaign_id"]).union(daily["campaign_id"].astype("int64")))
    grid = pd.MultiIndex.from_product([ids, range(max_days)], names=["campaign_id", "day"]).to_frame(index=False)
    daily = daily.astype({"campaign_id": "int64", "day": "int64"})
    out = grid.merge(daily, on=["campaign_id", "day"], how="left").fillna({"fen": 0})
    out["revenue"] = out.groupby("campaign_id")["fen"].cumsum().astype("float64") / 100.0
    out = out.merge(camp, on="campaign_id", how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["roi"] = np.where(out["spend"] > 0, out["revenue"] / out["spend"], np.nan)
        same = out.groupby("campaign_id")["revenue"].transform("first")
        out["roi_over_same_day"] = np.where(same > 0, out["revenue"] / same, np.nan)
    return out[["campaign_id", "day", "revenue", "spend", "roi", "roi_over_same_day"]].reset_index(drop=True)


def multi_level_roi(events: TableLike, campaigns: Any | None = None, touch: str = "click",
                    fission_depth: int = 3, *, con: Any | None = None,
                    partitions: int | None = None) -> pd.DataFrame:
    """Immediate, short-term and long-term ROI side by side, per campaign.

    ``roi_same_day``, ``roi_7d``, ``roi_15d``, ``roi_30d``, ``roi_90d`` (credited
    revenue / spend at each window), ``long_over_immediate_30`` and
    ``long_over_immediate_90`` (revenue ratio of the 30 / 90-day window to the same
    day, defined without spend), ``revenue_same_day`` ... ``revenue_90d``,
    ``acquired`` (persons whose first purchase is credited to the campaign within
    90 days), ``repurchase_orders`` and ``repurchase_revenue`` (all their later
    purchases in the data, credited or not). ``partitions`` as in :func:`ad_attribution`
    (the counts of each person partition are added up).

    Examples
    --------
    >>> from privdomain.examples import events_frame
    >>> ev = events_frame([
    ...     (1, "2024-05-01 10:00", "moments_ad_click", {"campaign_id": 7}),
    ...     (1, "2024-05-01 12:00", "pay", {"order_id": 1, "amount_fen": 1000}),
    ...     (1, "2024-05-20 10:00", "pay", {"order_id": 2, "amount_fen": 2000})])
    >>> r = multi_level_roi(ev)
    >>> r[["campaign_id", "long_over_immediate_30", "acquired", "repurchase_revenue"]].values.tolist()
    [[7.0, 3.0, 1.0, 20.0]]
    """
    if fission_depth < 0:
        raise ValueError(f"fission_depth must be >= 0, got {fission_depth}")
    k = events_layer.person_partitions(events, partitions, con=con)
    # one pass over each partition's credited purchases: the window counts and, per
    # purchase, whether it is its buyer's first and the campaign that acquired her
    groups = _pay_groups([_acquired_by(cp) for cp in _partition_credits(events, touch, fission_depth, con, k)],
                         con, extra=("first_pay", "acq_campaign"))
    keys = ["d_campaign", "d_days", "f_campaign", "f_days"]
    ad_groups = groups.astype({c: "float64" for c in keys}).groupby(keys, as_index=False, dropna=False)[
        ["orders", "revenue_fen"]].sum()
    aa = _ad_table(events, campaigns, list(WINDOWS), touch, fission_depth, "campaign", con, ad_groups, k)
    names = {0: "same_day", 7: "7d", 15: "15d", 30: "30d", 90: "90d"}
    aa = aa.assign(w=aa["window"].map(names))
    # reindex: a scenario without ad touches still gets every column (and no rows)
    wide_roi = aa.pivot(index="campaign_id", columns="w", values="roi").reindex(columns=list(names.values()))
    wide_rev = aa.pivot(index="campaign_id", columns="w", values="revenue").reindex(columns=list(names.values()))
    wide_roi, wide_rev = wide_roi.add_prefix("roi_"), wide_rev.add_prefix("revenue_")
    base = aa[aa.window == 0].set_index("campaign_id")[["channel", "spend"]]
    out = base.join(wide_roi).join(wide_rev)
    with np.errstate(divide="ignore", invalid="ignore"):
        for w in ("30d", "90d"):
            out[f"long_over_immediate_{w[:-1]}"] = np.where(
                out["revenue_same_day"] > 0, out[f"revenue_{w}"] / out["revenue_same_day"], np.nan)
    # acquisition: a person's first purchase credited within 90 days; then their later purchases
    acquired = groups[groups["acq_campaign"].notna()].rename(columns={"acq_campaign": "campaign_id"})
    first = acquired["first_pay"] == 1
    acq = acquired[first].groupby("campaign_id", as_index=False)["orders"].sum().rename(
        columns={"orders": "acquired"})
    rep = acquired[~first].groupby("campaign_id", as_index=False)[["orders", "revenue_fen"]].sum().rename(
        columns={"orders": "repurchase_orders", "revenue_fen": "fen"})
    for f in (acq, rep):
        f["campaign_id"] = f["campaign_id"].astype("int64")
    out = out.join(acq.set_index("campaign_id")).join(rep.set_index("campaign_id"))
    out["repurchase_revenue"] = out["fen"].fillna(0).astype("float64") / 100.0
    for c in ("acquired", "repurchase_orders"):
        out[c] = out[c].fillna(0).astype("int64")
    cols = ["channel", "spend"] + [f"roi_{n}" for n in names.values()] + \
        ["long_over_immediate_30", "long_over_immediate_90"] + [f"revenue_{n}" for n in names.values()] + \
        ["acquired", "repurchase_orders", "repurchase_revenue"]
    return out[cols].reset_index()


def roi_by_window(ad_credit: pd.DataFrame) -> pd.DataFrame:
    """All campaigns together at each window, from campaign rows of
    :func:`privdomain.attribution.ad_attribution`.

    Returns ``window``, ``spend``, ``orders``, ``revenue``, ``direct_revenue``,
    ``fission_revenue`` (yuan), ``roi`` = revenue / spend (投资回报率) and
    ``over_same_day`` = revenue / revenue of the shortest window (for window 0: the
    same day), the long-tail multiple the case articles quote.

    >>> aa = pd.DataFrame({"level": "campaign", "campaign_id": [1, 1, 2, 2], "window": [0, 30, 0, 30],
    ...     "spend": [100.0, 100.0, 50.0, 50.0], "orders": [1, 3, 0, 1], "revenue": [60.0, 150.0, 0.0, 30.0],
    ...     "direct_revenue": [60.0, 140.0, 0.0, 30.0], "fission_revenue": [0.0, 10.0, 0.0, 0.0]})
    >>> roi_by_window(aa)[["window", "roi", "over_same_day"]].values.tolist()
    [[0.0, 0.4, 1.0], [30.0, 1.2, 3.0]]
    """
    rows = ad_credit[ad_credit["level"] == "campaign"] if "level" in ad_credit else ad_credit
    first = rows.drop_duplicates("campaign_id")
    spend = float(first["spend"].sum())
    g = rows.groupby("window", as_index=False)[["orders", "revenue", "direct_revenue", "fission_revenue"]].sum()
    g.insert(1, "spend", spend)
    g["roi"] = g["revenue"] / spend if spend > 0 else np.nan
    base = g["revenue"].iloc[0] if len(g) else np.nan
    g["over_same_day"] = g["revenue"] / base if base else np.nan
    return g.reset_index(drop=True)


def roi_ratio_interval(campaign_rows: pd.DataFrame, draws: int = 2000, seed: int = 0,
                       long: int = 30, short: int = 0) -> tuple[float, float, int]:
    """95% bootstrap interval (resampling campaigns) of ``revenue(long) / revenue(short)``
    from campaign rows of :func:`privdomain.attribution.ad_attribution`; returns
    ``(low, high, campaigns)``, NaN bounds with fewer than two campaigns.

    >>> rows = pd.DataFrame({"campaign_id": [1, 1, 2, 2, 3, 3], "window": [0, 30] * 3,
    ...                      "revenue": [10.0, 20.0, 10.0, 30.0, 10.0, 25.0]})
    >>> lo, hi, k = roi_ratio_interval(rows)
    >>> k, 2.0 <= lo <= hi <= 3.0
    (3, True)
    """
    wide = campaign_rows.pivot_table(index="campaign_id", columns="window", values="revenue", aggfunc="sum")
    if long not in wide or short not in wide or len(wide) < 2:
        return float("nan"), float("nan"), int(len(wide))
    a, b = wide[long].fillna(0).to_numpy(float), wide[short].fillna(0).to_numpy(float)
    idx = np.random.default_rng(seed).integers(0, len(wide), size=(draws, len(wide)))
    num, den = a[idx].sum(axis=1), b[idx].sum(axis=1)
    ratio = num[den > 0] / den[den > 0]
    if len(ratio) < draws // 2:
        return float("nan"), float("nan"), int(len(wide))
    lo, hi = np.quantile(ratio, [0.025, 0.975])
    return float(lo), float(hi), int(len(wide))


def total_roi_curve(curve: pd.DataFrame) -> pd.DataFrame:
    """All campaigns together by day since the touch, from
    :func:`privdomain.attribution.roi_curve`: ``day``, ``revenue`` (cumulative yuan),
    ``roi`` = revenue / total spend, ``over_same_day`` = revenue / day-0 revenue.

    >>> c = pd.DataFrame({"campaign_id": [1, 1, 2, 2], "day": [0, 1, 0, 1], "revenue": [10.0, 30.0, 0.0, 10.0],
    ...                   "spend": [20.0, 20.0, 20.0, 20.0]})
    >>> total_roi_curve(c)[["day", "roi", "over_same_day"]].values.tolist()
    [[0.0, 0.25, 1.0], [1.0, 1.0, 4.0]]
    """
    spend = float(curve.drop_duplicates("campaign_id")["spend"].sum())
    g = curve.groupby("day", as_index=False)["revenue"].sum()
    g["roi"] = g["revenue"] / spend if spend > 0 else np.nan
    base = g["revenue"].iloc[0] if len(g) else np.nan
    g["over_same_day"] = g["revenue"] / base if base else np.nan
    return g
