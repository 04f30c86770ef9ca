"""The JSON document of ``--json``: stable keys that CI scripts read.

Top level: ``qprof_version``, ``workload``, ``replay``, ``fingerprints``,
``errors``, ``skipped_lines``, ``findings``, ``recommendations``. The keys are
documented in the README; add keys, never rename them.
"""

from __future__ import annotations

from typing import Any

from qprof import __version__
from qprof.profile import FingerprintProfile, WorkloadProfile
from qprof.trace import encode_params


def profile_document(
    profile: WorkloadProfile,
    findings: list[dict[str, Any]] | None = None,
    recommendations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return the JSON-ready document for ``profile``, costliest fingerprint first."""
    return {
        "qprof_version": __version__,
        "workload": {
            "file": profile.workload,
            "format": profile.format,
            "statements": profile.statements,
            "fingerprints": len(profile.fingerprints),
            "errors": profile.error_count,
            "skipped_lines": profile.skipped_lines,
            "total_ns": profile.total_ns,
            "vm_steps": profile.vm_step,
        },
        "replay": {
            "database": profile.database,
            "mode": profile.mode,
            "repeat": profile.repeat,
            "elapsed_s": round(profile.elapsed_s, 6),
        },
        "fingerprints": [_fingerprint(profile, fp) for fp in profile.costliest()],
        "errors": [
            {
                "location": e.location,
                "fingerprint": e.fingerprint,
                "sql": e.sql,
                "error": e.error,
            }
            for e in profile.errors
        ],
        "skipped_lines": list(profile.skipped),
        "findings": findings or [],
        "recommendations": recommendations or [],
    }


def _fingerprint(profile: WorkloadProfile, fp: FingerprintProfile) -> dict[str, Any]:
    return {
        "fingerprint": fp.fingerprint.id,
        "sql": fp.fingerprint.text,
        "sample_sql": fp.sample_sql,
        "sample_params": encode_params(fp.sample_params),
        "first_location": fp.first_location,
        "readonly": fp.readonly,
        "count": fp.count,
        "errors": fp.errors,
        "total_ns": fp.total_ns,
        "mean_ns": fp.mean_ns,
        "p50_ns": fp.percentile_ns(50),
        "p95_ns": fp.percentile_ns(95),
        "share": round(profile.share(fp), 6),
        "vm_steps": fp.vm_step,
        "fullscan_steps": fp.fullscan_step,
        "sorts": fp.sort,
        "autoindex": fp.autoindex,
        "rows_returned": fp.rows_returned,
        "rows_changed": fp.rows_changed,
        "logged_ns": fp.logged_ns if fp.logged_count else None,
        "contexts": len(fp.contexts),
        "plan": [str(line) for line in fp.plan],
        "plan_varies": fp.plan_varies,
        "plans": [
            {
                "plan": [str(line) for line in variant.plan],
                "sql": variant.sql,
                "params": encode_params(variant.params),
                "location": variant.location,
            }
            for variant in fp.plans
        ],
    }
