"""The registry: who takes part (operators, jurisdictions, client accounts),
what moves (assets and their marks) and how (rails and their calendars,
custodians, wallets, bank accounts), and the API keys operators act with."""

from decimal import Decimal

from django.db import models
from django.db.models import Q
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager

from controls.money import MONEY, display


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
        "Custodian",
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


class Rail(models.Model):
    class Kind(models.TextChoices):
        EVM = "evm"
        BANK = "bank"
        MANUAL = "manual"

    class Status(models.TextChoices):
        UP = "up"
        DEGRADED = "degraded"
        HALTED = "halted"

    code = models.CharField(max_length=32, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.UP)
    status_reason = models.CharField(max_length=200, blank=True)
    # evm
    chain_id = models.PositiveBigIntegerField(null=True, blank=True)
    rpc_url = models.CharField(max_length=300, blank=True)
    confirmations = models.PositiveIntegerField(null=True, blank=True)
    start_block = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="first block the chain watcher scans; blank: the head when it first runs"
    )
    # every kind: how long a leg on this rail may take before it fails
    window_minutes = models.PositiveIntegerField(default=1440)
    # bank
    currency = models.CharField(max_length=3, blank=True)
    calendars = models.JSONField(default=list, blank=True)
    cutoff = models.TimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="Asia/Hong_Kong")
    # HKD CHATS does not run on Saturdays; the holidays library's HK weekend is
    # Sunday only, so bank rails keep their own weekend (ISO weekdays, Mon=1).
    weekend = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=~Q(kind="evm") | Q(chain_id__isnull=False), name="rail_evm_has_chain_id"),
            models.CheckConstraint(condition=~Q(kind="bank") | ~Q(currency=""), name="rail_bank_has_currency"),
        ]

    def __str__(self) -> str:
        return self.code


class Asset(models.Model):
    class Kind(models.TextChoices):
        CRYPTO = "crypto"
        FIAT = "fiat"

    code = models.CharField(max_length=16, unique=True)
    kind = models.CharField(max_length=6, choices=Kind.choices)
    scale = models.PositiveSmallIntegerField()
    rail = models.ForeignKey(Rail, on_delete=models.PROTECT, related_name="assets")
    contract = models.CharField(max_length=64, blank=True, help_text="token contract; blank for a native coin")
    # The current mark, kept here so a valuation is one join; history in Mark.
    mark_hkd = models.DecimalField(**MONEY, null=True, blank=True)
    mark_as_of = models.DateTimeField(null=True, blank=True)
    mark_source = models.CharField(max_length=100, blank=True)
    # What replacing the asset after a fail may cost above today's mark
    # (DESIGN section 5): exposure against the cap is receivable x mark x (1 + haircut).
    haircut = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal(0),
        help_text="fraction above the mark, 0 to 1 (0.10 = 10 %); a stale mark doubles it",
    )

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=Q(scale__lte=18), name="asset_scale_max_18"),
            models.CheckConstraint(condition=Q(haircut__gte=0) & Q(haircut__lte=1), name="asset_haircut_0_to_1"),
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
        return f"{self.asset.code} {display(self.price_hkd, 8)} HKD at {self.as_of:%Y-%m-%d %H:%M} UTC"


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


class Custodian(models.Model):
    name = models.CharField(max_length=200, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Wallet(models.Model):
    class Temperature(models.TextChoices):
        HOT = "hot"
        COLD = "cold"

    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="wallets")
    rail = models.ForeignKey(Rail, on_delete=models.PROTECT, related_name="wallets")
    # stored lower-case so look-ups from chain data match whatever checksum case
    address = models.CharField(max_length=64)
    temperature = models.CharField(max_length=4, choices=Temperature.choices, default=Temperature.HOT)
    custodian = models.ForeignKey(Custodian, on_delete=models.PROTECT, null=True, blank=True)
    lead_time_minutes = models.PositiveIntegerField(default=0)
    designated = models.BooleanField(
        default=False,
        help_text="a designated custodian wallet: where the operator's clients' prefunded settlement assets sit "
        "(circular para 10); its balances attest the operator's prefunding cover",
    )
    escrow = models.BooleanField(
        default=False,
        help_text="an escrow holding wallet at its custodian: an escrow counterparty's batches lock both sides' "
        "assets here until they are released together (DESIGN section 7); never a delivery wallet",
    )

    class Meta:
        ordering = ["rail__code", "address"]
        constraints = [models.UniqueConstraint(fields=["rail", "address"], name="wallet_unique_address")]

    def __str__(self) -> str:
        return f"{self.operator.code} {self.rail.code} {self.address}"


class BankAccount(models.Model):
    operator = models.ForeignKey(Operator, on_delete=models.PROTECT, related_name="bank_accounts")
    rail = models.ForeignKey(Rail, on_delete=models.PROTECT, related_name="bank_accounts")
    number = models.CharField(max_length=64)
    bank = models.CharField(max_length=200)
    designated = models.BooleanField(
        default=False,
        help_text="a designated custodian account: where the operator's clients' prefunded settlement assets sit "
        "(circular para 10); its balances attest the operator's prefunding cover",
    )
    escrow_custodian = models.ForeignKey(
        Custodian,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="escrow_accounts",
        help_text="set on an escrow holding account: the escrow custodian that keeps it; an escrow counterparty's "
        "batches lock both sides' assets here until they are released together (DESIGN section 7)",
    )

    class Meta:
        ordering = ["rail__code", "number"]
        constraints = [models.UniqueConstraint(fields=["rail", "number"], name="bank_account_unique_number")]

    def __str__(self) -> str:
        return f"{self.operator.code} {self.rail.code} {self.number}"


class WalletBalance(models.Model):
    """What a wallet holds of one asset, as operations (later the custodian's
    reports) last stated it. Used to decide whether an outbound leg needs a
    cold-to-hot move first."""

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="balances")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(max_digits=38, decimal_places=18)
    as_of = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wallet", "asset"], name="wallet_balance_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="wallet_balance_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.wallet} {self.asset.code}: {display(self.amount, self.asset.scale)}"


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
