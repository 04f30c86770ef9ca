"""Profile: measured statements grouped by fingerprint.

``ProfileBuilder`` takes measurements one at a time (a replay streams them) and
keeps per fingerprint only sums, the times, and the sampled plans, so memory
grows with the number of fingerprints and not with the log's length (the times
are a compact ``array`` of 8-byte integers, one per statement).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

from qprof.fingerprint import Fingerprint
from qprof.loops import ContextLoop, LoopTracker
from qprof.plan import Plan
from qprof.schema import Schema
from qprof.trace import Params, Statement


@dataclass(slots=True)
class Measurement:
    """One statement as replay ran it, with what SQLite counted."""

    statement: Statement
    """The statement as the workload gave it."""
    fingerprint: Fingerprint
    """Its fingerprint."""
    elapsed_ns: int
    """Wall time of the execution and the fetch of every row (median under --repeat)."""
    vm_step: int = 0
    """SQLITE_STMTSTATUS_VM_STEP: virtual machine steps, the machine-independent cost."""
    fullscan_step: int = 0
    """SQLITE_STMTSTATUS_FULLSCAN_STEP: rows stepped by full table scans."""
    sort: int = 0
    """SQLITE_STMTSTATUS_SORT: sorts done (temp B-trees)."""
    autoindex: int = 0
    """SQLITE_STMTSTATUS_AUTOINDEX: rows inserted into automatic (transient) indexes."""
    rows_returned: int = 0
    """Result rows fetched."""
    rows_changed: int = 0
    """Rows inserted, updated or deleted, including by triggers."""
    readonly: bool = True
    """The statement does not write (sqlite3_stmt_readonly)."""
    error: str | None = None
    """The error SQLite raised, when the statement failed."""
    plan: Plan | None = None
    """The query plan with this statement's values, when replay sampled it."""


@dataclass(slots=True)
class PlanVariant:
    """One query plan a fingerprint was seen with, and the values that gave it."""

    plan: Plan
    """The plan lines."""
    sql: str
    """The first statement that had this plan."""
    params: Params
    """Its bound values."""
    location: str
    """Its ``file:line``."""


@dataclass(slots=True)
class StatementSample:
    """One statement kept as an example of its fingerprint."""

    sql: str
    """Its SQL."""
    params: Params
    """Its bound values."""
    location: str
    """Its ``file:line``."""
    elapsed_ns: int
    """Its measured wall time."""
    vm_step: int
    """Its VM steps."""


@dataclass(slots=True)
class StatementError:
    """A statement that failed during replay."""

    location: str
    """``file:line`` of the statement in the workload."""
    fingerprint: str
    """The fingerprint id."""
    sql: str
    """The statement's SQL."""
    error: str
    """SQLite's error, with its class name."""
    caller: str | None = None
    """The application's ``file:line`` that sent it, when the trace says."""


