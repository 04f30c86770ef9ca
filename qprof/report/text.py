"""The terminal report: a summary line, then the costliest fingerprints.

Each fingerprint takes three lines: its numbers, its SQL and its plan, cut to
the terminal's width so nothing wraps.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

from qprof.analyze import Analysis
from qprof.plan import plan_summary
from qprof.profile import FingerprintProfile, WorkloadProfile
from qprof.recommend import RecommendationSet

# (header, width, value) per column; the optional ones go first when the
# terminal is narrow, from the end of this list.
_COLUMNS: list[
    tuple[str, int, Callable[[WorkloadProfile, FingerprintProfile], str]]
] = [
    ("count", 7, lambda w, fp: f"{fp.count:,}"),
    ("total", 9, lambda w, fp: format_duration(fp.total_ns)),
    ("share", 6, lambda w, fp: f"{w.share(fp):.1%}"),
    ("mean", 9, lambda w, fp: format_duration(fp.mean_ns)),
    ("p95", 9, lambda w, fp: format_duration(fp.percentile_ns(95))),
    ("vm steps", 9, lambda w, fp: format_count(fp.vm_step)),
    ("rows", 8, lambda w, fp: format_count(fp.rows_returned + fp.rows_changed)),
]
_REQUIRED = 3
_LEAD = 3 + 2 + 12


def render_text(
    profile: WorkloadProfile,
    top: int = 10,
    width: int = 100,
    analysis: Analysis | None = None,
    recommended: RecommendationSet | None = None,
) -> str:
    """Return the report of ``profile``'s ``top`` costliest fingerprints and findings.

    ``width`` is the terminal width; columns that do not fit are left out and
    SQL and plan lines are cut, so that nothing wraps.
    """
    lines = [textwrap.fill(part, width) for part in _summary(profile).split("\n")]
    lines.append("")
    costliest = profile.costliest()[:top]
    if costliest:
        columns = _fitting_columns(width)
        lines.append(f"Costliest fingerprints by total time (top {len(costliest)}):")
        lines.append(_row("#", "fingerprint", [(c[0], c[1]) for c in columns]))
        for rank, fp in enumerate(costliest, 1):
            lines += _fingerprint_lines(profile, rank, fp, width, columns)
    if analysis is not None:
        lines += _finding_lines(analysis, top, width)
    if recommended is not None:
        lines += _recommendation_lines(recommended, width)
    lines += _error_lines(profile, width)
    return "\n".join(lines) + "\n"


def plural(count: int, word: str) -> str:
    """Return ``count`` and ``word``, with an s when the count is not one.

    >>> plural(1, "statement"), plural(2_000, "line")
    ('1 statement', '2,000 lines')
    """
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def format_duration(ns: int) -> str:
    """Return ``ns`` nanoseconds in a readable unit.

    >>> format_duration(1_234_567), format_duration(41_000), format_duration(2_500_000_000)
    ('1.23 ms', '41.0 µs', '2.50 s')
    """
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.1f} µs"


def format_count(n: int) -> str:
    """Return ``n`` shortened with k/M/G, e.g. ``12.3M``."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size * 10:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _summary(profile: WorkloadProfile) -> str:
    counted = (
        f"{plural(profile.statements, 'statement')} "
        f"({plural(len(profile.fingerprints), 'fingerprint')}) from {profile.workload} "
        f"[{profile.format}]"
    )
    if profile.mode.startswith("trace"):
        # Nothing ran: the measurements are the trace's own (replay --out, capture).
        where = (
            "plans taken on an empty replica of the captured schema (no rows, no statistics)"
            if "replica" in profile.mode
            else f"plans taken on {profile.database}"
        )
        head = f"Read {counted} with the measurements the trace recorded; {where}."
    else:
        where = (
            "on a snapshot copy (the workload writes; the original is untouched)"
            if profile.mode == "snapshot"
            else "on the original, opened read-only"
        )
        head = f"Replayed {counted} against {profile.database} {where}."
    steps = f"{format_count(profile.vm_step)} VM steps"
    if not profile.vm_step and profile.mode.startswith("trace") and profile.statements:
        steps = "no VM step counts in the trace (stdlib sqlite3 capture records none)"
    text = (
        f"{head}\n"
        f"Measured time {format_duration(profile.total_ns)}, {steps}; "
        f"{plural(profile.error_count, 'failed statement')}; "
        f"{plural(profile.skipped_lines, 'skipped line')}."
    )
    if not profile.statements:
        text += " The workload held no statement: is it the right file and --format?"
    if profile.repeat > 1:
        text += f" Read statements ran {profile.repeat} times (median kept)."
    return text


def _fitting_columns(width: int) -> list:  # type: ignore[type-arg]
    columns = list(_COLUMNS)
    while len(columns) > _REQUIRED and _LEAD + sum(c[1] + 2 for c in columns) > width:
        columns.pop()
    return columns


def _row(rank: str, fingerprint: str, cells: list[tuple[str, int]]) -> str:
    return f"{rank:>3}  {fingerprint:<12}" + "".join(
        f"  {text:>{size}}" for text, size in cells
    )


def _fingerprint_lines(
    profile: WorkloadProfile,
    rank: int,
    fp: FingerprintProfile,
    width: int,
    columns: list,  # type: ignore[type-arg]
) -> list[str]:
    cells = [(value(profile, fp), size) for _, size, value in columns]
    sql = " ".join(fp.fingerprint.text.split())
    lines = [_row(str(rank), fp.fingerprint.id, cells), "     " + _cut(sql, width - 5)]
    if fp.plan:
        varies = " (plan differs between values)" if fp.plan_varies else ""
        summary = plan_summary(fp.plan, max(10, width - 11 - len(varies)))
        lines.append(_cut("     plan: " + summary + varies, width))
    if fp.errors:
        lines.append(f"     {fp.errors:,} of {fp.count:,} failed")
    return lines


