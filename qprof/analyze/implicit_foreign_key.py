"""implicit_foreign_key: a ``*_id`` column joined to another table's key, undeclared.

The workload treats the column as a reference (it joins on it), but the
schema declares no constraint, so nothing keeps the rows consistent and the
column is often left without the index a declared key would remind one of.
"""

from __future__ import annotations

from qprof.analyze.finding import AnalysisContext, Finding
from qprof.schema import Table


def detect_implicit_foreign_keys(context: AnalysisContext) -> list[Finding]:
    """Return one finding per undeclared reference the workload joins on."""
    found: dict[tuple[str, str], Finding] = {}
    for fp in context.profile.costliest():
        usage = context.usage(fp)
        for use in usage.predicates if usage else []:
            if use.role != "join" or not use.column.lower().endswith("_id"):
                continue
            child = context.table_named(use.table)
            parent = context.table_named(use.other_table)
            if (
                child is None
                or parent is None
                or child is parent
                or not use.other_column
            ):
                continue
            if not _is_key(parent, use.other_column) or _declared(
                child, use.column, parent.name
            ):
                continue
            key = (child.name.lower(), use.column.lower())
            if key in found:
                finding = found[key]
                if fp.fingerprint.id not in finding.fingerprints:
                    finding.fingerprints += (fp.fingerprint.id,)
                continue
            found[key] = context.finding(
                fp,
                kind="implicit_foreign_key",
                severity="low",
                message=f"{child.name}.{use.column} is joined to {parent.name}."
                f"{use.other_column} but declares no foreign key.",
                advice=f"Declare it (REFERENCES {parent.name}({use.other_column})) and index "
                f"{child.name}({use.column}).",
                table=child.name,
                columns=(use.column,),
                evidence={"references": f"{parent.name}.{use.other_column}"},
            )
    return list(found.values())


def _is_key(table: Table, column: str) -> bool:
    name = column.lower()
    if name == "rowid" or (table.rowid_alias and table.rowid_alias.lower() == name):
        return True
    return any(
        index.unique and [c.lower() for c in index.columns] == [name]
        for index in table.indexes
    )


def _declared(child: Table, column: str, parent: str) -> bool:
    return any(
        column.lower() in [c.lower() for c in key.columns]
        and key.parent.lower() == parent.lower()
        for key in child.foreign_keys
    )
