"""How a statement uses columns: filters, joins, sorts, groupings, selections.

The analyzer and the recommender ask the same questions of a statement (which
columns does it filter on, with which operator; what does it join on; what does
it sort by), so both read one ``StatementUsage``. It comes from sqlglot: the
statement is parsed once per fingerprint, its columns are qualified against the
real schema (aliases and unqualified names resolved), and each scope (the
outer query, every subquery and CTE) is walked for predicates.

>>> from qprof.schema import Column, Schema, Table
>>> t = Table("t", "table", {"a": Column("a", "INT", "BINARY", False)})
>>> usage = statement_usage("SELECT * FROM t WHERE a = ?", Schema({"t": t}, False))
>>> [(p.table, p.column, p.op, p.role) for p in usage.predicates]
[('t', 'a', 'eq', 'filter')]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.schema import MappingSchema

from qprof.schema import Schema

log = logging.getLogger(__name__)


def _not_a_fallback_notice(record: logging.LogRecord) -> bool:
    """Drop sqlglot's notice that it read a statement as a bare command.

    SAVEPOINT, CREATE TRIGGER and the like are read that way; qprof reports
    statements it could not analyse itself (``Analysis.unparsed``), and a test
    suite's summary would otherwise print one warning per such statement.
    """
    return "Falling back to parsing as a 'Command'" not in record.getMessage()


logging.getLogger("sqlglot").addFilter(_not_a_fallback_notice)

_COMPARISONS: dict[type[exp.Expression], str] = {
    exp.EQ: "eq",
    exp.NullSafeEQ: "eq",
    exp.GT: "range",
    exp.GTE: "range",
    exp.LT: "range",
    exp.LTE: "range",
    exp.NEQ: "ne",
}


@dataclass(frozen=True, slots=True)
class ColumnUse:
    """One predicate on one column (or expression of one column) of one table."""

    table: str
    """The real table name."""
    alias: str
    """The name the statement gives it."""
    column: str
    """The column's name (as the schema spells it)."""
    op: str
    """``eq``, ``in``, ``range``, ``is_null``, ``not_null``, ``like``, ``ne``."""
    role: str
    """``filter`` (against a value), ``join`` (against another table's column) or
    ``correlated`` (against a column of an enclosing query)."""
    scope: int
    """Which scope of the statement it is in (0 is the first walked)."""
    expression: str | None = None
    """The SQL of the function or arithmetic around the column, when not bare."""
    value: str | None = None
    """The literal compared with, when it is one (a LIKE pattern, say)."""
    other_table: str | None = None
    """For joins and correlations: the other side's table."""
    other_column: str | None = None
    """For joins and correlations: the other side's column."""
    collation: str | None = None
    """An explicit COLLATE on the predicate."""


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ORDER BY or GROUP BY term."""

    table: str
    """The real table name."""
    column: str
    """The column, or the SQL of an expression of one table's columns."""
    descending: bool
    """ORDER BY ... DESC."""
    is_expression: bool
    """``column`` is an expression, not a bare column."""
    scope: int
    """The scope it belongs to."""


@dataclass(slots=True)
class StatementUsage:
    """What one statement does with the schema's tables and columns."""

    tables: dict[str, str] = field(default_factory=dict)
    """Alias (or name) to real table name, over every scope."""
    predicates: list[ColumnUse] = field(default_factory=list)
    """Every indexable predicate found."""
    order_by: list[SortKey] = field(default_factory=list)
    """ORDER BY terms, outer query first."""
    group_by: list[SortKey] = field(default_factory=list)
    """GROUP BY terms."""
    selected: dict[str, set[str]] = field(default_factory=dict)
    """Per real table, the columns the statement reads anywhere."""
    correlated_scopes: list[int] = field(default_factory=list)
    """Scopes that are correlated subqueries."""
    scope_tables: dict[int, list[str]] = field(default_factory=dict)
    """Per scope, the real tables it reads directly."""
    written: list[str] = field(default_factory=list)
    """Tables the statement inserts into, updates or deletes from."""
    has_limit: bool = False
    """The outer query has a LIMIT."""

    def filters_on(self, table: str) -> list[ColumnUse]:
        """Return the predicates on ``table`` (any case)."""
        key = table.lower()
        return [p for p in self.predicates if p.table.lower() == key]


