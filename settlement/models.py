"""Registry, trades, obligations, exposure and the audit trail."""

from decimal import Decimal
from typing import TypedDict

from django.db import models
from django.db.models import Q
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager


class MoneyField(TypedDict):
    max_digits: int
    decimal_places: int


# NUMERIC(38, 18): 20 integer digits and up to 18 decimals, for any asset's scale
MONEY: MoneyField = {"max_digits": 38, "decimal_places": 18}


class Jurisdiction(models.Model):
    """A country or territory and the list facts that make it eligible or not.

    Eligibility (circular para 7) is derived from these facts in
    ``selectors.operator_eligibility``; nothing stores "eligible".
    """

    code = models.CharField(max_length=2, unique=True, help_text="ISO 3166-1 alpha-2")
    name = models.CharField(max_length=100, blank=True)
    fatf_member = models.BooleanField(default=False)
    fatf_suspended = models.BooleanField(default=False)
    fsrb_bodies = models.JSONField(default=list, blank=True, help_text='e.g. ["APG"]')
    iosco_aligned = models.BooleanField(default=False)
    call_for_action = models.BooleanField(default=False, help_text="FATF black list")
    increased_monitoring = models.BooleanField(default=False, help_text="FATF grey list")
    lists_as_of = models.DateField(null=True, blank=True, help_text="date the list facts were taken")

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Operator(models.Model):
    class Role(models.TextChoices):
        HOME = "home"
        OVERSEAS = "overseas"

    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"
        DEFAULTED = "defaulted"

    class DvpPolicy(models.TextChoices):
        RECEIVE_FIRST = "receive_first"
        ESCROW = "escrow"

    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=8, choices=Role.choices)
    jurisdiction = models.ForeignKey(Jurisdiction, on_delete=models.PROTECT)
    licence = models.CharField(max_length=100)
    sfc_approval = models.CharField(max_length=100, blank=True)
    approved_on = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    dvp_policy = models.CharField(max_length=16, choices=DvpPolicy.choices, default=DvpPolicy.RECEIVE_FIRST)
    limit_hkd = models.DecimalField(max_digits=38, decimal_places=2, null=True, blank=True)
    escrow_custodian = models.ForeignKey(
        "custody.Custodian",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="escrow DVP: the custodian where both sides' legs are locked and released together",
    )

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["role"], condition=Q(role="home"), name="operator_single_home"),
            models.CheckConstraint(
                condition=Q(limit_hkd__isnull=True) | Q(limit_hkd__gte=0), name="operator_limit_nonneg"
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_home(self) -> bool:
        return self.role == self.Role.HOME


class Asset(models.Model):
    class Kind(models.TextChoices):
        CRYPTO = "crypto"
        FIAT = "fiat"

    code = models.CharField(max_length=16, unique=True)
    kind = models.CharField(max_length=6, choices=Kind.choices)
    scale = models.PositiveSmallIntegerField()
    rail = models.ForeignKey("custody.Rail", on_delete=models.PROTECT, related_name="assets")
    contract = models.CharField(max_length=64, blank=True, help_text="token contract; blank for a native coin")
    # The current mark, kept here so a valuation is one join; history in Mark.
    mark_hkd = models.DecimalField(**MONEY, null=True, blank=True)
    mark_as_of = models.DateTimeField(null=True, blank=True)
    mark_source = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(scale__lte=18), name="asset_scale_max_18"),
            models.CheckConstraint(condition=Q(mark_hkd__isnull=True) | Q(mark_hkd__gt=0), name="asset_mark_positive"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.scale)


class Mark(models.Model):
    """Every price posted, append-only; the newest by ``as_of`` is the asset's mark."""

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="marks")
    price_hkd = models.DecimalField(**MONEY)
    as_of = models.DateTimeField()
    source = models.CharField(max_length=100)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-as_of", "-id"]
        indexes = [models.Index(fields=["asset", "-as_of"])]
        constraints = [models.CheckConstraint(condition=Q(price_hkd__gt=0), name="mark_price_positive")]

    def __str__(self) -> str:
        return f"{self.asset_id} {self.price_hkd} @ {self.as_of:%Y-%m-%d %H:%M}"


class Account(models.Model):
    """A client of one operator, by its pseudonymous reference."""

    class ClientClass(models.TextChoices):
        RETAIL = "retail"
        PROFESSIONAL = "professional"

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="accounts")
    ref = models.CharField(max_length=64)
    client_class = models.CharField(max_length=12, choices=ClientClass.choices, default=ClientClass.RETAIL)
    shared_book_opt_in = models.BooleanField(default=False)
    opted_in_at = models.DateTimeField(null=True, blank=True)
    disclosure_version = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["operator__code", "ref"]
        constraints = [models.UniqueConstraint(fields=["operator", "ref"], name="account_unique_ref")]

    def __str__(self) -> str:
        return f"{self.operator.code}:{self.ref}"


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
        return f"cap {self.total_hkd} HKD"


