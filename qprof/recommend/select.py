"""Selection: greedy, for the whole workload, re-measured after every pick.

In the spirit of the Extend algorithm of index-selection research: each step
takes the candidate with the largest measured net saving per byte, creates it
on the scratch copy, and measures again the candidates its pick could have
changed (those on the same table or serving the same statements), because
indexes interact. A wider candidate may take the place of a narrower pick.
Where the database has no statistics, ANALYZE is a candidate like the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import apsw

from qprof.analyze.finding import AnalysisContext, Thresholds
from qprof.plan import Plan
from qprof.profile import FingerprintProfile, WorkloadProfile
from qprof.recommend.candidates import (
    Candidate,
    Rejected,
    generate_candidates,
    quote_name,
)
from qprof.recommend.whatif import Cost, Scratch
from qprof.schema import read_schema

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

MIN_VM_GAIN = 0.03
"""A pick must make the statements it serves this much cheaper in VM steps..."""
MIN_TIME_GAIN = 0.10
"""... or this much faster in measured time."""


@dataclass(frozen=True, slots=True)
class RecommendOptions:
    """Budgets and bars of the recommender; each has a CLI option."""

    max_indexes: int = 10
    """Stop after this many picks."""
    max_size_bytes: int | None = None
    """Stop before the picks take more than this on disk."""
    min_saving_pct: float = 1.0
    """A pick must save at least this share of the workload's VM steps (as they are
    after the earlier picks), in percent."""
    max_copy_bytes: int = 2 * 1024**3
    """A larger database is sampled for what-if instead of copied whole."""
    fingerprints: int = 40
    """How many of the costliest read fingerprints candidates are made for."""


@dataclass(slots=True)
class ServedFingerprint:
    """A statement an index serves, measured before and after."""

    fingerprint: str
    """Its id."""
    sql: str
    """Its sample statement."""
    count: int
    """How often the workload runs it."""
    plan_before: list[str]
    """Plan lines with none of the recommended indexes."""
    plan_after: list[str]
    """Plan lines with it."""
    vm_before: float
    """Mean VM steps per statement with none of the recommended indexes."""
    vm_after: float
    """Mean VM steps per statement with it (and the picks made before it)."""
    ns_before: float
    """Mean wall time per statement without it."""
    ns_after: float
    """Mean wall time per statement with it."""
    rewritten: str | None = None
    """A change the saving assumes (``INDEXED BY x`` removed), if any."""


@dataclass(slots=True)
class Recommendation:
    """One index to create, with what it was measured to save and cost."""

    rank: int
    """1 for the largest net saving."""
    table: str
    """The table ('' for ANALYZE)."""
    columns: tuple[str, ...]
    """Key columns in order, with DESC and COLLATE where they apply."""
    kind: str
    """``plain``, ``covering``, ``expression``, ``partial``, ``collate``, ``automatic``
    or ``statistics`` (ANALYZE)."""
    name: str
    """The index's name, ``idx_<table>_<columns>``."""
    ddl: str
    """The statement to run: CREATE INDEX ... (or ANALYZE)."""
    served: list[ServedFingerprint]
    """The statements it serves, with their plans and costs before and after."""
    vm_saving: float
    """VM steps saved on reads, weighted by how often each statement runs."""
    ns_saving: float
    """Time saved on reads, weighted the same way."""
    write_vm: float
    """VM steps it adds to the workload's writes on its table."""
    write_ns: float
    """Time it adds to those writes."""
    size_bytes: int
    """Its size on disk (on the scratch copy)."""
    statistics: str
    """What the saving assumes: ``none`` (no sqlite_stat1), ``existing``, or ``after ANALYZE``."""
    workload_vm_after: float
    """The workload's measured VM steps after this pick and those made before it."""
    storage_after: int
    """Bytes this pick and those made before it take."""
    replaces: list[str] = field(default_factory=list)
    """Existing indexes this one makes redundant."""
    reasons: list[str] = field(default_factory=list)
    """What in the statements asked for it."""
    where: str | None = None
    """The WHERE of a partial index."""
    pick: int = 0
    """When it was picked: 1 first (the order of the cost-versus-storage curve)."""
    other_statistics: str | None = None
    """Where the database had no statistics: the other state the saving was measured in."""
    vm_saving_other_statistics: float | None = None
    """The VM steps it saves on its statements under ``other_statistics``."""

    @property
    def net_vm(self) -> float:
        """Return the saving net of the write cost."""
        return self.vm_saving - self.write_vm


