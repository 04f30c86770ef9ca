"""Report files: write a rendered report, turning OS errors into ``OutputError``."""

from __future__ import annotations

from pathlib import Path

from qprof.errors import OutputError


def write_report_file(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` as UTF-8 and return the path.

    Raises ``OutputError`` (with the path and the OS's reason) when the file
    cannot be written: a missing folder, no permission, a full disk.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(target, "is a directory; give a file name")
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as error:
        raise OutputError(target, error.strerror or str(error)) from None
    return target
