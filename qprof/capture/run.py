"""``qprof run -- python app.py``: run a Python program with capture on.

The child gets a ``sitecustomize.py`` first on its ``PYTHONPATH`` (in a
temporary folder) that starts a capture into ``$QPROF_TRACE`` and stops it at
exit; a ``sitecustomize`` the child had already is imported after it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import qprof
from qprof.capture import TRACE_ENV

_SITECUSTOMIZE = """\
import sys
_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
try:
    from qprof.capture import start_from_environment
    start_from_environment()
except Exception as error:  # the traced program must run even when capture cannot
    sys.stderr.write(f"qprof: capture did not start: {type(error).__name__}: {error}\\n")
# Import the program's own sitecustomize, if it has one.
sys.path[:] = [p for p in sys.path if p != _here]
del sys.modules["sitecustomize"]
try:
    import sitecustomize  # noqa: F401
except ImportError:
    pass
"""


def run_traced(command: Sequence[str], trace: Path) -> int:
    """Run ``command`` (a Python program) with capture on; return its exit status.

    Raises ``FileNotFoundError`` when the program cannot be found.
    """
    # Limitation: only Python programs are traced (sitecustomize); a child
    # interpreter without qprof installed runs untraced.
    trace.parent.mkdir(parents=True, exist_ok=True)
    if trace.exists():
        trace.unlink()
    package_root = str(Path(qprof.__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory(prefix="qprof-run-") as folder:
        Path(folder, "sitecustomize.py").write_text(_SITECUSTOMIZE, encoding="utf-8")
        env = dict(os.environ)
        paths = [folder, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        paths.append(package_root)
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env[TRACE_ENV] = str(trace.resolve())
        return subprocess.call(list(command), env=env)