@dataclass(slots=True)
class FingerprintProfile:
    """Everything measured for one fingerprint."""

    fingerprint: Fingerprint
    """The fingerprint."""
    sample_sql: str
    """The first statement seen with this fingerprint."""
    sample_params: Params
    """Its bound values."""
    first_location: str
    """``file:line`` where it first appears."""
    readonly: bool = True
    """Its statements do not write."""
    count: int = 0
    """Statements executed."""
    errors: int = 0
    """Statements that failed."""
    total_ns: int = 0
    """Summed wall time."""
    vm_step: int = 0
    """Summed SQLITE_STMTSTATUS_VM_STEP."""
    fullscan_step: int = 0
    """Summed SQLITE_STMTSTATUS_FULLSCAN_STEP."""
    sort: int = 0
    """Summed SQLITE_STMTSTATUS_SORT."""
    autoindex: int = 0
    """Summed SQLITE_STMTSTATUS_AUTOINDEX."""
    rows_returned: int = 0
    """Summed result rows."""
    rows_changed: int = 0
    """Summed rows changed."""
    logged_ns: int = 0
    """Summed time the log recorded, for statements whose log has one."""
    logged_count: int = 0
    """How many statements carried a logged time."""
    contexts: set[str] = field(default_factory=set)
    """The context labels it ran in."""
    plans: list[PlanVariant] = field(default_factory=list)
    """The distinct plans seen, the first one first."""
    times_ns: array = field(default_factory=lambda: array("q"))
    """Every statement's wall time, in execution order."""
    samples: list[StatementSample] = field(default_factory=list)
    """The first statements, then the costliest ones (see ``SAMPLES_FIRST``)."""
    callers: dict[str, int] = field(default_factory=dict)
    """Application ``file:line`` callers and how often each sent it."""
    sample_floor: int = 0
    """VM steps of the cheapest of the costliest samples: a statement must beat it."""

    @property
    def plan(self) -> Plan:
        """Return the plan seen first (empty when none was taken)."""
        return self.plans[0].plan if self.plans else ()

    @property
    def plan_varies(self) -> bool:
        """Return True when different values gave different plans."""
        return len(self.plans) > 1

    @property
    def mean_ns(self) -> int:
        """Return the mean wall time."""
        return self.total_ns // self.count if self.count else 0

    def percentile_ns(self, pct: float) -> int:
        """Return the nearest-rank ``pct`` percentile of the wall times.

        The times stay in their compact array (numpy reads it in place), so a
        million statements cost 8 MB here, not a list of Python integers.
        """
        import numpy  # here: a trace summary that needs no percentile skips its import

        count = len(self.times_ns)
        if not count:
            return 0
        rank = max(1, math.ceil(count * pct / 100))
        times = numpy.frombuffer(self.times_ns, dtype=numpy.int64)
        return int(numpy.partition(times, rank - 1)[rank - 1])


@dataclass(slots=True)
class WorkloadProfile:
    """The profile of a whole workload: per fingerprint, plus totals."""

    workload: str
    """The workload file."""
    database: str
    """The database it was replayed against."""
    format: str
    """The reader that read it."""
    mode: str = "read-only"
    """``read-only`` (the original, opened read-only) or ``snapshot`` (a copy)."""
    repeat: int = 1
    """Runs per read statement."""
    statements: int = 0
    """Statements executed."""
    total_ns: int = 0
    """Summed wall time of every statement."""
    vm_step: int = 0
    """Summed VM steps of every statement."""
    error_count: int = 0
    """Statements that failed."""
    errors: list[StatementError] = field(default_factory=list)
    """The first failures, in workload order."""
    skipped_lines: int = 0
    """Lines of the workload that no reader understood."""
    skipped: list[str] = field(default_factory=list)
    """The first skipped lines' messages."""
    fingerprints: dict[str, FingerprintProfile] = field(default_factory=dict)
    """Per fingerprint id."""
    loops: list[ContextLoop] = field(default_factory=list)
    """Fingerprints that repeated within one context (see ``qprof.loops``)."""
    loop_overflow: dict[str, list[int]] = field(default_factory=dict)
    """Repeats past the kept examples, per fingerprint: [contexts, statements, ns]."""
    schema: Schema | None = None
    """The database's schema as the replay left it."""
    context_statements: dict[str, int] = field(default_factory=dict)
    """Statements per context label (a test id, a request), for the log's labelled ones."""
    elapsed_s: float = 0.0
    """Wall time of the whole replay, reading included."""

    def costliest(self) -> list[FingerprintProfile]:
        """Return the fingerprints by total time, costliest first."""
        return sorted(
            self.fingerprints.values(), key=lambda fp: (-fp.total_ns, fp.fingerprint.id)
        )

    def share(self, profile: FingerprintProfile) -> float:
        """Return ``profile``'s share of the workload's total time, 0 to 1."""
        return profile.total_ns / self.total_ns if self.total_ns else 0.0


SAMPLES_FIRST = 8
SAMPLES_COSTLIEST = 4
CALLERS_KEPT = 20


