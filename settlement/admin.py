"""Back office for operations. Financial history (trades, obligations, audit)
is read-only here; changes go through services that audit them."""

import json

from django.contrib import admin, messages
from django.http import HttpResponse
from django.utils import timezone

from controls.admin import ReadOnlyAdmin, scaled_amount
from controls.admin_display import ReadableListMixin
from controls.exceptions import DomainError
from controls.models import ApprovalRequest
from controls.services import approvals
from settlement.models import (
    Batch,
    CapConfig,
    CarriedCredit,
    ComplianceException,
    CounterpartyExclusion,
    Cycle,
    CycleRequest,
    Delivery,
    ExposurePosition,
    Leg,
    Obligation,
    SettlementStatement,
    Trade,
    TradeException,
    TradeIngest,
)
from settlement.services import batch_controls, review, statements


@admin.register(CapConfig)
class CapConfigAdmin(ReadableListMixin, admin.ModelAdmin):
    # Shown only: the cap changes with four eyes through POST /api/v1/ops/cap
    # (cap_change) or the network file (network_change on a running network).
    list_display = ["total_hkd", "warn_at", "settle_at", "halt_at", "updated_at"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TradeIngest)
class TradeIngestAdmin(ReadOnlyAdmin):
    list_display = ["id", "received_at", "actor", "items", "accepted", "duplicates", "rejected"]


@admin.register(Trade)
class TradeAdmin(ReadOnlyAdmin):
    list_display = [
        "trade_id",
        "executed_at",
        "base_asset",
        "quote_asset",
        "price",
        "quantity_shown",
        "quote_amount_shown",
        "buy_operator",
        "sell_operator",
        "is_cross",
    ]
    list_filter = ["is_cross", "base_asset", "quote_asset"]
    search_fields = ["trade_id", "buy_account", "sell_account"]
    list_select_related = ["base_asset", "quote_asset", "buy_operator", "sell_operator"]
    show_full_result_count = False
    quantity_shown = scaled_amount("quantity", "base_asset")
    quote_amount_shown = scaled_amount("quote_amount", "quote_asset")


@admin.register(Obligation)
class ObligationAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "trade",
        "counterparty",
        "direction",
        "asset",
        "amount_shown",
        "status",
        "fail_count",
        "created_at",
    ]
    list_filter = ["status", "direction", "counterparty", "asset"]
    search_fields = ["trade__trade_id"]
    list_select_related = ["trade", "counterparty", "asset"]
    show_full_result_count = False
    amount_shown = scaled_amount("amount")


@admin.register(ExposurePosition)
class ExposurePositionAdmin(ReadOnlyAdmin):
    list_display = ["counterparty", "asset", "receivable_shown", "payable_shown", "receivable_count", "payable_count"]
    list_select_related = ["counterparty", "asset"]
    receivable_shown = scaled_amount("receivable")
    payable_shown = scaled_amount("payable")


@admin.register(TradeException)
class TradeExceptionAdmin(ReadOnlyAdmin):
    list_display = ["id", "received_at", "trade_id", "code", "field", "message", "status"]
    list_filter = ["status", "code"]
    search_fields = ["trade_id", "message"]
    actions = ["mark_resolved"]

    @admin.action(
        description="Mark resolved (reviewed; the trade was re-sent or handled off-line)", permissions=["act"]
    )
    def mark_resolved(self, request, queryset):
        count = review.trade_exceptions_resolve(
            ids=list(queryset.values_list("id", flat=True)),
            actor=f"user:{request.user.username}",
            note="resolved in admin",
            now=timezone.now(),
        )
        self.message_user(request, f"{count} exception(s) resolved", messages.SUCCESS)


@admin.register(ComplianceException)
class ComplianceExceptionAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "trade", "account_ref", "code", "message", "status"]
    list_filter = ["status", "code"]
    search_fields = ["account_ref", "trade__trade_id"]
    actions = ["mark_resolved"]

    @admin.action(description="Mark resolved (compliance reviewed)", permissions=["act"])
    def mark_resolved(self, request, queryset):
        count = review.compliance_exceptions_resolve(
            ids=list(queryset.values_list("id", flat=True)),
            actor=f"user:{request.user.username}",
            note="resolved in admin",
            now=timezone.now(),
        )
        self.message_user(request, f"{count} exception(s) resolved", messages.SUCCESS)


@admin.register(CycleRequest)
class CycleRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "requested_at", "kind", "reason", "utilisation", "status"]
    list_filter = ["status"]


class LegInline(admin.TabularInline):
    model = Leg
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "asset",
        "direction",
        "amount",
        "status",
        "value_date",
        "deadline",
        "instructed_at",
        "confirmed_at",
        "confirmed_by",
    )

    def has_add_permission(self, request, obj=None):
        return False


