"""Write a dataset out in the formats the importers read (for round trips and examples).

* :func:`export_table`: every event as a CSV row (``ts`` with its UTC offset,
  ``person_id``, ``event``, ``amount`` in yuan, ``order_id``, ``product_id``,
  ``channel``, ``referrer`` and the campaign, article, live, store and guide ids),
  read back with :func:`privdomain.importers.import_table` and
  :data:`TABLE_MAPPING`;
* :func:`export_youshu_orders`: one Youshu data-api order record per order (JSON
  lines), read back with :func:`privdomain.importers.import_youshu_orders`;
* :func:`export_mp_orders`: a Mini Program order export (CSV), read back with
  :func:`privdomain.importers.import_mp_orders`;
* :func:`export_wecom_contacts`: WeCom external-contact records (JSON lines), read
  back with :func:`privdomain.importers.import_wecom_contacts`;
* :func:`export_oa_articles`: the Official Account datacube article summary per
  article and day (:func:`article_summary`), read back with
  :func:`privdomain.importers.import_oa_articles`.

The person is written as the brand's own user id (``user_id``, Youshu) or as a
union id (``unionid``, Mini Program export): one id per person, as a brand that has
unified its customers holds them. Amounts are written as exact decimal text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .. import io, schema
from ..errors import UsageError

__all__ = ["export_table", "export_youshu_orders", "export_mp_orders", "export_wecom_contacts", "export_oa_articles",
           "article_summary", "TABLE_MAPPING", "yuan_text"]

#: The mapping that reads :func:`export_table`'s CSV back.
TABLE_MAPPING = {"ts": "ts", "person_id": "person_id", "event": "event", "amount": "amount",
                 "order_id": "order_id", "product_id": "product_id", "channel": "channel", "referrer": "referrer",
                 "campaign_id": "campaign_id", "article_id": "article_id", "live_id": "live_id",
                 "store_id": "store_id", "guide_id": "guide_id"}
_STATUS = {("order",): 1110, ("order", "pay"): 1180, ("order", "pay", "refund"): 1290}
_MP_STATUS = {("order",): "NOTPAY", ("order", "pay"): "SUCCESS", ("order", "pay", "refund"): "REFUND"}
_CHAN_TYPE = {"guide": "guide", "live": "live"}


def yuan_text(fen: pd.Series, digits: int = 2) -> pd.Series:
    """Integer minor units as exact decimal text of the major unit (``8990`` -> ``"89.90"``).

    >>> yuan_text(pd.Series([8990, 5, None], dtype="Int64")).tolist()
    ['89.90', '0.05', None]
    """
    out = []
    for v in fen:
        if v is None or v is pd.NA:
            out.append(None)
            continue
        v = int(v)
        if not digits:
            out.append(str(v))
        else:
            whole, part = divmod(v, 10 ** digits)
            out.append(f"{whole}.{part:0{digits}d}")
    return pd.Series(out, index=fen.index, dtype=object)


def _events(data: str | os.PathLike | io.Dataset | pd.DataFrame) -> tuple[pd.DataFrame, schema.Vocabulary]:
    if isinstance(data, pd.DataFrame):
        return data, schema.vocabulary()
    path = getattr(data, "path", data)
    return io.read_table(path, "events"), io.vocabulary(path)


def _write_csv(df: pd.DataFrame, path: str | os.PathLike, encoding: str) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(p, index=False, encoding=encoding)
    return p


def export_table(data: str | os.PathLike | io.Dataset | pd.DataFrame, path: str | os.PathLike, *,
                 encoding: str = "utf-8") -> Path:
    """Write every event as one CSV row, readable with ``import_table(..., mapping=TABLE_MAPPING, unit="yuan")``."""
    ev, vocab = _events(data)
    ts = ev["ts"].dt.tz_convert(schema.TIMEZONE)
    out = pd.DataFrame({
        "ts": ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + ts.dt.strftime("%z").str.replace(r"(\d\d)$", r":\1",
                                                                                      regex=True),
        "person_id": ev["person_id"].astype(str),
        "event": ev["touchpoint"].astype(str),
        "amount": yuan_text(ev["amount_fen"].astype("Int64"), vocab.minor_digits),
        "order_id": ev["order_id"].astype("Int64").astype("string"),
        "product_id": ev["product_id"].astype("Int64").astype("string"),
        "channel": ev["channel"].astype(str),
        "referrer": ev["referrer_person_id"].astype("Int64").astype("string"),
        **{c: ev[c].astype("Int64").astype("string") for c in ("campaign_id", "article_id", "live_id", "store_id",
                                                               "guide_id")},
    })
    return _write_csv(out, path, encoding)


def _orders(ev: pd.DataFrame) -> pd.DataFrame:
    """One row per order: its events, times, amounts, channel, product and person."""
    o = ev[ev["touchpoint"].isin(schema.ORDER_TOUCHPOINTS)]
    if o.empty:
        raise UsageError("the dataset has no order, pay or refund events to export")
    many = o.groupby(["order_id", "touchpoint"]).size()
    if (many > 1).any():
        raise UsageError(f"{int((many > 1).sum())} order(s) have more than one event of a kind (a partial refund "
                         f"twice?); an order record holds one of each")
    wide = o.pivot(index="order_id", columns="touchpoint", values=["ts", "amount_fen"])
    first = o.sort_values("ts").groupby("order_id").first()
    rec = pd.DataFrame(index=wide.index)
    for tp in schema.ORDER_TOUCHPOINTS:
        rec[f"{tp}_ts"] = wide[("ts", tp)] if ("ts", tp) in wide.columns else pd.NaT
        rec[f"{tp}_fen"] = wide[("amount_fen", tp)].astype("Int64") if ("amount_fen", tp) in wide.columns else pd.NA
    if rec["order_ts"].isna().any():
        raise UsageError(f"{int(rec['order_ts'].isna().sum())} order(s) have no order event; an order record "
                         f"starts with one")
    rec["events"] = [tuple(tp for tp in schema.ORDER_TOUCHPOINTS if pd.notna(r[f"{tp}_ts"]))
                     for _, r in rec.iterrows()]
    bad = ~rec["events"].isin(list(_STATUS))
    if bad.any():
        raise UsageError(f"{int(bad.sum())} order(s) are refunded without being paid; no order status says so")
    rec["channel"] = first["channel"].astype(str)
    rec["product_id"] = first["product_id"].astype("Int64")
    rec["person_id"] = first["person_id"].astype("int64")
    rec["mp_openid"] = first["id_value"].where(first["id_type"] == "mp_openid")
    return rec.reset_index()


def _ms(ts: pd.Series) -> list:
    return [None if pd.isna(t) else int(pd.Timestamp(t).value // 1_000_000) for t in ts]


def export_youshu_orders(data: str | os.PathLike | io.Dataset | pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write one Youshu data-api order record per order as JSON lines.

    ``create_time`` is the order event, ``pay_time`` the pay event and
    ``status_change_time`` the refund; amounts are yuan (the pay amount as
    ``payment_amount``, the order's as ``order_amount``); the person is
    ``user_info.user_id``; a guide's or live stream's order carries ``chan_info.chan_type``,
    a store's ``order_source: offline``.
    """
    ev, vocab = _events(data)
    rec = _orders(ev)
    d = vocab.minor_digits
    order_y, pay_y, refund_y = (yuan_text(rec[f"{tp}_fen"], d) for tp in schema.ORDER_TOUCHPOINTS)
    created, paid, refunded = (_ms(rec[f"{tp}_ts"]) for tp in schema.ORDER_TOUCHPOINTS)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8") as fh:
        for i, r in enumerate(rec.itertuples(index=False)):
            obj: dict = {
                "external_order_id": f"E{int(r.order_id)}",
                "create_time": str(created[i]),
                "order_source": "offline" if r.channel == "store" else "wxapp",
                "order_status": str(_STATUS[r.events]),
                "goods_amount_total": _num(order_y[i]), "freight_amount": 0, "order_amount": _num(order_y[i]),
                "payable_amount": _num(order_y[i]),
                "user_info": {"user_id": f"u{int(r.person_id)}"},
            }
            if paid[i] is not None:
                obj["pay_time"] = str(paid[i])
                obj["payment_amount"] = _num(pay_y[i])
            if refunded[i] is not None:
                obj["status_change_time"] = str(refunded[i])
                obj["refund_amount"] = _num(refund_y[i])
            if isinstance(r.mp_openid, str):
                obj["user_info"]["open_id"] = r.mp_openid
            if r.channel in _CHAN_TYPE:
                obj["chan_info"] = {"chan_type": _CHAN_TYPE[r.channel], "chan_id": f"{r.channel}-1"}
            if pd.notna(r.product_id):
                obj["goods_info"] = [{"external_sku_id": str(int(r.product_id)), "goods_num": 1}]
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return p


