"""Test oracles: plain per-person versions of the metrics (:mod:`privdomain.testing.reference`).

Slow and obviously correct; the property tests hold the fast metrics equal to them.
Not part of the analysis API.
"""

from __future__ import annotations

__all__ = ["reference"]
