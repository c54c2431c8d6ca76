"""Trades from the matching engine, the obligations they create, and the
queues of what the intake refused or flagged."""

from django.apps import apps
from django.db import models
from django.db.models import Q

from controls.money import MONEY, display
from registry.models import Asset, Operator


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
    # unique through Meta.constraints, not unique=True, which would add a
    # second (varchar_pattern_ops) index no query uses
    trade_id = models.CharField(max_length=64)
    # References into the small registry tables carry no database FK
    # constraint: at 10,000 trades a request the deferred per-row checks
    # cost more than the inserts (bench/README.md). Registry rows can never be
    # deleted instead (a PostgreSQL trigger, registry migration 0003), and the
    # ids come from the registry itself. Nor an index: with a handful of
    # operators and assets each value matches a large share of the rows, so
    # a filter on one reads the table (settlement migration 0005).
    base_asset = models.ForeignKey(
        Asset, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    quote_asset = models.ForeignKey(
        Asset, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    price = models.DecimalField(**MONEY)
    quantity = models.DecimalField(**MONEY)
    quote_amount = models.DecimalField(**MONEY)
    buy_operator = models.ForeignKey(
        Operator, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    buy_account = models.CharField(max_length=64)
    sell_operator = models.ForeignKey(
        Operator, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    sell_account = models.CharField(max_length=64)
    # the engine's orders on each side (circular para 10: each consumes its
    # prefunding hold); blank when the engine did not name one. A database
    # default, so a COPY that does not list them stores blanks.
    buy_order_id = models.CharField(max_length=64, blank=True, default="", db_default="")
    sell_order_id = models.CharField(max_length=64, blank=True, default="", db_default="")
    executed_at = models.DateTimeField()
    received_at = models.DateTimeField()
    is_cross = models.BooleanField()
    # blake2b of the normalised content: the same id with other content is a conflict
    content_hash = models.CharField(max_length=32)
    # Checked once per statement, not once per row: a statement trigger
    # finds any new trade whose ingest does not exist, and ingests are never
    # deleted nor renumbered (settlement migration 0005). No index: the
    # intake knows its trades' ids without looking them up.
    ingest = models.ForeignKey(
        TradeIngest, on_delete=models.PROTECT, related_name="trades", db_constraint=False, db_index=False
    )

    class Meta:
        ordering = ["-executed_at", "-id"]
        # executed_at: the admin's list (newest first), the records export's
        # time range, the cycle's cut-off (executed_at <= as_of)
        indexes = [models.Index(fields=["executed_at"])]
        constraints = [
            # idempotency: the intake's ON CONFLICT (trade_id), the duplicate check
            models.UniqueConstraint(fields=["trade_id"], name="trade_unique_trade_id"),
            models.CheckConstraint(condition=Q(price__gt=0), name="trade_price_positive"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trade_quantity_positive"),
            models.CheckConstraint(condition=Q(quote_amount__gt=0), name="trade_quote_positive"),
            models.CheckConstraint(condition=~Q(base_asset=models.F("quote_asset")), name="trade_distinct_assets"),
        ]

    def __str__(self) -> str:
        return self.trade_id


class ObligationQuerySet(models.QuerySet):
    def unsettled(self) -> "ObligationQuerySet":
        """Open, or in a batch still open: what exposure counts. Written the
        way the indexes find them (settlement migration 0012): an open
        obligation has no batch (``obligation_open``), one in a batch is
        found through its batch (``obligation_batch``, with the open
        batches' ids read first: a handful); settled ones, the bulk over
        time, are read by neither. No index names the status, so settling
        rewrites an obligation in place (a HOT update)."""
        batch = apps.get_model("settlement", "Batch")  # its module imports this one
        batches = list(batch._default_manager.filter(status="open").values_list("id", flat=True))
        return self.filter(
            Q(batch__isnull=True, status=Obligation.Status.OPEN)
            | Q(batch_id__any=batches, status=Obligation.Status.IN_BATCH)
        )


class Obligation(models.Model):
    """One delivery of one asset between home and a counterparty, from one
    trade. The table keeps half of each page free (fillfactor 50, settlement
    migration 0012): settling writes the new version of the row beside the
    old one, touching no index."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", "inbound (owed to home)"
        OUTBOUND = "outbound", "outbound (owed by home)"

    class Status(models.TextChoices):
        OPEN = "open"
        IN_BATCH = "in_batch"
        SETTLED = "settled"
        CLOSED_OUT = "closed_out"

    UNSETTLED = (Status.OPEN, Status.IN_BATCH)

    # Checked once per statement like Trade.ingest (a statement trigger;
    # trades are never deleted nor renumbered, settlement migration 0005).
    # Looked up through obligation_unique_trade_asset, which leads with it.
    trade = models.ForeignKey(
        Trade, on_delete=models.PROTECT, related_name="obligations", db_constraint=False, db_index=False
    )
    # registry references without a database constraint nor an index: see Trade.base_asset
    debtor = models.ForeignKey(
        Operator, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    creditor = models.ForeignKey(
        Operator, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False
    )
    counterparty = models.ForeignKey(
        Operator, on_delete=models.PROTECT, related_name="obligations", db_constraint=False, db_index=False
    )
    direction = models.CharField(max_length=8, choices=Direction.choices)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+", db_constraint=False, db_index=False)
    amount = models.DecimalField(**MONEY)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    fail_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    executed_at = models.DateTimeField(help_text="the trade's execution time (trades never change)")
    settled_at = models.DateTimeField(null=True, blank=True)
    # the batch that holds it now (in_batch) or settled it (settled); each
    # batch it left unsettled (a fail, a close-out) is a BatchItem. Written
    # only by the cycle's take, from the batch rows it joins; batches are
    # never deleted nor renumbered (settlement migration 0011)
    batch = models.ForeignKey(
        "Batch",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="obligations",
        db_index=False,
        db_constraint=False,
    )

    objects = ObligationQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        # Only what a query reads, and partial so the intake writes one index
        # beside the key and the unique constraint (settlement migrations
        # 0009 and 0012). None names status or settled_at, which settling
        # changes:
        indexes = [
            # a batch's obligations (settling, failing, prefunding
            # consumption: batch_id = ANY(%s)), and the unsettled ones in an
            # open batch; an open obligation has no batch
            models.Index(fields=["batch"], condition=Q(batch__isnull=False), name="obligation_batch"),
            # the open ones, per counterparty and asset: the cycle's take and
            # the open part of the unsettled (exposure recompute, a default's
            # close-out, cover, ageing); taken rows leave it
            models.Index(fields=["counterparty", "asset"], condition=Q(batch__isnull=True), name="obligation_open"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["trade", "asset"], name="obligation_unique_trade_asset"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="obligation_amount_positive"),
            models.CheckConstraint(condition=~Q(debtor=models.F("creditor")), name="obligation_two_parties"),
        ]

    def __str__(self) -> str:
        return f"{self.trade_id} {self.direction} {display(self.amount, self.asset.scale)} {self.asset.code}"


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
    """An accepted trade that breaks a client rule: para 25 (retail opt-in),
    para 10 (an order without its full prefunding hold)."""

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
