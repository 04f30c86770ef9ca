"""Query plans: EXPLAIN QUERY PLAN as a flat list of lines with their depth.

Plans come from ``apsw.ext.query_info`` (which runs ``EXPLAIN QUERY PLAN`` and
rebuilds SQLite's tree). A plan line keeps SQLite's own wording, e.g.
``SCAN agent_executions`` or ``SEARCH t USING INDEX t_a (a=?)``; see
https://sqlite.org/eqp.html.
"""

from __future__ import annotations

from dataclasses import dataclass

import apsw
import apsw.ext

from qprof.trace import Params


@dataclass(frozen=True, slots=True)
class PlanLine:
    """One step of a query plan."""

    depth: int
    """Nesting level: 0 for top-level steps, 1 inside a subquery or compound, ..."""
    detail: str
    """SQLite's text for the step."""

    def __str__(self) -> str:
        return "  " * self.depth + self.detail


Plan = tuple[PlanLine, ...]


def explain_plan(connection: apsw.Connection, sql: str, params: Params = None) -> Plan:
    """Return the query plan of ``sql`` with ``params`` bound, without running it.

    Statements with no plan (DDL, PRAGMA, BEGIN) give an empty tuple. Raises
    ``apsw.Error`` when the statement does not prepare.

    >>> db = apsw.Connection(":memory:"); _ = db.execute("CREATE TABLE t(a)")
    >>> [str(line) for line in explain_plan(db, "SELECT * FROM t WHERE a = ?", (1,))]
    ['SCAN t']
    """
    details = apsw.ext.query_info(connection, sql, params, explain_query_plan=True)
    root = details.query_plan
    if root is None or not root.sub:
        return ()
    lines: list[PlanLine] = []
    _flatten(root.sub, 0, lines)
    return tuple(lines)


def is_readonly(connection: apsw.Connection, sql: str) -> bool:
    """Return True when ``sql`` does not write (``sqlite3_stmt_readonly``).

    Raises ``apsw.Error`` when the statement does not prepare.
    """
    return bool(apsw.ext.query_info(connection, sql).is_readonly)


def plan_summary(plan: Plan, width: int = 80) -> str:
    """Return the plan's lines joined by `` | ``, cut to ``width`` characters."""
    text = " | ".join(line.detail for line in plan)
    return text if len(text) <= width else text[: width - 1] + "…"


def _flatten(nodes: list[apsw.ext.QueryPlan], depth: int, out: list[PlanLine]) -> None:
    for node in nodes:
        out.append(PlanLine(depth, node.detail))
        if node.sub:
            _flatten(node.sub, depth + 1, out)
