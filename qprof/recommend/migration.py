"""Migrations: the recommended indexes as an up.sql / down.sql pair."""

from __future__ import annotations

import time
from pathlib import Path

from qprof.errors import OutputError
from qprof.recommend.candidates import quote_name
from qprof.recommend.select import RecommendationSet


def write_migration(result: RecommendationSet, folder: str | Path) -> Path:
    """Write ``<folder>/<timestamp>_qprof_indexes/{up,down}.sql`` and return that folder.

    ``down.sql`` undoes ``up.sql`` in reverse order. Raises ``OutputError``
    when the folder cannot be written.
    """
    target = Path(folder) / f"{time.strftime('%Y%m%d%H%M%S')}_qprof_indexes"
    up = ["-- Indexes recommended by qprof, largest measured saving first."]
    down = ["-- Undo up.sql."]
    for pick in result.recommendations:
        up.append(
            f"-- {pick.rank}. saves {pick.net_vm:,.0f} VM steps net on "
            f"{len(pick.served)} statement(s); {pick.size_bytes:,} bytes"
        )
        up.append(pick.ddl)
    for pick in reversed(result.recommendations):
        if pick.kind == "statistics":
            down.append(
                "-- ANALYZE wrote sqlite_stat1; emptying it forgets the statistics."
            )
            down.append("DELETE FROM sqlite_stat1;")
        else:
            down.append(f"DROP INDEX IF EXISTS {quote_name(pick.name)};")
    try:
        target.mkdir(parents=True, exist_ok=False)
        (target / "up.sql").write_text("\n".join(up) + "\n", encoding="utf-8")
        (target / "down.sql").write_text("\n".join(down) + "\n", encoding="utf-8")
    except OSError as error:
        raise OutputError(target, error.strerror or str(error)) from None
    return target