class TradeIngest(models.Model):
    """One POST /trades request: who sent it, when, and what came of it."""

    received_at = models.DateTimeField()
    actor = models.CharField(max_length=150)
    items = models.PositiveIntegerField()
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"ingest {self.id}: {self.accepted}/{self.items} accepted"


class Trade(models.Model):
    trade_id = models.CharField(max_length=64, unique=True)
    # References into the small registry tables carry no database FK
    # constraint: at 10,000 trades a request the deferred per-row checks
    # cost more than the inserts (bench/README.md). Registry rows can never be
    # deleted instead (a PostgreSQL trigger, migration 0009), and the ids come
    # from the registry itself.
    base_asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    quote_asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    price = models.DecimalField(**MONEY)
    quantity = models.DecimalField(**MONEY)
    quote_amount = models.DecimalField(**MONEY)
    buy_operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    buy_account = models.CharField(max_length=64)
    sell_operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    sell_account = models.CharField(max_length=64)
    executed_at = models.DateTimeField()
    received_at = models.DateTimeField()
    is_cross = models.BooleanField()
    # blake2b of the normalised content: the same id with other content is a conflict
    content_hash = models.CharField(max_length=32)
    ingest = models.ForeignKey(TradeIngest, on_delete=models.PROTECT, related_name="trades")

    class Meta:
        ordering = ["-executed_at", "-id"]
        indexes = [models.Index(fields=["executed_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="trade_price_positive"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trade_quantity_positive"),
            models.CheckConstraint(condition=Q(quote_amount__gt=0), name="trade_quote_positive"),
            models.CheckConstraint(condition=~Q(base_asset=models.F("quote_asset")), name="trade_distinct_assets"),
        ]

    def __str__(self) -> str:
        return self.trade_id


class Obligation(models.Model):
    """One delivery of one asset between home and a counterparty, from one trade."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", "inbound (owed to home)"
        OUTBOUND = "outbound", "outbound (owed by home)"

    class Status(models.TextChoices):
        OPEN = "open"
        IN_BATCH = "in_batch"
        SETTLED = "settled"
        CLOSED_OUT = "closed_out"

    UNSETTLED = (Status.OPEN, Status.IN_BATCH)

    trade = models.ForeignKey(Trade, on_delete=models.PROTECT, related_name="obligations")
    # registry references without a database constraint: see Trade.base_asset
    debtor = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    creditor = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    counterparty = models.ForeignKey(
        Operator, on_delete=models.PROTECT, related_name="obligations", db_constraint=False
    )
    direction = models.CharField(max_length=8, choices=Direction.choices)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    amount = models.DecimalField(**MONEY)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    fail_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)
    # the batch that holds it now (status in_batch / settled); the history of
    # every batch it was in is BatchItem
    batch = models.ForeignKey("Batch", on_delete=models.PROTECT, null=True, blank=True, related_name="obligations")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["counterparty", "status", "asset"])]
        constraints = [
            models.UniqueConstraint(fields=["trade", "asset"], name="obligation_unique_trade_asset"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="obligation_amount_positive"),
            models.CheckConstraint(condition=~Q(debtor=models.F("creditor")), name="obligation_two_parties"),
        ]

    def __str__(self) -> str:
        return f"{self.trade_id} {self.asset_id} {self.direction} {self.amount}"


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
        return f"{self.counterparty_id}/{self.asset_id}: +{self.receivable} -{self.payable}"


class TradeException(models.Model):
    """A trade item the intake refused. Executed trades are never just dropped:
    operations see every one here with its raw payload and reason."""

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    ingest = models.ForeignKey(TradeIngest, on_delete=models.PROTECT, related_name="exceptions")
    index = models.PositiveIntegerField()
    trade_id = models.CharField(max_length=200, blank=True)
    code = models.CharField(max_length=40)
    message = models.TextField()
    field = models.CharField(max_length=100, blank=True)
    payload = models.JSONField(null=True)
    received_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolution = models.TextField(blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "code"]), models.Index(fields=["trade_id"])]

    def __str__(self) -> str:
        return f"{self.code}: {self.trade_id or '(no id)'}"


class ComplianceException(models.Model):
    """An accepted trade that breaks a client rule (para 25: retail opt-in)."""

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    trade = models.ForeignKey(Trade, on_delete=models.PROTECT, related_name="compliance_exceptions")
    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    account_ref = models.CharField(max_length=64)
    code = models.CharField(max_length=40)
    message = models.TextField()
    created_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolution = models.TextField(blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["trade", "account_ref", "code"], name="compliance_unique")]

    def __str__(self) -> str:
        return f"{self.code}: {self.account_ref}"


class Alert(models.Model):
    """Something a person must look at: exposure differing from its
    recompute, a counterparty due for default review, a stuck batch."""

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"

    kind = models.CharField(max_length=40)
    message = models.TextField()
    details = models.JSONField(default=dict)
    operator = models.ForeignKey("Operator", on_delete=models.PROTECT, null=True, blank=True, related_name="alerts")
    created_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


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
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_type} {self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("audit events are append-only")


class OperatorAPIKeyManager(BaseAPIKeyManager):
    def get_usable_keys(self):
        return super().get_usable_keys().select_related("operator")


class OperatorAPIKey(AbstractAPIKey):
    objects = OperatorAPIKeyManager()  # type: ignore[assignment,misc]  # the library's manager, with the operator joined

    class Scope(models.TextChoices):
        ENGINE = "engine", "matching engine (acts for home)"
        OPERATOR = "operator", "overseas operator (its own obligations)"
        OPERATIONS = "operations", "operations"

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="api_keys")
    scope = models.CharField(max_length=10, choices=Scope.choices)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "operator API key"
        verbose_name_plural = "operator API keys"


# --- cycles and DVP ------------------------------------------------------------------


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
        return f"{self.kind} cycle {self.as_of:%Y-%m-%d %H:%M}"


class Batch(models.Model):
    """The DVP unit: everything one cycle took with one counterparty."""

    class Status(models.TextChoices):
        OPEN = "open"
        SETTLED = "settled"
        FAILED = "failed"

    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, related_name="batches")
    counterparty = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="batches")
    dvp_policy = models.CharField(max_length=16, choices=Operator.DvpPolicy.choices)
    escrow_custodian = models.ForeignKey("custody.Custodian", on_delete=models.PROTECT, null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    settled_by_netting = models.BooleanField(default=False)
    waiting_reason = models.CharField(max_length=300, blank=True)
    fail_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "batches"
        constraints = [models.UniqueConstraint(fields=["cycle", "counterparty"], name="batch_unique_counterparty")]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"batch {self.id} {self.counterparty_id} ({self.status})"


class BatchItem(models.Model):
    """Every obligation a batch took, kept after a fail sends it back to open."""

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="items")
    obligation = models.ForeignKey(Obligation, on_delete=models.PROTECT, related_name="batch_items")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "obligation"], name="batch_item_unique")]

    def __str__(self) -> str:
        return f"{self.batch_id}:{self.obligation_id}"


class Leg(models.Model):
    """One net transfer of one asset in a batch."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", "inbound (to home)"
        OUTBOUND = "outbound", "outbound (from home)"

    class Status(models.TextChoices):
        PENDING = "pending"
        INSTRUCTED = "instructed"
        CONFIRMING = "confirming"
        CONFIRMED = "confirmed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    OPEN_STATUSES = (Status.PENDING, Status.INSTRUCTED, Status.CONFIRMING)

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="legs")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    amount = models.DecimalField(**MONEY)
    status = models.CharField(max_length=10, choices=Status.choices)
    value_date = models.DateField()
    deadline = models.DateTimeField()
    lead_time_minutes = models.PositiveIntegerField(default=0, help_text="cold-to-hot time added to the deadline")
    instructed_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.CharField(max_length=150, blank=True)
    evidence = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["batch_id", "direction", "asset_id"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "asset"], name="leg_unique_asset"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="leg_amount_positive"),
        ]
        indexes = [models.Index(fields=["status", "deadline"])]

    def __str__(self) -> str:
        return f"leg {self.id} {self.direction} {self.amount} {self.asset_id} ({self.status})"


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


class ApprovalRequest(models.Model):
    """Four eyes: one person asks, a different ops_approver decides."""

    class Kind(models.TextChoices):
        LEG_CONFIRM = "leg_confirm"
        DEFAULT = "default"
        CLAIM_PAYOUT = "claim_payout"
        RESERVE_WITHDRAWAL = "reserve_withdrawal"
        RESERVE_REVERSAL = "reserve_reversal"
        CAP_CHANGE = "cap_change"

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
        return f"{self.kind} approval {self.id} ({self.status})"
