"""The reserve fund held on trust (circular para 17) and its append-only ledger."""

from django.db import models
from django.db.models import Q


class ReserveFund(models.Model):
    name = models.CharField(max_length=200, default="Shared order book reserve fund")
    trustee = models.CharField(max_length=200)
    deed = models.CharField(max_length=100)
    bank_account = models.CharField(max_length=100, blank=True)
    currency = models.CharField(max_length=3, default="HKD")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.trustee}, deed {self.deed})"


class ReserveEntry(models.Model):
    """One ledger line. Never updated or deleted: a correction is a reversal."""

    class Kind(models.TextChoices):
        CONTRIBUTION = "contribution"
        WITHDRAWAL = "withdrawal"
        PAYOUT = "payout"
        REVERSAL = "reversal"

    fund = models.ForeignKey(ReserveFund, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Signed effect on the balance: contributions positive, withdrawals and
    # payouts negative, a reversal the opposite of the entry it reverses.
    amount_hkd = models.DecimalField(max_digits=38, decimal_places=2)
    reference = models.CharField(max_length=100)
    reverses = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True)
    claim = models.ForeignKey("Claim", on_delete=models.PROTECT, null=True, blank=True, related_name="payouts")
    actor = models.CharField(max_length=150)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "reserve entries"
        constraints = [
            models.UniqueConstraint(fields=["fund", "reference"], name="reserve_entry_unique_reference"),
            models.CheckConstraint(condition=~Q(amount_hkd=0), name="reserve_entry_nonzero"),
            models.CheckConstraint(
                condition=~Q(kind="contribution") | Q(amount_hkd__gt=0), name="reserve_contribution_positive"
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["withdrawal", "payout"]) | Q(amount_hkd__lt=0),
                name="reserve_debit_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_hkd:,.2f} HKD {self.reference}"


class ExposureSnapshot(models.Model):
    """Exposure taken every minute by beat: the history the sizing report reads."""

    at = models.DateTimeField(unique=True)
    total_hkd = models.DecimalField(max_digits=38, decimal_places=2)
    effective_cap_hkd = models.DecimalField(max_digits=38, decimal_places=2)
    utilisation = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    state = models.CharField(max_length=10)
    by_counterparty = models.JSONField(default=dict)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} UTC {self.total_hkd:,.2f} HKD ({self.state})"


class InsurancePolicy(models.Model):
    """Insurance or another compensation arrangement for settlement assets
    (circular para 18; VATP Guidelines 10.22 levels)."""

    class Form(models.TextChoices):
        INSURANCE = "insurance"
        OWN_FUNDS_ON_TRUST = "own_funds_on_trust"
        BANK_GUARANTEE = "bank_guarantee"
        ESCROW = "escrow"

    reference = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=200, help_text="insurer, bank or trustee")
    form = models.CharField(max_length=20, choices=Form.choices)
    coverage_hkd = models.DecimalField(max_digits=38, decimal_places=2)
    starts_on = models.DateField()
    ends_on = models.DateField()
    assets_covered = models.JSONField(
        default=list, blank=True, help_text='asset codes, e.g. ["BTC", "ETH"]; empty = all'
    )
    beneficiary_on_trust = models.BooleanField(default=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["ends_on"]
        verbose_name_plural = "insurance policies"
        constraints = [
            models.CheckConstraint(condition=Q(coverage_hkd__gt=0), name="policy_coverage_positive"),
            models.CheckConstraint(condition=Q(ends_on__gte=models.F("starts_on")), name="policy_period_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.provider} {self.coverage_hkd:,.2f} HKD to {self.ends_on}"


class Default(models.Model):
    """A counterparty declared unable to settle (four eyes) and its close-out."""

    operator = models.OneToOneField("registry.Operator", on_delete=models.PROTECT, related_name="default")
    reason = models.TextField()
    as_of = models.DateTimeField(help_text="close-out valuation time")
    declared_by = models.CharField(max_length=150)
    approved_by = models.CharField(max_length=150)
    approval = models.OneToOneField("controls.ApprovalRequest", on_delete=models.PROTECT, null=True, blank=True)
    marks = models.JSONField(help_text="the close-out marks used, asset -> HKD")
    obligations_closed_out = models.PositiveIntegerField(default=0)
    total_loss_hkd = models.DecimalField(max_digits=38, decimal_places=2, default=0)
    # pro rata: the share of each claim the fund pays, fixed at the first payout
    payout_ratio = models.DecimalField(max_digits=12, decimal_places=10, null=True, blank=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"default of {self.operator.code} at {self.as_of:%Y-%m-%d %H:%M} UTC"


class Claim(models.Model):
    """A home client's compensation claim, paid from the reserve fund."""

    class Status(models.TextChoices):
        ASSESSED = "assessed"
        APPROVED = "approved"
        PAID = "paid"
        REJECTED = "rejected"

    default = models.ForeignKey(Default, on_delete=models.PROTECT, null=True, blank=True, related_name="claims")
    counterparty = models.ForeignKey("registry.Operator", on_delete=models.PROTECT, related_name="claims")
    account_ref = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ASSESSED)
    loss_hkd = models.DecimalField(max_digits=38, decimal_places=2)
    paid_hkd = models.DecimalField(max_digits=38, decimal_places=2, default=0)
    shortfall_hkd = models.DecimalField(max_digits=38, decimal_places=2, default=0)
    evidence = models.TextField(blank=True, help_text="for a claim filed by hand")
    filed_by = models.CharField(max_length=150)
    created_at = models.DateTimeField()
    approved_by = models.CharField(max_length=150, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    rejected_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["default", "account_ref"],
                condition=Q(default__isnull=False),
                name="claim_one_per_client_per_default",
            ),
            models.CheckConstraint(condition=Q(loss_hkd__gt=0), name="claim_loss_positive"),
            models.CheckConstraint(
                condition=Q(paid_hkd__gte=0) & Q(paid_hkd__lte=models.F("loss_hkd")), name="claim_paid_within_loss"
            ),
        ]

    def __str__(self) -> str:
        return f"claim {self.id} {self.account_ref} {self.loss_hkd:,.2f} HKD ({self.status})"


class ClaimLine(models.Model):
    """The working of one claim for one trade: owed minus retained, floored at zero."""

    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="lines")
    trade = models.ForeignKey("settlement.Trade", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    owed_asset = models.CharField(max_length=16)
    owed_amount = models.DecimalField(max_digits=38, decimal_places=18)
    owed_hkd = models.DecimalField(max_digits=38, decimal_places=2)
    retained_asset = models.CharField(max_length=16, blank=True)
    retained_amount = models.DecimalField(max_digits=38, decimal_places=18, default=0)
    retained_hkd = models.DecimalField(max_digits=38, decimal_places=2, default=0)
    loss_hkd = models.DecimalField(max_digits=38, decimal_places=2)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"claim {self.claim_id}: {self.owed_asset} {self.loss_hkd:,.2f} HKD"
