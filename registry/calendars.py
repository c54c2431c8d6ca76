"""Rail calendars and cut-offs (docs/circular.md, paragraph 13: bank rails and cut-offs).

Pure functions, no database: they read ``kind``, ``calendars``, ``cutoff``, ``timezone``, ``weekend`` and
``window_minutes`` from a ``custody.models.Rail`` (saved or not) or from any object with those attributes.

Rules
-----
- ``evm`` rails run every day at every hour: no weekend, no holidays, no cut-off.
- ``bank`` rails: a business day is a day outside the rail's weekend (ISO weekdays, Mon=1; an empty list
  means Saturday and Sunday, since HKD CHATS does not run on Saturdays) that is not a holiday of any of its
  calendars. A cycle may take a leg on the rail only on a business day, in the rail's time zone, strictly
  before its cut-off (when it has one).
- ``manual`` rails: every day is a business day unless the rail lists calendars; then they follow the bank
  rules (weekend included). A cut-off, if one is set, applies as for a bank rail.

Rail ``status`` (up/degraded/halted) is deliberately not considered here: the cycle service handles it.

Every function taking a ``datetime`` requires it time-zone aware (``ValueError`` otherwise); returned
instants are aware UTC.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = [
    "DEFAULT_TIMEZONE",
    "DEFAULT_WEEKEND",
    "SEARCH_DAYS",
    "RailLike",
    "calendar_for",
    "closures",
    "is_business_day",
    "leg_deadline",
    "next_open",
    "rail_open_at",
    "trade_takeable",
    "validate_calendar_code",
    "value_date",
]

DEFAULT_TIMEZONE = "Asia/Hong_Kong"
# HKD CHATS does not run on Saturdays (not confirmed by a public source, hence a per-rail setting; this is the default).
DEFAULT_WEEKEND: frozenset[int] = frozenset({6, 7})
# How far next_open looks ahead before giving up.
SEARCH_DAYS = 366

FINANCIAL_PREFIX = "FIN:"

EVM = "evm"
BANK = "bank"
MANUAL = "manual"
_KINDS = frozenset({EVM, BANK, MANUAL})


class RailLike(Protocol):
    kind: str
    calendars: list[str]
    cutoff: time | None
    timezone: str
    weekend: list[int]
    window_minutes: int


# --- calendars ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """How to build one calendar: which holidays-library factory, with which arguments."""

    financial: bool
    code: str  # canonical country / market code, e.g. "HK", "XFED" (aliases such as "HKG", "FED" resolved)
    options: tuple[tuple[str, Any], ...]

    def build(self, years: tuple[int, ...]) -> holidays.HolidayBase:
        factory = holidays.financial_holidays if self.financial else holidays.country_holidays
        # expand=False: the cached object holds exactly the years asked for and is never mutated by a
        # look-up (a look-up of another year answers False instead of populating a shared object).
        return factory(self.code, years=years, expand=False, **dict(self.options))


# Per-calendar choices of the holidays library, keyed by canonical code; anything else uses the defaults.
_COUNTRY_OPTIONS: dict[str, dict[str, Any]] = {
    # Bank holidays in Hong Kong are the General Holidays, which the library files under "optional"
    # (its "public" category is the statutory holidays, with Sunday dates and "(observed)" Mondays).
    "HK": {"categories": ("optional",), "language": "en_HK"},
    "GB": {"subdiv": "ENG"},
    "JP": {"categories": ("public", "bank")},
}
_MARKET_OPTIONS: dict[str, dict[str, Any]] = {
    "XHKG": {"language": "en_HK"},  # the library's default for XHKG is zh_HK
}
_PREFERRED_LANGUAGE = "en_US"


def _show(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else repr(value)


def validate_calendar_code(code: object) -> None:
    """Raise ValueError unless ``code`` is a holidays-library calendar: a country ("HK") or "FIN:<market>"."""
    if not isinstance(code, str) or not code:
        raise ValueError(f'must be a calendar code such as "HK" or "FIN:XHKG", got {_show(code)}')
    if code.startswith(FINANCIAL_PREFIX):
        if code[len(FINANCIAL_PREFIX) :] not in holidays.list_supported_financial():
            raise ValueError(
                f'{_show(code)} is not a financial market calendar of the holidays library (e.g. "FIN:XHKG", "FIN:XFED")'
            )
    elif code not in holidays.list_supported_countries():
        hint = (
            f' (codes are upper-case: "{code.upper()}"?)' if code.upper() in holidays.list_supported_countries() else ""
        )
        raise ValueError(
            f'{_show(code)} is not a country calendar of the holidays library (e.g. "HK") nor a "FIN:XHKG"-style market'
            + hint
        )


@functools.cache  # valid codes only (invalid ones raise), so bounded by the library
def _spec(code: str) -> _Spec:
    validate_calendar_code(code)
    financial = code.startswith(FINANCIAL_PREFIX)
    raw = code[len(FINANCIAL_PREFIX) :] if financial else code
    probe = (holidays.financial_holidays if financial else holidays.country_holidays)(raw, years=())
    canonical = probe.market if financial else probe.country
    options = dict((_MARKET_OPTIONS if financial else _COUNTRY_OPTIONS).get(canonical, {}))
    if "language" not in options:
        # Always name a language so holiday names do not follow the process locale. A calendar without
        # translations (e.g. XECB: supported_languages == ()) has one fixed set of names; the library
        # silently accepts any language string, so only pass one it really supports.
        supported = probe.supported_languages or ()
        options["language"] = _PREFERRED_LANGUAGE if _PREFERRED_LANGUAGE in supported else probe.default_language
    return _Spec(financial=financial, code=canonical, options=tuple(sorted(options.items())))


@functools.lru_cache(maxsize=256)
def calendar_for(codes: tuple[str, ...], years: tuple[int, ...]) -> holidays.HolidayBase:
    """The holidays of every calendar in ``codes`` over ``years``, combined (a date is a holiday if any
    calendar has it; names of coinciding holidays are joined with "; ").

    Cached per (codes, years): pass tuples, and treat the result as read-only. It covers exactly
    ``years`` (no auto-expansion). Unknown code -> ValueError naming it. No codes -> an empty calendar.
    """
    if isinstance(codes, str):
        raise TypeError(f"codes must be a tuple of calendar codes, got the string {_show(codes)}")
    built = [_spec(code).build(years) for code in codes]
    if not built:
        return holidays.HolidayBase(years=years, expand=False)
    combined = built[0]
    for calendar in built[1:]:
        combined = combined + calendar
    return combined


# --- rails --------------------------------------------------------------------------------------


def _kind(rail: RailLike) -> str:
    kind = str(rail.kind)
    if kind not in _KINDS:
        raise ValueError(f"rail {_name(rail)}: unknown kind {_show(kind)} (expected evm, bank or manual)")
    return kind


def _name(rail: object) -> str:
    return _show(getattr(rail, "code", None) or repr(rail))


def _codes(rail: RailLike) -> tuple[str, ...]:
    return tuple(sorted(set(rail.calendars or ())))


def _keeps_calendar(rail: RailLike) -> bool:
    kind = _kind(rail)
    return kind == BANK or (kind == MANUAL and bool(rail.calendars))


def _cutoff(rail: RailLike) -> time | None:
    """The rail's cut-off as a naive wall-clock time, or None (evm rails never have one)."""
    cutoff = rail.cutoff
    if _kind(rail) == EVM or cutoff is None:
        return None
    if isinstance(cutoff, str):  # an unsaved, uncleaned model instance may still hold "HH:MM"
        cutoff = time.fromisoformat(cutoff)
    return cutoff.replace(tzinfo=None)


