"""Running exposure per counterparty and asset, the cap it is held under,
and requests for intraday cycles."""

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q

from controls.money import MONEY, display
from registry.models import Asset, Operator


class CapConfig(models.Model):
    """The unsettled-exposure cap and its thresholds (one row)."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    total_hkd = models.DecimalField(max_digits=38, decimal_places=2)
    warn_at = models.DecimalField(max_digits=6, decimal_places=4, default=Decimal("0.70"))
    settle_at = models.DecimalField(max_digits=6, decimal_places=4, default=Decimal("0.80"))
    halt_at = models.DecimalField(max_digits=6, decimal_places=4, default=Decimal("1.00"))
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = "cap"
        constraints = [
            models.CheckConstraint(condition=Q(singleton=True), name="cap_singleton"),
            models.CheckConstraint(condition=Q(total_hkd__gte=0), name="cap_nonneg"),
            models.CheckConstraint(
                condition=Q(warn_at__gt=0)
                & Q(warn_at__lte=models.F("settle_at"))
                & Q(settle_at__lte=models.F("halt_at")),
                name="cap_thresholds_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"cap {self.total_hkd:,.2f} HKD"


class ExposurePosition(models.Model):
    """Running unsettled quantities per counterparty and asset.

    Updated under a row lock in the same transaction as the obligations that
    move them; valued at the current marks when read, so a new mark revalues
    at once.  ``exposure_recompute`` derives the same figures from the
    obligations and must agree.
    """

    counterparty = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="positions")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    receivable = models.DecimalField(**MONEY, default=Decimal(0))
    payable = models.DecimalField(**MONEY, default=Decimal(0))
    receivable_count = models.PositiveIntegerField(default=0)
    payable_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["counterparty_id", "asset_id"]
        constraints = [
            models.UniqueConstraint(fields=["counterparty", "asset"], name="position_unique"),
            models.CheckConstraint(condition=Q(receivable__gte=0) & Q(payable__gte=0), name="position_nonneg"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.counterparty.code} {self.asset.code}: receivable {display(self.receivable, self.asset.scale)}, "
            f"payable {display(self.payable, self.asset.scale)}"
        )


class CycleRequest(models.Model):
    """A request for an intraday cycle, e.g. when utilisation crosses settle_at.

    Cycles themselves arrive with the netting issue; until then a request is
    recorded here and stays ``pending`` for operations to see.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"

    kind = models.CharField(max_length=10, default="intraday")
    reason = models.CharField(max_length=200)
    utilisation = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    requested_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} cycle request {self.id} ({self.status})"


class ReserveCover(models.Model):
    """The reserve fund's available balance, the other half of the effective
    cap (min(cap, available)). The reserves layer sets it with
    ``reserve_cover_set`` in the same transaction as every ledger entry and
    claim decision, so exposure reads it here and never reaches up into the
    fund's own tables. One row."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    available_hkd = models.DecimalField(max_digits=38, decimal_places=2)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = "reserve cover"
        constraints = [models.CheckConstraint(condition=Q(singleton=True), name="reserve_cover_singleton")]

    def __str__(self) -> str:
        return f"reserve available {self.available_hkd:,.2f} HKD"


class ExposureReservation(models.Model):
    """Room under the cap taken by a reserving pre-trade check (DESIGN
    section 5): its value counts against the cap and the counterparty's limit
    until a trade names it (``buy.reservation_id`` / ``sell.reservation_id``)
    or it expires, so two concurrent checks near the cap cannot both pass.
    An expired reservation keeps the status ``reserved``: it simply stops
    counting (reads compare ``expires_at``)."""

    class Status(models.TextChoices):
        RESERVED = "reserved"
        CONSUMED = "consumed"

    reservation_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    counterparty = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**MONEY)
    # valued when reserved, at the replacement price (mark x (1 + haircut))
    amount_hkd = models.DecimalField(max_digits=38, decimal_places=2)
    account = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RESERVED)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    trade = models.ForeignKey("settlement.Trade", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    consumed_at = models.DateTimeField(null=True, blank=True)
    actor = models.CharField(max_length=150)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "expires_at"], name="reservation_open_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0) & Q(amount_hkd__gte=0), name="reservation_positive"),
            models.CheckConstraint(condition=Q(expires_at__gt=models.F("created_at")), name="reservation_expires"),
            models.CheckConstraint(
                condition=Q(status="reserved", trade__isnull=True) | Q(status="consumed", trade__isnull=False),
                name="reservation_consumed_by_a_trade",
            ),
        ]

    def __str__(self) -> str:
        return f"reservation {self.reservation_id} {self.amount_hkd:,.2f} HKD ({self.status})"
