"""unindexed_foreign_key: a declared foreign key whose child columns have no index.

Every delete or key update of a parent row must find its children (to check
or cascade), and with no index on the child columns that is a full scan of
the child table (https://sqlite.org/foreignkeys.html#fk_indexes).
"""

from __future__ import annotations

from qprof.analyze.finding import AnalysisContext, Finding
from qprof.schema import Table


def detect_unindexed_foreign_keys(context: AnalysisContext) -> list[Finding]:
    """Return one finding per declared foreign key with no index on its child columns."""
    findings = []
    users = _fingerprints_by_column(context)
    for table in context.schema.tables.values():
        for key in table.foreign_keys:
            wanted = [c.lower() for c in key.columns]
            if _is_indexed(table, wanted):
                continue
            fps = [
                context.profile.fingerprints[f]
                for f in users.get((table.name.lower(), wanted[0]), [])
            ]
            time_share, vm_share = context.shares(*fps) if fps else (0.0, 0.0)
            listed = ", ".join(key.columns)
            findings.append(
                Finding(
                    kind="unindexed_foreign_key",
                    severity="medium" if fps else "low",
                    message=f"{table.name}({listed}) references {key.parent} but has no "
                    f"index: each delete or key change in {key.parent} scans {table.name}.",
                    advice=f"CREATE INDEX ON {table.name}({listed}).",
                    fingerprint=fps[0].fingerprint.id if fps else None,
                    sql=fps[0].sample_sql if fps else None,
                    table=table.name,
                    columns=key.columns,
                    evidence={
                        "references": key.parent,
                        "statements_using_it": len(fps),
                    },
                    time_share=time_share,
                    vm_share=vm_share,
                    fingerprints=tuple(fp.fingerprint.id for fp in fps),
                )
            )
    return findings


def _is_indexed(table: Table, wanted: list[str]) -> bool:
    if (
        len(wanted) == 1
        and table.rowid_alias
        and table.rowid_alias.lower() == wanted[0]
    ):
        return True
    for index in table.indexes:
        lead = [c.lower() for c in index.columns[: len(wanted)]]
        if sorted(lead) == sorted(wanted):
            return True
    return False


def _fingerprints_by_column(
    context: AnalysisContext,
) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for fp in context.profile.costliest():
        usage = context.usage(fp)
        for use in usage.predicates if usage else []:
            key = (use.table.lower(), use.column.lower())
            if fp.fingerprint.id not in found.setdefault(key, []):
                found[key].append(fp.fingerprint.id)
    return found
