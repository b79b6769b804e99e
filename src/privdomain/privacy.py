"""Keyed pseudonyms for personal ids: HMAC-SHA256 for real data, SipHash-2-4 for the simulator.

Real ids (phones, openids, member numbers) should be replaced by pseudonyms before
analysis or export. :func:`pseudonymise` does so with HMAC-SHA256 (RFC 2104) under a
key only the data owner holds: the same key always gives the same pseudonym, so joins
and identity unification still link, while without the key a pseudonym cannot be
turned back into the id, not even by trying every phone number (an unkeyed hash of a
phone number can: there are only about 3 * 10**9 Chinese mobile numbers).

:func:`siphash24` is a vectorised keyed pseudo-random function over 64-bit integers
(SipHash-2-4, Aumasson & Bernstein 2012); the simulator uses it for its
``phone_hash`` ids, where a per-value HMAC would cost several percent of a run.

Examples
--------
>>> import pandas as pd
>>> from privdomain.privacy import pseudonymise
>>> key = b"a secret of at least 16 bytes"
>>> df = pd.DataFrame({"phone": ["13800000000", None], "spend_fen": [1900, 0]})
>>> out = pseudonymise(df, ["phone"], key, prefix="ph")
>>> out["phone"].iloc[0]
'phc5a17541f854e75930f640e333ad253b'
>>> out["phone"].isna().tolist(), df["phone"].iloc[0]   # nulls stay null; the input is unchanged
([False, True], '13800000000')
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import UsageError, short_repr

__all__ = ["pseudonymise", "siphash24", "MIN_KEY_BYTES", "PSEUDONYM_HEX_CHARS", "as_key"]

MIN_KEY_BYTES = 16
"""Shortest key accepted (128 bits): a shorter key could be found by trying them all."""

PSEUDONYM_HEX_CHARS = 32
"""A pseudonym is the first 32 hex characters (128 bits) of the HMAC-SHA256 digest."""


def as_key(key: bytes | str, what: str = "key") -> bytes:
    """``key`` as bytes (text is UTF-8 encoded); refuses anything shorter than :data:`MIN_KEY_BYTES`.

    >>> len(as_key("0123456789abcdef"))
    16
    """
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise UsageError(f"{what}: must be bytes or text (got {type(key).__name__})")
    key = bytes(key)
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(f"{what}: must be at least {MIN_KEY_BYTES} bytes (got {len(key)}); "
                         f"use e.g. secrets.token_hex(16)")
    return key


def _text(value: object) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return str(value).encode("utf-8")


def pseudonymise(frame: pd.DataFrame, columns: str | Sequence[str], key: bytes | str, *,
                 prefix: str | None = None) -> pd.DataFrame:
    """Replace the values of ``columns`` by keyed pseudonyms (HMAC-SHA256).

    Parameters
    ----------
    frame
        The table; it is not changed (a new frame is returned).
    columns
        The id columns to pseudonymise (a name or a list of names).
    key
        The secret key, bytes or text (UTF-8), at least 16 bytes. Keep it: the same
        key gives the same pseudonyms (so two exports can still be joined), another
        key gives unrelated ones.
    prefix
        Text put before each pseudonym (e.g. ``"ph"``), to show what kind of id it was.

    Returns
    -------
    pandas.DataFrame
        A copy of ``frame`` where each non-null value ``v`` of a column is
        ``prefix + hex(HMAC-SHA256(key, text(v)))[:32]``: 32 lowercase hex characters
        (the first 128 bits of the digest). ``text(v)`` is ``v`` itself for bytes and
        ``str(v)`` UTF-8 encoded otherwise, so the integer 13800000000 and the text
        ``"13800000000"`` get the same pseudonym. Nulls stay null. The column dtype
        becomes ``object``.

    Raises
    ------
    privdomain.errors.UsageError
        A key shorter than 16 bytes, a column the frame does not have, or a float
        column (``1.38e10`` and ``13800000000`` would get different pseudonyms:
        convert ids to text or ``Int64`` first).

    References
    ----------
    .. [1] H. Krawczyk, M. Bellare, R. Canetti, "HMAC: Keyed-Hashing for Message
       Authentication", RFC 2104, 1997.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"openid": ["o1", "o2", "o1"]})
    >>> out = pseudonymise(df, "openid", "0123456789abcdef")
    >>> out["openid"].str.len().tolist(), out["openid"].nunique()
    ([32, 32, 32], 2)
    """
    if not isinstance(frame, pd.DataFrame):
        raise UsageError(f"frame: must be a pandas DataFrame (got {type(frame).__name__})")
    k = as_key(key)
    cols = [columns] if isinstance(columns, str) else list(columns)
    for c in cols:
        if c not in frame.columns:
            raise UsageError.unknown("column", c, [str(x) for x in frame.columns])
        if pd.api.types.is_float_dtype(frame[c].dtype):
            raise UsageError(f"column {short_repr(c)} holds floats; ids must be text or integers "
                             f"(convert with .astype('Int64') or .astype(str) first)")
    pre = "" if prefix is None else str(prefix)
    block = (hashlib.sha256(k).digest() if len(k) > 64 else k).ljust(64, b"\0")  # RFC 2104: K, padded
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    out = frame.copy()
    for c in cols:
        codes, uniques = pd.factorize(frame[c], use_na_sentinel=True)
        names = []
        for u in uniques:  # each distinct value once
            i = inner.copy()
            i.update(_text(u))
            o = outer.copy()
            o.update(i.digest())
            names.append(pre + o.hexdigest()[:PSEUDONYM_HEX_CHARS])
        values = np.empty(len(codes), dtype=object)
        if len(names):
            values[:] = np.asarray(names, dtype=object)[np.maximum(codes, 0)]
        values[codes < 0] = None
        out[c] = pd.Series(values, index=frame.index, dtype=object)
    return out


_SIP_C = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)


def siphash24(values: np.ndarray, key: bytes) -> np.ndarray:
    """SipHash-2-4 of each 64-bit integer (as its 8 little-endian bytes) under a 16-byte key.

    A keyed pseudo-random function, vectorised: about 0.1 us a value. Equal to the
    reference SipHash-2-4 of the 8-byte message ``value.to_bytes(8, "little")``.

    Parameters
    ----------
    values
        Integers (any integer dtype; negative ones are read as their two's complement).
    key
        Exactly 16 bytes (k0 = bytes 0-7, k1 = bytes 8-15, little-endian).

    Returns
    -------
    numpy.ndarray
        uint64, one per value.

    References
    ----------
    .. [1] J.-P. Aumasson, D. J. Bernstein, "SipHash: a fast short-input PRF",
       INDOCRYPT 2012.

    Examples
    --------
    >>> import numpy as np
    >>> hex(int(siphash24(np.array([0x0706050403020100], np.uint64), bytes(range(16)))[0]))
    '0x93f5f5799a932462'
    """
    if not isinstance(key, (bytes, bytearray)) or len(key) != 16:
        raise UsageError("siphash24: the key must be exactly 16 bytes")
    m = np.asarray(values).astype(np.uint64, copy=False).ravel()
    k0 = np.uint64(int.from_bytes(key[:8], "little"))
    k1 = np.uint64(int.from_bytes(key[8:], "little"))
    out = np.empty(len(m), np.uint64)
    step = 1 << 16
    with np.errstate(over="ignore"):
        for a in range(0, len(m), step):
            out[a:a + step] = _sip8(m[a:a + step], k0, k1)
    return out.reshape(np.shape(values))


def _rotl(x: np.ndarray, b: int) -> np.ndarray:
    return (x << np.uint64(b)) | (x >> np.uint64(64 - b))


def _sip8(m: np.ndarray, k0: np.uint64, k1: np.uint64) -> np.ndarray:
    n = len(m)
    v0 = np.full(n, k0 ^ np.uint64(_SIP_C[0]), np.uint64)
    v1 = np.full(n, k1 ^ np.uint64(_SIP_C[1]), np.uint64)
    v2 = np.full(n, k0 ^ np.uint64(_SIP_C[2]), np.uint64)
    v3 = np.full(n, k1 ^ np.uint64(_SIP_C[3]), np.uint64)

    def rounds(k: int) -> None:
        nonlocal v0, v1, v2, v3
        for _ in range(k):
            v0 += v1
            v1 = _rotl(v1, 13)
            v1 ^= v0
            v0 = _rotl(v0, 32)
            v2 += v3
            v3 = _rotl(v3, 16)
            v3 ^= v2
            v0 += v3
            v3 = _rotl(v3, 21)
            v3 ^= v0
            v2 += v1
            v1 = _rotl(v1, 17)
            v1 ^= v2
            v2 = _rotl(v2, 32)

    v3 ^= m
    rounds(2)
    v0 ^= m
    last = np.uint64(8 << 56)  # the final block of an 8-byte message: its length in the top byte
    v3 ^= last
    rounds(2)
    v0 ^= last
    v2 ^= np.uint64(0xFF)
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3
