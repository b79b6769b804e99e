"""Segment selection (圈选): composable conditions over the tag table, segments and their overlaps.

A condition is built from tag tests and behaviour, combined with ``&`` (and), ``|`` (or)
and ``~`` (not):

>>> from privdomain.audience.select import Tag, Did
>>> c = (Tag("stage") == "dormant") & Did("live_view", within_days=30) & ~Did("pay", within_days=90)
>>> str(c)
"(stage == 'dormant' & did(live_view, within_days=30)) & ~did(pay, within_days=90)"

A test on a null tag is false, so for every condition ``A`` the persons of ``A`` and of
``~A`` split the tag table exactly (``A & ~A`` is empty, ``A | ~A`` is everyone).
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..backend import TableLike
from ..boards import funnel
from ..errors import UsageError, short_repr
from .tags import id_array, id_isin, touchpoint_column

__all__ = ["Condition", "Tag", "Did", "InFunnel", "Cohort", "Segment", "Overlap", "select", "overlap"]


def _column(tags: pd.DataFrame, name: str) -> pd.Series:
    if name not in tags.columns:
        raise UsageError.unknown("tag", name, [str(c) for c in tags.columns])
    return tags[name]


def _bool(mask: Any) -> np.ndarray:
    s = pd.Series(mask)
    return s.fillna(False).astype(bool).to_numpy()


class Condition:
    """A test per person over the tag table; combine with ``&``, ``|``, ``~``."""

    def mask(self, tags: pd.DataFrame) -> np.ndarray:
        """A boolean array, one value per row of ``tags``."""
        raise NotImplementedError

    def columns(self) -> set[str]:
        """The tag columns the condition reads (a tag file is read for these only)."""
        return {"person_id"}

    def __and__(self, other: Condition) -> Condition:
        return _Binary("&", self, _condition(other))

    def __or__(self, other: Condition) -> Condition:
        return _Binary("|", self, _condition(other))

    def __invert__(self) -> Condition:
        return _Not(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"


def _condition(c: Any) -> Condition:
    if not isinstance(c, Condition):
        raise UsageError(f"a condition must be a Tag test, Did, InFunnel, Cohort or their combination, "
                         f"got {short_repr(c)}")
    return c


class _Binary(Condition):
    def __init__(self, op: str, a: Condition, b: Condition) -> None:
        self.op, self.a, self.b = op, a, b

    def mask(self, tags: pd.DataFrame) -> np.ndarray:
        ma, mb = self.a.mask(tags), self.b.mask(tags)
        return (ma & mb) if self.op == "&" else (ma | mb)

    def columns(self) -> set[str]:
        return self.a.columns() | self.b.columns()

    def __str__(self) -> str:
        def side(c: Condition) -> str:
            return f"({c})" if isinstance(c, _Binary) else str(c)
        return f"{side(self.a)} {self.op} {side(self.b)}"


class _Not(Condition):
    def __init__(self, a: Condition) -> None:
        self.a = a

    def mask(self, tags: pd.DataFrame) -> np.ndarray:
        return ~self.a.mask(tags)

    def columns(self) -> set[str]:
        return self.a.columns()

    def __str__(self) -> str:
        return f"~({self.a})" if isinstance(self.a, _Binary) else f"~{self.a}"


class _Test(Condition):
    def __init__(self, name: str, text: str, test: Callable[[pd.Series], Any]) -> None:
        self.name, self.text, self.test = name, text, test

    def mask(self, tags: pd.DataFrame) -> np.ndarray:
        col = _column(tags, self.name)
        return _bool(self.test(col)) & col.notna().to_numpy()

    def columns(self) -> set[str]:
        return {self.name}

    def __str__(self) -> str:
        return self.text


_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class Tag(Condition):
    """A tag column; compare it to get a condition, or use a boolean tag as one.

    ``Tag("stage") == "dormant"``, ``Tag("city_tier") <= 2``, ``Tag("age_band").isin([...])``,
    ``Tag("purchase_days").between(2, 5)``, ``Tag("member_level").notnull()``,
    ``Tag("live_viewer")`` (true where the boolean tag is true). A test on a null value
    is false.
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise UsageError(f"Tag: name must be a non-empty text, got {short_repr(name)}")
        self.name = name

    def _cmp(self, op: str, value: Any) -> Condition:
        f = _OPS[op]
        return _Test(self.name, f"{self.name} {op} {value!r}", lambda s: f(s, value))

    def __eq__(self, value: Any) -> Condition:  # type: ignore[override]
        return self._cmp("==", value)

    def __ne__(self, value: Any) -> Condition:  # type: ignore[override]
        return self._cmp("!=", value)

    def __lt__(self, value: Any) -> Condition:
        return self._cmp("<", value)

    def __le__(self, value: Any) -> Condition:
        return self._cmp("<=", value)

    def __gt__(self, value: Any) -> Condition:
        return self._cmp(">", value)

    def __ge__(self, value: Any) -> Condition:
        return self._cmp(">=", value)

    __hash__ = None  # type: ignore[assignment]

    def isin(self, values: Iterable[Any]) -> Condition:
        """True where the tag is one of ``values``."""
        vals = list(values)
        return _Test(self.name, f"{self.name} in {vals!r}", lambda s: s.isin(vals))

    def between(self, low: Any, high: Any) -> Condition:
        """True where ``low <= tag <= high``."""
        return _Test(self.name, f"{low!r} <= {self.name} <= {high!r}", lambda s: (s >= low) & (s <= high))

    def notnull(self) -> Condition:
        """True where the tag has a value."""
        return _Test(self.name, f"{self.name} is not null", lambda s: s.notna())

    def isnull(self) -> Condition:
        """True where the tag is null (the one test that is true on nulls)."""
        return _Null(self.name)

    def mask(self, tags: pd.DataFrame) -> np.ndarray:
        col = _column(tags, self.name)
        if not pd.api.types.is_bool_dtype(col.dtype):
            raise UsageError(f"Tag({self.name!r}) used as a condition must be a boolean tag (its dtype is "
                             f"{col.dtype}); compare it instead, e.g. Tag({self.name!r}) == value")
        return col.to_numpy(dtype=bool)

    def columns(self) -> set[str]:
        return {self.name}

    def __str__(self) -> str:
        return self.name


