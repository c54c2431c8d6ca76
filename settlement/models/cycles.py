"""Netting cycles and delivery versus payment: one batch per counterparty,
netted into one leg per asset."""

from zoneinfo import ZoneInfo

from django.db import models
from django.db.models import Q

from controls.money import MONEY, display
from registry.models import Asset, Operator

from .trades import Obligation

HK = ZoneInfo("Asia/Hong_Kong")


class CycleLock(models.Model):
    """One row. A cycle holds it (SELECT ... FOR UPDATE) for its whole
    transaction, so at most one cycle runs at a time across all workers."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)

    def __str__(self) -> str:
        return "cycle lock"


class Cycle(models.Model):
    class Kind(models.TextChoices):
        INTRADAY = "intraday"
        EOD = "eod"

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    as_of = models.DateTimeField(help_text="cut-off watermark: trades executed at or before it")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    requested_by = models.CharField(max_length=150)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    obligations_taken = models.PositiveIntegerField(default=0)
    obligations_deferred = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-as_of", "-id"]
        constraints = [models.UniqueConstraint(fields=["kind", "as_of"], name="cycle_unique_kind_as_of")]

    def __str__(self) -> str:
        return f"{self.kind} cycle {self.as_of.astimezone(HK):%Y-%m-%d %H:%M} HKT"


class FailReason(models.TextChoices):
    """Why a leg failed (DESIGN section 7, fail attribution)."""

    NOT_DELIVERED = "not_delivered"
    SHORT_DELIVERY = "short_delivery"
    OVER_DELIVERY = "over_delivery"
    RAIL_OUTAGE = "rail_outage"
    HOME_INSTRUCTION_LATE = "home_instruction_late"
    DISPUTED = "disputed"
    COUNTERPARTY_DEFAULTED = "counterparty_defaulted"


HOME = "home"  # failed_by of a fail that is home's own


class Affirmation(models.TextChoices):
    NOT_REQUIRED = "not_required"
    PENDING = "pending"
    AFFIRMED = "affirmed"
    DEEMED_AFFIRMED = "deemed_affirmed", "deemed affirmed (window passed)"
    DISPUTED = "disputed"


class Batch(models.Model):
    """The DVP unit: everything one cycle took with one counterparty."""

    class Status(models.TextChoices):
        OPEN = "open"
        SETTLED = "settled"
        FAILED = "failed"

    Affirmation = Affirmation

    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, related_name="batches")
    counterparty = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="batches")
    dvp_policy = models.CharField(max_length=16, choices=Operator.DvpPolicy.choices)
    escrow_custodian = models.ForeignKey("registry.Custodian", on_delete=models.PROTECT, null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    obligations_taken = models.PositiveIntegerField(default=0, help_text="how many obligations the cycle took into it")
    settled_by_netting = models.BooleanField(default=False)
    waiting_reason = models.CharField(max_length=300, blank=True)
    # who failed the batch ("home" or the counterparty's code) and why (a
    # FailReason); fail_detail names every failed leg
    failed_by = models.CharField(max_length=16, blank=True)
    fail_reason = models.CharField(max_length=300, blank=True)
    fail_detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # operations' hold: while held_at is set its deadlines stand still and
    # nothing more is instructed; a release moves the deadlines on by the hold
    held_at = models.DateTimeField(null=True, blank=True)
    held_by = models.CharField(max_length=150, blank=True)
    hold_reason = models.CharField(max_length=2000, blank=True)
    # the counterparty's affirmation; home's outbound legs wait for it
    affirmation = models.CharField(max_length=16, choices=Affirmation.choices, default=Affirmation.NOT_REQUIRED)
    affirmation_due = models.DateTimeField(null=True, blank=True)
    affirmed_at = models.DateTimeField(null=True, blank=True)
    affirmed_by = models.CharField(max_length=150, blank=True)
    dispute_reason = models.CharField(max_length=2000, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "batches"
        constraints = [models.UniqueConstraint(fields=["cycle", "counterparty"], name="batch_unique_counterparty")]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"batch {self.id} {self.counterparty.code} ({self.status})"


class BatchItem(models.Model):
    """An obligation that left this batch unsettled: the batch failed and
    sent it back to open, or a default closed it out. With
    ``Obligation.batch`` (the batch it is in now, or settled with) this is
    every batch it was ever in; written as it leaves
    (``settlement.services.history``)."""

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="items")
    obligation = models.ForeignKey(Obligation, on_delete=models.PROTECT, related_name="batch_items")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "obligation"], name="batch_item_unique")]

    def __str__(self) -> str:
        return f"batch {self.batch_id}: {self.obligation}"


class Leg(models.Model):
    """One net transfer of one asset in a batch."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", "inbound (to home)"
        OUTBOUND = "outbound", "outbound (from home)"

    class Status(models.TextChoices):
        PENDING = "pending"
        INSTRUCTED = "instructed"
        CONFIRMING = "confirming"
        # escrow DVP: delivered to the escrow custodian, waiting there for the
        # batch's other legs (released together, or returned at the deadline)
        LOCKED = "locked"
        CONFIRMED = "confirmed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    OPEN_STATUSES = (Status.PENDING, Status.INSTRUCTED, Status.CONFIRMING, Status.LOCKED)

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="legs")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    amount = models.DecimalField(**MONEY)
    status = models.CharField(max_length=10, choices=Status.choices)
    value_date = models.DateField()
    deadline = models.DateTimeField()
    lead_time_minutes = models.PositiveIntegerField(default=0, help_text="cold-to-hot time added to the deadline")
    instructed_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True, help_text="escrow: when the escrow custodian held it")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.CharField(max_length=150, blank=True)
    evidence = models.JSONField(null=True, blank=True)
    failed_by = models.CharField(max_length=16, blank=True, help_text='"home" or the counterparty\'s code')
    fail_reason = models.CharField(max_length=24, choices=FailReason.choices, blank=True)

    class Meta:
        ordering = ["batch_id", "direction", "asset_id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "asset"], name="leg_unique_asset"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="leg_amount_positive"),
        ]
        indexes = [models.Index(fields=["status", "deadline"])]

    def __str__(self) -> str:
        return (
            f"leg {self.id} {self.direction} {display(self.amount, self.asset.scale)} {self.asset.code} ({self.status})"
        )


