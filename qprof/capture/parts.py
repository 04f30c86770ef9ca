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
    """Return the part file of process ``label`` (``pid123``, ``gw0``) of ``trace``.

    ``trace`` may itself be a part (a process forked by one that writes a part):
    the new part is then the whole trace's, merged with the others.
    """
    stem = trace.stem
    base, dot, last = stem.rpartition(".")
    if dot and base and _is_label(last):
        stem = base
    return trace.with_name(f"{stem}.{label}{trace.suffix}")


def existing_parts(trace: Path) -> dict[Path, tuple[int, int, int]]:
    """Return the part files of ``trace`` there are now, each with its identity
    (inode, modification time, size): taken when a trace starts, so that parts
    an earlier run left are not merged into it."""
    found = {}
    for part in _part_files(trace):
        try:
            found[part] = _identity(part)
        except OSError:
            continue
    return found


def merge_parts(
    trace: Path,
    created_by: str = "qprof capture",
    wait_s: float = 0.0,
    earlier: dict[Path, tuple[int, int, int]] | None = None,
) -> int:
    """Append the finished parts of ``trace`` to it and remove them; return how many.

    The trace is created (a header line) when it does not exist or is empty. A part whose
    process is still running after ``wait_s`` seconds is left where it is, with
    a warning; so is a part of ``earlier`` (``existing_parts`` when the trace
    began) that no process has written since.
    """
    parts = []
    for part in _part_files(trace):
        if earlier and part in earlier and _same(part, earlier[part]):
            log.warning("qprof: %s is left from an earlier trace; not merged", part)
            continue
        parts.append(part)
    if not parts:
        return 0
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(
        _is_running_part(trace, p) for p in parts
    ):
        time.sleep(0.05)  # processes the program started may be exiting still
    merged = 0
    empty = not trace.exists() or trace.stat().st_size == 0
    cut = not empty and not _ends_a_line(trace)
    with open(trace, "ab") as out:
        if cut:
            out.write(b"\n")  # the trace's last line was cut off: it stays alone
        if empty:
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


def _part_files(trace: Path) -> list[Path]:
    found = sorted(trace.parent.glob(f"{trace.stem}.*{trace.suffix}"))
    return [part for part in found if _label(trace, part) is not None]


def _identity(path: Path) -> tuple[int, int, int]:
    status = path.stat()
    return status.st_ino, status.st_mtime_ns, status.st_size


def _same(path: Path, identity: tuple[int, int, int]) -> bool:
    try:
        return _identity(path) == identity
    except OSError:
        return False


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
    return middle if _is_label(middle) else None


def _is_label(text: str) -> bool:
    """Return True for a process's label in a part's name: ``pid123`` or ``gw0``."""
    return (text.startswith("pid") and text[3:].isdigit()) or (
        text.startswith("gw") and text[2:].isdigit()
    )


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
