"""``import table``: any CSV, Excel or Parquet table of events or orders, with a column mapping.

The mapping names the source column of each field (``ts=下单时间,person_id=用户ID,
amount=实付金额``):

=================  ===============================================================
field              meaning
=================  ===============================================================
``ts``             when (required): text, a date, epoch numbers (``--time-format``)
``person_id``      the person's id as the source knows it (required; any text)
``event``          the event name; without it every row is a purchase
``amount``         money (``--unit major``: yuan/dollars; ``minor``: fen/cents)
``order_id``       the order (any text; generated from the row number if absent)
``product_id``     the product (any text)
``channel``        the channel family of the row
``referrer``       the person whose share brought this one (an id like ``person_id``)
``campaign_id``,   what the row belongs to (any text: whole numbers are kept, other
``article_id``...  text becomes a stable 62-bit id)
``unionid`` ...    other ids of the same person (``unionid``, ``mp_openid``,
                   ``oa_openid``, ``wecom_external_id``, ``phone``, ``phone_hash``,
                   ``member_id``, ``user_id``): written as id links and unified
=================  ===============================================================

Event names: the purchase (``--purchase-event``), refund and order events become
``pay``, ``refund`` and ``order`` (what every metric reads; the source's names are
kept in the manifest's ``source_events``); WeChat touchpoint names are kept; any other
name must be declared with its channel family (``--touchpoint view=web``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .. import schema
from ..errors import DataError, UsageError
from ._core import (
    CHUNK_ROWS,
    DatasetBuilder,
    ImportResult,
    Source,
    check_columns,
    parse_times,
    phone_hash,
    read_chunks,
    stable_id,
    to_minor_units,
)

__all__ = ["import_table", "load_mapping", "FIELDS", "LINK_FIELDS", "parse_pairs"]

#: The fields a mapping may name (besides the id link fields).
FIELDS = ("ts", "person_id", "event", "amount", "order_id", "product_id", "channel", "referrer", "campaign_id",
          "article_id", "live_id", "store_id", "guide_id")
_ID_FIELDS = ("product_id", "campaign_id", "article_id", "live_id", "store_id", "guide_id")
#: Id link fields: another id of the row's person, with its id type.
LINK_FIELDS = {"unionid": "unionid", "mp_openid": "mp_openid", "oa_openid": "oa_openid",
               "wecom_external_id": "wecom_external_id", "phone": "phone_hash", "phone_hash": "phone_hash",
               "member_id": "member_id", "user_id": "user_id"}
UNITS = {"yuan": "major", "major": "major", "dollar": "major", "元": "major",
         "fen": "minor", "minor": "minor", "cent": "minor", "分": "minor"}


def parse_pairs(text: str | Mapping[str, str] | None, what: str = "--map") -> dict[str, str]:
    """``"a=x,b=y"`` as ``{"a": "x", "b": "y"}`` (a mapping is returned as a dict).

    >>> parse_pairs("ts=下单时间, person_id=用户ID")
    {'ts': '下单时间', 'person_id': '用户ID'}
    """
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return {str(k): str(v) for k, v in text.items()}
    out: dict[str, str] = {}
    for part in str(text).split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"{what}: {part.strip()!r} is not FIELD=COLUMN (rule: comma-separated pairs such as "
                             f"ts=下单时间,person_id=用户ID)")
        if key.strip() in out:
            raise UsageError(f"{what}: {key.strip()!r} is given twice")
        out[key.strip()] = value.strip()
    return out


def load_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping file: ``map: {field: column}`` and any import option (``unit``, ``tz``...).

    A file that holds only ``field: column`` pairs is the mapping itself.
    """
    import yaml

    p = Path(path)
    data = yaml.safe_load(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise UsageError(f"{p}: a mapping file holds `map: {{field: column}}` and options, got "
                         f"{type(data).__name__}")
    if "map" not in data:
        data = {"map": data}
    if not isinstance(data["map"], dict):
        raise UsageError(f"{p}: `map` must be field: column pairs")
    return data


def _check_mapping(mapping: Mapping[str, str]) -> None:
    known = [*FIELDS, *LINK_FIELDS]
    for k in mapping:
        if k not in known:
            raise UsageError(str(UsageError.unknown("mapping field", k, known)) +
                             " (rule: --map FIELD=COLUMN with a privdomain field on the left)")
    for need in ("ts", "person_id"):
        if need not in mapping:
            raise UsageError(f"--map: no column for {need!r} (rule: a table import needs ts and person_id, "
                             f"e.g. --map ts=下单时间,person_id=用户ID)")


def import_table(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    mapping: Mapping[str, str] | str,
    *,
    unit: str = "minor",
    currency: str = "CNY",
    tz: str = schema.TIMEZONE,
    time_format: str | None = None,
    purchase_event: str = "pay",
    refund_event: str | None = None,
    order_event: str | None = None,
    touchpoints: Mapping[str, str] | None = None,
    id_type: str = "user_id",
    order_channel: str = "mini_program",
    encoding: str | None = None,
    sep: str | None = None,
    columns: Sequence[str] | None = None,
    sheet: str | int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportResult:
    """Import one or more tables (CSV, Excel, Parquet) into a dataset folder.

    Parameters
    ----------
    sources
        Files with the same columns (read in order, ``chunk_rows`` at a time).
    out
        The dataset folder to write: missing, empty, or one an earlier import wrote.
    mapping
        ``{field: source column}`` or ``"ts=下单时间,person_id=用户ID,amount=实付金额"``.
    unit, currency
        ``unit="major"`` (``yuan``): amounts in yuan/dollars, converted exactly to
        minor units; ``"minor"`` (``fen``): already integers of the minor unit.
    tz, time_format
        The zone of wall-clock times (times with offsets keep theirs) and their format.
    purchase_event, refund_event, order_event
        The source's names of a purchase, a refund and an order placed.
    touchpoints
        Other event names, each with its channel family (``{"view": "web"}``).
    id_type
        What the ``person_id`` column holds (``user_id``, ``mp_openid``, ``unionid``...).
    order_channel
        The channel of purchase rows when no ``channel`` column is mapped.
    encoding, sep, columns, sheet
        CSV encoding (default: detected), separator (``whitespace`` for blank-separated
        text), column names of a file without a header row, Excel sheet.

    Returns
    -------
    ImportResult

    Raises
    ------
    UsageError
        A wrong mapping field, unit, id type or channel.
    ImporterError
        A mapped column missing from a file (did-you-mean), an unreadable file.
    DataError
        Values that break a rule (unparseable time, fractional minor units, an unknown
        event name, a purchase without amount): column, rule and row count named.
    """
    mapping = parse_pairs(mapping)
    _check_mapping(mapping)
    if unit not in UNITS:
        raise UsageError.unknown("money unit", unit, list(UNITS))
    money = UNITS[unit]
    if id_type not in schema.ALL_ID_TYPES:
        raise UsageError.unknown("id type", id_type, schema.ALL_ID_TYPES)
    declared = dict(touchpoints or {})
    vocab = schema.vocabulary(touchpoints=declared, timezone=tz, currency=currency)
    channels = [*schema.CHANNELS, *declared.values()]
    if order_channel not in schema.ORDER_CHANNELS:
        raise UsageError.unknown("order channel", order_channel, schema.ORDER_CHANNELS)
    for name in declared:
        if name in schema.CHANNEL_OF:
            raise UsageError(f"--touchpoint {name}: already a WeChat touchpoint (channel {schema.CHANNEL_OF[name]})")
    renames = {purchase_event: "pay"}
    if refund_event:
        renames[refund_event] = "refund"
    if order_event:
        renames[order_event] = "order"
    if "event" not in mapping and (refund_event or order_event):
        raise UsageError("--refund-event/--order-event need an event column (map event=COLUMN)")
    files = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    if not files:
        raise UsageError("give at least one source file")
    builder = DatasetBuilder(out, vocab, "table")
    try:
        row0 = 0
        seen_events: dict[str, int] = {}
        for f in files:
            src = Source(Path(f), encoding=encoding, sep=sep, columns=tuple(columns) if columns else None,
                         sheet=sheet)
            n_file = 0
            for chunk in read_chunks(src, chunk_rows):
                check_columns(str(src.path), mapping, list(chunk.columns))
                block, links = _block(chunk, mapping, row0, src.path.name, builder, vocab, renames, declared,
                                      channels, money, time_format, id_type, order_channel, seen_events)
                builder.add(block, links)
                n_file += len(chunk)
                row0 += len(chunk)
            builder.add_source(src.path, n_file)
        meta = {"mapping": dict(mapping), "source_events": {k: v for k, v in renames.items()
                                                            if k in seen_events},
                "money_source_unit": "major" if money == "major" else "minor",
                "order_channel_assumed": None if "channel" in mapping else order_channel,
                "source_event_counts": seen_events}
        return builder.finish(meta)
    except BaseException:
        import shutil

        shutil.rmtree(builder.tmp, ignore_errors=True)
        raise


def _block(chunk: pd.DataFrame, mapping: Mapping[str, str], row0: int, where: str, builder: DatasetBuilder,
           vocab: schema.Vocabulary, renames: Mapping[str, str], declared: Mapping[str, str],
           channels: list[str], money: str, time_format: str | None, id_type: str, order_channel: str,
           seen: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(chunk)
    builder.rows_read += n
    chunk = chunk.reset_index(drop=True)
    person = chunk[mapping["person_id"]].astype("string").str.strip()
    missing = person.isna() | (person == "")
    builder.drop("no person id", int(missing.sum()))
    keep = ~missing
    rows = pd.Series(range(row0 + 1, row0 + n + 1))[keep.to_numpy()].reset_index(drop=True)
    chunk = chunk[keep.to_numpy()].reset_index(drop=True)
    person = person[keep.to_numpy()].reset_index(drop=True)
    builder.rows_kept += len(chunk)
    out = pd.DataFrame({"id_type": id_type, "id_value": person.astype(object)}, index=chunk.index)
    out["ts"] = parse_times(chunk[mapping["ts"]], tz=vocab.timezone, fmt=time_format, where=where,
                            column=mapping["ts"])
    if out["ts"].isna().any():
        bad = out["ts"].isna()
        raise DataError(where, mapping["ts"], "must not be empty (every event has a time)", int(bad.sum()))
    if "event" in mapping:
        raw = chunk[mapping["event"]].astype("string").str.strip()
        if raw.isna().any():
            raise DataError(where, mapping["event"], "must not be empty (every row names its event)",
                            int(raw.isna().sum()))
        for k, v in raw.value_counts().items():
            seen[str(k)] = seen.get(str(k), 0) + int(v)
        tp = raw.map(lambda v: renames.get(v, v)).astype(object)
        known = {*schema.CHANNEL_OF, *declared}
        unknown = ~tp.isin(list(known))
        if unknown.any():
            counts = raw[unknown].value_counts()
            first = str(counts.index[0])
            hint = str(UsageError.unknown("event", first, [*renames, *known])).split(" Known:")[0]
            raise DataError(where, mapping["event"], "must be a known event", int(unknown.sum()),
                            list(counts.index[:5]),
                            hint=f"{hint}; name the purchase with --purchase-event, or declare the event with its "
                                 f"channel family: --touchpoint {first}=CHANNEL")
    else:
        seen[vocab.purchase_event] = seen.get(vocab.purchase_event, 0) + len(chunk)
        tp = pd.Series("pay", index=chunk.index, dtype=object)
    out["touchpoint"] = tp
    is_order = tp.isin(schema.ORDER_TOUCHPOINTS)
    if "channel" in mapping:
        ch = chunk[mapping["channel"]].astype("string").str.strip().astype(object)
        bad = ch.notna() & ~ch.isin(channels)
        if bad.any():
            first = str(ch[bad].iloc[0])
            raise DataError(where, mapping["channel"], "must be a known channel family", int(bad.sum()),
                            list(ch[bad].drop_duplicates()[:5]),
                            hint=str(UsageError.unknown("channel", first, channels)).split(" Known:")[0])
        fallback = tp.map(lambda t: order_channel if t in schema.ORDER_TOUCHPOINTS else
                          declared.get(t, schema.CHANNEL_OF.get(t)))
        out["channel"] = ch.where(ch.notna(), fallback)
    else:
        out["channel"] = tp.map(lambda t: order_channel if t in schema.ORDER_TOUCHPOINTS else
                                declared.get(t, schema.CHANNEL_OF.get(t)))
    if "amount" in mapping:
        out["amount_fen"] = to_minor_units(chunk[mapping["amount"]], digits=vocab.minor_digits, unit=money,
                                           where=where, column=mapping["amount"])
        lacking = is_order & out["amount_fen"].isna()
        if lacking.any():
            raise DataError(where, mapping["amount"], "must be present on every purchase, order and refund row",
                            int(lacking.sum()), hint="a purchase without an amount would leave GMV short")
    elif is_order.any():
        raise UsageError(f"{where}: purchase rows need an amount column (map amount=COLUMN; rule: every purchase "
                         f"carries its amount)")
    if "order_id" in mapping:
        out["order_id"] = stable_id(chunk[mapping["order_id"]]).where(is_order, pd.NA)
        lacking = is_order & out["order_id"].isna()
        if lacking.any():
            raise DataError(where, mapping["order_id"], "must be present on every purchase, order and refund row",
                            int(lacking.sum()))
    else:
        if (tp == "refund").any():
            raise UsageError(f"{where}: refund rows need an order id column to find the order they refund "
                             f"(map order_id=COLUMN)")
        out["order_id"] = pd.array(rows.to_numpy(), dtype="Int64")
        out.loc[~is_order, "order_id"] = pd.NA
    for f in _ID_FIELDS:
        if f in mapping:
            out[f] = stable_id(chunk[mapping[f]])
    if "referrer" in mapping:
        ref = chunk[mapping["referrer"]].astype("string").str.strip()
        out["referrer_value"] = ref.where(ref.notna() & (ref != ""), None).astype(object)
    links = []
    for field_, col in mapping.items():
        if field_ not in LINK_FIELDS:
            continue
        other = chunk[col]
        values = phone_hash(other) if field_ == "phone" else other.astype("string").str.strip().astype(object)
        have = values.notna() & (values != "")
        if have.any():
            links.append(pd.DataFrame({"id_type_a": id_type, "id_value_a": person[have].astype(object),
                                       "id_type_b": LINK_FIELDS[field_], "id_value_b": values[have].astype(object),
                                       "source": f"import:{col}"}))
    return out, (pd.concat(links, ignore_index=True) if links else None)


