"""The bundled samples and the shared public data replay end to end."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from pathlib import Path

import pytest

from qprof.replay import replay_workload

from .conftest import file_digest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_workloads"
SHARED = ROOT.parent / "shared"


def load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def count_sql_statements(path: Path) -> int:
    """Count statements with the stdlib's sqlite3.complete_statement, character by
    character; an empty statement (``;;``) is not one."""
    count, piece = 0, ""
    for char in path.read_text(encoding="utf-8"):
        piece += char
        if char == ";" and sqlite3.complete_statement(piece):
            count += piece.strip(" \n\t;") != ""
            piece = ""
    return count


@pytest.fixture(scope="module")
def agents_db(tmp_path_factory) -> Path:
    build = load_script(SAMPLES / "agents" / "build_db.py")
    path = tmp_path_factory.mktemp("agents") / "agents.db"
    build.build_agents_db(path)
    return path


def test_agents_sample_replays_on_a_snapshot_and_finds_the_n_plus_one_first(agents_db):
    workload = SAMPLES / "agents" / "workload.jsonl"
    records = [json.loads(line) for line in workload.read_text().splitlines()]
    statements = [r for r in records if "sql" in r]
    before = file_digest(agents_db)

    profile = replay_workload(workload, agents_db)

    assert profile.statements == len(statements)
    assert profile.error_count == 0, profile.errors[:3]
    assert profile.mode == "snapshot"
    assert file_digest(agents_db) == before
    top = profile.costliest()[0]
    loop_sql = top.sample_sql
    assert top.count == sum(1 for r in statements if r["sql"] == loop_sql)
    assert "FROM agent_executions WHERE agent_id = ?" in top.fingerprint.text
    assert [line.detail for line in top.plan] == [
        "SCAN agent_executions",
        "USE TEMP B-TREE FOR ORDER BY",
    ]


def test_chinook_sample_replays_read_only(tmp_path):
    workload = SAMPLES / "chinook" / "workload.sql"
    database = SAMPLES / "chinook" / "chinook.db"
    before = file_digest(database)
    profile = replay_workload(workload, database)
    assert profile.statements == count_sql_statements(workload)
    assert profile.error_count == 0
    assert profile.mode == "read-only"
    assert file_digest(database) == before


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared is not beside this checkout")
def test_speedtest1_script_replays_on_an_empty_database(tmp_path):
    script = SHARED / "realdata" / "speedtest1" / "speedtest1_orm_size2.sql"
    empty = tmp_path / "empty.db"
    empty.touch()
    profile = replay_workload(script, empty)
    assert profile.statements == count_sql_statements(script)
    assert profile.mode == "snapshot"
    assert empty.stat().st_size == 0


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared is not beside this checkout")
def test_sakila_with_triggers_replays_read_only(write_file):
    database = SHARED / "realdata" / "sakila" / "sakila.db"
    workload = write_file(
        "w.sql",
        "SELECT f.title, count(*) FROM film f JOIN inventory i ON i.film_id = f.film_id "
        "GROUP BY f.film_id ORDER BY 2 DESC LIMIT 5;\n"
        "SELECT * FROM customer WHERE last_name = 'SMITH';\n",
    )
    profile = replay_workload(workload, database)
    assert profile.error_count == 0 and profile.mode == "read-only"
    scan = next(
        fp for fp in profile.fingerprints.values() if "customer" in fp.sample_sql
    )
    assert scan.rows_returned == 1