def _weekend(rail: RailLike) -> frozenset[int]:
    weekend = frozenset(rail.weekend or ()) or DEFAULT_WEEKEND
    if not weekend <= {1, 2, 3, 4, 5, 6, 7}:
        raise ValueError(f"rail {_name(rail)}: weekend must list ISO weekdays 1..7, got {sorted(weekend)}")
    return weekend


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{_show(name)} is not a known IANA time zone") from exc


def _tz(rail: RailLike) -> ZoneInfo:
    return _zone(getattr(rail, "timezone", None) or DEFAULT_TIMEZONE)


def _aware(at: object, name: str) -> datetime:
    if not isinstance(at, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be time-zone aware, got naive {at.isoformat()}")
    return at


def _plain_date(day: object, name: str) -> date:
    # datetime is a subclass of date; its .date() may be the UTC date rather than the rail's local date.
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"{name} must be a date (use value_date() for an instant), got {type(day).__name__}")
    return day


def _local_to_utc(day: date, wall: time, tz: ZoneInfo) -> datetime:
    # fold=0: a wall time that falls in a DST gap resolves with the offset before the change (for a gap
    # starting at midnight that is exactly the moment the day starts).
    return datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)


def _business_day(rail: RailLike, day: date) -> bool:
    if not _keeps_calendar(rail):
        return True
    if day.isoweekday() in _weekend(rail):
        return False
    codes = _codes(rail)
    return not codes or day not in calendar_for(codes, (day.year,))