def statement_usage(sql: str, schema: Schema) -> StatementUsage | None:
    """Return how ``sql`` uses the schema, or None when sqlglot cannot parse it."""
    try:
        tree = sqlglot.parse_one(sql, dialect="sqlite")
        if tree is None:
            return None
        if schema.sqlglot_schema is None:
            tables: Any = schema.as_sqlglot()  # sqlglot types its mapping loosely
            schema.sqlglot_schema = MappingSchema(tables, dialect="sqlite")
        tree = qualify(
            tree,
            schema=schema.sqlglot_schema,
            dialect="sqlite",
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
        return _walk(tree, schema)  # type: ignore[arg-type]
    except (
        Exception
    ) as error:  # sqlglot raises many kinds; any of them means "not parsed"
        log.debug("sqlglot could not read %r: %s", sql[:80], error)
        return None


def _walk(tree: exp.Expression, schema: Schema) -> StatementUsage:
    usage = StatementUsage()
    for target in _written_tables(tree):
        usage.written.append(_real_name(schema, target))
    scopes = traverse_scope(tree)
    for number, scope in enumerate(scopes):
        sources = _table_sources(scope, schema)
        usage.tables.update(sources)
        usage.scope_tables[number] = sorted(set(sources.values()))
        if scope.is_correlated_subquery:
            usage.correlated_scopes.append(number)
        _collect_selected(scope, sources, usage)
        for condition in _conditions(scope.expression):  # type: ignore[arg-type]
            _add_predicate(condition, scope, sources, number, schema, usage)
        usage.order_by += _sort_keys(scope, "order", sources, number, schema)
        usage.group_by += _sort_keys(scope, "group", sources, number, schema)
    if scopes:
        usage.has_limit = scopes[-1].expression.args.get("limit") is not None
    # Correlated predicates were met before their outer scope named its aliases.
    usage.predicates = [
        replace(p, other_table=usage.tables.get(p.other_table, p.other_table))
        if p.role == "correlated" and p.other_table
        else p
        for p in usage.predicates
    ]
    if isinstance(tree, (exp.Update, exp.Delete)) and not scopes:
        _walk_write(tree, schema, usage)
    return usage


def _walk_write(tree: exp.Expression, schema: Schema, usage: StatementUsage) -> None:
    """UPDATE and DELETE have no SELECT scope: read their WHERE directly."""
    target = tree.this if isinstance(tree.this, exp.Table) else tree.find(exp.Table)
    if target is None:
        return
    name = _real_name(schema, target.name)
    sources = {target.alias_or_name: name}
    usage.tables.update(sources)
    for condition in _conditions(tree):
        _add_predicate(condition, None, sources, 0, schema, usage)


def _written_tables(tree: exp.Expression) -> list[str]:
    if isinstance(tree, (exp.Insert, exp.Update, exp.Delete)):
        target = tree.this
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(target, exp.Table):
            return [target.name]
    return []


def _table_sources(scope: Scope, schema: Schema) -> dict[str, str]:
    sources = {}
    for alias, source in scope.sources.items():
        if isinstance(source, exp.Table) and source.name:
            sources[alias] = _real_name(schema, source.name)
    return sources


def _real_name(schema: Schema, name: str) -> str:
    table = schema.table(name)
    return table.name if table else name


def _conditions(node: exp.Expression) -> list[exp.Expression]:
    """Return the AND-ed conditions of WHERE and of every JOIN ... ON."""
    found: list[exp.Expression] = []
    where = node.args.get("where")
    if where is not None:
        found += _conjuncts(where.this)
    for join in node.args.get("joins") or []:
        on = join.args.get("on")
        if on is not None:
            found += _conjuncts(on)
    return found


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.args["this"]) + _conjuncts(node.args["expression"])
    return [node]


def _add_predicate(
    condition: exp.Expression,
    scope: Scope | None,
    sources: dict[str, str],
    number: int,
    schema: Schema,
    usage: StatementUsage,
) -> None:
    collation = None
    if isinstance(condition, exp.Not) and isinstance(condition.this, exp.Is):
        _add_side(condition.this.this, "not_null", None, sources, number, schema, usage)
        return
    if isinstance(condition, exp.Is):
        is_op = "is_null" if isinstance(condition.expression, exp.Null) else "eq"
        _add_side(condition.this, is_op, None, sources, number, schema, usage)
        return
    if isinstance(condition, exp.In):
        _add_side(condition.this, "in", None, sources, number, schema, usage)
        return
    if isinstance(condition, exp.Between):
        _add_side(condition.this, "range", None, sources, number, schema, usage)
        return
    if isinstance(condition, (exp.Like, exp.ILike, exp.Glob)):
        pattern = condition.expression
        value = pattern.this if isinstance(pattern, exp.Literal) else None
        _add_side(condition.this, "like", value, sources, number, schema, usage)
        return
    op = _COMPARISONS.get(type(condition))
    if op is None:
        return
    left, right = condition.args["this"], condition.args["expression"]
    for side in (left, right):
        if isinstance(side, exp.Collate):
            collation = side.expression.name
    left_cols, right_cols = _columns(left), _columns(right)
    local_left = [c for c in left_cols if c.table in sources]
    local_right = [c for c in right_cols if c.table in sources]
    if local_left and local_right:
        if len(local_left) == 1 and len(local_right) == 1:
            _add_join(
                left,
                right,
                local_left[0],
                local_right[0],
                op,
                sources,
                number,
                schema,
                usage,
            )
        return
    for side, local, other in (
        (left, local_left, right_cols),
        (right, local_right, left_cols),
    ):
        if len(local) != 1:
            continue
        role = "correlated" if other else "filter"
        value = other_side_literal(right if side is left else left)
        _add_side(
            side, op, value, sources, number, schema, usage, role, other, collation
        )


