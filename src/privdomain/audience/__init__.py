"""Audiences (人群): profile tags, segment selection (圈选), overlaps, id export and lookalikes.

============ ===============================================================
tags         :func:`tags`: one row per person, Youshu's tag families
select       :func:`select` with conditions (:class:`Tag`, :class:`Did`,
             :class:`InFunnel`, :class:`Cohort`; ``&``, ``|``, ``~``),
             :class:`Segment`, :func:`overlap`
export       :func:`export`: the ids a brand uploads, keyed pseudonyms, CSV/Parquet
lookalike    :func:`lookalike` (logistic regression on the tags from a seed),
             :func:`lift_by_decile`
campaign     :func:`campaign_roi` (a randomised audience campaign's incremental ROI),
             :func:`roi_ratio`
============ ===============================================================

>>> from privdomain import audience
>>> str(audience.Tag("stage") == "dormant")
"stage == 'dormant'"
"""

from __future__ import annotations

from .campaign import campaign_roi, roi_ratio
from .export import export
from .lookalike import Lookalike, lift_by_decile, lookalike
from .select import Cohort, Condition, Did, InFunnel, Overlap, Segment, Tag, overlap, select
from .tags import tags

__all__ = ["tags", "select", "overlap", "export", "Condition", "Tag", "Did", "InFunnel", "Cohort", "Segment",
           "Overlap", "lookalike", "lift_by_decile", "Lookalike", "campaign_roi", "roi_ratio"]
