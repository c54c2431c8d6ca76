"""Admin for the controls: the audit trail, approval requests and alerts,
and the read-only base every app's financial history uses."""

from django.contrib import admin, messages
from django.utils import timezone

from controls.exceptions import DomainError
from controls.models import Alert, ApprovalRequest, AuditEvent
from controls.money import display
from controls.services import approvals
from controls.services.alerts import alerts_acknowledge


def scaled_amount(field: str, asset_field: str = "asset", description: str | None = None):
    """A list column showing ``field`` at the scale of the row's asset."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(self, obj) -> str:
        return display(getattr(obj, field), getattr(obj, asset_field).scale)

    return column


class ReadOnlyAdmin(admin.ModelAdmin):
    """Financial history: shown, never added, edited or deleted here (every
    app's admin uses this one)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "kind", "message", "status"]
    list_filter = ["status", "kind"]
    actions = ["acknowledge"]

    @admin.action(description="Acknowledge")
    def acknowledge(self, request, queryset):
        count = alerts_acknowledge(
            ids=list(queryset.values_list("id", flat=True)), actor=f"user:{request.user.username}", now=timezone.now()
        )
        self.message_user(request, f"{count} alert(s) acknowledged", messages.SUCCESS)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "at", "actor", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_id", "actor"]
    show_full_result_count = False


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "status", "requested_by", "requested_at", "decided_by", "decided_at", "reason"]
    list_filter = ["status", "kind"]
    actions = ["approve", "reject"]

    def _decide(self, request, queryset, *, approve: bool):
        for approval in queryset.order_by("id"):
            try:
                approvals.approval_decide(
                    approval_id=approval.id,
                    user=request.user,
                    approve=approve,
                    reason="" if approve else f"rejected in the admin by {request.user.username}",
                    now=timezone.now(),
                )
            except DomainError as error:
                self.message_user(request, f"approval {approval.id}: {error.message}", messages.ERROR)
            else:
                self.message_user(
                    request, f"approval {approval.id}: {'approved' if approve else 'rejected'}", messages.SUCCESS
                )

    @admin.action(description="Approve (you must not be the requester)")
    def approve(self, request, queryset):
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject")
    def reject(self, request, queryset):
        self._decide(request, queryset, approve=False)
