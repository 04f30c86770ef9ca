"""``qprof run -- python app.py``: run a Python program with capture on.

The child gets a ``sitecustomize.py`` first on its ``PYTHONPATH`` (in a
temporary folder) that starts a capture into ``$QPROF_TRACE`` and stops it at
exit; a ``sitecustomize`` the child had already is imported after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import qprof
from qprof.capture import TRACE_ENV, TRACE_OWNER_ENV
from qprof.errors import OutputError

_SITECUSTOMIZE = """\
import sys
_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
try:
    from qprof.capture import start_from_environment
    start_from_environment()
except Exception as error:  # the traced program must run even when capture cannot
    sys.stderr.write(f"qprof: capture did not start: {type(error).__name__}: {error}\\n")
# Import the program's own sitecustomize, if it has one.
# (While this module is being imported its name is already taken, so the
# program's own one is loaded under it by path, not by import.)
import importlib.util as _util
sys.path[:] = [p for p in sys.path if p != _here]
for _folder in sys.path:
    _spec = _util.spec_from_file_location("sitecustomize", f"{_folder or '.'}/sitecustomize.py")
    if _spec is not None and _spec.loader is not None:
        try:
            _spec.loader.exec_module(_util.module_from_spec(_spec))
        except FileNotFoundError:
            continue
        break
"""


def run_traced(command: Sequence[str], trace: Path) -> int:
    """Run ``command`` (a Python program) with capture on; return its exit status.

    Raises ``OutputError`` when the trace cannot be written (before the program
    starts) and ``FileNotFoundError`` when the program cannot be found.
    """
    # Limitation: only Python programs are traced (sitecustomize); a child
    # interpreter without qprof installed runs untraced.
    if trace.exists() and not trace.is_file():
        raise OutputError(trace, "not a regular file (a trace is written to a file)")
    try:
        trace.parent.mkdir(parents=True, exist_ok=True)
        trace.write_text("", encoding="utf-8")
    except OSError as error:
        raise OutputError(trace, error.strerror or str(error)) from None
    package_root = str(Path(qprof.__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory(prefix="qprof-run-") as folder:
        Path(folder, "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
        env = dict(os.environ)
        paths = [folder, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        paths.append(package_root)
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env[TRACE_ENV] = str(trace.resolve())
        env.pop(TRACE_OWNER_ENV, None)  # the program is the trace's first process
        child = subprocess.Popen(list(command), env=env)
        return _wait_passing_signals(child)


def _wait_passing_signals(child: subprocess.Popen[bytes]) -> int:
    """Wait for the program, passing it SIGTERM and leaving SIGINT to it.

    A Ctrl-C reaches the whole process group, the program included: qprof
    waits for it to clean up. A SIGTERM sent to qprof is sent on. Either way
    the program ends as it would untraced, and its exit status is returned.
    """
    if threading.current_thread() is not threading.main_thread():
        return child.wait()
    previous = [
        (signal.SIGTERM, signal.signal(signal.SIGTERM, lambda n, f: child.terminate())),
        (signal.SIGINT, signal.signal(signal.SIGINT, signal.SIG_IGN)),
    ]
    try:
        return child.wait()
    finally:
        for number, handler in previous:
            signal.signal(number, handler)
