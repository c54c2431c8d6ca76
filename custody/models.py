"""Evidence of what moved and what is held: observed movements (chain
transfers and bank statement entries), the chain watcher's cursor, bank
statements, custodian balance reports, reconciliation breaks, and the
outbound instruction outbox."""

from django.db import models
from django.db.models import Q

from controls.money import MONEY, display
from registry.models import Asset, BankAccount, Operator, Rail, Wallet

# log_index of a native (top-level value) transfer and of the gas fee a home
# wallet paid for a transaction: real logs start at 0, so these never collide
NATIVE_LOG_INDEX = -1
FEE_LOG_INDEX = -2


class ChainCursor(models.Model):
    """Where the watcher of one evm rail has got to: the last block scanned,
    by number *and* hash, so a reorg under it is noticed and walked back."""

    rail = models.OneToOneField(Rail, on_delete=models.PROTECT, related_name="cursor")
    block_number = models.BigIntegerField(help_text="last block scanned; -1 before the first")
    block_hash = models.CharField(max_length=66, blank=True)
    head_number = models.BigIntegerField(null=True, blank=True)
    head_changed_at = models.DateTimeField(null=True, blank=True, help_text="when a new head block was last seen")
    error_count = models.PositiveIntegerField(default=0, help_text="consecutive failed polls")
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    polled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.rail.code} @ {self.block_number}"


class ChainBlock(models.Model):
    """Recent blocks the watcher scanned (number, hash, parent): the trail a
    reorg is walked back along. Pruned behind the head."""

    rail = models.ForeignKey(Rail, on_delete=models.CASCADE, related_name="+")
    number = models.BigIntegerField()
    hash = models.CharField(max_length=66)
    parent_hash = models.CharField(max_length=66)
    timestamp = models.DateTimeField()

    class Meta:
        ordering = ["rail_id", "-number"]
        constraints = [models.UniqueConstraint(fields=["rail", "number"], name="chain_block_unique_number")]

    def __str__(self) -> str:
        return f"{self.rail.code} block {self.number} {self.hash[:10]}"


class BankStatement(models.Model):
    """One imported statement (an MT940 :20:/:28C: block or a camt.053 Stmt)."""

    class Format(models.TextChoices):
        CAMT053 = "camt053"
        MT940 = "mt940"

    account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, related_name="statements")
    statement_ref = models.CharField(max_length=140, help_text="camt Stmt/Id, or MT940 :20: plus :28C:")
    format = models.CharField(max_length=8, choices=Format.choices)
    currency = models.CharField(max_length=3)
    opening_balance = models.DecimalField(**MONEY, null=True, blank=True)
    closing_balance = models.DecimalField(**MONEY, null=True, blank=True)
    closing_date = models.DateField(null=True, blank=True)
    entries = models.PositiveIntegerField(default=0)
    # blake2b of the normalised content: the same statement id with other content is a conflict
    content_hash = models.CharField(max_length=32)
    filename = models.CharField(max_length=255, blank=True)
    imported_at = models.DateTimeField()
    imported_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "statement_ref"], name="bank_statement_unique_ref"),
        ]

    def __str__(self) -> str:
        return f"{self.account.number} {self.statement_ref}"


