"""Days and weeks are those of the dataset's declared time zone, through one function of the events layer.

A small dataset whose events fall near midnight UTC and near midnight in Beijing is written
twice, once declared UTC and once Asia/Shanghai; every day-level metric is checked against
a per-event loop in plain Python (``zoneinfo``), and the two declarations give different,
each correct, answers. A frame (no manifest) takes ``tz=``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from privdomain import events, io
from privdomain.boards import channel_cube, touchpoints
from privdomain.boards.funnel import funnel_trends
from privdomain.clv import rfm
from privdomain.importers import import_table
from privdomain.lifecycle import cohorts, repurchase
from privdomain.lifecycle import stages as lifecycle
from privdomain.schema import conform
from privdomain.testing import reference

ZONES = ("UTC", "Asia/Shanghai")


def near_midnight_events(seed: int = 3, persons: int = 12) -> pd.DataFrame:
    """Visits, touches and purchases within an hour of midnight UTC or of midnight in Beijing (16:00 UTC)."""
    rng = np.random.default_rng(seed)
    rows = []
    base = pd.Timestamp("2024-03-04", tz="UTC")  # a Monday
    for p in range(1, persons + 1):
        for _ in range(int(rng.integers(3, 9))):
            day = int(rng.integers(0, 24))
            hour = int(rng.choice([23, 0, 15, 16]))
            minute = int(rng.integers(0, 60))
            ts = base + pd.Timedelta(days=day, hours=hour, minutes=minute)
            tp = str(rng.choice(["mp_visit", "sms", "pay"], p=[0.4, 0.2, 0.4]))
            rows.append({"person_id": p, "ts": ts, "touchpoint": tp})
    df = pd.DataFrame(rows).sort_values(["ts", "person_id"], kind="stable").reset_index(drop=True)
    df["event_id"] = np.arange(len(df), dtype="int64")
    df["channel"] = df["touchpoint"].map({"mp_visit": "mini_program", "sms": "sms", "pay": "mini_program"})
    df["id_type"], df["id_value"] = "mp_openid", "mp_" + df["person_id"].astype(str)
    pay = df["touchpoint"] == "pay"
    df["order_id"] = pd.Series(df["event_id"] + 1000, dtype="Int64").where(pay)
    df["amount_fen"] = pd.Series(990, index=df.index, dtype="Int64").where(pay)
    return conform(df, "events")


def local_day(ts: pd.Timestamp, zone: str) -> dt.date:
    return ts.to_pydatetime().astimezone(zoneinfo.ZoneInfo(zone)).date()


@pytest.fixture(scope="module")
def ev() -> pd.DataFrame:
    return near_midnight_events()


@pytest.fixture(scope="module")
def folders(ev, tmp_path_factory) -> dict[str, str]:
    out = {}
    for zone in ZONES:
        root = tmp_path_factory.mktemp(zone.replace("/", "_"))
        out[zone] = str(io.write_dataset(root, {"events": ev}, meta={"timezone": zone}).path)
    return out


# --- brute force, one event at a time ----------------------------------------------------------


def brute_daily(ev: pd.DataFrame, zone: str) -> dict[tuple, tuple[int, int]]:
    n, who = defaultdict(int), defaultdict(set)
    for ts, tp, p in zip(ev["ts"], ev["touchpoint"], ev["person_id"]):
        key = (local_day(ts, zone), tp)
        n[key] += 1
        who[key].add(p)
    return {k: (n[k], len(who[k])) for k in n}


def pay_days(ev: pd.DataFrame, zone: str) -> dict[int, list[dt.date]]:
    days = defaultdict(set)
    for ts, tp, p in zip(ev["ts"], ev["touchpoint"], ev["person_id"]):
        if tp == "pay":
            days[p].add(local_day(ts, zone))
    return {p: sorted(d) for p, d in days.items()}


def test_timezone_of_reads_the_manifest_and_a_caller_wins(folders, ev):
    assert events.timezone_of(folders["UTC"]) == "UTC"
    assert events.timezone_of(folders["Asia/Shanghai"]) == "Asia/Shanghai"
    assert events.timezone_of(ev) == "Asia/Shanghai"  # a frame carries no declaration
    assert events.timezone_of(ev, tz="Europe/Berlin") == "Europe/Berlin"
    assert events.timezone_of(folders["Asia/Shanghai"], tz="gmt") == "UTC"


def test_daily_volume_counts_the_declared_zones_days(folders, ev):
    answers = {}
    for zone in ZONES:
        got = touchpoints.daily_volume(folders[zone])
        got = {(d, tp): (n, k) for d, tp, n, k in got[["day", "touchpoint", "events", "persons"]].itertuples(index=False)}
        assert got == brute_daily(ev, zone)
        assert touchpoints.daily_volume(ev, tz=zone).equals(touchpoints.daily_volume(folders[zone]))
        answers[zone] = got
    assert answers["UTC"] != answers["Asia/Shanghai"]


def test_rfm_summary_days_follow_the_zone(folders, ev):
    answers = {}
    for zone in ZONES:
        days = pay_days(ev, zone)
        end = max(d[-1] for d in days.values())
        for source in (folders[zone], ev):
            s = rfm.rfm_summary(source, tz=None if source is folders[zone] else zone).set_index("person_id")
            assert set(s.index) == set(days)
            for p, d in days.items():
                assert s.loc[p, "frequency"] == len(d) - 1
                assert s.loc[p, "t_x"] == (d[-1] - d[0]).days
                assert s.loc[p, "T"] == (end - d[0]).days
        answers[zone] = s["frequency"].to_dict()
    assert answers["UTC"] != answers["Asia/Shanghai"]


def test_purchase_gaps_follow_the_zone(folders, ev):
    answers = {}
    for zone in ZONES:
        as_of = max(local_day(ts, zone) for ts in ev["ts"])
        want = []
        for p, d in sorted(pay_days(ev, zone).items()):
            for i, day in enumerate(d):
                nxt = d[i + 1] if i + 1 < len(d) else as_of
                want.append((p, i + 1, (nxt - day).days, i + 1 < len(d)))
        g = repurchase.purchase_gaps(folders[zone])
        got = [(int(a), int(b), int(c), bool(e)) for a, b, c, e in
               g[["person_id", "number", "gap_days", "repurchased"]].itertuples(index=False)]
        assert got == want
        answers[zone] = got
    assert answers["UTC"] != answers["Asia/Shanghai"]


def test_weekly_cohorts_follow_the_zone(folders, ev):
    answers = {}
    for zone in ZONES:
        days = defaultdict(set)
        for ts, p in zip(ev["ts"], ev["person_id"]):
            days[p].add(local_day(ts, zone))
        monday = {p: min(d) - dt.timedelta(days=min(d).weekday()) for p, d in days.items()}
        size, active = defaultdict(int), defaultdict(int)
        for p, d in days.items():
            size[monday[p]] += 1
            for k in {(x - monday[p]).days // 7 for x in d}:
                active[(monday[p], k)] += 1
        c = cohorts.cohort_table(folders[zone], freq="W", cohort_on="first_touch", active_on="any")
        got_size = {r.cohort.date(): int(r.cohort_size) for r in c[c.period == 0].itertuples()}
        got_active = {(r.cohort.date(), int(r.period)): int(r.active) for r in c.itertuples() if r.active}
        assert got_size == dict(size)
        assert got_active == dict(active)
        answers[zone] = got_active
    assert answers["UTC"] != answers["Asia/Shanghai"]


def test_funnel_trends_enter_on_the_zones_day(folders, ev):
    answers = {}
    for zone in ZONES:
        who = defaultdict(set)
        for ts, tp, p in zip(ev["ts"], ev["touchpoint"], ev["person_id"]):
            if tp == "mp_visit":
                who[local_day(ts, zone)].add(p)
        f = funnel_trends(folders[zone], ["mp_visit", "pay"], window="1D", freq="D")
        got = {r.period.date(): int(r.entered) for r in f.itertuples()}
        assert got == {d: len(s) for d, s in who.items()}
        answers[zone] = got
    assert answers["UTC"] != answers["Asia/Shanghai"]


def as_beijing_wall_clock(ev: pd.DataFrame, zone: str) -> pd.DataFrame:
    """The same events with their wall-clock time in ``zone`` written as Beijing wall-clock time."""
    wall = ev["ts"].dt.tz_convert(zone).dt.tz_localize(None)
    return ev.assign(ts=wall.dt.tz_localize("Asia/Shanghai"))


def test_lifecycle_board_equals_the_reference_on_the_zones_days(folders, ev):
    start, end = "2024-03-04", "2024-03-30"
    boards = {}
    for zone in ZONES:
        board = lifecycle.lifecycle_board(folders[zone], start, end, freq="D")
        # the per-person reference counts Beijing days: give it the zone's wall-clock times
        snaps = list(range((pd.Timestamp(start) - pd.Timestamp("1970-01-01")).days,
                           (pd.Timestamp(end) - pd.Timestamp("1970-01-01")).days + 1))
        ref = reference.lifecycle_board(as_beijing_wall_clock(ev, zone), snaps)
        got = {(int((r.period - pd.Timestamp("1970-01-01")).days), r.stage): int(r.persons)
               for r in board.itertuples() if r.persons}
        want = {(int(r.snapshot), r.stage): int(r.persons) for r in ref.itertuples() if r.persons}
        assert got == want
        assert lifecycle.lifecycle_board(ev, start, end, freq="D", tz=zone).equals(board)
        boards[zone] = got
    assert boards["UTC"] != boards["Asia/Shanghai"]


def test_channel_cube_first_visit_day_follows_the_zone(folders, ev):
    cubes = {}
    for zone in ZONES:
        cube = channel_cube.channel_cube(folders[zone], windows=[1, 7])
        shifted = channel_cube.channel_cube(as_beijing_wall_clock(ev, zone), windows=[1, 7])
        pd.testing.assert_frame_equal(cube, shifted)
        pd.testing.assert_frame_equal(channel_cube.channel_cube(ev, windows=[1, 7], tz=zone), cube)
        cubes[zone] = cube


def test_a_zone_with_daylight_saving_counts_its_own_days():
    # around the European switch to summer time (2024-03-31 01:00 UTC) and back (2024-10-27 01:00 UTC)
    stamps = ["2024-03-30 22:30", "2024-03-30 23:30", "2024-03-31 21:59", "2024-03-31 22:01",
              "2024-10-26 21:59", "2024-10-26 22:01", "2024-10-27 22:59", "2024-10-27 23:01"]
    ev = pd.DataFrame({"event_id": range(len(stamps)), "person_id": [1, 2] * 4, "touchpoint": "sms",
                       "ts": pd.to_datetime(stamps).tz_localize("UTC")})
    got = touchpoints.daily_volume(ev, tz="Europe/Berlin")
    got = {(d, tp): (n, k) for d, tp, n, k in got[["day", "touchpoint", "events", "persons"]].itertuples(index=False)}
    assert got == brute_daily(ev, "Europe/Berlin")
    t = events.read(ev, localise=False, tz="Europe/Berlin")
    days = events.backend.execute(t.select("event_id", d=events.day(t.ts)).order_by("event_id"))["d"].tolist()
    epoch = dt.date(1970, 1, 1)
    assert days == [(local_day(ts, "Europe/Berlin") - epoch).days for ts in ev["ts"]]


def test_an_import_declared_utc_counts_utc_days(tmp_path):
    csv = tmp_path / "orders.csv"
    csv.write_text("user,time,amount\na,2024-05-01 23:30:00,10.00\na,2024-05-02 00:30:00,5.00\n"
                   "b,2024-05-01 15:30:00,7.00\nb,2024-05-01 16:30:00,7.00\n", encoding="utf-8")
    out = {}
    for zone in ZONES:
        res = import_table(csv, tmp_path / zone.replace("/", "_"), "person_id=user,ts=time,amount=amount",
                           unit="major", tz=zone)
        assert events.timezone_of(res.dataset) == zone
        s = rfm.rfm_summary(res.dataset)
        out[zone] = dict(zip(s["total_value"], s["frequency"]))  # a spent 15.00, b 14.00
    # wall-clock times read in a zone and counted on that zone's days: a's two orders fall on two
    # days (23:30, 00:30), b's on one (15:30, 16:30), whichever zone the export was in
    assert out == {"UTC": {15.0: 1.0, 14.0: 0.0}, "Asia/Shanghai": {15.0: 1.0, 14.0: 0.0}}
    # the UTC dataset's instants counted on Beijing days (a caller's tz= wins over the manifest):
    # a's become 07:30 and 08:30 of one day, b's 23:30 and 00:30 of two
    s = rfm.rfm_summary(tmp_path / "UTC", tz="Asia/Shanghai")
    assert dict(zip(s["total_value"], s["frequency"])) == {15.0: 0.0, 14.0: 1.0}
