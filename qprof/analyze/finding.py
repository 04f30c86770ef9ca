"""What detectors share: the finding, the thresholds, and the analysis context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import apsw

from qprof.profile import FingerprintProfile, WorkloadProfile
from qprof.schema import Index, Schema, Table
from qprof.usage import StatementUsage, statement_usage

SEVERITIES = ("high", "medium", "low")


@dataclass(slots=True)
class Finding:
    """One thing wrong with the workload, with its evidence and what it costs."""

    kind: str
    """What is wrong: ``full_scan``, ``n_plus_one``, ``unindexed_filter``, ..."""
    severity: str
    """``high``, ``medium`` or ``low``."""
    message: str
    """One sentence saying what is wrong."""
    advice: str
    """One sentence saying what to do."""
    fingerprint: str | None = None
    """The fingerprint id concerned (None for a finding about the schema alone)."""
    sql: str | None = None
    """A sample statement."""
    table: str | None = None
    """The table concerned."""
    columns: tuple[str, ...] = ()
    """The columns concerned, in the order that matters."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """Plan lines, counters, counts and callers that show it."""
    time_share: float = 0.0
    """Its fingerprints' share of the workload's measured time, 0 to 1."""
    vm_share: float = 0.0
    """Its fingerprints' share of the workload's VM steps, 0 to 1."""
    fingerprints: tuple[str, ...] = ()
    """Every fingerprint it concerns (``fingerprint`` first)."""

    @property
    def cost(self) -> float:
        """Return the share used to rank findings: time, with VM steps to break ties."""
        return self.time_share + self.vm_share / 1000


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The numbers that decide what is worth a finding; each has a CLI option."""

    scan_min_rows: int = 1000
    """A full scan of a table with fewer rows is left alone (a lookup table)."""
    n_plus_one_min: int = 5
    """Repeats of one fingerprint in one context that make an N+1 loop."""
    offset_min: int = 1000
    """OFFSET values from this size on are deep pagination."""
    min_share: float = 0.0
    """Findings whose fingerprints take less of the workload's time are dropped."""


@dataclass
class AnalysisContext:
    """Everything a detector may read: the profile, the schema, parsed statements."""

    profile: WorkloadProfile
    """The measured workload."""
    schema: Schema
    """The database's schema."""
    thresholds: Thresholds
    """The limits in force."""
    connection: apsw.Connection | None = None
    """The original database, opened read-only (None when not at hand)."""
    _usages: dict[str, StatementUsage | None] = field(default_factory=dict)

    def usage(self, fp: FingerprintProfile) -> StatementUsage | None:
        """Return how ``fp``'s sample statement uses the schema, parsed once."""
        key = fp.fingerprint.id
        if key not in self._usages:
            self._usages[key] = statement_usage(fp.sample_sql, self.schema)
        return self._usages[key]

    @property
    def unparsed(self) -> int:
        """Return how many fingerprints sqlglot could not parse (so far)."""
        return sum(1 for usage in self._usages.values() if usage is None)

    def shares(self, *fps: FingerprintProfile) -> tuple[float, float]:
        """Return the time and VM-step shares of ``fps`` in the workload."""
        total_ns = self.profile.total_ns or 1
        total_vm = self.profile.vm_step or 1
        return (
            sum(fp.total_ns for fp in fps) / total_ns,
            sum(fp.vm_step for fp in fps) / total_vm,
        )

    def finding(self, fp: FingerprintProfile, **fields: Any) -> Finding:
        """Return a Finding about ``fp``, with its shares and sample filled in."""
        time_share, vm_share = self.shares(fp)
        fields.setdefault("fingerprint", fp.fingerprint.id)
        fields.setdefault("sql", fp.sample_sql)
        fields.setdefault("fingerprints", (fp.fingerprint.id,))
        evidence = fields.setdefault("evidence", {})
        evidence.setdefault("count", fp.count)
        evidence.setdefault("total_ns", fp.total_ns)
        evidence.setdefault("vm_steps", fp.vm_step)
        if fp.plan:
            evidence.setdefault("plan", [str(line) for line in fp.plan])
        if fp.callers:
            evidence.setdefault(
                "callers", sorted(fp.callers, key=lambda c: -fp.callers[c])
            )
        return Finding(time_share=time_share, vm_share=vm_share, **fields)

    def table_named(self, name: str | None) -> Table | None:
        """Return the schema's table ``name``, or None."""
        return self.schema.table(name) if name else None


def serving_index(
    table: Table, equal: set[str], ranged: set[str], column: str
) -> Index | None:
    """Return an index that can serve a filter on ``column`` (any case), or None.

    An index serves a column when the column is in the index's leading run of
    equality columns, or is the first range column right after that run: the
    same rule SQLite's planner follows (https://sqlite.org/optoverview.html).
    The rowid (an INTEGER PRIMARY KEY) serves itself.
    """
    target = column.lower()
    if table.rowid_alias and table.rowid_alias.lower() == target or target == "rowid":
        return Index("rowid", table.name, (column,), True, False, "pk")
    equal = {c.lower() for c in equal}
    ranged = {c.lower() for c in ranged}
    for index in table.indexes:
        if index.partial:
            continue
        for key in index.columns:
            key = key.lower()
            if key == target and (key in equal or key in ranged):
                return index
            if key not in equal:
                break
    return None