class Movement(models.Model):
    """An observed movement of a settlement asset: a chain transfer (ERC-20
    log, native value, or gas fee) or a bank statement entry. Stored once per
    natural key; never deleted (a reorged transfer stays, as ``reorged``)."""

    class Source(models.TextChoices):
        CHAIN = "chain"
        BANK = "bank"

    class Status(models.TextChoices):
        SEEN = "seen", "seen (not final)"
        FINAL = "final"
        REORGED = "reorged", "reorged out"

    class Direction(models.TextChoices):
        INBOUND = "inbound", "inbound (to home)"
        OUTBOUND = "outbound", "outbound (from home)"
        INTERNAL = "internal", "internal (home to home)"
        FEE = "fee", "fee paid by home"
        EXTERNAL = "external", "external (home not involved)"

    class Side(models.TextChoices):
        CREDIT = "credit"
        DEBIT = "debit"

    source = models.CharField(max_length=5, choices=Source.choices)
    # No index of their own on the registry references (rail, asset,
    # counterparty, wallets, account): a handful of each, so a filter on one
    # reads the table anyway; the composite and partial indexes in Meta
    # serve the queries (custody migration 0006).
    # The registry references and the statement are checked once per INSERT
    # statement (db_constraint=False; references_check triggers) and never
    # change afterwards; the leg, which the matcher sets and a reorg clears,
    # keeps its constraint (custody migration 0010).
    rail = models.ForeignKey(
        Rail, on_delete=models.PROTECT, related_name="movements", db_index=False, db_constraint=False
    )
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False)
    amount = models.DecimalField(**MONEY)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    counterparty = models.ForeignKey(
        Operator, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False, db_constraint=False
    )
    status = models.CharField(max_length=8, choices=Status.choices)
    occurred_at = models.DateTimeField(
        help_text="block time; for a bank entry with a booking date only, the end of that day"
    )
    seen_at = models.DateTimeField()
    final_at = models.DateTimeField(null=True, blank=True)
    reorged_at = models.DateTimeField(null=True, blank=True)
    # chain
    chain_id = models.PositiveBigIntegerField(null=True, blank=True)
    tx_hash = models.CharField(max_length=66, blank=True)
    log_index = models.IntegerField(null=True, blank=True, help_text="-1 native value, -2 gas fee")
    block_number = models.BigIntegerField(null=True, blank=True)
    block_hash = models.CharField(max_length=66, blank=True)
    token = models.CharField(max_length=42, blank=True, help_text="token contract; blank for the native coin")
    from_address = models.CharField(max_length=42, blank=True)
    to_address = models.CharField(max_length=42, blank=True)
    from_wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False, db_constraint=False
    )
    to_wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False, db_constraint=False
    )
    # bank
    statement = models.ForeignKey(
        BankStatement,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="lines",
        db_index=False,
        db_constraint=False,
    )
    account = models.ForeignKey(
        BankAccount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    side = models.CharField(max_length=6, choices=Side.choices, blank=True)
    entry_ref = models.CharField(max_length=140, blank=True)
    bank_reference = models.CharField(max_length=140, blank=True)
    customer_reference = models.CharField(max_length=140, blank=True)
    counterparty_account = models.CharField(max_length=64, blank=True)
    booking_date = models.DateField(null=True, blank=True)
    details = models.TextField(blank=True)
    # reconciliation
    leg = models.ForeignKey(
        "settlement.Leg", on_delete=models.PROTECT, null=True, blank=True, related_name="movements", db_index=False
    )
    matched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        # each names the queries it serves in custody migration 0006
        indexes = [
            # what the matcher may still link: unlinked movements of an
            # asset, counterparty, direction and amount (the one-to-one
            # pairing probes it per leg by all four; candidates, missing
            # deliveries and unmatched receipts by the first three)
            models.Index(
                fields=["asset", "counterparty", "direction", "amount"],
                condition=Q(leg__isnull=True),
                name="movement_unlinked",
            ),
            # a leg's movements (leg_id = %s, NOT EXISTS ... x.leg_id = l.id)
            models.Index(fields=["leg"], condition=Q(leg__isnull=False), name="movement_leg"),
            # the watcher's finality pass and reorg walk-back (rail, status, block range)
            models.Index(
                fields=["rail", "status", "block_number"], condition=Q(source="chain"), name="movement_chain_block"
            ),
            # a statement's lines (bank entries only)
            models.Index(fields=["statement"], condition=Q(statement__isnull=False), name="movement_statement"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "tx_hash", "log_index"],
                condition=Q(source="chain"),
                name="movement_unique_chain_key",
            ),
            models.UniqueConstraint(
                fields=["account", "entry_ref"], condition=Q(source="bank"), name="movement_unique_bank_entry"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="movement_amount_positive"),
            models.CheckConstraint(
                condition=Q(source="bank")
                | (Q(chain_id__isnull=False) & ~Q(tx_hash="") & Q(log_index__gte=FEE_LOG_INDEX)),
                name="movement_chain_has_key",
            ),
            models.CheckConstraint(
                condition=Q(source="chain") | (Q(account__isnull=False) & ~Q(entry_ref="") & ~Q(side="")),
                name="movement_bank_has_key",
            ),
        ]

    def __str__(self) -> str:
        where = f"{self.tx_hash[:12]}:{self.log_index}" if self.source == "chain" else self.entry_ref
        return f"{self.direction} {display(self.amount, self.asset.scale)} {self.asset.code} {where} ({self.status})"


