"""The pytest plugin: ``pytest --qprof[=PATH]`` traces the statements of a test run.

Installed with qprof (entry point ``pytest11``), it adds its options under a
``qprof`` group and does nothing else unless ``--qprof`` is given: then it
starts a capture (``qprof.capture``) for the whole session, labels each
statement with the id of the test that ran it, writes the trace
(``.qprof/trace.jsonl`` by default) and prints a short summary at the end:
statements, the costliest fingerprints, and the N+1 loops, full scans and
unindexed filters found, each with its tests and the caller line. The
analysis runs on an empty replica of the schema the tests created, so test
databases may be gone (in memory, under ``tmp_path``).

With pytest-xdist each worker writes ``trace.<worker id>.jsonl`` and the
controller merges them into the trace at the end.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

DEFAULT_TRACE = ".qprof/trace.jsonl"
SUMMARY_KINDS = ("n_plus_one", "full_scan", "unindexed_filter", "automatic_index")
"""The findings the summary lists; the trace holds what ``qprof analyze`` says on the rest."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--qprof[=PATH]`` and ``--qprof-top`` under a ``qprof`` group."""
    group = parser.getgroup("qprof", "qprof: trace the SQLite statements the tests run")
    group.addoption(
        "--qprof",
        action="store",
        nargs="?",
        const=DEFAULT_TRACE,
        default=None,
        metavar="PATH",
        help=f"Trace every SQLite statement into PATH (default {DEFAULT_TRACE}; "
        "write --qprof=PATH) and print what qprof finds in them.",
    )
    group.addoption(
        "--qprof-top",
        type=int,
        default=5,
        metavar="N",
        help="Fingerprints and findings to list in the qprof summary (default 5).",
    )
    group.addoption(
        "--qprof-fail-on",
        default=None,
        metavar="KINDS",
        help="Fail the test that produced a finding of these kinds (comma-separated, e.g. "
        "n_plus_one), naming the statement and the caller line.",
    )
    group.addoption(
        "--qprof-baseline",
        default=None,
        metavar="FILE",
        help="Findings accepted by this qprof check baseline do not fail tests.",
    )
    group.addoption(
        "--qprof-n-plus-one-min",
        type=int,
        default=5,
        metavar="N",
        help="Repeats of one statement in one test that make an N+1 loop (default 5).",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the capture only when ``--qprof`` is given."""
    path = config.getoption("qprof", None)
    if path is None:
        return
    from qprof.errors import QprofError

    try:
        plugin = QprofPlugin(config, Path(path))
    except QprofError as error:
        raise pytest.UsageError(f"--qprof: {error}") from None
    config.stash[PLUGIN_KEY] = plugin
    config.pluginmanager.register(plugin, "qprof-capture")


class QprofPlugin:
    """The capture of one test session (on ``config.stash``)."""

    def __init__(self, config: pytest.Config, path: Path) -> None:
        from qprof.capture import Tracer

        self.config = config
        self.path = path
        """The merged trace (the controller's, or the only process's)."""
        self.worker: str | None = getattr(config, "workerinput", {}).get("workerid")
        self.is_controller = self.worker is None and bool(
            getattr(config.option, "numprocesses", None)
        )
        trace_path = _worker_path(path, self.worker) if self.worker else path
        # Options are checked before anything starts: a usage error leaves no trace
        # running and no child process behind.
        self.gate = TestGate.from_config(config, trace_path.parent)
        self.tracer: Tracer | None = None
        if not self.is_controller:
            self.tracer = Tracer(trace_path, flush_on_signals=False).start()
        self.summary = SummaryWorker() if self.worker is None else None
        if self.gate is not None and self.tracer is not None and self.tracer.recorder:
            self.gate.recorder = self.tracer.recorder
            self.tracer.recorder.listeners.append(self.gate.take)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Label the statements run by ``item`` (setup, call, teardown) with its id."""
        if self.tracer is not None:
            self.tracer.set_context(item.nodeid)
        try:
            return (yield)
        finally:
            if self.tracer is not None:
                self.tracer.set_context(None)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, Any]:
        """Fail a passing test whose statements hold a finding the team has not accepted."""
        report = yield
        if self.gate is not None and call.when == "call" and report.passed:
            problems = self.gate.problems(item.nodeid)
            if problems:
                report.outcome = "failed"
                report.longrepr = "\n".join(problems)
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the trace out (a worker's before xdist reports it finished)."""
        self.stop()
        if self.is_controller:
            _merge_workers(self.path)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the statements, costliest fingerprints and findings of the run."""
        if self.worker is not None:
            return
        top = self.config.getoption("qprof_top")
        n_plus_one_min = self.config.getoption("qprof_n_plus_one_min")
        terminalreporter.write_sep("=", "qprof")
        lines = None
        if self.summary is not None:
            lines = self.summary.summarize(self.path, top, n_plus_one_min)
        if lines is None:
            try:
                lines = summarize_trace(self.path, top, n_plus_one_min)
            except Exception as error:  # the tests passed or failed on their own
                lines = [
                    f"qprof: traced to {self.path}; the summary failed on an internal "
                    f"error ({type(error).__name__}: {error}); please report it"
                ]
        for line in lines:
            terminalreporter.write_line(line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Stop the capture if the session ended early."""
        self.stop()
        if self.summary is not None:
            self.summary.close()

    def stop(self) -> None:
        """Stop the capture (once)."""
        if self.tracer is not None:
            self.tracer.stop()


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
                    "import qprof.pytest_plugin as p; p.serve_summary()",
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


def serve_summary() -> None:
    """Run in the ``SummaryWorker`` child: import, wait for a request, answer it."""
    import os
    import sys

    import qprof.analyze
    import qprof.loading
    import qprof.report.text  # noqa: F401

    line = sys.stdin.readline()
    if not line:
        return  # the tests' process went away
    request = json.loads(line)
    os.chdir(request["cwd"])  # the path is shown as the tests' process names it
    lines = summarize_trace(Path(request["path"]), request["top"], request["min"])
    sys.stdout.write(json.dumps(lines))
    sys.stdout.flush()


PLUGIN_KEY = pytest.StashKey[QprofPlugin]()


class TestGate:
    """``--qprof-fail-on``: analyse each test's own statements as it ends.

    Records are kept per test id as the tracer takes them; when a test's call
    phase passes, its records (with every schema snapshot seen so far) are
    written to a small trace, profiled on an empty replica and analysed for the
    failing kinds; findings the baseline accepts are let through.
    """

    __test__ = False  # not a test class, whatever its name

    def __init__(
        self, kinds: tuple[str, ...], accepted: set[tuple[str, ...]], folder: Path
    ):
        self.kinds = kinds
        self.accepted = accepted
        self.folder = folder
        self.schemas: list[dict[str, Any]] = []
        self.by_test: dict[str, list[Any]] = {}
        self.recorder: Any = None
        """The capture's recorder, which turns the records kept into trace lines."""
        from qprof.capture.recorder import statement_context

        self._context_of = statement_context

    @classmethod
    def from_config(cls, config: pytest.Config, folder: Path) -> TestGate | None:
        """Return the gate the options ask for, or None without ``--qprof-fail-on``."""
        kinds_text = config.getoption("qprof_fail_on", None)
        if not kinds_text:
            return None
        from qprof.analyze import FINDING_KINDS
        from qprof.check import read_baseline

        kinds = tuple(k.strip() for k in kinds_text.split(",") if k.strip())
        unknown = [k for k in kinds if k not in FINDING_KINDS]
        if unknown:
            raise pytest.UsageError(
                f"--qprof-fail-on: unknown kind {', '.join(unknown)}; "
                f"choose among {', '.join(FINDING_KINDS)}"
            )
        baseline = config.getoption("qprof_baseline", None)
        accepted = read_baseline(baseline) if baseline else set()
        return cls(kinds, accepted, folder)

    def take(self, record: Any) -> None:
        """Keep ``record`` under its test id (a Recorder listener)."""
        if type(record) is not list:
            self.schemas.append(record)
            return
        label = self._context_of(record)
        if label:
            self.by_test.setdefault(label, []).append(record)

    def problems(self, nodeid: str) -> list[str]:
        """Return a line per new finding in the statements of test ``nodeid``."""
        records = self.by_test.pop(nodeid, [])
        if not records:
            return []
        from qprof.analyze import Thresholds, analyze_profile
        from qprof.check import baseline_key
        from qprof.errors import QprofError
        from qprof.loading import profile_trace
        from qprof.trace import TRACE_HEADER_KEY

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "qprof-test.jsonl"
        lines = [json.dumps({TRACE_HEADER_KEY: 1})]
        lines += [self.recorder.line(r).decode() for r in self.schemas + records]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            profile = profile_trace(path, None)
        except QprofError as error:
            return [f"qprof could not analyse this test's statements: {error}"]
        finally:
            path.unlink(missing_ok=True)
        analysis = analyze_profile(profile, None, Thresholds(), kinds=self.kinds)
        found = []
        for finding in analysis.findings:
            if baseline_key(finding) in self.accepted:
                continue
            fp = profile.fingerprints.get(finding.fingerprint or "")
            callers = sorted(fp.callers, key=lambda c: -fp.callers[c]) if fp else []
            found.append(
                f"qprof: new {finding.kind} in this test: {finding.message}\n"
                f"    statement: {' '.join((finding.sql or '').split())[:200]}\n"
                f"    caller: {callers[0] if callers else 'unknown'}\n"
                f"    -> {finding.advice}"
            )
        return found


def summarize_trace(path: Path, top: int = 5, n_plus_one_min: int = 5) -> list[str]:
    """Return the summary lines of a captured test run's trace at ``path``.

    Plans are taken on an empty replica of the captured schema, so full scans
    count whatever the table's size (``scan_min_rows`` is 0).
    """
    from qprof.analyze import Thresholds, analyze_profile
    from qprof.errors import QprofError
    from qprof.loading import profile_trace
    from qprof.report.text import format_duration

    try:
        profile = profile_trace(path, None)
    except QprofError as error:
        if not _has_statements(path):
            return [
                f"qprof: 0 statements: the tests sent nothing to SQLite; trace: {path}"
            ]
        return [f"qprof: traced to {path}; no analysis: {error}"]
    thresholds = Thresholds(scan_min_rows=0, n_plus_one_min=n_plus_one_min)
    analysis = analyze_profile(profile, None, thresholds, kinds=SUMMARY_KINDS)
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
    # Reads first: in a test run, loops of INSERTs are mostly fixtures seeding data.
    findings = sorted(
        analysis.findings,
        key=lambda f: (
            not getattr(profile.fingerprints.get(f.fingerprint or ""), "readonly", True)
        ),
    )
    lines.append(f"findings ({len(findings)}):" if findings else "findings: none")
    for finding in findings[:top]:
        lines += _finding_lines(profile, finding)
    if len(findings) > top:
        lines.append(f"  ... {len(findings) - top} more: qprof analyze {path}")
    return lines


def _has_statements(path: Path) -> bool:
    try:
        with open(path, "rb") as lines:
            return any(line.startswith(b'{"sql"') for line in lines)
    except OSError:
        return False


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


def _worker_path(path: Path, worker: str) -> Path:
    return path.with_name(f"{path.stem}.{worker}{path.suffix}")


def _merge_workers(path: Path) -> None:
    """Concatenate the workers' traces into ``path`` (one header) and remove them.

    Each worker's part starts with a ``qprof_part`` record naming the worker and
    its process: connection numbers are unique within a process only.
    """
    parts = sorted(path.parent.glob(f"{path.stem}.gw*{path.suffix}"))
    if not parts:
        return
    from qprof.trace import TRACE_HEADER_KEY

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        header = {TRACE_HEADER_KEY: 1, "created_by": "qprof pytest (xdist)"}
        out.write(json.dumps(header).encode() + b"\n")
        for part in parts:
            worker = part.name[len(path.stem) + 1 : -len(path.suffix) or None]
            with open(part, "rb") as lines:
                for line in lines:
                    if line.startswith(b'{"' + TRACE_HEADER_KEY.encode() + b'"'):
                        first = json.loads(line)
                        record = {"worker": worker, "pid": first.get("pid")}
                        line = json.dumps({"qprof_part": record}).encode()
                    out.write(line if line.endswith(b"\n") else line + b"\n")
            part.unlink()
