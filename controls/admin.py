"""Admin for the controls: the audit trail, approval requests (with the
record changes they ask for) and alerts; the read-only base every app's
financial history uses; the base for records that change only by proposal;
and the Celery beat schedules, which are such records."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django_celery_beat.admin import (
    ClockedScheduleAdmin,
    CrontabScheduleAdmin,
    IntervalScheduleAdmin,
    PeriodicTaskAdmin,
    SolarScheduleAdmin,
)
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from controls.admin_display import ReadableListMixin, hk_time, json_block
from controls.exceptions import DomainError
from controls.models import Alert, ApprovalRequest, AuditEvent, ChangeProposal
from controls.money import display
from controls.services import approvals
from controls.services.alerts import alerts_acknowledge
from controls.services.changes import (
    Operation,
    change_lines,
    change_propose,
    change_summary,
    change_target_of,
    proposals_pending,
)


def scaled_amount(field: str, asset_field: str = "asset", description: str | None = None):
    """A list column showing ``field`` at the scale of the row's asset."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(self, obj) -> str:
        return display(getattr(obj, field), getattr(obj, asset_field).scale)

    return column


class ActionPermissions:
    """Admin actions say who may run them: ``permissions=["act"]`` for the
    work of ops_operator and ops_approver (resolve a queue, ask for a
    four-eyes change), ``permissions=["decide"]`` for ops_approver. An
    ops_viewer is offered neither, and Django refuses a posted action the
    user is not offered."""

    def has_act_permission(self, request) -> bool:
        return approvals.can_request(request.user)

    def has_decide_permission(self, request) -> bool:
        return approvals.can_decide(request.user)


def admin_url(obj, view: str = "change") -> str:
    meta = obj._meta
    args = [obj.pk] if view in ("change", "delete", "history") else []
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=args)