@dataclass(slots=True)
class RecommendationSet:
    """The recommender's answer for a workload."""

    recommendations: list[Recommendation]
    """The picks, largest net saving first."""
    rejected: list[Rejected]
    """Candidates not recommended, each with its reason."""
    baseline_vm: float
    """The workload's measured VM steps (the statements measured) with no new index."""
    candidates: int
    """How many candidates were tried."""
    sample_fraction: float | None = None
    """When the database was too large to copy: the share of rows in the sample."""
    elapsed_s: float = 0.0
    """How long recommending took."""


@dataclass(slots=True)
class _Evaluation:
    candidate: Candidate
    served: dict[str, Cost]
    vm_saving: float
    ns_saving: float
    write_vm: float
    write_ns: float
    size: int
    fresh: bool = True

    @property
    def pays_in_time(self) -> bool:
        """Return False when the time it adds to writes is more than it saves on reads."""
        return self.write_ns <= 0 or self.ns_saving > self.write_ns

    @property
    def net(self) -> float:
        return self.vm_saving - self.write_vm

    @property
    def per_byte(self) -> float:
        return self.net / max(self.size, 4096)


_Pool = dict[tuple, "_Evaluation | None"]  # type: ignore[type-arg]
_Candidates = dict[tuple, Candidate]  # type: ignore[type-arg]
"""Candidates by identity, with their latest evaluation (None: not measured yet)."""


