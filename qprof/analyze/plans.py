"""Reading SQLite's plan lines: which table a step touches, and how.

Plan wording is SQLite's (https://sqlite.org/eqp.html): ``SCAN t``, ``SCAN t
USING COVERING INDEX i``, ``SEARCH t USING INDEX i (a=? AND b>?)``, ``SEARCH t
USING AUTOMATIC COVERING INDEX (a=?)``, ``USE TEMP B-TREE FOR ORDER BY``,
``CORRELATED SCALAR SUBQUERY 1``. A step names the table by its alias when
the statement gives one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qprof.plan import Plan, PlanLine

_STEP = re.compile(
    r"^(?P<op>SCAN|SEARCH) (?P<name>\S+)(?: AS \S+)?(?: EXISTS)?"
    r"(?: USING (?P<how>(?:AUTOMATIC )?(?:PARTIAL )?(?:COVERING )?INDEX|INTEGER PRIMARY KEY|"
    r"PRIMARY KEY|ROWID)(?: (?P<index>[^ (]+))?)?(?: \((?P<terms>[^)]*)\))?"
)
_VIRTUAL = re.compile(r"^SCAN (?P<name>\S+) VIRTUAL TABLE")
# Steps over rows the statement itself spells out, not over a table.
_NOT_A_TABLE = re.compile(r"^SCAN (?:\d+-ROW VALUES CLAUSE|CONSTANT ROW)")
_TERM_COLUMN = re.compile(r"(?:ANY\()?([A-Za-z_][\w$]*)\)?\s*(?:=|>|<|IS|IN)")


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One SCAN or SEARCH step of a plan."""

    line: PlanLine
    """The plan line."""
    position: int
    """Its index in the plan."""
    op: str
    """``SCAN`` or ``SEARCH``."""
    name: str
    """The table's name or alias as the plan prints it."""
    how: str
    """``INDEX``, ``COVERING INDEX``, ``AUTOMATIC COVERING INDEX``, ... or ''."""
    index: str | None
    """The index used, when named."""
    terms: tuple[str, ...]
    """Columns of the search terms: ``(a=? AND b>?)`` gives ``("a", "b")``."""
    virtual: bool
    """A virtual table step (FTS and the like)."""

    @property
    def is_full_scan(self) -> bool:
        """Return True for a SCAN of the table or of one of its indexes.

        A bare ``SEARCH t`` (no index, no terms) is one too: SQLite prints it for
        a min()/max() subquery that still steps through every row.
        """
        if self.virtual:
            return False
        return self.op == "SCAN" or (
            self.op == "SEARCH" and not self.how and not self.terms
        )

    @property
    def is_automatic(self) -> bool:
        """Return True when the step uses an automatic (transient) index."""
        return "AUTOMATIC" in self.how


def plan_steps(plan: Plan) -> list[PlanStep]:
    """Return the SCAN and SEARCH steps of ``plan``, in plan order.

    >>> from qprof.plan import PlanLine
    >>> step = plan_steps((PlanLine(0, "SEARCH t USING INDEX t_a (a=? AND b>?)"),))[0]
    >>> step.op, step.name, step.index, step.terms
    ('SEARCH', 't', 't_a', ('a', 'b'))
    >>> plan_steps((PlanLine(0, "SCAN 100-ROW VALUES CLAUSE"),))
    []
    """
    steps = []
    for position, line in enumerate(plan):
        if _NOT_A_TABLE.match(line.detail):
            continue
        virtual = _VIRTUAL.match(line.detail)
        if virtual:
            steps.append(
                PlanStep(line, position, "SCAN", virtual["name"], "", None, (), True)
            )
            continue
        match = _STEP.match(line.detail)
        if not match:
            continue
        terms = tuple(_TERM_COLUMN.findall(match["terms"] or ""))
        steps.append(
            PlanStep(
                line,
                position,
                match["op"],
                match["name"],
                match["how"] or "",
                match["index"],
                terms,
                False,
            )
        )
    return steps


def step_table(step_name: str, aliases: dict[str, str]) -> str:
    """Return the real table behind a plan step's name, given the statement's aliases."""
    if step_name in aliases:
        return aliases[step_name]
    lowered = {alias.lower(): table for alias, table in aliases.items()}
    return lowered.get(step_name.lower(), step_name)


def is_first_loop(step: PlanStep, plan: Plan) -> bool:
    """Return True when ``step`` is the outermost loop of its level (nothing before it)."""
    for line in plan[: step.position]:
        if line.depth == step.line.depth and line.detail.startswith(("SCAN", "SEARCH")):
            return False
    return True


def is_scanned_inside_join(plan: Plan, aliases: dict[str, str], table: str) -> bool:
    """Return True when ``table`` is read by an automatic index, or by a scan that is
    not the outermost loop: a join column with no index, paid for on every outer row."""
    for step in plan_steps(plan):
        if step_table(step.name, aliases).lower() != table.lower():
            continue
        if step.is_automatic or (step.is_full_scan and not is_first_loop(step, plan)):
            return True
    return False


def table_before(plan: Plan, position: int) -> str | None:
    """Return the name in the nearest SCAN/SEARCH step before ``position`` at its depth."""
    depth = plan[position].depth
    for line in reversed(plan[:position]):
        if line.depth < depth:
            break
        if line.depth == depth:
            match = _STEP.match(line.detail) or _VIRTUAL.match(line.detail)
            if match:
                return match["name"]
    return None
