"""The tables of a privdomain dataset: column names, dtypes, allowed values.

Every dataset, simulated or imported, has the same tables. This module is the
authority on their shape; :func:`privdomain.validate.validate` checks a frame
against it and reports every broken rule.

Timestamp convention
--------------------
``ts`` (and every other ``*_at`` column) is a **timezone-aware** instant. The
canonical zone is ``Asia/Shanghai`` (UTC+08:00, no daylight saving), the zone in
which WeChat data are reported: a "day" or "week" in any metric is a Beijing
calendar day or ISO week. Naive timestamps are rejected, because the same wall
clock reading means two different instants depending on the zone assumed.
DuckDB/Ibis hold instants in UTC; :func:`privdomain.backend.local_day` turns an
instant into its Beijing calendar day inside an Ibis expression.

Money convention
----------------
Amounts are integers in fen (1 RMB = 100 fen) in ``*_fen`` columns, so sums are
exact. Reports show yuan (``gmv = sum(amount_fen) / 100``).

Purchases
---------
An ``order`` event marks an order placed, a ``pay`` event the same ``order_id``
paid (``amount_fen`` = amount paid), a ``refund`` event a refund of an earlier
order (``amount_fen`` = amount refunded). Metrics count a purchase (conversion,
buyer, GMV) on the **pay** event: :data:`PURCHASE`.

Privacy
-------
``persons.name`` and ``persons.phone`` are optional columns: a brand that does not
hold them (or must not share them) leaves them out, and every table check passes
without them (:attr:`TableSpec.optional`). When present they may be null. No metric
reads them; reports never show them.

Examples
--------
>>> from privdomain import schema
>>> schema.ALLOWED_CHANNELS["pay"]
('mini_program', 'live', 'store', 'guide')
>>> schema.PURCHASE
'pay'
>>> schema.CHANNEL_OF["oa_article_open"]
'official_account'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

__all__ = [
    "SCHEMA_VERSION",
    "TIMEZONE",
    "UTC_OFFSET_HOURS",
    "PURCHASE",
    "CHANNEL_OF",
    "TOUCHPOINTS",
    "CHANNELS",
    "AD_VIEWS",
    "AD_CLICKS",
    "ORDER_TOUCHPOINTS",
    "ORDER_CHANNELS",
    "ID_TYPES",
    "IMPORTED_ID_TYPES",
    "ALL_ID_TYPES",
    "ALLOWED_CHANNELS",
    "TableSpec",
    "EVENTS",
    "PERSONS",
    "ID_LINKS",
    "CAMPAIGNS",
    "PRODUCTS",
    "ARTICLES",
    "LIVES",
    "ASSIGNMENTS",
    "ARTICLES_DAILY",
    "PERSONS_OPTIONAL",
    "TABLES",
    "empty",
    "whole_numbers",
    "conform",
    "MINOR_UNIT_DIGITS",
    "VOCABULARY_KEYS",
    "Vocabulary",
    "vocabulary",
]


SCHEMA_VERSION = "1.0"
TIMEZONE = "Asia/Shanghai"
#: Beijing time is UTC+08:00 all year (no daylight saving since 1991): metrics use this fixed offset.
UTC_OFFSET_HOURS = 8
PURCHASE = "pay"

#: Every touchpoint (event type) with the channel family it belongs to.
CHANNEL_OF: dict[str, str] = {
    # paid public-domain traffic (公域广告)
    "moments_ad_view": "moments_ad",
    "moments_ad_click": "moments_ad",
    "search_ad_view": "search_ad",
    "search_ad_click": "search_ad",
    "channels_ad_view": "channels_ad",
    "channels_ad_click": "channels_ad",
    # Official Account (公众号)
    "oa_follow": "official_account",
    "oa_push": "official_account",  # article received
    "oa_article_open": "official_account",
    "mp_click": "official_account",  # clicked from the article into the Mini Program
    # group chat (社群)
    "group_join": "group",
    "group_message": "group",
    # WeCom shopping guide (企业微信导购)
    "wecom_add": "guide",
    "wecom_chat": "guide",
    # live stream (直播)
    "live_view": "live",
    "live_interact": "live",
    # offline and after-sale re-touch
    "store_visit": "store",
    "qr_scan": "qr_code",
    "sms": "sms",
    # Mini Program (小程序) and transactions
    "mp_visit": "mini_program",
    "product_view": "mini_program",
    "add_to_cart": "mini_program",
    "order": "mini_program",
    "pay": "mini_program",
    "refund": "mini_program",
    # fission (裂变): the sharer's event; friends carry referrer_person_id
    "share": "fission",
}
TOUCHPOINTS: list[str] = list(CHANNEL_OF)
CHANNELS: list[str] = list(dict.fromkeys(CHANNEL_OF.values()))
#: Touchpoints that are ad exposures / ad clicks.
AD_VIEWS = ["moments_ad_view", "search_ad_view", "channels_ad_view"]
AD_CLICKS = ["moments_ad_click", "search_ad_click", "channels_ad_click"]
#: Touchpoints that carry an order id and an amount.
ORDER_TOUCHPOINTS = ["order", "pay", "refund"]
#: Where an order may happen: an order/pay/refund row's channel.
ORDER_CHANNELS = ["mini_program", "live", "store", "guide"]
ID_TYPES = ["oa_openid", "mp_openid", "unionid", "wecom_external_id", "phone_hash"]
#: Id types an imported dataset may carry besides the WeChat surfaces' :data:`ID_TYPES`:
#: a brand's own customer or user id and its membership number (Youshu's ``user_info``
#: ``user_id`` and ``member_id``). The simulator never writes them.
IMPORTED_ID_TYPES = ["user_id", "member_id"]
#: Every id type a dataset may hold.
ALL_ID_TYPES = [*ID_TYPES, *IMPORTED_ID_TYPES]
#: The channels each touchpoint may carry: its family (:data:`CHANNEL_OF`), and for
#: order/pay/refund any of :data:`ORDER_CHANNELS` (an order placed in the Mini Program,
#: during a live stream, in a store or through a WeCom guide). A row whose channel is
#: not among its touchpoint's is inconsistent (:func:`privdomain.validate.validate`
#: counts such rows).
ALLOWED_CHANNELS: dict[str, tuple[str, ...]] = {
    tp: tuple(ORDER_CHANNELS) if tp in ORDER_TOUCHPOINTS else (ch,) for tp, ch in CHANNEL_OF.items()
}

_ID = pd.Int64Dtype()

#: Columns that hold a person id. A person id is a non-negative integer (the simulator's
#: and the importers' unified ids) or text (a brand's own ids, ``"u_10086"``), the same
#: kind in every table of a dataset; every metric joins and groups on it as it is.
PERSON_ID_COLUMNS = ("person_id", "referrer_person_id")


def is_text_ids(s: pd.Series) -> bool:
    """Whether ``s`` holds person ids as text: a text column whose values are all strings (or missing).

    >>> is_text_ids(pd.Series(["u1", None])), is_text_ids(pd.Series([1, 2])), is_text_ids(pd.Series(["u1", 2]))
    (True, False, False)
    """
    if pd.api.types.is_string_dtype(s.dtype) and not pd.api.types.is_object_dtype(s.dtype):
        return True
    if not pd.api.types.is_object_dtype(s.dtype):
        return False
    values = s.dropna()
    return len(values) > 0 and all(isinstance(v, str) for v in values)


def _ts(nullable: bool = False) -> pa.Column:
    return pa.Column(pd.DatetimeTZDtype(tz=TIMEZONE), nullable=nullable, coerce=False)


def _cat(values: list[str], nullable: bool = False) -> pa.Column:
    return pa.Column(str, pa.Check.isin(values), nullable=nullable)


def _ids(nullable: bool = True) -> pa.Column:
    return pa.Column(_ID, pa.Check.ge(0), nullable=nullable)


def _fen(nullable: bool = False) -> pa.Column:
    return pa.Column(_ID, pa.Check.ge(0, error="non-negative amount"), nullable=nullable)


@dataclass(frozen=True)
class TableSpec:
    """One table: its pandera schema, primary key and whether it may be empty."""

    name: str
    schema: pa.DataFrameSchema
    key: tuple[str, ...] = ()
    required: bool = True
    doc: str = ""
    optional: tuple[str, ...] = ()
    """Columns a table may lack altogether (they are checked when present)."""

    @property
    def columns(self) -> list[str]:
        return list(self.schema.columns)


EVENTS = pa.DataFrameSchema(
    {
        "event_id": pa.Column("int64", nullable=False),
        "ts": _ts(),
        "person_id": pa.Column("int64", pa.Check.ge(0), nullable=False),
        "id_type": _cat(ALL_ID_TYPES),
        "id_value": pa.Column(str, nullable=False),
        "touchpoint": _cat(TOUCHPOINTS),
        "channel": _cat(CHANNELS),
        "campaign_id": _ids(),
        "article_id": _ids(),
        "live_id": _ids(),
        "store_id": _ids(),
        "guide_id": _ids(),
        "product_id": _ids(),
        "order_id": _ids(),
        "amount_fen": _fen(nullable=True),
        "referrer_person_id": _ids(),
    },
    strict=True,
    ordered=False,
    name="events",
)

PERSONS = pa.DataFrameSchema(
    {
        "person_id": pa.Column("int64", pa.Check.ge(0), nullable=False, unique=True),
        "gender": _cat(["female", "male"]),
        "age_band": _cat(["18-24", "25-34", "35-44", "45-54", "55+"]),
        "province": pa.Column(str),
        "city": pa.Column(str),
        "city_tier": pa.Column("int64", pa.Check.in_range(1, 5)),
        "occupation": pa.Column(str),
        "device": _cat(["ios", "android", "other"]),
        "member_level": _cat(["none", "silver", "gold", "platinum"]),
        "crm_join_date": _ts(nullable=True),
        "name": pa.Column(str, nullable=True),
        "phone": pa.Column(str, nullable=True),
        "acquisition_channel": _cat(CHANNELS),
    },
    strict=True,
    ordered=False,
    name="persons",
)

ID_LINKS = pa.DataFrameSchema(
    {
        "id_type_a": _cat(ALL_ID_TYPES),
        "id_value_a": pa.Column(str),
        "id_type_b": _cat(ALL_ID_TYPES),
        "id_value_b": pa.Column(str),
        "source": pa.Column(str),
    },
    strict=True,
    ordered=False,
    name="id_links",
)

CAMPAIGNS = pa.DataFrameSchema(
    {
        "campaign_id": pa.Column("int64", pa.Check.ge(0), unique=True),
        "name": pa.Column(str),
        "channel": _cat(CHANNELS),
        "start": _ts(),
        "end": _ts(),
        "spend_fen": _fen(),
    },
    strict=True,
    ordered=False,
    name="campaigns",
)

PRODUCTS = pa.DataFrameSchema(
    {
        "product_id": pa.Column("int64", pa.Check.ge(0), unique=True),
        "name": pa.Column(str),
        "category": pa.Column(str),
        "price_fen": _fen(),
    },
    strict=True,
    ordered=False,
    name="products",
)

ARTICLES = pa.DataFrameSchema(
    {
        "article_id": pa.Column("int64", pa.Check.ge(0), unique=True),
        "account": pa.Column(str),
        "title": pa.Column(str),
        "published_at": _ts(),
    },
    strict=True,
    ordered=False,
    name="articles",
)

LIVES = pa.DataFrameSchema(
    {
        "live_id": pa.Column("int64", pa.Check.ge(0), unique=True),
        "title": pa.Column(str),
        "start": _ts(),
        "end": _ts(),
    },
    strict=True,
    ordered=False,
    name="lives",
)

ASSIGNMENTS = pa.DataFrameSchema(
    {
        "person_id": pa.Column("int64", pa.Check.ge(0)),
        "experiment": pa.Column(str),
        "arm": pa.Column(str),
        "assigned_at": _ts(),
    },
    strict=True,
    ordered=False,
    name="assignments",
)

#: Official Account article statistics per article and day, as the datacube reports give
#: them (``getarticlesummary``; ``privdomain import oa-articles``): persons and counts,
#: aggregates only (no person ids).
ARTICLES_DAILY = pa.DataFrameSchema(
    {
        "article_id": pa.Column("int64", pa.Check.ge(0), nullable=False),
        "msgid": pa.Column(str, nullable=False),
        "title": pa.Column(str, nullable=True),
        "day": _ts(),
        **{c: _ids() for c in ("target_user", "int_page_read_user", "int_page_read_count", "ori_page_read_user",
                               "ori_page_read_count", "share_user", "share_count", "add_to_fav_user",
                               "add_to_fav_count")},
    },
    strict=True,
    ordered=False,
    name="articles_daily",
)

#: Every persons column but ``person_id`` may be left out: a brand's export seldom holds a
#: CRM profile, and an imported dataset's persons table may hold the person ids alone. A
#: metric that needs a profile column names it when it is missing.
PERSONS_OPTIONAL: tuple[str, ...] = tuple(c for c in PERSONS.columns if c != "person_id")

TABLES: dict[str, TableSpec] = {
    "events": TableSpec("events", EVENTS, key=("event_id",), doc="one row per touch"),
    "persons": TableSpec("persons", PERSONS, key=("person_id",), doc="CRM profile per person",
                         optional=PERSONS_OPTIONAL),
    "id_links": TableSpec("id_links", ID_LINKS, required=False, doc="pairs of ids known to be one person"),
    "campaigns": TableSpec("campaigns", CAMPAIGNS, key=("campaign_id",), required=False, doc="ad campaigns"),
    "products": TableSpec("products", PRODUCTS, key=("product_id",), required=False, doc="catalogue"),
    "articles": TableSpec("articles", ARTICLES, key=("article_id",), required=False, doc="OA article pushes"),
    "lives": TableSpec("lives", LIVES, key=("live_id",), required=False, doc="live-stream sessions"),
    "assignments": TableSpec(
        "assignments", ASSIGNMENTS, required=False, doc="randomised campaign arms (treatment / holdout)"
    ),
    "articles_daily": TableSpec("articles_daily", ARTICLES_DAILY, key=("article_id", "day"), required=False,
                                doc="Official Account article statistics per article and day (datacube)"),
}


def empty(table: str) -> pd.DataFrame:
    """An empty frame with the table's columns and dtypes.

    >>> list(empty("products").columns)
    ['product_id', 'name', 'category', 'price_fen']
    """
    spec = TABLES[table]
    out = {}
    for name, col in spec.schema.columns.items():
        dtype = col.dtype.type if col.dtype is not None else object
        if dtype is str or str(dtype) == "str":
            dtype = object
        out[name] = pd.Series([], dtype=dtype)
    return pd.DataFrame(out)


def whole_numbers(s: pd.Series) -> pd.Series | None:
    """``s`` as ``Int64`` when every value is a whole number, exactly; else None.

    Floats convert only when whole (``9900.0``; ``1989.9999`` is never rounded or
    truncated) and finite; an object column only when it holds integers or whole
    floats (never text or booleans). Nulls stay null.

    >>> whole_numbers(pd.Series([9900.0, None])).tolist()
    [9900, <NA>]
    >>> whole_numbers(pd.Series([19.9 * 100])) is None
    True
    """
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_integer_dtype(dtype):
        return s.astype("Int64")
    if pd.api.types.is_float_dtype(dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        ok = np.isnan(v) | (np.isfinite(v) & (v == np.round(v)) & (np.abs(v) < 2**63))
        if not ok.all():
            return None
        return s.astype("Int64")
    if pd.api.types.is_object_dtype(dtype):
        for v in s:
            if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
                continue
            if isinstance(v, (bool, np.bool_)):
                return None
            if isinstance(v, (int, np.integer)):
                continue
            if isinstance(v, (float, np.floating)) and np.isfinite(v) and v == round(v):
                continue
            return None
        try:
            return s.astype("Int64")
        except (TypeError, ValueError, OverflowError):
            return None
    return None


def conform(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Return a copy with the table's columns in schema order and canonical dtypes.

    Missing nullable id columns are added as all-null; timestamps are converted to
    the canonical zone (they must already be timezone-aware). Nothing is dropped:
    extra columns are kept for :func:`privdomain.validate.validate` to report.
    """
    spec = TABLES[table]
    out = df.copy()
    for name, col in spec.schema.columns.items():
        if name not in out.columns:
            if col.nullable and str(col.dtype) == "Int64":
                n = len(out)
                out[name] = pd.arrays.IntegerArray(np.zeros(n, dtype="int64"), np.ones(n, dtype=bool))
            continue
        dt = str(col.dtype)
        s = out[name]
        if dt in ("Int64", "int64") and str(s.dtype) not in ("Int64", "int64"):
            exact = whole_numbers(s)
            if exact is not None:
                out[name] = exact if dt == "Int64" or exact.isna().any() else exact.astype("int64")
        elif dt.startswith("datetime64") and isinstance(s.dtype, pd.DatetimeTZDtype):
            out[name] = s.dt.tz_convert(TIMEZONE).astype(f"datetime64[ns, {TIMEZONE}]")
        elif dt in ("str", "object") and isinstance(s.dtype, pd.CategoricalDtype):
            out[name] = s.astype(object)
        elif dt == "int64" and str(s.dtype) == "Int64" and not s.isna().any():
            out[name] = s.astype("int64")
    ordered = [c for c in spec.columns if c in out.columns] + [c for c in out.columns if c not in spec.columns]
    return out[ordered]


