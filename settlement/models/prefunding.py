"""Prefunding (circular para 10, DESIGN section 6a): what each client of each
operator has prefunded per asset, the holds that resting orders place on it,
the funding events and settlements that move it, what the designated
custodians attest, the cover that follows, freezes, and the engine's lists
of open orders.

Modelled on TigerBeetle's two-phase transfers: a hold is a pending debit
(``held``), a trade posts it (``committed``), a release or an expiry voids
it. ``available = funded - held - committed`` never goes below zero: a
database CHECK backs the services, which check and change a balance on its
locked row.

The balance row is a cached sum: holds with their append-only events,
funding events and settlement entries recompute it exactly
(``selectors.prefunding.prefunding_recompute``).

References into the registry on the high-volume tables (holds, their
events) carry no database FK constraint, like trades (see Trade.base_asset):
registry rows are never deleted (a trigger) and the ids come from the
registry itself; balances are never deleted either.
"""

from decimal import Decimal

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import F, Q

from controls.money import MONEY, display
from registry.models import Asset, BankAccount, Operator, Wallet


class PrefundingBalance(models.Model):
    """funded / held / committed of one client account of one operator in one asset."""

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    account = models.CharField(max_length=64, help_text="the client's reference on its operator")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    funded = models.DecimalField(**MONEY, default=Decimal(0))
    held = models.DecimalField(**MONEY, default=Decimal(0), help_text="open holds and reserved withdrawals")
    committed = models.DecimalField(**MONEY, default=Decimal(0), help_text="matched, not yet settled")
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["operator_id", "account", "asset_id"]
        constraints = [
            models.UniqueConstraint(fields=["operator", "account", "asset"], name="prefunding_balance_unique"),
            models.CheckConstraint(
                condition=Q(funded__gte=0) & Q(held__gte=0) & Q(committed__gte=0), name="prefunding_balance_nonneg"
            ),
            # available = funded - held - committed is never negative
            models.CheckConstraint(
                condition=Q(funded__gte=F("held") + F("committed")), name="prefunding_balance_available_nonneg"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.operator.code}:{self.account} {self.asset.code}"

    @property
    def available(self) -> Decimal:
        return self.funded - self.held - self.committed


class PrefundingHold(models.Model):
    """A resting order's hold on its client's prefunded balance: a pending
    debit that a trade consumes (held to committed), or that a release or
    its expiry voids. One per (operator, order_id)."""

    class Status(models.TextChoices):
        HELD = "held"
        PARTIALLY_CONSUMED = "partially_consumed"
        CONSUMED = "consumed"
        RELEASED = "released"
        EXPIRED = "expired"

    OPEN = (Status.HELD, Status.PARTIALLY_CONSUMED)

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    order_id = models.CharField(max_length=64)
    account = models.CharField(max_length=64)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    balance = models.ForeignKey(PrefundingBalance, on_delete=models.PROTECT, related_name="holds", db_constraint=False)
    amount = models.DecimalField(**MONEY, help_text="the order's prefunded amount (amended down only)")
    consumed = models.DecimalField(**MONEY, default=Decimal(0))
    remaining = models.DecimalField(**MONEY, help_text="still held: amount - consumed while open, 0 once closed")
    status = models.CharField(max_length=18, choices=Status.choices, default=Status.HELD)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True, help_text="when it was consumed, released or expired")
    # blake2b of the request's content: the same order again with other content is a conflict
    content_hash = models.CharField(max_length=32)
    created_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # BRIN: holds arrive in time order, so the records export's range
            # scan needs no B-tree insert per hold
            BrinIndex(fields=["created_at"], name="hold_created_brin"),
            models.Index(
                fields=["expires_at"], condition=Q(status__in=["held", "partially_consumed"]), name="hold_open_expiry"
            ),
            models.Index(
                fields=["balance"], condition=Q(status__in=["held", "partially_consumed"]), name="hold_open_balance"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["operator", "order_id"], name="hold_unique_order"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_amount_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(consumed__gte=0) & Q(remaining__lte=F("amount") - F("consumed")),
                name="hold_remaining_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"hold {self.operator.code}:{self.order_id} {display(self.remaining, self.asset.scale)} of "
            f"{display(self.amount, self.asset.scale)} {self.asset.code} ({self.status})"
        )