class BalanceReport(models.Model):
    """A custodian's (or bank's) statement of what our wallets and accounts
    held at one time. Idempotent per (source, reference)."""

    source = models.CharField(max_length=200, help_text="custodian or bank that reported")
    reference = models.CharField(max_length=140)
    as_of = models.DateTimeField()
    content_hash = models.CharField(max_length=32)
    received_at = models.DateTimeField()
    received_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["-as_of", "-id"]
        constraints = [models.UniqueConstraint(fields=["source", "reference"], name="balance_report_unique_ref")]

    def __str__(self) -> str:
        return f"{self.source} {self.reference} @ {self.as_of:%Y-%m-%d %H:%M}"


class BalanceReportLine(models.Model):
    class Outcome(models.TextChoices):
        BASELINE = "baseline", "baseline (no books yet: becomes the opening)"
        MATCH = "match"
        DIFFERENCE = "difference"
        ATTESTED = "attested", "attested (another operator's designated custodian account: cover, not our books)"

    report = models.ForeignKey(BalanceReport, on_delete=models.PROTECT, related_name="lines")
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    reported = models.DecimalField(**MONEY)
    expected = models.DecimalField(**MONEY, null=True, blank=True)
    difference = models.DecimalField(max_digits=38, decimal_places=18, null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)

    class Meta:
        ordering = ["report_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(wallet__isnull=False, account__isnull=True) | Q(wallet__isnull=True, account__isnull=False),
                name="balance_line_one_holder",
            ),
            models.CheckConstraint(condition=Q(reported__gte=0), name="balance_line_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.wallet or self.account} {self.asset.code}: {display(self.reported, self.asset.scale)} ({self.outcome})"


class BookOpening(models.Model):
    """Where the books of one wallet or account start for one asset: the
    first balance report for it. Expected balance = opening + final
    movements after it."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**MONEY)
    as_of = models.DateTimeField()
    line = models.OneToOneField(BalanceReportLine, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["wallet", "asset"], condition=Q(wallet__isnull=False), name="book_opening_unique_wallet"
            ),
            models.UniqueConstraint(
                fields=["account", "asset"], condition=Q(account__isnull=False), name="book_opening_unique_account"
            ),
        ]

    def __str__(self) -> str:
        return f"opening {self.wallet or self.account} {self.asset.code}: {display(self.amount, self.asset.scale)}"


class Break(models.Model):
    """A reconciliation difference a person owns until it is resolved."""

    class Kind(models.TextChoices):
        UNMATCHED_RECEIPT = "unmatched_receipt"
        UNMATCHED_PAYMENT = "unmatched_payment", "unmatched payment (left home without an instruction)"
        SHORT_DELIVERY = "short_delivery"
        OVER_DELIVERY = "over_delivery"
        MISSING_DELIVERY = "missing_delivery", "missing delivery past deadline"
        BALANCE_DIFFERENCE = "balance_difference"
        REORGED = "reorged", "transfer reorged out after being seen"
        BATCH_DISPUTED = "batch_disputed", "batch disputed by the counterparty"
        # prefunding (circular para 10)
        COVER_BREACH = "cover_breach", "prefunding cover breach at the designated custodian"
        ATTESTATION_STALE = "attestation_stale", "designated custodian attestation stale"
        HOLD_WITHOUT_ORDER = "hold_without_order", "prefunding hold without an open order"
        ORDER_WITHOUT_HOLD = "order_without_hold", "open order without a prefunding hold"
        # the reserve fund's trust account (circular para 17)
        LEDGER_UNMATCHED = "ledger_unmatched", "reserve fund ledger entry not on the trust account's statements"

    class Status(models.TextChoices):
        OPEN = "open"
        INVESTIGATING = "investigating"
        RESOLVED = "resolved"

    UNRESOLVED = (Status.OPEN, Status.INVESTIGATING)

    key = models.CharField(max_length=120, unique=True, help_text="what the break is about: one break per cause")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.OPEN)
    # blank only when no asset is known: an open order the engine lists without a hold
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    amount = models.DecimalField(**MONEY, help_text="the difference (always positive)")
    counterparty = models.ForeignKey(Operator, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    leg = models.ForeignKey("settlement.Leg", on_delete=models.PROTECT, null=True, blank=True, related_name="breaks")
    movements = models.ManyToManyField(Movement, blank=True, related_name="breaks")
    balance_line = models.ForeignKey(
        BalanceReportLine, on_delete=models.PROTECT, null=True, blank=True, related_name="breaks"
    )
    description = models.TextField()
    owner = models.CharField(max_length=150, blank=True)
    opened_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["opened_at", "id"]
        indexes = [models.Index(fields=["status", "kind", "opened_at"])]
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="break_amount_nonneg")]

    def __str__(self) -> str:
        what = f"{display(self.amount, self.asset.scale)} {self.asset.code}" if self.asset is not None else ""
        who = f" {self.counterparty.code}" if self.counterparty is not None else ""
        return f"break {self.id} {self.get_kind_display()}{who} {what} ({self.status})"


class BreakEvent(models.Model):
    """A break's history, append-only: opened, amount changed, taken, resolved."""

    brk = models.ForeignKey(Break, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField()
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=20)
    status = models.CharField(max_length=14)
    amount = models.DecimalField(**MONEY)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["brk_id", "id"]

    def __str__(self) -> str:
        return f"break {self.brk_id}: {self.action} ({self.status})"


class Instruction(models.Model):
    """The outbox: what home must send for an instructed outbound leg, for a
    custodian integration or operations to take (``delivery``), and for an
    escrow batch what its escrow custodian must deliver: each locked leg
    ``release``d to its new owner when all are locked, or ``return``ed to
    the side that locked it when the batch failed. One of each kind per leg;
    a delivery follows its leg: ``new`` (due: to be sent), ``taken`` (handed to the custodian),
    ``done`` (the leg is confirmed), ``cancelled`` (the leg failed or was
    cancelled: its batch failed or the counterparty defaulted; must not be
    sent, and a taken one must be recalled)."""

    class Status(models.TextChoices):
        NEW = "new", "new (due: to be sent)"
        TAKEN = "taken", "taken (handed to the custodian)"
        DONE = "done", "done (the leg is confirmed)"
        CANCELLED = "cancelled", "cancelled (must not be sent)"

    class Kind(models.TextChoices):
        DELIVERY = "delivery", "delivery (home sends an outbound leg)"
        RELEASE = "release", "release (the escrow custodian delivers a locked leg to its new owner)"
        RETURN = "return", "return (the escrow custodian gives a locked leg back to the side that locked it)"

    OPEN = (Status.NEW, Status.TAKEN)

    # no index of its own: the unique (leg, kind) constraint leads with it
    leg = models.ForeignKey("settlement.Leg", on_delete=models.PROTECT, related_name="instructions", db_index=False)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.DELIVERY)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**MONEY)
    rail = models.ForeignKey(Rail, on_delete=models.PROTECT, related_name="+")
    from_ref = models.CharField(max_length=64, blank=True, help_text="home wallet address or account number")
    to_ref = models.CharField(max_length=64, blank=True, help_text="counterparty wallet address or account number")
    counterparty = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=64, unique=True)
    deadline = models.DateTimeField()
    problem = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.NEW)
    created_at = models.DateTimeField()
    taken_at = models.DateTimeField(null=True, blank=True)
    taken_by = models.CharField(max_length=150, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="when it became done or cancelled")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="instruction_amount_positive"),
            # one of each kind per leg: writing again writes nothing twice
            models.UniqueConstraint(fields=["leg", "kind"], name="instruction_unique_leg_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {display(self.amount, self.asset.scale)} {self.asset.code} -> {self.to_ref or '?'} ({self.status})"