def _finding_lines(analysis: Analysis, top: int, width: int) -> list[str]:
    lines = [""]
    if not analysis.findings:
        lines.append("Findings: none.")
    else:
        shown = analysis.findings[:top]
        lines.append(
            f"Findings ({len(analysis.findings):,}; the {len(shown)} costliest, "
            "share of measured time):"
        )
    for rank, finding in enumerate(analysis.findings[:top], 1):
        where = finding.table or ""
        if finding.columns:
            where += "(" + ", ".join(finding.columns) + ")"
        head = f"{rank:>3}  {finding.kind} [{finding.severity}] {where}"
        share = f"{finding.time_share:.1%}"
        lines.append(
            _cut(head, width - len(share) - 2).ljust(width - len(share)) + share
        )
        for text in (finding.message, "-> " + finding.advice):
            lines += textwrap.wrap(
                text, width, initial_indent="     ", subsequent_indent="     "
            )
        parent = finding.evidence.get("parent_sql")
        if parent:
            found = finding.evidence.get("values_found_in_parent_rows")
            proof = (
                f" ({found['found']} of {found['checked']} in its rows)"
                if found
                else ""
            )
            lines.append(
                _cut(f"     values from{proof}: {' '.join(parent.split())}", width)
            )
        callers = finding.evidence.get("callers")
        if callers:
            lines.append(_cut("     caller: " + ", ".join(callers[:3]), width))
    notes = []
    if analysis.unparsed:
        notes.append(
            f"{plural(analysis.unparsed, 'fingerprint')} could not be parsed; "
            "only plan-based detectors looked at them"
        )
    for name, error in analysis.failed.items():
        notes.append(f"the {name} detector failed ({error})")
    for note in notes:
        lines.append(_cut(f"Note: {note}.", width))
    return lines


def _recommendation_lines(result: RecommendationSet, width: int) -> list[str]:
    lines = [""]
    picks = result.recommendations
    sample = ""
    if result.sample_fraction is not None:
        sample = f", on a sample of {result.sample_fraction:.0%} of the rows"
    if not picks:
        tried = plural(result.candidates, "candidate")
        lines.append(
            f"Recommended indexes: none ({tried} measured{sample}; --json lists why each "
            "was left out)."
        )
        return lines
    lines += textwrap.wrap(
        f"Recommended indexes ({len(picks)}; measured on a scratch copy{sample}, VM steps "
        "weighted by how often each statement runs):",
        width,
    )
    baseline = result.baseline_vm or 1.0
    for pick in picks:
        lines += textwrap.wrap(
            pick.ddl,
            width,
            initial_indent=f"{pick.rank:>3}  ",
            subsequent_indent="       ",
        )
        detail = (
            f"saves {format_count(round(pick.vm_saving))} VM steps "
            f"({pick.net_vm / baseline:.1%} of the workload, net) and "
            f"{_time_change(pick.ns_saving)} on "
            f"{plural(len(pick.served), 'statement shape')}; adds "
            f"{format_count(round(pick.write_vm))} VM steps and "
            f"{format_duration(round(pick.write_ns))} to writes; {format_bytes(pick.size_bytes)}"
        )
        if pick.statistics == "after ANALYZE" and pick.kind != "statistics":
            detail += "; assumes ANALYZE"
        if pick.vm_saving_other_statistics is not None:
            state = pick.other_statistics
            if state == "none":
                state = "without statistics"
            detail += (
                f" ({format_count(round(pick.vm_saving_other_statistics))} {state})"
            )
        if pick.replaces:
            detail += f"; makes {', '.join(pick.replaces)} redundant"
        lines += textwrap.wrap(
            detail, width, initial_indent="     ", subsequent_indent="     "
        )
        for served in pick.served[:2]:
            before = " | ".join(line.strip() for line in served.plan_before) or "-"
            after = " | ".join(line.strip() for line in served.plan_after) or "-"
            lines.append(_cut(f"     {served.fingerprint}: {before}", width))
            lines.append(_cut(f"       now: {after}", width))
            if served.rewritten:
                lines.append(
                    _cut(f"       (measured with {served.rewritten} removed)", width)
                )
    curve = " -> ".join(
        f"{format_count(round(p.workload_vm_after))} ({format_bytes(p.storage_after)})"
        for p in sorted(picks, key=lambda p: p.pick)
    )
    lines += textwrap.wrap(
        f"Workload VM steps after each pick (storage): {format_count(round(result.baseline_vm))} "
        f"-> {curve}",
        width,
    )
    return lines


def _time_change(saved_ns: float) -> str:
    """Return a time saved, or the time lost when the saving is negative."""
    if saved_ns >= 0:
        return format_duration(round(saved_ns))
    return f"(costs {format_duration(round(-saved_ns))} more in time)"


def format_bytes(size: int) -> str:
    """Return ``size`` in KB or MB.

    >>> format_bytes(2_215_936)
    '2.1 MB'
    """
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB"
    return f"{size / 1024:.0f} KB"


def _error_lines(profile: WorkloadProfile, width: int) -> list[str]:
    lines: list[str] = []
    if profile.errors:
        lines += ["", f"Failed statements ({profile.error_count:,}; the first ones):"]
        for error in profile.errors[:5]:
            caller = f" (from {error.caller})" if error.caller else ""
            lines.append(_cut(f"  {error.location}{caller}: {error.error}", width))
    if profile.skipped:
        lines += ["", f"Skipped lines ({profile.skipped_lines:,}; the first ones):"]
        for message in profile.skipped[:5]:
            lines.append(_cut(f"  {message}", width))
    return lines


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"
