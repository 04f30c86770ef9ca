"""Workload readers: SQL scripts split as SQLite splits them, qprof traces, sniffing."""

from __future__ import annotations

import json

import pytest

from qprof.errors import WorkloadError
from qprof.readers import ReadProblems, detect_format, read_workload
from qprof.readers.qprof_trace import read_records


def statements(path, fmt=None, strict=False):
    problems = ReadProblems(strict=strict)
    return list(read_workload(path, fmt, problems)), problems


def test_splits_sql_at_semicolons_outside_strings_comments_and_names(write_file):
    path = write_file(
        "w.sql",
        "-- a comment; with a semicolon\n"
        "SELECT 'a;b' FROM t; SELECT \"odd;name\" FROM t;\n"
        "/* block; comment */ SELECT [x;y] FROM t;\n",
    )
    found, problems = statements(path)
    assert [s.sql for s in found] == [
        "SELECT 'a;b' FROM t;",
        'SELECT "odd;name" FROM t;',
        "SELECT [x;y] FROM t;",
    ]
    assert [s.line for s in found] == [2, 2, 3]
    assert problems.count == 0


def test_keeps_trigger_body_in_one_statement(write_file):
    path = write_file(
        "w.sql",
        "CREATE TABLE t(a);\n"
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n"
        "  UPDATE t SET a = a + 1;\n"
        "  DELETE FROM t WHERE a = 'x;';\n"
        "END;\n"
        "INSERT INTO t VALUES (1);\n",
    )
    found, _ = statements(path)
    assert len(found) == 3
    assert found[1].sql.startswith("CREATE TRIGGER tr") and found[1].sql.endswith(
        "END;"
    )
    assert (found[1].line, found[2].line) == (2, 6)


def test_yields_last_statement_without_semicolon_and_drops_trailing_comment(write_file):
    path = write_file("w.sql", "SELECT 1;\n\nSELECT 2\n")
    found, _ = statements(path)
    assert [(s.sql, s.line) for s in found] == [("SELECT 1;", 1), ("SELECT 2", 3)]
    only_comment = write_file("c.sql", "SELECT 1;\n-- the end\n")
    assert [s.sql for s in statements(only_comment)[0]] == ["SELECT 1;"]


def test_reports_and_skips_shell_dot_commands(write_file):
    path = write_file("w.sql", "SELECT 1;\n.tables\nSELECT 2;\n")
    found, problems = statements(path)
    assert [s.sql for s in found] == ["SELECT 1;", "SELECT 2;"]
    assert problems.count == 1
    assert (problems.problems[0].line, problems.problems[0].found) == (2, '".tables"')


