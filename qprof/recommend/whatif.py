"""What-if: try an index for real on a scratch copy and measure what it changes.

The scratch copy is made with SQLite's backup API in a temporary folder (or,
for a database larger than the copy limit, is a sample: every table's rows
whose rowid falls on every k-th value) and removed on close, also after
Ctrl-C. The user's database is only read. Costs are SQLite's VM steps (the
SQLITE_TRACE_PROFILE event's counter), which do not depend on the machine;
times are measured beside them.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

from qprof.errors import DatabaseError
from qprof.plan import Plan, explain_plan
from qprof.profile import FingerprintProfile, StatementSample
from qprof.recommend.candidates import Candidate, quote_name
from qprof.replay import STATEMENT_ERRORS, open_readonly
from qprof.tempdirs import make_folder, remove_folder, signals_held
from qprof.trace import Params

log = logging.getLogger(__name__)

SAMPLES_PER_FINGERPRINT = 5
_INDEXED_BY = re.compile(
    r"\s+INDEXED\s+BY\s+(\"[^\"]+\"|\[[^\]]+\]|`[^`]+`|[A-Za-z_][\w$]*)", re.I
)


@dataclass(slots=True)
class Cost:
    """A fingerprint's measured cost on the scratch copy."""

    vm_per_statement: float
    """Mean VM steps over the samples."""
    ns_per_statement: float
    """Mean wall time over the samples."""
    plan: Plan
    """The plan of the first sample."""
    rewritten: str | None = None
    """How the statement was changed to measure it (an INDEXED BY removed), if it was."""


class Scratch:
    """A scratch copy of the database to create indexes on and measure."""

    def __init__(self, database: str | Path, max_bytes: int) -> None:
        self.folder = make_folder("qprof-whatif-")
        self.path = self.folder / "scratch.db"
        self.sample_fraction: float | None = None
        try:
            self.connection = self._make(Path(database), max_bytes)
        except BaseException:
            remove_folder(self.folder)
            raise
        self._events: deque[dict[str, Any]] = deque(maxlen=1)
        self.connection.trace_v2(apsw.SQLITE_TRACE_PROFILE, self._events.append)
        self.connection.limit(apsw.SQLITE_LIMIT_ATTACHED, 0)

    def close(self) -> None:
        """Close and delete the scratch copy."""
        with signals_held():
            try:
                self.connection.close()
            finally:
                remove_folder(self.folder)

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def has_stat1(self) -> bool:
        """Return True when the scratch copy has statistics."""
        return bool(
            self.connection.execute(
                "SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'"
            ).fetchall()
        )

    def create(self, candidate: Candidate, analyze: bool) -> None:
        """Create ``candidate`` (and ANALYZE it when the copy has statistics)."""
        self.connection.execute(candidate.ddl)
        if analyze:
            self.connection.execute(f"ANALYZE {quote_name(candidate.name)}")

    def drop(self, candidate: Candidate) -> None:
        """Drop ``candidate`` again."""
        self.connection.execute(f"DROP INDEX IF EXISTS {quote_name(candidate.name)}")

    def size(self, name: str) -> int:
        """Return the bytes the index ``name`` takes (from the dbstat table)."""
        found = self.connection.execute(
            "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?", (name,)
        ).get
        return int(found or 0)  # type: ignore[arg-type]

    def analyze(self) -> None:
        """Run ANALYZE on the whole copy."""
        self.connection.execute("ANALYZE")

    def forget_statistics(self) -> None:
        """Drop the statistics ANALYZE wrote, and make the planner forget them."""
        for table in ("sqlite_stat1", "sqlite_stat4"):
            self.connection.execute(f"DROP TABLE IF EXISTS {table}")
        self.connection.execute("ANALYZE sqlite_schema")

    def cost(self, fp: FingerprintProfile, index: str | None = None) -> Cost | None:
        """Measure ``fp``'s samples; with ``index``, only if the planner uses it.

        A statement pinned to another index with INDEXED BY is measured with
        the hint removed, and the cost says so. Returns None when no sample
        runs (or, with ``index``, when the planner does not use it).
        """
        samples = _samples(fp)
        if not samples:
            return None
        rewritten = None
        plan = self._plan(samples[0].sql, samples[0].params)
        if plan is None:
            return None
        if index is not None and not uses_index(plan, index):
            stripped = [(s, _INDEXED_BY.sub("", s.sql)) for s in samples]
            if stripped[0][1] == samples[0].sql:
                return None
            plan = self._plan(stripped[0][1], samples[0].params)
            if plan is None or not uses_index(plan, index):
                return None
            rewritten = "INDEXED BY " + _INDEXED_BY.search(samples[0].sql)[1]  # type: ignore[index]
            runs = [(text, s.params) for s, text in stripped]
        else:
            runs = [(s.sql, s.params) for s in samples]
        measured = [m for m in (self._run(sql, params) for sql, params in runs) if m]
        if not measured:
            return None
        vm = sum(m[0] for m in measured) / len(measured)
        ns = sum(m[1] for m in measured) / len(measured)
        return Cost(vm, ns, plan, rewritten)

    def write_cost(self, fp: FingerprintProfile) -> tuple[float, float] | None:
        """Return the mean (VM steps, wall time) of ``fp``'s write samples.

        Each run is rolled back (a savepoint), so the copy does not change; each
        sample runs three times and keeps its fastest time.
        """
        steps, times = [], []
        for sample in _samples(fp)[:3]:
            measured = [self._rolled_back(sample.sql, sample.params) for _ in range(3)]
            done = [m for m in measured if m is not None]
            if done:
                steps.append(done[0][0])
                times.append(min(m[1] for m in done))
        if not steps:
            return None
        return sum(steps) / len(steps), sum(times) / len(times)

    def _rolled_back(self, sql: str, params: Params) -> tuple[int, int] | None:
        self.connection.execute("SAVEPOINT qprof_write")
        try:
            return self._run(sql, params, repeat=1)
        finally:
            self.connection.execute("ROLLBACK TO qprof_write")
            self.connection.execute("RELEASE qprof_write")

    def distinct_values(self, table: str, column: str, limit: int = 20_000) -> int:
        """Return how many distinct values ``column`` has in the first ``limit`` rows."""
        try:
            found = self.connection.execute(
                f"SELECT count(DISTINCT {quote_name(column)}) FROM "
                f"(SELECT {quote_name(column)} FROM {quote_name(table)} LIMIT {limit})"
            ).get
        except apsw.Error:
            return 0
        return int(found or 0)  # type: ignore[arg-type]

    def _plan(self, sql: str, params: Params) -> Plan | None:
        try:
            return explain_plan(self.connection, sql, params)
        except STATEMENT_ERRORS:
            return None

    def _run(self, sql: str, params: Params, repeat: int = 2) -> tuple[int, int] | None:
        """Run a statement ``repeat`` times: (VM steps, fastest wall time)."""
        best = None
        steps = 0
        for _ in range(repeat):
            self._events.clear()
            started = time.perf_counter_ns()
            try:
                for _row in self.connection.execute(sql, params):
                    pass
            except STATEMENT_ERRORS:
                return None
            elapsed = time.perf_counter_ns() - started
            best = elapsed if best is None else min(best, elapsed)
            if self._events:
                steps = int(self._events[0]["stmt_status"]["SQLITE_STMTSTATUS_VM_STEP"])
        return steps, best or 0

    def _make(self, database: Path, max_bytes: int) -> apsw.Connection:
        source = open_readonly(database)
        try:
            size = database.stat().st_size
            copy = apsw.Connection(str(self.path))
            if size <= max_bytes:
                with copy.backup("main", source, "main") as backup:
                    while not backup.done:
                        backup.step(4096)
                return copy
            self.sample_fraction = max_bytes / size
            _copy_sample(source, copy, self.sample_fraction)
            return copy
        except apsw.Error as error:
            raise DatabaseError(
                database,
                f"cannot be copied to a scratch database in {self.folder.parent} ({error}); "
                "set TMPDIR to a folder with room for a copy",
            ) from None
        finally:
            source.close()


