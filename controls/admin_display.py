"""Columns that make the admin readable by an operations team, in one place
for every app's admin (issue 14): amounts at the asset's scale with
thousands separators, times in Hong Kong with UTC on hover, and codes in
place of ids. Use them in ``list_display`` and ``readonly_fields``:

    list_display = ["reference", amount_column("amount"), hk_time_column("created_at"), code_column("counterparty")]
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.db import models
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


def json_block(value) -> str:
    """A stored JSON value, indented, for a record's page."""
    if value in (None, {}, []):
        return "–"
    return format_html('<pre style="margin:0">{}</pre>', json.dumps(value, indent=2, sort_keys=True, default=str))


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
    def column(obj) -> str:
        return hk_time(getattr(obj, field))

    column.__name__ = f"{field}_hkt"
    return column


def amount(value: Decimal | None, scale: int) -> str:
    return display(value, scale)


def amount_column(field: str, asset_field: str = "asset", description: str | None = None, with_code: bool = True):
    """``field`` at the scale of the row's asset, with its code: "64,000.00 USDC"."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(obj) -> str:
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
    def column(obj) -> str:
        return display(getattr(obj, field), settings.HKD_SCALE)

    column.__name__ = f"{field}_display"
    return column


def code_column(field: str, attr: str = "code", description: str | None = None):
    """A related record by its code (an operator's "SG1", an asset's "BTC") rather than its id."""

    @admin.display(description=description or field.replace("_", " "), ordering=f"{field}__{attr}")
    def column(obj) -> str:
        related = getattr(obj, field)
        return "–" if related is None else str(getattr(related, attr))

    column.__name__ = f"{field}_code"
    return column


# --- every list, readable without listing each column by hand ----------------------------------


def _related_code(related) -> str:
    return "–" if related is None else str(getattr(related, "code", related))


def readable_column(model, name):
    """The list column for ``name`` as people read it, or ``name`` itself
    when it needs nothing: a time in HKT (UTC on hover), an amount at its
    asset's scale with the asset's code (HKD figures at two decimals), a
    utilisation as a percentage, a related record by its code."""
    if not isinstance(name, str):
        return name
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:  # a method or an admin callable: shown as it is
        return name
    label = str(getattr(field, "verbose_name", name))
    if isinstance(field, models.DateTimeField):
        return hk_time_column(name, f"{label} (HKT)")
    if isinstance(field, models.DecimalField):
        if name == "utilisation":

            @admin.display(description=label, ordering=name)
            def percent(obj) -> str:
                value = getattr(obj, name)
                return "–" if value is None else f"{value * 100:.1f} %"

            return percent
        if name.endswith("_hkd"):
            return hkd_column(name, f"{label} (HKD)")
        if field.decimal_places >= 8 and _has_asset(model):
            return amount_column(name, description=label)
        return name
    if isinstance(field, models.ForeignKey) and any(f.name == "code" for f in field.related_model._meta.get_fields()):

        @admin.display(description=label, ordering=f"{name}__code")
        def code(obj) -> str:
            return _related_code(getattr(obj, name))

        return code
    return name


def _has_asset(model) -> bool:
    try:
        return isinstance(model._meta.get_field("asset"), models.ForeignKey)
    except FieldDoesNotExist:
        return False


class ReadableListMixin:
    """Mixed into every admin of the project (the read-only and proposed-change
    bases carry it): the list columns named as model fields are shown by
    ``readable_column``, and the related rows they need are fetched with the
    list (no query per row)."""

    model: type[models.Model]

    def get_list_display(self, request):
        names = super().get_list_display(request)
        return [readable_column(self.model, name) for name in names]

    def get_list_select_related(self, request):
        chosen = super().get_list_select_related(request)
        if chosen is True:
            return chosen
        related = set(chosen or ())
        for name in super().get_list_display(request):
            if not isinstance(name, str):
                continue
            try:
                field = self.model._meta.get_field(name)
            except FieldDoesNotExist:
                continue  # a method or an admin callable
            if isinstance(field, models.ForeignKey):
                related.add(name)
            elif isinstance(field, models.DecimalField) and _has_asset(self.model):
                related.add("asset")
        return sorted(related) or False
