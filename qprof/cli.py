"""The ``qprof`` command line: one click group, commands are verbs.

Errors reach the user once, here: a ``QprofError`` becomes ``Error: ...`` on
stderr and exit status 2 (bad input); an interrupted run exits 130 after the
snapshot copy is removed. Results go to stdout, progress and messages to stderr.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from qprof import __version__
from qprof.analyze import FINDING_KINDS, Analysis, Thresholds, analyze_profile
from qprof.check import (
    DEFAULT_FAIL_ON,
    CheckResult,
    check_findings,
    github_annotations,
    read_baseline,
    result_document,
)
from qprof.check import write_baseline as write_baseline_file
from qprof.errors import OutputError, QprofError
from qprof.loading import profile_trace
from qprof.profile import Measurement, WorkloadProfile
from qprof.readers import ReadProgress, detect_format, format_names
from qprof.recommend import RecommendationSet, RecommendOptions, recommend_indexes
from qprof.recommend.migration import write_migration
from qprof.replay import check_inputs, replay_workload
from qprof.report.json_doc import profile_document
from qprof.report.text import plural, render_text
from qprof.trace import TraceWriter, has_statement_lines

if TYPE_CHECKING:
    from qprof.frames import StatementRows

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130
PROGRESS_EVERY = 512


class QprofGroup(click.Group):
    """A click group that turns qprof's errors into one clear line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QprofError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            click.echo("Interrupted; no snapshot copy is left behind.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception:
            # Exit 1 means "findings" to `qprof check`: a bug must not look like one.
            traceback.print_exc()
            click.echo(
                "Error: qprof failed on an internal error (the traceback above); "
                "please report it.",
                err=True,
            )
            ctx.exit(EXIT_INTERNAL)


@click.group(cls=QprofGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qprof")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Say more on stderr (-v stages, -vv statements).",
)
def main(verbose: int) -> None:
    """Profile the SQL workload an application sends to SQLite.

    Replay a logged workload against a database, or capture what a Python
    program or test suite sends to SQLite (`qprof run`, `pytest --qprof`), to
    learn which statements cost the most and why, and which indexes to add;
    the database is never written.

    Exit status: 0 done, 1 findings that `qprof check` fails on, 2 bad input (a
    missing file, a database that is not SQLite, a bad line under --strict),
    3 an internal error (a bug), 130 interrupted.
    """
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(
        level=level, format="%(message)s", stream=sys.stderr, force=True
    )
    # sqlglot warns about syntax it falls back on; qprof counts unparsed statements itself.
    logging.getLogger("sqlglot").setLevel(
        logging.ERROR if verbose < 2 else logging.DEBUG
    )
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)


def db_option(help_text: str, required: bool = True) -> Callable[[F], F]:
    """Return the ``--db`` option, with the help text of the command's wording."""
    return click.option(
        "--db",
        "database",
        required=required,
        type=click.Path(path_type=Path),
        help=help_text,
    )


strict_option = click.option(
    "--strict",
    is_flag=True,
    help="Stop at the first line no reader understands (exit 2) instead of skipping it.",
)


