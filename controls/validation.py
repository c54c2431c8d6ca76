"""Guards for text that arrives from outside through files (the API refuses
NUL at its edge: controls.api.middleware)."""

from typing import Any

from .exceptions import InvalidInput


def refuse_nul(value: Any, *, field: str) -> None:
    """PostgreSQL text cannot hold NUL; refuse it as bad input, naming where."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput("invalid_field", f"{field} contains a NUL character", field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key, field=field)
            refuse_nul(item, field=f"{field}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refuse_nul(item, field=f"{field}[{index}]")
