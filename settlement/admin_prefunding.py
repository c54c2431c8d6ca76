"""Prefunding in the back office (circular para 10): balances, holds with
their events, funding events, cover, attestations, freezes and the engine's
open-order lists. Read-only: every change goes through the services (the
API, or the lift action below, which asks for four eyes)."""

from django.contrib import admin, messages
from django.utils import timezone

from controls.admin import ReadOnlyAdmin, scaled_amount
from controls.exceptions import DomainError
from controls.money import display
from settlement.models import (
    CustodianAttestation,
    FundingEvent,
    HoldEvent,
    OpenOrdersSnapshot,
    PrefundingBalance,
    PrefundingCover,
    PrefundingFreeze,
    PrefundingHold,
    PrefundingSettlement,
)
from settlement.services.prefunding import freeze_lift_request


@admin.register(PrefundingBalance)
class PrefundingBalanceAdmin(ReadOnlyAdmin):
    list_display = [
        "operator",
        "account",
        "asset",
        "funded_shown",
        "held_shown",
        "committed_shown",
        "available_shown",
        "updated_at",
    ]
    list_filter = ["operator", "asset"]
    search_fields = ["account"]
    list_select_related = ["operator", "asset"]
    show_full_result_count = False
    funded_shown = scaled_amount("funded")
    held_shown = scaled_amount("held")
    committed_shown = scaled_amount("committed")

    @admin.display(description="available")
    def available_shown(self, obj) -> str:
        return display(obj.available, obj.asset.scale)


class HoldEventInline(admin.TabularInline):
    model = HoldEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("at", "kind", "amount", "remaining", "expires_at", "trade", "actor")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PrefundingHold)
class PrefundingHoldAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "operator",
        "order_id",
        "account",
        "asset",
        "amount_shown",
        "consumed_shown",
        "remaining_shown",
        "status",
        "expires_at",
        "created_at",
    ]
    list_filter = ["status", "operator", "asset"]
    search_fields = ["order_id", "account"]
    list_select_related = ["operator", "asset"]
    show_full_result_count = False
    inlines = [HoldEventInline]
    amount_shown = scaled_amount("amount")
    consumed_shown = scaled_amount("consumed")
    remaining_shown = scaled_amount("remaining")


@admin.register(FundingEvent)
class FundingEventAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "operator",
        "event_id",
        "account",
        "asset",
        "kind",
        "amount_shown",
        "occurred_at",
        "reference",
        "received_at",
    ]
    list_filter = ["kind", "operator", "asset"]
    search_fields = ["event_id", "account", "reference"]
    list_select_related = ["operator", "asset"]
    exclude = ["result"]
    amount_shown = scaled_amount("amount")


@admin.register(PrefundingSettlement)
class PrefundingSettlementAdmin(ReadOnlyAdmin):
    list_display = ["id", "trade", "obligation", "asset", "kind", "amount_shown", "balance", "at"]
    list_filter = ["kind", "asset"]
    search_fields = ["trade__trade_id"]
    list_select_related = ["trade", "asset", "balance"]
    amount_shown = scaled_amount("amount")


@admin.register(PrefundingCover)
class PrefundingCoverAdmin(ReadOnlyAdmin):
    list_display = [
        "operator",
        "asset",
        "state",
        "attested_shown",
        "attested_at",
        "funded_shown",
        "held_shown",
        "committed_shown",
        "outbound_shown",
        "headroom_shown",
        "state_since",
        "checked_at",
    ]
    list_filter = ["state", "operator", "asset"]
    list_select_related = ["operator", "asset"]
    attested_shown = scaled_amount("attested", description="attested")
    funded_shown = scaled_amount("funded")
    held_shown = scaled_amount("held")
    committed_shown = scaled_amount("committed")
    outbound_shown = scaled_amount("unsettled_outbound", description="unsettled outbound")
    headroom_shown = scaled_amount("headroom", description="headroom")


@admin.register(CustodianAttestation)
class CustodianAttestationAdmin(ReadOnlyAdmin):
    list_display = ["id", "operator", "asset", "wallet", "bank_account", "amount_shown", "as_of", "source", "reference"]
    list_filter = ["source", "operator", "asset"]
    list_select_related = ["operator", "asset", "wallet", "bank_account"]
    amount_shown = scaled_amount("amount")


@admin.register(PrefundingFreeze)
class PrefundingFreezeAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "operator",
        "account",
        "asset",
        "status",
        "reason",
        "released_holds",
        "created_at",
        "created_by",
        "lifted_at",
        "lifted_by",
    ]
    list_filter = ["status", "operator"]
    list_select_related = ["operator", "asset"]
    actions = ["ask_to_lift"]

    @admin.action(description="Ask to lift (a second person approves)", permissions=["act"])
    def ask_to_lift(self, request, queryset):
        for freeze in queryset.order_by("id"):
            try:
                approval = freeze_lift_request(
                    freeze_id=freeze.id,
                    reason=f"lift requested in the admin by {request.user.username}",
                    user=request.user,
                    now=timezone.now(),
                )
            except DomainError as error:
                self.message_user(request, f"freeze {freeze.id}: {error.message}", messages.ERROR)
            else:
                self.message_user(
                    request, f"freeze {freeze.id}: approval {approval.id} waits for a second person", messages.SUCCESS
                )


@admin.register(OpenOrdersSnapshot)
class OpenOrdersSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["id", "as_of", "order_count", "status", "received_at", "received_by", "reconciled_at", "result"]
    list_filter = ["status"]
    exclude = ["orders"]
