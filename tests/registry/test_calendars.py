"""Rail calendars and cut-offs (custody.calendars) with real dates; no database needed.

Rails are unsaved ``Rail`` instances (or a small dataclass, to show any object with the same attributes
works). The USD rails use America/New_York with a 17:30 cut-off: a test value, not a Fedwire fact.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from registry import calendars
from registry.calendars import (
    calendar_for,
    closures,
    is_business_day,
    leg_deadline,
    next_open,
    rail_open_at,
    trade_takeable,
    validate_calendar_code,
    value_date,
)
from registry.models import Rail

HKT = ZoneInfo("Asia/Hong_Kong")
NYC = ZoneInfo("America/New_York")

# The 2026 Hong Kong General Holidays (Cap. 149), as gazetted.
HK_2026 = [
    date(2026, 1, 1),
    date(2026, 2, 17),
    date(2026, 2, 18),
    date(2026, 2, 19),
    date(2026, 4, 3),
    date(2026, 4, 4),
    date(2026, 4, 6),
    date(2026, 4, 7),
    date(2026, 5, 1),
    date(2026, 5, 25),
    date(2026, 6, 19),
    date(2026, 7, 1),
    date(2026, 9, 26),
    date(2026, 10, 1),
    date(2026, 10, 19),
    date(2026, 12, 25),
    date(2026, 12, 26),
]


def hkt(*args: int) -> datetime:
    return datetime(*args, tzinfo=HKT)


def nyc(*args: int) -> datetime:
    return datetime(*args, tzinfo=NYC)


def bank(*, calendars=("HK",), cutoff=time(17, 30), timezone="Asia/Hong_Kong", weekend=(6, 7), **kw) -> Rail:
    kw.setdefault("code", "hkd-chats")
    kw.setdefault("currency", "HKD")
    return Rail(
        kind=Rail.Kind.BANK,
        calendars=list(calendars),
        cutoff=cutoff,
        timezone=timezone,
        weekend=list(weekend),
        window_minutes=kw.pop("window_minutes", 1440),
        **kw,
    )


def evm(*, window_minutes: int = 60) -> Rail:
    return Rail(code="eth", kind=Rail.Kind.EVM, chain_id=1, window_minutes=window_minutes)


@pytest.fixture
def hkd() -> Rail:
    return bank()


@pytest.fixture
def eth() -> Rail:
    return evm()


@pytest.fixture
def usd() -> Rail:
    return bank(code="usd-fed", currency="USD", calendars=["FIN:XFED"], timezone="America/New_York")


# --- calendars ----------------------------------------------------------------------------------


@pytest.mark.para(13)
def test_hk_2026_general_holidays_match_facts_exactly():
    assert sorted(calendar_for(("HK",), (2026,))) == HK_2026


def test_hk_calendar_has_stable_english_names():
    hk = calendar_for(("HK",), (2026,))
    assert hk[date(2026, 12, 26)] == "The first weekday after Christmas Day"
    assert hk[date(2026, 2, 17)] == "Lunar New Year's Day"
    # XHKG defaults to zh_HK in the library: we ask for English.
    assert calendar_for(("FIN:XHKG",), (2026,))[date(2026, 12, 25)] == "Christmas Day"


@pytest.mark.para(13)
def test_fed_calendar_2026_and_unmoved_saturday_holiday():
    fed = calendar_for(("FIN:XFED",), (2026,))
    assert date(2026, 11, 26) in fed  # Thanksgiving
    assert date(2026, 6, 19) in fed  # Juneteenth
    assert date(2026, 7, 4) in fed  # Independence Day, a Saturday...
    assert date(2026, 7, 3) not in fed  # ...not moved to Friday by the Fed (the Fed does not move Saturday holidays)


def test_combined_calendars_and_caching():
    both = calendar_for(("FIN:XFED", "HK"), (2026,))
    assert date(2026, 11, 26) in both and date(2026, 7, 1) in both
    assert calendar_for(("FIN:XFED", "HK"), (2026,)) is both
    assert len(calendar_for((), (2026,))) == 0


def test_calendar_covers_only_the_years_asked_for():
    hk = calendar_for(("HK",), (2026,))
    assert date(2027, 1, 1) not in hk
    assert sorted(hk) == HK_2026  # a look-up of another year does not grow the shared object


def test_alias_codes_get_the_same_rules():
    # "HKG" is the library's alpha-3 alias of HK: it must still be the General Holidays, not "public".
    assert sorted(calendar_for(("HKG",), (2026,))) == HK_2026


@pytest.mark.parametrize("code", ["HK", "GB", "SG", "JP", "FIN:XFED", "FIN:XECB", "FIN:XHKG", "FIN:FED"])
def test_known_codes_build(code):
    validate_calendar_code(code)
    assert len(calendar_for((code,), (2026,))) > 0


@pytest.mark.para(13)
def test_other_calendars_follow_facts():
    gb = calendar_for(("GB",), (2026,))
    assert date(2026, 8, 31) in gb  # England's Summer bank holiday (Scotland's is 3 Aug)
    assert date(2026, 8, 3) not in gb
    jp = calendar_for(("JP",), (2026,))
    assert date(2026, 1, 2) in jp and date(2026, 12, 31) in jp  # bank holidays, not public ones


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ZZ", '"ZZ" is not a country calendar'),
        ("FIN:NOPE", '"FIN:NOPE" is not a financial market calendar'),
        ("hk", '"hk" is not a country calendar'),
        ("", "must be a calendar code"),
    ],
)
def test_unknown_calendar_code_raises_naming_it(code, message):
    with pytest.raises(ValueError, match=message):
        validate_calendar_code(code)
    with pytest.raises(ValueError, match=message):
        calendar_for(("HK", code), (2026,))


def test_unknown_code_on_a_rail_raises_naming_it():
    with pytest.raises(ValueError, match='"XX"'):
        is_business_day(bank(calendars=["XX"]), date(2026, 3, 4))


# --- the BTC/HKD trade over Christmas 2025 ------------------------------------------------------


@pytest.mark.para(13)
def test_btc_hkd_trade_after_christmas_eve_cutoff_waits_for_monday(hkd, eth):
    after_cutoff = hkt(2025, 12, 24, 17, 45)  # Wednesday
    assert not trade_takeable([eth, hkd], after_cutoff)
    # 25, 26 Dec holidays; 27 Saturday; 28 Sunday.
    first = next_open(hkd, after_cutoff)
    assert first == hkt(2025, 12, 29, 0, 0)
    assert first.tzinfo is UTC and first == datetime(2025, 12, 28, 16, 0, tzinfo=UTC)
    for day in (25, 26, 27, 28):
        assert not trade_takeable([eth, hkd], hkt(2025, 12, day, 10, 0))
    assert trade_takeable([eth, hkd], hkt(2025, 12, 29, 10, 0))
    assert trade_takeable([eth, hkd], hkt(2025, 12, 24, 16, 0))
    assert closures(hkd, date(2025, 12, 24), date(2025, 12, 29)) == [(date(2025, 12, 25), date(2025, 12, 28))]


@pytest.mark.para(13)
def test_hkd_cutoff_is_strict(hkd):
    assert rail_open_at(hkd, hkt(2026, 3, 4, 17, 29))
    assert rail_open_at(hkd, hkt(2026, 3, 4, 17, 29, 59, 999999))
    assert not rail_open_at(hkd, hkt(2026, 3, 4, 17, 30))
    assert rail_open_at(hkd, hkt(2026, 3, 4, 0, 0))


@pytest.mark.para(13)
def test_open_is_judged_in_the_rails_time_zone(hkd):
    # 09:29Z is 17:29 HKT, 09:30Z is 17:30 HKT; 16:00Z on 3 Mar is 00:00 HKT on 4 Mar.
    assert rail_open_at(hkd, datetime(2026, 3, 4, 9, 29, tzinfo=UTC))
    assert not rail_open_at(hkd, datetime(2026, 3, 4, 9, 30, tzinfo=UTC))
    assert rail_open_at(hkd, datetime(2026, 3, 3, 16, 0, tzinfo=UTC))
    assert value_date(hkd, datetime(2026, 3, 3, 16, 0, tzinfo=UTC)) == date(2026, 3, 4)


@pytest.mark.para(13)
def test_next_open_returns_after_when_already_open(hkd, eth):
    at = hkt(2026, 3, 4, 10, 0)
    assert next_open(hkd, at) == at
    assert next_open(eth, hkt(2025, 12, 25, 3, 0)) == hkt(2025, 12, 25, 3, 0)


@pytest.mark.para(13)
def test_next_open_from_a_holiday_morning(hkd):
    # Lunar New Year: Tue 17 - Thu 19 Feb 2026; Fri 20 is a business day.
    assert next_open(hkd, hkt(2026, 2, 17, 9, 0)) == hkt(2026, 2, 20, 0, 0)
    # Easter 2026: Fri 3 - Tue 7 Apr closed in a row.
    assert next_open(hkd, hkt(2026, 4, 2, 18, 0)) == hkt(2026, 4, 8, 0, 0)


def test_next_open_is_bounded():
    never = bank(cutoff=time(0, 0))  # "strictly before 00:00" never happens
    with pytest.raises(ValueError, match="does not open within 366 days"):
        next_open(never, hkt(2026, 3, 4, 10, 0))


# --- USD / Federal Reserve ----------------------------------------------------------------------


@pytest.mark.para(13)
def test_usd_leg_waits_over_thanksgiving(usd, eth):
    assert rail_open_at(usd, nyc(2026, 11, 25, 17, 0))  # Wednesday before the cut-off
    assert not trade_takeable([eth, usd], nyc(2026, 11, 25, 17, 30))
    assert not rail_open_at(usd, nyc(2026, 11, 26, 10, 0))  # Thanksgiving, a Thursday
    assert next_open(usd, nyc(2026, 11, 25, 18, 0)) == nyc(2026, 11, 27, 0, 0)
    assert next_open(usd, nyc(2026, 11, 25, 18, 0)) == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # EST
    assert leg_deadline(usd, nyc(2026, 11, 27, 9, 0)) == datetime(2026, 11, 27, 22, 30, tzinfo=UTC)


@pytest.mark.para(13)
def test_usd_leg_waits_over_juneteenth(usd):
    assert not rail_open_at(usd, nyc(2026, 6, 19, 10, 0))  # Friday
    assert next_open(usd, nyc(2026, 6, 19, 10, 0)) == nyc(2026, 6, 22, 0, 0)  # Monday, EDT
    assert rail_open_at(usd, nyc(2026, 7, 3, 10, 0))  # Friday before the Saturday 4 July: the Fed is open


@pytest.mark.para(13)
def test_rail_on_hk_and_fed_calendars_closes_for_both():
    hk_only = date(2026, 7, 1)  # HKSAR Establishment Day, Wednesday; not a Fed holiday
    fed_only = date(2026, 11, 26)  # Thanksgiving, Thursday; not an HK holiday
    usd_chats = bank(code="usd-chats", currency="USD", calendars=["HK", "FIN:XFED"])
    assert is_business_day(bank(calendars=["HK"]), fed_only)
    assert is_business_day(bank(calendars=["FIN:XFED"]), hk_only)
    assert not is_business_day(usd_chats, hk_only)
    assert not is_business_day(usd_chats, fed_only)
    assert is_business_day(usd_chats, date(2026, 7, 2))
    assert not rail_open_at(usd_chats, hkt(2026, 11, 26, 10, 0))
    assert next_open(usd_chats, hkt(2026, 11, 26, 10, 0)) == hkt(2026, 11, 27, 0, 0)


# --- crypto, weekends, manual rails -------------------------------------------------------------


@pytest.mark.para(13)
def test_crypto_only_trade_is_taken_on_sunday_and_christmas(eth):
    sunday = hkt(2026, 3, 8, 3, 0)
    assert sunday.isoweekday() == 7
    assert trade_takeable([eth], sunday)
    assert trade_takeable([eth, evm(window_minutes=30)], hkt(2025, 12, 25, 23, 59))
    assert is_business_day(eth, date(2025, 12, 25))
    assert closures(eth, date(2025, 12, 1), date(2025, 12, 31)) == []


def test_trade_with_no_rails_is_takeable():
    assert trade_takeable([], hkt(2026, 3, 8, 3, 0))


@pytest.mark.para(13)
def test_saturday_closed_by_default_and_open_with_sunday_only_weekend():
    saturday = date(2026, 1, 3)
    assert saturday.isoweekday() == 6
    default = bank(weekend=[])
    assert not is_business_day(default, saturday)
    assert not rail_open_at(default, hkt(2026, 1, 3, 10, 0))
    sunday_only = bank(weekend=[7])
    assert is_business_day(sunday_only, saturday)
    assert rail_open_at(sunday_only, hkt(2026, 1, 3, 10, 0))
    assert not is_business_day(sunday_only, date(2026, 1, 4))
    # a holiday on a Saturday still closes a Sunday-only-weekend rail
    assert not is_business_day(sunday_only, date(2026, 4, 4))


def test_bad_weekend_raises():
    with pytest.raises(ValueError, match="ISO weekdays"):
        is_business_day(bank(weekend=[0]), date(2026, 3, 4))


@pytest.mark.para(13)
def test_manual_rail_every_day_unless_it_has_calendars():
    plain = Rail(code="wire", kind=Rail.Kind.MANUAL, window_minutes=240)
    assert is_business_day(plain, date(2025, 12, 25))
    assert is_business_day(plain, date(2026, 1, 3))
    assert rail_open_at(plain, hkt(2025, 12, 25, 23, 0))
    with_calendar = Rail(code="wire-hk", kind=Rail.Kind.MANUAL, calendars=["HK"], window_minutes=240)
    assert not is_business_day(with_calendar, date(2025, 12, 25))
    assert not is_business_day(with_calendar, date(2026, 1, 3))  # default weekend applies
    assert is_business_day(with_calendar, date(2026, 1, 5))
    assert leg_deadline(with_calendar, hkt(2026, 1, 5, 10, 0)) == hkt(2026, 1, 5, 14, 0)  # no cut-off: window


@dataclass
class PlainRail:
    kind: str
    calendars: list[str] = field(default_factory=list)
    cutoff: time | None = None
    timezone: str = "Asia/Hong_Kong"
    weekend: list[int] = field(default_factory=list)
    window_minutes: int = 1440


def test_any_object_with_rail_attributes_works():
    rail = PlainRail(kind="bank", calendars=["HK"], cutoff=time(17, 30))
    assert not rail_open_at(rail, hkt(2025, 12, 24, 17, 45))
    assert next_open(rail, hkt(2025, 12, 24, 17, 45)) == hkt(2025, 12, 29, 0, 0)
    with pytest.raises(ValueError, match="unknown kind"):
        rail_open_at(PlainRail(kind="carrier-pigeon"), hkt(2026, 3, 4, 10, 0))


# --- deadlines, value dates, closures -----------------------------------------------------------


@pytest.mark.para(13)
def test_leg_deadline_bank_is_that_days_cutoff_in_utc(hkd):
    deadline = leg_deadline(hkd, hkt(2026, 3, 4, 10, 0))
    assert deadline == datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    assert deadline.tzinfo is UTC


@pytest.mark.para(13)
def test_leg_deadline_past_cutoff_uses_next_business_day(hkd):
    assert leg_deadline(hkd, hkt(2025, 12, 24, 17, 45)) == datetime(2025, 12, 29, 9, 30, tzinfo=UTC)
    assert leg_deadline(hkd, hkt(2026, 3, 4, 17, 30)) == datetime(2026, 3, 5, 9, 30, tzinfo=UTC)


@pytest.mark.para(13)
def test_leg_deadline_evm_adds_the_window(eth):
    at = hkt(2026, 3, 4, 10, 0)
    assert leg_deadline(eth, at) == at + timedelta(minutes=60)
    assert leg_deadline(eth, at).tzinfo is UTC


@pytest.mark.para(13)
def test_leg_deadline_window_is_elapsed_time_across_dst(eth):
    # New York springs forward at 02:00 on 8 Mar 2026: 01:30 EST + 60 min is 03:30 EDT (07:30Z),
    # not the wall-clock 02:30 that aware-datetime arithmetic in that zone would give.
    assert leg_deadline(eth, nyc(2026, 3, 8, 1, 30)) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


@pytest.mark.para(13)
def test_bank_rail_without_cutoff_uses_window():
    rail = bank(cutoff=None, window_minutes=120)
    assert rail_open_at(rail, hkt(2026, 3, 4, 23, 59))
    assert leg_deadline(rail, hkt(2026, 3, 4, 23, 0)) == hkt(2026, 3, 5, 1, 0)


@pytest.mark.para(13)
def test_value_date_is_local(hkd, usd):
    at = datetime(2026, 3, 4, 20, 0, tzinfo=UTC)
    assert value_date(hkd, at) == date(2026, 3, 5)
    assert value_date(usd, at) == date(2026, 3, 4)


@pytest.mark.para(13)
def test_closures_over_lunar_new_year_2026(hkd):
    # Mon 16 Feb is not a General Holiday and Fri 20 Feb is a business day, so the holidays
    # (Tue 17 - Thu 19) and the weekends around them are separate stretches.
    assert closures(hkd, date(2026, 2, 1), date(2026, 2, 28)) == [
        (date(2026, 2, 1), date(2026, 2, 1)),  # Sunday; Saturday 31 Jan is before the range
        (date(2026, 2, 7), date(2026, 2, 8)),
        (date(2026, 2, 14), date(2026, 2, 15)),
        (date(2026, 2, 17), date(2026, 2, 19)),
        (date(2026, 2, 21), date(2026, 2, 22)),
        (date(2026, 2, 28), date(2026, 2, 28)),  # Saturday; Sunday 1 Mar is after the range
    ]


@pytest.mark.para(13)
def test_closures_across_new_year(hkd):
    assert closures(hkd, date(2026, 12, 21), date(2027, 1, 4)) == [
        (date(2026, 12, 25), date(2026, 12, 27)),
        (date(2027, 1, 1), date(2027, 1, 3)),
    ]
    assert closures(hkd, date(2026, 4, 1), date(2026, 4, 10)) == [(date(2026, 4, 3), date(2026, 4, 7))]


def test_closures_argument_checks(hkd):
    with pytest.raises(ValueError, match="before start"):
        closures(hkd, date(2026, 3, 2), date(2026, 3, 1))
    with pytest.raises(TypeError):
        closures(hkd, hkt(2026, 3, 1, 0, 0), date(2026, 3, 2))


# --- argument checks ----------------------------------------------------------------------------

NAIVE = datetime(2026, 3, 4, 10, 0)  # deliberately naive


@pytest.mark.parametrize(
    "call",
    [
        lambda rail: rail_open_at(rail, NAIVE),
        lambda rail: trade_takeable([rail], NAIVE),
        lambda rail: next_open(rail, NAIVE),
        lambda rail: value_date(rail, NAIVE),
        lambda rail: leg_deadline(rail, NAIVE),
    ],
    ids=["rail_open_at", "trade_takeable", "next_open", "value_date", "leg_deadline"],
)
@pytest.mark.parametrize("make", [bank, evm], ids=["bank", "evm"])
def test_naive_datetimes_are_refused(call, make):
    with pytest.raises(ValueError, match="time-zone aware"):
        call(make())


def test_is_business_day_refuses_a_datetime(hkd):
    with pytest.raises(TypeError, match="value_date"):
        is_business_day(hkd, hkt(2026, 3, 4, 10, 0))


def test_unknown_time_zone_raises():
    with pytest.raises(ValueError, match="not a known IANA time zone"):
        rail_open_at(bank(timezone="Asia/Hongkong_Central"), hkt(2026, 3, 4, 10, 0))


def test_rail_open_at_is_fast(hkd, eth, usd):
    rails = [hkd, eth, usd, bank(calendars=["HK", "FIN:XFED"])]
    at = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
    trade_takeable(rails, at)  # warm the caches
    misses = calendars.calendar_for.cache_info().misses
    for minute in range(2000):
        trade_takeable(rails, at + timedelta(minutes=minute))
    assert calendars.calendar_for.cache_info().misses == misses  # no calendar rebuilt