def uses_index(plan: Plan, index: str) -> bool:
    """Return True when a step of ``plan`` reads through ``index``."""
    needle = f"INDEX {index}"
    quoted = f'INDEX "{index}"'
    return any(needle in line.detail or quoted in line.detail for line in plan)


def _samples(fp: FingerprintProfile) -> list[StatementSample]:
    seen, chosen = set(), []
    for sample in fp.samples:
        key = (sample.sql, repr(sample.params))
        if key not in seen:
            seen.add(key)
            chosen.append(sample)
    if len(chosen) <= SAMPLES_PER_FINGERPRINT:
        return chosen
    # The first ones and the costliest ones, in that order (see ProfileBuilder).
    half = SAMPLES_PER_FINGERPRINT // 2
    return (
        chosen[:half]
        + sorted(chosen[half:], key=lambda s: -s.vm_step)[
            : SAMPLES_PER_FINGERPRINT - half
        ]
    )


def _copy_sample(
    source: apsw.Connection, copy: apsw.Connection, fraction: float
) -> None:
    """Fill ``copy`` with the schema of ``source`` and about ``fraction`` of its rows."""
    step = max(2, round(1 / fraction))
    rows = source.execute(
        "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite_%' ORDER BY type = 'table' DESC, rowid"
    ).fetchall()
    with copy:
        for kind, _name, sql in rows:
            if kind in ("table", "view"):
                copy.execute(str(sql))
        for kind, name, sql in rows:
            if kind != "table" or str(sql).upper().startswith("CREATE VIRTUAL"):
                continue
            quoted = quote_name(str(name))
            columns = [r[1] for r in source.execute(f"PRAGMA table_info({quoted})")]
            marks = ", ".join("?" for _ in columns)
            where = (
                ""
                if "WITHOUT ROWID" in str(sql).upper()
                else f" WHERE rowid % {step} = 0"
            )
            copy.executemany(
                f"INSERT INTO {quoted} VALUES ({marks})",
                source.execute(f"SELECT * FROM {quoted}{where}"),
            )
        for kind, _name, sql in rows:
            if kind in ("index", "trigger"):
                copy.execute(str(sql))
    log.info("what-if runs on a sample: every %d-th row of each table", step)