# --------------------------------------------------------------------------------------
# the open vocabulary of a dataset
# --------------------------------------------------------------------------------------

#: Digits after the decimal point of each currency's minor unit (ISO 4217). Amounts are
#: stored as integers of the minor unit (fen for CNY, cents for USD, yen for JPY) in the
#: ``*_fen`` columns, whatever the currency: the column names keep the simulator's unit.
MINOR_UNIT_DIGITS: dict[str, int] = {
    "CNY": 2, "HKD": 2, "MOP": 2, "TWD": 2, "USD": 2, "EUR": 2, "GBP": 2, "SGD": 2, "AUD": 2, "CAD": 2,
    "CHF": 2, "MYR": 2, "THB": 2, "JPY": 0, "KRW": 0, "VND": 0, "KWD": 3, "BHD": 3,
}
#: The manifest keys of the vocabulary (see :class:`Vocabulary`).
VOCABULARY_KEYS = ("touchpoints", "purchase_event", "refund_event", "order_event", "timezone", "currency")


@dataclass(frozen=True)
class Vocabulary:
    """What a dataset calls things: its touchpoints, purchase and refund events, zone and money.

    A dataset declares these in its manifest (``dataset.json``); the defaults are the
    simulator's WeChat vocabulary. :func:`vocabulary` reads them.

    Attributes
    ----------
    touchpoints : dict
        Touchpoints the dataset adds to :data:`CHANNEL_OF`, each with its channel family
        (``{"view": "web", "cart": "web"}``).
    purchase_event, refund_event, order_event : str
        The touchpoint that is a purchase (default ``pay``), a refund (``refund``) and an
        order placed (``order``). Importers write these canonical names, so every metric
        finds them; the source's own names are kept in the manifest's ``source_events``.
    timezone : str
        The zone the source's wall-clock times were read in (``source_timezone`` of an
        import; default ``Asia/Shanghai``). Stored times are instants; metrics count
        the days and weeks of this zone (:func:`privdomain.events.timezone_of`).
    currency : str
        ISO 4217 code of the amounts (default ``CNY``); amounts are integers of its minor
        unit (:attr:`minor_digits`).
    """

    touchpoints: dict[str, str]
    purchase_event: str = PURCHASE
    refund_event: str = "refund"
    order_event: str = "order"
    timezone: str = TIMEZONE
    currency: str = "CNY"

    @property
    def minor_digits(self) -> int:
        """Decimal digits of the minor unit (2: 1 CNY = 100 fen)."""
        return MINOR_UNIT_DIGITS[self.currency]

    @property
    def minor_per_major(self) -> int:
        """Minor units in one major unit (100 for CNY and USD, 1 for JPY)."""
        return 10 ** self.minor_digits

    def channel_of(self) -> dict[str, str]:
        """Every touchpoint with its channel family: the WeChat ones and the declared ones."""
        return {**CHANNEL_OF, **self.touchpoints}

    def manifest(self) -> dict[str, object]:
        """The manifest entries that declare this vocabulary."""
        return {"touchpoints": dict(self.touchpoints), "purchase_event": self.purchase_event,
                "refund_event": self.refund_event, "order_event": self.order_event,
                "source_timezone": self.timezone, "currency": self.currency,
                "money_unit": f"1/{self.minor_per_major} {self.currency}" if self.minor_digits else self.currency}


