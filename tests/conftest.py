"""Fixtures: small real SQLite databases built under tmp_path."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import apsw
import pytest

from qprof.analyze import analyze_profile
from qprof.replay import replay_workload

ROWS = 2000


def file_digest(path: Path) -> str:
    """Return the SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_items_db(path: Path) -> Path:
    """Create the ``items`` database (ROWS rows, an index on ``sku`` only) at ``path``."""
    db = apsw.Connection(str(path))
    db.execute(
        """
        CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT, category INTEGER, price REAL);
        CREATE INDEX items_sku ON items(sku);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO items SELECT i, 'sku-' || i, i % 20, i * 0.5 FROM n;
        """,
        (ROWS,),
    )
    db.close()
    return path


def build_events_db(path: Path) -> Path:
    """Create ``events``: 30,000 rows over 3 sources, an index on (source, at), no
    statistics; ANALYZE lets SQLite skip-scan that index for a filter on ``at``."""
    db = apsw.Connection(str(path))
    db.execute(
        """
        CREATE TABLE events (id INTEGER PRIMARY KEY, source INTEGER, at INTEGER, body TEXT);
        CREATE INDEX events_source_at ON events(source, at);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)
        INSERT INTO events SELECT i, i % 3, i, printf('%.200c', 'x') FROM n;
        """
    )
    db.close()
    return path


@pytest.fixture
def items_db(tmp_path: Path) -> Path:
    """A database with ``items`` (ROWS rows, an index on ``sku`` only)."""
    return build_items_db(tmp_path / "items.db")


@pytest.fixture
def write_file(tmp_path: Path):
    """Write text to a file under tmp_path and return its path."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


CASES = Path(__file__).resolve().parent / "data" / "cases"
"""Copies of ../shared/cases (each folder's expected.md says what it reproduces)."""
CASE_DIRS = sorted(p for p in CASES.glob("*") if (p / "expected.json").is_file())


@pytest.fixture(scope="session")
def case_databases(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cases")
    built = {}
    for case in CASE_DIRS:
        path = folder / f"{case.name}.db"
        db = apsw.Connection(str(path))
        db.execute((case / "schema.sql").read_text(encoding="utf-8"))
        db.close()
        built[case.name] = path
    return built


@pytest.fixture(scope="session")
def analyses(case_databases):
    results = {}
    for case in CASE_DIRS:
        database = case_databases[case.name]
        profile = replay_workload(case / "workload.sql", database)
        results[case.name] = (profile, analyze_profile(profile, database))
    return results


@pytest.fixture(autouse=True)
def private_tmpdir(tmp_path, monkeypatch):
    """Give each test its own TMPDIR, so that scratch-folder checks see only theirs."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder
