"""Replay throughput and memory: qprof replay against bare apsw on point queries.

Prints statements per second for ``replay_workload`` on a log of indexed point
queries (a qprof trace with ``?`` parameters) beside the same statements run
bare with apsw (already in memory: execute and fetch, nothing else), their
ratio, and the peak RSS of ``qprof replay`` on logs of two lengths, which shows
whether memory stays flat as the log grows.

    python benchmarks/replay_throughput.py [--statements 200000] [--memory-statements 1000000]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import apsw

from qprof.replay import replay_workload
from qprof.trace import decode_params

TABLE_ROWS = 100_000
SQL = "SELECT id, name, balance FROM accounts WHERE id = ?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=200_000)
    parser.add_argument("--memory-statements", type=int, default=1_000_000)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="qprof-bench-") as tmp:
        folder = Path(tmp)
        database = build_database(folder / "bench.db")
        log = write_log(folder / "points.jsonl", args.statements)

        bare_s = time_bare(database, log)
        counted_s = time_bare(database, log, counters=True)
        replay_s = time_replay(database, log)
        n = args.statements
        print(
            f"statements:        {n:,} indexed point queries, table of {TABLE_ROWS:,} rows"
        )
        print(f"bare apsw:         {n / bare_s:>12,.0f} statements/s")
        print(
            f"bare + counters:   {n / counted_s:>12,.0f} statements/s  (PROFILE event only)"
        )
        print(f"qprof replay:      {n / replay_s:>12,.0f} statements/s")
        print(f"ratio replay/bare: {bare_s / replay_s:>12.2f}  (target >= 0.50)")
        print(f"ratio replay/bare+counters: {counted_s / replay_s:.2f}")

        if not args.skip_memory:
            small = peak_rss_mb(database, log)
            big_log = write_log(folder / "points-big.jsonl", args.memory_statements)
            big = peak_rss_mb(database, big_log)
            print(f"peak RSS, {n:,} statements:   {small:8.1f} MB")
            print(
                f"peak RSS, {args.memory_statements:,} statements: {big:8.1f} MB  (target < 300)"
            )
            print(f"RSS ratio long/short log: {big / small:.2f}")


def build_database(path: Path) -> Path:
    db = apsw.Connection(str(path))
    db.execute(
        """
        CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT, balance REAL);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO accounts SELECT i, 'account ' || i, i * 1.25 FROM n;
        """,
        (TABLE_ROWS,),
    )
    db.close()
    return path


def write_log(path: Path, statements: int) -> Path:
    rng = random.Random(7)
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"qprof_trace": 1}\n')
        for _ in range(statements):
            out.write(
                json.dumps({"sql": SQL, "params": [rng.randint(1, TABLE_ROWS)]}) + "\n"
            )
    return path


def time_bare(database: Path, log: Path, counters: bool = False) -> float:
    """Time the statements run from memory; with ``counters``, also take the
    SQLITE_TRACE_PROFILE event that carries sqlite3_stmt_status (C-level append)."""
    records = [json.loads(line) for line in log.read_text().splitlines()[1:]]
    work = [(r["sql"], decode_params(r["params"])) for r in records]
    db = apsw.Connection(str(database), flags=apsw.SQLITE_OPEN_READONLY)
    if counters:
        db.trace_v2(apsw.SQLITE_TRACE_PROFILE, collections.deque(maxlen=1).append)
    cursor = db.cursor()
    started = time.perf_counter()
    for sql, params in work:
        for _ in cursor.execute(sql, params):
            pass
    return time.perf_counter() - started


def time_replay(database: Path, log: Path) -> float:
    started = time.perf_counter()
    profile = replay_workload(log, database)
    elapsed = time.perf_counter() - started
    assert profile.error_count == 0 and len(profile.fingerprints) == 1
    return elapsed


def peak_rss_mb(database: Path, log: Path) -> float:
    command = [
        sys.executable,
        "-m",
        "qprof.cli",
        "replay",
        str(log),
        "--db",
        str(database),
    ]
    code = (
        "import resource, subprocess, sys;"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *command],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(result.stdout.strip()) / 1024  # ru_maxrss is in KiB on Linux


if __name__ == "__main__":
    main()
