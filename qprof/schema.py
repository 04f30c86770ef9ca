"""The database's schema as the analyzer and recommender need it.

Read once, read-only, from ``sqlite_schema`` and the table-valued pragmas
(``pragma_table_xinfo``, ``pragma_index_list``, ``pragma_index_xinfo``,
``pragma_foreign_key_list``; https://sqlite.org/pragma.html). Names are kept
as SQLite spells them; look-ups are case-insensitive, as SQLite's are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a table."""

    name: str
    """The column's name."""
    declared_type: str
    """The declared type, as written (may be empty)."""
    collation: str
    """The default collation (``BINARY`` unless declared)."""
    primary_key: bool
    """Part of the primary key."""

    @property
    def affinity(self) -> str:
        """Return the column's type affinity (https://sqlite.org/datatype3.html 3.1).

        >>> Column("a", "VARCHAR(10)", "BINARY", False).affinity
        'TEXT'
        """
        declared = self.declared_type.upper()
        if "INT" in declared:
            return "INTEGER"
        if any(word in declared for word in ("CHAR", "CLOB", "TEXT")):
            return "TEXT"
        if "BLOB" in declared or not declared:
            return "BLOB"
        if any(word in declared for word in ("REAL", "FLOA", "DOUB")):
            return "REAL"
        return "NUMERIC"


@dataclass(frozen=True, slots=True)
class Index:
    """An index, including those SQLite makes for PRIMARY KEY and UNIQUE."""

    name: str
    """The index's name (``sqlite_autoindex_...`` for constraint indexes)."""
    table: str
    """The indexed table."""
    columns: tuple[str, ...]
    """Key columns in order; an expression key is its SQL text."""
    unique: bool
    """A UNIQUE index."""
    partial: bool
    """Has a WHERE clause."""
    origin: str
    """``c`` CREATE INDEX, ``u`` UNIQUE constraint, ``pk`` PRIMARY KEY."""
    descending: tuple[bool, ...] = ()
    """Per key column: sorted descending."""
    collations: tuple[str, ...] = ()
    """Per key column: its collation."""


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """A declared foreign key."""

    table: str
    """The child table."""
    columns: tuple[str, ...]
    """Child columns."""
    parent: str
    """The parent table."""
    parent_columns: tuple[str, ...]
    """Parent columns (empty: the parent's primary key)."""


@dataclass(slots=True)
class Table:
    """A table (or virtual table, or view) of the database."""

    name: str
    """The table's name."""
    kind: str
    """``table``, ``virtual`` or ``view``."""
    columns: dict[str, Column] = field(default_factory=dict)
    """Columns by lower-cased name, in declaration order."""
    rowid_alias: str | None = None
    """The INTEGER PRIMARY KEY column that is the rowid, if any."""
    without_rowid: bool = False
    """Declared WITHOUT ROWID."""
    indexes: list[Index] = field(default_factory=list)
    """Its indexes."""
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    """Its declared foreign keys."""

    def column(self, name: str) -> Column | None:
        """Return the column called ``name`` (any case), or None."""
        return self.columns.get(name.lower())


@dataclass(slots=True)
class Schema:
    """Every table of a database, with row counts read on demand."""

    tables: dict[str, Table]
    """Tables by lower-cased name."""
    has_stat1: bool
    """``sqlite_stat1`` exists (ANALYZE has run)."""
    path: str = ""
    """The database file."""
    _row_counts: dict[str, int] = field(default_factory=dict)
    _connection: apsw.Connection | None = None
    sqlglot_schema: Any = None
    """sqlglot's schema of these tables, made once by ``qprof.usage`` (its making
    normalizes every name: hundreds of tables cost more than parsing a statement)."""

    def table(self, name: str) -> Table | None:
        """Return the table called ``name`` (any case), or None."""
        return self.tables.get(name.lower())

    def row_count(self, name: str) -> int:
        """Return how many rows table ``name`` has (0 for views, virtual or unknown)."""
        key = name.lower()
        if key not in self._row_counts:
            self._row_counts[key] = self._count(key)
        return self._row_counts[key]

    def attach(self, connection: apsw.Connection | None) -> None:
        """Use ``connection`` (the same database, read-only) for row counts from now on."""
        self._connection = connection

    def as_sqlglot(self) -> dict[str, dict[str, str]]:
        """Return ``{table: {column: type}}`` for sqlglot's column qualification."""
        return {
            t.name: {c.name: (c.declared_type or "BLOB") for c in t.columns.values()}
            for t in self.tables.values()
            if t.columns
        }

    def _count(self, key: str) -> int:
        table = self.tables.get(key)
        if table is None or table.kind != "table" or self._connection is None:
            return 0
        quoted = '"' + table.name.replace('"', '""') + '"'
        try:
            return int(self._connection.execute(f"SELECT count(*) FROM {quoted}").get)
        except apsw.Error:
            return 0


