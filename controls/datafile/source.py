"""TOML parsing with syntax errors reported by line and column, and a line
locator: ``tomllib`` gives values, not positions, so messages find the
line of a table or key here."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

from controls.exceptions import InvalidInput

MAX_PROBLEMS_SHOWN = 5


@dataclass(frozen=True, slots=True)
class Problem:
    line: int | None
    field: str
    message: str


class DataFileError(InvalidInput):
    """A file with problems. ``message`` is one line naming the first problems
    with their lines; ``problems`` has them all."""

    def __init__(self, code: str, problems: list[Problem]):
        shown = "; ".join(p.message for p in problems[:MAX_PROBLEMS_SHOWN])
        if len(problems) > MAX_PROBLEMS_SHOWN:
            shown += f"; and {len(problems) - MAX_PROBLEMS_SHOWN} more"
        message = shown if len(problems) == 1 else f"{len(problems)} problems: {shown}"
        super().__init__(code, message, field=problems[0].field or None)
        self.problems = problems
        self.line = problems[0].line


_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)|\s*\(at end of document\)")


def toml_parse(text: str, *, code: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise DataFileError(code, [Problem(None, "", "the file nests arrays or tables too deeply to read")]) from None
    except tomllib.TOMLDecodeError as error:
        raw = str(error)
        reason = _POSITION.sub("", raw)
        match = re.search(r"\(at line (\d+), column (\d+)\)", raw)
        line: int | None
        if match:
            line = int(match[1])
            message = f"line {line}, column {match[2]}: TOML syntax error: {reason}"
        else:
            line = len(text.splitlines()) or None
            message = f"TOML syntax error at the end of the file: {reason}"
        raise DataFileError(code, [Problem(line, "", message)]) from None


TablePath = tuple[str, int | None]  # (table name, index among [[name]] tables)

_ARRAY_HEADER = re.compile(r"\[\[\s*([^\[\]]+?)\s*\]\]\s*(?:#.*)?")
_TABLE_HEADER = re.compile(r"\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?")
_BARE_OR_QUOTED = r"(?:\"(?:[^\"\\]|\\.)*\"|'[^']*'|[A-Za-z0-9_-]+)"
_KEY = re.compile(rf"\s*({_BARE_OR_QUOTED})\s*(?:\.\s*{_BARE_OR_QUOTED}\s*)*=")


class LineLocator:
    """Where tables and keys are in the source text.

    Good enough for files written one ``key = value`` per line, as in DESIGN
    section 11: it follows ``[table]`` and ``[[array]]`` headers (counting
    the array's occurrences), skips multi-line strings and the continuation
    lines of multi-line arrays, and remembers the first line of each key.
    """

    def __init__(self, text: str) -> None:
        self._tables: dict[TablePath, int] = {}
        self._keys: dict[tuple[TablePath | None, str], int] = {}
        counts: dict[str, int] = {}
        current: TablePath | None = None
        depth = 0
        open_string: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if open_string:
                if line.count(open_string) % 2 == 1:
                    open_string = None
                continue
            if depth > 0:
                depth += _bracket_balance(line)
                continue
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            header = _ARRAY_HEADER.fullmatch(stripped) or _TABLE_HEADER.fullmatch(stripped)
            if header:
                is_array = stripped.startswith("[[")
                parts = [_unquote(part.strip()) for part in header[1].split(".")]
                parent = (parts[0], counts[parts[0]] - 1 if parts[0] in counts else None)
                if len(parts) > 1:
                    # a sub-table: report it as a key of its parent table
                    self._keys.setdefault((parent, parts[1]), number)
                    current = (".".join(parts), None)
                elif is_array:
                    index = counts.get(parts[0], 0)
                    counts[parts[0]] = index + 1
                    current = (parts[0], index)
                else:
                    current = (parts[0], None)
                self._tables.setdefault(current, number)
                continue
            key = _KEY.match(line)
            if key:
                self._keys.setdefault((current, _unquote(key[1])), number)
                rest = line[key.end() :]
                depth = max(_bracket_balance(rest), 0)
                for quotes in ('"""', "'''"):
                    if rest.count(quotes) % 2 == 1:
                        open_string = quotes

    def table(self, name: str | None, index: int | None = None) -> int | None:
        return self._tables.get((name, index)) if name else None

    def key(self, name: str | None, index: int | None, key: str) -> int | None:
        path = (name, index) if name else None
        return self._keys.get((path, key))


def _unquote(key: str) -> str:
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "\"'":
        return key[1:-1]
    return key


def _bracket_balance(text: str) -> int:
    """Open minus closed brackets and braces outside strings and comments."""
    balance = 0
    quote: str | None = None
    escaped = False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        elif char in "[{":
            balance += 1
        elif char in "]}":
            balance -= 1
    return balance
