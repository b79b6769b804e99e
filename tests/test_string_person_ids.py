"""Person ids as text (a brand's own customer ids) work everywhere integer ids do.

A small simulated dataset is written a second time with every person id mapped to text
whose sort order differs from the numbers' (``u10`` sorts before ``u2``); every metric
gives the same answer on both, compared after mapping the ids back.
"""

from __future__ import annotations

import pandas as pd
import pytest

import privdomain as pdm
from privdomain import attribution, audience, channel_cube, cohorts, funnel, identity, io, lifecycle, repurchase, rfm


def to_text(ids: pd.Series) -> pd.Series:
    return ids.map(lambda v: None if pd.isna(v) else f"u{int(v)}").astype(object)


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[str, str, dict[str, int]]:
    root = tmp_path_factory.mktemp("ids")
    ds = pdm.simulate("beauty", persons=500, seed=3, out=root / "int")
    ev, persons = ds.read("events"), ds.read("persons")
    assert ev["referrer_person_id"].notna().any()  # fission referrals are mapped too
    text = io.write_dataset(root / "text", {
        "events": ev.assign(person_id=to_text(ev["person_id"]), referrer_person_id=to_text(ev["referrer_person_id"])),
        "persons": persons.assign(person_id=to_text(persons["person_id"])),
        "id_links": ds.read("id_links"),  # no person ids: the audience export's link hop reads it as is
    })
    back = {f"u{p}": int(p) for p in persons["person_id"]}
    return str(ds.path), str(text.path), back


def test_a_dataset_with_text_person_ids_validates(pair, tmp_path):
    _, text, _ = pair
    report = pdm.validate(text)
    assert report.ok, report.problems
    ev = io.read_table(text, "events")
    assert ev["person_id"].map(type).eq(str).all()
    blank = ev.assign(person_id=ev["person_id"].where(ev.index != 3, " "))
    io.write_dataset(tmp_path / "blank", {"events": blank})
    bad = pdm.validate(tmp_path / "blank", raise_on_error=False)
    assert [(p.column, p.rows) for p in bad.problems if "blank" in p.rule] == [("person_id", 1)]


def test_funnel_is_the_same(pair):
    a, b, _ = pair
    steps = ["mp_visit", "add_to_cart", "pay"]
    pd.testing.assert_frame_equal(funnel.funnel(a, steps), funnel.funnel(b, steps))
    pd.testing.assert_frame_equal(funnel.funnel_trends(a, steps, freq="W"), funnel.funnel_trends(b, steps, freq="W"))


