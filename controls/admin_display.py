"""Columns that make the admin readable by an operations team, in one place
for every app's admin (issue 14): amounts at the asset's scale with
thousands separators, times in Hong Kong with UTC on hover, and codes in
place of ids. Use them in ``list_display`` and ``readonly_fields``:

    list_display = ["reference", amount_column("amount"), hk_time_column("created_at"), code_column("counterparty")]
"""

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import admin
from django.utils.html import format_html

from controls.money import display

HK = ZoneInfo("Asia/Hong_Kong")


def hk_time(value: datetime | None) -> str:
    """A timestamp as people in Hong Kong read it, with the UTC time on hover."""
    if value is None:
        return "–"
    return format_html(
        '<time datetime="{}" title="{} UTC">{}</time>',
        value.astimezone(UTC).isoformat(),
        f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
        f"{value.astimezone(HK):%Y-%m-%d %H:%M:%S} HKT",
    )


def hk_time_short(value: datetime | None) -> str:
    """``11-29 14:05`` in Hong Kong time (``14:05`` when it is today there), UTC on hover."""
    if value is None:
        return "–"
    local = value.astimezone(HK)
    today = datetime.now(HK).date()
    return format_html(
        '<time datetime="{}" title="{} UTC">{}</time>',
        value.astimezone(UTC).isoformat(),
        f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
        f"{local:%H:%M}" if local.date() == today else f"{local:%m-%d %H:%M}",
    )


def hk_time_column(field: str, description: str | None = None) -> Callable:
    @admin.display(description=description or field.replace("_", " ") + " (HKT)", ordering=field)
    def column(self, obj) -> str:
        return hk_time(getattr(obj, field))

    column.__name__ = f"{field}_hkt"
    return column


def amount(value: Decimal | None, scale: int) -> str:
    return display(value, scale)


def amount_column(field: str, asset_field: str = "asset", description: str | None = None, with_code: bool = True):
    """``field`` at the scale of the row's asset, with its code: "64,000.00 USDC"."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(self, obj) -> str:
        asset = getattr(obj, asset_field)
        value = getattr(obj, field)
        if asset is None:
            return "–" if value is None else format(value, "f")
        text = display(value, asset.scale)
        return f"{text} {asset.code}" if with_code else text

    column.__name__ = f"{field}_display"
    return column


def hkd_column(field: str, description: str | None = None):
    """An HKD figure: two decimals, thousands separators."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(self, obj) -> str:
        return display(getattr(obj, field), settings.HKD_SCALE)

    column.__name__ = f"{field}_display"
    return column


def code_column(field: str, attr: str = "code", description: str | None = None):
    """A related record by its code (an operator's "SG1", an asset's "BTC") rather than its id."""

    @admin.display(description=description or field.replace("_", " "), ordering=f"{field}__{attr}")
    def column(self, obj) -> str:
        related = getattr(obj, field)
        return "–" if related is None else str(getattr(related, attr))

    column.__name__ = f"{field}_code"
    return column