def workload_options(command: F) -> F:
    """Add the options every command that reads a workload shares."""
    decorators = [
        click.argument("workload", type=click.Path(path_type=Path)),
        db_option("The SQLite database the workload ran against (never written)."),
        click.option(
            "--format",
            "format_name",
            type=click.Choice(["auto", *format_names()]),
            default="auto",
            show_default=True,
            help="The workload's format; auto detects it from the first lines.",
        ),
        strict_option,
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def threshold_options(command: F) -> F:
    """Add the analyzer's thresholds, shared by every command that analyses."""
    defaults = Thresholds()
    decorators = [
        click.option(
            "--scan-min-rows",
            type=click.IntRange(0),
            default=defaults.scan_min_rows,
            show_default=True,
            help="Full scans of tables with fewer rows are not findings.",
        ),
        click.option(
            "--n-plus-one-min",
            type=click.IntRange(2),
            default=defaults.n_plus_one_min,
            show_default=True,
            help="Repeats of one statement in one context that make an N+1 loop.",
        ),
        click.option(
            "--offset-min",
            type=click.IntRange(1),
            default=defaults.offset_min,
            show_default=True,
            help="OFFSET values from this size on are deep pagination.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def analysis_options(command: F) -> F:
    """Add the thresholds and the output options of the commands that report."""
    decorators = [
        threshold_options,
        click.option(
            "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
        ),
        click.option(
            "--top",
            type=click.IntRange(1),
            default=10,
            show_default=True,
            help="Fingerprints and findings to list.",
        ),
        click.option(
            "--progress/--no-progress",
            default=None,
            help="Show a progress bar on stderr [default: when stderr is a terminal].",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def report_file_options(command: F) -> F:
    """Add ``--html`` and ``--markdown``: report files written besides stdout's report."""
    decorators = [
        click.option(
            "--html",
            "html_path",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Also write a self-contained HTML report (tables and plots) to this file.",
        ),
        click.option(
            "--markdown",
            "markdown_path",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Also write a Markdown summary (for a pull-request comment) to this file.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _writable_folder(
    ctx: click.Context, param: click.Parameter, value: Path | None
) -> Path | None:
    """Check a folder option before any work starts: it exists or can be made."""
    if value is None:
        return None
    try:
        value.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise click.BadParameter(
            f"cannot make folder {value}: {error.strerror}"
        ) from None
    return value


def recommend_options(command: F) -> F:
    """Add the recommender's budgets, shared by replay and recommend."""
    defaults = RecommendOptions()
    decorators = [
        click.option(
            "--max-indexes",
            type=click.IntRange(1),
            default=defaults.max_indexes,
            show_default=True,
            help="Recommend at most this many indexes.",
        ),
        click.option(
            "--max-size",
            type=click.FloatRange(0, min_open=True),
            default=None,
            help="Stop before the recommended indexes take more than this many MB.",
        ),
        click.option(
            "--min-saving",
            type=click.FloatRange(0),
            default=defaults.min_saving_pct,
            show_default=True,
            help="A pick must save this percent of the workload's remaining VM steps.",
        ),
        click.option(
            "--migration",
            type=click.Path(file_okay=False, path_type=Path),
            callback=_writable_folder,
            help="Write the picks as DIR/<timestamp>_qprof_indexes/{up,down}.sql.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@main.command()
@workload_options
@analysis_options
@click.option(
    "--repeat",
    type=click.IntRange(1, 1000),
    default=1,
    show_default=True,
    help="Run each read statement N times and keep the median time.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every measured statement to this qprof trace (JSON Lines).",
)
@click.option(
    "--no-analyze",
    is_flag=True,
    help="Only measure: skip the analyzer and the recommender.",
)
@recommend_options
@click.option(
    "--no-recommend", is_flag=True, help="Skip the recommender (a quicker look)."
)
@report_file_options
def replay(
    workload: Path,
    database: Path,
    format_name: str,
    strict: bool,
    repeat: int,
    as_json: bool,
    out: Path | None,
    no_analyze: bool,
    no_recommend: bool,
    max_indexes: int,
    max_size: float | None,
    min_saving: float,
    migration: Path | None,
    top: int,
    progress: bool | None,
    scan_min_rows: int,
    n_plus_one_min: int,
    offset_min: int,
    html_path: Path | None = None,
    markdown_path: Path | None = None,
) -> None:
    """Replay a logged workload against a database: what it cost, why, and which indexes fix it.

    Every statement runs and is measured (wall time, VM steps, full-scan steps,
    sorts, automatic indexes, rows). A workload that only reads runs on the
    database opened read-only; one that writes runs on a temporary snapshot
    copy, removed afterwards. Then the analyzer lists what is wrong (N+1 loops,
    full scans, unindexed filters, sorts, ...), costliest first, and the
    recommender tries candidate indexes on a scratch copy and lists those that
    were measured to pay.

    Example:

    \b
        qprof replay sample_workloads/chinook/workload.sql \\
            --db sample_workloads/chinook/chinook.db
    """
    check_inputs(workload, database)
    if out is not None and any(_same_file(out, path) for path in (workload, database)):
        raise click.BadParameter(
            "must not be the workload or the database", param_hint="--out"
        )
    show_progress = sys.stderr.isatty() if progress is None else progress
    read_progress = ReadProgress()
    rows = _statement_rows(html_path, markdown_path)
    with (
        _trace_writer(out, workload, database) as write,
        _progress_bar(show_progress, read_progress) as tick,
    ):

        def on_measurement(measurement: Measurement) -> None:
            if write is not None:
                write(measurement)
            tick()
            if rows is not None:
                rows.add(measurement)

        profile = replay_workload(
            workload,
            database,
            format=None if format_name == "auto" else format_name,
            repeat=repeat,
            strict=strict,
            progress=read_progress,
            on_measurement=on_measurement,
        )
    thresholds = Thresholds(scan_min_rows, n_plus_one_min, offset_min)
    analysis = None if no_analyze else analyze_profile(profile, database, thresholds)
    recommended = None
    if not (no_analyze or no_recommend):
        options = _recommend_options(max_indexes, max_size, min_saving)
        recommended = _recommend(
            profile, database, options, analysis, show_progress, migration
        )
    _print_result(profile, analysis, as_json, top, recommended)
    _write_reports(profile, analysis, recommended, rows, html_path, markdown_path, top)


@main.command()
@click.argument("trace", type=click.Path(path_type=Path))
@db_option(
    "The SQLite database the trace ran against (never written). Optional for a "
    "captured trace that recorded its schema: plans are then taken on an empty replica.",
    required=False,
)
@strict_option
@analysis_options
@report_file_options
def analyze(
    trace: Path,
    database: Path | None,
    strict: bool,
    as_json: bool,
    top: int,
    progress: bool | None,
    scan_min_rows: int,
    n_plus_one_min: int,
    offset_min: int,
    html_path: Path | None = None,
    markdown_path: Path | None = None,
) -> None:
    """Analyze a saved trace: list what is wrong with its statements, costliest first.

    A trace written by `qprof replay --out` or captured (`qprof.trace`,
    `pytest --qprof`, `qprof run`) is read with its measurements, nothing is run
    again; any other workload (a log, a trace without measurements) is replayed
    first, as `qprof replay` does.

    Example:

    \b
        qprof replay sample_workloads/chinook/workload.sql \\
            --db sample_workloads/chinook/chinook.db --out measured.jsonl
        qprof analyze measured.jsonl --db sample_workloads/chinook/chinook.db
    """
    show_progress = sys.stderr.isatty() if progress is None else progress
    rows = _statement_rows(html_path, markdown_path)
    profile = _read_trace(trace, database, strict, show_progress, rows)
    thresholds = Thresholds(scan_min_rows, n_plus_one_min, offset_min)
    analysis = analyze_profile(profile, database, thresholds)
    _print_result(profile, analysis, as_json, top)
    _write_reports(profile, analysis, None, rows, html_path, markdown_path, top)


@main.command()
@click.argument("trace", type=click.Path(path_type=Path))
@db_option("The SQLite database the trace ran against (never written).")
@strict_option
@recommend_options
@analysis_options
@report_file_options
def recommend(
    trace: Path,
    database: Path,
    strict: bool,
    max_indexes: int,
    max_size: float | None,
    min_saving: float,
    migration: Path | None,
    as_json: bool,
    top: int,
    progress: bool | None,
    scan_min_rows: int,
    n_plus_one_min: int,
    offset_min: int,
    html_path: Path | None = None,
    markdown_path: Path | None = None,
) -> None:
    """Recommend indexes for a saved trace, each measured on a scratch copy.

    Candidates come from how the costliest statements filter, join and sort;
    each is created on a scratch copy of the database, checked with EXPLAIN
    QUERY PLAN, and measured against the workload's own statements and writes.
    The picks are greedy by net saving per byte, re-measured after each one.

    Example:

    \b
        qprof recommend measured.jsonl --db app.db --max-indexes 3 --migration migrations/
    """
    show_progress = sys.stderr.isatty() if progress is None else progress
    rows = _statement_rows(html_path, markdown_path)
    profile = _read_trace(trace, database, strict, show_progress, rows)
    thresholds = Thresholds(scan_min_rows, n_plus_one_min, offset_min)
    analysis = analyze_profile(profile, database, thresholds)
    options = _recommend_options(max_indexes, max_size, min_saving)
    recommended = _recommend(
        profile, database, options, analysis, show_progress, migration
    )
    _print_result(profile, analysis, as_json, top, recommended)
    _write_reports(profile, analysis, recommended, rows, html_path, markdown_path, top)


@main.command()
@click.argument("trace", type=click.Path(path_type=Path))
@db_option(
    "The SQLite database the trace ran against (never written). Optional for a "
    "captured trace that recorded its schema.",
    required=False,
)
@strict_option
@click.option(
    "--fail-on",
    default=",".join(DEFAULT_FAIL_ON),
    show_default=True,
    help="Finding kinds that fail the check, comma-separated (see the README).",
)
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Accepted findings (from --write-baseline): only new ones fail.",
)
@click.option(
    "--write-baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Record the current findings as accepted in this file, and pass.",
)
@click.option(
    "--max-statements-per-test",
    type=click.IntRange(1),
    help="Fail any context (a test id) that runs more statements than this.",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="github prints GitHub Actions annotations at the caller's file and line.",
)
@threshold_options
def check(
    trace: Path,
    database: Path | None,
    strict: bool,
    fail_on: str,
    baseline: Path | None,
    write_baseline: Path | None,
    max_statements_per_test: int | None,
    output: str,
    scan_min_rows: int,
    n_plus_one_min: int,
    offset_min: int,
) -> None:
    """Fail (exit 1) when the trace has query problems the baseline does not accept.

    Exit status: 0 clean (or every failing finding accepted), 1 new findings or a
    test over its statement budget, 2 bad input (a bad trace, database or baseline).

    Example:

    \b
        pytest --qprof=trace.jsonl
        qprof check trace.jsonl --db app.db --baseline qprof-baseline.json
    """
    kinds = tuple(k.strip() for k in fail_on.split(",") if k.strip())
    unknown = [k for k in kinds if k not in FINDING_KINDS]
    if unknown or not kinds:
        raise click.BadParameter(
            f"unknown kind {', '.join(unknown) or '(none)'}; "
            f"choose among {', '.join(FINDING_KINDS)}",
            param_hint="--fail-on",
        )
    accepted = read_baseline(baseline) if baseline is not None else None
    profile = _read_trace(trace, database, strict, show_progress=False)
    thresholds = Thresholds(scan_min_rows, n_plus_one_min, offset_min)
    analysis = analyze_profile(profile, database, thresholds, kinds)
    if write_baseline is not None:
        count = write_baseline_file(analysis, profile, write_baseline, kinds)
        click.echo(
            f"Wrote {plural(count, 'accepted finding')} to {write_baseline}.", err=True
        )
        return
    result = check_findings(analysis, profile, kinds, accepted, max_statements_per_test)
    _print_check(result, output)
    if result.failed:
        raise SystemExit(EXIT_FINDINGS)


def _print_check(result: CheckResult, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(result_document(result), indent=2))
        return
    if output == "github":
        for line in github_annotations(result):
            click.echo(line)
        return
    for finding in result.new:
        where = finding.table or ""
        if finding.columns:
            where += "(" + ", ".join(finding.columns) + ")"
        click.echo(f"NEW {finding.kind} {where}: {finding.message}")
        callers = finding.evidence.get("callers")
        if callers:
            click.echo(f"    caller: {', '.join(callers[:3])}")
        click.echo(f"    -> {finding.advice}")
    for breach in result.budget:
        click.echo(
            f"OVER BUDGET {breach.context}: {breach.statements} statements "
            f"(at most {breach.limit})"
        )
    verdict = "failed" if result.failed else "passed"
    click.echo(
        f"qprof check {verdict}: {plural(len(result.new), 'new finding')}, "
        f"{len(result.accepted)} accepted by the baseline, "
        f"{plural(len(result.budget), 'test')} over budget."
    )


@main.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".qprof/run.jsonl"),
    show_default=True,
    help="Write the captured trace here.",
)
@db_option(
    "Take plans on this database instead of an empty replica of the captured schema.",
    required=False,
)
@analysis_options
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    out: Path,
    database: Path | None,
    command: tuple[str, ...],
    as_json: bool,
    top: int,
    progress: bool | None,
    scan_min_rows: int,
    n_plus_one_min: int,
    offset_min: int,
) -> None:
    """Run a Python program with capture on, then analyze what it sent to SQLite.

    Every apsw and sqlite3 connection the program opens is traced into --out;
    then the trace is analyzed as `qprof analyze` does. The exit status is the
    program's.

    Example:

    \b
        qprof run --out trace.jsonl -- python app.py --port 8000
    """
    from qprof.capture.parts import existing_parts, merge_parts
    from qprof.capture.run import run_traced

    earlier = existing_parts(out)  # an earlier run's leftovers stay out of this one
    try:
        status = run_traced(command, out)
    except OSError as error:
        raise click.UsageError(
            f"cannot run {command[0]}: {error.strerror or error}"
        ) from None
    if status < 0:  # killed by a signal: exit as a shell reports it, 128 + N
        name = signal.Signals(-status).name if -status in _SIGNALS else str(-status)
        click.echo(f"qprof: the program was killed by {name}.", err=True)
        status = 128 - status
    merge_parts(out, wait_s=5, earlier=earlier)  # the Python processes it started
    if not has_statement_lines(out):
        click.echo(f"qprof: no SQLite statement was traced into {out}.", err=True)
        sys.exit(status)
    try:
        profile = _read_trace(out, database, strict=False, show_progress=False)
        thresholds = Thresholds(scan_min_rows, n_plus_one_min, offset_min)
        analysis = analyze_profile(profile, database, thresholds)
    except QprofError as error:
        # The program ran: its exit status stands, whatever the analysis makes of it.
        click.echo(f"Error: {error}", err=True)
        sys.exit(status)
    _print_result(profile, analysis, as_json, top)
    sys.exit(status)


_SIGNALS = {int(number) for number in signal.Signals}


def _recommend_options(
    max_indexes: int, max_size: float | None, min_saving: float
) -> RecommendOptions:
    size = None if max_size is None else int(max_size * 1024 * 1024)
    return RecommendOptions(
        max_indexes=max_indexes, max_size_bytes=size, min_saving_pct=min_saving
    )


def _read_trace(
    trace: Path,
    database: Path | None,
    strict: bool,
    show_progress: bool,
    rows: StatementRows | None = None,
) -> WorkloadProfile:
    """Check the inputs, then read (or replay) the trace into a profile.

    ``rows``, when given, keeps every statement (for ``--html``/``--markdown``).
    """
    if database is None:
        detect_format(trace)
    else:
        check_inputs(trace, database)
    read_progress = ReadProgress()
    with _progress_bar(show_progress, read_progress, "Reading"):
        return profile_trace(
            trace,
            database,
            strict=strict,
            progress=read_progress,
            on_measurement=rows.add if rows is not None else None,
        )


def _statement_rows(
    html_path: Path | None, markdown_path: Path | None
) -> StatementRows | None:
    """Return a collector of per-statement rows when a report file is asked for.

    Raises ``OutputError`` before anything runs when a report's folder is missing.
    """
    if html_path is None and markdown_path is None:
        return None
    for path in (html_path, markdown_path):
        if path is not None and not path.parent.is_dir():
            raise OutputError(path, f"no such folder {path.parent}")
    from qprof.frames import StatementRows

    return StatementRows()


def _write_reports(
    profile: WorkloadProfile,
    analysis: Analysis | None,
    recommended: RecommendationSet | None,
    rows: StatementRows | None,
    html_path: Path | None,
    markdown_path: Path | None,
    top: int,
) -> None:
    """Write the --html and --markdown files and say on stderr where they went."""
    if html_path is None and markdown_path is None:
        return
    # pandas and matplotlib are imported only when a report file is asked for.
    from qprof.frames import Profile
    from qprof.report.html import write_html
    from qprof.report.markdown import write_markdown

    frames = Profile.from_results(profile, analysis, recommended, rows)
    if html_path is not None:
        target = write_html(frames, html_path, top)
        click.echo(f"Wrote the HTML report to {target}.", err=True)
    if markdown_path is not None:
        target = write_markdown(frames, markdown_path, top)
        click.echo(f"Wrote the Markdown report to {target}.", err=True)


def _recommend(
    profile: WorkloadProfile,
    database: Path,
    options: RecommendOptions,
    analysis: Analysis | None,
    show_progress: bool,
    migration: Path | None,
) -> RecommendationSet:
    """Run the recommender (with a progress bar) and write the migration if asked."""
    context = analysis.context if analysis else None
    if not show_progress:
        result = recommend_indexes(profile, database, options, context)
    else:
        with click.progressbar(
            length=1, label="Measuring indexes", file=sys.stderr, width=30
        ) as bar:

            def tick(done: int, total: int) -> None:
                bar.length = max(total, 1)
                bar.pos = done
                bar.render_progress()

            result = recommend_indexes(profile, database, options, context, tick)
    if migration is not None:
        target = write_migration(result, migration)
        click.echo(f"Wrote {target / 'up.sql'} and {target / 'down.sql'}.", err=True)
    return result


def _print_result(
    profile: WorkloadProfile,
    analysis: Analysis | None,
    as_json: bool,
    top: int,
    recommended: RecommendationSet | None = None,
) -> None:
    if as_json:
        document = profile_document(profile, analysis, recommended)
        click.echo(json.dumps(document, indent=2, allow_nan=False))
        return
    width = max(40, shutil.get_terminal_size((100, 24)).columns)
    text = render_text(
        profile, top=top, width=width, analysis=analysis, recommended=recommended
    )
    click.echo(text, nl=False)


@contextmanager
def _trace_writer(
    out: Path | None, workload: Path, database: Path
) -> Iterator[Callable[[Measurement], None] | None]:
    if out is None:
        yield None
        return
    writer = TraceWriter(
        out,
        created_by="qprof replay",
        workload=str(workload),
        database=str(database),
    )
    with writer:

        def write(measurement: Measurement) -> None:
            writer.write(
                measurement.statement,
                fingerprint=measurement.fingerprint.id,
                measured={
                    "elapsed_ns": measurement.elapsed_ns,
                    "vm_step": measurement.vm_step,
                    "fullscan_step": measurement.fullscan_step,
                    "sort": measurement.sort,
                    "autoindex": measurement.autoindex,
                    "rows_returned": measurement.rows_returned,
                    "rows_changed": measurement.rows_changed,
                    "error": measurement.error,
                },
            )

        yield write


@contextmanager
def _progress_bar(
    show: bool, progress: ReadProgress, label: str = "Replaying"
) -> Iterator[Callable[[], None]]:
    if not show:
        yield lambda: None
        return
    with click.progressbar(length=1, label=label, file=sys.stderr, width=30) as bar:
        count = 0
        shown = 0

        def tick() -> None:
            nonlocal count, shown
            count += 1
            if count % PROGRESS_EVERY:
                return
            bar.length = max(progress.total_bytes, 1)
            bar.update(progress.bytes_read - shown)
            shown = progress.bytes_read

        yield tick
        bar.length = max(progress.total_bytes, 1)
        bar.update(progress.bytes_read - shown)


def _same_file(a: Path, b: Path) -> bool:
    """Return True when ``a`` and ``b`` are one file (a link, a hard link, the same path)."""
    try:
        return a.resolve() == b.resolve() or (
            a.exists() and b.exists() and a.samefile(b)
        )
    except OSError:
        return False


def _interrupt(signum: int, frame: object) -> None:
    """Stop the run: raise KeyboardInterrupt once, and ignore the signals after it.

    A second Ctrl-C while the first unwinds would otherwise cut the clean-up
    short and leave a snapshot or scratch copy behind.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
