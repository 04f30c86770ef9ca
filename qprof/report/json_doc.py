"""The JSON document of ``--json``: stable keys that CI scripts read.

Top level: ``qprof_version``, ``workload``, ``replay``, ``fingerprints``,
``errors``, ``skipped_lines``, ``findings``, ``recommendations``. The keys are
documented in the README; add keys, never rename them.
"""

from __future__ import annotations

from typing import Any

from qprof import __version__
from qprof.analyze import Analysis, Finding
from qprof.profile import FingerprintProfile, WorkloadProfile
from qprof.trace import encode_params


def profile_document(
    profile: WorkloadProfile,
    analysis: Analysis | None = None,
    recommendations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return the JSON-ready document for ``profile``, costliest fingerprint first."""
    findings = [finding_document(f) for f in analysis.findings] if analysis else []
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
        "analysis": {
            "ran": analysis is not None,
            "fingerprints": analysis.fingerprints if analysis else 0,
            "unparsed": analysis.unparsed if analysis else 0,
            "failed_detectors": dict(analysis.failed) if analysis else {},
        },
        "findings": findings,
        "recommendations": recommendations or [],
    }


def finding_document(finding: Finding) -> dict[str, Any]:
    """Return one finding as JSON: the keys listed in the README."""
    return {
        "kind": finding.kind,
        "severity": finding.severity,
        "fingerprint": finding.fingerprint,
        "fingerprints": list(finding.fingerprints),
        "sql": finding.sql,
        "table": finding.table,
        "columns": list(finding.columns),
        "message": finding.message,
        "advice": finding.advice,
        "cost_share": {
            "time": round(finding.time_share, 6),
            "vm_steps": round(finding.vm_share, 6),
        },
        "evidence": _jsonable(finding.evidence),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return {"$blob": bytes(value).hex()}
    if isinstance(value, float) and value != value:
        return None
    return value


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
