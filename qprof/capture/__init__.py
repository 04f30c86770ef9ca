"""Capture: trace the statements an application sends to SQLite, in-process.

``with qprof.trace("trace.jsonl"):`` traces every apsw and ``sqlite3``
connection opened inside the block (SQLAlchemy and Django over ``sqlite3``
included) and writes a qprof trace whose records carry their measurements
under ``measured``, so ``qprof analyze trace.jsonl`` reads them without
replaying. ``qprof.context("label")`` labels the statements run inside it;
``qprof.capture.attach(connection)`` traces a connection opened before.

Only cheap bookkeeping happens per statement (two clocks, a caller looked up
by code object and bytecode offset, a small list appended to a buffer); JSON is
written in batches, and fingerprints, plans and parsing wait until the analysis
after the run.
"""

from __future__ import annotations

import atexit
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qprof.capture import stdlib
from qprof.capture.parts import existing_parts, merge_parts, part_path
from qprof.capture.recorder import (
    Recorder,
    context_label,
    install_signal_flush,
    restore_signals,
)
from qprof.errors import QprofError

log = logging.getLogger(__name__)

TRACE_ENV = "QPROF_TRACE"
"""``qprof run`` passes the trace path to the traced program in this variable."""
TRACE_OWNER_ENV = "QPROF_TRACE_OWNER"
"""The process id of the one writing ``$QPROF_TRACE`` itself (set by that process)."""
DEFAULT_PATH = "qprof-trace.jsonl"

_active: Tracer | None = None

__all__ = ["CaptureError", "Tracer", "attach", "context", "trace"]


class CaptureError(QprofError):
    """A capture that cannot start (one is running already) or attach (none is)."""


class Tracer:
    """Trace every SQLite connection opened while it runs into a qprof trace.

    Use as a context manager, or call ``start`` and ``stop``. Nothing it does
    raises into the application once started: failures are counted in
    ``failures`` and reported (a warning, and the trace's closing record).
    """

    def __init__(
        self,
        path: str | Path = DEFAULT_PATH,
        *,
        context: str | None = None,
        counters: bool = True,
        flush_on_signals: bool = True,
    ) -> None:
        self.path = Path(path)
        """The trace file."""
        self.context = context
        """The label of statements run outside any ``qprof.context`` block."""
        self.counters = counters
        """Take apsw's statement counters (a C-level PROFILE callback)."""
        self.flush_on_signals = flush_on_signals
        self.from_environment = False
        """Started by ``qprof run``'s sitecustomize (for the whole process)."""
        self.lazy_file = False
        """Create the trace file only when a first statement is written."""
        self.inert_under: Path | None = None
        """The trace of ``qprof run`` that records instead of this one, if any."""
        self._pid = os.getpid()
        self.recorder: Recorder | None = None
        self._signals: list[tuple[int, Any]] = []
        self._earlier_parts: dict[Path, tuple[int, int, int]] = {}
        """Part files there were when the trace began (an earlier run's)."""

    @property
    def statements(self) -> int:
        """Statements recorded so far."""
        return self.recorder.statements if self.recorder else 0

    @property
    def failures(self) -> int:
        """Statements or schema snapshots the tracer could not record."""
        return self.recorder.failures if self.recorder else 0

    def set_context(self, label: str | None) -> None:
        """Label the statements run from now on outside a ``qprof.context`` block."""
        self.context = label
        if self.recorder is not None:
            self.recorder.default_context = label

    def start(self) -> Tracer:
        """Create the trace file and trace connections opened from now on.

        Raises ``CaptureError`` when another trace is running, and
        ``OutputError`` when the file cannot be created.
        """
        global _active
        if _active is not None and _active.from_environment:
            # The program's own trace, under qprof run: qprof run's trace records
            # its statements; this one gets a header only (no error for the app).
            log.warning(
                "qprof: qprof run traces this process into %s; %s gets no statements",
                _active.path,
                self.path,
            )
            Recorder(self.path, self.context, pid=os.getpid()).close()
            self.inert_under = _active.path
            return self
        if _active is not None:
            raise CaptureError(
                f"a trace into {_active.path} is running already; stop it first"
            )
        self._earlier_parts = existing_parts(self.path)
        self.recorder = Recorder(
            self.path, self.context, lazy=self.lazy_file, pid=os.getpid()
        )
        self._pid = os.getpid()
        stdlib.install(self.recorder)
        _install_apsw(self.recorder, self.counters)
        if self.flush_on_signals:
            self._signals = install_signal_flush(self.recorder)
        _active = self
        return self

    def stop(self) -> None:
        """Snapshot the schemas of connections still open, write out and close the trace."""
        global _active
        recorder = self.recorder
        if recorder is None or recorder.closed:
            return
        stdlib.uninstall()
        _uninstall_apsw()
        recorder.close()  # before the handlers go: a SIGTERM now still flushes
        restore_signals(self._signals)
        self._signals = []
        if _active is self:
            _active = None
        if not self.from_environment and os.getpid() == self._pid:
            # Written by processes forked meanwhile (not those an earlier run left).
            merge_parts(self.path, earlier=self._earlier_parts)
        if recorder.failures:
            log.warning(
                "qprof: %d statements could not be traced (last: %s)",
                recorder.failures,
                recorder.last_failure,
            )
        if recorder.statements and not recorder.path.exists():
            log.warning(
                "qprof: %s was removed while tracing: its %d statements are lost",
                recorder.path,
                recorder.statements,
            )

    def __enter__(self) -> Tracer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def trace(
    path: str | Path = DEFAULT_PATH,
    *,
    context: str | None = None,
    counters: bool = True,
) -> Tracer:
    """Return a tracer writing to ``path``; use it as ``with qprof.trace(path):``.

    ``context`` labels the statements run outside a ``qprof.context`` block;
    ``counters=False`` skips apsw's statement counters (``vm_step`` and the
    like), the costliest part of tracing apsw.
    """
    return Tracer(path, context=context, counters=counters)


