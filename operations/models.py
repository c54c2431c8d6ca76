"""The operations layer's own tables: notification subscriptions, the
notifications themselves (one per change of a watched state), their
deliveries, and the last state seen of everything watched (what makes the
notifications edge-triggered). Its post-migrate step (groups) needs this
module to exist."""

from django.db import models
from django.db.models import Q


class EventKind(models.TextChoices):
    """What a person can subscribe to (DESIGN section 10, circular para 15)."""

    EXPOSURE_STATE = "exposure_state", "exposure state change"
    COVER_BREACH = "cover_breach", "prefunding cover breach"
    ATTESTATION_STALE = "attestation_stale", "custodian attestation stale"
    BATCH_FAILED = "batch_failed", "batch failed"
    BATCH_DISPUTED = "batch_disputed", "batch disputed by its counterparty"
    BREAK_AGED = "break_aged", "break past its age limit"
    DEADLINE_NEAR = "deadline_near", "leg deadline near"
    DEFAULT = "default", "counterparty default (or due for default review)"
    CLAIM_PAID = "claim_paid", "claim paid"
    FUND_BELOW_COVER = "fund_below_cover", "reserve fund below cover-1"
    SAMPLE = "sample", "sample (sent by hand to test a subscription)"


class Subscription(models.Model):
    """Who is told about what: a webhook (signed with its secret) or an e-mail address."""

    class Channel(models.TextChoices):
        WEBHOOK = "webhook"
        EMAIL = "email", "e-mail"

    name = models.CharField(max_length=100, unique=True, help_text="who or what receives it, e.g. 'duty desk pager'")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    url = models.URLField(blank=True, help_text="webhook: where to POST (http or https)")
    secret = models.CharField(
        max_length=128, blank=True, help_text="webhook: the key of the HMAC-SHA256 signature; generated when blank"
    )
    email = models.EmailField(blank=True, help_text="e-mail: the address")
    kinds = models.JSONField(default=list, help_text="the event kinds it receives")
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(channel="webhook") & ~Q(url="") & ~Q(secret="")) | (Q(channel="email") & ~Q(email="")),
                name="subscription_has_destination",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.destination})"

    @property
    def destination(self) -> str:
        return self.url if self.channel == self.Channel.WEBHOOK else self.email


class WatchedState(models.Model):
    """The last state seen of one watched thing (the exposure, a batch, a
    break, a leg's deadline...): a notification is made only when it changes."""

    key = models.CharField(max_length=120, unique=True)
    state = models.CharField(max_length=40)
    changed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key}: {self.state}"


class Notification(models.Model):
    """One change that needs a person."""

    kind = models.CharField(max_length=20, choices=EventKind.choices)
    key = models.CharField(max_length=120, help_text="what changed (the watched thing)")
    state = models.CharField(max_length=40)
    previous = models.CharField(max_length=40, blank=True)
    title = models.CharField(max_length=200)
    details = models.JSONField(default=dict)
    operator_code = models.CharField(max_length=16, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["kind", "at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"


class NotificationDelivery(models.Model):
    """One notification to one subscriber, with its attempts."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed", "failed (retries exhausted)"

    notification = models.ForeignKey(Notification, on_delete=models.PROTECT, related_name="deliveries")
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "notification deliveries"
        constraints = [
            models.UniqueConstraint(fields=["notification", "subscription"], name="delivery_once_per_subscriber")
        ]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.notification.get_kind_display()} to {self.subscription.name} ({self.status})"
