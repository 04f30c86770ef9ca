"""qprof: a query workload profiler for SQLite.

The pipeline, one module per stage: ``readers`` (workload files into
statements), ``fingerprint``, ``replay`` (measure on the database), ``profile``
(per fingerprint), ``plan`` (EXPLAIN QUERY PLAN), ``report`` (text and JSON).

PYTEST_DONT_REWRITE: under ``qprof run -- python -m pytest`` the package is
imported before pytest, which would warn that it cannot rewrite the asserts of
its plugin's package (the plugin has none that need it).
"""

__version__ = "0.1.0"

from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

# ``qprof.trace`` is the capture function (``with qprof.trace(path):``) while
# ``from qprof.trace import ...`` still reads the trace module: the module is
# imported first, so a later import of it no longer rebinds the package's name.
import qprof.trace as _trace_module  # noqa: E402, F401

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from qprof.capture import Tracer
    from qprof.fingerprint import Fingerprint, fingerprint_sql
    from qprof.frames import Profile
    from qprof.replay import replay_workload


def trace(
    path: str | Path = "qprof-trace.jsonl",
    *,
    context: str | None = None,
    counters: bool = True,
) -> "Tracer":
    """Return a tracer writing to ``path``: ``with qprof.trace(path):``.

    See ``qprof.capture.trace``; this one imports the capture when called.
    """
    from qprof.capture import trace as start

    return start(path, context=context, counters=counters)


def context(label: str) -> "AbstractContextManager[None]":
    """Label the statements run inside the block ``label``; see ``qprof.capture``."""
    from qprof.capture import context as labelled

    return labelled(label)


# Stages imported when first asked for: the pytest plugin is imported by every
# test run, and should cost nothing there without --qprof.
_LAZY = {
    "Fingerprint": "qprof.fingerprint",
    "fingerprint_sql": "qprof.fingerprint",
    "replay_workload": "qprof.replay",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'qprof' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def load(trace: str | Path, db: str | Path | None = None, **options: Any) -> "Profile":
    """Return a trace's profile as pandas DataFrames; see ``qprof.frames.load_profile``.

    A captured trace needs no ``db`` (plans on an empty replica of its schema).
    ``recommend=True`` also runs the recommender (seconds on a large database).
    """
    from qprof.frames import load_profile

    return load_profile(trace, db, **options)


def replay_profile(workload: str | Path, db: str | Path, **options: Any) -> "Profile":
    """Replay a workload and return its profile as DataFrames; see ``qprof.frames``."""
    from qprof.frames import replay_profile as replay

    return replay(workload, db, **options)


__all__ = [
    "Fingerprint",
    "__version__",
    "fingerprint_sql",
    "replay_workload",
    "load",
    "replay_profile",
    "trace",
    "context",
]
