"""Print traced/untraced time ratios of qprof's capture.

Three workloads: a tight loop of indexed point queries on apsw and on stdlib
sqlite3 (the worst case: the statements themselves cost a few microseconds),
and the sample app's test suite (sample_workloads/app/tests) run with and
without ``--qprof``. Each is timed several times and the best run is kept.

Floors are printed beside them, for scale: apsw with nothing but a C-level
PROFILE callback (where its statement counters come from); sqlite3 through a
cursor subclass whose execute and fetchall only call the driver's own (what
any Python-level wrapper that counts rows pays before doing anything); and the
least a recorder can do on both drivers, a list per statement holding the SQL,
the parameters, the caller's code and offset, two clock readings and the row
count, kept in memory and never written (apsw's with the PROFILE callback).

    python benchmarks/capture_overhead.py
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import apsw

import qprof

ROOT = Path(__file__).resolve().parent.parent
QUERIES = 20_000
ROWS = 10_000
RUNS = 5


def main() -> None:
    """Measure and print the ratios, the floors beside them."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        _build(path)
        trace = Path(folder) / "trace.jsonl"
        runs = (
            ("apsw", _apsw_loop, lambda: _traced(_apsw_loop, path, trace)),
            (
                "apsw, counters=False",
                _apsw_loop,
                lambda: _traced(_apsw_loop, path, trace, counters=False),
            ),
            (
                "apsw floor: PROFILE callback only",
                _apsw_loop,
                lambda: _apsw_floor(path),
            ),
            (
                "apsw floor: least record + PROFILE",
                _apsw_loop,
                lambda: _apsw_floor(path, least=True),
            ),
            ("sqlite3", _stdlib_loop, lambda: _traced(_stdlib_loop, path, trace)),
            (
                "sqlite3 floor: bare wrapper",
                _stdlib_loop,
                lambda: _stdlib_loop(path, _BareConnection),
            ),
            (
                "sqlite3 floor: least record",
                _stdlib_loop,
                lambda: _stdlib_loop(path, _LeastConnection),
            ),
        )
        for name, loop, traced_run in runs:
            plain = _best(lambda loop=loop: loop(path))
            traced = _best(traced_run)
            print(
                f"{name:34} {QUERIES} point queries: untraced {plain * 1e3:6.1f} ms, "
                f"traced {traced * 1e3:6.1f} ms, ratio {traced / plain:.2f}x"
            )
        plain = _best(lambda: _suite([]), runs=3)
        traced = _best(lambda: _suite([f"--qprof={trace}"]), runs=3)
        print(
            f"sample app test suite: untraced {plain:5.2f} s, traced {traced:5.2f} s, "
            f"ratio {traced / plain:.2f}x (pytest start-up included)"
        )


def _build(path: Path) -> None:
    db = apsw.Connection(str(path))
    db.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER, v TEXT);"
        "CREATE INDEX t_k ON t(k);"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        "INSERT INTO t SELECT i, i * 7 % ?, 'v' || i FROM n",
        (ROWS, ROWS),
    )
    db.close()


def _apsw_loop(path: Path, db: apsw.Connection | None = None) -> None:
    db = db or apsw.Connection(str(path))
    for i in range(QUERIES):
        db.execute("SELECT id, v FROM t WHERE k = ?", (i % ROWS,)).fetchall()
    db.close()


def _apsw_floor(path: Path, least: bool = False) -> None:
    db = apsw.Connection(str(path))
    events: deque[dict[str, object]] = deque(maxlen=256)
    db.trace_v2(apsw.SQLITE_TRACE_PROFILE, events.append)
    if least:
        db.cursor_factory = _LeastApswCursor
    _apsw_loop(path, db)
    _kept.clear()


def _stdlib_loop(path: Path, factory: type = sqlite3.Connection) -> None:
    db = sqlite3.connect(path, factory=factory)
    for i in range(QUERIES):
        db.execute("SELECT id, v FROM t WHERE k = ?", (i % ROWS,)).fetchall()
    db.close()
    _kept.clear()


class _BareCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: object = (), /) -> _BareCursor:
        super().execute(sql, parameters)
        return self

    def fetchall(self) -> list[object]:
        return super().fetchall()


class _BareConnection(sqlite3.Connection):
    def cursor(self, factory: object = None) -> _BareCursor:
        return super().cursor(_BareCursor)

    def execute(self, sql: str, parameters: object = (), /) -> _BareCursor:
        return self.cursor().execute(sql, parameters)


_kept: list[list[object]] = []
"""The least records: what any recorder must note of a statement."""


def _least_record(sql: str, parameters: object, start: int) -> list[object]:
    frame = sys._getframe(2)
    record = [sql, parameters, frame.f_code, frame.f_lasti, start, 0, 0]
    _kept.append(record)
    return record


class _LeastRecord:
    """A cursor mix-in that keeps the least record of each statement it runs."""

    _record: list[object]

    def execute(self, sql: str, parameters: object = ()) -> _LeastRecord:
        self._record = _least_record(sql, parameters, time.perf_counter_ns())
        super().execute(sql, parameters)  # type: ignore[misc]
        self._record[5] = time.perf_counter_ns()
        return self

    def fetchall(self) -> list[object]:
        rows: list[object] = super().fetchall()  # type: ignore[misc]
        self._record[6] = len(rows)
        return rows


class _LeastCursor(_LeastRecord, sqlite3.Cursor):
    pass


class _LeastApswCursor(_LeastRecord, apsw.Cursor):
    pass


class _LeastConnection(sqlite3.Connection):
    def execute(self, sql: str, parameters: object = (), /) -> _LeastRecord:  # type: ignore[override]
        return sqlite3.Connection.cursor(self, _LeastCursor).execute(sql, parameters)


def _traced(
    loop: Callable[[Path], None], path: Path, trace: Path, counters: bool = True
) -> None:
    with qprof.trace(trace, counters=counters):
        loop(path)


def _suite(options: list[str]) -> None:
    # Bytecode is written, as an installed package has it: without, every traced run
    # would compile qprof's modules again (the untraced run imports none of them).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *options,
            str(ROOT / "sample_workloads" / "app" / "tests"),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def _best(run: Callable[[], None], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


if __name__ == "__main__":
    main()
