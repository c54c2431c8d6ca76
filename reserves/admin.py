from django.contrib import admin, messages
from django.utils import timezone

from controls.admin import ProposedChangeAdmin, ReadOnlyAdmin
from controls.admin_display import ReadableListMixin
from controls.exceptions import DomainError
from controls.services.audit import audit_record
from registry.models import BankAccount, Operator, Rail

from .models import (
    Claim,
    ClaimLine,
    Default,
    ExposureSnapshot,
    InsurancePolicy,
    ReserveEntry,
    ReserveFund,
    TrustBalanceCheck,
    TrustMatch,
)
from .selectors import reserve_available_hkd, reserve_balance_hkd
from .services.claims import claim_approval_request


@admin.register(ReserveFund)
class ReserveFundAdmin(ProposedChangeAdmin):
    """The fund's record (trustee, deed, the trust bank account that holds its
    money) changes only by proposal, approved by a different ops_approver."""

    list_display = ["name", "trustee", "deed", "bank_account", "currency", "balance", "available"]
    fields = ["name", "trustee", "deed", "bank_account", "currency"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "bank_account":
            kwargs["queryset"] = BankAccount.objects.filter(
                operator__role=Operator.Role.HOME, rail__kind=Rail.Kind.BANK
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="balance (HKD)")
    def balance(self, obj):
        return reserve_balance_hkd()

    @admin.display(description="available (HKD)")
    def available(self, obj):
        return reserve_available_hkd()


@admin.register(ReserveEntry)
class ReserveEntryAdmin(ReadOnlyAdmin):
    """The ledger is append-only: entries come from services (the operations
    API for contributions; four-eyes approvals for withdrawals, reversals and
    claim payouts), never from editing here."""

    list_display = ["id", "created_at", "kind", "amount_hkd", "reference", "claim", "actor"]
    list_filter = ["kind"]


@admin.register(TrustMatch)
class TrustMatchAdmin(ReadOnlyAdmin):
    """Which ledger entry the trust account's statements show, and by which
    statement entry (written by the trust reconciliation)."""

    list_display = ["id", "matched_at", "entry", "movement", "how"]
    list_filter = ["how"]


@admin.register(TrustBalanceCheck)
class TrustBalanceCheckAdmin(ReadOnlyAdmin):
    """Each trust account statement's closing balance against the ledger's."""

    list_display = ["statement", "closing_date", "statement_hkd", "ledger_hkd", "difference", "checked_at"]

    @admin.display(description="difference (HKD)")
    def difference(self, obj):
        return obj.difference_hkd


@admin.register(ExposureSnapshot)
class ExposureSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["at", "total_hkd", "effective_cap_hkd", "utilisation", "state"]
    list_filter = ["state"]
    date_hierarchy = "at"


@admin.register(InsurancePolicy)
class InsurancePolicyAdmin(ReadableListMixin, admin.ModelAdmin):
    list_display = [
        "reference",
        "provider",
        "form",
        "coverage_hkd",
        "starts_on",
        "ends_on",
        "policyholder",
        "beneficiary_on_trust",
        "trust_beneficiary",
    ]
    list_filter = ["form", "policyholder"]

    def save_model(self, request, obj, form, change):
        before = {f: str(form.initial.get(f)) for f in form.changed_data} if change else None
        super().save_model(request, obj, form, change)
        audit_record(
            actor=f"user:{request.user.username}",
            action="insurance_policy.changed" if change else "insurance_policy.created",
            object_type="InsurancePolicy",
            object_id=obj.reference,
            before=before,
            after={f: str(form.cleaned_data.get(f)) for f in form.changed_data},
        )

    def has_delete_permission(self, request, obj=None):
        return False


class ClaimLineInline(admin.TabularInline):
    model = ClaimLine
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "trade",
        "owed_asset",
        "owed_amount",
        "owed_hkd",
        "retained_asset",
        "retained_amount",
        "retained_hkd",
        "loss_hkd",
    )

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Default)
class DefaultAdmin(ReadOnlyAdmin):
    list_display = [
        "operator",
        "as_of",
        "declared_by",
        "approved_by",
        "obligations_closed_out",
        "total_loss_hkd",
        "payout_ratio",
    ]


@admin.register(Claim)
class ClaimAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "counterparty",
        "account_ref",
        "status",
        "loss_hkd",
        "paid_hkd",
        "shortfall_hkd",
        "created_at",
    ]
    list_filter = ["status", "counterparty"]
    search_fields = ["account_ref"]
    inlines = [ClaimLineInline]
    actions = ["ask_for_payout"]

    @admin.action(description="Ask for payout (a second person approves; the fund pays)", permissions=["act"])
    def ask_for_payout(self, request, queryset):
        for claim in queryset.order_by("id"):
            try:
                approval = claim_approval_request(claim_id=claim.id, user=request.user, now=timezone.now())
            except DomainError as error:
                self.message_user(request, f"claim {claim.id}: {error.message}", messages.ERROR)
            else:
                self.message_user(
                    request, f"claim {claim.id}: approval {approval.id} waits for a second person", messages.SUCCESS
                )
