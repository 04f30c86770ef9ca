"""Safe parsers for the values logs print: Python reprs, Ruby literals, SQL literals.

Nothing here evaluates code. Python reprs go through ``ast.literal_eval``, with
a fallback that also accepts the few calls drivers print for common types
(``datetime.datetime(2024, 1, 1, 0, 0)``, ``Decimal('1.5')``). Ruby literals
(ActiveRecord's bind lists) and SQL literals (the sqlite3 shell's parameter
table) have small hand-written parsers.
"""

from __future__ import annotations

import ast
import datetime
import re
from typing import Any

_DATETIME_CALLS = {
    "datetime": datetime.datetime,
    "date": datetime.date,
    "time": datetime.time,
    "timedelta": datetime.timedelta,
}


def parse_python_literal(text: str) -> Any:
    """Return the value of a Python repr, or raise ``ValueError``.

    Datetimes become the ISO text stdlib ``sqlite3`` would have stored, and
    ``Decimal`` becomes a float, so the value can be bound again.

    >>> parse_python_literal("(1, 'a', None)")
    (1, 'a', None)
    >>> parse_python_literal("(datetime.datetime(2024, 1, 2, 3, 4),)")
    ('2024-01-02 03:04:00',)
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as error:
        raise ValueError(f"not a Python literal: {error}") from None
    return _python_value(tree.body)


def parse_ruby_literal(text: str) -> Any:
    """Return the value of a Ruby literal (``inspect`` output), or raise ``ValueError``.

    Strings (double or single quoted, with escapes), integers, floats,
    ``nil``, ``true``, ``false``, symbols (as strings) and nested arrays.

    >>> parse_ruby_literal('[["id", 1], ["name", "O\\'Brien \\\\"x\\\\""], ["x", nil]]')
    [['id', 1], ['name', 'O\\'Brien "x"'], ['x', None]]
    """
    parser = _RubyParser(text)
    value = parser.value()
    parser.skip_blanks()
    if parser.at < len(text):
        raise ValueError(f"unexpected {text[parser.at : parser.at + 10]!r} after value")
    return value


def parse_sql_literal(text: str) -> Any:
    """Return the value of one SQL literal, or raise ``ValueError``.

    >>> parse_sql_literal("'O''Hara'"), parse_sql_literal("180"), parse_sql_literal("x'00ff'")
    ("O'Hara", 180, b'\\x00\\xff')
    """
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if text.upper() == "NULL":
        return None
    if len(text) >= 3 and text[0] in "xX" and text[1] == text[-1] == "'":
        return bytes.fromhex(text[2:-1])
    try:
        return int(text)
    except ValueError:
        return float(text)


def _python_value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple):
        return tuple(_python_value(item) for item in node.elts)
    if isinstance(node, ast.List):
        return [_python_value(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _python_value(key): _python_value(value)
            for key, value in zip(node.keys, node.values, strict=True)
            if key is not None
        }
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _python_value(node.operand)
        if isinstance(operand, (int, float)):
            return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.Call) and not node.keywords:
        return _python_call(node)
    raise ValueError(f"not a literal: {ast.dump(node)[:60]}")


def _python_call(node: ast.Call) -> Any:
    name = node.func.attr if isinstance(node.func, ast.Attribute) else None
    if isinstance(node.func, ast.Name):
        name = node.func.id
    args = [_python_value(arg) for arg in node.args]
    if name in _DATETIME_CALLS and all(isinstance(a, int) for a in args):
        value = _DATETIME_CALLS[name](*args)
        if isinstance(value, datetime.datetime):
            return value.isoformat(" ")
        return (
            str(value) if isinstance(value, datetime.timedelta) else value.isoformat()
        )
    if name == "Decimal" and len(args) == 1 and isinstance(args[0], (str, int)):
        return float(args[0])
    raise ValueError(f"not a literal: a call of {name!r}")


_RUBY_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_RUBY_WORD = re.compile(r"[A-Za-z_]\w*[?!]?")
_RUBY_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "e": "\x1b",
    "0": "\0",
    "s": " ",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


class _RubyParser:
    """A recursive-descent reader of Ruby's ``inspect`` output (no evaluation)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def skip_blanks(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in " \t\r\n":
            self.at += 1

    def value(self) -> Any:
        self.skip_blanks()
        if self.at >= len(self.text):
            raise ValueError("a value was expected, found the end")
        char = self.text[self.at]
        if char == "[":
            return self._array()
        if char in "\"'":
            return self._string(char)
        if char == ":":
            self.at += 1
            if self.at < len(self.text) and self.text[self.at] in "\"'":
                return self._string(self.text[self.at])
            return self._word()
        number = _RUBY_NUMBER.match(self.text, self.at)
        if number:
            self.at = number.end()
            found = number.group()
            return float(found) if any(c in found for c in ".eE") else int(found)
        word = self._word()
        constants = {"nil": None, "true": True, "false": False}
        if word not in constants:
            raise ValueError(f"unknown Ruby word {word!r}")
        return constants[word]

    def _word(self) -> str:
        match = _RUBY_WORD.match(self.text, self.at)
        if not match:
            raise ValueError(f"unexpected {self.text[self.at : self.at + 10]!r}")
        self.at = match.end()
        return match.group()

    def _array(self) -> list[Any]:
        self.at += 1
        items: list[Any] = []
        while True:
            self.skip_blanks()
            if self.text.startswith("]", self.at):
                self.at += 1
                return items
            items.append(self.value())
            self.skip_blanks()
            if self.text.startswith(",", self.at):
                self.at += 1
            elif not self.text.startswith("]", self.at):
                raise ValueError("',' or ']' expected in an array")

    def _string(self, quote: str) -> str:
        text = self.text
        self.at += 1
        out: list[str] = []
        while self.at < len(text):
            char = text[self.at]
            if char == quote:
                self.at += 1
                return "".join(out)
            if char == "\\" and self.at + 1 < len(text):
                self.at += 1
                out.append(self._escape(text[self.at], quote))
                continue
            out.append(char)
            self.at += 1
        raise ValueError("a string is not closed")

    def _escape(self, char: str, quote: str) -> str:
        """Decode the escape at ``self.at`` (just after the backslash)."""
        self.at += 1
        if quote == "'":
            return char if char in "\\'" else "\\" + char
        if char == "u":
            if self.text.startswith("{", self.at):
                end = self.text.index("}", self.at)
                code = self.text[self.at + 1 : end]
                self.at = end + 1
                return "".join(chr(int(part, 16)) for part in code.split())
            code = self.text[self.at : self.at + 4]
            self.at += 4
            return chr(int(code, 16))
        if char == "x":
            match = re.compile(r"[0-9a-fA-F]{1,2}").match(self.text, self.at)
            if match:
                self.at = match.end()
                return chr(int(match.group(), 16))
        return _RUBY_ESCAPES.get(char, char)
