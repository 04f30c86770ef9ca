"""Traces in parts: one file per process, merged into the trace when they are done.

A process that a traced one forks, or starts with ``qprof run``'s environment
(a multiprocessing pool, a ``subprocess`` running Python, pytest-xdist
workers), must not write into the trace file the first process holds open: it
writes ``<trace>.pid<N>.jsonl`` (``.gw<N>`` for an xdist worker) beside it.
``merge_parts`` appends each finished part to the trace, behind a
``qprof_part`` record naming its process, and removes it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from qprof.trace import PART_KEY, TRACE_HEADER_KEY, TRACE_VERSION

log = logging.getLogger(__name__)


def part_path(trace: Path, label: str) -> Path:
    """Return the part file of process ``label`` (``pid123``, ``gw0``) of ``trace``."""
    return trace.with_name(f"{trace.stem}.{label}{trace.suffix}")


def merge_parts(
    trace: Path, created_by: str = "qprof capture", wait_s: float = 0.0
) -> int:
    """Append the finished parts of ``trace`` to it and remove them; return how many.

    The trace is created (a header line) when it does not exist. A part whose
    process is still running after ``wait_s`` seconds is left where it is, with
    a warning.
    """
    parts = sorted(trace.parent.glob(f"{trace.stem}.*{trace.suffix}"))
    parts = [p for p in parts if _label(trace, p) is not None]
    if not parts:
        return 0
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(
        _is_running_part(trace, p) for p in parts
    ):
        time.sleep(0.05)  # processes the program started may be exiting still
    merged = 0
    mode = "ab" if trace.exists() else "wb"
    cut = mode == "ab" and not _ends_a_line(trace)
    with open(trace, mode) as out:
        if cut:
            out.write(b"\n")  # the trace's last line was cut off: it stays alone
        if mode == "wb":
            header = {TRACE_HEADER_KEY: TRACE_VERSION, "created_by": created_by}
            out.write(json.dumps(header).encode() + b"\n")
        for part in parts:
            label = _label(trace, part) or ""
            if _is_running_part(trace, part):
                log.warning("qprof: %s is still being written; left unmerged", part)
                continue
            _append(out, part, label)
            part.unlink()
            merged += 1
    return merged


def _append(out: object, part: Path, label: str) -> None:
    """Append ``part`` behind a ``qprof_part`` record (which also starts the part's
    own numbering of shapes), its header left out."""
    write = out.write  # type: ignore[attr-defined]
    header = b'{"' + TRACE_HEADER_KEY.encode() + b'"'
    with open(part, "rb") as lines:
        first = lines.readline()
        pid = None
        if first.startswith(header):
            try:
                pid = json.loads(first).get("pid")
            except ValueError:
                pass
        write(json.dumps({PART_KEY: {"process": label, "pid": pid}}).encode() + b"\n")
        if first and not first.startswith(header):
            write(first if first.endswith(b"\n") else first + b"\n")
        for line in lines:
            write(line if line.endswith(b"\n") else line + b"\n")


def _ends_a_line(path: Path) -> bool:
    """Return True when ``path`` is empty or its last byte ends a line."""
    with open(path, "rb") as file:
        if file.seek(0, os.SEEK_END) == 0:
            return True
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


def _is_running_part(trace: Path, part: Path) -> bool:
    label = _label(trace, part) or ""
    return label.startswith("pid") and _is_running(int(label[3:]))


def _label(trace: Path, part: Path) -> str | None:
    """Return ``pid123`` or ``gw0`` for a part file of ``trace``, else None."""
    middle = part.name[len(trace.stem) + 1 : len(part.name) - len(trace.suffix)]
    if middle.startswith("pid") and middle[3:].isdigit():
        return middle
    if middle.startswith("gw") and middle[2:].isdigit():
        return middle
    return None


def _is_running(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child that exited but was not waited for still answers: /proc tells (it is
    # not waited for here, which would take its exit status from the application).
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except (OSError, IndexError):
        return True
    return status != "Z"
