"""Controls every layer relies on: the append-only audit trail, four-eyes
approval requests, and alerts for a person to look at."""

from django.db import models
from django.db.models import Q


class AuditEvent(models.Model):
    """Append-only record of every state change (circular paras 22, 23)."""

    at = models.DateTimeField()
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=100, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["object_type", "object_id"]), models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} UTC {self.actor} {self.action} {self.object_type} {self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("audit events are append-only")


class ApprovalRequest(models.Model):
    """Four eyes: one person asks, a different ops_approver decides."""

    class Kind(models.TextChoices):
        LEG_CONFIRM = "leg_confirm"
        DEFAULT = "default"
        CLAIM_PAYOUT = "claim_payout"
        RESERVE_WITHDRAWAL = "reserve_withdrawal"
        RESERVE_REVERSAL = "reserve_reversal"
        CAP_CHANGE = "cap_change"
        RECORD_CHANGE = "record_change"
        NETWORK_CHANGE = "network_change"
        DEFAULT_RECOVERY = "default_recovery"
        CLAIM_BUY_IN = "claim_buy_in"
        PREFUNDING_LIFT = "prefunding_lift"
        EXCLUSION_LIFT = "exclusion_lift"

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=models.F("requested_by")),
                name="approval_four_eyes",
            )
        ]

    def __str__(self) -> str:
        return f"approval {self.id}: {self.get_kind_display()} ({self.status})"


class ChangeProposal(models.Model):
    """One change to a record that an approval request asks for (DESIGN
    section 12): which record, by model and natural key, and the values of
    the changed fields before and after. A record change from the admin asks
    for one; a network file loaded on a running network asks for all of its
    changes in one approval. Written with the request, never changed."""

    class Operation(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"

    approval = models.ForeignKey(ApprovalRequest, on_delete=models.PROTECT, related_name="changes")
    target = models.CharField(max_length=100, help_text='the model, e.g. "registry.Wallet"')
    object_id = models.CharField(max_length=100, blank=True, help_text="the row's id; blank for a creation")
    natural_key = models.CharField(max_length=300, help_text="the record as people name it")
    operation = models.CharField(max_length=6, choices=Operation.choices)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["approval_id", "id"]
        indexes = [models.Index(fields=["target", "object_id"])]

    def __str__(self) -> str:
        return f"{self.operation} {self.target} {self.natural_key} (approval {self.approval_id})"


class Alert(models.Model):
    """Something a person must look at: exposure differing from its
    recompute, a counterparty due for default review, a stuck batch."""

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"

    kind = models.CharField(max_length=40)
    message = models.TextField()
    details = models.JSONField(default=dict)
    # the operator's code, when the alert is about one (alerts sit below the registry)
    operator_code = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"