class HoldEvent(models.Model):
    """A hold's history, append-only: created, amended (down, or a later
    expiry), consumed (by one trade: once per hold and trade), released,
    expired. ``amount`` is what left (or, for created, entered) ``held``."""

    class Kind(models.TextChoices):
        CREATED = "created"
        AMENDED = "amended"
        CONSUMED = "consumed"
        RELEASED = "released"
        EXPIRED = "expired"

    hold = models.ForeignKey(PrefundingHold, on_delete=models.PROTECT, related_name="events", db_constraint=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.DecimalField(**MONEY)
    remaining = models.DecimalField(**MONEY, help_text="the hold's remaining after the event")
    expires_at = models.DateTimeField()
    trade = models.ForeignKey(
        "settlement.Trade", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_constraint=False
    )
    at = models.DateTimeField()
    actor = models.CharField(max_length=150)

    class Meta:
        ordering = ["hold_id", "id"]
        indexes = [
            BrinIndex(fields=["at"], name="hold_event_at_brin"),  # appended in time order, as holds
            models.Index(fields=["trade"], condition=Q(trade__isnull=False), name="hold_event_trade"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["hold", "trade"], condition=Q(kind="consumed"), name="hold_event_consumed_once_per_trade"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="hold_event_amount_nonneg"),
            models.CheckConstraint(
                condition=Q(kind="consumed", trade__isnull=False) | (~Q(kind="consumed") & Q(trade__isnull=True)),
                name="hold_event_trade_iff_consumed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.hold_id} {self.kind} {self.amount}"


class FundingEvent(models.Model):
    """What an operator reports moving in or out of a client's prefunded
    balance. Withdrawals are two-phase: a reserve holds the amount, then one
    commit (funded goes down) or abort (the hold is voided) finishes it.
    Idempotent by (operator, event_id); append-only."""

    class Kind(models.TextChoices):
        DEPOSIT = "deposit"
        WITHDRAWAL_RESERVE = "withdrawal_reserve"
        WITHDRAWAL_COMMIT = "withdrawal_commit"
        WITHDRAWAL_ABORT = "withdrawal_abort"
        ADJUSTMENT = "adjustment"

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    event_id = models.CharField(max_length=64)
    account = models.CharField(max_length=64)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    balance = models.ForeignKey(PrefundingBalance, on_delete=models.PROTECT, related_name="funding_events")
    kind = models.CharField(max_length=18, choices=Kind.choices)
    amount = models.DecimalField(**MONEY, help_text="positive; an adjustment may be negative")
    occurred_at = models.DateTimeField()
    reference = models.CharField(max_length=140, blank=True)
    # a commit or an abort finishes exactly one reserve
    reserve = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="finished_by")
    content_hash = models.CharField(max_length=32)
    received_at = models.DateTimeField()
    actor = models.CharField(max_length=150)
    result = models.JSONField(help_text="the answer given; a replay gets it again")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["received_at"])]
        constraints = [
            models.UniqueConstraint(fields=["operator", "event_id"], name="funding_event_unique_id"),
            models.CheckConstraint(
                condition=Q(amount__gt=0) | (Q(kind="adjustment") & ~Q(amount=0)), name="funding_event_amount"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["withdrawal_commit", "withdrawal_abort"], reserve__isnull=False)
                | (~Q(kind__in=["withdrawal_commit", "withdrawal_abort"]) & Q(reserve__isnull=True)),
                name="funding_event_reserve_iff_finish",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.operator.code}:{self.event_id} {self.kind} {display(self.amount, self.asset.scale)} {self.asset.code}"


