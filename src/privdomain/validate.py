"""Check tables and dataset folders against :mod:`privdomain.schema`; report every broken rule.

Each problem names the table (or file), the column, the rule, how many rows break it
and a few example row numbers. Nothing is fixed, dropped or coerced lossily here: a
float amount of ``1989.9999`` fen is a problem, never truncated to 1989; a nullable
float column of whole numbers is fine.

What is checked
---------------
* **Files** (a dataset folder): the manifest (``dataset.json``) is readable JSON with
  schema table names only; every Parquet file it lists exists, is readable and holds
  the rows it says; no stray Parquet file sits in a table folder; ``truth/`` files are
  checked when the manifest lists them (:func:`privdomain.io.check_files`). A single
  file given instead of a folder must be an events CSV or Parquet file: zero-byte,
  header-only, binary (Excel) and truncated files are problems, not tracebacks.
* **Columns**: required columns present (``persons.name`` and ``persons.phone`` are
  optional), no unknown column, integer columns hold whole numbers, categorical
  columns hold known values (an unknown value is named with a did-you-mean:
  ``'Pay'`` -> ``'pay'``).
* **Timestamps** are timezone-aware datetimes. Naive datetimes, text (in a frame),
  numbers (epoch seconds) and unparseable or offset-less text (in a CSV) are
  problems. A CSV whose rows carry different offsets (``+08:00`` and ``Z``) is fine:
  each row is the instant it names. An object column of timezone-aware Python or
  pandas timestamps (mixed zones) converts exactly and is fine. Events outside the
  manifest's ``start``..``end`` period (Beijing days, end inclusive) are counted.
* **Events**: unique ``event_id`` (a file loaded twice is named as such), order rows
  with order id and amount, refunds of known orders, each touchpoint's channel among
  :data:`privdomain.schema.ALLOWED_CHANNELS`.
* **References** (a dataset folder): events' ``person_id`` and ``referrer_person_id``
  in ``persons``; ``product_id``, ``campaign_id``, ``article_id``, ``live_id`` in
  their tables; ``assignments.person_id`` and the persons of ``truth/stages`` and
  ``truth/persons`` in ``persons``.

Warnings (do not make a report fail): amounts that look like yuan in a fen column
(see :func:`amount_warnings`), many rows identical in every column but ``event_id``,
a manifest written before files were listed, ``truth/`` files the manifest does not
list.

Examples
--------
>>> import pandas as pd
>>> from privdomain.validate import validate, ValidationError
>>> bad = pd.DataFrame({"product_id": [1, 1], "name": ["a", "b"], "category": ["x", "x"],
...                     "price_fen": [100, -5]})
>>> try:
...     validate(bad, "products")
... except ValidationError as e:
...     print(e)                                   # doctest: +NORMALIZE_WHITESPACE
products: 2 problems
  - products.product_id: values must be unique: 2 rows break it (rows 0, 1)
  - products.price_fen: non-negative amount: 1 row breaks it (row 1)
"""

from __future__ import annotations

import datetime as _dt
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from . import schema
from .errors import PrivdomainError, short_repr

__all__ = ["Problem", "Report", "ValidationError", "validate", "validate_dataset", "check_frame",
           "amount_warnings", "YUAN_MEDIAN_FEN"]

EXAMPLES = 5
#: Below this median (fen) of paid amounts, amounts look like yuan (see :func:`amount_warnings`).
YUAN_MEDIAN_FEN = 100
_INT_TEXT = re.compile(r"\s*[+-]?\d+(?:\.0*)?\s*")
_NUM_TEXT = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")


@dataclass(frozen=True)
class Problem:
    """One broken rule (or, in :attr:`Report.warnings`, one warning).

    ``file`` names the file (relative to the dataset folder) for problems of files.
    """

    table: str
    column: str
    rule: str
    rows: int
    examples: tuple[int, ...] = ()
    file: str = ""

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        if self.file and self.file != self.table:
            where = self.file
        if self.rows == 0:
            return f"{where}: {self.rule}"
        noun = "row breaks" if self.rows == 1 else "rows break"
        ex = ""
        if self.examples:
            label = "row" if len(self.examples) == 1 else "rows"
            more = ", ..." if self.rows > len(self.examples) else ""
            ex = f" ({label} {', '.join(str(i) for i in self.examples)}{more})"
        return f"{where}: {self.rule}: {self.rows} {noun} it{ex}"