def read_schema(connection: apsw.Connection, path: str | Path = "") -> Schema:
    """Return the schema of the main database of ``connection``.

    The connection is kept for row counts; it is only read.
    """
    tables: dict[str, Table] = {}
    rows = connection.execute(
        "SELECT type, name, sql FROM sqlite_schema WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    for row in rows:
        kind, name, text = str(row[0]), str(row[1]), str(row[2] or "").upper()
        if kind == "table" and text.startswith("CREATE VIRTUAL"):
            kind = "virtual"
        table = Table(name=name, kind=kind, without_rowid="WITHOUT ROWID" in text)
        tables[name.lower()] = table
        if kind == "virtual":
            continue
        try:
            _read_columns(connection, table)
        except apsw.SQLError as error:
            # A view over a column or table that is gone: SQLite keeps it, and
            # refuses to say what its columns are.
            log.warning(
                "view %s is broken (%s); its columns are not known", name, error
            )
            continue
        if kind == "table":
            _read_indexes(connection, table)
            _read_foreign_keys(connection, table)
    has_stat1 = bool(
        connection.execute(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sqlite_stat1'"
        ).fetchall()
    )
    return Schema(
        tables=tables, has_stat1=has_stat1, path=str(path), _connection=connection
    )


def _read_columns(connection: apsw.Connection, table: Table) -> None:
    pk_columns = []
    for _cid, name, declared, _notnull, _default, pk, hidden in connection.execute(
        'SELECT cid, name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?)',
        (table.name,),
    ):
        if hidden:
            continue
        collation = _column_collation(connection, table.name, name)
        table.columns[name.lower()] = Column(name, declared or "", collation, bool(pk))
        if pk:
            pk_columns.append((pk, name, declared or ""))
    if (
        table.kind == "table"
        and not table.without_rowid
        and len(pk_columns) == 1
        and pk_columns[0][2].upper() == "INTEGER"
    ):
        table.rowid_alias = pk_columns[0][1]


def _column_collation(connection: apsw.Connection, table: str, column: str) -> str:
    try:
        metadata = connection.column_metadata("main", table, column)
    except apsw.Error:
        return "BINARY"
    return str(metadata[1] or "BINARY")


def _read_indexes(connection: apsw.Connection, table: Table) -> None:
    for row in connection.execute(
        'SELECT name, "unique", origin, partial FROM pragma_index_list(?)',
        (table.name,),
    ).fetchall():
        name, unique, origin, partial = str(row[0]), row[1], str(row[2]), row[3]
        keys = connection.execute(
            "SELECT cid, name, desc, coll FROM pragma_index_xinfo(?) WHERE key ORDER BY seqno",
            (name,),
        ).fetchall()
        columns = tuple(
            str(key[1])
            if int(key[0] or 0) >= 0
            else _expression_key(connection, name, i)  # type: ignore[call-overload]
            for i, key in enumerate(keys)
        )
        table.indexes.append(
            Index(
                name=name,
                table=table.name,
                columns=columns,
                unique=bool(unique),
                partial=bool(partial),
                origin=origin,
                descending=tuple(bool(k[2]) for k in keys),
                collations=tuple(str(k[3]) for k in keys),
            )
        )


def _expression_key(connection: apsw.Connection, index: str, position: int) -> str:
    """Return the SQL text of the ``position``-th key of an expression index."""
    # Limitation: expression keys are read back from the CREATE INDEX text by a
    # split on top-level commas; an index whose key holds a comma inside quotes is misread.
    sql = connection.execute(
        "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?", (index,)
    ).get
    if not sql:
        return f"<expression {position}>"
    inside = sql[sql.index("(") + 1 : sql.rindex(")")]
    depth, part, parts = 0, "", []
    for char in inside:
        if char == "," and depth == 0:
            parts.append(part.strip())
            part = ""
            continue
        depth += (char == "(") - (char == ")")
        part += char
    parts.append(part.strip())
    return parts[position] if position < len(parts) else f"<expression {position}>"


def _read_foreign_keys(connection: apsw.Connection, table: Table) -> None:
    groups: dict[int, list[tuple[str, str, str]]] = {}
    for fk_id, _seq, parent, child_col, parent_col in connection.execute(
        'SELECT id, seq, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq',
        (table.name,),
    ):
        groups.setdefault(fk_id, []).append((parent, child_col, parent_col or ""))
    for parts in groups.values():
        table.foreign_keys.append(
            ForeignKey(
                table=table.name,
                columns=tuple(p[1] for p in parts),
                parent=parts[0][0],
                parent_columns=tuple(p[2] for p in parts if p[2]),
            )
        )
