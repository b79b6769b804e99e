"""Lists of windows: durations ("7D") and whole days (7) give the same frame."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from privdomain.attribution.windows import ad_attribution
from privdomain.boards.channel_cube import channel_cube
from privdomain.contract import window_days
from privdomain.errors import UsageError
from privdomain.examples import events_frame
from privdomain.lifecycle.repurchase import repurchase_rate


def _events() -> pd.DataFrame:
    """Touches and pays at lags of 0, 3, 10 and 40 days, so each window credits differently."""
    rows = []
    for p, lag in enumerate([0, 3, 10, 40], start=1):
        rows += [
            (p, "2024-03-01 09:00", "moments_ad_click", {"campaign_id": 7}),
            (p, "2024-03-01 09:30", "sms"),
            (p, "2024-03-01 10:00", "pay", {"order_id": 10 * p, "amount_fen": 1000 * p}),
            (p, str(pd.Timestamp("2024-03-01 11:00") + pd.Timedelta(days=lag)), "sms"),
            (p, str(pd.Timestamp("2024-03-01 12:00") + pd.Timedelta(days=lag)), "pay",
             {"order_id": 10 * p + 1, "amount_fen": 500}),
        ]
    rows.append((9, "2024-06-30 10:00", "sms"))  # pushes the last observed day out
    return events_frame(rows)


def _no_warning(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return f(*args, **kwargs)


def test_window_days_reads_durations_and_ints():
    assert window_days(("1D", "7D", pd.Timedelta(days=30))) == [1, 7, 30]
    assert _no_warning(window_days, (1, 7, 30)) == [1, 7, 30]
    assert window_days(["0D"]) == [0]
    with pytest.raises(UsageError, match="whole number of days"):
        window_days(["36h"])
    with pytest.raises(UsageError):
        window_days(["seven days"])


def test_channel_cube_durations_match_days():
    ev = _events()
    by_days = _no_warning(channel_cube, ev, windows=(1, 7, 30))
    by_durations = _no_warning(channel_cube, ev, windows=("1D", "7D", "30D"))
    pd.testing.assert_frame_equal(by_days, by_durations)
    assert sorted(by_days["window_days"].unique().tolist()) == [1, 7, 30]
    # the windows do credit differently (otherwise the comparison proves little)
    assert by_days.groupby("window_days")["orders"].sum().is_monotonic_increasing
    assert by_days.groupby("window_days")["orders"].sum().nunique() > 1


def test_ad_attribution_durations_match_days():
    ev = _events()
    by_days = _no_warning(ad_attribution, ev, windows=(0, 7, 30))
    by_durations = _no_warning(ad_attribution, ev, windows=("0D", "7D", pd.Timedelta(days=30)))
    pd.testing.assert_frame_equal(by_days, by_durations)
    orders = by_days.groupby("window")["orders"].sum()
    assert orders.index.tolist() == [0, 7, 30]
    assert orders.nunique() > 1


def test_repurchase_rate_durations_match_days():
    ev = _events()
    by_days = _no_warning(repurchase_rate, ev, windows=(1, 7, 30))
    by_durations = _no_warning(repurchase_rate, ev, windows=("1D", "7D", "30D"))
    pd.testing.assert_frame_equal(by_days, by_durations)
    # by hand: first pays on 03-01, repeats 0, 3, 10 and 40 days later; a second pay on
    # the first day is not a repurchase, so 3 <= 7, 10 <= 30 and nobody within 1 day
    assert by_days.set_index("window_days")["repurchasers"].to_dict() == {1: 0, 7: 1, 30: 2}
    assert by_days["buyers"].tolist() == [4, 4, 4]


def test_default_windows_unchanged():
    ev = _events()
    assert channel_cube(ev)["window_days"].unique().tolist() == [1, 7, 30]
    assert repurchase_rate(ev)["window_days"].tolist() == [7, 30, 60, 90, 180]
