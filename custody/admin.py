import csv
import json
from datetime import timedelta

from django.contrib import admin, messages
from django.http import HttpResponse
from django.utils import timezone

from controls.admin import ActionPermissions, ReadOnlyAdmin
from controls.admin_display import ReadableListMixin
from controls.exceptions import DomainError
from custody.models import (
    BalanceReport,
    BalanceReportLine,
    BankStatement,
    Break,
    BreakEvent,
    ChainCursor,
    Instruction,
    Movement,
)

from .services.breaks import break_resolve, break_take
from .services.instructions import EXPORT_FIELDS, instruction_as_json, instructions_take


@admin.register(ChainCursor)
class ChainCursorAdmin(ReadOnlyAdmin):
    list_display = [
        "rail",
        "block_number",
        "block_hash",
        "head_number",
        "head_changed_at",
        "error_count",
        "last_error",
        "polled_at",
    ]


@admin.register(Movement)
class MovementAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "source",
        "rail",
        "asset",
        "amount",
        "direction",
        "counterparty",
        "status",
        "occurred_at",
        "tx_hash",
        "log_index",
        "entry_ref",
        "leg",
    ]
    list_filter = ["source", "status", "direction", "rail", "asset", "counterparty"]
    search_fields = ["tx_hash", "entry_ref", "bank_reference", "customer_reference", "from_address", "to_address"]
    date_hierarchy = "occurred_at"


@admin.register(BankStatement)
class BankStatementAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "account",
        "statement_ref",
        "format",
        "currency",
        "opening_balance",
        "closing_balance",
        "entries",
        "imported_at",
        "imported_by",
    ]
    list_filter = ["format", "account"]
    search_fields = ["statement_ref"]


class BalanceReportLineInline(admin.TabularInline):
    model = BalanceReportLine
    extra = 0
    can_delete = False
    fields = readonly_fields = ("wallet", "account", "asset", "reported", "expected", "difference", "outcome")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(BalanceReport)
class BalanceReportAdmin(ReadOnlyAdmin):
    list_display = ["id", "source", "reference", "as_of", "received_at", "received_by"]
    inlines = [BalanceReportLineInline]


class BreakAgeFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    BUCKETS = {
        "1h": ("over 1 hour", 1),
        "4h": ("over 4 hours", 4),
        "24h": ("over 1 day", 24),
        "72h": ("over 3 days", 72),
    }

    def lookups(self, request, model_admin):
        return [(key, label) for key, (label, _) in self.BUCKETS.items()]

    def queryset(self, request, queryset):
        if self.value() in self.BUCKETS:
            hours = self.BUCKETS[self.value()][1]
            return queryset.filter(opened_at__lte=timezone.now() - timedelta(hours=hours))
        return queryset


class BreakEventInline(admin.TabularInline):
    model = BreakEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("at", "actor", "action", "status", "amount", "note")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Break)
class BreakAdmin(ReadableListMixin, ActionPermissions, admin.ModelAdmin):
    """The breaks queue. Take a break (action) to own it; write a resolution
    note and save to resolve it (through the service, with its history)."""

    list_display = [
        "id",
        "kind",
        "status",
        "asset",
        "amount",
        "counterparty",
        "leg",
        "description",
        "owner",
        "opened_at",
        "age",
    ]
    list_filter = ["kind", "status", BreakAgeFilter, "asset", "counterparty"]
    search_fields = ["description", "key", "owner"]
    fields = [
        "kind",
        "status",
        "asset",
        "amount",
        "counterparty",
        "leg",
        "description",
        "owner",
        "opened_at",
        "resolved_at",
        "resolved_by",
        "resolution",
    ]
    inlines = [BreakEventInline]
    actions = ["take"]

    def age(self, obj):
        delta = (obj.resolved_at or timezone.now()) - obj.opened_at
        hours = int(delta.total_seconds() // 3600)
        return (
            f"{hours // 24} d {hours % 24} h"
            if hours >= 24
            else f"{hours} h {int(delta.total_seconds() // 60) % 60} min"
        )

    def get_readonly_fields(self, request, obj=None):
        fixed = [f for f in self.fields if f != "resolution"]
        return self.fields if obj is not None and obj.status == Break.Status.RESOLVED else fixed

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if "resolution" in form.changed_data and obj.resolution.strip():
            try:
                break_resolve(
                    break_id=obj.pk, note=obj.resolution, actor=f"user:{request.user.username}", now=timezone.now()
                )
            except DomainError as error:
                messages.error(request, error.message)

    @admin.action(description="Take the selected breaks (you own them; investigating)", permissions=["act"])
    def take(self, request, queryset):
        done = 0
        for brk in queryset.exclude(status=Break.Status.RESOLVED):
            actor = f"user:{request.user.username}"
            break_take(break_id=brk.id, owner=actor, note=None, actor=actor, now=timezone.now())
            done += 1
        messages.success(request, f"{done} break(s) taken")


@admin.register(Instruction)
class InstructionAdmin(ReadOnlyAdmin):
    """The outbox of outbound instructions. Export (CSV or JSON) for the
    custodian, then mark them taken."""

    list_display = [
        "reference",
        "kind",
        "counterparty",
        "rail",
        "asset",
        "amount",
        "from_ref",
        "to_ref",
        "deadline",
        "status",
        "problem",
        "created_at",
    ]
    list_filter = ["status", "kind", "rail", "counterparty"]
    search_fields = ["reference", "to_ref"]
    actions = ["export_csv", "export_json", "mark_taken"]

    def _rows(self, queryset):
        return [instruction_as_json(i) for i in queryset.select_related("asset", "rail", "counterparty").order_by("id")]

    @admin.action(description="Export the selected instructions as CSV")
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="instructions.csv"'
        writer = csv.DictWriter(response, fieldnames=EXPORT_FIELDS)
        writer.writeheader()
        writer.writerows(self._rows(queryset))
        return response

    @admin.action(description="Export the selected instructions as JSON")
    def export_json(self, request, queryset):
        response = HttpResponse(json.dumps(self._rows(queryset), indent=2), content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="instructions.json"'
        return response

    @admin.action(description="Mark the selected instructions as taken (sent to the custodian)", permissions=["act"])
    def mark_taken(self, request, queryset):
        try:
            taken = instructions_take(
                ids=list(queryset.values_list("id", flat=True)),
                actor=f"user:{request.user.username}",
                now=timezone.now(),
            )
        except DomainError as error:
            messages.error(request, error.message)
            return
        messages.success(request, f"{len(taken)} instruction(s) marked taken")
