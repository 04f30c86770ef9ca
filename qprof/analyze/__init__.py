"""Analyze: independent detectors, each a function from a profile to findings.

``DETECTORS`` lists them in the order they run; a new detector is a module
here, one line in that tuple, and a case in the tests. ``analyze_profile``
runs them all and returns the findings costliest first.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import apsw

from qprof.analyze.automatic_index import detect_automatic_indexes
from qprof.analyze.correlated_subquery import detect_correlated_subqueries
from qprof.analyze.finding import SEVERITIES, AnalysisContext, Finding, Thresholds
from qprof.analyze.full_scan import detect_full_scans
from qprof.analyze.implicit_foreign_key import detect_implicit_foreign_keys
from qprof.analyze.missing_statistics import detect_missing_statistics
from qprof.analyze.n_plus_one import detect_n_plus_one
from qprof.analyze.non_sargable import detect_non_sargable
from qprof.analyze.offset_pagination import detect_offset_pagination
from qprof.analyze.redundant_index import detect_redundant_indexes
from qprof.analyze.temp_btree import detect_temp_btrees
from qprof.analyze.unindexed_filter import detect_unindexed_filters
from qprof.analyze.unindexed_foreign_key import detect_unindexed_foreign_keys
from qprof.analyze.unused_index import detect_unused_indexes
from qprof.profile import WorkloadProfile
from qprof.schema import read_schema

log = logging.getLogger(__name__)

Detector = Callable[[AnalysisContext], list[Finding]]

DETECTORS: tuple[tuple[str, Detector], ...] = (
    ("n_plus_one", detect_n_plus_one),
    ("full_scan", detect_full_scans),
    ("unindexed_filter", detect_unindexed_filters),
    ("automatic_index", detect_automatic_indexes),
    ("correlated_subquery", detect_correlated_subqueries),
    ("non_sargable", detect_non_sargable),
    ("temp_btree", detect_temp_btrees),
    ("offset_pagination", detect_offset_pagination),
    ("missing_statistics", detect_missing_statistics),
    ("unindexed_foreign_key", detect_unindexed_foreign_keys),
    ("implicit_foreign_key", detect_implicit_foreign_keys),
    ("redundant_index", detect_redundant_indexes),
    ("unused_index", detect_unused_indexes),
)

FINDING_KINDS = tuple(name for name, _ in DETECTORS)

__all__ = [
    "DETECTORS",
    "FINDING_KINDS",
    "Analysis",
    "Finding",
    "Thresholds",
    "analyze_profile",
]


@dataclass(slots=True)
class Analysis:
    """What the analyzer found in a profile."""

    findings: list[Finding]
    """Costliest first."""
    fingerprints: int = 0
    """Fingerprints looked at."""
    unparsed: int = 0
    """Fingerprints sqlglot could not parse (plan-based detectors still ran on them)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Detectors that raised, with the error (the others still ran)."""
    context: AnalysisContext | None = None
    """The parsed statements and schema, for the recommender to reuse."""


def analyze_profile(
    profile: WorkloadProfile,
    database: str | Path | None = None,
    thresholds: Thresholds | None = None,
    kinds: tuple[str, ...] | None = None,
    parse_all: bool = True,
) -> Analysis:
    """Run the detectors (all, or those named in ``kinds``) on ``profile``.

    ``database`` is the original database, opened read-only for row counts,
    re-running N+1 parents and the statistics what-if; without it those
    detectors do less. ``parse_all`` parses every fingerprint, also those no
    detector needed (for ``unparsed`` and the recommender). Returns the
    findings costliest first.
    """
    connection = None
    if database is not None:
        connection = apsw.Connection(str(database), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        schema = profile.schema
        if schema is None:
            if connection is None:
                raise ValueError("a profile without a schema needs its database")
            schema = read_schema(connection, database or "")
        if connection is not None:
            schema.attach(connection)
        context = AnalysisContext(
            profile, schema, thresholds or Thresholds(), connection
        )
        findings, failed = _run(context, kinds)
        for fp in profile.fingerprints.values() if parse_all else ():
            context.usage(fp)
    finally:
        if connection is not None:
            if profile.schema is not None:
                profile.schema.attach(None)
            connection.close()
    minimum = context.thresholds.min_share
    findings = [f for f in findings if f.fingerprint is None or f.time_share >= minimum]
    findings.sort(
        key=lambda f: (-f.cost, SEVERITIES.index(f.severity), f.kind, f.table or "")
    )
    log.info(
        "analyzed %d fingerprints: %d findings",
        len(profile.fingerprints),
        len(findings),
    )
    context.connection = None
    return Analysis(
        findings, len(profile.fingerprints), context.unparsed, failed, context
    )


def _run(
    context: AnalysisContext, kinds: tuple[str, ...] | None
) -> tuple[list[Finding], dict[str, str]]:
    findings: list[Finding] = []
    failed: dict[str, str] = {}
    for name, detect in DETECTORS:
        if kinds is not None and name not in kinds:
            continue
        try:
            found = detect(context)
        except (
            Exception
        ) as error:  # one broken detector must not hide the others' findings
            log.warning(
                "the %s detector failed: %s: %s", name, type(error).__name__, error
            )
            failed[name] = f"{type(error).__name__}: {error}"
            continue
        for finding in found:
            if _is_on_sqlite_tables(context, finding):
                # SQLite's own tables (sqlite_schema, sqlite_sequence) take no index
                # and no rewrite of ours: schema lookups by an ORM or a migration tool.
                log.debug("%s on SQLite's own tables left out: %s", name, finding.sql)
                continue
            findings.append(finding)
    return findings, failed


def _is_on_sqlite_tables(context: AnalysisContext, finding: Finding) -> bool:
    """Return True when the finding's table, or every table its statement reads, is
    one of SQLite's own."""
    if finding.table:
        return finding.table.lower().startswith("sqlite_")
    fp = context.profile.fingerprints.get(finding.fingerprint or "")
    if fp is None:
        return False
    usage = context.usage(fp)
    if usage is not None:
        tables = set(usage.tables.values())
    else:  # sqlglot could not read it: the names after FROM and JOIN
        tables = {m[1] for m in _READ_TABLE.findall(fp.sample_sql)}
    return bool(tables) and all(t.lower().startswith("sqlite_") for t in tables)


_READ_TABLE = re.compile(r"""\b(?:FROM|JOIN)\s+(["`\[]?)([\w$]+)""", re.IGNORECASE)
