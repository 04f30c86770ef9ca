"""Recommend: composite indexes, chosen for the whole workload by measured saving.

``recommend_indexes`` makes candidates from how the costly statements use
their tables (``candidates``), tries each on a scratch copy (``whatif``), and
picks greedily (``select``): at each step the candidate with the largest net
saving per byte of index (VM steps saved on reads, weighted by how often each
statement runs, minus the steps it adds to the workload's writes), re-measured
after every pick because indexes interact, until nothing pays or a budget is
reached. The user's database is only read.
"""

from __future__ import annotations

from qprof.recommend.select import (
    Recommendation,
    RecommendationSet,
    RecommendOptions,
    ServedFingerprint,
    recommend_indexes,
)

__all__ = [
    "RecommendOptions",
    "Recommendation",
    "RecommendationSet",
    "ServedFingerprint",
    "recommend_indexes",
]
