"""unused_index: no plan of the workload uses an index of a table it writes to.

An index costs every INSERT, UPDATE and DELETE on its table; if none of the
workload's plans reads it, the writes pay for nothing (in this workload).
Indexes that enforce PRIMARY KEY or UNIQUE are kept out.
"""

from __future__ import annotations

from qprof.analyze.finding import AnalysisContext, Finding
from qprof.analyze.plans import plan_steps


def detect_unused_indexes(context: AnalysisContext) -> list[Finding]:
    """Return one finding per index of a written table that no plan uses."""
    used: set[str] = set()
    writers: dict[str, list] = {}
    for fp in context.profile.fingerprints.values():
        for variant in fp.plans:
            used.update(s.index.lower() for s in plan_steps(variant.plan) if s.index)
        usage = context.usage(fp) if not fp.readonly else None
        for written in usage.written if usage else []:
            writers.setdefault(written.lower(), []).append(fp)
    findings = []
    for key, fps in writers.items():
        table = context.table_named(key)
        if table is None:
            continue
        for index in table.indexes:
            if index.origin != "c" or index.name.lower() in used:
                continue
            time_share, vm_share = context.shares(*fps)
            findings.append(
                Finding(
                    kind="unused_index",
                    severity="low",
                    message=f"Index {index.name} on {table.name}({', '.join(index.columns)}) "
                    f"is used by no plan of the workload, which writes {table.name} "
                    f"{sum(fp.count for fp in fps):,} times.",
                    advice=f"If no other workload reads it, DROP INDEX {index.name}.",
                    fingerprint=fps[0].fingerprint.id,
                    sql=fps[0].sample_sql,
                    table=table.name,
                    columns=index.columns,
                    evidence={
                        "index": index.name,
                        "writes": sum(fp.count for fp in fps),
                    },
                    time_share=time_share,
                    vm_share=vm_share,
                    fingerprints=tuple(fp.fingerprint.id for fp in fps),
                )
            )
    return findings
