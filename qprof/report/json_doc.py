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
from qprof.recommend import Recommendation, RecommendationSet
from qprof.trace import encode_params


def profile_document(
    profile: WorkloadProfile,
    analysis: Analysis | None = None,
    recommended: RecommendationSet | None = None,
) -> dict[str, Any]:
    """Return the JSON-ready document for ``profile``, costliest fingerprint first."""
    findings = [finding_document(f) for f in analysis.findings] if analysis else []
    picks = recommended.recommendations if recommended else []
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
                "caller": e.caller,
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
        "recommender": _recommender(recommended),
        "recommendations": [recommendation_document(r, recommended) for r in picks],
    }


def recommendation_document(
    pick: Recommendation, result: RecommendationSet | None
) -> dict[str, Any]:
    """Return one recommendation as JSON: the keys listed in the README."""
    baseline = result.baseline_vm if result else 0.0
    return {
        "rank": pick.rank,
        "pick": pick.pick,
        "table": pick.table,
        "columns": list(pick.columns),
        "kind": pick.kind,
        "name": pick.name,
        "ddl": pick.ddl,
        "where": pick.where,
        "statistics": pick.statistics,
        "other_statistics": pick.other_statistics,
        "vm_saving_other_statistics": (
            None
            if pick.vm_saving_other_statistics is None
            else round(pick.vm_saving_other_statistics)
        ),
        "saving": {
            "vm_steps": round(pick.vm_saving),
            "ns": round(pick.ns_saving),
            "pct": round(100 * pick.net_vm / baseline, 3) if baseline else 0.0,
        },
        "write_cost_vm_steps": round(pick.write_vm),
        "write_cost_ns": round(pick.write_ns),
        "net_vm_steps": round(pick.net_vm),
        "size_bytes": pick.size_bytes,
        "replaces": list(pick.replaces),
        "reasons": list(pick.reasons),
        "workload_vm_after": round(pick.workload_vm_after),
        "storage_after": pick.storage_after,
        "fingerprints": [
            {
                "fingerprint": s.fingerprint,
                "sql": s.sql,
                "count": s.count,
                "plan_before": s.plan_before,
                "plan_after": s.plan_after,
                "vm_before": round(s.vm_before, 1),
                "vm_after": round(s.vm_after, 1),
                "ns_before": round(s.ns_before),
                "ns_after": round(s.ns_after),
                "rewritten": s.rewritten,
            }
            for s in pick.served
        ],
    }


def _recommender(result: RecommendationSet | None) -> dict[str, Any]:
    if result is None:
        return {"ran": False}
    return {
        "ran": True,
        "baseline_vm_steps": round(result.baseline_vm),
        "candidates": result.candidates,
        "sample_fraction": result.sample_fraction,
        "elapsed_s": round(result.elapsed_s, 3),
        "rejected": [
            {
                "table": r.candidate.table,
                "columns": list(r.candidate.columns),
                "reason": r.reason,
            }
            for r in result.rejected
        ],
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
