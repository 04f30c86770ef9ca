"""non_sargable: a predicate an index could serve, but cannot as written.

Three shapes, each checked against the real schema and plan:

- a function or arithmetic around an indexed column (``lower(email) = ?``,
  ``price * 1.2 > ?``): an index on the bare column cannot be searched;
- ``LIKE`` on an indexed column that the plan still scans: with a leading
  wildcard no index helps, and even ``LIKE 'abc%'`` needs a NOCASE index (LIKE
  is case-insensitive; https://sqlite.org/optoverview.html#the_like_optimization);
- a join between columns of different type affinity (TEXT against INTEGER),
  where the comparison's conversion keeps the planner off the index, and the
  plan scans the table whose index went unused; an explicit COLLATE that
  differs from the index's collation does the same.
"""

from __future__ import annotations

from qprof.analyze.finding import AnalysisContext, Finding, serving_index
from qprof.analyze.plans import plan_steps, step_table
from qprof.profile import FingerprintProfile
from qprof.schema import Table
from qprof.usage import ColumnUse, StatementUsage

_NUMERIC = {"INTEGER", "REAL", "NUMERIC"}


def detect_non_sargable(context: AnalysisContext) -> list[Finding]:
    """Return one finding per fingerprint and predicate that defeats an index."""
    findings = []
    for fp in context.profile.costliest():
        usage = context.usage(fp)
        if usage is None:
            continue
        seen: set[tuple[str, str]] = set()
        for use in usage.predicates:
            info = context.table_named(use.table)
            if (
                info is None
                or info.kind != "table"
                or not _is_indexed(info, use.column)
            ):
                continue
            reason = _reason(context, fp, usage, use, info)
            if reason is None or (use.table, use.column) in seen:
                continue
            seen.add((use.table, use.column))
            columns: tuple[str, ...] = (use.column,)
            if use.role == "join" and use.other_column:
                columns += (use.other_column,)
            findings.append(
                context.finding(
                    fp,
                    kind="non_sargable",
                    severity="high" if context.shares(fp)[0] >= 0.05 else "medium",
                    message=reason[0],
                    advice=reason[1],
                    table=info.name,
                    columns=columns,
                    evidence={
                        "predicate_on": use.expression or use.column,
                        "op": use.op,
                    },
                )
            )
    return findings


def _reason(
    context: AnalysisContext,
    fp: FingerprintProfile,
    usage: StatementUsage,
    use: ColumnUse,
    info: Table,
) -> tuple[str, str] | None:
    column = f"{info.name}.{use.column}"
    if use.expression is not None and use.op in ("eq", "in", "range", "like"):
        return (
            f"`{use.expression}` wraps the indexed column {column}, so its index cannot be "
            "searched and every row is computed.",
            f"Index the expression itself (CREATE INDEX ... ON {info.name}({use.expression})) "
            "or compare the bare column.",
        )
    if use.op == "like" and _is_scanned(fp, usage, info.name):
        pattern = use.value or "?"
        if pattern[:1] in ("%", "_"):
            return (
                f"LIKE '{pattern}' on {column} starts with a wildcard: no index can serve it.",
                "Use full-text search (FTS5) for infix matches, or anchor the pattern.",
            )
        return (
            f"LIKE '{pattern}' on {column} cannot use its index: LIKE is case-insensitive and "
            "the index is BINARY, so SQLite scans.",
            f"Use GLOB for a case-sensitive prefix, or an index on {info.name}({use.column} "
            "COLLATE NOCASE).",
        )
    if use.role == "join" and use.other_table and use.other_column:
        other = context.table_named(use.other_table)
        other_column = other.column(use.other_column) if other else None
        mine = info.column(use.column)
        if (
            mine is None
            or other_column is None
            or not _is_scanned(fp, usage, info.name)
        ):
            return None
        kinds = {mine.affinity, other_column.affinity}
        if "TEXT" in kinds and kinds & _NUMERIC:
            return (
                f"{column} ({mine.declared_type or 'no type'}) is joined to "
                f"{use.other_table}.{use.other_column} ({other_column.declared_type or 'no type'}"
                "): the type affinities differ, so the comparison converts values and the "
                f"index on {column} goes unused.",
                "Declare both columns with the same type (a table rebuild), or CAST one side "
                "to the other's type in the join.",
            )
    if use.collation and use.collation.upper() != _index_collation(info, use.column):
        return (
            f"COLLATE {use.collation} on {column} differs from its index's collation.",
            "Drop the COLLATE, or index the column with that collation.",
        )
    return None


def _is_indexed(info: Table, column: str) -> bool:
    return serving_index(info, {column}, set(), column) is not None


def _index_collation(info: Table, column: str) -> str:
    for index in info.indexes:
        if (
            index.columns
            and index.columns[0].lower() == column.lower()
            and index.collations
        ):
            return index.collations[0].upper()
    return "BINARY"


def _is_scanned(fp: FingerprintProfile, usage: StatementUsage, table: str) -> bool:
    return any(
        step.is_full_scan
        and step_table(step.name, usage.tables).lower() == table.lower()
        for step in plan_steps(fp.plan)
    )