@contextmanager
def context(label: str) -> Iterator[None]:
    """Label the statements run inside the block (in this thread or task) ``label``."""
    # Limitation: threads started inside the block do not inherit the label (contextvars).
    token = context_label.set(label)
    try:
        yield
    finally:
        context_label.reset(token)


def attach(connection: Any, tracer: Tracer | None = None) -> None:
    """Trace ``connection`` (apsw or ``sqlite3``), opened before the trace started.

    Raises ``CaptureError`` when no trace is running or for a plain
    ``sqlite3.Connection`` (only subclasses can be switched in place), and
    ``TypeError`` for an object that is neither kind of connection.
    """
    tracer = tracer or _active
    if tracer is None or tracer.recorder is None or tracer.recorder.closed:
        raise CaptureError("no trace is running; start one with qprof.trace(path)")
    if isinstance(connection, sqlite3.Connection):
        try:
            stdlib.attach_connection(connection, tracer.recorder)
        except TypeError:
            # Limitation: a plain sqlite3.Connection opened before the trace cannot be
            # traced in place (its class cannot change); a factory= subclass can.
            raise CaptureError(
                "a plain sqlite3.Connection opened before the trace cannot be traced; "
                "open it inside qprof.trace(), or with factory= a sqlite3.Connection subclass"
            ) from None
        return
    try:
        from qprof.capture import apsw_driver
    except ImportError:
        apsw_driver = None  # type: ignore[assignment]
    if apsw_driver is not None and isinstance(connection, apsw_driver.apsw.Connection):
        apsw_driver.attach_connection(connection, tracer.recorder, tracer.counters)
        return
    raise TypeError(f"not an apsw or sqlite3 connection: {type(connection).__name__}")


def active_tracer() -> Tracer | None:
    """Return the tracer running in this process, if any."""
    return _active


def start_from_environment() -> Tracer | None:
    """Start tracing into ``$QPROF_TRACE`` until the interpreter exits (``qprof run``).

    The first process traces into that file; Python processes it starts (which
    inherit the environment) trace into part files beside it, which ``qprof
    run`` merges when the program is done.
    """
    path = os.environ.get(TRACE_ENV)
    if not path:
        return None
    owner = os.environ.get(TRACE_OWNER_ENV)
    part = bool(owner) and owner != str(os.getpid())
    if part:
        path = str(part_path(Path(path), f"pid{os.getpid()}"))
    else:
        os.environ[TRACE_OWNER_ENV] = str(os.getpid())
    tracer = Tracer(path, context=os.environ.get("QPROF_CONTEXT") or None)
    tracer.lazy_file = part  # a helper process (a resource tracker) leaves no file
    tracer.from_environment = True
    tracer.start()
    atexit.register(tracer.stop)
    return tracer


def _install_apsw(recorder: Recorder, counters: bool) -> None:
    try:
        from qprof.capture import apsw_driver
    except ImportError:  # apsw is a dependency, but a traced program may lack it
        return
    apsw_driver.install(recorder, counters)


def _uninstall_apsw() -> None:
    try:
        from qprof.capture import apsw_driver
    except ImportError:
        return
    apsw_driver.uninstall()
