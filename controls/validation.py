"""Guards for text that arrives from outside (request bodies, files).

PostgreSQL text and jsonb cannot hold NUL, and UTF-8 cannot encode a lone
surrogate (JSON can spell one: "\\ud800"), so either would fail deep inside
a query instead of being refused as bad input. The walkers are iterative: a
deeply nested value cannot exhaust the stack."""

from __future__ import annotations

import math
from typing import Any

from .exceptions import InvalidInput


def _bad(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unstorable_text(value: Any, *, field: str = "") -> str | None:
    """The path of the first string (or key) that holds NUL or a lone
    surrogate, or None when everything can be stored."""
    stack: list[tuple[Any, str]] = [(value, field)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _bad(item):
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _bad(key):
                    return path or key.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
                stack.append((child, f"{path}.{key}" if path else str(key)))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{index}]") for index, child in enumerate(item))
    return None


def storable(value: Any) -> Any:
    """A copy that PostgreSQL can store: NUL and lone surrogates in strings
    and keys are written out as escapes (``\\x00``, ``\\ud800``), infinite
    floats as text, the rest unchanged. For keeping a refused payload in an exceptions queue."""

    def text(raw: str) -> str:
        if not _bad(raw):
            return raw
        return raw.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")

    if isinstance(value, str):
        return text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # 1e400 parses to inf, which JSON (and jsonb) cannot hold
    if isinstance(value, dict):
        return {text(k) if isinstance(k, str) else k: storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def refuse_unstorable(value: Any, *, field: str) -> None:
    """Refuse NUL or a lone surrogate anywhere in ``value`` as bad input, naming where."""
    where = unstorable_text(value, field=field)
    if where is not None:
        raise InvalidInput(
            "invalid_field",
            f"{where or field} contains a NUL character or a lone surrogate",
            field=where or field,
        )


def refuse_nul(value: Any, *, field: str) -> None:
    """PostgreSQL text cannot hold NUL; refuse it (and lone surrogates) as bad input."""
    refuse_unstorable(value, field=field)
