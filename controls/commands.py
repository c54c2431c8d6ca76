"""What every management command shares: parsing times and dates from the
command line, reading a file with a one-line reason when it cannot be read,
who the actor is, and JSON output."""

import getpass
import json
from datetime import UTC, date, datetime
from pathlib import Path

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


def default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def read_text(file: str) -> str:
    """The file's text, or a one-line CommandError saying why it cannot be read."""
    path = Path(file)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise CommandError(f"{file}: is a directory, not a file") from None
    except UnicodeDecodeError as error:
        raise CommandError(f"{file}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise CommandError(f"{file}: cannot read: {error.strerror or error}") from None


def dumps(body: dict) -> str:
    return json.dumps(body, indent=2, sort_keys=False)
