"""Analysis speed: the time to analyze a profile of 1,000 fingerprints.

Builds a database of 50 tables, replays a workload of 1,000 distinct statement
shapes (filters, joins, sorts, pagination over those tables) once each, and
times ``analyze_profile`` on the profile: the first run (every fingerprint
parsed by sqlglot) and the parse cost per fingerprint.

    python benchmarks/analyze_speed.py [--fingerprints 1000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import apsw

from qprof.analyze import analyze_profile
from qprof.analyze.finding import AnalysisContext, Thresholds
from qprof.fingerprint import fingerprint_sql
from qprof.replay import replay_workload

TABLES = 50
ROWS = 2000
COLUMNS = ("a", "b", "c", "d", "e")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fingerprints", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qprof-bench-") as tmp:
        folder = Path(tmp)
        database = build_database(folder / "many.db")
        workload = write_workload(folder / "w.sql", args.fingerprints)
        profile = replay_workload(workload, database)
        started = time.perf_counter()
        analysis = analyze_profile(profile, database)
        elapsed = time.perf_counter() - started

        context = AnalysisContext(profile, profile.schema, Thresholds())  # type: ignore[arg-type]
        parse_started = time.perf_counter()
        for fp in profile.fingerprints.values():
            context.usage(fp)
        parse_s = time.perf_counter() - parse_started
        cached_started = time.perf_counter()
        for fp in profile.fingerprints.values():
            context.usage(fp)
        cached_s = time.perf_counter() - cached_started

    n = len(profile.fingerprints)
    print(f"fingerprints:             {n:,} ({profile.statements:,} statements)")
    print(f"findings:                 {len(analysis.findings):,}")
    print(
        f"analyze_profile:          {elapsed:8.2f} s  ({elapsed / n * 1e3:.2f} ms per fingerprint)"
    )
    print(
        f"parsing alone:            {parse_s:8.2f} s  ({parse_s / n * 1e3:.2f} ms per fingerprint)"
    )
    ratio = parse_s / max(cached_s, 1e-9)
    print(f"second look-up (cached):  {cached_s * 1e3:8.2f} ms  (ratio {ratio:,.0f}x)")


def build_database(path: Path) -> Path:
    db = apsw.Connection(str(path))
    with db:
        for t in range(TABLES):
            columns = ", ".join(f"{c} INTEGER" for c in COLUMNS)
            db.execute(
                f"CREATE TABLE t{t} (id INTEGER PRIMARY KEY, {columns}, parent_id INTEGER)"
            )
            db.execute(f"CREATE INDEX t{t}_a ON t{t}(a)")
            db.execute(
                f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS}) "
                f"INSERT INTO t{t} SELECT i, i % 7, i % 11, i % 13, i % 17, i % 19, i % 50 FROM n"
            )
    db.close()
    return path


def write_workload(path: Path, count: int) -> Path:
    rng = random.Random(3)
    shapes: dict[str, str] = {}
    while len(shapes) < count:
        t = rng.randrange(TABLES)
        first, second = rng.sample(COLUMNS, 2)
        kind = rng.randrange(4)
        if kind == 0:
            sql = f"SELECT * FROM t{t} WHERE {first} = 1 AND {second} > 2"
        elif kind == 1:
            u = (t + 1) % TABLES
            sql = (
                f"SELECT x.id, y.{second} FROM t{t} x JOIN t{u} y ON y.parent_id = x.id "
                f"WHERE x.{first} = 3"
            )
        elif kind == 2:
            sql = f"SELECT {first}, count(*) FROM t{t} WHERE {second} < 5 GROUP BY {first}"
        else:
            sql = f"SELECT * FROM t{t} WHERE {first} = 2 ORDER BY {second} LIMIT 10 OFFSET 1500"
        picked = ", ".join(rng.sample(COLUMNS, rng.randrange(1, 4)))
        sql = sql.replace("SELECT *", f"SELECT {picked}")
        shapes.setdefault(fingerprint_sql(sql).id, sql)
    path.write_text("".join(f"{sql};\n" for sql in sorted(shapes.values())))
    return path


if __name__ == "__main__":
    main()
