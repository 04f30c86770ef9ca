"""redundant_index: an index whose columns lead another index of the same table.

Any search the shorter index serves, the longer one serves too, so the shorter
one only costs writes and space. A UNIQUE or partial index is kept out: it
enforces or selects something the longer one does not.
"""

from __future__ import annotations

from qprof.analyze.finding import AnalysisContext, Finding
from qprof.schema import Index


def detect_redundant_indexes(context: AnalysisContext) -> list[Finding]:
    """Return one finding per index made redundant by a wider one."""
    findings = []
    for table in context.schema.tables.values():
        for index in table.indexes:
            if index.unique or index.partial:
                continue
            wider = _wider(table.indexes, index)
            if wider is None:
                continue
            findings.append(
                Finding(
                    kind="redundant_index",
                    severity="low",
                    message=f"Index {index.name} on {table.name}({', '.join(index.columns)}) "
                    f"is a prefix of {wider.name} ({', '.join(wider.columns)}).",
                    advice=f"DROP INDEX {index.name}; {wider.name} serves the same searches.",
                    table=table.name,
                    columns=index.columns,
                    evidence={"index": index.name, "covered_by": wider.name},
                )
            )
    return findings


def _wider(indexes: list[Index], index: Index) -> Index | None:
    mine = [c.lower() for c in index.columns]
    for other in indexes:
        if other is index or other.partial:
            continue
        theirs = [c.lower() for c in other.columns]
        longer = len(theirs) > len(mine) or (
            len(theirs) == len(mine) and other.name < index.name
        )
        if (
            longer
            and theirs[: len(mine)] == mine
            and (other.descending[: len(mine)] == index.descending)
        ):
            return other
    return None
