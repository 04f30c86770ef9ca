"""Candidate indexes, from how each costly statement uses each table.

For every statement (its sample, parsed once) and every table it reads: the
equality columns (``=``, ``IN``, ``IS NULL``) first, most selective first;
then one range column, or the ORDER BY / GROUP BY columns in their order and
direction; and a covering variant that adds the columns the statement reads.
Joins scanned inside the loop, correlated predicates, expressions
(``lower(email)``, a CASE in ORDER BY), sparse ``IS NOT NULL`` filters
(partial indexes), case-insensitive LIKE prefixes (NOCASE) and the automatic
indexes SQLite built give candidates too. A candidate an existing index
already serves is dropped, with its reason kept.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from qprof.analyze.finding import AnalysisContext
from qprof.analyze.plans import is_scanned_inside_join, plan_steps, step_table
from qprof.profile import FingerprintProfile
from qprof.schema import Table
from qprof.usage import ColumnUse, StatementUsage

COVERING_MAX = 6
"""Covering variants are not made past this many key columns."""

_EQUAL = ("eq", "in", "is_null")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class IndexKey:
    """One key of an index: a column or an expression, with its direction."""

    expr: str
    """The column's name, or the expression's SQL."""
    descending: bool = False
    """Sorted descending."""
    is_expression: bool = False
    """``expr`` is an expression, not a column."""
    collate: str | None = None
    """An explicit collation."""

    def label(self) -> str:
        """Return the key for people: ``ts DESC``, ``lower(email)``, ``term COLLATE NOCASE``."""
        text = self.expr + (f" COLLATE {self.collate}" if self.collate else "")
        return text + (" DESC" if self.descending else "")

    def sql(self) -> str:
        """Return the key as it goes in CREATE INDEX."""
        text = self.expr if not self.is_expression else f"({self.expr})"
        if not self.is_expression:
            text = quote_name(self.expr)
        if self.collate:
            text += f" COLLATE {self.collate}"
        return text + (" DESC" if self.descending else "")


@dataclass(slots=True)
class Candidate:
    """An index that might pay: its table, keys, and the statements it is for."""

    table: str
    """The table."""
    keys: tuple[IndexKey, ...]
    """Key columns in order."""
    kind: str
    """``plain``, ``covering``, ``expression``, ``partial``, ``collate`` or ``automatic``."""
    where: str | None = None
    """The WHERE of a partial index."""
    fingerprints: set[str] = field(default_factory=set)
    """The fingerprints it was made for."""
    reasons: set[str] = field(default_factory=set)
    """What in those statements asked for it (``equality filter``, ``order by``...)."""

    @property
    def columns(self) -> tuple[str, ...]:
        """Return the keys as text: ``("site", "ts DESC", "lower(email)")``."""
        return tuple(
            k.expr
            + (f" COLLATE {k.collate}" if k.collate else "")
            + (" DESC" if k.descending else "")
            for k in self.keys
        )

    @property
    def name(self) -> str:
        """Return ``idx_<table>_<columns>``, made safe and kept under 64 characters."""
        parts = [
            _slug(k.expr)
            + (f"_{_slug(k.collate)}" if k.collate else "")
            + ("_desc" if k.descending else "")
            for k in self.keys
        ]
        if self.where:
            parts.append("partial")
        name = "idx_" + _slug(self.table) + "_" + "_".join(p for p in parts if p)
        if len(name) > 60:
            digest = hashlib.blake2b(name.encode(), digest_size=3).hexdigest()
            name = name[:53] + "_" + digest
        return name

    @property
    def ddl(self) -> str:
        """Return the CREATE INDEX statement."""
        keys = ", ".join(k.sql() for k in self.keys)
        text = (
            f"CREATE INDEX {quote_name(self.name)} ON {quote_name(self.table)}({keys})"
        )
        return text + (f" WHERE {self.where}" if self.where else "") + ";"

    @property
    def identity(self) -> tuple[str, tuple[IndexKey, ...], str | None]:
        """Return what makes two candidates the same index."""
        return (self.table.lower(), self.keys, self.where)


@dataclass(slots=True)
class Rejected:
    """A candidate that was dropped, and why."""

    candidate: Candidate
    """The candidate."""
    reason: str
    """Why it is not recommended."""


Selectivity = Callable[[str, str], int]
"""(table, column) -> distinct values, for ordering equality columns."""


def generate_candidates(
    context: AnalysisContext,
    fingerprints: list[FingerprintProfile],
    selectivity: Selectivity,
) -> tuple[list[Candidate], list[Rejected]]:
    """Return the candidates for ``fingerprints`` and those dropped as already served."""
    found: dict[tuple, Candidate] = {}
    for fp in fingerprints:
        usage = context.usage(fp)
        if usage is not None:
            for candidate in _from_usage(context, fp, usage, selectivity):
                _add(found, candidate)
        for candidate in _from_automatic_indexes(fp, usage):
            _add(found, candidate)
    kept, rejected = [], []
    for candidate in found.values():
        table = context.table_named(candidate.table)
        if table is None or table.kind != "table":
            continue
        served_by = _served_by_existing(table, candidate)
        if served_by is not None:
            rejected.append(Rejected(candidate, f"already served by index {served_by}"))
        else:
            kept.append(candidate)
    return kept, rejected


def quote_name(name: str) -> str:
    """Return ``name`` quoted for SQL when it needs it."""
    return name if _PLAIN.match(name) else '"' + name.replace('"', '""') + '"'


def _from_usage(
    context: AnalysisContext,
    fp: FingerprintProfile,
    usage: StatementUsage,
    selectivity: Selectivity,
) -> list[Candidate]:
    made: list[Candidate] = []
    key = fp.fingerprint.id
    by_scope: dict[tuple[str, int], list[ColumnUse]] = {}
    for use in usage.predicates:
        by_scope.setdefault((use.table, use.scope), []).append(use)
    for term in usage.order_by + usage.group_by:
        # A sort with no filter (ORDER BY ... LIMIT) asks for an index too.
        by_scope.setdefault((term.table, term.scope), [])
    for (table, scope), uses in by_scope.items():
        info = context.table_named(table)
        if info is None or info.kind != "table":
            continue
        bare = [u for u in uses if u.expression is None and u.role != "join"]
        equal = _ordered(
            table, _unique(u.column for u in bare if u.op in _EQUAL), selectivity
        )
        ranged = _unique(u.column for u in bare if u.op in ("range", "like"))
        ranged = [c for c in ranged if c.lower() not in {e.lower() for e in equal}]
        sort = _sort_keys(usage, table, scope, equal)
        selected = sorted(usage.selected.get(table, set()), key=str.lower)
        prefix = tuple(IndexKey(c) for c in equal)
        if info.rowid_alias:
            selected = [c for c in selected if c.lower() != info.rowid_alias.lower()]
        if ranged:
            made += _with_covering(
                table, prefix + (IndexKey(ranged[0]),), selected, key, "range filter"
            )
        if sort:
            kind = "expression" if any(k.is_expression for k in sort) else "plain"
            made += _with_covering(
                table, prefix + tuple(sort), selected, key, "sort", kind
            )
        if prefix and not ranged and not sort:
            made += _with_covering(table, prefix, selected, key, "equality filter")
        for use in uses:
            if (
                use.role == "join"
                and use.expression is None
                and is_scanned_inside_join(fp.plan, usage.tables, table)
            ):
                if use.column.lower() not in {e.lower() for e in equal}:
                    keys = prefix + (IndexKey(use.column),)
                    made.append(_candidate(table, keys, key, "join"))
            if use.expression is not None and use.op in _EQUAL + ("range",):
                keys = (IndexKey(use.expression, is_expression=True),) + prefix
                made.append(_candidate(table, keys, key, "expression", "expression"))
            if use.op == "like" and use.expression is None and _like_prefix(use.value):
                if _binary(info, use.column):
                    keys = prefix + (IndexKey(use.column, collate="NOCASE"),)
                    made.append(
                        _candidate(table, keys, key, "case-insensitive LIKE", "collate")
                    )
            if use.op == "not_null" and use.expression is None:
                where = f"{quote_name(use.column)} IS NOT NULL"
                made.append(
                    _candidate(
                        table,
                        (IndexKey(use.column),),
                        key,
                        "sparse column",
                        "partial",
                        where,
                    )
                )
    return made


def _with_covering(
    table: str,
    keys: tuple[IndexKey, ...],
    selected: list[str],
    fingerprint: str,
    reason: str,
    kind: str = "plain",
) -> list[Candidate]:
    made = [_candidate(table, keys, fingerprint, reason, kind)]
    named = {k.expr.lower() for k in keys}
    extra = [c for c in selected if c.lower() not in named and c.lower() != "rowid"]
    if extra and len(keys) + len(extra) <= COVERING_MAX:
        covering = keys + tuple(IndexKey(c) for c in extra)
        made.append(
            _candidate(table, covering, fingerprint, reason + ", covering", "covering")
        )
    return made


def _candidate(
    table: str,
    keys: tuple[IndexKey, ...],
    fingerprint: str,
    reason: str,
    kind: str = "plain",
    where: str | None = None,
) -> Candidate:
    return Candidate(table, keys, kind, where, {fingerprint}, {reason})


def _sort_keys(
    usage: StatementUsage, table: str, scope: int, equal: list[str]
) -> list[IndexKey]:
    """Return the ORDER BY (else GROUP BY) keys of ``scope`` when all are on ``table``."""
    for terms in (usage.order_by, usage.group_by):
        mine = [t for t in terms if t.scope == scope]
        if not mine or any(t.table.lower() != table.lower() for t in mine):
            continue
        skip = {e.lower() for e in equal}
        return [
            IndexKey(t.column, t.descending, t.is_expression)
            for t in mine
            if t.column.lower() not in skip
        ]
    return []


def _from_automatic_indexes(
    fp: FingerprintProfile, usage: StatementUsage | None
) -> list[Candidate]:
    aliases = usage.tables if usage else {}
    made = []
    for step in plan_steps(fp.plan):
        if step.is_automatic and step.terms:
            table = step_table(step.name, aliases)
            keys = tuple(IndexKey(c) for c in dict.fromkeys(step.terms))
            made.append(
                _candidate(
                    table, keys, fp.fingerprint.id, "automatic index", "automatic"
                )
            )
    return made


def _add(found: dict[tuple, Candidate], candidate: Candidate) -> None:
    existing = found.get(candidate.identity)
    if existing is None:
        found[candidate.identity] = candidate
        return
    existing.fingerprints |= candidate.fingerprints
    existing.reasons |= candidate.reasons


def _served_by_existing(table: Table, candidate: Candidate) -> str | None:
    """Return an existing index whose keys start with all of the candidate's, if any."""
    if candidate.where is not None:
        return None
    wanted = [_comparable(k.expr, k.descending, k.collate) for k in candidate.keys]
    if len(candidate.keys) == 1 and not candidate.keys[0].descending:
        rowid = (table.rowid_alias or "rowid").lower()
        if wanted[0][0] in (rowid, "rowid") and not candidate.keys[0].collate:
            return "rowid"
    for index in table.indexes:
        if index.partial or len(index.columns) < len(wanted):
            continue
        keys = [
            _comparable(
                column,
                index.descending[i] if i < len(index.descending) else False,
                index.collations[i] if i < len(index.collations) else None,
            )
            for i, column in enumerate(index.columns[: len(wanted)])
        ]
        if keys == wanted:
            return index.name
    return None


def _comparable(
    expr: str, descending: bool, collate: str | None
) -> tuple[str, bool, str]:
    """Return a key in a form where an existing index's key and a candidate's compare."""
    text = expr.lower().replace(" ", "").strip("()")
    return text, descending, (collate or "BINARY").upper()


def _ordered(table: str, columns: list[str], selectivity: Selectivity) -> list[str]:
    """Order equality columns most selective first (more distinct values first)."""
    return sorted(columns, key=lambda c: -selectivity(table, c))


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(item.lower(), item)
    return list(seen.values())


def _like_prefix(pattern: str | None) -> bool:
    return bool(pattern) and pattern[0] not in "%_"  # type: ignore[index]


def _binary(table: Table, column: str) -> bool:
    info = table.column(column)
    return info is None or info.collation.upper() == "BINARY"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
