"""Admin for the registry: operators, jurisdictions, assets and marks,
client accounts, rails, custodians, wallets and bank accounts, API keys."""

from django.contrib import admin
from django.utils import timezone
from rest_framework_api_key.admin import APIKeyModelAdmin

from controls.admin import ReadOnlyAdmin
from registry.models import (
    Account,
    Asset,
    BankAccount,
    Custodian,
    Jurisdiction,
    Mark,
    Operator,
    OperatorAPIKey,
    Rail,
    Wallet,
    WalletBalance,
)
from registry.selectors import jurisdiction_problems, operator_eligibility
from registry.services.rails import wallet_balance_set


@admin.register(Jurisdiction)
class JurisdictionAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "fatf_member",
        "fsrb_bodies",
        "iosco_aligned",
        "call_for_action",
        "increased_monitoring",
        "eligible",
        "lists_as_of",
    ]
    list_filter = ["fatf_member", "call_for_action", "increased_monitoring"]
    search_fields = ["code", "name"]

    @admin.display(boolean=True)
    def eligible(self, obj):
        return not jurisdiction_problems(obj)


@admin.register(Operator)
class OperatorAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "role",
        "jurisdiction",
        "status",
        "sfc_approval",
        "approved_on",
        "dvp_policy",
        "limit_hkd",
        "eligible",
    ]
    list_filter = ["role", "status"]
    search_fields = ["code", "name"]
    readonly_fields = ["eligibility"]

    @admin.display(boolean=True)
    def eligible(self, obj):
        return not operator_eligibility(obj)

    @admin.display(description="eligibility (derived)")
    def eligibility(self, obj):
        return "; ".join(operator_eligibility(obj)) or "eligible"


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["code", "kind", "scale", "rail", "contract", "mark_hkd", "mark_as_of", "mark_source"]
    readonly_fields = ["mark_hkd", "mark_as_of", "mark_source"]


@admin.register(Mark)
class MarkAdmin(ReadOnlyAdmin):
    list_display = ["asset", "price_hkd", "as_of", "source", "received_at"]
    list_filter = ["asset"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["operator", "ref", "client_class", "shared_book_opt_in", "disclosure_version", "opted_in_at"]
    list_filter = ["operator", "client_class", "shared_book_opt_in"]
    search_fields = ["ref"]


@admin.register(OperatorAPIKey)
class OperatorAPIKeyAdmin(APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "operator", "scope")  # type: ignore[assignment]
    list_filter = (*APIKeyModelAdmin.list_filter, "scope", "operator")  # type: ignore[assignment]


# --- cycles and four eyes --------------------------------------------------------------


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
    list_display = ["operator", "rail", "address", "temperature", "custodian", "lead_time_minutes", "designated"]
    list_filter = ["operator", "rail", "temperature", "designated"]


@admin.register(BankAccount)
class BankAccountAdmin(admin.ModelAdmin):
    list_display = ["operator", "rail", "number", "bank", "designated"]
    list_filter = ["operator", "rail", "designated"]


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


# --- observed movements, reconciliation, breaks, outbox (issue 4) ----------------------------