@dataclass
class Report:
    """The outcome of validating one or more tables.

    ``problems`` make the report fail (``ok`` is False); ``warnings`` are shown but
    do not.
    """

    problems: list[Problem] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def extend(self, other: Report) -> None:
        self.problems.extend(other.problems)
        self.warnings.extend(other.warnings)
        self.row_counts.update(other.row_counts)

    def summary(self) -> str:
        warn = ""
        if self.warnings:
            warn = "\nwarnings:\n" + "\n".join(f"  - {w}" for w in self.warnings)
        lines = [f"{name}: {n:,} rows" for name, n in self.row_counts.items()]
        if self.ok:
            return "valid\n" + "\n".join("  " + line for line in lines) + warn
        tables = list(dict.fromkeys(p.table for p in self.problems))
        head = ", ".join(tables)
        n = len(self.problems)
        return (f"{head}: {n} problem{'s' if n != 1 else ''}\n" + "\n".join(f"  - {p}" for p in self.problems)
                + warn)


class ValidationError(PrivdomainError, ValueError):
    """Raised by :func:`validate` when a table breaks a rule; ``.report`` has the details."""

    def __init__(self, report: Report):
        self.report = report
        super().__init__(report.summary())


def _rows(mask: np.ndarray | pd.Series) -> tuple[int, tuple[int, ...]]:
    idx = np.flatnonzero(np.asarray(mask, dtype=bool))
    return len(idx), tuple(int(i) for i in idx[:EXAMPLES])


# --- timestamps ---------------------------------------------------------------------------


def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v))


def _check_timestamps(df: pd.DataFrame, table: str, col: str, text_ok: bool = False
                      ) -> tuple[pd.DataFrame, list[Problem]]:
    """Timestamps must be timezone-aware datetimes; return the frame (converted where exact) and problems.

    ``text_ok``: text with UTC offsets is accepted and parsed (a CSV import); else
    text is a problem (a frame should hold datetimes).
    """
    s = df[col]
    probs: list[Problem] = []
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return df, probs
    if pd.api.types.is_datetime64_dtype(s.dtype):
        n, ex = _rows(s.notna())
        probs.append(Problem(table, col, f"timestamps must be timezone-aware ({schema.TIMEZONE}), got naive "
                                         f"datetimes: localise them with the zone they were recorded in",
                             n, ex))
        return df, probs
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        n, ex = _rows(s.notna())
        probs.append(Problem(table, col, f"numeric timestamps (dtype {s.dtype}; epoch seconds?) are not accepted: "
                                         f"convert them to timezone-aware datetimes", n, ex))
        return df, probs
    values = s.to_numpy(dtype=object)
    kind = np.array(["na" if _is_missing(v) else
                     "aware" if isinstance(v, (pd.Timestamp, np.datetime64, _dt.datetime))
                     and getattr(v, "tzinfo", None) is not None else
                     "naive" if isinstance(v, (pd.Timestamp, np.datetime64, _dt.datetime)) else
                     "number" if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else
                     "text" if isinstance(v, str) else "other" for v in values], dtype=object)
    text = pd.Series(np.where(kind == "text", values, None), index=s.index, dtype=object).astype("string")
    present = (kind == "text") & text.fillna("").str.strip().ne("").to_numpy()
    blank = (kind == "text") & ~present
    has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False).to_numpy()
    try:
        parsed = pd.to_datetime(text.where(present), errors="coerce", utc=True, format="mixed")
    except (ValueError, OverflowError):
        parsed = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    unparseable = (present & parsed.isna().to_numpy()) | (kind == "other")
    naive_text = present & ~unparseable & ~has_offset
    if blank.any():
        probs.append(Problem(table, col, "empty timestamp", *_rows(blank)))
    if unparseable.any():
        probs.append(Problem(table, col, "unparseable timestamp", *_rows(unparseable)))
    if naive_text.any():
        probs.append(Problem(table, col, "naive timestamp: give a UTC offset such as +08:00", *_rows(naive_text)))
    if (kind == "naive").any():
        probs.append(Problem(table, col, "naive datetime objects: timestamps must be timezone-aware",
                             *_rows(kind == "naive")))
    if (kind == "number").any():
        probs.append(Problem(table, col, "numeric timestamps (epoch seconds?) are not accepted: convert them to "
                                         "timezone-aware datetimes", *_rows(kind == "number")))
    text_rows = present & ~unparseable & has_offset
    if text_rows.any() and not text_ok:
        probs.append(Problem(table, col, "timestamps are text, not datetimes: parse them with "
                                         "pd.to_datetime(column, utc=True)", *_rows(present)))
    if probs:
        return df, probs
    aware = kind == "aware"
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        try:
            out[aware] = pd.to_datetime(pd.Series(values[aware], index=s.index[aware]), utc=True)
        except (ValueError, TypeError, OverflowError) as e:
            return df, [Problem(table, col, f"timestamps do not convert to instants: {short_repr(str(e), 120)}",
                                *_rows(aware))]
    if text_rows.any():
        out[text_rows] = parsed[text_rows]
    df = df.copy()
    df[col] = out.dt.tz_convert(schema.TIMEZONE)
    return df, probs


