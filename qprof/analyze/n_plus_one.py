"""n_plus_one: one statement run again and again in one context, value by value.

The profile's loop tracker (``qprof.loops``) counts each fingerprint within
each context (a request, a test, a window of a log). A fingerprint that ran at
least ``n_plus_one_min`` times in one context with different values is a loop;
the repeats need not be back to back, so the children an ORM loads per parent
row (interleaved, and nested N x M) are each found. The parent is the nearest
statement before the loop that ran fewer times in the context (the one whose
rows fed it); when the database is at hand it is run again and its rows are
searched for the loop's values, to show the values came from it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from itertools import islice
from typing import Any

import apsw

from qprof.analyze.finding import AnalysisContext, Finding
from qprof.analyze.plans import plan_steps
from qprof.fingerprint import literal_values
from qprof.loops import ContextLoop, Occurrence
from qprof.profile import FingerprintProfile
from qprof.readers.sql_text import reads_only
from qprof.usage import StatementUsage

PARENT_ROWS = 10_000
WINDOW_PREFIX = "statements "
"""How the loop tracker labels a window of a log that has no context labels."""


def detect_n_plus_one(context: AnalysisContext) -> list[Finding]:
    """Return one finding per fingerprint that loops within contexts."""
    minimum = context.thresholds.n_plus_one_min
    by_fingerprint: dict[str, list[ContextLoop]] = defaultdict(list)
    for loop in context.profile.loops:
        if loop.count >= minimum and loop.distinct >= 2:
            by_fingerprint[loop.fingerprint].append(loop)
    looping = set(by_fingerprint)
    findings = []
    for key, loops in by_fingerprint.items():
        fp = context.profile.fingerprints.get(key)
        if fp is None or not fp.readonly:
            continue  # a loop of writes wants executemany, not an N+1 rewrite
        if _is_paging(fp.fingerprint.text):
            continue  # page after page: each page's values come from the page before
        if fp.plans and not any(plan_steps(v.plan) for v in fp.plans):
            continue  # reads no table (SELECT 1 + 1, a connection check)
        finding = _finding(context, fp, loops, looping)
        if finding is not None:
            findings.append(finding)
    return findings


def _finding(
    context: AnalysisContext,
    fp: FingerprintProfile,
    loops: list[ContextLoop],
    looping: set[str],
) -> Finding | None:
    loops.sort(key=lambda loop: -loop.count)
    biggest = loops[0]
    overflow = context.profile.loop_overflow.get(fp.fingerprint.id, [0, 0, 0])
    statements = sum(loop.count for loop in loops) + overflow[1]
    elapsed = sum(loop.elapsed_ns for loop in loops) + overflow[2]
    contexts = len(loops) + overflow[0]
    parent = _parent(biggest)
    usage = context.usage(fp)
    table, column = _filter_column(usage)
    evidence: dict[str, Any] = {
        "contexts": contexts,
        "statements_in_loops": statements,
        "loop_ns": elapsed,
        "largest_loop": biggest.count,
        "largest_context": biggest.context,
        "first_values": [_jsonable(v) for v in biggest.values[:5]],
        "first_location": biggest.before[-1].location
        if biggest.before
        else fp.first_location,
    }
    callers = sorted({c for loop in loops for c in loop.callers})
    if callers:
        evidence["callers"] = callers
    nested = ""
    if parent is not None:
        evidence["parent_sql"] = parent.sql
        evidence["parent_fingerprint"] = parent.fingerprint
        evidence["parent_location"] = parent.location
        matched = _values_from_parent(context, parent, biggest)
        if matched is not None:
            evidence["values_found_in_parent_rows"] = matched
            if (
                biggest.context.startswith(WINDOW_PREFIX)
                and not biggest.callers
                and matched["found"] * 2 < matched["checked"]
            ):
                # No context labels, no caller line, and the values did not come from
                # the statement before: a log's repeated searches, not a loop over a
                # parent's rows. (A capture names the line that ran the loop.)
                return None
        if parent.fingerprint in looping:
            nested = f", nested inside the loop of {parent.fingerprint}"
            evidence["nested_in"] = parent.fingerprint
    time_share = elapsed / (context.profile.total_ns or 1)
    batched = (
        f"one statement with {column} IN (...) over all the values"
        if column
        else "one statement over all the values (IN (...) or a JOIN)"
    )
    if parent is not None:
        batched += " or a JOIN with the statement that produced them"
    finding = context.finding(
        fp,
        kind="n_plus_one",
        severity="high" if time_share >= 0.02 or biggest.count >= 50 else "medium",
        message=f"Ran {statements:,} times in {contexts:,} context(s), up to "
        f"{biggest.count:,} times in one ({biggest.context}), each with other values"
        f"{nested}: an N+1 loop taking {_milliseconds(elapsed)}.",
        advice=f"Fetch the rows at once: {batched} (in an ORM, eager loading such as "
        "selectinload or prefetch_related).",
        table=table,
        columns=(column,) if column else (),
        evidence=evidence,
    )
    finding.time_share = time_share
    return finding


def _milliseconds(ns: int) -> str:
    return f"{ns / 1e6:,.1f} ms" if ns >= 100_000 else f"{ns / 1e3:,.0f} µs"


def _is_paging(text: str) -> bool:
    """Return True for OFFSET paging and for keyset paging.

    Keyset paging (``WHERE (a > ?) OR (a = ? AND b > ?) ORDER BY a, b LIMIT ?``)
    starts each page after the last row of the one before: every column it
    compares is a sort key, and the first sort key is compared by range. A
    loop per parent row compares another column too (``user_id = ?``).

    >>> _is_paging("SELECT * FROM t WHERE (a > ?) OR (a = ? AND b > ?) ORDER BY a, b LIMIT ?")
    True
    >>> _is_paging("SELECT * FROM p WHERE user_id = ? AND at > ? ORDER BY at LIMIT ?")
    False
    """
    text = text.upper()
    if "OFFSET" in text or "LIMIT ?, ?" in text:
        return True
    where, _, rest = text.partition(" ORDER BY ")
    if " LIMIT " not in rest:
        return False
    keys = [
        k.split()[0].split(".")[-1]
        for k in rest.split(" LIMIT ")[0].split(",")
        if k.split()
    ]
    if not keys:
        return False
    compared = re.findall(r"([\w.]+)\s*(=|[<>]=?)\s*\?", where)
    ranged = {column.split(".")[-1] for column, op in compared if op != "="}
    return keys[0] in ranged and all(c.split(".")[-1] in keys for c, _op in compared)


def _parent(loop: ContextLoop) -> Occurrence | None:
    """Return the nearest earlier query that ran fewer times in the context.

    Only a statement that returns rows can be the parent: a ``PRAGMA x = on``
    or an UPDATE between the parent and its loop is passed over.
    """
    for occurrence in reversed(loop.before):
        if occurrence.fingerprint == loop.fingerprint:
            continue
        if not reads_only(occurrence.sql) and "RETURNING" not in occurrence.sql.upper():
            continue
        if loop.counts_before.get(occurrence.fingerprint, 0) < loop.count:
            return occurrence
    return None


def _filter_column(usage: StatementUsage | None) -> tuple[str | None, str | None]:
    """Return the table and column the looping statement looks rows up by."""
    if usage is None:
        return None, None
    for use in usage.predicates:
        if use.role == "filter" and use.op in ("eq", "in") and use.expression is None:
            return use.table, use.column
    tables = [t for ts in usage.scope_tables.values() for t in ts]
    return (tables[0] if tables else None), None


def _values_from_parent(
    context: AnalysisContext, parent: Occurrence, loop: ContextLoop
) -> dict[str, int] | None:
    """Run the parent again and count how many of the loop's values are in its rows."""
    connection = context.connection
    if connection is None:
        return None
    try:
        rows = list(islice(connection.execute(parent.sql, parent.params), PARENT_ROWS))
    except (apsw.Error, TypeError, ValueError):
        return None
    seen = {_key(value) for row in rows for value in row}
    wanted = [v for value in loop.values for v in _scalars(value)]
    if not wanted:
        return None
    return {"checked": len(wanted), "found": sum(1 for v in wanted if _key(v) in seen)}


def _scalars(value: Any) -> list[Any]:
    if isinstance(value, str):
        return list(literal_values(value))
    if isinstance(value, dict):
        return list(value.values())
    return list(value or ())


def _key(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return {"$blob": value.hex()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
