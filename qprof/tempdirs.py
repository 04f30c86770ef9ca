"""Scratch folders that go away: snapshots, what-if copies, statistics copies.

Removal holds off Ctrl-C and SIGTERM (``pthread_sigmask``) until the folder is
gone, so a second Ctrl-C during clean-up cannot leave a copy behind; the held
signal is delivered right after.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_HELD = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block (a no-op where the OS cannot)."""
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def make_folder(prefix: str) -> Path:
    """Create a temporary folder (in TMPDIR) named ``<prefix>...``."""
    with signals_held():
        return Path(tempfile.mkdtemp(prefix=prefix))


def remove_folder(path: Path | None) -> None:
    """Delete ``path`` and everything in it, with the signals held."""
    if path is None:
        return
    with signals_held():
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    """Yield a temporary folder that is removed afterwards, also after Ctrl-C."""
    folder = make_folder(prefix)
    try:
        yield folder
    finally:
        remove_folder(folder)