class Delivery(models.Model):
    """A counterparty's word on how it delivered a leg. A hint for matching;
    confirmation still comes from the chain or the bank statement."""

    leg = models.ForeignKey(Leg, on_delete=models.PROTECT, related_name="deliveries")
    tx_hash = models.CharField(max_length=80, blank=True)
    bank_reference = models.CharField(max_length=80, blank=True)
    reported_by = models.CharField(max_length=150)
    reported_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["leg", "tx_hash", "bank_reference"], name="delivery_unique_reference"),
            models.CheckConstraint(condition=~Q(tx_hash="") | ~Q(bank_reference=""), name="delivery_has_reference"),
        ]

    def __str__(self) -> str:
        return f"leg {self.leg_id}: {self.tx_hash or self.bank_reference}"


class CounterpartyExclusion(models.Model):
    """Operations leave a counterparty out of coming cycles, at once; taking
    it back in needs four eyes (DESIGN sections 7 and 12)."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        LIFTED = "lifted"

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=2000)
    status = models.CharField(max_length=6, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.CharField(max_length=150, blank=True)
    lift_approval = models.ForeignKey(
        "controls.ApprovalRequest", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator"], condition=Q(status="active"), name="exclusion_one_active_per_operator"
            )
        ]

    def __str__(self) -> str:
        return f"exclusion {self.id} {self.operator_id} ({self.status})"


class CarriedCredit(models.Model):
    """What moved for a batch that then failed, carried into the
    counterparty's next batch (DESIGN section 7: nothing delivered is
    stranded). ``inbound``: home holds the counterparty's asset (a
    confirmed inbound leg) and owes it back; ``outbound``: the counterparty
    holds home's (a confirmed outbound leg). The next batch nets it with
    its obligations (``applied``); it is ``settled`` when that batch
    settles, and ``open`` again if that batch fails too."""

    class Status(models.TextChoices):
        OPEN = "open"
        APPLIED = "applied"
        SETTLED = "settled"

    UNSETTLED = (Status.OPEN, Status.APPLIED)

    counterparty = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=8, choices=Leg.Direction.choices)
    amount = models.DecimalField(**MONEY)
    source_leg = models.OneToOneField(Leg, on_delete=models.PROTECT, related_name="carried_credit")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    applied_batch = models.ForeignKey(
        Batch, on_delete=models.PROTECT, null=True, blank=True, related_name="credits_applied"
    )
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="credit_amount_positive")]
        indexes = [models.Index(fields=["counterparty", "status"])]

    def __str__(self) -> str:
        return f"credit {self.id} {self.direction} {self.amount} {self.asset_id} ({self.status})"


class SettlementStatement(models.Model):
    """A counterparty's daily settlement statement, as sent: kept and never
    changed; a correction is a new version (DESIGN section 7)."""

    counterparty = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    day = models.DateField(help_text="the Hong Kong date whose end-of-day cut-off closes the statement")
    version = models.PositiveIntegerField()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    generated_at = models.DateTimeField()
    generated_by = models.CharField(max_length=150)
    content = models.JSONField()
    csv = models.TextField()
    digest = models.CharField(max_length=64, help_text="SHA-256 of the content, to tell a correction from a replay")

    class Meta:
        ordering = ["-day", "counterparty_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["counterparty", "day", "version"], name="statement_unique_version")
        ]

    def __str__(self) -> str:
        return f"statement {self.counterparty_id} {self.day} v{self.version}"
