"""The one API contract of the metrics, and the two helpers that apply it.

Every function that reads events follows the same shape
(docs/architecture.md, "The API contract"; ``tests/test_architecture.py`` checks it):

* the events input is the **first parameter** and is named ``events`` (a pandas
  frame, a dataset folder, a :class:`~privdomain.io.Dataset` or an Ibis table,
  read through :mod:`privdomain.events`);
* ``con`` (the engine connection) is **keyword-only**;
* windows and other spans of time are **durations in one style**: a pandas
  offset string (``"7D"``, ``"36h"``, ``"30min"``) or a :class:`pandas.Timedelta`,
  read by :func:`duration`;
* **time bounds in one style** (:data:`TIME_BOUNDS`): a period is ``start=`` /
  ``end=``, a snapshot ("the data up to and including this day") is ``as_of=``, a
  calibration/holdout split is ``calibration_end=`` / ``holdout_end=``;
* **no column arguments**: metrics read the event schema's own columns; a
  transaction table with other names is mapped onto it first
  (:func:`privdomain.events.from_transactions`);
* every result is a **returned value** (a column, a frame or a small result
  object), never only an entry of ``.attrs``.

Old spellings work for one release with a :class:`DeprecationWarning`: the events
input under the keyword ``data=``, ``transactions=`` or ``ds=`` (:func:`events_input`),
renamed window keywords such as ``window_days=30``, renamed time bounds such as
``observation_end=`` (now ``as_of=``), windows given as a bare number of days
(``window=7``) and the column arguments of ``rfm_summary``.

>>> import warnings
>>> @events_input(renamed={"window_days": "window"})
... def rows(events, *, window="7D", con=None):
...     return len(events), duration(window)
>>> rows([1, 2])
(2, Timedelta('7 days 00:00:00'))
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     rows(data=[1, 2, 3], window_days=30)
(3, Timedelta('30 days 00:00:00'))
>>> for w in caught:
...     print(w.category.__name__, w.message)
DeprecationWarning rows(data=...) is deprecated; pass the events as the first argument or as events=...
DeprecationWarning rows(window_days=...) is deprecated; use window= (a duration such as '30D')
"""

from __future__ import annotations

import datetime as _dt
import functools
import inspect
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, Union

import pandas as pd

from .errors import UsageError

__all__ = ["OLD_EVENTS_NAMES", "TIME_BOUNDS", "Duration", "Legacy", "duration", "duration_days", "events_input", "interval", "window_days"]

#: The keyword names the events input had before the contract (one release of grace).
OLD_EVENTS_NAMES = ("data", "transactions", "ds")

#: What a window may be: ``"7D"``, ``"36h"``, a :class:`pandas.Timedelta` or a
#: :class:`datetime.timedelta` (a bare number of days is deprecated).
Duration = Union[str, pd.Timedelta, _dt.timedelta]

F = TypeVar("F", bound=Callable[..., Any])

#: The names of time bounds (docs/architecture.md, "The API contract"): a period is
#: ``start=`` / ``end=``, a snapshot (the data up to and including this day) is
#: ``as_of=``, a calibration/holdout split is ``calibration_end=`` / ``holdout_end=``.
TIME_BOUNDS = ("start", "end", "as_of", "calibration_end", "holdout_end")

#: A function's old keywords it no longer takes: ``(handler, {old keyword: advice})``.
Legacy = tuple[Callable[..., Any], Mapping[str, str]]


def duration(value: Any, *, name: str = "window", allow_zero: bool = False) -> pd.Timedelta:
    """A window as a :class:`pandas.Timedelta`, the one reader of every duration argument.

    ``"7D"``, ``"36h"``, ``"30min"``, ``pd.Timedelta(days=7)`` and
    ``datetime.timedelta(days=7)`` are durations. A bare number is read as **days**
    with a :class:`DeprecationWarning` (the old ``int``-days parameters); pandas would
    read it as nanoseconds, which no caller ever meant.

    Raises :class:`~privdomain.errors.UsageError` for anything else, and for a
    negative (or, unless ``allow_zero``, zero) duration.

    >>> duration("7D"), duration("36h")
    (Timedelta('7 days 00:00:00'), Timedelta('1 days 12:00:00'))
    >>> duration("0D", allow_zero=True)
    Timedelta('0 days 00:00:00')
    """
    if isinstance(value, bool):
        raise UsageError(f"{name}: cannot read {value!r} as a duration (e.g. '7D', '12h')")
    if isinstance(value, numbers.Real):
        warnings.warn(f"{name}={value!r} as a number of days is deprecated; write {name}='{value:g}D'",
                      DeprecationWarning, stacklevel=3)
        out = pd.Timedelta(days=float(value))
    else:
        try:
            out = pd.Timedelta(value)
        except (TypeError, ValueError) as err:
            raise UsageError(f"{name}: cannot read {value!r} as a duration (e.g. '7D', '12h')") from err
    if pd.isna(out) or out < pd.Timedelta(0) or (out == pd.Timedelta(0) and not allow_zero):
        raise UsageError(f"{name}: must be a {'non-negative' if allow_zero else 'positive'} duration, got {value!r}")
    return out


def duration_days(value: Any, *, name: str = "window", allow_zero: bool = False) -> float:
    """:func:`duration` in days (a float), for the metrics that count in days.

    >>> duration_days("36h"), duration_days(pd.Timedelta(days=30))
    (1.5, 30.0)
    """
    return duration(value, name=name, allow_zero=allow_zero) / pd.Timedelta(days=1)