def test_rfm_summary_is_the_same_after_mapping_ids_back(pair):
    a, b, back = pair
    x = rfm.rfm_summary(a, time_unit="W")
    y = rfm.rfm_summary(b, time_unit="W")
    assert y["person_id"].map(type).eq(str).all()
    y = y.assign(person_id=y["person_id"].map(back)).sort_values("person_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(x.sort_values("person_id").reset_index(drop=True), y, check_like=True)


def test_lifecycle_board_flows_and_intervals_are_the_same(pair):
    a, b, back = pair
    ov = pdm.reports.overview(a)
    for f in (lifecycle.lifecycle_board, lifecycle.stage_flows):
        pd.testing.assert_frame_equal(f(a, ov["first_day"], ov["last_day"], freq="W"),
                                      f(b, ov["first_day"], ov["last_day"], freq="W"))
    x = lifecycle.stage_intervals(a)
    y = lifecycle.stage_intervals(b)
    y = y.assign(person_id=y["person_id"].map(back).astype("int64"))
    key = ["person_id", "valid_from"]
    pd.testing.assert_frame_equal(x.sort_values(key).reset_index(drop=True), y.sort_values(key).reset_index(drop=True))
    s = lifecycle.stages_at(b, ov["last_day"])
    assert s.assign(person_id=s["person_id"].map(back)).sort_values("person_id").reset_index(drop=True).equals(
        lifecycle.stages_at(a, ov["last_day"]))


def test_cohorts_and_repurchase_are_the_same(pair):
    a, b, back = pair
    pd.testing.assert_frame_equal(cohorts.cohort_table(a, "W"), cohorts.cohort_table(b, "W"))
    pd.testing.assert_frame_equal(repurchase.repurchase_rate(a), repurchase.repurchase_rate(b))
    x, y = repurchase.purchase_gaps(a), repurchase.purchase_gaps(b)
    y = y.assign(person_id=y["person_id"].map(back).astype("int64"))
    key = ["person_id", "number"]
    pd.testing.assert_frame_equal(x.sort_values(key).reset_index(drop=True), y.sort_values(key).reset_index(drop=True))


def test_attribution_is_the_same(pair):
    a, b, back = pair
    pd.testing.assert_frame_equal(attribution.attribute(a), attribution.attribute(b))
    x = pdm.backend.execute(attribution.credited_purchases(a)).sort_values("pay_event_id").reset_index(drop=True)
    y = pdm.backend.execute(attribution.credited_purchases(b)).sort_values("pay_event_id").reset_index(drop=True)
    assert x["f_campaign"].notna().any()  # a friend's purchase credited through a text referrer id
    y = y.assign(person_id=y["person_id"].map(back))
    pd.testing.assert_frame_equal(x, y, check_dtype=False)


def test_channel_cube_is_the_same(pair):
    a, b, _ = pair
    pd.testing.assert_frame_equal(channel_cube.channel_cube(a), channel_cube.channel_cube(b))
    pd.testing.assert_frame_equal(channel_cube.channel_cube(a, by_order_channel=True),
                                  channel_cube.channel_cube(b, by_order_channel=True))


def test_identity_scores_against_text_person_ids(pair):
    a, _, _ = pair
    ev = io.read_table(a, "events")
    ids = ev[["id_type", "id_value", "person_id"]].drop_duplicates()
    unified = identity.unify(ids[["id_type", "id_value"]], io.read_table(a, "id_links"))
    x = identity.score(unified, ids)
    y = identity.score(unified, ids.assign(person_id=to_text(ids["person_id"])))
    assert x == y and 0 < x["recall"] <= 1


def test_experiment_frames_and_effects_are_the_same(tmp_path):
    from privdomain import experiments as ex

    ds = pdm.simulate("tea", persons=400, seed=3, out=tmp_path / "int")
    ev, asg = ds.read("events"), ds.read("assignments")
    text = io.write_dataset(tmp_path / "text", {
        "events": ev.assign(person_id=to_text(ev["person_id"]), referrer_person_id=to_text(ev["referrer_person_id"])),
        "assignments": asg.assign(person_id=to_text(asg["person_id"])),
    })
    name = sorted(n for n in asg["experiment"].unique() if not n.startswith("lift_"))[0]
    x, y = ex.campaign_frame(ds, name), ex.campaign_frame(text, name)
    assert y["person_id"].map(type).eq(str).all()
    y = y.assign(person_id=y["person_id"].str[1:].astype("int64"))
    key = ["person_id", "assigned_at"]
    pd.testing.assert_frame_equal(x.sort_values(key).reset_index(drop=True), y.sort_values(key).reset_index(drop=True))
    pd.testing.assert_frame_equal(ex.campaign_effects(x), ex.campaign_effects(y))


AS_OF = "2024-10-31"


def _back(frame: pd.DataFrame, back: dict[str, int], key: list[str] | None = None) -> pd.DataFrame:
    """``frame`` with text person ids mapped to the integers, sorted by ``key`` (default person_id)."""
    assert frame["person_id"].map(type).eq(str).all()
    out = frame.assign(person_id=frame["person_id"].map(back).astype("int64"))
    return out.sort_values(key or ["person_id"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def tag_pair(pair):
    a, b, _ = pair
    return audience.tags(a, as_of=AS_OF), audience.tags(b, as_of=AS_OF)


def test_audience_tags_are_the_same_after_mapping_ids_back(pair, tag_pair, tmp_path):
    _, b, back = pair
    x, y = tag_pair
    assert len(x) > 300 and x["person_id"].dtype == "int64"
    assert y["person_id"].is_monotonic_increasing and y["person_id"].tolist() != sorted(y["person_id"], key=back.get)
    # rfm_segment's quintiles break ties in row order (rfm.rfm_scores), here the order of the ids:
    # it is checked against the text dataset's own RFM segments, every other tag is identical
    pd.testing.assert_frame_equal(x.drop(columns="rfm_segment"), _back(y, back).drop(columns="rfm_segment"))
    assert x.attrs == y.attrs
    seg = rfm.rfm_segments(rfm.rfm_summary(b, as_of=AS_OF), scheme="rf").set_index("person_id")["segment"]
    assert y["rfm_segment"].notna().sum() == len(seg) > 50
    assert y["rfm_segment"].tolist() == y["person_id"].map(seg).astype(object).where(lambda s: s.notna(), None).tolist()
    # the chunked file: text ids are cut into chunks of sorted ids, the same rows as in memory
    path = audience.tags(b, as_of=AS_OF, out=tmp_path / "tags.parquet", chunk_persons=97)
    f = pd.read_parquet(path)
    assert f["person_id"].tolist() == y["person_id"].tolist()
    pd.testing.assert_frame_equal(f, y, check_dtype=False)


def test_audience_select_and_overlap_are_the_same(pair, tag_pair, tmp_path):
    a, b, back = pair
    x, y = tag_pair
    conds = {
        "readers_visiting": audience.Tag("article_reader") & audience.Did("mp_visit", within_days=30),
        "recent_buyers": audience.Did("pay", within_days=90),
        "guides_not_dormant": audience.Did("wecom_add") & ~(audience.Tag("stage") == "dormant"),
    }
    sx = {k: audience.select(x, c) for k, c in conds.items()}
    sy = {k: audience.select(y, c) for k, c in conds.items()}
    for k in conds:
        assert 0 < sx[k].size < len(x), k
        assert sy[k].ids().map(type).eq(str).all() and list(sy[k].person_ids) == sorted(sy[k].person_ids)
        assert sorted(back[p] for p in sy[k].person_ids) == sx[k].person_ids.tolist()
        assert (sy[k].population, sy[k].condition) == (sx[k].population, sx[k].condition)
    path = audience.tags(b, as_of=AS_OF, out=tmp_path / "tags.parquet")
    from_file = audience.select(path, conds["readers_visiting"])
    assert from_file.person_ids.tolist() == sy["readers_visiting"].person_ids.tolist()
    ox, oy = audience.overlap(sx), audience.overlap(sy)
    pd.testing.assert_frame_equal(ox.pairwise, oy.pairwise)
    pd.testing.assert_frame_equal(ox.jaccard, oy.jaccard)
    pd.testing.assert_frame_equal(ox.intersections, oy.intersections)
    # an independent count: persons in both of the first two segments
    both = set(sy["readers_visiting"].person_ids) & set(sy["recent_buyers"].person_ids)
    assert oy.pairwise.loc["readers_visiting", "recent_buyers"] == len(both) > 0
    fx = audience.select(x, audience.InFunnel(a, ["mp_visit", "add_to_cart", "pay"], converted_to=2))
    fy = audience.select(y, audience.InFunnel(b, ["mp_visit", "add_to_cart", "pay"], converted_to=2))
    assert fx.size > 0 and sorted(back[p] for p in fy.person_ids) == fx.person_ids.tolist()


def test_audience_export_is_the_same(pair, tag_pair):
    a, b, back = pair
    x, y = tag_pair
    cond = audience.Tag("stage") == "dormant"
    sx, sy = audience.select(x, cond), audience.select(y, cond)
    ex, ey = audience.export(sx, a), audience.export(sy, b)
    key = ["person_id", "id_type", "id_value"]
    assert len(ex) > sx.size and ex["id_type"].nunique() > 1
    pd.testing.assert_frame_equal(ex.sort_values(key).reset_index(drop=True), _back(ey, back, key))
    assert ex.attrs["persons_without_ids"] == ey.attrs["persons_without_ids"]
    # from an events frame (no link hop) and from an id map
    ev_a, ev_b = io.read_table(a, "events"), io.read_table(b, "events")
    fx, fy = audience.export(sx, ev_a), audience.export(sy, ev_b)
    pd.testing.assert_frame_equal(fx.sort_values(key).reset_index(drop=True), _back(fy, back, key))
    idmap = ev_b[["person_id", "id_type", "id_value"]].astype({"id_type": object})
    got = audience.export(sy, idmap, id_types=("unionid",))
    assert set(got["person_id"]) <= set(sy.person_ids) and set(got["id_type"]) == {"unionid"}
    assert sorted(map(tuple, _back(got, back, key)[key].values.tolist())) == sorted(
        map(tuple, fx[fx["id_type"] == "unionid"][key].values.tolist()))
    keyed = audience.export(sy, b, key="audience-test-key-0123456789")
    assert len(keyed) == len(ey) and keyed["person_id"].str.fullmatch("[0-9a-f]{32}").all()


def test_audience_lookalike_is_the_same(pair, tag_pair):
    a, b, back = pair
    x, y = tag_pair
    cond = audience.Did("pay", within_days=90)
    seed_x, seed_y = audience.select(x, cond), audience.select(y, cond)
    # rows in the integer order, so that ties in score are broken the same way
    y_int_order = y.iloc[y["person_id"].map(back).argsort(kind="stable")].reset_index(drop=True)
    mx, my = audience.lookalike(x, seed_x), audience.lookalike(y_int_order, seed_y)
    assert my.scores["person_id"].map(type).eq(str).all()
    pd.testing.assert_series_equal(mx.params, my.params, rtol=1e-9)
    pd.testing.assert_frame_equal(mx.scores, _back(my.scores, back), rtol=1e-9)
    assert sorted(back[p] for p in my.top(40).person_ids) == mx.top(40).person_ids.tolist()
    later = io.read_table(a, "events")
    later = later.loc[(later["touchpoint"] == "pay") & (later["ts"] >= pd.Timestamp("2024-11-01", tz="Asia/Shanghai")),
                      "person_id"].drop_duplicates()
    assert len(later) > 0
    lx = audience.lift_by_decile(mx, later)
    pd.testing.assert_frame_equal(lx, audience.lift_by_decile(my, to_text(later)))
    # on the tag frame as it comes (text order), the scores per person are the same
    mz = audience.lookalike(y, seed_y)
    z = _back(mz.scores, back)
    assert z["score"].to_numpy() == pytest.approx(mx.scores["score"].to_numpy(), rel=1e-6)
    assert z["in_seed"].tolist() == mx.scores["in_seed"].tolist()