class PrefundingSettlement(models.Model):
    """A settled trade moving prefunded balances, append-only: the payer's
    ``debit`` (funded goes down by what it paid: first what its hold
    committed to the trade, which also leaves committed, then the rest out
    of its available as far as that goes) and the receiver's ``credit``
    (funded goes up by what it received). One of each kind per trade and
    asset."""

    class Kind(models.TextChoices):
        DEBIT = "debit"
        CREDIT = "credit"

    balance = models.ForeignKey(PrefundingBalance, on_delete=models.PROTECT, related_name="settlements")
    trade = models.ForeignKey("settlement.Trade", on_delete=models.PROTECT, related_name="+")
    obligation = models.ForeignKey(
        "settlement.Obligation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="blank for a trade between two clients of one operator (settled on its own books at once)",
    )
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    amount = models.DecimalField(**MONEY, help_text="what funded moved by")
    committed = models.DecimalField(
        **MONEY, default=Decimal(0), help_text="a debit: of amount, what came out of committed (the hold's part)"
    )
    at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["trade", "asset", "kind"], name="prefunding_settlement_once"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="prefunding_settlement_positive"),
            models.CheckConstraint(
                condition=Q(committed__gte=0) & Q(committed__lte=F("amount")) & (Q(kind="debit") | Q(committed=0)),
                name="prefunding_settlement_committed_within",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {display(self.amount, self.asset.scale)} {self.asset.code} trade {self.trade.trade_id}"


class CustodianAttestation(models.Model):
    """What a designated custodian wallet or account held of one asset at
    one time: from a custodian's balance report or the chain watcher's read.
    Append-only."""

    class Source(models.TextChoices):
        BALANCE_REPORT = "balance_report"
        CHAIN = "chain"

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    bank_account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    amount = models.DecimalField(**MONEY)
    as_of = models.DateTimeField()
    source = models.CharField(max_length=14, choices=Source.choices)
    reference = models.CharField(max_length=140, help_text="the report, or the block read at")
    recorded_at = models.DateTimeField()
    recorded_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["-as_of", "-id"]
        indexes = [models.Index(fields=["operator", "asset", "-as_of"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(wallet__isnull=False, bank_account__isnull=True)
                | Q(wallet__isnull=True, bank_account__isnull=False),
                name="attestation_one_holder",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="attestation_nonneg"),
            models.UniqueConstraint(
                fields=["wallet", "asset", "source", "reference"],
                condition=Q(wallet__isnull=False),
                name="attestation_unique_wallet",
            ),
            models.UniqueConstraint(
                fields=["bank_account", "asset", "source", "reference"],
                condition=Q(bank_account__isnull=False),
                name="attestation_unique_account",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.wallet or self.bank_account} {self.asset.code}: {display(self.amount, self.asset.scale)} "
            f"at {self.as_of:%Y-%m-%d %H:%M} UTC"
        )


class PrefundingCover(models.Model):
    """The last evaluation of one operator's cover in one asset: the attested
    balance at its designated custodians against what it must cover. New
    holds read ``state`` (and the attestation's age, live)."""

    class State(models.TextChoices):
        COVERED = "covered"
        BREACH = "breach"
        STALE = "stale", "attestation stale"
        UNATTESTED = "unattested", "no attestation yet"

    BAD = (State.BREACH, State.STALE)

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    attested = models.DecimalField(**MONEY, null=True, blank=True)
    attested_at = models.DateTimeField(null=True, blank=True, help_text="the oldest of the latest attestations summed")
    funded = models.DecimalField(**MONEY, default=Decimal(0))
    held = models.DecimalField(**MONEY, default=Decimal(0))
    committed = models.DecimalField(**MONEY, default=Decimal(0))
    unsettled_outbound = models.DecimalField(**MONEY, default=Decimal(0))
    headroom = models.DecimalField(max_digits=38, decimal_places=18, null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices)
    reason = models.CharField(max_length=300, blank=True)
    state_since = models.DateTimeField()
    checked_at = models.DateTimeField()

    class Meta:
        ordering = ["operator_id", "asset_id"]
        constraints = [models.UniqueConstraint(fields=["operator", "asset"], name="prefunding_cover_unique")]

    def __str__(self) -> str:
        return f"cover {self.operator.code} {self.asset.code}: {self.state}"


class PrefundingFreeze(models.Model):
    """Operations stop new holds for an operator, or one of its accounts, or
    one asset (or both), at once. Lifting needs four eyes."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        LIFTED = "lifted"

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    account = models.CharField(max_length=64, blank=True, help_text="blank: every account of the operator")
    asset = models.ForeignKey(
        Asset, on_delete=models.PROTECT, null=True, blank=True, related_name="+", help_text="blank: every asset"
    )
    reason = models.TextField(blank=True)
    release_open_holds = models.BooleanField(default=False)
    released_holds = models.PositiveIntegerField(default=0)
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
        indexes = [models.Index(fields=["operator"], condition=Q(status="active"), name="freeze_active_operator")]

    def __str__(self) -> str:
        scope = "/".join(filter(None, [str(self.operator_id), self.account, str(self.asset_id or "")]))
        return f"freeze {self.id} {scope} ({self.status})"


class OpenOrdersSnapshot(models.Model):
    """The matching engine's open orders at ``as_of``, compared with the open
    holds at that time by custody's reconciliation."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        RECONCILED = "reconciled"

    as_of = models.DateTimeField()
    # [[operator code or "", order_id], ...]: an order id alone matches any operator's hold
    orders = models.JSONField()
    order_count = models.PositiveIntegerField()
    received_at = models.DateTimeField()
    received_by = models.CharField(max_length=150)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    reconciled_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status"], condition=Q(status="received"), name="open_orders_pending")]

    def __str__(self) -> str:
        return f"open orders @ {self.as_of:%Y-%m-%d %H:%M:%S} ({self.order_count}, {self.status})"
