"""Tables of a data file and the ``Checker`` that collects every problem
with its line, so one run reports them all and nothing is applied."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .source import DataFileError, LineLocator, Problem

_LABEL_KEYS = ("code", "ref", "asset", "number", "address", "deed")


@dataclass(slots=True)
class Table:
    """One table of the file: ``[name]`` (index None) or the index-th ``[[name]]``."""

    name: str | None
    index: int | None
    data: dict[str, Any]

    @property
    def label(self) -> str:
        if self.name is None:
            return "top level"
        header = f"[[{self.name}]] #{self.index + 1}" if self.index is not None else f"[{self.name}]"
        tag = next((self.data[k] for k in _LABEL_KEYS if isinstance(self.data.get(k), str)), None)
        return f"{header} ({clip(tag, 64)})" if tag else header

    def path(self, key: str | None) -> str:
        if self.name is None:
            return key or ""
        where = f"{self.name}#{self.index + 1}" if self.index is not None else self.name
        return f"{where}.{key}" if key else where


class _Invalid:
    """What a reader returns for a value it reported as a problem."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


class Bad(ValueError):
    """Raised by a reader: the message says what is wrong with the value."""


Reader = Callable[[Any], Any]


class Checker:
    """Collects problems with their lines, so one run reports them all."""

    def __init__(self, *, code: str, locator: LineLocator | None = None) -> None:
        self.code = code
        self.locator = locator
        self.problems: list[Problem] = []

    def problem(self, table: Table | None, key: str | None, message: str, *, line: int | None = None) -> None:
        if line is None and self.locator is not None and table is not None:
            if key is not None:
                line = self.locator.key(table.name, table.index, key)
            if line is None:
                line = self.locator.table(table.name, table.index)
        where = table.label if table is not None and table.name is not None else ""
        if key is not None:
            where = f'{where} key "{key}"' if where else f'key "{key}"'
        text = f"{where}: {message}" if where else message
        if line is not None:
            text = f"line {line}: {text}"
        self.problems.append(Problem(line, table.path(key) if table else (key or ""), text))

    def raise_if_problems(self) -> None:
        if self.problems:
            raise DataFileError(self.code, self.problems)

    def tables(self, data: Mapping[str, Any], name: str, *, array: bool) -> list[Table]:
        """The ``[name]`` table or the ``[[name]]`` tables of ``data``."""
        value = data.get(name)
        if value is None:
            return []
        if array:
            if isinstance(value, list) and all(isinstance(item, dict) for item in value):
                return [Table(name, i, item) for i, item in enumerate(value)]
            line = (self.locator.table(name) or self.locator.key(None, None, name)) if self.locator else None
            self.problem(None, name, f"write each entry as a [[{name}]] table", line=line)
            return []
        if isinstance(value, dict):
            return [Table(name, None, value)]
        line = (self.locator.table(name, 0) or self.locator.key(None, None, name)) if self.locator else None
        self.problem(None, name, f"must be one [{name}] table", line=line)
        return []

    def only(self, table: Table, allowed: Collection[str], *, elsewhere: Mapping[str, str] | None = None) -> None:
        """Report every key of ``table`` that is not in ``allowed``.

        ``elsewhere`` maps keys that are valid in another variant of the table
        to the reason they do not apply here."""
        for key in table.data:
            if key in allowed:
                continue
            if elsewhere and key in elsewhere:
                self.problem(table, key, elsewhere[key])
                continue
            guess = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f'; did you mean "{guess[0]}"?' if guess else f"; expected one of {', '.join(allowed)}"
            self.problem(table, key, "unknown key" + hint)

    def get(self, table: Table, key: str, reader: Reader, *, required: bool = False, default: Any = None) -> Any:
        if key not in table.data:
            if required:
                self.problem(table, None, f'missing required key "{key}"')
                return INVALID
            return default
        try:
            return reader(table.data[key])
        except Bad as error:
            self.problem(table, key, str(error))
            return INVALID


def valid(*values: Any) -> bool:
    return all(value is not INVALID for value in values)


def clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
