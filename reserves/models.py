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
        return f"{self.kind} {self.amount_hkd} {self.reference}"