def _add_join(
    left: exp.Expression,
    right: exp.Expression,
    left_col: exp.Column,
    right_col: exp.Column,
    op: str,
    sources: dict[str, str],
    number: int,
    schema: Schema,
    usage: StatementUsage,
) -> None:
    if left_col.table == right_col.table:
        return
    for side, col, other in ((left, left_col, right_col), (right, right_col, left_col)):
        table = sources[col.table]
        usage.predicates.append(
            ColumnUse(
                table=table,
                alias=col.table,
                column=_column_name(schema, table, col.name),
                op=op,
                role="join",
                scope=number,
                expression=_expression_sql(side),
                other_table=sources[other.table],
                other_column=_column_name(schema, sources[other.table], other.name),
            )
        )


def _add_side(
    side: exp.Expression,
    op: str,
    value: str | None,
    sources: dict[str, str],
    number: int,
    schema: Schema,
    usage: StatementUsage,
    role: str = "filter",
    other: list[exp.Column] | None = None,
    collation: str | None = None,
) -> None:
    columns = [c for c in _columns(side) if c.table in sources]
    if len(columns) != 1:
        return
    column = columns[0]
    table = sources[column.table]
    other_col = other[0] if other else None
    other_table = None
    if other_col is not None:
        other_table = usage.tables.get(other_col.table, other_col.table)
    usage.predicates.append(
        ColumnUse(
            table=table,
            alias=column.table,
            column=_column_name(schema, table, column.name),
            op=op,
            role="correlated" if other else role,
            scope=number,
            expression=_expression_sql(side),
            value=value,
            other_table=other_table,
            other_column=other_col.name if other_col is not None else None,
            collation=collation,
        )
    )


def other_side_literal(node: exp.Expression) -> str | None:
    """Return a literal's text (or None when ``node`` is not a literal)."""
    return node.this if isinstance(node, exp.Literal) else None


def _columns(node: exp.Expression) -> list[exp.Column]:
    """Return the columns of ``node``, leaving out those of subqueries inside it."""
    if isinstance(node, exp.Column):
        return [node]
    return [c for c in node.find_all(exp.Column) if not _in_subquery(c, node)]


def _in_subquery(column: exp.Column, top: exp.Expression) -> bool:
    parent = column.parent
    while parent is not None and parent is not top:
        if isinstance(parent, (exp.Subquery, exp.Select)):
            return True
        parent = parent.parent
    return False


def _expression_sql(side: exp.Expression) -> str | None:
    """Return the SQL of ``side`` without table qualifiers, or None for a bare column."""
    while isinstance(side, (exp.Paren, exp.Collate)):
        side = side.this
    if isinstance(side, exp.Column):
        return None
    bare = side.copy()
    for column in bare.find_all(exp.Column):
        column.set("table", None)
    return bare.sql(dialect="sqlite")


def _column_name(schema: Schema, table: str, name: str) -> str:
    found = schema.table(table)
    column = found.column(name) if found else None
    return column.name if column else name


def _collect_selected(
    scope: Scope, sources: dict[str, str], usage: StatementUsage
) -> None:
    for column in scope.columns:
        table = sources.get(column.table)
        if table is not None:
            usage.selected.setdefault(table, set()).add(column.name)


def _sort_keys(
    scope: Scope, key: str, sources: dict[str, str], number: int, schema: Schema
) -> list[SortKey]:
    clause = scope.expression.args.get(key)
    if clause is None:
        return []
    projections = {
        p.alias_or_name.lower(): p.this if isinstance(p, exp.Alias) else p
        for p in scope.expression.expressions
    }
    keys = []
    for term in clause.expressions:
        descending = (
            bool(term.args.get("desc")) if isinstance(term, exp.Ordered) else False
        )
        node = term.this if isinstance(term, exp.Ordered) else term
        if isinstance(node, exp.Column) and not node.table:
            node = projections.get(node.name.lower(), node)
        if node.find(exp.AggFunc, exp.Window) is not None:
            continue  # sorting by an aggregate happens after grouping: no index serves it
        columns = [c for c in node.find_all(exp.Column) if c.table in sources]
        if isinstance(node, exp.Column):
            columns = [node] if node.table in sources else []
        tables = {sources[c.table] for c in columns}
        if len(tables) != 1:
            continue
        table = tables.pop()
        expression = _expression_sql(node)
        keys.append(
            SortKey(
                table=table,
                column=expression
                if expression is not None
                else _column_name(schema, table, columns[0].name),
                descending=descending,
                is_expression=expression is not None,
                scope=number,
            )
        )
    return keys
