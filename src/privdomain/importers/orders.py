"""Order exports: Youshu data-api order records and a plain Mini Program order export.

Both give one record per order; each record becomes an ``order`` event at its
creation time, a ``pay`` event when it was paid, and a ``refund`` event when it was
refunded, with the same ``order_id``.

Youshu data-api orders (``youshu-orders``)
------------------------------------------
JSON lines (one order object per line), a JSON document (a list, or
``{"orders": [...]}``) or a CSV with the same field names (nested fields as
``user_info.open_id``). Fields read:

* ``external_order_id`` (the order), ``create_time`` (epoch milliseconds),
  ``pay_time`` (optional, ms; else the creation time), ``status_change_time``
  (optional, ms: the refund's time for a returned order);
* ``order_status`` (:data:`YOUSHU_STATUS`): 1110 awaiting payment (order only),
  1150 paid, 1160 shipped, 1180 complete (order and pay), 1280 refunding (order and
  pay; the refund is not complete, counted in the report), 1290 returned (order, pay
  and refund). Another code is an error naming it, unless mapped (``status_map``);
* the amount chain, in yuan: ``goods_amount_total`` + ``freight_amount`` =
  ``order_amount`` (the order event's amount); ``payable_amount`` after discounts;
  ``payment_amount`` paid (the pay event's amount); ``refund_amount`` (optional;
  else the paid amount) for the refund. Records whose chain does not add up are kept
  and counted in the report;
* ``user_info``: ``open_id`` (Mini Program openid), ``union_id``, ``user_phone``
  (stored only as a hash), ``user_id`` and ``member_id``: every id of a record is
  linked (id links) and unified into one person;
* the channel: ``order_source`` (``wxapp``, ``app``, ``mobileweb``, ``pcweb``,
  ``offline``...) and ``chan_info.chan_type`` (the type of ``chan_id``: ``guide``,
  ``live``, ``store``...): a guide's order is on the ``guide`` channel, a live
  stream's on ``live``, an offline order on ``store``, the rest ``mini_program``;
  ``chan_info.chan_wxapp_scene`` (the Mini Program scene) is counted in the report;
* ``goods_info[0].external_sku_id`` (or ``sku_id``): the product.

Mini Program orders (``mp-orders``)
-----------------------------------
A CSV (or Excel / Parquet) with the columns ``order_id``, ``openid``, ``unionid``
(optional), ``create_time``, ``pay_time``, ``refund_time`` (wall-clock text in the
given zone, default Beijing), ``total_fee`` (paid, in fen), ``refund_fee``
(optional, fen), ``status`` (``NOTPAY``/``CLOSED``/``待支付``: order only;
``SUCCESS``/``已支付``: paid; ``REFUND``/``已退款``: paid and refunded) and ``scene``
(counted). Every order is on the ``mini_program`` channel.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
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
    text_column,
    to_minor_units,
)

__all__ = ["YOUSHU_STATUS", "MP_STATUS", "import_youshu_orders", "import_mp_orders"]

#: Youshu order status codes and the events a record with that status yields.
YOUSHU_STATUS: dict[int, tuple[str, ...]] = {
    1110: ("order",),                     # awaiting payment
    1150: ("order", "pay"),               # paid, awaiting shipment
    1160: ("order", "pay"),               # shipped
    1180: ("order", "pay"),               # complete
    1280: ("order", "pay"),               # refunding (not yet refunded)
    1290: ("order", "pay", "refund"),     # returned / refunded
}
#: Mini Program export status values and their events.
MP_STATUS: dict[str, tuple[str, ...]] = {
    "NOTPAY": ("order",), "CLOSED": ("order",), "待支付": ("order",), "已关闭": ("order",),
    "SUCCESS": ("order", "pay"), "PAID": ("order", "pay"), "已支付": ("order", "pay"), "已完成": ("order", "pay"),
    "REFUND": ("order", "pay", "refund"), "REFUNDED": ("order", "pay", "refund"), "已退款": ("order", "pay", "refund"),
}
_EVENTS = {"order": ("order",), "pay": ("order", "pay"), "refund": ("order", "pay", "refund")}
_CHAN_TYPES = {"guide": "guide", "导购": "guide", "live": "live", "直播": "live", "store": "store", "门店": "store",
               "street_promotion": "store", "地推": "store"}
_OFFLINE = {"offline", "pos", "store", "门店"}
#: Youshu ``user_info`` fields and the id type each holds (the phone is hashed).
YOUSHU_IDS = {"user_info.user_id": "user_id", "user_info.member_id": "member_id", "user_info.union_id": "unionid",
              "user_info.open_id": "mp_openid", "user_info.user_phone": "phone_hash"}


def _col(chunk: pd.DataFrame, name: str) -> pd.Series | None:
    """A field, nested (``user_info.open_id``) or flat (``open_id``)."""
    if name in chunk.columns:
        return chunk[name]
    short = name.rsplit(".", 1)[-1]
    return chunk[short] if short in chunk.columns else None


def _parse_status_map(status_map: Mapping[str, str] | None) -> dict[str, tuple[str, ...]]:
    out = {}
    for code, ev in (status_map or {}).items():
        if ev not in _EVENTS:
            raise UsageError.unknown("status event", ev, list(_EVENTS))
        out[str(code).strip()] = _EVENTS[ev]
    return out


def _order_events(builder: DatasetBuilder, where: str, *, key: pd.Series, events: pd.Series, created: pd.Series,
                  paid_at: pd.Series, refunded_at: pd.Series, order_amt: pd.Series, pay_amt: pd.Series,
                  refund_amt: pd.Series, channel: pd.Series, product: pd.Series, ids: list[tuple[str, pd.Series]]
                  ) -> None:
    """One chunk of normalised orders into staged events and id links."""
    n = len(key)
    present = [(t, v) for t, v in ids]
    id_type = pd.Series([None] * n, dtype=object)
    id_value = pd.Series([None] * n, dtype=object)
    for t, v in present:
        fill = id_value.isna() & v.notna()
        id_type[fill] = t
        id_value[fill] = v[fill]
    no_id = id_value.isna()
    builder.drop("no person id", int(no_id.sum()))
    no_key = key.isna() & ~no_id
    if no_key.any():
        raise DataError(where, "order id", "must be present on every order", int(no_key.sum()))
    keep = ~no_id
    builder.rows_kept += int(keep.sum())
    order_id = stable_id(key)
    blocks = []
    for tp, when, amount in (("order", created, order_amt), ("pay", paid_at, pay_amt),
                             ("refund", refunded_at, refund_amt)):
        m = keep & events.map(lambda e, tp=tp: tp in e)
        if not m.any():
            continue
        lacking = m & amount.isna()
        if lacking.any():
            raise DataError(where, f"{tp} amount", f"must be present on every {tp} event", int(lacking.sum()))
        blocks.append(pd.DataFrame({
            "ts": when[m].to_numpy(), "id_type": id_type[m].to_numpy(), "id_value": id_value[m].to_numpy(),
            "touchpoint": tp, "channel": channel[m].to_numpy(), "order_id": order_id[m].to_numpy(),
            "amount_fen": amount[m].to_numpy(), "product_id": product[m].to_numpy()}))
    if blocks:
        builder.add(pd.concat(blocks, ignore_index=True), _links(present, keep, where))


def _links(ids: list[tuple[str, pd.Series]], keep: pd.Series, where: str) -> pd.DataFrame | None:
    """Links between every pair of consecutive ids a record carries (a chain joins them all)."""
    out = []
    if len(ids) < 2:  # each id is linked to the first present id of its record
        return None
    first_t = pd.Series([None] * len(keep), dtype=object)
    first_v = pd.Series([None] * len(keep), dtype=object)
    for t, v in ids:
        fill = first_v.isna() & v.notna()
        first_t[fill] = t
        first_v[fill] = v[fill]
    for t, v in ids:
        m = keep & v.notna() & first_v.notna() & ~((first_t == t) & (first_v == v))
        if m.any():
            out.append(pd.DataFrame({"id_type_a": first_t[m].to_numpy(), "id_value_a": first_v[m].to_numpy(),
                                     "id_type_b": t, "id_value_b": v[m].to_numpy(), "source": where}))
    return pd.concat(out, ignore_index=True) if out else None


def import_youshu_orders(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    unit: str = "major",
    currency: str = "CNY",
    status_map: Mapping[str, str] | None = None,
    encoding: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportResult:
    """Import Youshu data-api order records (JSON lines, JSON or CSV) into a dataset folder.

    Parameters
    ----------
    sources
        Order files.
    out
        The dataset folder to write.
    unit, currency
        Amounts are yuan (``unit="major"``, Youshu's unit) converted exactly to fen.
    status_map
        Extra status codes and the last event they mean (``{"1130": "order"}``; ``pay``,
        ``refund``).
    encoding
        Text encoding (default: detected).

    Raises
    ------
    DataError
        An unknown status code (named with its count), an unparseable time, fractional
        fen, an order without id or amount.
    """
    from .table import UNITS

    if unit not in UNITS:
        raise UsageError.unknown("money unit", unit, list(UNITS))
    extra = _parse_status_map(status_map)
    codes = {str(k): v for k, v in YOUSHU_STATUS.items()} | extra
    vocab = schema.vocabulary(currency=currency)
    builder = DatasetBuilder(out, vocab, "youshu-orders")
    files = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    scenes: dict[str, int] = {}
    chain_bad = 0
    refunding = 0
    try:
        for f in files:
            src = Source(Path(f), encoding=encoding)
            rows = 0
            for chunk in read_chunks(src, chunk_rows):
                where = src.path.name
                need = {c: c for c in ("external_order_id", "create_time", "order_status")}
                check_columns(where, need, list(chunk.columns), "a Youshu order record")
                chunk = chunk.reset_index(drop=True)
                n = len(chunk)
                rows += n
                builder.rows_read += n
                status = text_column(chunk["order_status"], n).map(lambda v: None if v is None else v.removesuffix(".0"))
                unknown = ~status.isin(list(codes))
                if unknown.any():
                    vals = status[unknown].value_counts(dropna=False)
                    raise DataError(where, "order_status", "must be a known Youshu status code "
                                    f"({', '.join(sorted(codes))})", int(unknown.sum()), list(vals.index[:5]),
                                    hint="map other codes with --status-map CODE=order|pay|refund")
                events = status.map(codes)
                refunding += int((status == "1280").sum())
                created = parse_times(chunk["create_time"], tz="UTC", fmt="epoch_ms", where=where,
                                      column="create_time")
                pay_col = _col(chunk, "pay_time")
                paid_at = created if pay_col is None else parse_times(pay_col, tz="UTC", fmt="epoch_ms",
                                                                      where=where, column="pay_time")
                paid_at = paid_at.where(paid_at.notna(), created)
                ch_col = _col(chunk, "status_change_time")
                refunded_at = paid_at if ch_col is None else parse_times(ch_col, tz="UTC", fmt="epoch_ms",
                                                                         where=where, column="status_change_time")
                refunded_at = refunded_at.where(refunded_at.notna(), paid_at)
                money = {}
                for name in ("goods_amount_total", "freight_amount", "order_amount", "payable_amount",
                             "payment_amount", "refund_amount"):
                    c = _col(chunk, name)
                    money[name] = None if c is None else to_minor_units(
                        c, digits=vocab.minor_digits, unit=UNITS[unit], where=where, column=name)
                none = pd.Series(pd.array([pd.NA] * n, dtype="Int64"))
                order_amt = money["order_amount"] if money["order_amount"] is not None else \
                    (money["payable_amount"] if money["payable_amount"] is not None else none)
                pay_amt = money["payment_amount"] if money["payment_amount"] is not None else \
                    (money["payable_amount"] if money["payable_amount"] is not None else order_amt)
                refund_amt = money["refund_amount"] if money["refund_amount"] is not None else pay_amt
                refund_amt = refund_amt.where(refund_amt.notna(), pay_amt)
                chain_bad += _chain_breaks(money)
                source = text_column(_col(chunk, "order_source"), n).map(lambda v: (v or "").lower())
                ctype = text_column(_col(chunk, "chan_info.chan_type"), n)
                channel = ctype.map(lambda v: _CHAN_TYPES.get(str(v).lower(), None) if v else None)
                channel = channel.where(channel.notna(), source.map(lambda v: "store" if v in _OFFLINE else
                                                                    "mini_program"))
                scene = text_column(_col(chunk, "chan_info.chan_wxapp_scene"), n)
                for k, v in scene.value_counts().items():
                    scenes[str(k)] = scenes.get(str(k), 0) + int(v)
                product = _product(chunk, n)
                ids = []
                for field_, id_type in YOUSHU_IDS.items():
                    v = text_column(_col(chunk, field_), n)
                    if id_type == "phone_hash":
                        v = phone_hash(v)
                    ids.append((id_type, v))
                _order_events(builder, where, key=text_column(chunk["external_order_id"], n), events=events,
                              created=created, paid_at=paid_at, refunded_at=refunded_at, order_amt=order_amt,
                              pay_amt=pay_amt, refund_amt=refund_amt, channel=channel, product=product, ids=ids)
            builder.add_source(src.path, rows)
        builder.notes.update({"amount chain does not add up (kept)": chain_bad,
                              "status 1280 refunding: paid, refund not complete": refunding})
        builder.notes = +builder.notes
        return builder.finish({"status_codes": {k: list(v) for k, v in codes.items()}, "wxapp_scenes": scenes})
    except BaseException:
        import shutil

        shutil.rmtree(builder.tmp, ignore_errors=True)
        raise


def _chain_breaks(money: dict[str, pd.Series | None]) -> int:
    """Records whose amount chain does not add up: goods + freight = order >= payable >= paid."""
    bad = None
    g, f, o, p, paid = (money[k] for k in ("goods_amount_total", "freight_amount", "order_amount", "payable_amount",
                                           "payment_amount"))
    checks = []
    if g is not None and o is not None:
        checks.append((g + (f if f is not None else 0)) != o)
    if o is not None and p is not None:
        checks.append(p > o)
    if p is not None and paid is not None:
        checks.append(paid > p)
    for c in checks:
        c = c.fillna(False).astype(bool)
        bad = c if bad is None else (bad | c)
    return 0 if bad is None else int(bad.sum())


def _product(chunk: pd.DataFrame, n: int) -> pd.Series:
    if "goods_info" in chunk.columns:
        def first(v: object) -> object:
            if isinstance(v, (list, tuple, np.ndarray)) and len(v) and isinstance(v[0], dict):
                return v[0].get("external_sku_id", v[0].get("sku_id"))
            return None
        return stable_id(chunk["goods_info"].map(first))
    for name in ("external_sku_id", "sku_id", "goods_info.external_sku_id"):
        if name in chunk.columns:
            return stable_id(text_column(chunk[name], n))
    return pd.Series(pd.array([pd.NA] * n, dtype="Int64"))


def import_mp_orders(
    sources: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    unit: str = "minor",
    currency: str = "CNY",
    tz: str = schema.TIMEZONE,
    time_format: str | None = None,
    status_map: Mapping[str, str] | None = None,
    encoding: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportResult:
    """Import a plain Mini Program order export (CSV, Excel or Parquet) into a dataset folder.

    Parameters
    ----------
    sources, out
        Order files and the dataset folder to write.
    unit, currency
        ``total_fee`` / ``refund_fee`` in fen by default (WeChat Pay's unit).
    tz, time_format
        The zone and format of the wall-clock times (default Beijing, ISO 8601).
    status_map
        Extra status values and the last event they mean (``{"部分退款": "refund"}``).
    encoding
        CSV text encoding (default: detected).
    """
    from .table import UNITS

    if unit not in UNITS:
        raise UsageError.unknown("money unit", unit, list(UNITS))
    codes = dict(MP_STATUS) | _parse_status_map(status_map)
    vocab = schema.vocabulary(currency=currency, timezone=tz)
    builder = DatasetBuilder(out, vocab, "mp-orders")
    files = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    scenes: dict[str, int] = {}
    try:
        for f in files:
            src = Source(Path(f), encoding=encoding)
            rows = 0
            for chunk in read_chunks(src, chunk_rows):
                where = src.path.name
                check_columns(where, {c: c for c in ("order_id", "openid", "create_time", "total_fee", "status")},
                              list(chunk.columns), "a Mini Program order export")
                chunk = chunk.reset_index(drop=True)
                n = len(chunk)
                rows += n
                builder.rows_read += n
                status = text_column(chunk["status"], n).map(lambda v: v if v is None else v.upper()
                                                       if v.isascii() else v)
                unknown = ~status.isin(list(codes))
                if unknown.any():
                    vals = status[unknown].value_counts(dropna=False)
                    raise DataError(where, "status", f"must be a known order status ({', '.join(codes)})",
                                    int(unknown.sum()), list(vals.index[:5]),
                                    hint="map other values with --status-map VALUE=order|pay|refund")
                events = status.map(codes)

                def times(name: str, chunk: pd.DataFrame = chunk, where: str = where) -> pd.Series | None:
                    c = chunk.get(name)
                    return None if c is None else parse_times(c, tz=vocab.timezone, fmt=time_format,
                                                              where=where, column=name)
                created = times("create_time")
                paid_at = times("pay_time")
                paid_at = created if paid_at is None else paid_at.where(paid_at.notna(), created)
                refunded_at = times("refund_time")
                refunded_at = paid_at if refunded_at is None else refunded_at.where(refunded_at.notna(), paid_at)
                fee = to_minor_units(chunk["total_fee"], digits=vocab.minor_digits, unit=UNITS[unit], where=where,
                                     column="total_fee")
                refund_fee = fee if "refund_fee" not in chunk.columns else to_minor_units(
                    chunk["refund_fee"], digits=vocab.minor_digits, unit=UNITS[unit], where=where, column="refund_fee")
                refund_fee = refund_fee.where(refund_fee.notna(), fee)
                scene = text_column(chunk.get("scene"), n)
                for k, v in scene.value_counts().items():
                    scenes[str(k)] = scenes.get(str(k), 0) + int(v)
                product = stable_id(text_column(chunk["product_id"], n)) if "product_id" in chunk.columns else \
                    pd.Series(pd.array([pd.NA] * n, dtype="Int64"))
                ids = [("unionid", text_column(chunk.get("unionid"), n)), ("mp_openid", text_column(chunk["openid"], n))]
                _order_events(builder, where, key=text_column(chunk["order_id"], n), events=events, created=created,
                              paid_at=paid_at, refunded_at=refunded_at, order_amt=fee, pay_amt=fee,
                              refund_amt=refund_fee, channel=pd.Series(["mini_program"] * n, dtype=object),
                              product=product, ids=ids)
            builder.add_source(src.path, rows)
        return builder.finish({"status_values": {k: list(v) for k, v in codes.items()}, "wxapp_scenes": scenes})
    except BaseException:
        import shutil

        shutil.rmtree(builder.tmp, ignore_errors=True)
        raise
