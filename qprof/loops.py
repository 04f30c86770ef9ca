"""Loops: which fingerprints repeat within one context, for N+1 detection.

A context is where one unit of application work ran: the ``context`` label of
a trace record (a request, a test id), or, for a log that has none, a window of
consecutive statements, each thread's a context of its own in a capture (a
labelled context keeps the statements of all its threads: a request served by a
thread pool is one unit of work). Within each context the
tracker counts every fingerprint, keeps its first values, and remembers the
statements just before its first occurrence: the likely source of the loop's
values. Memory is bounded: at most ``open_limit`` contexts are open at once;
the oldest is closed and only its repeated fingerprints are kept.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from qprof.trace import Params, Statement

# A fingerprint must run at least this often in one context to be kept once its
# context closes: the analyzer's threshold (5 by default) can be lowered to 3.
KEEP_REPEATS = 3
HISTORY = 24
KEPT_PER_FINGERPRINT = 200
DISTINCT_CAP = 1000
FIRST_VALUES = 12


@dataclass(slots=True)
class Occurrence:
    """A statement as seen in a context: enough to find and re-run it."""

    fingerprint: str
    """The fingerprint id."""
    sql: str
    """Its SQL."""
    params: Params
    """Its bound values."""
    location: str
    """Its ``file:line``."""
    index: int
    """Its position in the workload (0-based)."""


@dataclass(slots=True)
class ContextLoop:
    """One fingerprint's repeats within one context."""

    context: str
    """The context label."""
    fingerprint: str
    """The fingerprint id."""
    count: int = 0
    """How many times it ran in the context."""
    elapsed_ns: int = 0
    """Their summed wall time."""
    first_index: int = 0
    """Where its first occurrence is in the workload."""
    last_index: int = 0
    """Where its last occurrence is."""
    values: list[Params | str] = field(default_factory=list)
    """The first distinct values (bound parameters, or the SQL when values are inline)."""
    distinct: int = 0
    """How many distinct values were seen (counted up to a cap)."""
    before: list[Occurrence] = field(default_factory=list)
    """The context's statements just before the first occurrence, nearest last.

    ``distinct`` stops counting at ``DISTINCT_CAP``."""
    counts_before: dict[str, int] = field(default_factory=dict)
    """For each fingerprint in ``before``: its count in the context when the context closed."""
    callers: set[str] = field(default_factory=set)
    """The callers seen, when the trace has them."""


@dataclass
class _Context:
    loops: dict[str, ContextLoop] = field(default_factory=dict)
    history: deque[tuple[str, str, Params, str, int]] = field(
        default_factory=lambda: deque(maxlen=HISTORY)
    )
    seen_values: dict[str, set[object]] = field(default_factory=dict)


class LoopTracker:
    """Follow the statements of each context; ``finish`` returns the repeats."""

    def __init__(self, window: int = 2000, open_limit: int = 5000) -> None:
        self.window = window
        self.open_limit = open_limit
        self._open: OrderedDict[str, _Context] = OrderedDict()
        self.closed: list[ContextLoop] = []
        self.overflow: dict[str, list[int]] = {}
        """Per fingerprint, loops past ``KEPT_PER_FINGERPRINT``: [contexts, statements, ns]."""
        self._kept: dict[str, int] = {}
        self._window_number = -1
        self._window_label = ""
        self._window_labels: list[str] = []
        """The contexts of the current window (one a thread, in a capture)."""

    def add(
        self, index: int, statement: Statement, fingerprint: str, elapsed_ns: int
    ) -> None:
        """Record the ``index``-th statement of the workload."""
        label = statement.context
        if label is None:
            window = index // self.window
            if window != self._window_number:
                # Windows follow one another: the last one is over, close it (and
                # its threads') now: memory stays flat however long the log is.
                for ended_label in self._window_labels:
                    ended = self._open.pop(ended_label, None)
                    if ended is not None:
                        self._close(ended_label, ended)
                self._window_labels = []
                self._window_number = window
                first = window * self.window + 1
                self._window_label = f"statements {first}-{first + self.window - 1}"
            label = self._window_label
            if statement.thread is not None:
                # Limitation: threads are told apart by name (all a trace records).
                label = f"{label} in thread {statement.thread}"
            if label not in self._open:
                self._window_labels.append(label)
        context = self._open.get(label)
        if context is None:
            context = self._open[label] = _Context()
            if len(self._open) > self.open_limit:
                self._close(*self._open.popitem(last=False))
        else:
            self._open.move_to_end(label)

        loop = context.loops.get(fingerprint)
        if loop is None:
            loop = context.loops[fingerprint] = ContextLoop(
                label, fingerprint, first_index=index
            )
            loop.before = [Occurrence(*entry) for entry in context.history]
        loop.count += 1
        loop.elapsed_ns += elapsed_ns
        loop.last_index = index
        if statement.caller is not None and len(loop.callers) < 8:
            loop.callers.add(statement.caller)
        self._add_value(context, loop, statement)

        context.history.append(
            (fingerprint, statement.sql, statement.params, statement.location, index)
        )

    def finish(self) -> list[ContextLoop]:
        """Close every context and return the fingerprints that repeated in one."""
        while self._open:
            self._close(*self._open.popitem(last=False))
        return self.closed

    def _add_value(
        self, context: _Context, loop: ContextLoop, statement: Statement
    ) -> None:
        if loop.distinct >= DISTINCT_CAP:
            return
        value: Params | str = (
            statement.params if statement.params is not None else statement.sql
        )
        key: object = value
        try:
            hash(value)
        except TypeError:
            key = _hashable(value)
        seen = context.seen_values.setdefault(loop.fingerprint, set())
        if key in seen:
            return
        seen.add(key)
        loop.distinct += 1
        if len(loop.values) < FIRST_VALUES:
            loop.values.append(value)

    def _close(self, label: str, context: _Context) -> None:
        for loop in context.loops.values():
            if loop.count < KEEP_REPEATS:
                continue
            kept = self._kept.get(loop.fingerprint, 0)
            if kept >= KEPT_PER_FINGERPRINT:
                totals = self.overflow.setdefault(loop.fingerprint, [0, 0, 0])
                totals[0] += 1
                totals[1] += loop.count
                totals[2] += loop.elapsed_ns
                continue
            self._kept[loop.fingerprint] = kept + 1
            loop.counts_before = {
                o.fingerprint: context.loops[o.fingerprint].count for o in loop.before
            }
            self.closed.append(loop)


def _hashable(value: object) -> object:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value
