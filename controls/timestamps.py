"""Strict parsing of timestamps that arrive from outside: ISO 8601 with a
time zone, returned in UTC. A naive or malformed value is refused, naming
the field."""

from datetime import UTC, datetime

from .exceptions import InvalidInput


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
    value = value.astimezone(UTC)
    if not_after is not None and value > not_after:
        raise InvalidInput("invalid_timestamp", f"{field} {raw} is in the future", field=field)
    return value
