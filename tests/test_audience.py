"""privdomain.audience: tags and selection against a per-person reference, composition laws, overlaps, export."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from privdomain import audience, privacy, schema
from privdomain.audience import Cohort, Did, InFunnel, Segment, Tag
from privdomain.audience.tags import PASSIVE_TOUCHPOINTS, RECENT_DAYS, WINDOWS
from privdomain.boards import funnel
from privdomain.errors import UsageError
from privdomain.events import NoPurchasesWarning
from privdomain.lifecycle import stages as lifecycle
from privdomain.simulate import simulate

AS_OF = "2024-10-31"
KEY = "audience-test-key-0123456789"


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("aud") / "beauty"
    simulate("beauty", persons=1500, seed=3, out=root)
    return root


@pytest.fixture(scope="module")
def raw(data):
    ev = pd.read_parquet(data / "events")
    ev = ev.astype({"touchpoint": object, "channel": object, "id_type": object})
    local = ev["ts"].dt.tz_convert(schema.TIMEZONE).dt.tz_localize(None).dt.normalize()
    ev["d"] = (local - pd.Timestamp("1970-01-01")).dt.days
    d0 = (pd.Timestamp(AS_OF) - pd.Timestamp("1970-01-01")).days
    return ev[ev["d"] <= d0].copy(), d0


@pytest.fixture(scope="module")
def tg(data):
    return audience.tags(data, as_of=AS_OF)


def _reference(ev: pd.DataFrame, d0: int) -> dict[int, dict]:
    """Every behaviour and purchase tag, person by person."""
    out = {}
    for pid, g in ev.groupby("person_id"):
        r: dict = {"first": g["d"].min(), "last": g["d"].max()}
        for w in WINDOWS:
            recent = g[g["d"] > d0 - w]
            r[f"touchpoints_{w}d"] = recent["touchpoint"].nunique()
            r[f"channels_{w}d"] = recent["channel"].nunique()
        r["since"] = {tp: d0 - gg["d"].max() for tp, gg in g.groupby("touchpoint")}
        pay = g[g["touchpoint"] == "pay"]
        days = sorted(set(pay["d"]))
        r["purchase_days"] = len(days)
        if not days:
            r["buyer_type"] = "non_buyer"
        elif days[-1] <= d0 - RECENT_DAYS:
            r["buyer_type"] = "lapsed"
        elif days[0] > d0 - RECENT_DAYS:
            r["buyer_type"] = "new"
        else:
            r["buyer_type"] = "returning"
        act = g[(g["d"] > d0 - RECENT_DAYS) & ~g["touchpoint"].isin(PASSIVE_TOUCHPOINTS)]
        if len(act):
            counts = act["channel"].value_counts()
            best = counts.max()
            r["preferred"] = min(c for c, n in counts.items() if n == best)
        else:
            r["preferred"] = None
        out[int(pid)] = r
    return out


def test_tags_agree_with_a_per_person_reference(data, raw, tg):
    ev, d0 = raw
    ref = _reference(ev, d0)
    assert tg["person_id"].tolist() == sorted(ref)
    assert tg["person_id"].is_unique
    for row in tg.itertuples(index=False):
        r = ref[row.person_id]
        assert (row.first_active - pd.Timestamp("1970-01-01").date()).days == r["first"]
        assert row.days_since_active == d0 - r["last"]
        for w in WINDOWS:
            assert getattr(row, f"touchpoints_{w}d") == r[f"touchpoints_{w}d"]
            assert getattr(row, f"channels_{w}d") == r[f"channels_{w}d"]
        for tp in schema.TOUCHPOINTS:
            got = getattr(row, f"days_since_{tp}")
            assert (None if pd.isna(got) else int(got)) == r["since"].get(tp), (row.person_id, tp)
        assert row.purchase_days == r["purchase_days"]
        assert row.repeat_buyer == (r["purchase_days"] >= 2)
        assert row.buyer_type == r["buyer_type"]
        assert row.preferred_channel == r["preferred"], row.person_id
        assert row.live_viewer == (r["since"].get("live_view", 10**9) < RECENT_DAYS)
        assert row.article_reader == (r["since"].get("oa_article_open", 10**9) < RECENT_DAYS)
        assert row.guide_added == ("wecom_add" in r["since"])
    # the families not built here: CRM/basic copied, stage from lifecycle, RFM over buyers only
    persons = pd.read_parquet(data / "persons.parquet").set_index("person_id")
    for col in ("gender", "age_band", "city_tier", "device", "member_level"):
        assert tg[col].tolist() == persons.loc[tg["person_id"], col].tolist()
    assert "name" not in tg.columns and "phone" not in tg.columns
    st = lifecycle.stages_at(data, AS_OF)
    assert tg["stage"].tolist() == st.set_index("person_id").loc[tg["person_id"], "stage"].tolist()
    assert (tg["rfm_segment"].notna() == (tg["purchase_days"] > 0)).all()
    assert tg["buyer_type"].nunique() >= 3 and tg["live_viewer"].any() and tg["guide_added"].any()


def test_tags_without_persons_have_no_basic_columns_and_missing_columns_are_absent(data):
    ev = pd.read_parquet(data / "events")
    bare = audience.tags(ev, as_of=AS_OF)
    assert "gender" not in bare.columns and "stage" in bare.columns
    persons = pd.read_parquet(data / "persons.parquet")[["person_id", "device"]]
    some = audience.tags(ev, as_of=AS_OF, persons=persons)
    assert "device" in some.columns and "gender" not in some.columns and "member_level" not in some.columns
    assert some["device"].notna().all()


def test_tags_leave_the_input_files_unchanged(data):
    before = _hashes(data)
    audience.tags(data, as_of="2024-06-30")
    assert _hashes(data) == before


def test_selection_agrees_with_a_per_person_reference(raw, tg):
    ev, d0 = raw
    cond = (Tag("stage") == "dormant") | (Did("live_view", within_days=30) & ~Did("pay", within_days=90))
    seg = audience.select(tg, cond)
    stage = dict(zip(tg["person_id"], tg["stage"]))
    want = []
    for pid, g in ev.groupby("person_id"):
        live = ((g["touchpoint"] == "live_view") & (g["d"] > d0 - 30)).any()
        pay = ((g["touchpoint"] == "pay") & (g["d"] > d0 - 90)).any()
        if stage[pid] == "dormant" or (live and not pay):
            want.append(int(pid))
    assert seg.person_ids.tolist() == sorted(want)
    assert seg.size == len(want) > 0
    assert seg.population == len(tg)
    assert "did(live_view, within_days=30)" in seg.condition and "stage == 'dormant'" in seg.condition


def test_tag_tests_cohorts_and_funnels_match_direct_computation(data, tg):
    seg = audience.select(tg, Tag("city_tier").between(1, 2) & Tag("device").isin(["ios"]))
    want = tg[(tg["city_tier"] <= 2) & (tg["device"] == "ios")]["person_id"]
    assert seg.person_ids.tolist() == sorted(want.tolist())
    coh = audience.select(tg, Cohort("2024-03-01", "2024-03-31"))
    fa = pd.to_datetime(tg["first_active"])
    assert coh.person_ids.tolist() == tg[(fa >= "2024-03-01") & (fa <= "2024-03-31")]["person_id"].tolist()
    steps = ["mp_visit", "add_to_cart", "pay"]
    drop = audience.select(tg, InFunnel(data, steps, "7D", dropped_at=2))
    ids = set(funnel.funnel_audience(data, steps, "7D", dropped_at=2))
    assert drop.person_ids.tolist() == sorted(ids & set(tg["person_id"]))
    assert drop.size > 0


CONDITIONS = [
    Tag("stage") == "dormant",
    Tag("rfm_segment") == "champions",  # null for non-buyers
    Tag("member_level").isnull(),
    Tag("live_viewer"),
    Did("pay", within_days=90),
    Did("wecom_add"),
    (Tag("buyer_type") != "non_buyer") & Did("oa_article_open", within_days=30),
    Cohort(end="2024-04-30") | (Tag("preferred_channel") == "guide"),
]


@pytest.mark.parametrize("cond", CONDITIONS, ids=[str(c) for c in CONDITIONS])
def test_composition_laws(tg, cond):
    everyone = sorted(tg["person_id"].tolist())
    a = audience.select(tg, cond)
    assert audience.select(tg, cond & ~cond).size == 0
    assert audience.select(tg, cond | ~cond).person_ids.tolist() == everyone
    assert a.size + audience.select(tg, ~cond).size == len(everyone)
    assert audience.select(tg, ~~cond).person_ids.tolist() == a.person_ids.tolist()


def test_overlap_matches_sets(tg):
    segs = {"dormant": audience.select(tg, Tag("stage") == "dormant"),
            "live": audience.select(tg, Tag("live_viewer")),
            "guide": audience.select(tg, Tag("guide_added"))}
    ov = audience.overlap(segs)
    sets = {k: set(v.person_ids.tolist()) for k, v in segs.items()}
    for a in sets:
        for b in sets:
            assert ov.pairwise.loc[a, b] == len(sets[a] & sets[b])
    for row in ov.intersections.itertuples(index=False):
        inside = [k for k in sets if getattr(row, k)]
        exact = set.intersection(*(sets[k] for k in inside)) - set().union(*(sets[k] for k in sets if k not in inside))
        assert row.persons == len(exact)
    assert ov.intersections["persons"].sum() == len(set().union(*sets.values()))


def test_unknown_tags_and_touchpoints_are_named(tg):
    with pytest.raises(UsageError, match="stagee"):
        audience.select(tg, Tag("stagee") == "new")
    with pytest.raises(UsageError, match="live_veiw"):
        audience.select(tg, Did("live_veiw", within_days=7))
    with pytest.raises(UsageError, match="within_days"):
        Did("pay", within_days=0)
    with pytest.raises(UsageError, match="boolean"):
        audience.select(tg, Tag("stage"))
    with pytest.raises(UsageError, match="condition"):
        audience.select(tg, "stage == 'new'")


def _reference_ids(data: Path, persons: set[int]) -> set[tuple]:
    ev = pd.read_parquet(data / "events", columns=["person_id", "id_type", "id_value"])
    known = {tuple(r) for r in ev[ev["person_id"].isin(persons)].itertuples(index=False)}
    links = pd.read_parquet(data / "id_links.parquet")
    by_id: dict[tuple, set[int]] = {}
    for pid, t, v in known:
        by_id.setdefault((t, v), set()).add(pid)
    out = set(known)
    for r in links.itertuples(index=False):
        for (ta, va), (tb, vb) in ((((r.id_type_a, r.id_value_a)), (r.id_type_b, r.id_value_b)),
                                   (((r.id_type_b, r.id_value_b)), (r.id_type_a, r.id_value_a))):
            for pid in by_id.get((ta, va), ()):
                out.add((pid, tb, vb))
    return out


def test_export_round_trip_without_and_with_a_key(data, tg, tmp_path):
    seg = audience.select(tg, Tag("stage") == "dormant")
    before = _hashes(data)
    types = ("unionid", "mp_openid", "oa_openid", "wecom_external_id", "phone_hash")
    plain = audience.export(seg, data, path=tmp_path / "ids.csv")
    back = pd.read_csv(tmp_path / "ids.csv", dtype={"id_type": str, "id_value": str})
    pd.testing.assert_frame_equal(back, plain.astype({"id_type": object, "id_value": object}), check_dtype=False)
    want = {r for r in _reference_ids(data, set(seg.person_ids.tolist())) if r[1] in types}
    assert set(map(tuple, plain[["person_id", "id_type", "id_value"]].itertuples(index=False))) == want
    assert set(plain["person_id"]) <= set(seg.person_ids)

    keyed = audience.export(seg, data, key=KEY, path=tmp_path / "ids.parquet", format="parquet")
    back = pd.read_parquet(tmp_path / "ids.parquet")
    pd.testing.assert_frame_equal(back, keyed, check_dtype=False)
    expect = privacy.pseudonymise(plain, ["person_id", "id_value"], KEY)
    assert keyed["id_value"].tolist() == expect["id_value"].tolist()
    assert not set(keyed["id_value"]) & set(plain["id_value"])
    assert keyed["id_value"].str.fullmatch("[0-9a-f]{32}").all()
    assert _hashes(data) == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_export_only_the_id_types_asked_and_from_an_id_map(tg, data):
    seg = audience.select(tg, Tag("guide_added"))
    out = audience.export(seg, data, id_types=("wecom_external_id",))
    assert set(out["id_type"]) == {"wecom_external_id"}
    idmap = pd.DataFrame({"person_id": [int(seg.person_ids[0]), 10**9], "id_type": ["unionid", "unionid"],
                          "id_value": ["u1", "u2"]})
    got = audience.export(seg, idmap, id_types=("unionid",))
    assert got["id_value"].tolist() == ["u1"]
    assert got.attrs["persons_without_ids"] == seg.size - 1


def test_export_never_replaces_a_file_without_overwrite(tg, data, tmp_path):
    seg = audience.select(tg, Tag("stage") == "loyal")
    target = tmp_path / "upload.csv"
    target.write_text("someone else's file\n")
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    with pytest.raises(UsageError, match="upload.csv.*overwrite=True"):
        audience.export(seg, data, path=target)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    audience.export(seg, data, path=target, overwrite=True)
    assert target.read_text().startswith("person_id,id_type,id_value")
    with pytest.raises(UsageError, match="xlsx"):
        audience.export(seg, data, path=tmp_path / "x.xlsx", format="xlsx")
    with pytest.raises(UsageError, match="wechat_id"):
        audience.export(seg, data, id_types=("wechat_id",))
    with pytest.raises(UsageError, match="16 bytes"):
        audience.export(seg, data, key="short")
    assert not (tmp_path / "x.xlsx").exists()


def test_segment_share_and_empty_overlap():
    a = Segment(np.array([], dtype="int64"), "nothing", 10)
    assert a.size == 0 and a.share == 0.0
    ov = audience.overlap([a, a])
    assert ov.pairwise.loc["S1", "S2"] == 0 and ov.intersections.empty


def test_lookalike_ranks_later_buyers_first(data, tg):
    seed = audience.select(tg, Did("pay", within_days=90))
    model = audience.lookalike(tg, seed)
    sc = model.scores
    assert sc["person_id"].tolist() == tg["person_id"].tolist()
    assert sc.loc[sc["in_seed"], "person_id"].tolist() == seed.person_ids.tolist()
    assert sc.loc[sc["in_seed"], "decile"].isna().all()
    assert sorted(sc["decile"].dropna().unique().tolist()) == list(range(1, 11))
    assert not any(c.startswith(("stage", "rfm_segment", "buyer_type", "days_since_pay")) for c in model.params.index)
    # the outcome the seed stands for: persons paying after as_of, read from the raw events
    ev = pd.read_parquet(data / "events", columns=["ts", "person_id", "touchpoint"])
    later = ev[(ev["touchpoint"] == "pay") & (ev["ts"] >= pd.Timestamp("2024-11-01", tz=schema.TIMEZONE))]
    lift = audience.lift_by_decile(model, later["person_id"].drop_duplicates())
    outside = sc[~sc["in_seed"]]
    top = outside[outside["decile"] == 1]["person_id"]
    rate = top.isin(later["person_id"]).mean()
    assert lift.loc[0, "rate"] == pytest.approx(rate)
    assert lift.loc[0, "lift_lo"] > 1  # the top decile buys more than average, beyond its 95% interval
    assert lift["persons"].sum() == len(outside)
    top50 = model.top(50)
    assert top50.size == 50 and not set(top50.person_ids) & set(seed.person_ids)
    assert set(top50.person_ids) <= set(outside.nlargest(60, "score")["person_id"])


def test_lookalike_refuses_a_seed_of_everyone_or_no_one(tg):
    everyone = audience.select(tg, Tag("first_active").notnull())
    with pytest.raises(UsageError, match=f"{len(tg)} of the {len(tg)}"):
        audience.lookalike(tg, everyone)
    with pytest.raises(UsageError, match="gendr"):
        audience.lookalike(tg, audience.select(tg, Tag("live_viewer")), features=["gendr"])


def test_tags_before_the_first_event_are_empty_and_bad_dates_are_named(data):
    early = audience.tags(data, as_of="2023-12-31")
    assert len(early) == 0 and {"stage", "preferred_channel", "days_since_pay"} <= set(early.columns)
    assert audience.select(early, Tag("stage") == "new").size == 0
    with pytest.raises(UsageError, match="as_of.*'31/31/2024'"):
        audience.tags(data, as_of="31/31/2024")


def test_preferred_channel_counts_own_touches_and_breaks_ties_by_name():
    from privdomain.examples import events_frame
    ev = events_frame([
        (1, "2024-05-01 10:00", "oa_push"), (1, "2024-05-01 11:00", "oa_push"), (1, "2024-05-01 12:00", "oa_push"),
        (1, "2024-05-02 10:00", "live_view"), (1, "2024-05-02 11:00", "wecom_chat"),
        (2, "2024-05-02 10:00", "moments_ad_view"), (2, "2024-01-02 10:00", "mp_visit"),
    ])
    with pytest.warns(NoPurchasesWarning, match="pay"):  # no purchases: said, not refused
        tg = audience.tags(ev, as_of="2024-05-03")
    assert (tg["buyer_type"] == "non_buyer").all() and tg["rfm_segment"].isna().all()
    # person 1: three pushes (sent by the brand) do not count; live and guide tie, "guide" < "live"
    # person 2: only an ad view in the last 90 days, the visit is older: no preferred channel
    assert tg["preferred_channel"].tolist() == ["guide", None]
    assert tg["touchpoints_7d"].tolist() == [3, 1] and tg["touchpoints_90d"].tolist() == [3, 1]
    assert tg["channels_7d"].tolist() == [3, 1]


def test_persons_without_person_id_are_refused(data):
    ev = pd.read_parquet(data / "events")
    with pytest.raises(UsageError, match="person_id"):
        audience.tags(ev, as_of=AS_OF, persons=pd.DataFrame({"gender": ["female"]}))


def test_export_from_an_events_frame_has_the_event_ids_without_link_hops(data, tg):
    import privdomain
    assert privdomain.audience.export is audience.export and "audience" in dir(privdomain)
    seg = audience.select(tg, Tag("live_viewer"))
    ev = pd.read_parquet(data / "events")
    from_frame = audience.export(seg, ev)
    from_folder = audience.export(seg, data)
    pairs = set(map(tuple, from_frame.itertuples(index=False)))
    assert pairs < set(map(tuple, from_folder.itertuples(index=False)))  # links add ids the events lack
    mine = ev[ev["person_id"].isin(seg.person_ids)]
    mine = mine[mine["id_type"].isin(audience.export.__kwdefaults__["id_types"])]
    assert pairs == set(zip(mine["person_id"], mine["id_type"].astype(str), mine["id_value"]))