def test_reads_trace_with_positional_named_and_blob_params(write_file):
    lines = [
        {"qprof_trace": 1},
        {"sql": "SELECT * FROM t WHERE id = ?", "params": [7], "context": "GET /t/7"},
        {"sql": "SELECT * FROM t WHERE name = :name", "params": {"name": "O'Brien"}},
        {
            "sql": "INSERT INTO b VALUES (?)",
            "params": [{"$blob": "00ff"}],
            "elapsed_ns": 1500,
        },
        {"sql": "SELECT 1"},
    ]
    path = write_file("t.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    assert detect_format(path) == "qprof"
    found, problems = statements(path)
    assert [s.params for s in found] == [
        (7,),
        {"name": "O'Brien"},
        (b"\x00\xff",),
        None,
    ]
    assert found[0].context == "GET /t/7"
    assert found[2].logged_ns == 1500
    assert [s.line for s in found] == [2, 3, 4, 5]
    assert problems.count == 0


def test_skips_bad_trace_lines_with_their_line_numbers(write_file):
    text = (
        '{"sql": "SELECT 1"}\n'
        "SELECT oops\n"
        '{"sql": 5}\n'
        '{"sql": "SELECT 2", "params": 3}\n'
        '{"sql": "SELECT 3"}\n'
        '{"sql": "SELECT 4", "par'  # cut off mid-write
    )
    path = write_file("t.jsonl", text)
    found, problems = statements(path, "qprof")
    assert [s.sql for s in found] == ["SELECT 1", "SELECT 3"]
    assert [p.line for p in problems.problems] == [2, 3, 4, 6]
    assert problems.problems[0].path == str(path)


def test_statements_naming_a_shape_take_its_keys_and_parts_number_their_own(
    write_file,
):
    lines = [
        {"qprof_trace": 2},
        {
            "qprof_shape": {
                "id": 1,
                "sql": "SELECT a FROM t WHERE id = ?",
                "caller": "m.py:3",
            }
        },
        {"shape": 1, "params": [1], "ts": 10.0},
        {"shape": 1, "params": [2], "caller": "m.py:9"},
        {"shape": 2, "params": [3]},  # no shape 2 above
        {"qprof_part": {"process": "pid7", "pid": 7}},
        {"shape": 1, "params": [4]},  # the part's own numbering: not defined yet
        {"qprof_shape": {"id": 1, "sql": "SELECT b FROM u", "context": "t::x"}},
        {"shape": 1},
    ]
    path = write_file("t.jsonl", "\n".join(json.dumps(line) for line in lines) + "\n")
    found, problems = statements(path, "qprof")
    assert [(s.sql, s.params, s.caller, s.context, s.line) for s in found] == [
        ("SELECT a FROM t WHERE id = ?", (1,), "m.py:3", None, 3),
        ("SELECT a FROM t WHERE id = ?", (2,), "m.py:9", None, 4),
        ("SELECT b FROM u", None, None, "t::x", 9),
    ]
    assert found[0].ts == 10.0
    assert [p.line for p in problems.problems] == [5, 7]
    assert "qprof_shape" in problems.problems[0].expected


def test_odd_shape_ids_and_numbers_are_bad_lines_and_a_header_restarts_shapes(
    write_file,
):
    lines = [
        '{"qprof_shape": {"id": 1, "sql": "SELECT 1"}}',
        '{"shape": [1]}',
        '{"shape": {"a": 1}}',
        '{"qprof_shape": {"id": [2], "sql": "SELECT 2"}}',
        '{"shape": 1, "measured": {"elapsed_ns": 99999999999999999999999999}}',
        '{"shape": 1, "measured": {"vm_step": -1}}',
        '{"shape": 1, "measured": {"rows_returned": 1.5}}',
        '{"shape": 1, "ts": 1e400}',
        '{"shape": 1, "ts": 1e20}',
        '{"shape": 1, "ts": 1700000000.5, "measured": {"elapsed_ns": 7}}',
        '{"qprof_trace": 2}',  # a second trace, concatenated: its own numbering
        '{"shape": 1}',
    ]
    path = write_file("t.jsonl", "\n".join(lines) + "\n")
    found, problems = statements(path, "qprof")
    assert [(s.sql, s.line, s.ts) for s in found] == [("SELECT 1", 10, 1700000000.5)]
    assert [p.line for p in problems.problems] == [2, 3, 5, 6, 7, 8, 9, 12]
    assert "2**63" in problems.problems[2].expected


def test_a_lone_surrogate_in_a_statement_is_read_as_a_replacement_character(
    write_file,
):
    path = write_file(
        "t.jsonl",
        '{"sql": "SELECT * FROM \\"t\\ud800\\""}\n'
        '{"sql": "SELECT 1", "measured": {"error": "ValueError: bad \\udc80"}}\n'
        '{"sql": "SELECT 2", "params": ' + "[" * 100_000 + "}\n",  # nested too deep
    )
    problems = ReadProblems()
    found = list(read_records(path, problems))
    assert [s.sql for s, _record in found] == ['SELECT * FROM "t\ufffd"', "SELECT 1"]
    assert found[1][1]["measured"]["error"] == "ValueError: bad \ufffd"
    assert [p.line for p in problems.problems] == [3]


def test_strict_raises_the_first_bad_line(write_file):
    path = write_file("t.jsonl", '{"sql": "SELECT 1"}\nnot json\n{"sql": "SELECT 2"}\n')
    with pytest.raises(WorkloadError) as raised:
        statements(path, "qprof", strict=True)
    assert (raised.value.line, raised.value.found) == (2, '"not json"')


def test_sniffs_sql_for_plain_scripts(write_file):
    assert detect_format(write_file("a.log", "-- hi\nSELECT 1;\n")) == "sql"
    assert detect_format(write_file("b.log", '{"sql": "SELECT 1"}\n')) == "qprof"


def test_missing_workload_is_a_workload_error(tmp_path):
    with pytest.raises(WorkloadError) as raised:
        read_workload(tmp_path / "nope.sql")
    assert raised.value.found == "no such file"


def test_unterminated_string_is_reported_after_the_complete_statements(write_file):
    path = write_file("w.sql", "SELECT 1; SELECT 'open; SELECT 2;\nSELECT 3;\n")
    found, problems = statements(path)
    assert [s.sql for s in found] == ["SELECT 1;"]
    assert problems.count == 1 and problems.problems[0].line == 1
    assert "runs to the end of the file" in problems.problems[0].hint


def test_nul_bytes_are_reported_and_skipped(tmp_path):
    path = tmp_path / "w.sql"
    path.write_bytes(b"SELECT 1;\n\x00\x01garbage\nSELECT 2;\n")
    found, problems = statements(path)
    assert [s.sql for s in found] == ["SELECT 1;", "SELECT 2;"]
    assert [(p.line, p.found) for p in problems.problems] == [(2, "a NUL byte")]


def test_byte_order_marks_are_read_as_text(tmp_path):
    utf8 = tmp_path / "a.sql"
    utf8.write_bytes(b"\xef\xbb\xbfSELECT 1;\n")
    utf16 = tmp_path / "b.sql"
    utf16.write_bytes("SELECT 2;\n".encode("utf-16"))
    assert [s.sql for s in statements(utf8)[0]] == ["SELECT 1;"]
    assert [s.sql for s in statements(utf16)[0]] == ["SELECT 2;"]


def test_trace_sniffing_survives_one_bad_first_line(write_file):
    path = write_file("t.jsonl", 'not json\n{"sql": "SELECT 1"}\n{"sql": "SELECT 2"}\n')
    assert detect_format(path) == "qprof"


def test_nan_is_not_accepted_as_a_parameter(write_file):
    path = write_file(
        "t.jsonl", '{"sql": "SELECT ?", "params": [NaN]}\n{"sql": "SELECT 1"}\n'
    )
    found, problems = statements(path, "qprof")
    assert [s.sql for s in found] == ["SELECT 1"] and problems.problems[0].line == 1


def test_pipes_and_devices_are_refused_with_a_reason():
    with pytest.raises(WorkloadError) as raised:
        read_workload("/dev/null")
    assert raised.value.found.startswith("not a regular file")
