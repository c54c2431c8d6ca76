"""Where settlement assets move and sit: rails, custodians, wallets, bank accounts."""

from django.db import models
from django.db.models import Q


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

    operator = models.ForeignKey("settlement.Operator", on_delete=models.PROTECT, related_name="wallets")
    rail = models.ForeignKey(Rail, on_delete=models.PROTECT, related_name="wallets")
    # stored lower-case so look-ups from chain data match whatever checksum case
    address = models.CharField(max_length=64)
    temperature = models.CharField(max_length=4, choices=Temperature.choices, default=Temperature.HOT)
    custodian = models.ForeignKey(Custodian, on_delete=models.PROTECT, null=True, blank=True)
    lead_time_minutes = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["rail__code", "address"]
        constraints = [models.UniqueConstraint(fields=["rail", "address"], name="wallet_unique_address")]

    def __str__(self) -> str:
        return f"{self.operator.code} {self.rail.code} {self.address}"


class BankAccount(models.Model):
    operator = models.ForeignKey("settlement.Operator", on_delete=models.PROTECT, related_name="bank_accounts")
    rail = models.ForeignKey(Rail, on_delete=models.PROTECT, related_name="bank_accounts")
    number = models.CharField(max_length=64)
    bank = models.CharField(max_length=200)

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
    asset = models.ForeignKey("settlement.Asset", on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(max_digits=38, decimal_places=18)
    as_of = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wallet", "asset"], name="wallet_balance_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="wallet_balance_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.wallet} {self.asset_id}: {self.amount}"
