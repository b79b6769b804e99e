"""audience.tags(out=...) in person-id chunks: the same rows as the frame; select reads the file."""

from __future__ import annotations

import pandas as pd
import pytest

from privdomain import audience
from privdomain.audience import Cohort, Did, Tag
from privdomain.audience.export import DEFAULT_ID_TYPES
from privdomain.audience.tags import read_tags_meta
from privdomain.errors import UsageError
from privdomain.simulate import simulate

AS_OF = "2024-10-31"
CONDITIONS = [
    (Tag("stage") == "dormant") | (Did("live_view", within_days=30) & ~Did("pay", within_days=90)),
    Tag("article_reader") & (Tag("city_tier") <= 2),
    Cohort("2024-03-01", "2024-05-31") & ~(Tag("rfm_segment") == "champions"),
    Tag("preferred_channel").isin(["store", "guide"]) | Tag("member_level").isnull(),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("audf") / "beauty"
    simulate("beauty", persons=1500, seed=4, out=root, truth=False)
    return root


@pytest.fixture(scope="module")
def frame(data):
    return audience.tags(data, as_of=AS_OF)


@pytest.fixture(scope="module")
def file(data, tmp_path_factory):
    # 7 chunks of 220 person ids: every tag but the RFM quintiles is per person, those are over all buyers
    return audience.tags(data, as_of=AS_OF, out=tmp_path_factory.mktemp("tagf") / "tags.parquet", chunk_persons=220)


def _plain(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s.notna(), None).reset_index(drop=True)


def test_chunked_file_holds_the_same_tags_as_the_frame(frame, file):
    back = pd.read_parquet(file)
    assert list(back.columns) == list(frame.columns) and len(back) == len(frame)
    for c in frame.columns:
        a, b = _plain(frame[c]), _plain(back[c])
        if c in ("first_active", "last_active", "crm_join_date"):
            a, b = pd.to_datetime(a), pd.to_datetime(b)
            if getattr(a.dt, "tz", None) is not None:
                a = a.dt.tz_localize(None)
            if getattr(b.dt, "tz", None) is not None:
                b = b.dt.tz_localize(None)
        assert a.equals(b), c
    assert read_tags_meta(file) == {"as_of": AS_OF, "touchpoints": frame.attrs["touchpoints"]}


@pytest.mark.parametrize("cond", CONDITIONS, ids=[str(c) for c in CONDITIONS])
def test_select_on_the_file_equals_select_on_the_frame(frame, file, cond):
    a, b = audience.select(frame, cond), audience.select(file, cond)
    assert a.person_ids.tolist() == b.person_ids.tolist() and a.population == b.population == len(frame)
    assert cond.columns() <= set(frame.columns)


def test_an_unknown_tag_in_a_file_is_named_and_a_bad_chunk_size_refused(file, data, tmp_path):
    with pytest.raises(UsageError, match="did you mean 'stage'"):
        audience.select(file, Tag("stagee") == "new")
    with pytest.raises(UsageError, match="chunk_persons"):
        audience.tags(data, as_of=AS_OF, out=tmp_path / "t.parquet", chunk_persons=0)
    assert not (tmp_path / "t.parquet").exists()


def test_export_from_a_file_segment_joins_links_in_the_engine(frame, file, data):
    seg = audience.select(file, Tag("guide_added") | (Tag("stage") == "dormant"))
    ids = audience.export(seg, data)
    ev = pd.read_parquet(data / "events")
    links = pd.read_parquet(data / "id_links.parquet")
    own = ev[ev["person_id"].isin(seg.person_ids)][["person_id", "id_type", "id_value"]].astype(str)
    ref = set(map(tuple, own.values.tolist()))
    for a, b in (("a", "b"), ("b", "a")):
        j = own.merge(links.astype(str), left_on=["id_type", "id_value"], right_on=[f"id_type_{a}", f"id_value_{a}"])
        ref |= set(zip(j["person_id"], j[f"id_type_{b}"], j[f"id_value_{b}"]))
    ref = {r for r in ref if r[1] in DEFAULT_ID_TYPES}
    got = set(zip(ids["person_id"].astype(str), ids["id_type"], ids["id_value"]))
    assert got == ref and len(ids) == len(got)