def window_days(windows: Any, *, name: str = "windows") -> list[int]:
    """A list of windows as whole days, for the boards whose rows they label.

    Each window is a duration (``"7D"``, ``pd.Timedelta(days=7)``, read with
    :func:`duration_days`; ``"0D"`` is allowed) or a whole number of days, taken as it
    is, without a warning: these lists are the ``window_days`` column's values. Order
    and repeats are kept (each metric sorts and checks its own range); a duration
    that is not a whole number of days raises :class:`~privdomain.errors.UsageError`.

    >>> window_days(("1D", "7D", pd.Timedelta(days=30))), window_days((1, 7, 30))
    ([1, 7, 30], [1, 7, 30])
    """
    if isinstance(windows, (str, pd.Timedelta, _dt.timedelta)) or isinstance(windows, numbers.Real):
        windows = [windows]
    out = []
    for w in windows:
        if isinstance(w, numbers.Real) and not isinstance(w, bool):
            out.append(int(w))
            continue
        days = duration_days(w, name=name, allow_zero=True)
        if days != int(days):
            raise UsageError(f"{name}: each window must be a whole number of days, got {w!r} ({days:g} days)")
        out.append(int(days))
    return out


def interval(value: Any, *, name: str = "window", allow_zero: bool = False) -> Any:
    """:func:`duration` as an Ibis interval (whole seconds when it has no fraction of one).

    >>> interval("36h").op().value, interval("36h").op().dtype.unit.short
    (129600, 's')
    """
    import ibis

    us = int(duration(value, name=name, allow_zero=allow_zero) / pd.Timedelta(microseconds=1))
    return ibis.interval(seconds=us // 1_000_000) if us % 1_000_000 == 0 else ibis.interval(microseconds=us)


def events_input(func: F | None = None, *, renamed: Mapping[str, str] | None = None,
                 positional: Sequence[str] = (), legacy: Legacy | None = None) -> Any:
    """Decorator: accept the old spellings of a metric's arguments for one release.

    The events input given as ``data=``, ``transactions=`` or ``ds=`` is passed on
    as ``events=``; each ``renamed`` keyword (``{"window_days": "window"}``,
    ``{"observation_end": "as_of"}``) is passed on under its new name, a bare number of
    days becoming a :class:`pandas.Timedelta` when the new name is a window (not a time
    bound of :data:`TIME_BOUNDS`). Each old spelling warns with a
    :class:`DeprecationWarning`; giving both the old and the new name is a
    :class:`TypeError`. The signature shown is the new one.

    Parameters
    ----------
    renamed
        ``{old keyword: new keyword}``.
    positional
        The old names, in order, of positional arguments the new signature no longer
        takes by position (those after its own positional parameters): a call that still
        passes them by position has them passed on as keywords (then renamed, or handed
        to ``legacy``), ``rfm_summary(tx, "cust", "day", "usd", "1997-02-12")``.
    legacy
        ``(handler, {old keyword: advice})`` for keywords the function no longer takes
        at all (column arguments, ``holdout_end`` on :func:`privdomain.clv.rfm.rfm_summary`):
        a call that gives any of them warns with its advice and is answered by
        ``handler(*args, **kwargs)``, the old behaviour kept for one release.
    """
    renames = dict(renamed or {})
    old_positional = tuple(positional)
    handler, advice = legacy if legacy is not None else (None, {})

    def wrap(f: F) -> F:
        params = inspect.signature(f).parameters
        takes_events = next(iter(params)) == "events"
        if not takes_events and not renames:
            raise TypeError(f"{f.__qualname__}: the events input must be the first parameter, named 'events'")
        n_positional = sum(p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                           for p in params.values())

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if old_positional and len(args) > n_positional:
                extra = args[n_positional:]
                if len(extra) > len(old_positional):
                    raise TypeError(f"{f.__name__}() takes at most {n_positional + len(old_positional)} positional "
                                    f"arguments ({len(args)} given)")
                args = args[:n_positional]
                for old, value in zip(old_positional, extra):
                    if old in kwargs:
                        raise TypeError(f"{f.__name__}() got multiple values for argument {old!r}")
                    if old not in renames and old not in advice:
                        warnings.warn(f"{f.__name__}(): passing {old} by position is deprecated; pass {old}=...",
                                      DeprecationWarning, stacklevel=2)
                    kwargs[old] = value
            for old in OLD_EVENTS_NAMES if takes_events else ():
                if old in kwargs and old not in params:
                    if args or "events" in kwargs:
                        raise TypeError(f"{f.__name__}() got the events twice (as {old}= and as events)")
                    warnings.warn(f"{f.__name__}({old}=...) is deprecated; pass the events as the first argument "
                                  f"or as events=...", DeprecationWarning, stacklevel=2)
                    kwargs["events"] = kwargs.pop(old)
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{f.__name__}() got both {old}= and {new}=")
                    value = kwargs.pop(old)
                    days = isinstance(value, numbers.Real) and not isinstance(value, bool) and new not in TIME_BOUNDS
                    warnings.warn(f"{f.__name__}({old}=...) is deprecated; use {new}= (a duration such as "
                                  f"'{value:g}D')" if days else f"{f.__name__}({old}=...) is deprecated; use {new}=",
                                  DeprecationWarning, stacklevel=2)
                    if days:
                        value = pd.Timedelta(days=float(value))
                    kwargs[new] = value
            old_keywords = [k for k in advice if k in kwargs]
            if old_keywords and handler is not None:
                by_advice: dict[str, list[str]] = {}
                for old in old_keywords:  # one warning per piece of advice
                    by_advice.setdefault(advice[old], []).append(f"{old}=...")
                for text, olds in by_advice.items():
                    warnings.warn(f"{f.__name__}({', '.join(olds)}) is deprecated; {text}",
                                  DeprecationWarning, stacklevel=2)
                return handler(*args, **kwargs)
            return f(*args, **kwargs)

        wrapper.__wrapped_contract__ = True  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return wrap(func) if func is not None else wrap