# --- columns ------------------------------------------------------------------------------


def _int_problem(s: pd.Series, table: str, name: str, want: str) -> Problem:
    """Why an integer column is not integer: the rows that are not whole numbers, by kind."""
    values = s.to_numpy(dtype=object)
    frac = np.zeros(len(s), bool)
    other = np.zeros(len(s), bool)
    for i, v in enumerate(values):
        if _is_missing(v) or (isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))):
            continue
        if isinstance(v, (float, np.floating)):
            if not np.isfinite(v):
                other[i] = True
            elif v != round(v):
                frac[i] = True
            continue
        if isinstance(v, str):
            if _INT_TEXT.fullmatch(v):
                continue
            if _NUM_TEXT.fullmatch(v):
                frac[i] = True
                continue
        other[i] = True
    kind = {"int64": "integers", "Int64": "integers (or empty)"}[want]
    if other.any():
        n, ex = _rows(other | frac)
        return Problem(table, name, f"wrong dtype {s.dtype}: must be {kind}", n, ex)
    if frac.any():
        what = "fractional fen: amounts must be whole fen (values such as 1989.9999 are not truncated)" \
            if name.endswith("_fen") else f"not a whole number: must be {kind} (values are not truncated)"
        return Problem(table, name, what, *_rows(frac))
    return Problem(table, name, f"wrong dtype {s.dtype}: must be {kind}", 0)


def _isin_values(check: Any) -> list[str] | None:
    stats = getattr(check, "statistics", None) or {}
    return [str(v) for v in stats["allowed_values"]] if "allowed_values" in stats else None


def _allowed_values(col: pa.Column) -> list[str] | None:
    for c in col.checks:
        values = _isin_values(c)
        if values is not None:
            return values
    return None


def _suggest(value: Any, allowed: list[str]) -> str:
    text = str(value)
    close = [a for a in allowed if a.lower() == text.strip().lower()]
    close = close or difflib.get_close_matches(text, allowed, n=1, cutoff=0.6)
    return f"{short_repr(value, 60)} (did you mean {close[0]!r}?)" if close else short_repr(value, 60)


def _category_problems(df: pd.DataFrame, table: str, name: str, allowed: list[str], nullable: bool
                       ) -> list[Problem]:
    s = df[name]
    bad = s.notna() & ~s.astype(object).isin(allowed)
    if not bad.any():
        return []
    counts = s[bad].astype(object).map(str).value_counts()
    shown = [_suggest(v, allowed) for v in counts.index[:3]]
    more = ", ..." if len(counts) > 3 else ""
    return [Problem(table, name, f"value not allowed: {', '.join(shown)}{more}; allowed values: "
                                 f"privdomain.schema", *_rows(bad))]


