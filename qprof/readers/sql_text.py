"""Small facts about SQL text that several log readers need.

Which words start a statement (to tell SQL from result rows or other log
text), whether a piece of SQL looks finished (to split logs that do not end
statements with a semicolon), and where named placeholders are.
"""

from __future__ import annotations

import re

import apsw

STATEMENT_WORDS = frozenset(
    """ALTER ANALYZE ATTACH BEGIN COMMIT CREATE DELETE DETACH DROP END EXPLAIN
    INSERT PRAGMA REINDEX RELEASE REPLACE ROLLBACK SAVEPOINT SELECT UPDATE UPSERT
    VACUUM VALUES WITH""".split()
)
"""The words an SQLite statement can begin with (https://sqlite.org/lang.html)."""

WRITE_WORDS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE"})
"""First words of the statements that can fire triggers."""

_FIRST_WORD = re.compile(r"\s*\(*\s*([A-Za-z]+)")
_QUOTED = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]|--[^\n]*|/\*.*?(?:\*/|\Z)",
    re.S,
)
_NAMED = re.compile(r"[:$@]([A-Za-z_]\w*)")
# Words after which a statement must go on: a line ending in one is not the end.
_GOES_ON = frozenset(
    "AND OR NOT UNION ALL EXCEPT INTERSECT AS ON BY FROM JOIN WHERE SET INTO SELECT".split()
)


def first_word(text: str) -> str:
    """Return the first word of ``text`` in upper case, or ``""``.

    >>> first_word("  select 1"), first_word("(SELECT 1) UNION SELECT 2"), first_word("42|x")
    ('SELECT', 'SELECT', '')
    """
    match = _FIRST_WORD.match(text)
    return match.group(1).upper() if match else ""


def reads_only(sql: str) -> bool:
    """Return True when ``sql``'s words say it only reads.

    >>> reads_only("SELECT 1"), reads_only("WITH x AS (SELECT 1) DELETE FROM t")
    (True, False)
    >>> reads_only("CREATE TABLE t (a)"), reads_only("PRAGMA table_info(t)")
    (False, True)
    """
    word = first_word(sql)
    if word in ("SELECT", "VALUES", "EXPLAIN"):
        return True
    if word == "PRAGMA":
        return "=" not in without_literals(sql)
    if word == "WITH":
        words = set(re.findall(r"[A-Za-z]+", without_literals(sql).upper()))
        return not words & {"INSERT", "UPDATE", "DELETE", "REPLACE"}
    return False


def is_statement_start(text: str) -> bool:
    """Return True when ``text`` begins with a word a statement can begin with."""
    return first_word(text) in STATEMENT_WORDS


def without_literals(sql: str) -> str:
    """Return ``sql`` with strings, quoted names and comments blanked out.

    >>> without_literals("SELECT ':x' FROM t -- :y")
    'SELECT   FROM t  '
    """
    return _QUOTED.sub(" ", sql)


def named_placeholders(sql: str) -> list[str]:
    """Return the names of ``:name``, ``$name`` and ``@name`` placeholders, in order.

    >>> named_placeholders("SELECT * FROM t WHERE a = :a AND b = $b AND c = ':no'")
    ['a', 'b']
    """
    return _NAMED.findall(without_literals(sql))


def is_finished(sql: str) -> bool:
    """Return True when ``sql`` could end here: quotes, brackets and triggers closed.

    Used to split logs whose statements carry no semicolon: a line that starts
    a statement begins a new one only when the text before it is finished.

    >>> is_finished("SELECT a FROM t"), is_finished("SELECT (a"), is_finished("SELECT a UNION")
    (True, False, False)
    """
    text = sql.strip()
    if not text:
        return True
    if not apsw.complete(text if text.endswith(";") else text + ";"):
        return False
    bare = without_literals(text)
    if bare.count("(") > bare.count(")"):
        return False
    words = bare.rstrip(" ;\n\t").rsplit(None, 1)
    last = words[-1].upper() if words else ""
    return last not in _GOES_ON and not last.endswith((",", "("))
