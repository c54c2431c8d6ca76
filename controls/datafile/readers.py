"""Typed readers for TOML values. Each returns the value to store or raises
``Bad`` with what is wrong; ``Checker.get`` adds the table, key and line."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controls.exceptions import InvalidInput
from controls.money import parse_decimal
from controls.timestamps import EARLIEST, LATEST

from .check import Bad, Reader, clip

_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
    (datetime, "a date-time"),
    (date, "a date"),
    (time, "a time"),
)


def show(value: Any) -> str:
    """A value as it would be written in TOML, on one short line."""
    if isinstance(value, str):
        return json.dumps(clip(value, 60), ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, date, time)):
        return str(value)
    return next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), type(value).__name__)


def describe(value: Any) -> str:
    name = next((name for kind, name in _TYPE_NAMES if isinstance(value, kind)), type(value).__name__)
    return name if isinstance(value, (list, dict)) else f"{name} ({show(value)})"


def text(*, max_length: int, pattern: re.Pattern[str] | None = None, hint: str = "", blank: bool = False) -> Reader:
    def read(value: Any) -> str:
        if not isinstance(value, str):
            raise Bad(f"must be a string, got {describe(value)}")
        value = value.strip()
        if not value and not blank:
            raise Bad("must not be empty")
        if len(value) > max_length:
            raise Bad(f"must be at most {max_length} characters, got {len(value)}")
        if not value.isprintable():  # NUL and other control characters (TOML allows "\u0000")
            raise Bad("must not contain control characters")
        if value and pattern is not None and not pattern.fullmatch(value):
            raise Bad(f"must be {hint}, got {show(value)}")
        return value

    return read


def choice(*options: str) -> Reader:
    def read(value: Any) -> str:
        if value not in options or not isinstance(value, str):
            raise Bad(f"must be one of {', '.join(options)}, got {show(value)}")
        return value

    return read


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Bad(f"must be true or false, got {describe(value)}")
    return value


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Reader:
    def read(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Bad(f"must be an integer, got {describe(value)}")
        if minimum is not None and value < minimum:
            raise Bad(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise Bad(f"must be at most {maximum}, got {value}")
        return value

    return read


def decimal(
    *, scale: int, positive: bool = False, minimum: Decimal | None = None, maximum: Decimal | None = None
) -> Reader:
    """A decimal written as a string ("100000000") or an integer; never a float."""

    def read(value: Any) -> Decimal:
        if isinstance(value, float):
            example = str(int(value)) if value.is_integer() else repr(value)
            raise Bad(
                f'is a TOML float ({value!r}), which cannot hold money exactly; quote it as a string: "{example}"'
            )
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise Bad(f"must be a decimal string, got {describe(value)}")
        try:
            number = parse_decimal(value, field="value", scale=scale, positive=positive)
        except InvalidInput as error:
            raise Bad(error.message) from None
        if minimum is not None and number < minimum:
            raise Bad(f"must be at least {minimum}, got {show(value)}")
        if maximum is not None and number > maximum:
            raise Bad(f"must be at most {maximum}, got {show(value)}")
        return number

    return read


def calendar_date(value: Any) -> date:
    """A TOML date (2026-01-15) or the same as an ISO string."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise Bad(f"must be a date like 2026-01-15, got {describe(value)}")


def aware_datetime(value: Any) -> datetime:
    """A TOML offset date-time or an ISO 8601 string with a time zone; stored in UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise Bad(f"must be a date-time like 2026-01-15T10:00:00+08:00, got {show(value)}") from None
    if not isinstance(value, datetime):
        raise Bad(f"must be a date-time like 2026-01-15T10:00:00+08:00, got {describe(value)}")
    if value.utcoffset() is None:
        raise Bad(f"has no time zone: write it with an offset, e.g. {value.isoformat()}+08:00")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # year 1 at +14:00, year 9999 at -14:00
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise Bad(f"is out of range (from {EARLIEST.year} to before {LATEST.year}), got {show(value)}")
    return utc


def clock_time(value: Any) -> time:
    """A time of day, "HH:MM" (or a TOML local time)."""
    if isinstance(value, time):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{2}:\d{2}", value.strip()):
        try:
            return time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise Bad(f'must be a time "HH:MM", got {describe(value)}')


def time_zone(value: Any) -> str:
    if not isinstance(value, str):
        raise Bad(f'must be an IANA time zone name such as "Asia/Hong_Kong", got {describe(value)}')
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Bad(f'is not a known IANA time zone (e.g. "Asia/Hong_Kong"), got {show(value)}') from None
    return value


def url(*, schemes: Collection[str], max_length: int) -> Reader:
    def read(value: Any) -> str:
        value = text(max_length=max_length)(value)
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise Bad(f"must be a URL starting with {' or '.join(f'{s}://' for s in schemes)}, got {show(value)}")
        return value

    return read


def array(item: Reader, *, unique: bool = True) -> Reader:
    def read(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise Bad(f"must be an array, got {describe(value)}")
        items = []
        for i, element in enumerate(value):
            try:
                items.append(item(element))
            except Bad as error:
                raise Bad(f"item {i + 1}: {error}") from None
        if unique:
            duplicates = sorted({show(x) for x in items if items.count(x) > 1})
            if duplicates:
                raise Bad(f"lists {', '.join(duplicates)} more than once")
        return items

    return read