class _Null(Condition):
    def __init__(self, name: str) -> None:
        self.name = name

    def mask(self, tags: pd.DataFrame) -> np.ndarray:
        return _column(tags, self.name).isna().to_numpy()

    def columns(self) -> set[str]:
        return {self.name}

    def __str__(self) -> str:
        return f"{self.name} is null"


class Did(Condition):
    """The person had a ``touchpoint`` event on or before ``as_of``, within the last ``within_days`` days.

    ``within_days=30`` means on one of the 30 days ending on ``as_of`` (``days_since < 30``);
    None means ever. Reads the ``days_since_<touchpoint>`` tag.
    """

    def __init__(self, touchpoint: str, within_days: int | None = None) -> None:
        if within_days is not None and (isinstance(within_days, bool) or not isinstance(within_days, int)
                                        or within_days < 1):
            raise UsageError(f"Did: within_days must be a whole number >= 1 or None, got {short_repr(within_days)}")
        self.touchpoint, self.within_days = touchpoint, within_days

    def mask(self, tags: pd.DataFrame) -> np.ndarray:
        name = touchpoint_column(self.touchpoint)
        if name not in tags.columns:
            known = [c.removeprefix("days_since_") for c in tags.columns if str(c).startswith("days_since_")
                     and c != "days_since_active"]
            raise UsageError.unknown("touchpoint", self.touchpoint, known)
        col = tags[name]
        m = col.notna() if self.within_days is None else (col < self.within_days)
        return _bool(m)

    def columns(self) -> set[str]:
        return {touchpoint_column(self.touchpoint)}

    def __str__(self) -> str:
        w = "" if self.within_days is None else f", within_days={self.within_days}"
        return f"did({self.touchpoint}{w})"


