"""qprof: a query workload profiler for SQLite.

The pipeline, one module per stage: ``readers`` (workload files into
statements), ``fingerprint``, ``replay`` (measure on the database), ``profile``
(per fingerprint), ``plan`` (EXPLAIN QUERY PLAN), ``report`` (text and JSON).
"""

__version__ = "0.1.0"

from qprof.fingerprint import Fingerprint, fingerprint_sql  # noqa: E402
from qprof.replay import replay_workload  # noqa: E402

__all__ = ["Fingerprint", "__version__", "fingerprint_sql", "replay_workload"]
