"""Read a captured trace in the tests, as qprof's reader does (shapes resolved)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qprof.readers import ReadProblems
from qprof.readers.qprof_trace import read_records


def trace_records(path: Path) -> list[dict[str, Any]]:
    """Return every statement record of the trace at ``path``; no line may be bad."""
    problems = ReadProblems()
    found = [record for _statement, record in read_records(path, problems)]
    assert problems.count == 0, problems.problems
    return found
