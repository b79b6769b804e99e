"""The Youshu-style boards: one module per board, each a pure function of the events.

============== ==========================================================
funnel         ordered / strict / unordered / any-order funnels, trends, audiences
officialaccount the Official Account board and the three article rates
touchpoints    touchpoint volumes and the touchpoint map (flows, node rates)
channel_cube   orders, buyers and GMV per channel within 1/7/30 days
live           the live-stream board
overview       the overview board (数据概览): events, persons, buyers, orders, GMV
============== ==========================================================

The modules are also reachable under their first names (``privdomain.funnel``,
``privdomain.officialaccount``...; see :data:`privdomain.MOVED`).

>>> from privdomain.boards import funnel
>>> funnel.__name__
'privdomain.boards.funnel'
"""

from __future__ import annotations

from . import channel_cube, funnel, live, officialaccount, overview, touchpoints

__all__ = ["channel_cube", "funnel", "live", "officialaccount", "overview", "touchpoints"]