class ProposedChangeAdmin(ReadableListMixin, ActionPermissions, admin.ModelAdmin):
    """Records that change only with four eyes (DESIGN section 12).

    Saving the add or change form, or confirming a deletion, saves nothing:
    it proposes the change (``change_propose``) as an approval request that a
    different ops_approver approves in *Approval requests*. Superusers
    propose like everyone else. The change page lists the record's pending
    proposals; the list lists the kind's pending proposals."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a deletion is proposed one record at a time
        return actions

    def _propose(self, request, obj, operation: str) -> None:
        what = change_target_of(type(obj))
        current = self.model._default_manager.filter(pk=obj.pk).first() if obj.pk is not None else None
        name = what.natural_key(current) if what is not None and current is not None else str(obj)
        try:
            approval = change_propose(proposed=obj, operation=operation, user=request.user, now=timezone.now())
        except DomainError as error:
            self.message_user(request, f"{operation} {name}: not proposed: {error.message}", messages.ERROR)
            return
        self.message_user(
            request,
            format_html(
                '{} {}: proposed as approval {}; a different ops_approver must approve it (<a href="{}">open it</a>)',
                operation,
                name,
                approval.id,
                admin_url(approval),
            ),
            messages.SUCCESS,
        )

    def save_model(self, request, obj, form, change):
        self._propose(request, obj, Operation.UPDATE if change else Operation.CREATE)

    def save_related(self, request, form, formsets, change):
        pass  # nothing was saved: the proposal holds the change

    def delete_model(self, request, obj):
        self._propose(request, obj, Operation.DELETE)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self._propose(request, obj, Operation.DELETE)

    # Django's admin history would say "changed" or "deleted": the audit trail
    # records the proposal instead, and the change when it is applied.
    def construct_change_message(self, request, form, formsets, add=False):
        return []  # nothing was saved (inline formsets included)

    def log_addition(self, request, obj, message):
        return None

    def log_change(self, request, obj, message):
        return None

    def log_deletion(self, request, obj, object_repr):
        return None

    def log_deletions(self, request, queryset):
        return None

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))

    def response_change(self, request, obj):
        return HttpResponseRedirect(admin_url(obj))

    def response_delete(self, request, obj_display, obj_id):
        if self.model._default_manager.filter(pk=obj_id).exists():
            return HttpResponseRedirect(
                reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj_id])
            )
        return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))

    def _show_pending(self, request, object_id=None) -> None:
        for change in proposals_pending(model=self.model, object_id=object_id)[:20]:
            approval = change.approval
            self.message_user(
                request,
                format_html(
                    'pending <a href="{}">approval {}</a>, asked by {} at {}: {}',
                    admin_url(approval),
                    approval.id,
                    approval.requested_by.username,
                    hk_time(approval.requested_at),
                    change_summary(change),
                ),
                messages.WARNING,
            )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            self._show_pending(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        if request.method == "GET":
            self._show_pending(request)
        return super().changelist_view(request, extra_context)


class ReadOnlyAdmin(ReadableListMixin, ActionPermissions, admin.ModelAdmin):
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

    @admin.action(description="Acknowledge", permissions=["act"])
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


def approval_summary(approval: ApprovalRequest) -> str:
    """One line for people: what the request asks for."""
    lines = approvals.approval_describe(approval)
    shown = "; ".join(lines[:3])
    return f"{shown} (and {len(lines) - 3} more)" if len(lines) > 3 else shown


class ChangeInline(admin.TabularInline):
    model = ChangeProposal
    extra = 0
    can_delete = False
    fields = readonly_fields = ("operation", "target", "natural_key", "diff")
    verbose_name = verbose_name_plural = "record changes asked for"

    @admin.display(description="before -> after")
    def diff(self, obj):
        return format_html(
            "<table>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>&rarr;</td><td>{}</td></tr>",
                change_lines(obj),
            ),
        )

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    """Approvers decide here: the summary and, for record changes, each
    record's values before and after, with who asked and when."""

    list_display = ["id", "kind", "status", "summary", "requested_by", "requested_at", "decision"]
    list_filter = ["status", "kind"]
    list_select_related = ["requested_by", "decided_by"]
    list_filter = ["status", "kind", "requested_by"]
    search_fields = ["payload", "reason"]
    fields = readonly_fields = (
        "kind",
        "status",
        "what_it_would_do",
        "requested_by",
        "asked_at",
        "decided_by",
        "decided_at_shown",
        "reason",
        "payload_shown",
        "result_shown",
    )
    inlines = [ChangeInline]
    actions = ["approve", "reject"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("changes")

    def get_inlines(self, request, obj):
        # the record changes table only for a request that carries record changes
        return [ChangeInline] if obj is not None and obj.changes.exists() else []

    @admin.display(description="what approving it would do")
    def what_it_would_do(self, obj):
        return format_html_join("", "<div>{}</div>", ((line,) for line in approvals.approval_describe(obj)))

    @admin.display(description="asked at")
    def asked_at(self, obj):
        return hk_time(obj.requested_at)

    @admin.display(description="decided at")
    def decided_at_shown(self, obj):
        return hk_time(obj.decided_at)

    @admin.display(description="request as sent (for the record)")
    def payload_shown(self, obj):
        return json_block(obj.payload)

    @admin.display(description="what it did")
    def result_shown(self, obj):
        return json_block(obj.result)

    class Media:
        css = {"all": ["controls/admin.css"]}

    @admin.display(description="decided")
    def decision(self, obj):
        if obj.decided_by is None:
            return "–"
        return format_html("{} by {}, {}", obj.status, obj.decided_by.username, hk_time(obj.decided_at))

    @admin.display(description="what it asks")
    def summary(self, obj):
        return approval_summary(obj)

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

    @admin.action(description="Approve (you must not be the requester)", permissions=["decide"])
    def approve(self, request, queryset):
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject", permissions=["decide"])
    def reject(self, request, queryset):
        self._decide(request, queryset, approve=False)


# --- the Celery beat schedules: changed only by proposal -----------------------------------


class ProposedPeriodicTaskAdmin(ProposedChangeAdmin, PeriodicTaskAdmin):
    """Enabling, disabling and toggling tasks are proposals too; running a
    task now is operations' work (like running a cycle now)."""

    actions = ["propose_enable", "propose_disable", "run_tasks"]

    def _propose_enabled(self, request, queryset, enabled: bool) -> None:
        for task in queryset.order_by("id"):
            if task.enabled != enabled:
                task.enabled = enabled
                self._propose(request, task, Operation.UPDATE)

    @admin.action(description="Propose enabling the selected tasks (four eyes)", permissions=["act"])
    def propose_enable(self, request, queryset):
        self._propose_enabled(request, queryset, True)

    @admin.action(description="Propose disabling the selected tasks (four eyes)", permissions=["act"])
    def propose_disable(self, request, queryset):
        self._propose_enabled(request, queryset, False)

    @admin.action(description="Run the selected tasks now", permissions=["act"])
    def run_tasks(self, request, queryset):
        return super().run_tasks(request, queryset)


class ProposedIntervalScheduleAdmin(ProposedChangeAdmin, IntervalScheduleAdmin):
    pass


class ProposedCrontabScheduleAdmin(ProposedChangeAdmin, CrontabScheduleAdmin):
    pass


class ProposedSolarScheduleAdmin(ProposedChangeAdmin, SolarScheduleAdmin):
    pass


class ProposedClockedScheduleAdmin(ProposedChangeAdmin, ClockedScheduleAdmin):
    pass


for _model, _admin in (
    (PeriodicTask, ProposedPeriodicTaskAdmin),
    (IntervalSchedule, ProposedIntervalScheduleAdmin),
    (CrontabSchedule, ProposedCrontabScheduleAdmin),
    (SolarSchedule, ProposedSolarScheduleAdmin),
    (ClockedSchedule, ProposedClockedScheduleAdmin),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
