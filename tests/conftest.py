import os
import tempfile

import pandas as pd
import pytest

# the events layer keeps passed checks of dataset folders on disk: the suite keeps its own
os.environ.setdefault("PRIVDOMAIN_CACHE_DIR", tempfile.mkdtemp(prefix="privdomain-test-cache-"))

from privdomain.examples import events_frame


@pytest.fixture
def small_events() -> pd.DataFrame:
    """A hand-built day of three persons (the journeys the foundation tests use)."""
    return events_frame([
        (1, "2024-05-01 09:00", "moments_ad_view", {"campaign_id": 1}),
        (1, "2024-05-01 09:01", "moments_ad_click", {"campaign_id": 1}),
        (1, "2024-05-01 09:05", "oa_follow"),
        (1, "2024-05-01 23:59", "mp_visit"),
        (1, "2024-05-02 00:01", "order", {"order_id": 10, "amount_fen": 9900, "product_id": 3}),
        (1, "2024-05-02 00:02", "pay", {"order_id": 10, "amount_fen": 9900, "product_id": 3}),
        (2, "2024-05-01 08:00", "oa_push", {"article_id": 5}),
        (2, "2024-05-01 08:30", "oa_article_open", {"article_id": 5}),
        (2, "2024-05-03 12:00", "refund", {"order_id": 10, "amount_fen": 9900}),
        (3, "2024-05-02 07:59", "store_visit", {"store_id": 2}),
    ])
