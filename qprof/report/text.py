"""The terminal report: a summary line, then the costliest fingerprints.

Each fingerprint takes three lines: its numbers, its SQL and its plan, cut to
the terminal's width so nothing wraps.
"""

from __future__ import annotations

import textwrap

from qprof.plan import plan_summary
from qprof.profile import FingerprintProfile, WorkloadProfile

_HEADER = (
    f"{'#':>3}  {'fingerprint':<12}  {'count':>7}  {'total':>9}  {'share':>6}  "
    f"{'mean':>9}  {'p95':>9}  {'vm steps':>9}  {'rows':>8}"
)


def render_text(profile: WorkloadProfile, top: int = 10, width: int = 100) -> str:
    """Return the report of ``profile``'s ``top`` costliest fingerprints.

    ``width`` is the terminal width the SQL and plan lines are cut to.
    """
    lines = [textwrap.fill(part, width) for part in _summary(profile).split("\n")] + [
        ""
    ]
    costliest = profile.costliest()[:top]
    if costliest:
        lines.append(f"Costliest fingerprints by total time (top {len(costliest)}):")
        lines.append(_HEADER)
        for rank, fp in enumerate(costliest, 1):
            lines += _fingerprint_lines(profile, rank, fp, width)
    lines += _error_lines(profile, width)
    return "\n".join(lines) + "\n"


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
    where = (
        "on a snapshot copy (the workload writes; the original is untouched)"
        if profile.mode == "snapshot"
        else "on the original, opened read-only"
    )
    text = (
        f"Replayed {profile.statements:,} statements ({len(profile.fingerprints):,} fingerprints) "
        f"from {profile.workload} [{profile.format}] against {profile.database} {where}.\n"
        f"Measured time {format_duration(profile.total_ns)}, {format_count(profile.vm_step)} "
        f"VM steps; {profile.error_count:,} failed statements; "
        f"{profile.skipped_lines:,} skipped lines."
    )
    if profile.repeat > 1:
        text += f" Read statements ran {profile.repeat} times (median kept)."
    return text


def _fingerprint_lines(
    profile: WorkloadProfile, rank: int, fp: FingerprintProfile, width: int
) -> list[str]:
    numbers = (
        f"{rank:>3}  {fp.fingerprint.id:<12}  {fp.count:>7,}  {format_duration(fp.total_ns):>9}  "
        f"{profile.share(fp):>6.1%}  {format_duration(fp.mean_ns):>9}  "
        f"{format_duration(fp.percentile_ns(95)):>9}  {format_count(fp.vm_step):>9}  "
        f"{format_count(fp.rows_returned + fp.rows_changed):>8}"
    )
    sql = " ".join(fp.fingerprint.text.split())
    lines = [numbers, "     " + _cut(sql, width - 5)]
    if fp.plan:
        varies = " (plan differs between values)" if fp.plan_varies else ""
        lines.append(
            "     plan: " + plan_summary(fp.plan, width - 11 - len(varies)) + varies
        )
    if fp.errors:
        lines.append(f"     {fp.errors:,} of {fp.count:,} failed")
    return lines


def _error_lines(profile: WorkloadProfile, width: int) -> list[str]:
    lines: list[str] = []
    if profile.errors:
        lines += ["", f"Failed statements ({profile.error_count:,}; the first ones):"]
        for error in profile.errors[:5]:
            lines.append(_cut(f"  {error.location}: {error.error}", width))
    if profile.skipped:
        lines += ["", f"Skipped lines ({profile.skipped_lines:,}; the first ones):"]
        for message in profile.skipped[:5]:
            lines.append(_cut(f"  {message}", width))
    return lines


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"
