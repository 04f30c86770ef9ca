"""The HTML report: one self-contained file, plots embedded as base64 PNG.

No script, no external stylesheet, font or image: the file opens offline and
sends no request. Every text from the workload is escaped.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qprof import __version__
from qprof.frames import Profile
from qprof.report.output import write_report_file
from qprof.report.text import format_count, format_duration

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.9em; }
pre { background: #f6f6f6; padding: 0.75em; overflow-x: auto; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
.high { color: #b00; } .medium { color: #a60; } .low { color: #666; }
"""


def render_html(profile: Profile, top: int = 10) -> str:
    """Return the HTML report of ``profile``: totals, fingerprints, findings, indexes, plots."""
    from qprof import plots

    workload = profile.workload
    # Limitation: static tables of the ``top`` rows and 96 dpi PNG plots; no zoom or filter.
    title = f"qprof report: {workload.workload}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p>Replayed against <code>{_e(workload.database)}</code> ({_e(workload.mode)}) "
        f"by qprof {_e(__version__)}.</p>",
        _summary(profile),
        "<h2>Costliest fingerprints</h2>",
        _fingerprints(profile, top),
        _figure(plots.plot_pareto, profile, (10, 4.5), "Cost Pareto of fingerprints"),
    ]
    if not profile.statements.empty:
        parts.append(
            _figure(
                plots.plot_time_distribution,
                profile,
                (10, 4.5),
                "Time per statement of the costliest fingerprints",
            )
        )
    parts.append(_figure(plots.plot_plan_kinds, profile, (8, 3.5), "Time by plan step"))
    if profile.analysis is not None:
        parts += ["<h2>Findings</h2>", _findings(profile, top)]
        if not profile.loops.empty and not profile.statements.empty:
            parts.append(
                _figure(
                    plots.plot_n_plus_one, profile, (10, 4), "The costliest N+1 loop"
                )
            )
    if profile.recommended is not None:
        parts += ["<h2>Recommended indexes</h2>", _recommendations(profile)]
        if not profile.served.empty:
            parts.append(
                _figure(
                    plots.plot_before_after,
                    profile,
                    (10, 4.5),
                    "Measured before and after",
                )
            )
        if len(profile.curve) > 1:
            parts.append(
                _figure(
                    plots.plot_cost_vs_storage, profile, (8, 4.5), "Cost versus storage"
                )
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(profile: Profile, path: str | Path, top: int = 10) -> Path:
    """Write the HTML report to ``path``; raises ``OutputError`` when it cannot."""
    return write_report_file(path, render_html(profile, top))


def _summary(profile: Profile) -> str:
    workload = profile.workload
    return _table(
        [
            "statements",
            "fingerprints",
            "measured time",
            "VM steps",
            "failed",
            "findings",
        ],
        [
            [
                f"{workload.statements:,}",
                f"{len(workload.fingerprints):,}",
                format_duration(workload.total_ns),
                format_count(workload.vm_step),
                f"{workload.error_count:,}",
                f"{len(profile.findings):,}",
            ]
        ],
        numeric=range(6),
    )


def _fingerprints(profile: Profile, top: int) -> str:
    rows = [
        [
            str(rank),
            _code(row.fingerprint),
            f"{row.count:,}",
            format_duration(int(row.total_ns)),
            f"{row.share:.1%}",
            format_duration(int(row.mean_ns)),
            format_duration(int(row.p95_ns)),
            format_count(int(row.vm_step)),
            _code(row.sql) + f"<br><small>{_e(row.plan)}</small>",
        ]
        for rank, row in enumerate(profile.fingerprints.head(top).itertuples(), 1)
    ]
    header = [
        "#",
        "fingerprint",
        "count",
        "total",
        "share",
        "mean",
        "p95",
        "VM steps",
        "SQL",
    ]
    return _table(header, rows, numeric=range(2, 8), escaped=True)


def _findings(profile: Profile, top: int) -> str:
    frame = profile.findings
    if frame.empty:
        return "<p>None.</p>"
    rows = [
        [
            str(rank),
            _code(row.kind),
            f'<span class="{_e(row.severity)}">{_e(row.severity)}</span>',
            _code(row.fingerprint) if isinstance(row.fingerprint, str) else "",
            _e(_where(row.table, row.columns)),
            f"{row.time_share:.1%}",
            f"{_e(row.message)}<br><small>{_e(row.advice)}</small>",
        ]
        for rank, row in enumerate(frame.head(top).itertuples(), 1)
    ]
    header = ["#", "kind", "severity", "fingerprint", "table(columns)", "share", "what"]
    note = f"<p>{len(frame)} findings; the {len(rows)} costliest:</p>"
    return note + _table(header, rows, numeric=[5], escaped=True)


def _recommendations(profile: Profile) -> str:
    frame = profile.recommendations
    if frame.empty:
        return "<p>None: no candidate was measured to pay.</p>"
    rows = [
        [
            str(row.rank),
            _code(row.name),
            f"{row.saving_pct:.1f}%",
            format_count(int(row.net_vm_saving)),
            format_duration(int(row.saving_ns)),
            f"{row.size_bytes / 1024:,.0f} KiB",
        ]
        for row in frame.itertuples()
    ]
    header = ["#", "index", "saves (VM steps)", "net VM steps", "time saved", "size"]
    ddl = "\n".join(str(statement) for statement in frame["ddl"])
    return (
        _table(header, rows, numeric=range(2, 6), escaped=True)
        + f"<p>Measured on a scratch copy; nothing was applied. Run:</p><pre>{_e(ddl)}</pre>"
    )


def _figure(
    draw: Callable[..., Any], profile: Profile, size: tuple[float, float], alt: str
) -> str:
    """Draw one plot on a figure of its own and return it as an ``<img>`` data URI."""
    # A Figure made without pyplot renders with Agg whatever backend is active.
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, layout="constrained")
    draw(profile, ax=figure.subplots())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: Any = (),
    escaped: bool = False,
) -> str:
    right = set(numeric)
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for column, cell in enumerate(row):
            text = cell if escaped else _e(cell)
            css = ' class="n"' if column in right else ""
            cells.append(f"<td{css}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _where(table: object, columns: object) -> str:
    if not isinstance(table, str):
        return ""
    return f"{table}({columns})" if isinstance(columns, str) and columns else table


def _code(text: object) -> str:
    return f"<code>{_e(text)}</code>"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
