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
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

DEFAULT_TRACE = ".qprof/trace.jsonl"


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
        if config.getoption("qprof_fail_on", None) or config.getoption(
            "qprof_baseline", None
        ):
            raise pytest.UsageError("--qprof-fail-on and --qprof-baseline need --qprof")
        return
    if config.getoption("qprof_top") < 1:
        raise pytest.UsageError("--qprof-top: give 1 or more")
    if config.getoption("qprof_n_plus_one_min") < 2:
        raise pytest.UsageError("--qprof-n-plus-one-min: give 2 or more")
    if config.getoption("qprof_baseline", None) and not config.getoption(
        "qprof_fail_on", None
    ):
        raise pytest.UsageError(
            "--qprof-baseline: the baseline is for --qprof-fail-on; give that too"
        )
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
        self.earlier_parts: dict[Path, tuple[int, int, int]] = {}
        """The workers' part files an earlier run left (not merged into this one)."""
        if self.is_controller:
            from qprof.capture.parts import existing_parts

            _check_writable(path)  # before the workers each fail on it
            self.earlier_parts = existing_parts(path)
        else:
            self.tracer = Tracer(trace_path, flush_on_signals=False).start()
        from qprof.capture.summary import SummaryWorker

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
            _merge_workers(self.path, self.earlier_parts)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the statements, costliest fingerprints and findings of the run."""
        if self.worker is not None:
            return
        top = self.config.getoption("qprof_top")
        n_plus_one_min = self.config.getoption("qprof_n_plus_one_min")
        from qprof.capture import summary

        terminalreporter.write_sep("=", "qprof")
        if self.tracer is not None and self.tracer.inert_under is not None:
            terminalreporter.write_line(
                f"qprof: qprof run traces this test run into {self.tracer.inert_under}; "
                "its analysis follows the run"
            )
            return
        lines = None
        if self.summary is not None:
            lines = self.summary.summarize(self.path, top, n_plus_one_min)
        if lines is None:
            try:
                lines = summary.summarize_trace(self.path, top, n_plus_one_min)
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
        # One file per process: pytest-xdist workers share the folder.
        path = self.folder / f"qprof-test.{os.getpid()}.jsonl"
        lines = [json.dumps({TRACE_HEADER_KEY: 1})]
        lines += [self.recorder.line(r).decode() for r in self.schemas]
        lines += [self.recorder.whole_line(r).decode() for r in records]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.recorder.paused = True  # the analysis' own connections are not the test's
        try:
            profile = profile_trace(path, None)
            analysis = analyze_profile(profile, None, Thresholds(), kinds=self.kinds)
        except QprofError as error:
            return [f"qprof could not analyse this test's statements: {error}"]
        finally:
            self.recorder.paused = False
            path.unlink(missing_ok=True)
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


def _worker_path(path: Path, worker: str) -> Path:
    return path.with_name(f"{path.stem}.{worker}{path.suffix}")


def _merge_workers(path: Path, earlier: dict[Path, tuple[int, int, int]]) -> None:
    """Merge the workers' traces into ``path`` (one header) and remove them.

    Each worker's part starts with a ``qprof_part`` record naming the worker and
    its process.
    """
    # Limitation: connection numbers are unique within a worker's process only.
    from qprof.capture.parts import merge_parts

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        merge_parts(path, "qprof pytest (xdist)", earlier=earlier)
    except OSError as error:
        import warnings

        warnings.warn(
            f"qprof: could not merge the workers' traces into {path}: {error}",
            stacklevel=2,
        )


def _check_writable(path: Path) -> None:
    """Raise ``OutputError`` unless a trace can be written at ``path``."""
    from qprof.errors import OutputError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as file:
            file.write(b"")
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        raise OutputError(path, error.strerror or str(error)) from None
