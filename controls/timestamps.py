"""Strict parsing of timestamps that arrive from outside: ISO 8601 with a
time zone, returned in UTC. A naive, malformed or out-of-range value is
refused, naming the field."""

from datetime import UTC, datetime

from .exceptions import InvalidInput

# Instants the settlement arithmetic can work with: a year-1 or year-9999
# value with a +14:00/-14:00 offset has no UTC equivalent, and date
# arithmetic (deadlines, ages, windows) near either end overflows.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_instant(
    raw: object, *, field: str, default: datetime | None = None, not_after: datetime | None = None
) -> datetime:
    if raw is None:
        if default is None:
            raise InvalidInput("missing_field", f"{field} is required", field=field)
        return default
    if not isinstance(raw, str) or len(raw) > 40:
        raise InvalidInput("invalid_timestamp", f"{field} must be an ISO 8601 string", field=field)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("invalid_timestamp", f"{field} {raw!r} is not an ISO 8601 timestamp", field=field) from None
    if value.utcoffset() is None:
        raise InvalidInput(
            "invalid_timestamp", f"{field} {raw!r} has no time zone; send UTC (Z) or an offset", field=field
        )
    utc: datetime | None
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # year 1 at +14:00 or year 9999 at -14:00: no such UTC instant
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise InvalidInput(
            "invalid_timestamp",
            f"{field} {raw!r} is out of range (from {EARLIEST.year} to before {LATEST.year})",
            field=field,
        )
    if not_after is not None and utc > not_after:
        raise InvalidInput("invalid_timestamp", f"{field} {raw} is in the future", field=field)
    return utc