class BatchInline(admin.TabularInline):
    model = Batch
    extra = 0
    can_delete = False
    show_change_link = True
    fields = readonly_fields = (
        "counterparty",
        "dvp_policy",
        "status",
        "settled_by_netting",
        "waiting_reason",
        "failed_by",
        "fail_reason",
        "held_at",
        "affirmation",
    )

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Cycle)
class CycleAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "as_of", "status", "obligations_taken", "obligations_deferred", "requested_by"]
    list_filter = ["kind", "status"]
    inlines = [BatchInline]


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "cycle",
        "counterparty",
        "dvp_policy",
        "status",
        "created_at",
        "settled_by_netting",
        "waiting_reason",
        "failed_by",
        "fail_reason",
        "held_at",
        "hold_reason",
        "affirmation",
    ]
    list_filter = ["status", "counterparty", "dvp_policy", "failed_by", "fail_reason", "affirmation"]
    list_select_related = ["cycle", "counterparty"]
    inlines = [LegInline]
    actions = ["hold", "release"]

    @admin.action(description="Hold (deadlines stop, nothing more is instructed)", permissions=["act"])
    def hold(self, request, queryset):
        self._each(request, queryset, batch_controls.batch_hold, "held")

    @admin.action(description="Release the hold", permissions=["act"])
    def release(self, request, queryset):
        self._each(request, queryset, batch_controls.batch_hold_release, "released")

    def _each(self, request, queryset, service, done: str) -> None:
        for batch in queryset.order_by("id"):
            try:
                service(
                    batch_id=batch.id,
                    reason=f"{done} in the admin by {request.user.username}",
                    actor=approvals.actor_of(request.user),
                    now=timezone.now(),
                )
            except DomainError as error:
                self.message_user(request, f"batch {batch.id}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"batch {batch.id} {done}", messages.SUCCESS)


@admin.register(CarriedCredit)
class CarriedCreditAdmin(ReadOnlyAdmin):
    """What moved for a failed batch: netted into the counterparty's next
    batch, settled only with it."""

    list_display = [
        "id",
        "counterparty",
        "asset",
        "direction",
        "amount_shown",
        "status",
        "source_leg",
        "applied_batch",
        "created_at",
        "settled_at",
    ]
    list_filter = ["status", "counterparty", "asset"]
    list_select_related = ["counterparty", "asset"]
    amount_shown = scaled_amount("amount")


@admin.register(SettlementStatement)
class SettlementStatementAdmin(ReadOnlyAdmin):
    """Daily statements as sent to each counterparty; a correction is a new version."""

    list_display = ["id", "counterparty", "day", "version", "generated_at", "generated_by", "digest"]
    list_filter = ["counterparty", "day"]
    exclude = ["content", "csv"]
    actions = ["download_csv", "download_json"]

    def _one(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "select exactly one statement to download", messages.ERROR)
            return None
        return queryset.select_related("counterparty").get()

    @admin.action(description="Download the statement as CSV")
    def download_csv(self, request, queryset):
        statement = self._one(request, queryset)
        if statement is None:
            return None
        response = HttpResponse(statement.csv, content_type="text/csv")
        name = f"statement-{statement.counterparty.code}-{statement.day}-v{statement.version}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @admin.action(description="Download the statement as JSON")
    def download_json(self, request, queryset):
        statement = self._one(request, queryset)
        if statement is None:
            return None
        response = HttpResponse(
            json.dumps(statements.statement_as_json(statement), indent=2), content_type="application/json"
        )
        name = f"statement-{statement.counterparty.code}-{statement.day}-v{statement.version}.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


@admin.register(CounterpartyExclusion)
class CounterpartyExclusionAdmin(ReadOnlyAdmin):
    """Exclusions are made from the API or the command line with a reason;
    here they are shown, and taking a counterparty back in is asked for."""

    list_display = ["id", "operator", "status", "reason", "created_at", "created_by", "lifted_at", "lifted_by"]
    list_filter = ["status", "operator"]
    actions = ["request_include"]

    @admin.action(description="Ask to take back into the cycles (a second person approves)", permissions=["act"])
    def request_include(self, request, queryset):
        for exclusion in queryset.select_related("operator").order_by("id"):
            try:
                approval = batch_controls.counterparty_include_request(
                    code=exclusion.operator.code,
                    reason=f"asked in the admin by {request.user.username}",
                    user=request.user,
                    now=timezone.now(),
                )
            except DomainError as error:
                self.message_user(request, f"{exclusion.operator.code}: {error.message}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{exclusion.operator.code}: approval {approval.id} waits for a second person",
                    messages.SUCCESS,
                )


@admin.register(Leg)
class LegAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "batch",
        "asset",
        "direction",
        "amount_shown",
        "status",
        "value_date",
        "deadline",
        "confirmed_by",
        "failed_by",
        "fail_reason",
    ]
    list_filter = ["status", "direction", "asset", "failed_by", "fail_reason"]
    list_select_related = ["batch__counterparty", "asset"]
    amount_shown = scaled_amount("amount")
    actions = ["request_manual_confirmation"]

    @admin.action(description="Ask for manual confirmation (a second person approves)", permissions=["act"])
    def request_manual_confirmation(self, request, queryset):
        for leg in queryset.order_by("id"):
            try:
                approval = approvals.approval_request(
                    kind=ApprovalRequest.Kind.LEG_CONFIRM,
                    payload={
                        "leg_id": leg.id,
                        "evidence": f"manual confirmation requested in the admin by {request.user.username}",
                    },
                    user=request.user,
                    now=timezone.now(),
                )
            except DomainError as error:
                self.message_user(request, f"leg {leg.id}: {error.message}", messages.ERROR)
            else:
                self.message_user(
                    request, f"leg {leg.id}: approval {approval.id} waits for a second person", messages.SUCCESS
                )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "leg", "tx_hash", "bank_reference", "reported_by", "reported_at"]
    search_fields = ["tx_hash", "bank_reference"]


# prefunding (circular para 10): its own read-only pages
from . import admin_prefunding  # noqa: E402, F401
