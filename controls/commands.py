"""What every management command shares: parsing times and dates from the
command line, reading a file with a one-line reason when it cannot be read,
who the actor is, and JSON output."""

import getpass
import json
from datetime import date, datetime
from pathlib import Path

from django.core.management.base import CommandError
from django.utils import timezone

from controls.exceptions import InvalidInput
from controls.timestamps import parse_instant


def as_of_argument(raw: str | None) -> datetime:
    if raw is None:
        return timezone.now().replace(second=0, microsecond=0)
    return instant_argument(raw, name="--as-of", not_after=timezone.now())


def instant_argument(raw: object, *, name: str, not_after: datetime | None = None) -> datetime:
    """An ISO 8601 instant with a time zone (in range: no year 1 at +14:00),
    in UTC; a one-line CommandError otherwise."""
    try:
        return parse_instant(raw, field=name, not_after=not_after)
    except InvalidInput as error:
        hint = " (e.g. 2026-11-23T10:00+08:00)" if isinstance(raw, str) and "ISO 8601" in error.message else ""
        raise CommandError(f"{error.message}{hint}") from None


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
