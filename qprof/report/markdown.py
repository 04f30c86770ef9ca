"""The Markdown report: a summary fit for a pull-request comment, tables first.

It opens with a one-row table of the workload's totals, then the costliest
fingerprints, the findings and the recommended DDL in a ``sql`` block. Cells
have their ``|`` escaped and their SQL cut, so a table stays one line a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from qprof.frames import Profile
from qprof.report.output import write_report_file
from qprof.report.text import format_count, format_duration


def render_markdown(profile: Profile, top: int = 10) -> str:
    """Return the Markdown report of ``profile``: totals, fingerprints, findings, DDL."""
    workload = profile.workload
    lines = _table(
        [
            "statements",
            "fingerprints",
            "measured time",
            "VM steps",
            "findings",
            "indexes",
        ],
        [
            [
                f"{workload.statements:,}",
                f"{len(workload.fingerprints):,}",
                format_duration(workload.total_ns),
                format_count(workload.vm_step),
                f"{len(profile.findings):,}",
                f"{len(profile.recommendations):,}",
            ]
        ],
    )
    lines += [
        "",
        f"qprof replayed `{workload.workload}` against `{workload.database}` "
        f"({workload.mode}).",
        "",
    ]
    lines += _fingerprints(profile, top)
    lines += _findings(profile, top)
    lines += _recommendations(profile)
    return "\n".join(lines) + "\n"


def write_markdown(profile: Profile, path: str | Path, top: int = 10) -> Path:
    """Write the Markdown report to ``path``; raises ``OutputError`` when it cannot."""
    return write_report_file(path, render_markdown(profile, top))


def _fingerprints(profile: Profile, top: int) -> list[str]:
    frame = profile.fingerprints.head(top)
    if frame.empty:
        return []
    rows = [
        [
            str(rank),
            f"`{row.fingerprint}`",
            f"{row.count:,}",
            format_duration(int(row.total_ns)),
            f"{row.share:.1%}",
            format_duration(int(row.p95_ns)),
            format_count(int(row.vm_step)),
            f"`{_cut(str(row.sql), 80)}`",
        ]
        for rank, row in enumerate(frame.itertuples(), 1)
    ]
    header = ["#", "fingerprint", "count", "total", "share", "p95", "VM steps", "SQL"]
    return [
        f"### Costliest fingerprints (top {len(frame)})",
        "",
        *_table(header, rows),
        "",
    ]


def _findings(profile: Profile, top: int) -> list[str]:
    frame = profile.findings
    if frame.empty:
        return ["### Findings", "", "None.", ""] if profile.analysis else []
    rows = [
        [
            str(rank),
            f"`{row.kind}`",
            str(row.severity),
            f"`{row.fingerprint}`" if isinstance(row.fingerprint, str) else "",
            _where(row.table, row.columns),
            f"{row.time_share:.1%}",
            _cut(str(row.message), 140),
        ]
        for rank, row in enumerate(frame.head(top).itertuples(), 1)
    ]
    header = ["#", "kind", "severity", "fingerprint", "table(columns)", "share", "what"]
    title = f"### Findings ({len(frame)}; the {len(rows)} costliest)"
    return [title, "", *_table(header, rows), ""]


def _recommendations(profile: Profile) -> list[str]:
    frame = profile.recommendations
    if frame.empty:
        return (
            ["### Recommended indexes", "", "None.", ""] if profile.recommended else []
        )
    rows = [
        [
            str(row.rank),
            f"`{row.name}`",
            f"{row.saving_pct:.1f}%",
            format_count(int(row.net_vm_saving)),
            format_duration(int(row.saving_ns)),
            f"{row.size_bytes / 1024:,.0f} KiB",
        ]
        for row in frame.itertuples()
    ]
    header = ["#", "index", "saves (VM steps)", "net VM steps", "time saved", "size"]
    ddl = [str(statement) for statement in frame["ddl"]]
    return [
        "### Recommended indexes (measured on a scratch copy)",
        "",
        *_table(header, rows),
        "",
        "```sql",
        *ddl,
        "```",
        "",
    ]


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join(" --- " for _ in header) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _where(table: object, columns: object) -> str:
    if not isinstance(table, str):
        return ""
    return f"{table}({columns})" if isinstance(columns, str) and columns else table


def _cut(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