class InFunnel(Condition):
    """Persons who converted to (or dropped at) a funnel step: :func:`privdomain.boards.funnel.funnel_audience`.

    Exactly one of ``converted_to`` and ``dropped_at``; the other arguments are those of
    :func:`privdomain.boards.funnel.funnel`. The funnel runs on ``events`` as given (filter them
    to the period you mean), once, the first time the condition is evaluated.
    """

    def __init__(self, events: TableLike, steps: Sequence[Any], window: str = "7D", mode: str = "ordered", *,
                 converted_to: int | None = None, dropped_at: int | None = None, **options: Any) -> None:
        if (converted_to is None) == (dropped_at is None):
            raise UsageError("InFunnel: give exactly one of converted_to= and dropped_at=")
        self.events, self.steps, self.window, self.mode = events, list(steps), window, mode
        self.converted_to, self.dropped_at, self.options = converted_to, dropped_at, options
        self._ids: np.ndarray | None = None

    def ids(self) -> np.ndarray:
        """The funnel audience's person ids (computed once)."""
        if self._ids is None:
            s = funnel.funnel_audience(self.events, self.steps, self.window, self.mode,
                                       converted_to=self.converted_to, dropped_at=self.dropped_at, **self.options)
            self._ids = np.sort(id_array(s))
        return self._ids

    def mask(self, tags: pd.DataFrame) -> np.ndarray:
        return id_isin(id_array(_column(tags, "person_id")), self.ids())

    def __str__(self) -> str:
        at = f"converted_to={self.converted_to}" if self.converted_to is not None else f"dropped_at={self.dropped_at}"
        return f"in_funnel({self.steps!r}, window={self.window!r}, mode={self.mode!r}, {at})"


class Cohort(Condition):
    """Persons whose ``on`` date tag (default ``first_active``) falls in ``[start, end]`` (days, inclusive).

    ``Cohort("2024-03-01", "2024-03-31")``: first touched in March 2024. Either bound may be None.
    """

    def __init__(self, start: Any = None, end: Any = None, *, on: str = "first_active") -> None:
        if start is None and end is None:
            raise UsageError("Cohort: give start=, end= or both")
        try:
            self.start = None if start is None else pd.Timestamp(start).date()
            self.end = None if end is None else pd.Timestamp(end).date()
        except (TypeError, ValueError) as e:
            raise UsageError(f"Cohort: cannot read {short_repr(start)} / {short_repr(end)} as dates") from e
        self.on = on

    def mask(self, tags: pd.DataFrame) -> np.ndarray:
        col = _column(tags, self.on)
        d = pd.to_datetime(col, errors="coerce")
        if getattr(d.dt, "tz", None) is not None:
            d = d.dt.tz_localize(None)
        d = d.dt.normalize()
        m = d.notna()
        if self.start is not None:
            m &= d >= pd.Timestamp(self.start)
        if self.end is not None:
            m &= d <= pd.Timestamp(self.end)
        return _bool(m)

    def columns(self) -> set[str]:
        return {self.on}

    def __str__(self) -> str:
        return f"cohort({self.on}: {self.start} .. {self.end})"


@dataclass(frozen=True)
class Segment:
    """A selected audience: sorted person ids, the condition's text and the population it was cut from."""

    person_ids: np.ndarray = field(repr=False)
    condition: str
    population: int

    @property
    def size(self) -> int:
        """Number of persons in the segment."""
        return int(len(self.person_ids))

    @property
    def share(self) -> float:
        """Size over the population (NaN for an empty population)."""
        return self.size / self.population if self.population else float("nan")

    def __repr__(self) -> str:
        return f"Segment(size={self.size}, population={self.population}, condition={self.condition!r})"

    def ids(self) -> pd.Series:
        """The person ids as a Series named ``person_id`` (int64, or object for text ids)."""
        return pd.Series(self.person_ids, name="person_id", dtype=object if self.person_ids.dtype == object else "int64")


