"""HTML and Markdown reports: self-contained, with the plots, the findings and the DDL."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from qprof.cli import main
from qprof.errors import OutputError
from qprof.frames import Profile
from qprof.report.html import render_html, write_html
from qprof.report.markdown import render_markdown, write_markdown

from .small_workload import small_inputs, small_profile

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return small_inputs(tmp_path_factory)


@pytest.fixture(scope="module")
def replayed(small: tuple[Path, Path]) -> Profile:
    return small_profile(small)


def test_html_is_self_contained_and_embeds_its_plots(replayed):
    text = render_html(replayed)
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower() and "<link" not in text.lower()
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', text)
    # Pareto, time per statement, plan steps, N+1 loop, before/after, cost curve.
    assert len(images) == 6
    for _alt, data in images:
        assert base64.b64decode(data).startswith(PNG_MAGIC)
    assert text.count("<img") == len(images)


def test_html_lists_fingerprints_findings_and_the_ddl(replayed):
    text = render_html(replayed)
    for fid in replayed.fingerprints["fingerprint"]:
        assert f"<code>{fid}</code>" in text
    assert "<code>n_plus_one</code>" in text and "<code>full_scan</code>" in text
    ddl = replayed.recommendations["ddl"].iloc[0]
    assert f"<pre>{ddl}</pre>" in text


def test_html_escapes_the_workload_text(replayed):
    text = render_html(replayed)
    assert "SELECT count(*) FROM items WHERE category = ?" in text
    assert "<br><small>SCAN items</small>" in text


def test_markdown_starts_with_a_table_and_ends_with_the_ddl(replayed):
    text = render_markdown(replayed)
    lines = text.splitlines()
    assert lines[0] == (
        "| statements | fingerprints | measured time | VM steps | findings | indexes |"
    )
    assert lines[1].startswith("| ---")
    assert lines[2].startswith("| 9 | 3 |")
    ddl = replayed.recommendations["ddl"].iloc[0]
    assert f"```sql\n{ddl}\n```" in text
    for fid in replayed.fingerprints["fingerprint"]:
        assert f"`{fid}`" in text
    assert "| `n_plus_one` | high |" in text


def test_markdown_escapes_pipes_in_cells(small, tmp_path):
    db, _trace = small
    workload = tmp_path / "pipe.sql"
    workload.write_text(
        "SELECT 'a' || sku FROM items WHERE id = 3;\n", encoding="utf-8"
    )
    from qprof.frames import replay_profile

    text = render_markdown(replay_profile(workload, db))
    row = next(line for line in text.splitlines() if "SELECT" in line)
    assert "\\|\\|" in row
    assert row.count(" | ") == 7  # eight cells: no cell split by the SQL's ||


def test_writing_into_a_missing_folder_raises_output_error(replayed, tmp_path):
    target = tmp_path / "missing" / "report.html"
    with pytest.raises(OutputError) as raised:
        write_html(replayed, target)
    assert raised.value.path == str(target)
    with pytest.raises(OutputError) as raised:
        write_markdown(replayed, tmp_path)
    assert raised.value.reason == "is a directory; give a file name"


def test_replay_writes_both_reports_and_says_where(small, tmp_path):
    db, trace = small
    html, markdown = tmp_path / "report.html", tmp_path / "report.md"
    result = CliRunner().invoke(
        main,
        [
            "replay",
            str(trace),
            "--db",
            str(db),
            "--html",
            str(html),
            "--markdown",
            str(markdown),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert f"Wrote the HTML report to {html}." in result.stderr
    assert f"Wrote the Markdown report to {markdown}." in result.stderr
    assert "Wrote" not in result.stdout
    assert html.read_text(encoding="utf-8").count("data:image/png;base64,") == 6
    assert markdown.read_text(encoding="utf-8").startswith("| statements |")


def test_analyze_writes_a_report_without_recommendations(small, tmp_path):
    db, trace = small
    html = tmp_path / "a.html"
    result = CliRunner().invoke(
        main, ["analyze", str(trace), "--db", str(db), "--html", str(html)]
    )
    assert result.exit_code == 0, result.output
    text = html.read_text(encoding="utf-8")
    assert "<h2>Findings</h2>" in text and "Recommended indexes" not in text


def test_a_report_in_a_missing_folder_fails_before_replaying(small, tmp_path):
    db, trace = small
    target = tmp_path / "nowhere" / "r.md"
    result = CliRunner().invoke(
        main, ["replay", str(trace), "--db", str(db), "--markdown", str(target)]
    )
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: cannot write {target}: no such folder {target.parent}\n"
    )
    assert result.stdout == ""
