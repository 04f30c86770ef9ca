"""Check: gate CI on query problems that the team has not accepted.

A baseline is a JSON file listing accepted findings, one object a line inside
a list, sorted, so that it diffs well. A finding matches a baseline entry by
kind and fingerprint (the fingerprint does not change with literal values or
the caller's line number); a finding about the schema alone (no fingerprint)
matches by kind, table and columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qprof.analyze import Analysis, Finding
from qprof.errors import OutputError, WorkloadError
from qprof.profile import WorkloadProfile

DEFAULT_FAIL_ON = ("n_plus_one", "full_scan", "unindexed_filter")
BASELINE_KEY = "qprof_baseline"
BASELINE_VERSION = 1


@dataclass(slots=True)
class BudgetBreach:
    """A context (a test) that ran more statements than allowed."""

    context: str
    """The context label (the test id)."""
    statements: int
    """How many statements it ran."""
    limit: int
    """The budget."""


@dataclass(slots=True)
class CheckResult:
    """What ``qprof check`` decided."""

    new: list[Finding]
    """Failing findings that the baseline does not accept."""
    accepted: list[Finding]
    """Failing-kind findings the baseline accepts."""
    budget: list[BudgetBreach] = field(default_factory=list)
    """Contexts over the statement budget."""

    @property
    def failed(self) -> bool:
        """Return True when CI should fail."""
        return bool(self.new or self.budget)


def check_findings(
    analysis: Analysis,
    profile: WorkloadProfile,
    fail_on: tuple[str, ...] = DEFAULT_FAIL_ON,
    baseline: set[tuple[str, ...]] | None = None,
    max_statements_per_context: int | None = None,
) -> CheckResult:
    """Split the failing-kind findings into new and accepted, and check the budget."""
    accepted_keys = baseline or set()
    new: list[Finding] = []
    accepted: list[Finding] = []
    for finding in analysis.findings:
        if finding.kind not in fail_on:
            continue
        (accepted if baseline_key(finding) in accepted_keys else new).append(finding)
    breaches = []
    if max_statements_per_context is not None:
        for context, count in sorted(profile.context_statements.items()):
            if count > max_statements_per_context:
                breaches.append(
                    BudgetBreach(context, count, max_statements_per_context)
                )
    return CheckResult(new, accepted, breaches)


def baseline_key(finding: Finding) -> tuple[str, ...]:
    """Return what a finding is matched by: kind and fingerprint, else kind, table, columns."""
    if finding.fingerprint:
        return (finding.kind, finding.fingerprint)
    return (
        finding.kind,
        (finding.table or "").lower(),
        ",".join(finding.columns).lower(),
    )


def write_baseline(
    analysis: Analysis,
    profile: WorkloadProfile,
    path: str | Path,
    fail_on: tuple[str, ...],
) -> int:
    """Write the failing-kind findings of ``analysis`` as a baseline; return how many.

    Each entry carries the fingerprint's normalised SQL, which does not change
    with values, so the file changes only when the findings do. Raises
    ``OutputError`` when the file cannot be written.
    """
    entries = sorted(
        (_entry(f, profile) for f in analysis.findings if f.kind in fail_on),
        key=lambda e: (e["kind"], e.get("fingerprint") or "", e.get("table") or ""),
    )
    unique = {json.dumps(e, sort_keys=True): e for e in entries}
    lines = [json.dumps(e, sort_keys=True, ensure_ascii=False) for e in unique.values()]
    body = ",\n  ".join(lines)
    text = f'{{"{BASELINE_KEY}": {BASELINE_VERSION}, "accepted": [\n  {body}\n]}}\n'
    if not lines:
        text = f'{{"{BASELINE_KEY}": {BASELINE_VERSION}, "accepted": []}}\n'
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise OutputError(path, error.strerror or str(error)) from None
    return len(lines)


def read_baseline(path: str | Path) -> set[tuple[str, ...]]:
    """Return the keys a baseline file accepts.

    Raises ``WorkloadError`` naming the file (and line) when it is not a
    readable qprof baseline.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise WorkloadError(
            path, 0, "a qprof baseline (UTF-8 JSON)", "binary data"
        ) from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise WorkloadError(path, 0, "a qprof baseline file", reason) from None
    try:
        document = json.loads(text)
    except ValueError as error:
        line = getattr(error, "lineno", 0)
        raise WorkloadError(
            path,
            line,
            "a qprof baseline (JSON)",
            str(error).split(":")[0],
            "write one with qprof check --write-baseline",
        ) from None
    if not isinstance(document, dict) or document.get(BASELINE_KEY) != BASELINE_VERSION:
        raise WorkloadError(
            path,
            1,
            f'a JSON object with "{BASELINE_KEY}": {BASELINE_VERSION}',
            "another document",
            "write one with qprof check --write-baseline",
        )
    keys = set()
    for number, entry in enumerate(document.get("accepted") or [], 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("kind"), str):
            raise WorkloadError(
                path,
                0,
                f'entry {number} of "accepted" to be an object with a "kind"',
                json.dumps(entry)[:40],
            )
        keys.add(_entry_key(entry))
    return keys


def github_annotations(result: CheckResult) -> list[str]:
    """Return GitHub Actions annotation lines, pointing at the caller when known."""
    lines = []
    for finding in result.new:
        where = ""
        callers = finding.evidence.get("callers") or []
        if callers and ":" in callers[0]:
            file, _, line = callers[0].rpartition(":")
            where = f"file={file},line={line},"
        title = f"qprof {finding.kind}" + (
            f" on {finding.table}" if finding.table else ""
        )
        message = f"{finding.message} {finding.advice}".replace("\n", " ")
        lines.append(f"::error {where}title={title}::{_escape(message)}")
    for breach in result.budget:
        lines.append(
            f"::error title=qprof statement budget::{_escape(breach.context)} ran "
            f"{breach.statements} statements (budget {breach.limit})"
        )
    return lines


def result_document(result: CheckResult) -> dict[str, Any]:
    """Return the check's verdict as JSON."""
    return {
        "failed": result.failed,
        "new": [
            _entry(f) | {"message": f.message, "advice": f.advice} for f in result.new
        ],
        "accepted": [_entry(f) for f in result.accepted],
        "over_budget": [
            {"context": b.context, "statements": b.statements, "limit": b.limit}
            for b in result.budget
        ],
    }


def _entry(finding: Finding, profile: WorkloadProfile | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": finding.kind}
    if finding.fingerprint:
        entry["fingerprint"] = finding.fingerprint
        fp = profile.fingerprints.get(finding.fingerprint) if profile else None
        if fp is not None:
            entry["sql"] = fp.fingerprint.text[:200]
    if finding.table:
        entry["table"] = finding.table
    if finding.columns:
        entry["columns"] = list(finding.columns)
    return entry


def _entry_key(entry: dict[str, Any]) -> tuple[str, ...]:
    if entry.get("fingerprint"):
        return (entry["kind"], str(entry["fingerprint"]))
    columns = ",".join(str(c) for c in entry.get("columns") or []).lower()
    return (entry["kind"], str(entry.get("table") or "").lower(), columns)


def _escape(text: str) -> str:
    """Escape a GitHub annotation message (%, CR and LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