def _read_tag_file(path: Any, cond: Condition) -> pd.DataFrame:
    """The columns of a tag file (:func:`privdomain.audience.tags` with ``out=``) that ``cond`` reads.

    Text columns come as categoricals and dates as datetime64, so a condition on ten
    million persons holds a few hundred MB, not Python objects per row.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema_ = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise UsageError(f"select: cannot read the tag file {str(path)!r} ({e})") from e
    names = set(schema_.names)
    wanted = (cond.columns() | {"person_id"})
    if not wanted <= names:  # let the condition name the unknown tag among all of them
        cond.mask(schema_.empty_table().to_pandas())
    cols = [c for c in schema_.names if c in wanted]
    text = [c for c in cols if c != "person_id" and (  # ids stay plain values, the tags become categoricals
        pa.types.is_string(schema_.field(c).type) or pa.types.is_large_string(schema_.field(c).type))]
    table = pq.read_table(path, columns=cols, read_dictionary=text)
    return table.to_pandas(date_as_object=False)


def select(tags: pd.DataFrame | str | os.PathLike, condition: Condition) -> Segment:
    """The persons of ``tags`` (from :func:`privdomain.audience.tags`) for whom ``condition`` holds.

    ``tags`` is the tag frame, or the Parquet file ``tags(..., out=path)`` wrote: then only
    ``person_id`` and the columns the condition reads are loaded.

    Examples
    --------
    >>> import pandas as pd
    >>> tg = pd.DataFrame({"person_id": [1, 2, 3], "stage": ["new", "dormant", None]})
    >>> seg = select(tg, Tag("stage") == "dormant")
    >>> seg.person_ids.tolist(), seg.size, seg.condition
    ([2], 1, "stage == 'dormant'")
    >>> select(tg, ~(Tag("stage") == "dormant")).person_ids.tolist()
    [1, 3]
    """
    cond = _condition(condition)
    if isinstance(tags, (str, os.PathLike)):
        tags = _read_tag_file(tags, cond)
    if not isinstance(tags, pd.DataFrame):
        raise UsageError(f"select: tags must be the DataFrame of audience.tags() or the file it wrote, "
                         f"got {type(tags).__name__}")
    ids = id_array(_column(tags, "person_id"))
    m = np.asarray(cond.mask(tags), dtype=bool)
    return Segment(np.sort(ids[m]), str(cond), int(len(ids)))


@dataclass(frozen=True)
class Overlap:
    """Overlap of segments: ``pairwise`` (persons in both, a symmetric matrix; the diagonal is
    each size), ``jaccard`` (intersection over union) and ``intersections`` (UpSet style:
    one row per combination of segments, with the persons in exactly those segments)."""

    pairwise: pd.DataFrame
    jaccard: pd.DataFrame
    intersections: pd.DataFrame


def overlap(segments: Mapping[str, Segment] | Sequence[Segment]) -> Overlap:
    """Pairwise and UpSet-style intersection counts of segments.

    Parameters
    ----------
    segments
        ``{name: Segment}``, or a list (named ``S1``, ``S2``...).

    Examples
    --------
    >>> import numpy as np
    >>> a, b = Segment(np.array([1, 2, 3]), "a", 5), Segment(np.array([3, 4]), "b", 5)
    >>> ov = overlap({"a": a, "b": b})
    >>> int(ov.pairwise.loc["a", "b"]), ov.intersections["persons"].tolist()
    (1, [2, 1, 1])
    """
    named = dict(segments) if isinstance(segments, Mapping) else {f"S{i + 1}": s for i, s in enumerate(segments)}
    if not named:
        raise UsageError("overlap: give at least one segment")
    for name, s in named.items():
        if not isinstance(s, Segment):
            raise UsageError(f"overlap: {short_repr(name)} is not a Segment (got {type(s).__name__})")
    names = list(named)
    union = np.unique(id_array(np.concatenate([named[n].person_ids for n in names])))
    member = np.column_stack([id_isin(union, named[n].person_ids) for n in names]).astype("int64")
    pair = member.T @ member
    sizes = np.diag(pair)
    uni = sizes[:, None] + sizes[None, :] - pair
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(uni > 0, pair / np.maximum(uni, 1), np.nan)
    pairwise = pd.DataFrame(pair, index=names, columns=names)
    jaccard = pd.DataFrame(jac, index=names, columns=names)
    if len(union):
        combos = pd.DataFrame(member.astype(bool), columns=names).value_counts(sort=False).rename("persons")
        inter = combos.reset_index()
    else:
        inter = pd.DataFrame({**{n: pd.Series([], dtype=bool) for n in names}, "persons": pd.Series([], dtype="int64")})
    inter["degree"] = inter[names].sum(axis=1).astype("int64")
    inter = inter.sort_values(["persons", "degree"], ascending=[False, True], kind="stable").reset_index(drop=True)
    inter["persons"] = inter["persons"].astype("int64")
    return Overlap(pairwise, jaccard, inter)
