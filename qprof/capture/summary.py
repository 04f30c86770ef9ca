"""The short summary of a captured test run, and the child process that makes it.

``pytest --qprof`` prints it at the end of the run: statements, the costliest
fingerprints, and the N+1 loops, full scans and unindexed filters found, each
with its tests and the caller line. This module does not import pytest, so the
child (``SummaryWorker``) starts quickly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SUMMARY_KINDS = ("n_plus_one", "full_scan", "unindexed_filter", "automatic_index")
"""The findings the summary lists; the trace holds what ``qprof analyze`` says on the rest."""


def summarize_trace(path: Path, top: int = 5, n_plus_one_min: int = 5) -> list[str]:
    """Return the summary lines of a captured test run's trace at ``path``.

    Plans are taken on an empty replica of the captured schema, so full scans
    count whatever the table's size (``scan_min_rows`` is 0).
    """
    from qprof.analyze import SEVERITIES, Thresholds, analyze_profile
    from qprof.errors import QprofError
    from qprof.loading import profile_trace
    from qprof.report.text import format_duration
    from qprof.trace import has_statement_lines

    try:
        profile = profile_trace(path, None)
    except QprofError as error:
        if not has_statement_lines(path):
            return [
                f"qprof: 0 statements: the tests sent nothing to SQLite; trace: {path}"
            ]
        return [f"qprof: traced to {path}; no analysis: {error}"]
    thresholds = Thresholds(scan_min_rows=0, n_plus_one_min=n_plus_one_min)
    analysis = analyze_profile(
        profile, None, thresholds, kinds=SUMMARY_KINDS, parse_all=False
    )
    contexts = {c for fp in profile.fingerprints.values() for c in fp.contexts if c}
    lines = [
        f"qprof: {profile.statements} statements ({len(profile.fingerprints)} fingerprints) "
        f"in {len(contexts)} tests, {format_duration(profile.total_ns)} in SQLite; "
        f"trace: {path}"
    ]
    if not profile.statements:
        return lines
    lines.append("costliest fingerprints:")
    for fp in profile.costliest()[:top]:
        sql = " ".join(fp.sample_sql.split())[:80]
        lines.append(
            f"  {fp.fingerprint.id}  {fp.count:>5}x  {format_duration(fp.total_ns):>10}  {sql}"
        )
    # Reads first (in a test run, loops of INSERTs are mostly fixtures seeding
    # data), and by severity: a scan the query needs ranks low, after the others.
    findings = sorted(
        analysis.findings,
        key=lambda f: (
            not getattr(
                profile.fingerprints.get(f.fingerprint or ""), "readonly", True
            ),
            SEVERITIES.index(f.severity),
        ),
    )
    lines.append(f"findings ({len(findings)}):" if findings else "findings: none")
    for finding in findings[:top]:
        lines += _finding_lines(profile, finding)
    if len(findings) > top:
        lines.append(f"  ... {len(findings) - top} more: qprof analyze {path}")
    return lines


def _finding_lines(profile: Any, finding: Any) -> list[str]:
    where = finding.table or ""
    if finding.columns:
        where += f"({', '.join(finding.columns)})"
    fp = profile.fingerprints.get(finding.fingerprint) if finding.fingerprint else None
    sql = " ".join((finding.sql or "").split())[:70]
    lines = [f"  {finding.kind} [{finding.severity}] {where}: {sql}"]
    if fp is None:
        return lines
    callers = sorted(fp.callers.items(), key=lambda item: -item[1])
    caller = callers[0][0] if callers else "unknown caller"
    tests = sorted(c for c in fp.contexts if c)
    shown = ", ".join(tests[:3]) + (
        f" and {len(tests) - 3} more" if len(tests) > 3 else ""
    )
    lines.append(f"      {fp.count}x at {caller} in {shown or 'no test'}")
    return lines


class SummaryWorker:
    """A child process that imports the analysis while the tests run.

    The summary needs the profile, the analyzer and sqlglot, a tenth of a second
    or more of imports: the child pays it on another core at the start, then
    waits for the trace's path on its standard input. Whatever goes wrong with
    it, ``summarize`` returns None and the summary is made in this process.
    """

    TIMEOUT_S = 900

    def __init__(self) -> None:
        import os
        import subprocess
        import sys

        import qprof

        package_root = str(Path(qprof.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH")) if p
        )
        self.process: Any = None
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from qprof.capture.summary import serve; serve()",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError:
            self.process = None

    def summarize(self, path: Path, top: int, n_plus_one_min: int) -> list[str] | None:
        """Return the summary lines the child made, or None when it could not."""
        import subprocess

        if self.process is None:
            return None
        import os

        try:
            folder = os.getcwd()
        except OSError:
            return None
        request = {"path": str(path), "cwd": folder, "top": top, "min": n_plus_one_min}
        try:
            out, _ = self.process.communicate(
                json.dumps(request).encode() + b"\n", timeout=self.TIMEOUT_S
            )
            lines = json.loads(out)
        except (subprocess.TimeoutExpired, OSError, ValueError):
            self.close()
            return None
        if self.process.returncode != 0 or not isinstance(lines, list):
            return None
        return [str(line) for line in lines]

    def close(self) -> None:
        """Stop the child if it is still waiting."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def serve() -> None:
    """Run in the ``SummaryWorker`` child: import, wait for a request, answer it."""
    import os
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="qprof-summary-") as folder:
        _warm_up(Path(folder) / "warm-up.jsonl")
    line = sys.stdin.readline()
    if not line:
        return  # the tests' process went away
    request = json.loads(line)
    os.chdir(request["cwd"])  # the path is shown as the tests' process names it
    lines = summarize_trace(Path(request["path"]), request["top"], request["min"])
    sys.stdout.write(json.dumps(lines))
    sys.stdout.flush()
    os._exit(0)  # nothing is left to clean up: skip tearing down what it imported


_WARM_UP = [
    {
        "qprof_schema": {
            "database": ":memory:",
            "connection": 1,
            "sql": ["CREATE TABLE t (id INTEGER PRIMARY KEY, a)"],
        }
    },
    *(
        {
            "sql": "SELECT id FROM t WHERE a = ?",
            "params": [i],
            "context": "warm-up",
            "measured": {"elapsed_ns": 1000, "rows_returned": 0, "rows_changed": 0},
        }
        for i in range(6)
    ),
]


def _warm_up(path: Path) -> None:
    """Summarize a made-up trace once, so that the modules and caches the real
    summary needs are loaded while the tests still run."""
    lines = [json.dumps({"qprof_trace": 1})] + [json.dumps(r) for r in _WARM_UP]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        summarize_trace(path)
    except Exception:  # the real request will meet the same error and report it
        pass