def recommend_indexes(
    profile: WorkloadProfile,
    database: str | Path,
    options: RecommendOptions | None = None,
    context: AnalysisContext | None = None,
    progress: Progress | None = None,
) -> RecommendationSet:
    """Recommend indexes for ``profile``'s workload, measured on a scratch copy of ``database``.

    Raises ``DatabaseError`` when the database cannot be opened or copied.
    """
    options = options or RecommendOptions()
    started = time.perf_counter()
    source = apsw.Connection(str(database), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        if context is None:
            schema = profile.schema or read_schema(source, database)
            context = AnalysisContext(profile, schema, Thresholds(), source)

        with Scratch(database, options.max_copy_bytes) as scratch:
            result = _Selector(profile, context, scratch, options, progress).run()
            result.sample_fraction = scratch.sample_fraction
    finally:
        source.close()
    result.elapsed_s = time.perf_counter() - started
    log.info(
        "tried %d candidates: %d recommended",
        result.candidates,
        len(result.recommendations),
    )
    return result


class _Selector:
    """One greedy selection on one scratch copy."""

    def __init__(
        self,
        profile: WorkloadProfile,
        context: AnalysisContext,
        scratch: Scratch,
        options: RecommendOptions,
        progress: Progress | None,
    ) -> None:
        self.profile = profile
        self.context = context
        self.scratch = scratch
        self.options = options
        self.progress = progress or (lambda done, total: None)
        self.reads = _costliest_reads(profile, options.fingerprints)
        self.writes = [fp for fp in profile.fingerprints.values() if not fp.readonly]
        self.statistics = "existing" if scratch.has_stat1 else "none"
        self.current: dict[str, Cost] = {}
        self.initial: dict[str, Cost] = {}
        self.write_base: dict[str, tuple[float, float]] = {}
        self.rejected: list[Rejected] = []
        self._distinct: dict[tuple[str, str], int] = {}
        self._scales: dict[str, tuple[float, float]] = {}

    def run(self) -> RecommendationSet:
        for fp in self.reads:
            cost = self.scratch.cost(fp)
            if cost is not None:
                self._set_scale(fp, cost)
                self.current[fp.fingerprint.id] = self._scaled(fp, cost)
        for fp in self.writes:
            write_cost = self.scratch.write_cost(fp)
            if write_cost is not None:
                self.write_base[fp.fingerprint.id] = write_cost
        self.initial = dict(self.current)
        baseline = self._workload_vm()
        candidates, self.rejected = generate_candidates(
            self.context,
            [fp for fp in self.reads if fp.fingerprint.id in self.current],
            self._selectivity,
        )
        tried = len(candidates)
        picks: list[Recommendation] = []
        storage = 0
        pool: dict[tuple, _Evaluation | None] = {c.identity: None for c in candidates}
        by_identity = {c.identity: c for c in candidates}
        statistics = self._try_statistics(self._minimum())
        if statistics is not None:
            picks.append(statistics)
            storage += statistics.size_bytes

        while _index_count(picks) < self.options.max_indexes and pool:
            self._evaluate_stale(pool, by_identity)
            best = self._best(pool, self._minimum(), storage)
            if best is None:
                break
            storage += best.size
            pick = self._apply(best, len(picks) + 1, storage)
            storage -= self._absorb_narrower(pick, picks)
            pick.storage_after = storage
            for rank, kept in enumerate(picks, 1):
                kept.rank = rank
            self._after_pick(best, pool, picks)
        for identity, evaluation in pool.items():
            reason = "its measured saving is below --min-saving"
            if _index_count(picks) >= self.options.max_indexes:
                reason = "--max-indexes was reached"
            if (
                evaluation is not None
                and evaluation.net > 0
                and evaluation.ns_saving < 0
            ):
                reason = "it made the statements slower in measured time"
            if evaluation is not None and not evaluation.pays_in_time:
                reason = "its write cost outweighs its saving"
            if evaluation is not None and evaluation.net <= 0:
                reason = (
                    "its write cost outweighs its saving"
                    if evaluation.vm_saving > 0
                    else ("it saves nothing measurable")
                )
            self.rejected.append(Rejected(by_identity[identity], reason))
        self._mark_replaced(picks)
        self._measure_other_statistics(picks)
        _rank(picks, baseline)
        return RecommendationSet(picks, self.rejected, baseline, tried)

    def _measure_other_statistics(self, picks: list[Recommendation]) -> None:
        """Measure each index's saving under the other statistics too.

        Where the database had no sqlite_stat1, a saving was measured either
        without statistics or (once ANALYZE was picked) after ANALYZE; this
        measures it the other way, with every pick in place, by dropping the
        one index and taking its statements' cost again.
        """
        indexes = [p for p in picks if p.kind != "statistics"]
        if self.statistics == "existing" or not indexes:
            return
        other = "after ANALYZE" if self.statistics == "none" else "none"
        if other == "after ANALYZE":
            self.scratch.analyze()
        else:
            self.scratch.forget_statistics()
        for pick in indexes:
            with_index = self._served_vm(pick, pick.name)
            self.scratch.connection.execute(
                f"DROP INDEX IF EXISTS {quote_name(pick.name)}"
            )
            without = self._served_vm(pick, None)
            self.scratch.connection.execute(pick.ddl)
            if with_index is not None and without is not None:
                pick.other_statistics = other
                pick.vm_saving_other_statistics = without - with_index

    def _served_vm(self, pick: Recommendation, index: str | None) -> float | None:
        total = 0.0
        for served in pick.served:
            fp = self.profile.fingerprints[served.fingerprint]
            cost = self._cost(fp, index=index)
            if cost is None:
                return None
            total += cost.vm_per_statement * fp.count
        return total

    def _try_statistics(self, minimum: float) -> Recommendation | None:
        """Measure ANALYZE as a candidate where the database has no statistics."""
        if self.statistics != "none" or not self.current:
            return None
        before = dict(self.current)
        self.scratch.analyze()
        after = {key: self._cost(self.profile.fingerprints[key]) for key in before}
        served = []
        saving = ns_saving = 0.0
        for key, cost in after.items():
            if cost is None:
                continue
            fp = self.profile.fingerprints[key]
            old = before[key]
            if _plan_text(old.plan) != _plan_text(cost.plan):
                served.append(_served(fp, old, cost))
            saving += (old.vm_per_statement - cost.vm_per_statement) * fp.count
            ns_saving += (old.ns_per_statement - cost.ns_per_statement) * fp.count
        if saving < max(minimum, 1) or not served or ns_saving < 0:
            self.scratch.forget_statistics()
            candidate = Candidate("", (), "statistics", fingerprints=set(before))
            reason = "ANALYZE saves too little"
            if not served:
                reason = "ANALYZE changes no plan"
            elif ns_saving < 0:
                reason = "ANALYZE made the statements slower in measured time"
            self.rejected.append(Rejected(candidate, reason))
            return None
        for key, cost in after.items():
            if cost is not None:
                self.current[key] = cost
        self.statistics = "after ANALYZE"
        served.sort(key=lambda s: -(s.vm_before - s.vm_after) * s.count)
        return Recommendation(
            rank=1,
            table="",
            columns=(),
            kind="statistics",
            name="ANALYZE",
            ddl="ANALYZE;",
            served=served,
            vm_saving=saving,
            ns_saving=ns_saving,
            write_vm=0.0,
            write_ns=0.0,
            size_bytes=self.scratch.size("sqlite_stat1")
            + self.scratch.size("sqlite_stat4"),
            statistics="after ANALYZE",
            workload_vm_after=self._workload_vm(),
            storage_after=0,
            reasons=["the database has no sqlite_stat1"],
        )

    def _evaluate_stale(self, pool: _Pool, by_identity: _Candidates) -> None:
        stale = [
            identity for identity, ev in pool.items() if ev is None or not ev.fresh
        ]
        for done, identity in enumerate(stale, 1):
            evaluation = self._evaluate(by_identity[identity])
            if evaluation is None:
                del pool[identity]  # rejected, with its reason, by _evaluate
            else:
                pool[identity] = evaluation
            self.progress(done, len(stale))

    def _evaluate(self, candidate: Candidate) -> _Evaluation | None:
        try:
            self.scratch.create(candidate, analyze=self.statistics != "none")
        except apsw.Error as error:
            self.rejected.append(Rejected(candidate, f"SQLite refused it: {error}"))
            return None
        try:
            served: dict[str, Cost] = {}
            saving = ns_saving = 0.0
            for fp in self._reads_of(candidate.table):
                key = fp.fingerprint.id
                cost = self._cost(fp, index=candidate.name)
                if cost is None:
                    continue
                served[key] = cost
                saving += (
                    self.current[key].vm_per_statement - cost.vm_per_statement
                ) * fp.count
                ns_saving += (
                    self.current[key].ns_per_statement - cost.ns_per_statement
                ) * fp.count
            write_vm = write_ns = 0.0
            for fp in self._writes_of(candidate.table):
                cost_with = self.scratch.write_cost(fp)
                base = self.write_base.get(fp.fingerprint.id)
                if cost_with is not None and base is not None:
                    write_vm += max(0.0, cost_with[0] - base[0]) * fp.count
                    write_ns += max(0.0, cost_with[1] - base[1]) * fp.count
            size = self.scratch.size(candidate.name)
        finally:
            self.scratch.drop(candidate)
        if not served:
            self.rejected.append(
                Rejected(
                    candidate,
                    "the planner does not use it for its statements",
                )
            )
            return None
        return _Evaluation(
            candidate, served, saving, ns_saving, write_vm, write_ns, size
        )

    def _best(self, pool: _Pool, minimum: float, storage: int) -> _Evaluation | None:
        best = None
        limit = self.options.max_size_bytes
        for evaluation in pool.values():
            if evaluation is None or evaluation.net < max(minimum, 1):
                continue
            if not self._improves_enough(evaluation) or not evaluation.pays_in_time:
                continue
            if limit is not None and storage + evaluation.size > limit:
                continue
            if best is None or (evaluation.per_byte, evaluation.net) > (
                best.per_byte,
                best.net,
            ):
                best = evaluation
        return best

    def _improves_enough(self, evaluation: _Evaluation) -> bool:
        """Return True when the statements it serves get cheaper by a real margin.

        VM steps undercount what an index saves on row look-ups (a covering
        index skips a B-tree descent per row for one opcode less), so a pick
        qualifies on either its VM steps or its measured time.
        """
        vm_now = ns_now = 0.0
        for key in evaluation.served:
            count = self.profile.fingerprints[key].count
            vm_now += self.current[key].vm_per_statement * count
            ns_now += self.current[key].ns_per_statement * count
        vm_gain = evaluation.net / vm_now if vm_now else 0.0
        ns_gain = evaluation.ns_saving / ns_now if ns_now else 0.0
        log.debug(
            "%s: vm gain %.3f, time gain %.3f",
            evaluation.candidate.name,
            vm_gain,
            ns_gain,
        )
        return vm_gain >= MIN_VM_GAIN or ns_gain >= MIN_TIME_GAIN

    def _apply(self, best: _Evaluation, rank: int, storage: int) -> Recommendation:
        candidate = best.candidate
        self.scratch.create(candidate, analyze=self.statistics != "none")
        served = []
        for key, cost in best.served.items():
            fp = self.profile.fingerprints[key]
            served.append(_served(fp, self.initial[key], cost))
            self.current[key] = cost
        for fp in self._writes_of(candidate.table):
            write_cost = self.scratch.write_cost(fp)
            if write_cost is not None:
                self.write_base[fp.fingerprint.id] = write_cost
        served.sort(key=lambda s: -(s.vm_before - s.vm_after) * s.count)
        return Recommendation(
            rank=rank,
            table=candidate.table,
            columns=candidate.columns,
            kind=candidate.kind,
            name=candidate.name,
            ddl=candidate.ddl,
            served=served,
            vm_saving=best.vm_saving,
            ns_saving=best.ns_saving,
            write_vm=best.write_vm,
            write_ns=best.write_ns,
            size_bytes=best.size,
            statistics=self.statistics,
            workload_vm_after=self._workload_vm(),
            storage_after=storage,
            reasons=sorted(candidate.reasons),
            where=candidate.where,
        )

    def _absorb_narrower(
        self, pick: Recommendation, picks: list[Recommendation]
    ) -> int:
        """Add ``pick`` to ``picks``, in the place of any earlier pick it widens.

        The earlier pick's saving becomes part of the wider one's (it was
        measured on top of it), and the earlier index is dropped from the copy.
        Returns the bytes freed.
        """
        freed = 0
        position = len(picks)
        for earlier in list(picks):
            if (
                earlier.kind == "statistics"
                or earlier.table.lower() != pick.table.lower()
            ):
                continue
            keys = earlier.columns
            if earlier.where != pick.where or pick.columns[: len(keys)] != keys:
                continue
            self.scratch.connection.execute(
                f"DROP INDEX IF EXISTS {quote_name(earlier.name)}"
            )
            remeasured = self._remeasure(earlier.served, pick.name)
            if remeasured is None:
                # The wider index does not serve all the narrower one did: keep both.
                self.scratch.connection.execute(earlier.ddl)
                continue
            position = min(position, picks.index(earlier))
            picks.remove(earlier)
            earlier.served = remeasured
            pick.vm_saving += earlier.vm_saving
            pick.ns_saving += earlier.ns_saving
            pick.write_vm += earlier.write_vm
            pick.write_ns += earlier.write_ns
            known = {s.fingerprint for s in pick.served}
            pick.served += [s for s in earlier.served if s.fingerprint not in known]
            pick.reasons = sorted(set(pick.reasons) | set(earlier.reasons))
            freed += earlier.size_bytes
            self.rejected.append(
                Rejected(
                    Candidate(earlier.table, (), earlier.kind),
                    f"{earlier.name} was widened into {pick.name}",
                )
            )
        picks.insert(min(position, len(picks)), pick)
        return freed

    def _remeasure(
        self, served: list[ServedFingerprint], index: str
    ) -> list[ServedFingerprint] | None:
        """Measure ``served`` again with ``index``; None if one of them does not use it."""
        again = []
        for entry in served:
            fp = self.profile.fingerprints[entry.fingerprint]
            cost = self._cost(fp, index=index)
            if cost is None:
                return None
            self.current[entry.fingerprint] = cost
            again.append(_served(fp, self.initial[entry.fingerprint], cost))
        return again

    def _after_pick(
        self, best: _Evaluation, pool: dict, picks: list[Recommendation]
    ) -> None:  # type: ignore[type-arg]
        picked = best.candidate
        del pool[picked.identity]
        touched = set(best.served)
        for identity, evaluation in list(pool.items()):
            if evaluation is None:
                continue
            candidate = evaluation.candidate
            same_table = candidate.table.lower() == picked.table.lower()
            if same_table and _is_prefix(candidate, picked):
                del pool[identity]
                self.rejected.append(
                    Rejected(candidate, f"{picked.name} serves it too")
                )
                continue
            if same_table or touched & set(evaluation.served):
                evaluation.fresh = False

    def _mark_replaced(self, picks: list[Recommendation]) -> None:
        for pick in picks:
            table = self.context.table_named(pick.table)
            if table is None or pick.where:
                continue
            keys = [c.lower() for c in pick.columns]
            for index in table.indexes:
                if index.unique or index.partial or index.origin != "c":
                    continue
                mine = [c.lower() for c in index.columns]
                if len(mine) < len(keys) and keys[: len(mine)] == mine:
                    pick.replaces.append(index.name)

    def _reads_of(self, table: str) -> list[FingerprintProfile]:
        key = table.lower()
        found = []
        for fp in self.reads:
            if fp.fingerprint.id not in self.current:
                continue
            usage = self.context.usage(fp)
            tables = {t.lower() for t in usage.tables.values()} if usage else set()
            plan_tables = " ".join(line.detail.lower() for line in fp.plan)
            if key in tables or (usage is None and key in plan_tables):
                found.append(fp)
        return found

    def _writes_of(self, table: str) -> list[FingerprintProfile]:
        key = table.lower()
        found = []
        for fp in self.writes:
            usage = self.context.usage(fp)
            if usage and key in {t.lower() for t in usage.written}:
                if fp.fingerprint.id in self.write_base:
                    found.append(fp)
        return found

    def _set_scale(self, fp: FingerprintProfile, sampled: Cost) -> None:
        """Remember how the samples' mean compares with the replay's measured mean.

        The samples are the first statements and the costliest ones, so their
        mean overstates the fingerprint's; every cost taken on the scratch copy
        is scaled by the replay's own mean over it, so savings add up to shares
        of the workload as replay measured it. A trace that counted no VM steps
        (a stdlib ``sqlite3`` capture) or no time keeps the samples' own.
        """
        count = max(fp.count, 1)
        vm = (
            (fp.vm_step / count) / sampled.vm_per_statement
            if sampled.vm_per_statement and fp.vm_step
            else 1.0
        )
        ns = (
            (fp.total_ns / count) / sampled.ns_per_statement
            if sampled.ns_per_statement and fp.total_ns
            else 1.0
        )
        self._scales[fp.fingerprint.id] = (vm, ns)

    def _scaled(self, fp: FingerprintProfile, cost: Cost) -> Cost:
        vm, ns = self._scales.get(fp.fingerprint.id, (1.0, 1.0))
        return Cost(
            cost.vm_per_statement * vm,
            cost.ns_per_statement * ns,
            cost.plan,
            cost.rewritten,
        )

    def _cost(self, fp: FingerprintProfile, index: str | None = None) -> Cost | None:
        """Measure ``fp`` on the scratch copy (see ``Scratch.cost``), scaled."""
        cost = self.scratch.cost(fp, index=index)
        return None if cost is None else self._scaled(fp, cost)

    def _minimum(self) -> float:
        """Return the least saving a pick must make: a share of what is left to save."""
        return max(self._workload_vm() * self.options.min_saving_pct / 100, 1.0)

    def _workload_vm(self) -> float:
        reads = sum(
            cost.vm_per_statement * self.profile.fingerprints[key].count
            for key, cost in self.current.items()
        )
        writes = sum(
            cost[0] * self.profile.fingerprints[key].count
            for key, cost in self.write_base.items()
        )
        return reads + writes

    def _selectivity(self, table: str, column: str) -> int:
        key = (table.lower(), column.lower())
        if key not in self._distinct:
            self._distinct[key] = self.scratch.distinct_values(table, column)
        return self._distinct[key]


def _rank(picks: list[Recommendation], baseline: float) -> None:
    """Number the picks in the order made (the cost curve), then rank them by net saving."""
    remaining, storage = baseline, 0
    for pick_number, pick in enumerate(picks, 1):
        pick.pick = pick_number
        remaining -= pick.net_vm
        storage += pick.size_bytes
        pick.workload_vm_after = max(remaining, 0.0)
        pick.storage_after = storage
    picks.sort(key=lambda p: -p.net_vm)
    for rank, pick in enumerate(picks, 1):
        pick.rank = rank


def _index_count(picks: list[Recommendation]) -> int:
    """Return how many picks are indexes (ANALYZE is not one, for --max-indexes)."""
    return sum(1 for pick in picks if pick.kind != "statistics")


def _costliest_reads(profile: WorkloadProfile, limit: int) -> list[FingerprintProfile]:
    reads = [
        fp
        for fp in profile.fingerprints.values()
        if fp.readonly and fp.count > fp.errors
    ]
    reads.sort(key=lambda fp: (-fp.vm_step, -fp.total_ns))
    return reads[:limit]


def _served(fp: FingerprintProfile, before: Cost, after: Cost) -> ServedFingerprint:
    return ServedFingerprint(
        fingerprint=fp.fingerprint.id,
        sql=fp.sample_sql,
        count=fp.count,
        plan_before=_plan_text(before.plan),
        plan_after=_plan_text(after.plan),
        vm_before=before.vm_per_statement,
        vm_after=after.vm_per_statement,
        ns_before=before.ns_per_statement,
        ns_after=after.ns_per_statement,
        rewritten=after.rewritten,
    )


def _plan_text(plan: Plan) -> list[str]:
    return [str(line) for line in plan]


def _is_prefix(shorter: Candidate, longer: Candidate) -> bool:
    return (
        shorter.where == longer.where
        and len(shorter.keys) <= len(longer.keys)
        and longer.keys[: len(shorter.keys)] == shorter.keys
    )