def check_frame(df: pd.DataFrame, table: str, *, text_timestamps: bool = False,
                touchpoints: dict[str, str] | None = None) -> tuple[Report, pd.DataFrame]:
    """Validate one table; return the report and the conformed frame.

    ``text_timestamps`` accepts timestamp text with UTC offsets (a CSV import).
    ``touchpoints`` (``{name: channel}``, a dataset manifest's declared touchpoints)
    adds to the known touchpoints and channels. A
    frame so odd that a check itself fails gives a problem naming the failure, not
    a traceback.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{table}: expected a pandas DataFrame, got {type(df).__name__}")
    try:
        return _check_frame(df, table, text_timestamps, touchpoints or {})
    except Exception as e:  # noqa: BLE001 - an unforeseen value becomes a reported problem
        msg = short_repr(str(e), 160)
        return Report(problems=[Problem(table, "", f"could not be checked ({type(e).__name__}: {msg})", 0)],
                      row_counts={table: len(df)}), df


def _check_frame(df: pd.DataFrame, table: str, text_timestamps: bool,
                 declared: dict[str, str] | None = None) -> tuple[Report, pd.DataFrame]:
    spec = schema.TABLES[table]
    report = Report(row_counts={table: len(df)})
    probs = report.problems
    if len(df) == 0 and spec.required:
        probs.append(Problem(table, "", "table is empty", 0))
    df = df.reset_index(drop=True)
    dup_cols = [str(c) for c in df.columns[df.columns.duplicated()]]
    if dup_cols:
        probs.append(Problem(table, dup_cols[0], "column name appears more than once", 0))
        return report, df
    cols = spec.schema.columns
    missing = [c for c in cols if c not in df.columns and c not in spec.optional
               and not (cols[c].nullable and str(cols[c].dtype) == "Int64")]
    extra = [str(c) for c in df.columns if c not in cols]
    for c in missing:
        probs.append(Problem(table, c, "required column is missing", 0))
    for c in extra:
        probs.append(Problem(table, c, f"unknown column (allowed: {', '.join(cols)})", 0))
    if missing or extra:
        return report, df

    df = schema.conform(df, table)
    present = [c for c in cols if c in df.columns]
    bad_cols: set[str] = set()
    text_ids = {c for c in present if c in schema.PERSON_ID_COLUMNS and schema.is_text_ids(df[c])}
    for name in sorted(text_ids):  # person ids as text: any non-empty string
        blank = df[name].notna() & (df[name].astype(object).map(lambda v: isinstance(v, str) and not v.strip()))
        if blank.any():
            probs.append(Problem(table, name, "empty text: a person id must not be blank", *_rows(blank)))
            bad_cols.add(name)
    for name in present:
        col = cols[name]
        want = str(col.dtype)
        s = df[name]
        if name in text_ids:
            continue
        if want.startswith("datetime64"):
            df, tprobs = _check_timestamps(df, table, name, text_ok=text_timestamps)
            probs.extend(tprobs)
            if tprobs:
                bad_cols.add(name)
        elif want in ("int64", "Int64"):
            if not (pd.api.types.is_integer_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)) \
                    and not (want == "Int64" and s.isna().all()):
                probs.append(_int_problem(s, table, name, want))
                bad_cols.add(name)
        elif want in ("str", "object"):
            if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
                probs.append(Problem(table, name, f"wrong dtype {s.dtype}: must be text", *_rows(s.notna())))
                bad_cols.add(name)
            elif s.dtype == object:
                not_text = np.array([not (isinstance(v, str) or _is_missing(v)) for v in s.to_numpy()], dtype=bool)
                if not_text.any():
                    kinds = sorted({type(v).__name__ for v in s[not_text].head(100)})
                    probs.append(Problem(table, name, f"values must be text, got {', '.join(kinds)}",
                                         *_rows(not_text)))
                    bad_cols.add(name)

    df = schema.conform(df, table)
    for name in present:
        allowed = _allowed_values(cols[name])
        if allowed is not None and declared and table == "events" and name in ("touchpoint", "channel"):
            allowed = [*allowed, *(declared if name == "touchpoint" else declared.values())]
        if allowed is not None and name not in bad_cols:
            probs.extend(_category_problems(df, table, name, allowed, cols[name].nullable))
    checked = pa.DataFrameSchema(
        {n: pa.Column(None, checks=[] if n in text_ids else [c for c in cols[n].checks if _isin_values(c) is None],
                      nullable=cols[n].nullable, unique=cols[n].unique)
         for n in present if n not in bad_cols},
        name=table,
    )
    try:
        checked.validate(df, lazy=True)
    except SchemaErrors as err:
        probs.extend(_from_pandera(err, table))

    if table == "events" and not {"event_id", "touchpoint", "channel", "order_id", "amount_fen"} & bad_cols:
        ev = _event_rules(df, bad_cols)
        probs.extend(ev.problems)
        report.warnings.extend(ev.warnings)
        report.warnings.extend(amount_warnings(events=df))
    if table == "products" and "price_fen" not in bad_cols:
        report.warnings.extend(amount_warnings(products=df))
    return report, df


def _from_pandera(err: SchemaErrors, table: str) -> list[Problem]:
    fc = err.failure_cases.copy()
    fc["index"] = pd.to_numeric(fc["index"], errors="coerce")
    out = []
    for (column, check), grp in fc.groupby(["column", "check"], sort=False, dropna=False):
        rule = _rule_text(str(check))
        idx = grp["index"].dropna().astype(int).drop_duplicates().sort_values()
        out.append(Problem(table, str(column), rule, len(idx), tuple(idx.iloc[:EXAMPLES])))
    return out


def _rule_text(check: str) -> str:
    if check == "not_nullable":
        return "null where a value is required"
    if check == "field_uniqueness":
        return "values must be unique"
    if check.startswith("greater_than_or_equal_to(0"):
        return "must be >= 0"
    if check.startswith("in_range("):
        return f"out of range {check[len('in_range'):]}"
    return check


# --- events -------------------------------------------------------------------------------


def _event_rules(df: pd.DataFrame, bad_cols: set[str] = frozenset()) -> Report:
    out = Report()
    probs = out.problems
    dup = df["event_id"].duplicated(keep=False)
    if dup.any():
        rule = "duplicate event id"
        if dup.all() and (df["event_id"].value_counts() == 2).all() and df.duplicated(keep=False).all():
            rule += " (every row appears more than once: was a file loaded twice?)"
        probs.append(Problem("events", "event_id", rule, *_rows(dup)))
    else:
        same = df.drop(columns=["event_id", *sorted(bad_cols & set(df.columns))]).duplicated(keep=False)
        if same.any():
            rule = "rows identical in every column but event_id"
            if same.mean() >= 0.5:
                probs.append(Problem("events", "", rule + " (most rows appear twice: was a file loaded twice "
                                                         "with new event ids?)", *_rows(same)))
            else:
                out.warnings.append(Problem("events", "", rule, *_rows(same)))
    is_order = df["touchpoint"].isin(schema.ORDER_TOUCHPOINTS)
    no_order_id = is_order & df["order_id"].isna()
    if no_order_id.any():
        probs.append(Problem("events", "order_id", "order/pay/refund row without an order id", *_rows(no_order_id)))
    no_amount = is_order & df["amount_fen"].isna()
    if no_amount.any():
        probs.append(Problem("events", "amount_fen", "order/pay/refund row without an amount", *_rows(no_amount)))
    ordered = set(df.loc[df["touchpoint"].isin(["order", "pay"]), "order_id"].dropna())
    orphan = (df["touchpoint"] == "refund") & df["order_id"].notna() & ~df["order_id"].isin(ordered)
    if orphan.any():
        probs.append(Problem("events", "order_id", "refund of an order that does not exist (orphan refund)",
                             *_rows(orphan)))
    known = df["touchpoint"].isin(schema.TOUCHPOINTS) & df["channel"].isin(schema.CHANNELS)
    if known.any():
        tp_codes, tps = pd.factorize(df["touchpoint"].astype(object))
        ch_codes, chs = pd.factorize(df["channel"].astype(object))
        allowed = np.array([[c in schema.ALLOWED_CHANNELS.get(t, ()) for c in chs] for t in tps], dtype=bool)
        ok = np.zeros(len(df), dtype=bool)
        have = (tp_codes >= 0) & (ch_codes >= 0)
        ok[have] = allowed[tp_codes[have], ch_codes[have]]
        wrong = known & ~ok
        if wrong.any():
            ex = df.loc[wrong, ["touchpoint", "channel"]].astype(str).drop_duplicates().head(3)
            shown = ", ".join(f"{a} on {b} (allowed: {'/'.join(schema.ALLOWED_CHANNELS[a])})"
                              for a, b in ex.itertuples(index=False))
            probs.append(Problem("events", "channel", f"channel inconsistent with touchpoint: {shown}",
                                 *_rows(wrong)))
    return out


def amount_warnings(events: pd.DataFrame | None = None, products: pd.DataFrame | None = None) -> list[Problem]:
    """Warnings when amounts look like yuan in a fen column.

    The heuristic (deliberately conservative; warnings, never problems): a brand's
    paid amounts and prices are rarely below one yuan, so

    * ``events``: the median positive ``amount_fen`` of ``pay`` rows is below
      :data:`YUAN_MEDIAN_FEN` (100 fen = 1 yuan);
    * ``products``: the median positive ``price_fen`` is below 100 fen;
    * both given: where pay rows carry a ``product_id``, the median ratio of the
      paid amount to the product's price is below 1/20 (amounts about 100 times
      smaller than prices: one of the two columns is in yuan).

    Amounts that are all whole multiples of 100 are normal (prices in whole yuan)
    and not warned about; a fractional amount is a problem of its own.

    >>> import pandas as pd
    >>> ev = pd.DataFrame({"touchpoint": ["pay", "pay"], "amount_fen": [89, 29]})
    >>> [w.rule.split(":")[0] for w in amount_warnings(ev)]
    ['amounts look like yuan, not fen']
    """
    out: list[Problem] = []
    amounts = pd.Series(dtype="float64")
    pay = None
    if events is not None and len(events):
        events = events.reset_index(drop=True)
        pay = events[(events["touchpoint"].astype(object) == schema.PURCHASE).to_numpy()]
        amounts = pd.to_numeric(pay["amount_fen"], errors="coerce")
        positive = amounts[amounts > 0]
        if len(positive) and positive.median() < YUAN_MEDIAN_FEN:
            out.append(Problem("events", "amount_fen", f"amounts look like yuan, not fen: the median paid amount is "
                                                       f"{positive.median():g} fen (under 1 yuan); multiply yuan "
                                                       f"by 100", *_rows(events.index.isin(positive.index))))
    if products is None or not len(products) or "price_fen" not in products:
        return out
    price = pd.to_numeric(products["price_fen"], errors="coerce")
    pos = price[price > 0]
    if len(pos) and pos.median() < YUAN_MEDIAN_FEN:
        out.append(Problem("products", "price_fen", f"prices look like yuan, not fen: the median price is "
                                                    f"{pos.median():g} fen (under 1 yuan)", *_rows(price > 0)))
    elif pay is not None and len(pay) and "product_id" in products and "product_id" in pay:
        by_id = pd.Series(price.to_numpy(), index=products["product_id"].to_numpy())
        by_id = by_id[~by_id.index.duplicated()]
        ratio = (amounts / pd.to_numeric(pay["product_id"].map(by_id), errors="coerce"))
        ratio = ratio.replace([np.inf, -np.inf], np.nan).dropna()
        ratio = ratio[ratio > 0]
        if len(ratio) and ratio.median() < 0.05:
            out.append(Problem("events", "amount_fen", f"paid amounts are about 1/{1 / ratio.median():.0f} of the "
                                                       f"product prices: one of the two is in yuan?", len(ratio)))
    return out


# --- entry points -------------------------------------------------------------------------


def validate(data: Any, table: str = "events", *, raise_on_error: bool = True) -> Report:
    """Validate a frame (one table), a dataset folder (every table) or an events file.

    Parameters
    ----------
    data
        A pandas DataFrame holding ``table``, a dataset folder path or an events
        CSV/Parquet file path (or a :class:`privdomain.io.Dataset`).
    table
        Which table a frame holds.
    raise_on_error
        Raise :class:`ValidationError` if any rule breaks (default); else return
        the report.

    Returns
    -------
    Report
        ``report.ok``, ``report.problems``, ``report.warnings``, ``report.row_counts``,
        ``report.summary()``.
    """
    from .io import Dataset

    if isinstance(data, Dataset):
        data = data.path
    if isinstance(data, (str, os.PathLike)):
        report = validate_dataset(data)
    else:
        if table not in schema.TABLES:
            from .errors import UsageError

            raise UsageError.unknown("table", table, list(schema.TABLES))
        report, _ = check_frame(data, table)
    if raise_on_error and not report.ok:
        raise ValidationError(report)
    return report


def _file_report(p: Path) -> Report:
    """Validate a single events file (CSV or Parquet)."""
    import pyarrow as pyarrow
    import pyarrow.parquet as pq

    from . import io

    name = p.name
    suffix = p.suffix.lower()
    try:
        size = p.stat().st_size
    except OSError as e:
        return Report(problems=[Problem("events", "", f"cannot be read: {e.strerror or e}", 0, file=name)])
    if size == 0:
        return Report(problems=[Problem("events", "", "the file is empty (0 bytes)", 0, file=name)])
    if suffix == ".csv":
        try:
            df = io.read_events_csv(p)
        except io.CSVImportError as e:
            return Report(problems=[Problem("events", "", str(e), 0)])
        return check_frame(df, "events", text_timestamps=True)[0]
    if suffix == ".parquet":
        try:
            df = pq.read_table(p).to_pandas()
        except (pyarrow.ArrowException, OSError, ValueError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            return Report(problems=[Problem("events", "", f"not a readable Parquet file (truncated or corrupt: "
                                                          f"{short_repr(msg, 120)})", 0, file=name)])
        return check_frame(df, "events")[0]
    if suffix in (".xlsx", ".xls", ".xlsm", ".numbers", ".ods"):
        return Report(problems=[Problem("events", "", f"unsupported file type {p.suffix!r}: a spreadsheet; export "
                                                      f"it as CSV (UTF-8) and validate the .csv", 0, file=name)])
    return Report(problems=[Problem("events", "", f"unsupported file type {p.suffix or '(no suffix)'!r}: give an "
                                                  f"events CSV (.csv, UTF-8) or Parquet (.parquet) file, or a "
                                                  f"dataset folder", 0, file=name)])


def validate_dataset(path: str | os.PathLike) -> Report:
    """Validate every table of a dataset folder, or a single events CSV/Parquet file.

    Never raises for bad input: every problem (a missing or corrupt manifest, a
    missing, stray or truncated file, a broken rule) is in the returned report.
    Input files are only read.
    """
    from . import io

    p = Path(path)
    if not p.exists():
        return Report(problems=[Problem(p.name or str(p), "", f"{p} does not exist", 0)])
    if p.is_file():
        return _file_report(p)
    try:
        manifest = io.read_manifest(p)
    except io.DatasetError as e:
        return Report(problems=[Problem(io.MANIFEST, "", e.problem, 0, file=io.MANIFEST)])
    report = Report()
    listed = manifest.get("files")
    if listed is None:
        report.warnings.append(Problem(io.MANIFEST, "", "lists no files (written by an older privdomain): only "
                                                        "table row totals are checked", 0))
    counts, file_probs = io.check_files(p)
    for fp in file_probs:
        report.problems.append(Problem(fp.table, "", fp.problem, 0, file=fp.file))
    broken = {fp.table for fp in file_probs}
    truth_on_disk = [f"truth/{f.name}" for f in sorted((p / "truth").glob("*.parquet"))] \
        if (p / "truth").is_dir() else []
    if truth_on_disk and not any(k.startswith("truth/") for k in (listed or {})):
        report.warnings.append(Problem("truth", "", f"{len(truth_on_disk)} truth/ file(s) not listed in "
                                                    f"{io.MANIFEST}: not checked (written after the manifest, "
                                                    f"or by an older privdomain)", 0))

    frames: dict[str, pd.DataFrame] = {}
    for name in manifest.get("row_counts", {}):
        if name in broken:
            continue
        try:
            df = io.read_table(p, name)
        except (io.DatasetError, OSError, ValueError) as e:
            report.problems.append(Problem(name, "", f"cannot be read: {short_repr(str(e), 200)}", 0))
            continue
        declared = manifest.get("touchpoints") if name == "events" else None
        sub, conformed = check_frame(df, name, touchpoints=declared if isinstance(declared, dict) else None)
        report.extend(sub)
        frames[name] = conformed
    for name, spec in schema.TABLES.items():
        if spec.required and name not in manifest.get("row_counts", {}):
            report.problems.append(Problem(name, "", "required table is missing from the dataset", 0))
    bad_tables = {q.table for q in report.problems}
    try:
        _dataset_rules(p, manifest, frames, counts, bad_tables, report)
    except Exception as e:  # noqa: BLE001 - an unforeseen value becomes a reported problem
        report.problems.append(Problem("dataset", "", f"references could not be checked ({type(e).__name__}: "
                                                      f"{short_repr(str(e), 160)})", 0))
    return report


def _ids_in(frame: pd.DataFrame, col: str, ref: pd.DataFrame, key: str, table: str, what: str) -> Problem | None:
    if col not in frame or key not in ref:
        return None
    s = frame[col]
    known = set(ref[key].dropna().tolist())
    bad = s.notna() & ~s.isin(known)
    if not bad.any():
        return None
    values = list(dict.fromkeys(s[bad].tolist()))[:3]
    return Problem(table, col, f"{what} not in {_table_of(key)}.{key} "
                               f"(e.g. {', '.join(short_repr(v, 30) for v in values)})", *_rows(bad))


def _table_of(key: str) -> str:
    return {"person_id": "persons", "product_id": "products", "campaign_id": "campaigns",
            "article_id": "articles", "live_id": "lives"}[key]


def _beijing_day(text: str) -> pd.Timestamp:
    """Midnight (Beijing) of the day ``text`` names (a date, or a timestamp with or without offset)."""
    t = pd.Timestamp(text)
    t = t.tz_localize(schema.TIMEZONE) if t.tzinfo is None else t.tz_convert(schema.TIMEZONE)
    return t.normalize()


def _dataset_rules(p: Path, manifest: dict, frames: dict[str, pd.DataFrame], counts: dict[str, int],
                   bad: set[str], report: Report) -> None:
    """Rules across tables: the manifest's period, references, truth persons, amounts in yuan."""
    import pyarrow.parquet as pq

    from . import io

    probs = report.problems
    ev = frames.get("events") if "events" not in bad else None
    if ev is not None and "start" in manifest and "end" in manifest and len(ev):
        start = _beijing_day(manifest["start"])
        end = _beijing_day(manifest["end"]) + pd.Timedelta(days=1)
        outside = (ev["ts"] < start) | (ev["ts"] >= end)
        if outside.any():
            probs.append(Problem("events", "ts", f"outside the manifest's period {manifest['start']} to "
                                                 f"{manifest['end']} (Beijing days)", *_rows(outside)))
    persons = frames.get("persons") if "persons" not in bad else None
    refs = [("person_id", "persons"), ("referrer_person_id", "persons"), ("product_id", "products"),
            ("campaign_id", "campaigns"), ("article_id", "articles"), ("live_id", "lives")]
    if ev is not None:
        for col, table in refs:
            ref = frames.get(table) if table not in bad else None
            if ref is None:
                continue
            key = "person_id" if table == "persons" else col
            prob = _ids_in(ev, col, ref, key, "events", "id")
            if prob:
                probs.append(prob)
        products = frames.get("products") if "products" not in bad else None
        if products is not None:  # only the comparison of the two: each alone was checked with its table
            report.warnings.extend(w for w in amount_warnings(ev, products) if "product prices" in w.rule)
    if persons is not None:
        asg = frames.get("assignments") if "assignments" not in bad else None
        if asg is not None:
            prob = _ids_in(asg, "person_id", persons, "person_id", "assignments", "person")
            if prob:
                probs.append(prob)
        for rel in manifest.get("files") or {}:
            t = io.file_table(rel)
            if t not in ("truth/stages", "truth/persons") or t not in counts:
                continue
            try:
                ids = pq.read_table(p / rel, columns=["person_id"]).column("person_id").to_pandas()
            except Exception as e:  # noqa: BLE001 - any unreadable truth file is a reported problem
                probs.append(Problem(t, "", f"cannot be read: {short_repr(str(e), 160)}", 0, file=rel))
                continue
            prob = _ids_in(pd.DataFrame({"person_id": ids}), "person_id", persons, "person_id", t, "person")
            if prob:
                probs.append(prob)
