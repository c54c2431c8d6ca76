"""Shared parsing for the operations commands."""

from datetime import UTC, date, datetime

from django.core.management.base import CommandError
from django.utils import timezone


def as_of_argument(raw: str | None) -> datetime:
    if raw is None:
        return timezone.now().replace(second=0, microsecond=0)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"--as-of {raw!r} is not an ISO 8601 timestamp (e.g. 2026-11-23T10:00+08:00)") from None
    if value.utcoffset() is None:
        raise CommandError(f"--as-of {raw!r} has no time zone: add Z or an offset such as +08:00")
    if value > timezone.now():
        raise CommandError("--as-of is in the future")
    return value.astimezone(UTC)


def date_argument(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"--date {raw!r} is not a date (YYYY-MM-DD)") from None