class ProfileBuilder:
    """Fold measurements into a ``WorkloadProfile``, one at a time.

    Call ``finish`` after the last one.
    """

    def __init__(
        self,
        profile: WorkloadProfile,
        errors_kept: int = 200,
        context_window: int = 2000,
    ) -> None:
        self.profile = profile
        self._errors_kept = errors_kept
        self._loops = LoopTracker(window=context_window)

    def finish(self) -> WorkloadProfile:
        """Close the open contexts and return the profile."""
        self.profile.loops = self._loops.finish()
        self.profile.loop_overflow = self._loops.overflow
        return self.profile

    def add(self, measurement: Measurement) -> None:
        """Add one measured statement."""
        statement = measurement.statement
        fp = self._fingerprint_profile(measurement)
        fp.count += 1
        fp.total_ns += measurement.elapsed_ns
        fp.times_ns.append(measurement.elapsed_ns)
        fp.vm_step += measurement.vm_step
        fp.fullscan_step += measurement.fullscan_step
        fp.sort += measurement.sort
        fp.autoindex += measurement.autoindex
        fp.rows_returned += measurement.rows_returned
        fp.rows_changed += measurement.rows_changed
        if statement.logged_ns is not None:
            fp.logged_ns += statement.logged_ns
            fp.logged_count += 1
        if statement.context is not None:
            if len(fp.contexts) < 1000:
                fp.contexts.add(statement.context)
            counts = self.profile.context_statements
            counts[statement.context] = counts.get(statement.context, 0) + 1
        if measurement.plan is not None:
            self._add_plan(fp, measurement)
        if statement.caller is not None:
            callers = fp.callers
            if statement.caller in callers or len(callers) < CALLERS_KEPT:
                callers[statement.caller] = callers.get(statement.caller, 0) + 1
        self._add_sample(fp, measurement)
        self._loops.add(
            self.profile.statements,
            statement,
            fp.fingerprint.id,
            measurement.elapsed_ns,
        )

        workload = self.profile
        workload.statements += 1
        workload.total_ns += measurement.elapsed_ns
        workload.vm_step += measurement.vm_step
        if measurement.error is not None:
            fp.errors += 1
            workload.error_count += 1
            if len(workload.errors) < self._errors_kept:
                workload.errors.append(
                    StatementError(
                        statement.location,
                        fp.fingerprint.id,
                        statement.sql,
                        measurement.error,
                        statement.caller,
                    )
                )

    def _fingerprint_profile(self, measurement: Measurement) -> FingerprintProfile:
        key = measurement.fingerprint.id
        found = self.profile.fingerprints.get(key)
        if found is None:
            statement = measurement.statement
            found = FingerprintProfile(
                fingerprint=measurement.fingerprint,
                sample_sql=statement.sql,
                sample_params=statement.params,
                first_location=statement.location,
                readonly=measurement.readonly,
            )
            self.profile.fingerprints[key] = found
        return found

    def _add_sample(self, fp: FingerprintProfile, measurement: Measurement) -> None:
        """Keep the first statements, then the costliest in VM steps (deterministic)."""
        samples = fp.samples
        full = SAMPLES_FIRST + SAMPLES_COSTLIEST
        cost = measurement.vm_step
        if len(samples) >= full and cost <= fp.sample_floor:
            return
        if len(samples) >= SAMPLES_FIRST:
            costly = samples[SAMPLES_FIRST:]
            if len(costly) >= SAMPLES_COSTLIEST:
                cheapest = min(range(len(costly)), key=lambda i: costly[i].vm_step)
                if costly[cheapest].vm_step >= cost:
                    return
                del samples[SAMPLES_FIRST + cheapest]
        statement = measurement.statement
        samples.append(
            StatementSample(
                statement.sql,
                statement.params,
                statement.location,
                measurement.elapsed_ns,
                measurement.vm_step,
            )
        )
        if len(samples) >= full:
            fp.sample_floor = min(s.vm_step for s in samples[SAMPLES_FIRST:])

    def _add_plan(self, fp: FingerprintProfile, measurement: Measurement) -> None:
        plan = measurement.plan
        assert plan is not None
        if any(variant.plan == plan for variant in fp.plans):
            return
        statement = measurement.statement
        fp.plans.append(
            PlanVariant(plan, statement.sql, statement.params, statement.location)
        )
