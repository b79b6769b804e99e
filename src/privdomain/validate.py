"""Check tables against :mod:`privdomain.schema` and report every broken rule.

Each problem names the table, the column, the rule, how many rows break it and a
few example row numbers. Nothing is fixed or dropped here.

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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from . import schema

EXAMPLES = 5


@dataclass(frozen=True)
class Problem:
    """One broken rule."""

    table: str
    column: str
    rule: str
    rows: int
    examples: tuple[int, ...] = ()

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
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
    """The outcome of validating one or more tables."""

    problems: list[Problem] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        lines = [f"{name}: {n:,} rows" for name, n in self.row_counts.items()]
        if self.ok:
            return "valid\n" + "\n".join("  " + line for line in lines)
        tables = list(dict.fromkeys(p.table for p in self.problems))
        head = ", ".join(tables)
        n = len(self.problems)
        return f"{head}: {n} problem{'s' if n != 1 else ''}\n" + "\n".join(f"  - {p}" for p in self.problems)


class ValidationError(ValueError):
    """Raised by :func:`validate` when a table breaks a rule; ``.report`` has the details."""

    def __init__(self, report: Report):
        self.report = report
        super().__init__(report.summary())


def _rows(mask: np.ndarray | pd.Series) -> tuple[int, tuple[int, ...]]:
    idx = np.flatnonzero(np.asarray(mask, dtype=bool))
    return len(idx), tuple(int(i) for i in idx[:EXAMPLES])


def _check_timestamps(df: pd.DataFrame, table: str, col: str, nullable: bool) -> tuple[pd.DataFrame, list[Problem]]:
    s = df[col]
    probs: list[Problem] = []
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return df, probs
    if pd.api.types.is_datetime64_dtype(s.dtype):
        n = int(s.notna().sum())
        probs.append(Problem(table, col, f"timestamps must be timezone-aware ({schema.TIMEZONE}), got naive datetimes",
                             n, _rows(s.notna())[1]))
        return df, probs
    # text: count unparseable and naive values
    text = s.astype("string")
    present = text.notna() & (text.str.strip() != "")
    has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False)
    parsed = pd.to_datetime(text.where(present), errors="coerce", utc=True, format="mixed")
    unparseable = present & parsed.isna()
    naive = present & ~unparseable & ~has_offset
    if unparseable.any():
        n, ex = _rows(unparseable)
        probs.append(Problem(table, col, "unparseable timestamp", n, ex))
    if naive.any():
        n, ex = _rows(naive)
        probs.append(Problem(table, col, "naive timestamp: give a UTC offset such as +08:00", n, ex))
    if not probs:
        df = df.copy()
        df[col] = parsed.dt.tz_convert(schema.TIMEZONE)
    return df, probs


def _dtype_ok(s: pd.Series, want: str) -> bool:
    if want == "int64":
        return pd.api.types.is_integer_dtype(s.dtype)
    if want == "Int64":
        return pd.api.types.is_integer_dtype(s.dtype) or s.isna().all()
    if want in ("str", "object"):
        return s.dtype == object or pd.api.types.is_string_dtype(s.dtype)
    return True


def check_frame(df: pd.DataFrame, table: str) -> tuple[Report, pd.DataFrame]:
    """Validate one table; return the report and the conformed frame."""
    spec = schema.TABLES[table]
    report = Report(row_counts={table: len(df)})
    probs = report.problems
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{table}: expected a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0 and spec.required:
        probs.append(Problem(table, "", "table is empty", 0))
    df = df.reset_index(drop=True)
    cols = spec.schema.columns
    missing = [c for c in cols if c not in df.columns and not (cols[c].nullable and str(cols[c].dtype) == "Int64")]
    extra = [c for c in df.columns if c not in cols]
    for c in missing:
        probs.append(Problem(table, c, "required column is missing", 0))
    for c in extra:
        probs.append(Problem(table, c, f"unknown column (allowed: {', '.join(cols)})", 0))
    if missing or extra:
        return report, df

    df = schema.conform(df, table)
    bad_cols: set[str] = set()
    for name, col in cols.items():
        want = str(col.dtype)
        if want.startswith("datetime64"):
            df, tprobs = _check_timestamps(df, table, name, col.nullable)
            probs.extend(tprobs)
            if tprobs:
                bad_cols.add(name)
        elif not _dtype_ok(df[name], want):
            kind = {"int64": "integers", "Int64": "integers (or empty)", "str": "text"}.get(want, want)
            s = df[name]
            if want in ("int64", "Int64"):
                num = pd.to_numeric(s, errors="coerce")
                bad = s.notna() & (num.isna() | (num != np.round(num)))
                n, ex = _rows(bad)
            else:
                n, ex = len(s), ()
            probs.append(Problem(table, name, f"wrong dtype {s.dtype}: must be {kind}", n, ex))
            bad_cols.add(name)

    df = schema.conform(df, table)
    checked = pa.DataFrameSchema(
        {n: pa.Column(None, checks=c.checks, nullable=c.nullable, unique=c.unique) for n, c in cols.items()
         if n not in bad_cols},
        name=table,
    )
    try:
        checked.validate(df, lazy=True)
    except SchemaErrors as err:
        probs.extend(_from_pandera(err, table))

    if table == "events" and "event_id" not in bad_cols and "touchpoint" not in bad_cols:
        probs.extend(_event_rules(df))
    return report, df


def _from_pandera(err: SchemaErrors, table: str) -> list[Problem]:
    fc = err.failure_cases.copy()
    fc["index"] = pd.to_numeric(fc["index"], errors="coerce")
    out = []
    for (column, check), grp in fc.groupby(["column", "check"], sort=False, dropna=False):
        rule = _rule_text(str(check))
        if str(check).startswith("isin("):
            bad = [repr(v) for v in grp["failure_case"].drop_duplicates().head(3)]
            rule = f"value not allowed ({', '.join(bad)}; allowed values: privdomain.schema)"
        idx = grp["index"].dropna().astype(int).drop_duplicates().sort_values()
        out.append(Problem(table, str(column), rule, len(idx), tuple(idx.iloc[:EXAMPLES])))
    return out


def _rule_text(check: str) -> str:
    if check.startswith("isin("):
        return "value not allowed (see privdomain.schema)"
    if check == "not_nullable":
        return "null where a value is required"
    if check == "field_uniqueness":
        return "values must be unique"
    if check.startswith("greater_than_or_equal_to(0"):
        return "must be >= 0"
    if check.startswith("in_range("):
        return f"out of range {check[len('in_range'):]}"
    return check


def _event_rules(df: pd.DataFrame) -> list[Problem]:
    probs = []
    dup = df["event_id"].duplicated(keep=False)
    if dup.any():
        probs.append(Problem("events", "event_id", "duplicate event id", *_rows(dup)))
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
    return probs


def validate(data: Any, table: str = "events", *, raise_on_error: bool = True) -> Report:
    """Validate a frame (one table) or a dataset folder (every table).

    Parameters
    ----------
    data
        A pandas DataFrame holding ``table``, or a dataset folder path.
    table
        Which table a frame holds.
    raise_on_error
        Raise :class:`ValidationError` if any rule breaks (default); else return
        the report.

    Returns
    -------
    Report
        ``report.ok``, ``report.problems``, ``report.row_counts``, ``report.summary()``.
    """
    if isinstance(data, (str, os.PathLike)):
        report = validate_dataset(data)
    else:
        if table not in schema.TABLES:
            raise ValueError(f"unknown table {table!r}; known: {', '.join(schema.TABLES)}")
        report, _ = check_frame(data, table)
    if raise_on_error and not report.ok:
        raise ValidationError(report)
    return report


def validate_dataset(path: str | os.PathLike) -> Report:
    """Validate every table of a dataset folder or a single events CSV/Parquet file."""
    from . import io

    p = Path(path)
    if p.is_file():
        if p.suffix.lower() == ".csv":
            try:
                df = io.read_events_csv(p)
            except io.CSVImportError as e:
                return Report(problems=[Problem("events", "", str(e), 0)])
        else:
            df = pd.read_parquet(p)
        return check_frame(df, "events")[0]
    report = Report()
    try:
        manifest = io.read_manifest(p)
    except FileNotFoundError as e:
        return Report(problems=[Problem(p.name, "", str(e), 0)])
    for name in manifest.get("row_counts", {}):
        if name not in schema.TABLES:
            continue
        sub, _ = check_frame(io.read_table(p, name), name)
        report.problems.extend(sub.problems)
        report.row_counts.update(sub.row_counts)
        declared = manifest["row_counts"][name]
        if declared != sub.row_counts[name]:
            report.problems.append(Problem(name, "", f"manifest says {declared} rows, files hold "
                                                     f"{sub.row_counts[name]}", 0))
    for name, spec in schema.TABLES.items():
        if spec.required and name not in manifest.get("row_counts", {}):
            report.problems.append(Problem(name, "", "required table is missing from the dataset", 0))
    return report
