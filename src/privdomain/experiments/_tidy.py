"""The tidy result frame shared by every estimator in :mod:`privdomain.experiments`.

Every estimate is one row with at least these columns (plain float/int dtypes):

``outcome``, ``term``, ``method``, ``estimate``, ``std_error``, ``ci_low``,
``ci_high``, ``p_value``, ``n``

Intervals are Wald intervals ``estimate +/- z_{1-alpha/2} * std_error`` unless a
method says otherwise; ``p_value`` is two-sided.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["RESULT_COLUMNS", "wald", "tidy", "require_finite"]


RESULT_COLUMNS = ["outcome", "term", "method", "estimate", "std_error", "ci_low", "ci_high", "p_value", "n"]


def wald(estimate: float, std_error: float, alpha: float = 0.05) -> tuple[float, float, float]:
    """Normal-theory interval and two-sided p-value for ``estimate / std_error``.

    >>> [round(x, 3) for x in wald(1.0, 0.5)]
    [0.02, 1.98, 0.046]
    """
    z = stats.norm.ppf(1 - alpha / 2)
    lo, hi = estimate - z * std_error, estimate + z * std_error
    p = 2 * stats.norm.sf(abs(estimate / std_error)) if std_error > 0 else float("nan")
    return float(lo), float(hi), float(p)


def tidy(rows: Iterable[dict], extra: Sequence[str] = ()) -> pd.DataFrame:
    """Rows (dicts) to a frame with :data:`RESULT_COLUMNS` first, then ``extra``, then the rest."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        return pd.DataFrame(columns=[*RESULT_COLUMNS, *extra])
    first = [c for c in [*RESULT_COLUMNS, *extra] if c in df.columns]
    df = df[first + [c for c in df.columns if c not in first]]
    for c in ("estimate", "std_error", "ci_low", "ci_high", "p_value"):
        if c in df.columns:
            df[c] = df[c].astype(float)
    if "n" in df.columns:
        df["n"] = df["n"].astype("int64")
    return df.reset_index(drop=True)


def require_finite(df: pd.DataFrame, columns: Iterable[str], what: str = "frame") -> None:
    """Raise a ValueError naming each column that holds missing or non-finite values, with the row count."""
    for c in columns:
        values = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise ValueError(
                f"{what}: column {c!r} must be numeric and finite (no missing values): {bad} row(s) break it"
            )
