from django.contrib import admin
from django.utils import timezone

from .models import BankAccount, Custodian, Rail, Wallet, WalletBalance
from .services import wallet_balance_set


@admin.register(Rail)
class RailAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "kind",
        "status",
        "status_reason",
        "chain_id",
        "confirmations",
        "window_minutes",
        "currency",
        "calendars",
        "cutoff",
        "timezone",
    ]
    list_filter = ["kind", "status"]
    # Rail status changes come through the operations API with an audit
    # event (cycles issue); the admin shows them.
    readonly_fields = ["status", "status_reason"]


@admin.register(Custodian)
class CustodianAdmin(admin.ModelAdmin):
    list_display = ["name"]


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ["operator", "rail", "address", "temperature", "custodian", "lead_time_minutes"]
    list_filter = ["operator", "rail", "temperature"]


@admin.register(BankAccount)
class BankAccountAdmin(admin.ModelAdmin):
    list_display = ["operator", "rail", "number", "bank"]
    list_filter = ["operator", "rail"]


@admin.register(WalletBalance)
class WalletBalanceAdmin(admin.ModelAdmin):
    """Operations keep home hot-wallet balances here until custodian reports
    arrive; every change is audited through the service."""

    list_display = ["wallet", "asset", "amount", "as_of"]
    list_filter = ["asset"]
    fields = ["wallet", "asset", "amount"]

    def get_readonly_fields(self, request, obj=None):
        return ["wallet", "asset"] if obj else []

    def save_model(self, request, obj, form, change):
        saved = wallet_balance_set(
            wallet_id=obj.wallet_id,
            asset_id=obj.asset_id,
            amount=obj.amount,
            actor=f"user:{request.user.username}",
            now=timezone.now(),
        )
        obj.pk, obj.as_of = saved.pk, saved.as_of

    def has_delete_permission(self, request, obj=None):
        return False
