"""Reader throughput: lines per second for each log format beside plain SQL.

Writes one large log per format in a temporary folder (about 200,000 lines
each, records shaped like the samples in ../shared/logs with varied values),
reads each with its qprof reader and prints lines/s, statements/s and the
ratio to the plain SQL reader.

    python benchmarks/reader_throughput.py [--lines 200000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from qprof.readers import ReadProblems, read_workload

STAMP = "2026-12-03 19:32:35,957 INFO sqlalchemy.engine.Engine "


def sql_records(i: int) -> Iterator[str]:
    yield f"SELECT album.id, album.title FROM album WHERE album.artist_id = {i % 97};\n"
    yield f"UPDATE album SET title = 'vol {i}'\n WHERE album.id = {i};\n"


def sqlalchemy_records(i: int) -> Iterator[str]:
    yield STAMP + "SELECT album.id, album.title, album.year, album.artist_id \n"
    yield "FROM album \n"
    yield "WHERE ? = album.artist_id\n"
    yield STAMP + f"[cached since 0.0{i % 9}s ago] ({i % 97},)\n"
    yield STAMP + "INSERT INTO album (title, year, artist_id) VALUES (?, ?, ?)\n"
    yield (
        STAMP + f"[generated in 0.00010s] ('O''Brien vol {i}', {1990 + i % 30}, {i})\n"
    )


def django_records(i: int) -> Iterator[str]:
    yield (
        f'(0.000) SELECT "shop_artist"."id", "shop_artist"."name" FROM "shop_artist" '
        f'WHERE "shop_artist"."id" = {i} LIMIT 21; args=({i},); alias=default\n'
    )
    yield "(0.001) \n            SELECT name FROM sqlite_master\n"
    yield f"            WHERE name = 'x{i}'; args=None; alias=default\n"


def rails_records(i: int) -> Iterator[str]:
    yield (
        f'  Artist Load (0.1ms)  SELECT "artists".* FROM "artists" WHERE "artists"."id" = ?'
        f' LIMIT ?  [["id", {i}], ["LIMIT", 1]]\n'
    )
    yield (
        f'  \x1b[1m\x1b[36mAlbum Create (0.2ms)\x1b[0m  \x1b[1m\x1b[32mINSERT INTO "albums" '
        f'("title", "year") VALUES (?, ?)\x1b[0m  [["title", "vol \\"{i}\\""], ["year", {i}]]\n'
    )
    yield "  ↳ app/controllers/albums_controller.rb:5:in `index'\n"


def sqlite_trace_records(i: int) -> Iterator[str]:
    yield f"SELECT title, length FROM film WHERE length > {i % 180} AND rating = 'PG'\n"
    yield f"  ORDER BY length DESC LIMIT 3; -- {i % 3}000000 ns\n"
    yield f"INSERT INTO actor(actor_id, first_name) VALUES ({i}, 'ADA'); -- 0 ns\n"
    yield "-- TRIGGER actor_trigger_ai;\n"
    yield "-- UPDATE actor SET last_update = DATETIME('NOW')  WHERE rowid = new.rowid;\n"


def python_trace_records(i: int) -> Iterator[str]:
    yield json.dumps(f"SELECT count(*) FROM rental WHERE customer_id = {i}") + "\n"
    insert = f"INSERT INTO category(category_id, name) VALUES ({i}, 'Noir')"
    yield json.dumps(insert) + "\n"
    yield json.dumps(insert) + "\n"
    yield (
        json.dumps("-- REPLACE INTO 'main'.'film_fts_data'(id, block) VALUES(?,?)")
        + "\n"
    )


FORMATS: dict[str, Callable[[int], Iterator[str]]] = {
    "sql": sql_records,
    "sqlalchemy": sqlalchemy_records,
    "django": django_records,
    "rails": rails_records,
    "sqlite_trace": sqlite_trace_records,
    "python_trace": python_trace_records,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qprof-readers-") as tmp:
        results = {}
        for name, records in FORMATS.items():
            path = Path(tmp) / f"{name}.log"
            lines = write_log(path, records, args.lines)
            seconds, statements = time_read(path, name)
            results[name] = (lines, statements, seconds)
        _, _, sql_seconds = results["sql"]
        sql_rate = results["sql"][0] / sql_seconds
        print(f"{'format':<14}{'lines':>10}{'statements':>12}{'lines/s':>12}  vs sql")
        for name, (lines, statements, seconds) in results.items():
            rate = lines / seconds
            print(
                f"{name:<14}{lines:>10,}{statements:>12,}{rate:>12,.0f}  {rate / sql_rate:.2f}"
            )


def write_log(path: Path, records: Callable[[int], Iterator[str]], lines: int) -> int:
    """Write records until ``lines`` lines are written; return the count."""
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        i = 0
        while written < lines:
            for line in records(i):
                out.write(line)
                written += 1
            i += 1
    return written


def time_read(path: Path, name: str) -> tuple[float, int]:
    """Return the best of 3 read times in seconds, and the statements read."""
    best = float("inf")
    count = 0
    for _ in range(3):
        started = time.perf_counter()
        count = sum(1 for _ in read_workload(path, name, ReadProblems()))
        best = min(best, time.perf_counter() - started)
    return best, count


if __name__ == "__main__":
    main()
