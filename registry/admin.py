"""Admin for the registry: operators, jurisdictions, assets and marks,
client accounts, rails, custodians, wallets and bank accounts, API keys.

Registry records change only with four eyes: saving a form proposes the
change (controls.admin.ProposedChangeAdmin, rules in services/changes.py)."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from controls.admin import ProposedChangeAdmin, ReadOnlyAdmin
from controls.admin_display import ReadableListMixin
from controls.exceptions import DomainError
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
from registry.selectors import haircut_suggest, jurisdiction_problems, operator_eligibility
from registry.services.keys import api_key_create, api_key_scope_check, api_key_update
from registry.services.rails import wallet_balance_set

# the library's own key model authenticates nothing here: keys are OperatorAPIKey
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


@admin.register(Jurisdiction)
class JurisdictionAdmin(ProposedChangeAdmin):
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
class OperatorAdmin(ProposedChangeAdmin):
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

    def get_readonly_fields(self, request, obj=None):
        # a role never changes; a default is declared through the defaults process
        return [*self.readonly_fields, "role"] if obj is not None else self.readonly_fields

    @admin.display(boolean=True)
    def eligible(self, obj):
        return not operator_eligibility(obj)

    @admin.display(description="eligibility (derived)")
    def eligibility(self, obj):
        return "; ".join(operator_eligibility(obj)) or "eligible"


@admin.register(Asset)
class AssetAdmin(ProposedChangeAdmin):
    list_display = ["code", "kind", "scale", "rail", "contract", "haircut", "mark_hkd", "mark_as_of", "mark_source"]
    readonly_fields = ["mark_hkd", "mark_as_of", "mark_source", "suggested_haircut"]

    @admin.display(description="suggested haircut (marks history)")
    def suggested_haircut(self, obj: Asset) -> str:
        if obj.pk is None:
            return "-"
        suggestion = haircut_suggest(obj, as_of=timezone.now())
        shown = "none" if suggestion.suggested is None else format(suggestion.suggested, "f")
        return f"{shown}: {suggestion.note}"


@admin.register(Mark)
class MarkAdmin(ReadOnlyAdmin):
    list_display = ["asset", "price_hkd", "as_of", "source", "received_at"]
    list_filter = ["asset"]


@admin.register(Account)
class AccountAdmin(ProposedChangeAdmin):
    list_display = ["operator", "ref", "client_class", "shared_book_opt_in", "disclosure_version", "opted_in_at"]
    list_filter = ["operator", "client_class", "shared_book_opt_in"]
    search_fields = ["ref"]

    def get_readonly_fields(self, request, obj=None):
        # claims and exceptions name a client by operator and reference: they never change
        return ["operator", "ref"] if obj is not None else []


class OperatorAPIKeyForm(forms.ModelForm):
    class Meta:
        model = OperatorAPIKey
        fields = ["operator", "scope", "name", "expiry_date"]

    def clean(self):
        data = super().clean()
        operator, scope = data.get("operator"), data.get("scope")
        if operator is not None and scope and not self.instance.pk:
            try:
                api_key_scope_check(operator=operator, scope=scope)
            except DomainError as error:
                raise forms.ValidationError({"scope": error.message}) from None
        return data


@admin.register(OperatorAPIKey)
class OperatorAPIKeyAdmin(APIKeyModelAdmin):
    """Keys are made as ``create_api_key`` makes them (operator and scope
    checked, audited, the key shown once); afterwards only revocation and
    the expiry date change, audited. Superusers only: no group may add or
    change keys."""

    list_display = (*APIKeyModelAdmin.list_display, "operator", "scope")  # type: ignore[assignment]
    list_filter = (*APIKeyModelAdmin.list_filter, "scope", "operator")  # type: ignore[assignment]
    form = OperatorAPIKeyForm

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["operator", "scope", "name", "expiry_date"]
        return ["prefix", "operator", "scope", "name", "expiry_date", "revoked"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        fixed = ("prefix", "operator", "scope", "name")
        return (*fixed, "expiry_date", "revoked") if obj.revoked else fixed

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            kwargs["form"] = forms.ModelForm  # the add form's scope check is for new keys
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change):
        actor = f"user:{request.user.username}"
        if change:
            api_key_update(
                key_id=obj.pk, revoked=obj.revoked, expiry_date=obj.expiry_date, actor=actor, now=timezone.now()
            )
            return
        key, secret = api_key_create(
            operator_code=obj.operator.code, name=obj.name, scope=obj.scope, actor=actor, expiry_date=obj.expiry_date
        )
        obj.pk, obj.id, obj.prefix = key.pk, key.pk, key.prefix
        obj._state.adding = False
        self.message_user(
            request,
            f"The {key.scope} API key {key.name!r} for {key.operator.code} is: {secret} "
            "Store it now: it is not shown again.",
            messages.WARNING,
        )

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the key's record stays for the audit trail


# --- cycles and four eyes --------------------------------------------------------------


@admin.register(Rail)
class RailAdmin(ProposedChangeAdmin):
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
class CustodianAdmin(ProposedChangeAdmin):
    list_display = ["name"]


@admin.register(Wallet)
class WalletAdmin(ProposedChangeAdmin):
    list_display = [
        "operator",
        "rail",
        "address",
        "temperature",
        "custodian",
        "lead_time_minutes",
        "designated",
        "escrow",
    ]
    list_filter = ["operator", "rail", "temperature", "designated", "escrow"]


@admin.register(BankAccount)
class BankAccountAdmin(ProposedChangeAdmin):
    list_display = ["operator", "rail", "number", "bank", "designated", "escrow_custodian"]
    list_filter = ["operator", "rail", "designated", "escrow_custodian"]


@admin.register(WalletBalance)
class WalletBalanceAdmin(ReadableListMixin, admin.ModelAdmin):
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
