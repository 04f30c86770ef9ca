"""A small workload whose counts are known, for the frames, plots and reports tests.

``items`` has ``ROWS`` rows and an index on ``sku`` only. The trace runs:

- ``SELECT id FROM items WHERE sku = ?`` 6 times in the context ``GET /cart``
  (an N+1 loop of indexed point queries), at ``ts`` 1_700_000_000 + i;
- ``SELECT count(*) FROM items WHERE category = ?`` 2 times (a full scan each);
- ``SELECT price FROM items WHERE id = ?`` once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import qprof
from qprof.frames import Profile

from .conftest import ROWS, build_items_db  # noqa: F401 (build_items_db is re-exported)

LOOP = 6
SCANS = 2
TS0 = 1_700_000_000
POINT_SQL = "SELECT id FROM items WHERE sku = ?"
SCAN_SQL = "SELECT count(*) FROM items WHERE category = ?"
ROWID_SQL = "SELECT price FROM items WHERE id = ?"


def write_trace(path: Path) -> Path:
    """Write the workload as an (unmeasured) qprof trace and return its path."""
    records = [
        {"sql": SCAN_SQL, "params": [3], "context": "GET /report", "ts": TS0 - 10},
        *(
            {
                "sql": POINT_SQL,
                "params": [f"sku-{i + 1}"],
                "context": "GET /cart",
                "ts": TS0 + i,
            }
            for i in range(LOOP)
        ),
        {"sql": SCAN_SQL, "params": [7], "context": "GET /report", "ts": TS0 + 10},
        {"sql": ROWID_SQL, "params": [5], "context": "GET /item", "ts": TS0 + 11},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def small_inputs(factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Build the items database and write the trace in a new folder; return both."""
    folder = factory.mktemp("small")
    return build_items_db(folder / "items.db"), write_trace(folder / "trace.jsonl")


def small_profile(inputs: tuple[Path, Path]) -> Profile:
    """Replay the trace, with the recommender, into frames."""
    db, trace = inputs
    return qprof.replay_profile(trace, db, recommend=True)
