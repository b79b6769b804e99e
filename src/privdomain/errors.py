"""The errors privdomain raises for bad input, with what broke, where and how often.

Every user-facing error is a :class:`PrivdomainError`; the command line prints its
message as one ``error: ...`` line and exits non-zero. Each class also derives from
the built-in error a caller would expect (``ValueError`` for bad values,
``FileNotFoundError`` for a missing file), so ``except ValueError`` keeps working.

* :class:`DataError`: rows of a table break a rule. It names the table, the column,
  the rule, how many rows break it and a few examples.
* :class:`DatasetError`: a dataset folder is not what its manifest says (missing,
  stray or truncated files, a corrupt manifest, a table name that is a path).
* :class:`UsageError`: an argument is wrong (an unknown step or touchpoint name, an
  impossible window), with a suggestion where one is close.

Examples
--------
>>> err = DataError("events", "amount_fen", "must be a non-negative integer", 3, examples=[-100, -5])
>>> print(err)
events: column 'amount_fen' must be a non-negative integer: 3 row(s) break it (e.g. -100, -5)
>>> isinstance(err, ValueError), err.count
(True, 3)
>>> print(UsageError.unknown("step", "payy", ["pay", "order", "refund"]))
unknown step 'payy'; did you mean 'pay'? Known: order, pay, refund
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["PrivdomainError", "DataError", "DatasetError", "UsageError", "short_repr"]

MAX_VALUE_CHARS = 200
"""At most this many characters of an offending value are shown in a message."""


def short_repr(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters (a huge value never floods a message).

    >>> short_repr("x" * 1000, limit=12)
    "'xxxxxxxx..."
    """
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails still gets a message
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


class PrivdomainError(Exception):
    """Base class of the errors privdomain raises for bad input or arguments."""


class DataError(PrivdomainError, ValueError):
    """Rows of ``table`` break ``rule`` in ``column``.

    Attributes
    ----------
    table, column, rule : str
        What was read, which column, which rule ("must not be null", ...).
    count : int
        How many rows break the rule.
    examples : list
        A few offending values (at most five, each shown in at most 200 characters).
    """

    def __init__(self, table: str, column: str | None, rule: str, count: int,
                 examples: Iterable[Any] = (), hint: str = ""):
        self.table, self.column, self.rule, self.count = table, column, rule, int(count)
        self.examples = list(examples)[:5]
        where = f"{table}: column {column!r}" if column else f"{table}:"
        eg = f" (e.g. {', '.join(short_repr(v, 60) for v in self.examples)})" if self.examples else ""
        msg = f"{where} {rule}: {self.count} row(s) break it{eg}"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)


class DatasetError(PrivdomainError, ValueError):
    """A dataset folder that does not match its manifest, or has none."""

    def __init__(self, path: Any, problem: str):
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")


class UsageError(PrivdomainError, ValueError):
    """A wrong argument: an unknown name, an impossible value."""

    @classmethod
    def unknown(cls, kind: str, name: Any, known: Sequence[str]) -> UsageError:
        """``unknown <kind> <name>; did you mean ...? Known: ...`` (the closest known names first)."""
        known = sorted({str(k) for k in known})
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
        if not close:
            close = [k for k in known if k.lower() == str(name).lower()][:1]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listed = ", ".join(known[:40]) + (", ..." if len(known) > 40 else "")
        return cls(f"unknown {kind} {short_repr(name)}{hint} Known: {listed}")
