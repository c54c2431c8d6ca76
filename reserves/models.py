"""The reserve fund held on trust (circular para 17) and its append-only ledger."""

from django.db import models
from django.db.models import Q


class ReserveFund(models.Model):
    name = models.CharField(max_length=200, default="Shared order book reserve fund")
    trustee = models.CharField(max_length=200)
    deed = models.CharField(max_length=100)
    # the account on trust where the fund's money is: a registered account of
    # home's, on the rail of the fund's currency; its statements are
    # reconciled against this ledger (services/trust.py)
    bank_account = models.ForeignKey(
        "registry.BankAccount",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="home's registered bank account on trust that holds the fund",
    )
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
    total_hkd = models.DecimalField(max_digits=38, decimal_places=2, help_text="with haircuts: what the cap checks")
    total_at_marks_hkd = models.DecimalField(
        max_digits=38, decimal_places=2, null=True, blank=True, help_text="at plain marks, no haircut"
    )
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
    # Who holds the policy: home (blank) or an overseas operator. A policy an
    # overseas operator holds counts toward home's para 18 coverage only when
    # home or its associated entity is a beneficiary on trust for the clients
    # (circular footnote 4).
    policyholder = models.ForeignKey(
        "registry.Operator",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="blank: home holds it; else the overseas operator that does",
    )

    class TrustBeneficiary(models.TextChoices):
        NONE = "", "none"
        HOME = "home", "home"
        ASSOCIATED_ENTITY = "associated_entity", "home's associated entity"

    trust_beneficiary = models.CharField(
        max_length=20,
        choices=TrustBeneficiary.choices,
        blank=True,
        default="",
        help_text="for a policy an overseas operator holds: who is beneficiary on trust for clients",
    )
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

    @property
    def counts_for_home(self) -> bool:
        """Footnote 4: home's own policy counts; an overseas operator's only
        with home or its associated entity as beneficiary on trust."""
        if self.policyholder_id is None:
            return True
        return self.beneficiary_on_trust and self.trust_beneficiary != self.TrustBeneficiary.NONE


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
    # the loss waterfall (DESIGN section 9): what the layers before the fund
    # absorbed; fixed once the first claim is paid
    own_assets_hkd = models.DecimalField(max_digits=38, decimal_places=2, default=0)
    insurance_hkd = models.DecimalField(max_digits=38, decimal_places=2, default=0)
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
    # which waterfall layer paid what: {"own_assets", "insurance", "reserve_fund"} -> HKD string
    paid_by = models.JSONField(default=dict, blank=True)

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
    # close-out at replacement cost (DESIGN section 9): the price operations
    # actually paid to buy the owed asset back, used in place of the mark
    buy_in_price_hkd = models.DecimalField(max_digits=38, decimal_places=18, null=True, blank=True)
    buy_in_evidence = models.TextField(blank=True)
    owed_mark_hkd = models.DecimalField(
        max_digits=38, decimal_places=18, null=True, blank=True, help_text="the close-out mark the buy-in replaced"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(buy_in_price_hkd__isnull=True) | (Q(buy_in_price_hkd__gt=0) & ~Q(buy_in_evidence="")),
                name="claim_line_buy_in_has_evidence",
            )
        ]

    def __str__(self) -> str:
        return f"claim {self.claim_id}: {self.owed_asset} {self.loss_hkd:,.2f} HKD"


class DefaultRecovery(models.Model):
    """Money recovered for a default (an insurer, the defaulter's estate),
    recorded under four eyes. Before the first claim is paid an insurance
    recovery is layer (b) of the waterfall; anything else refills the fund."""

    class Source(models.TextChoices):
        INSURANCE = "insurance"
        ESTATE = "estate"
        OTHER = "other"

    default = models.ForeignKey(Default, on_delete=models.PROTECT, related_name="recoveries")
    source = models.CharField(max_length=10, choices=Source.choices)
    amount_hkd = models.DecimalField(max_digits=38, decimal_places=2)
    reference = models.CharField(max_length=100)
    requested_by = models.CharField(max_length=150)
    approved_by = models.CharField(max_length=150)
    approval = models.OneToOneField("controls.ApprovalRequest", on_delete=models.PROTECT, null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "default recoveries"
        constraints = [
            models.UniqueConstraint(fields=["default", "reference"], name="recovery_unique_reference"),
            models.CheckConstraint(condition=Q(amount_hkd__gt=0), name="recovery_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.source} recovery {self.amount_hkd:,.2f} HKD for the default of {self.default.operator.code}"


class WaterfallStep(models.Model):
    """One step of a default's loss waterfall and what it absorbed: (a) the
    defaulter's own assets home holds or controls, (b) insurance recoveries,
    (c) the reserve fund; and later recoveries that refilled the fund."""

    class Layer(models.TextChoices):
        OWN_ASSETS = "own_assets"
        INSURANCE = "insurance"
        RESERVE_FUND = "reserve_fund"
        REFILL = "refill"

    default = models.ForeignKey(Default, on_delete=models.PROTECT, related_name="waterfall")
    layer = models.CharField(max_length=12, choices=Layer.choices)
    source = models.CharField(max_length=100, help_text="e.g. prefunded:USDC, claim:12, recovery:INS-1")
    amount_hkd = models.DecimalField(max_digits=38, decimal_places=2)
    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    recovery = models.ForeignKey(DefaultRecovery, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(amount_hkd__gt=0), name="waterfall_step_positive")]

    def __str__(self) -> str:
        return f"{self.layer} {self.amount_hkd:,.2f} HKD ({self.source})"


class TrustMatch(models.Model):
    """A ledger entry of the fund and the statement entry on the fund's trust
    account that shows it: written once by the trust reconciliation, never
    changed (a ledger entry and a statement entry are each matched once)."""

    entry = models.OneToOneField(ReserveEntry, on_delete=models.PROTECT, related_name="trust_match")
    movement = models.OneToOneField("custody.Movement", on_delete=models.PROTECT, related_name="trust_match")
    how = models.CharField(max_length=16, help_text="reference, or amount (amount, direction and value date)")
    matched_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "trust account matches"

    def __str__(self) -> str:
        return f"{self.entry.reference} = {self.movement.entry_ref} ({self.how})"


class TrustBalanceCheck(models.Model):
    """One statement of the trust account, its closing balance against the
    ledger's balance at the end of the statement's closing date."""

    statement = models.OneToOneField("custody.BankStatement", on_delete=models.PROTECT, related_name="trust_check")
    closing_date = models.DateField()
    statement_hkd = models.DecimalField(max_digits=38, decimal_places=2)
    ledger_hkd = models.DecimalField(max_digits=38, decimal_places=2)
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["-closing_date", "-id"]

    def __str__(self) -> str:
        return f"statement {self.statement_id} {self.closing_date}: bank {self.statement_hkd:,.2f}, ledger {self.ledger_hkd:,.2f}"

    @property
    def difference_hkd(self):
        return self.statement_hkd - self.ledger_hkd
