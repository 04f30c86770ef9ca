"""Fingerprints: one normalised text (and a short id) for every shape of statement.

Two statements share a fingerprint when they differ only in literal values,
placeholders, the length of an ``IN (...)`` list or of a multi-row ``VALUES``,
comments, white space, keyword case or identifier quoting::

    SELECT * FROM "Users" WHERE id IN (1, 2, 3) -- hot
    select * from users where ID in (?)

both become ``SELECT * FROM users WHERE id IN (...)``.

The tokenizer follows SQLite's lexical rules (https://sqlite.org/lang_expr.html:
strings in single quotes with '' escapes, identifiers in "", [] or ``, blobs
x'..', parameters ?, ?NNN, :name, @name, $name). Results are cached by the raw
SQL text, so a workload that uses placeholders pays one dictionary look-up per
statement.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import apsw

_KEYWORDS = frozenset(word.upper() for word in apsw.keywords)
# Values, not words: a literal TRUE/FALSE or NULL is normalised like a number.
_VALUE_WORDS = frozenset({"TRUE", "FALSE", "NULL", "CURRENT_DATE", "CURRENT_TIME"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<blob>[xX]'[0-9A-Fa-f]*')
  | (?P<string>'[^']*(?:''[^']*)*'?)
  | (?P<quoted>"[^"]*(?:""[^"]*)*"?|`[^`]*(?:``[^`]*)*`?|\[[^\]]*\]?)
  | (?P<number>0[xX][0-9A-Fa-f_]+|(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<param>\?\d*|[:@$][A-Za-z0-9_]+(?:::[A-Za-z0-9_]+)*(?:\([^)]*\))?)
  | (?P<word>[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*)
  | (?P<op>\|\||<<|>>|<=|>=|==|!=|<>|->>|->|.)
    """,
    re.S | re.X,
)
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_MARK = "?"
_LIST = "..."
_CACHE_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The normalised shape of a statement."""

    id: str
    """A stable 12-hex-digit id of ``text``."""
    text: str
    """The normalised SQL."""


_cache: dict[str, Fingerprint] = {}


def fingerprint_sql(sql: str) -> Fingerprint:
    """Return the fingerprint of ``sql``, cached by its exact text.

    >>> fingerprint_sql("select a from T where b = 'x' and c in (1,2)").text
    'SELECT a FROM t WHERE b = ? AND c IN (...)'
    """
    found = _cache.get(sql)
    if found is not None:
        return found
    text = normalize_sql(sql)
    found = Fingerprint(id=fingerprint_id(text), text=text)
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[sql] = found
    return found


def fingerprint_id(text: str) -> str:
    """Return the short stable id of a normalised text (12 hex digits)."""
    # surrogatepass: a lone surrogate (which SQLite itself refuses) still gets an id.
    return hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"), digest_size=6
    ).hexdigest()


def normalize_sql(sql: str) -> str:
    """Return ``sql`` with values replaced by ``?`` and lists collapsed.

    >>> normalize_sql("INSERT INTO t VALUES (1, 'a'), (2, 'b');")
    'INSERT INTO t VALUES (?, ?)'
    """
    tokens = _collapse_values(_collapse_in_lists(_normal_tokens(sql)))
    return _join(tokens)


def _normal_tokens(sql: str) -> list[str]:
    """Tokenize ``sql`` into normalised tokens: values become ``?``."""
    out: list[str] = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        token = match.group()
        if kind == "space" or kind == "comment":
            continue
        if kind in ("string", "blob", "number", "param"):
            _drop_unary_sign(out)
            out.append(_MARK)
        elif kind == "word":
            out.append(_normal_word(token, out))
        elif kind == "quoted":
            out.append(_normal_quoted(token))
        else:
            out.append(token)
    while out and out[-1] == ";":
        out.pop()
    return out


def _normal_word(token: str, before: list[str]) -> str:
    upper = token.upper()
    if upper in _VALUE_WORDS and not (
        upper == "NULL" and before and before[-1] in ("IS", "NOT")
    ):
        _drop_unary_sign(before)
        return _MARK
    if upper in _KEYWORDS and not (before and before[-1] == "."):
        return upper
    return token.lower()


def _normal_quoted(token: str) -> str:
    quote = token[0]
    inner = token[1:-1]
    if quote in '"`':
        inner = inner.replace(quote * 2, quote)
    if _PLAIN_NAME.match(inner) and inner.upper() not in _KEYWORDS:
        return inner.lower()
    return '"' + inner.replace('"', '""').lower() + '"'


def _drop_unary_sign(out: list[str]) -> None:
    """Drop a ``-`` or ``+`` just emitted when it is a sign, not subtraction."""
    if len(out) >= 1 and out[-1] in ("-", "+"):
        before = out[-2] if len(out) >= 2 else "("
        if (
            before == "("
            or before == ","
            or before in _KEYWORDS
            or not _is_operand(before)
        ):
            out.pop()


def _is_operand(token: str) -> bool:
    return token == _MARK or token == ")" or token[0].isalnum() or token[0] in '_"'


def _collapse_in_lists(tokens: list[str]) -> list[str]:
    """Rewrite ``IN ( ? , ? , ... )`` of any length to ``IN ( ... )``."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] == "IN" and i + 2 < len(tokens) and tokens[i + 1] == "(":
            end = _end_of_value_list(tokens, i + 2)
            if end is not None:
                out += ["IN", "(", _LIST, ")"]
                i = end + 1
                continue
        out.append(tokens[i])
        i += 1
    return out


def _end_of_value_list(tokens: list[str], i: int) -> int | None:
    """Return the index of the ``)`` closing a list of ``?`` starting at ``i``."""
    expect_mark = True
    while i < len(tokens):
        token = tokens[i]
        if expect_mark and token == _MARK:
            expect_mark = False
        elif not expect_mark and token == ",":
            expect_mark = True
        elif not expect_mark and token == ")":
            return i
        else:
            return None
        i += 1
    return None


def _collapse_values(tokens: list[str]) -> list[str]:
    """Rewrite ``VALUES (..), (..), (..)`` of like rows to ``VALUES (..)``: one row
    or a thousand, an insert has one shape."""
    if "VALUES" not in tokens:
        return tokens
    out: list[str] = []
    i = 0
    while i < len(tokens):
        out.append(tokens[i])
        if tokens[i] == "VALUES" and i + 1 < len(tokens) and tokens[i + 1] == "(":
            first = _row(tokens, i + 1)
            if first is not None:
                out += tokens[i + 1 : first + 1]
                j = first + 1
                while j < len(tokens) and tokens[j] == ",":
                    nxt = _row(tokens, j + 1)
                    if (
                        nxt is None
                        or tokens[j + 1 : nxt + 1] != tokens[i + 1 : first + 1]
                    ):
                        break
                    j = nxt + 1
                i = j
                continue
        i += 1
    return out


def _row(tokens: list[str], i: int) -> int | None:
    """Return the index of the ``)`` matching the ``(`` at ``i``, if any."""
    if i >= len(tokens) or tokens[i] != "(":
        return None
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j] == "(":
            depth += 1
        elif tokens[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    return None


_NO_SPACE_BEFORE = frozenset({",", ")", ".", ";"})
_NO_SPACE_AFTER = frozenset({"(", "."})


def _join(tokens: list[str]) -> str:
    parts: list[str] = []
    previous = ""
    for token in tokens:
        if parts and not (
            token in _NO_SPACE_BEFORE
            or previous in _NO_SPACE_AFTER
            or (token == "(" and previous not in _KEYWORDS and _is_name(previous))
        ):
            parts.append(" ")
        parts.append(token)
        previous = token
    return "".join(parts)


def _is_name(token: str) -> bool:
    return bool(token) and (token[0].isalpha() or token[0] in '_"')


def literal_values(sql: str) -> list[str | int | float]:
    """Return the literal values written inline in ``sql``, in order.

    >>> literal_values("SELECT * FROM t WHERE a = 'it''s' AND b IN (1, 2.5) LIMIT -3")
    ["it's", 1, 2.5, -3]
    """
    values: list[str | int | float] = []
    negative = False
    previous = ""
    for match in _TOKEN.finditer(sql):
        kind, token = match.lastgroup, match.group()
        if kind in ("space", "comment"):
            continue
        if kind == "string":
            values.append(token[1:-1].replace("''", "'"))
        elif kind == "number":
            number = _number(token)
            values.append(-number if negative else number)
        negative = token == "-" and (
            previous in ("", "(", ",", "=") or previous.isalpha()
        )
        previous = token.upper() if kind == "word" else token
    return values


def offset_value(sql: str, params: tuple | dict | None) -> int | None:
    """Return the OFFSET of ``sql`` with ``params`` bound, when it has one.

    Both ``LIMIT n OFFSET m`` and ``LIMIT m, n`` are understood.

    >>> offset_value("SELECT * FROM t LIMIT ? OFFSET ?", (20, 4000))
    4000
    >>> offset_value("SELECT * FROM t LIMIT 300, 10", None)
    300
    """
    tokens = [
        (m.lastgroup, m.group())
        for m in _TOKEN.finditer(sql)
        if m.lastgroup not in ("space", "comment")
    ]
    positional = 0
    values: list[tuple[str, str, int]] = []
    for kind, token in tokens:
        values.append((kind or "", token, positional))
        if kind == "param" and token == "?":
            positional += 1
    for i, (_kind, token, _) in enumerate(values):
        upper = token.upper()
        if upper == "OFFSET" and i + 1 < len(values):
            return _bound(values[i + 1], params)
        if upper == "LIMIT" and i + 2 < len(values) and values[i + 2][1] == ",":
            return _bound(values[i + 1], params)
    return None


def _bound(value: tuple[str, str, int], params: tuple | dict | None) -> int | None:
    kind, token, position = value
    try:
        if kind == "number":
            return int(_number(token))
        if kind != "param" or params is None:
            return None
        if isinstance(params, dict):
            return int(params.get(token[1:], params.get(token)))  # type: ignore[arg-type]
        if token == "?":
            return int(params[position])
        return int(params[int(token[1:]) - 1])
    except (TypeError, ValueError, IndexError, KeyError):
        return None


def _number(token: str) -> int | float:
    text = token.replace("_", "")
    if text.lower().startswith("0x"):
        return int(text, 16)
    try:
        return int(text)
    except ValueError:
        return float(text)