def vocabulary(source: object = None, **overrides: object) -> Vocabulary:
    """The vocabulary a dataset's manifest declares, with overrides.

    Parameters
    ----------
    source
        A manifest (``dict``) or None for the defaults; a dataset folder's vocabulary is
        :func:`privdomain.io.vocabulary`.
    **overrides
        Any :class:`Vocabulary` field, as a caller's argument (wins over the manifest).

    Raises
    ------
    privdomain.errors.UsageError
        An unknown key, currency or time zone, or a touchpoint map that is not
        ``{name: channel}`` text.

    Examples
    --------
    >>> v = vocabulary({"currency": "USD", "touchpoints": {"view": "web"}})
    >>> v.purchase_event, v.minor_per_major, v.channel_of()["view"]
    ('pay', 100, 'web')
    >>> vocabulary(currency="RMB").currency
    'CNY'
    >>> vocabulary(currency="USDD")
    Traceback (most recent call last):
    ...
    privdomain.errors.UsageError: unknown currency 'USDD'; did you mean 'USD'? Known: AUD, BHD, CAD, CHF, CNY, ...
    """
    import zoneinfo

    from .errors import UsageError

    manifest: dict = {}
    if isinstance(source, dict):
        manifest = source
    elif source is not None:
        raise UsageError("vocabulary: give a manifest (a dict); for a dataset folder use privdomain.io.vocabulary")
    fields = {"touchpoints", "purchase_event", "refund_event", "order_event", "timezone", "currency"}
    bad = [k for k in overrides if k not in fields]
    if bad:
        raise UsageError.unknown("vocabulary field", bad[0], sorted(fields))
    values: dict[str, object] = {k: manifest[k] for k in fields if k in manifest and manifest[k] is not None}
    if "source_timezone" in manifest and "timezone" not in overrides:
        values["timezone"] = manifest["source_timezone"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    tps = values.get("touchpoints") or {}
    if not isinstance(tps, dict) or not all(isinstance(k, str) and isinstance(v, str) and k and v
                                            for k, v in tps.items()):
        raise UsageError(f"touchpoints must map each touchpoint name to its channel family (text), got "
                         f"{str(tps)[:80]}")
    values["touchpoints"] = dict(tps)
    for k in ("purchase_event", "refund_event", "order_event", "timezone", "currency"):
        if k in values and (not isinstance(values[k], str) or not values[k]):
            raise UsageError(f"{k} must be a non-empty name, got {values[k]!r}")
    cur = str(values.get("currency", "CNY")).upper()
    cur = {"RMB": "CNY", "YUAN": "CNY", "元": "CNY"}.get(cur, cur)
    if cur not in MINOR_UNIT_DIGITS:
        raise UsageError.unknown("currency", cur, sorted(MINOR_UNIT_DIGITS))
    values["currency"] = cur
    zone = str(values.get("timezone", TIMEZONE))
    if zone.upper() in ("UTC", "Z", "GMT"):
        zone = "UTC"
    else:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"unknown time zone {zone!r} (use an IANA name such as 'UTC' or "
                             f"'Asia/Shanghai')") from None
    values["timezone"] = zone
    return Vocabulary(**values)  # type: ignore[arg-type]
