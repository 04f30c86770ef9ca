"""Recommendation quality: workload VM steps with no index, qprof's picks, .expert's picks.

For each workload (the bundled samples and the cases in tests/data/cases), prints:

- the workload's total VM steps replayed on a copy with no new index, with
  qprof's recommended indexes, and with the indexes the sqlite3 shell's
  ``.expert`` proposes for its statements (when the shell is on PATH);
- where the candidate set is small (at most ``--subset-max`` candidates), every
  subset of candidates of at most as many indexes as qprof picked is measured
  with the same weighted cost model the recommender uses, and qprof's saving
  is printed as a share of the best subset's;
- how long the recommendation took.

    python benchmarks/recommend_quality.py [--cases-only] [--subset-max 8]
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import apsw

from qprof.analyze.finding import AnalysisContext, Thresholds
from qprof.recommend import recommend_indexes
from qprof.recommend.candidates import generate_candidates
from qprof.recommend.whatif import Scratch
from qprof.replay import replay_workload

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "data" / "cases"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases-only", action="store_true")
    parser.add_argument("--subset-max", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qprof-quality-") as tmp:
        folder = Path(tmp)
        rows = []
        for name, workload, database in workloads(folder, args.cases_only):
            rows.append(evaluate(name, workload, database, folder, args.subset_max))
            print_row(rows[-1])
        print()
        expert_rows = [r for r in rows if r["expert"] is not None]
        never_worse = all(r["qprof"] <= r["expert"] for r in expert_rows)
        shares = [r["subset_share"] for r in rows if r["subset_share"] is not None]
        print(
            f"never worse than .expert: {never_worse} ({len(expert_rows)} workloads compared)"
        )
        if shares:
            print(
                f"share of the best subset's saving: min {min(shares):.1%} over {len(shares)}"
            )


def workloads(folder: Path, cases_only: bool):  # type: ignore[no-untyped-def]
    if not cases_only:
        sys.path.insert(0, str(ROOT / "sample_workloads" / "agents"))
        from build_db import build_agents_db  # type: ignore[import-not-found]

        agents = folder / "agents.db"
        build_agents_db(agents)
        yield "sample agents", ROOT / "sample_workloads/agents/workload.jsonl", agents
        yield (
            "sample chinook",
            ROOT / "sample_workloads/chinook/workload.sql",
            ROOT / "sample_workloads/chinook/chinook.db",
        )
    for case in sorted(p for p in CASES.glob("*") if (p / "schema.sql").is_file()):
        database = folder / f"{case.name}.db"
        db = apsw.Connection(str(database))
        db.execute((case / "schema.sql").read_text())
        db.close()
        yield case.name, case / "workload.sql", database


def evaluate(
    name: str, workload: Path, database: Path, folder: Path, subset_max: int
) -> dict:  # type: ignore[type-arg]
    profile = replay_workload(workload, database)
    started = time.perf_counter()
    result = recommend_indexes(profile, database)
    elapsed = time.perf_counter() - started
    picks = [r.ddl for r in result.recommendations]
    expert = expert_indexes(profile, database)
    row = {
        "name": name,
        "none": profile.vm_step,
        "qprof": workload_vm(workload, database, picks, folder),
        "expert": None
        if expert is None
        else workload_vm(workload, database, expert, folder),
        "picks": len(picks),
        "seconds": elapsed,
        "subset_share": None,
    }
    index_picks = [r for r in result.recommendations if r.kind != "statistics"]
    if index_picks:
        row["subset_share"] = best_subset_share(
            profile,
            database,
            len(index_picks),
            [r.ddl for r in index_picks],
            subset_max,
        )
    return row


def workload_vm(workload: Path, database: Path, ddl: list[str], folder: Path) -> int:
    """Replay the whole workload on a copy of ``database`` with ``ddl`` applied."""
    copy = folder / "with-indexes.db"
    shutil.copyfile(database, copy)
    db = apsw.Connection(str(copy))
    for statement in ddl:
        try:
            db.execute(statement)
        except apsw.Error:
            pass
    db.close()
    vm = replay_workload(workload, copy).vm_step
    copy.unlink()
    return vm


def expert_indexes(profile, database: Path) -> list[str] | None:  # type: ignore[no-untyped-def]
    """Return the CREATE INDEX statements `.expert` proposes, or None without the shell."""
    shell = shutil.which("sqlite3")
    if shell is None:
        return None
    found: list[str] = []
    for fp in profile.fingerprints.values():
        if not fp.readonly or fp.sample_params is not None:
            continue
        script = f".expert\n{fp.sample_sql.rstrip(';')};\n"
        try:
            run = subprocess.run(
                [shell, "-readonly", str(database)],
                input=script,
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (subprocess.TimeoutExpired, OSError):
            continue
        for line in run.stdout.splitlines():
            if line.startswith("CREATE INDEX") and line not in found:
                found.append(line)
    return found


def best_subset_share(
    profile, database: Path, budget: int, picked: list[str], limit: int
):  # type: ignore[no-untyped-def]
    """Return qprof's saving over the best subset's, in the recommender's cost model."""
    source = apsw.Connection(str(database), flags=apsw.SQLITE_OPEN_READONLY)
    context = AnalysisContext(profile, profile.schema, Thresholds(), source)
    with Scratch(database, 2**34) as scratch:
        reads = sorted(
            (fp for fp in profile.fingerprints.values() if fp.readonly),
            key=lambda fp: -fp.vm_step,
        )[:40]
        candidates, _ = generate_candidates(
            context, reads, lambda t, c: scratch.distinct_values(t, c)
        )
        ddls = sorted({c.ddl for c in candidates} | set(picked))
        if len(ddls) > limit:
            source.close()
            return None

        def cost(indexes: tuple[str, ...]) -> float:
            for ddl in indexes:
                scratch.connection.execute(ddl)
            total = 0.0
            for fp in reads:
                measured = scratch.cost(fp)
                if measured is not None:
                    total += measured.vm_per_statement * fp.count
            for ddl in indexes:
                name = ddl.split()[2]
                scratch.connection.execute(f"DROP INDEX {name}")
            return total

        base = cost(())
        best = min(
            cost(subset)
            for size in range(1, budget + 1)
            for subset in itertools.combinations(ddls, size)
        )
        mine = cost(tuple(picked))
    source.close()
    if base - best <= 0:
        return 1.0
    return (base - mine) / (base - best)


def print_row(row: dict) -> None:  # type: ignore[type-arg]
    expert = "-" if row["expert"] is None else f"{row['expert']:,}"
    share = "-" if row["subset_share"] is None else f"{row['subset_share']:.1%}"
    print(
        f"{row['name']:<34} none {row['none']:>13,}  qprof {row['qprof']:>12,} "
        f"({row['picks']} picks, {row['seconds']:.1f} s)  .expert {expert:>12}  "
        f"best subset share {share}"
    )


if __name__ == "__main__":
    main()
