"""Strict decimal parsing for amounts that arrive from outside.

Decimals arrive as JSON strings in plain notation. Exponents, NaN, Infinity,
JSON numbers and more decimals than the asset's scale are refused, never
rounded: the one computed amount (quote = price x quantity) is rounded
half-even, by ``quote_amount``.
"""

import re
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import TypedDict

from .exceptions import InvalidInput

# Storage is NUMERIC(38, 18): at most 20 integer digits and 18 decimals.
MAX_INTEGER_DIGITS = 20
MAX_SCALE = 18
# The largest amount taken from outside (a quadrillion): sums of up to 100,000
# such amounts (netting, exposure, positions) still fit the 20 integer digits.
MAX_AMOUNT = Decimal(10) ** 15
# An amount stored at its asset's scale must fit 28 significant digits: the
# default precision of Python's decimal arithmetic and of the decimal types
# clients parse our JSON strings into.
SIGNIFICANT_DIGITS = 28


class MoneyField(TypedDict):
    max_digits: int
    decimal_places: int


# the money column, one definition for every app: NUMERIC(38, 18), any asset's scale
MONEY: MoneyField = {"max_digits": 38, "decimal_places": 18}
# ASCII digits only: full-width or other Unicode digits are not a price
_PLAIN = re.compile(r"[+-]?([0-9]+)(?:\.([0-9]+))?")
_MAX_TEXT = 80
_CTX = Context(prec=80)


class NonFiniteConstant(str):
    """What the lenient JSON fallback makes of a bare NaN/Infinity literal."""


def parse_decimal(value: object, *, field: str, scale: int = MAX_SCALE, positive: bool = True) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise InvalidInput("invalid_decimal", f"{field} must be a decimal string, got {_describe(value)}", field=field)
    if isinstance(value, (int, float, NonFiniteConstant)):
        raise InvalidInput(
            "number_not_string",
            f'{field} is a JSON number; decimals must be sent as strings (e.g. "{value}") so no precision is lost',
            field=field,
        )
    if not isinstance(value, str):
        raise InvalidInput("invalid_decimal", f"{field} must be a decimal string, got {_describe(value)}", field=field)
    if len(value) > _MAX_TEXT:
        raise InvalidInput("out_of_range", f"{field} is longer than {_MAX_TEXT} characters", field=field)
    match = _PLAIN.fullmatch(value.strip())
    if match is None:
        lowered = value.strip().lower()
        if lowered.lstrip("+-") in {"nan", "snan", "inf", "infinity"}:
            raise InvalidInput("invalid_decimal", f"{field} must be a finite number, got {value!r}", field=field)
        if "e" in lowered:
            raise InvalidInput(
                "invalid_decimal",
                f"{field} must be in plain notation without an exponent, got {value[:50]!r}",
                field=field,
            )
        raise InvalidInput("invalid_decimal", f"{field} is not a decimal number: {value[:50]!r}", field=field)
    integer, fraction = match.group(1), match.group(2) or ""
    if len(integer.lstrip("0")) > MAX_INTEGER_DIGITS:
        raise InvalidInput("out_of_range", f"{field} has more than {MAX_INTEGER_DIGITS} integer digits", field=field)
    number = Decimal(value.strip())
    if abs(number) >= MAX_AMOUNT:
        raise InvalidInput("out_of_range", f"{field} must be less than {MAX_AMOUNT:,f}", field=field)
    if positive and number <= 0:
        raise InvalidInput("non_positive", f"{field} must be greater than zero, got {value}", field=field)
    significant_fraction = fraction.rstrip("0")
    if len(significant_fraction) > scale:
        raise InvalidInput(
            "too_many_decimals",
            f"{field} {value} has {len(significant_fraction)} decimal places; at most {scale} allowed",
            field=field,
        )
    return number


def quantum(scale: int) -> Decimal:
    return Decimal(1).scaleb(-scale)


def quote_amount(price: Decimal, quantity: Decimal, scale: int) -> Decimal:
    """price x quantity, rounded half-even to the quote asset's scale."""
    return _CTX.multiply(price, quantity).quantize(quantum(scale), rounding=ROUND_HALF_EVEN, context=_CTX)


def fits_storage(amount: Decimal) -> bool:
    return amount.adjusted() < MAX_INTEGER_DIGITS


def amount_in_range(amount: Decimal, *, scale: int, field: str, label: str | None = None) -> Decimal:
    """Refuse (``out_of_range``) an amount that the later computations
    cannot hold: at least ``MAX_AMOUNT``, or more than 28 significant digits
    at its asset's scale (12345678901.5 ETH is 29 digits at 18 places)."""
    label = label or field
    if abs(amount) >= MAX_AMOUNT:
        raise InvalidInput("out_of_range", f"{label} must be less than {MAX_AMOUNT:,f}", field=field)
    if amount and amount.adjusted() + 1 + scale > SIGNIFICANT_DIGITS:
        raise InvalidInput(
            "out_of_range",
            f"{label} {as_str(amount)} has more than {SIGNIFICANT_DIGITS} significant digits at {scale} decimal places",
            field=field,
        )
    return amount


def at_scale(amount: Decimal, scale: int) -> Decimal:
    """An amount at its asset's scale, in a context wide enough for any
    stored value (NUMERIC(38, 18) has up to 38 digits)."""
    return amount.quantize(quantum(scale), context=_CTX)


def hkd(amount: Decimal) -> Decimal:
    """An HKD figure for display and limits: two places, half-even."""
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN, context=_CTX)


def as_str(amount: Decimal | None) -> str | None:
    if amount is None:
        return None
    return format(amount, "f")


def _describe(value: object) -> str:
    return "null" if value is None else type(value).__name__


def display(amount: Decimal | None, scale: int) -> str:
    """An amount for people: the asset's scale, thousands separators, exact
    (1234.5 HKD -> "1,234.50"; 0.123456789012345678 ETH as it is)."""
    if amount is None:
        return "–"
    return format(at_scale(amount, scale), f",.{scale}f")