def _num(text: str | None) -> float | None:
    # json writes floats with float.__repr__, the shortest text that reads back as the
    # same float: for amounts of at most 15 significant digits that is the decimal itself
    return None if text is None else float(text)


def export_mp_orders(data: str | os.PathLike | io.Dataset | pd.DataFrame, path: str | os.PathLike, *,
                     encoding: str = "utf-8") -> Path:
    """Write a Mini Program order export (CSV): times in Beijing wall-clock time, fees in fen."""
    ev, _ = _events(data)
    rec = _orders(ev)

    def wall(ts: pd.Series) -> pd.Series:
        t = pd.to_datetime(ts, utc=True).dt.tz_convert(schema.TIMEZONE)
        return t.dt.strftime("%Y-%m-%d %H:%M:%S.%f").where(t.notna(), None)

    out = pd.DataFrame({
        "order_id": rec["order_id"].astype("int64").map(lambda v: f"wx{v:010d}"),
        "openid": rec["mp_openid"].where(rec["mp_openid"].notna(), ""),
        "unionid": rec["person_id"].map(lambda v: f"union-{v}"),
        "create_time": wall(rec["order_ts"]),
        "pay_time": wall(rec["pay_ts"]),
        "refund_time": wall(rec["refund_ts"]),
        "total_fee": rec["pay_fen"].where(rec["pay_fen"].notna(), rec["order_fen"]).astype("Int64"),
        "refund_fee": rec["refund_fen"].astype("Int64"),
        "status": [_MP_STATUS[e] for e in rec["events"]],
        "scene": np.where(rec["channel"] == "mini_program", 1001, 1089),
        "product_id": rec["product_id"].astype("Int64"),
    })
    return _write_csv(out, path, encoding)