def is_business_day(rail: RailLike, day: date) -> bool:
    """Whether ``day`` (a local date of the rail) is a business day of ``rail``."""
    return _business_day(rail, _plain_date(day, "day"))


def value_date(rail: RailLike, at: datetime) -> date:
    """The local date at ``at`` in the rail's time zone (the settlement day of a bank leg taken then)."""
    return _aware(at, "at").astimezone(_tz(rail)).date()


def _open(rail: RailLike, at: datetime) -> bool:
    if _kind(rail) == EVM:
        return True
    local = at.astimezone(_tz(rail))
    cutoff = _cutoff(rail)
    if cutoff is not None and local.time().replace(tzinfo=None) >= cutoff:
        return False
    return _business_day(rail, local.date())


def rail_open_at(rail: RailLike, at: datetime) -> bool:
    """May a cycle at ``at`` take a leg on ``rail``: a business day in the rail's time zone and strictly
    before its cut-off. Evm rails: always. Rail status is not considered."""
    return _open(rail, _aware(at, "at"))


def trade_takeable(rails: Iterable[RailLike], at: datetime) -> bool:
    """Whether a cycle at ``at`` may take a trade whose legs use ``rails``: every rail open (DVP is per
    trade, so a crypto leg waits with its fiat leg)."""
    at = _aware(at, "at")
    return all(_open(rail, at) for rail in rails)


def next_open(rail: RailLike, after: datetime) -> datetime:
    """The first instant >= ``after`` (in UTC) at which ``rail_open_at`` is true: ``after`` itself if the rail
    is open then, else 00:00 local of the next business day. ValueError if none within SEARCH_DAYS days."""
    after = _aware(after, "after").astimezone(UTC)
    if _open(rail, after):
        return after
    tz = _tz(rail)
    today = after.astimezone(tz).date()
    for offset in range(1, SEARCH_DAYS + 1):
        day = today + timedelta(days=offset)
        if not _business_day(rail, day):
            continue
        start = _local_to_utc(day, time(0), tz)
        if _open(rail, start):  # false only for a cut-off of 00:00, which never opens
            return start
    raise ValueError(f"rail {_name(rail)} does not open within {SEARCH_DAYS} days after {after.isoformat()}")


def leg_deadline(rail: RailLike, at: datetime) -> datetime:
    """When a leg taken at ``at`` on ``rail`` must be done, as aware UTC.

    Rail with a cut-off (bank, or manual with one): the cut-off on ``value_date(rail, at)``, local time; if
    ``at`` is not before it (or not on a business day) the cut-off of the next business day. Otherwise
    ``at`` + ``window_minutes`` (elapsed time, whatever the time zone of ``at``).
    """
    at = _aware(at, "at").astimezone(UTC)
    cutoff = _cutoff(rail)
    if cutoff is None:
        return at + timedelta(minutes=rail.window_minutes)
    day = value_date(rail, at) if _open(rail, at) else value_date(rail, next_open(rail, at))
    return _local_to_utc(day, cutoff, _tz(rail))


def closures(rail: RailLike, start: date, end: date) -> list[tuple[date, date]]:
    """The stretches of consecutive non-business days of ``rail`` between ``start`` and ``end`` inclusive,
    as (first, last) pairs in date order; a stretch running over either end is clipped to it."""
    start, end = _plain_date(start, "start"), _plain_date(end, "end")
    if end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    stretches: list[tuple[date, date]] = []
    first: date | None = None
    day = start
    while day <= end:
        if _business_day(rail, day):
            if first is not None:
                stretches.append((first, day - timedelta(days=1)))
                first = None
        elif first is None:
            first = day
        day += timedelta(days=1)
    if first is not None:
        stretches.append((first, end))
    return stretches
