"""Display filters for the dashboard: exact Decimals, readable."""

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def hkd(value) -> str:
    """1234567.5 -> 1,234,567.50"""
    if value is None or value == "":
        return "–"
    return format(Decimal(value), ",.2f")


@register.filter
def amount(value) -> str:
    """An asset amount without trailing zeros: 2.32680000 -> 2.3268, 1E+2 -> 100."""
    if value is None or value == "":
        return "–"
    text = format(Decimal(value).normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{int(whole):,}" + (f".{fraction}" if fraction else "") if whole.lstrip("-").isdigit() else text


@register.filter
def percent(value) -> str:
    if value is None:
        return "n/a"
    return format(Decimal(value) * 100, ".2f") + "%"


@register.filter
def hkt(value) -> str:
    """A timestamp in Hong Kong time, the UTC time on hover."""
    from controls.admin_display import hk_time

    return hk_time(value)


@register.filter
def hkt_short(value) -> str:
    """Hong Kong time to the minute (today's date left out), UTC on hover."""
    from controls.admin_display import hk_time_short

    return hk_time_short(value)