def export_wecom_contacts(data: str | os.PathLike | io.Dataset | pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write WeCom external-contact records (``externalcontact/get`` shape) as JSON lines.

    One record per contact (``external_userid``: the ``wecom_external_id`` of the
    ``wecom_add`` events), with ``unionid`` standing for the person (``union-<person_id>``)
    and one ``follow_user`` entry per add: the guide's ``userid`` (its ``guide_id``) and
    ``createtime`` (epoch seconds).
    """
    ev, _ = _events(data)
    adds = ev[(ev["touchpoint"] == "wecom_add") & (ev["id_type"] == "wecom_external_id")].sort_values("event_id")
    if adds.empty:
        raise UsageError("the dataset has no wecom_add events with a wecom_external_id to export")
    if adds["guide_id"].isna().any():
        raise UsageError(f"{int(adds['guide_id'].isna().sum())} wecom_add event(s) have no guide_id; a WeCom "
                         f"contact is always added by a guide")
    secs = (pd.to_datetime(adds["ts"], utc=True).astype("int64") // 1_000_000_000).tolist()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    records: dict[str, dict] = {}
    for ext, person, guide, t in zip(adds["id_value"], adds["person_id"], adds["guide_id"], secs):
        rec = records.setdefault(ext, {"external_contact": {"external_userid": ext, "type": 1,
                                                            "unionid": f"union-{int(person)}"}, "follow_user": []})
        rec["follow_user"].append({"userid": str(int(guide)), "createtime": int(t), "add_way": 1})
    with open(p, "w", encoding="utf-8") as fh:
        for rec in records.values():
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return p


def article_summary(data: str | os.PathLike | io.Dataset | pd.DataFrame) -> pd.DataFrame:
    """The datacube article summary of a dataset's events: one row per article and Beijing day.

    ``target_user`` = persons with an ``oa_push`` of the article that day (delivered),
    ``int_page_read_user`` / ``_count`` = persons / events ``oa_article_open`` (article
    page reads), ``ori_page_read_user`` / ``_count`` = persons / events ``mp_click``
    (clicks from the article on into the Mini Program, the page the article links),
    ``share_user`` / ``share_count`` = persons / events ``share`` of the article.
    """
    ev, _ = _events(data)
    a = ev[ev["article_id"].notna()].copy()
    a["ref_date"] = a["ts"].dt.tz_convert(schema.TIMEZONE).dt.strftime("%Y-%m-%d")
    a["article_id"] = a["article_id"].astype("int64")
    keys = ["article_id", "ref_date"]
    out = a[keys].drop_duplicates().set_index(keys)
    for tp, user, count in (("oa_push", "target_user", None),
                            ("oa_article_open", "int_page_read_user", "int_page_read_count"),
                            ("mp_click", "ori_page_read_user", "ori_page_read_count"),
                            ("share", "share_user", "share_count")):
        g = a[a["touchpoint"] == tp].groupby(keys)
        out[user] = g["person_id"].nunique()
        if count:
            out[count] = g.size()
    out = out.fillna(0).astype("int64").reset_index()
    return out.sort_values(["ref_date", "article_id"]).reset_index(drop=True)


def export_oa_articles(data: str | os.PathLike | io.Dataset | pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write :func:`article_summary` as a datacube ``getarticlesummary`` response (``{"list": [...]}``).

    ``msgid`` is the article id; ``title`` comes from the ``articles`` table when the
    dataset has one.
    """
    summary = article_summary(data)
    titles: dict[int, str] = {}
    path_in = getattr(data, "path", data)
    if not isinstance(data, pd.DataFrame) and "articles" in io.read_manifest(path_in).get("row_counts", {}):
        art = io.read_table(path_in, "articles")
        titles = dict(zip(art["article_id"].astype("int64"), art["title"].astype(str)))
    rows = []
    for r in summary.to_dict("records"):
        rec = {"ref_date": r.pop("ref_date"), "msgid": str(int(r["article_id"])),
               "title": titles.get(int(r.pop("article_id")), "")}
        rec.update({k: int(v) for k, v in r.items()})
        rows.append(rec)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps({"list": rows}, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return p
