"""Admin for notifications: subscriptions (operations keep them directly,
each save audited), the notifications made, and their delivery log."""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from controls.admin import ActionPermissions, ReadOnlyAdmin
from controls.admin_display import ReadableListMixin, hk_time, hk_time_column, json_block
from controls.exceptions import DomainError
from controls.services.approvals import actor_of

from .models import EventKind, Notification, NotificationDelivery, Subscription
from .services.notifications import notification_sample, subscription_save
from .services.notifications.subscriptions import secret_new
from .tasks import deliveries_queue


class SubscriptionForm(forms.ModelForm):
    url = forms.URLField(required=False, assume_scheme="https", help_text="webhook: where to POST (http or https)")
    kinds = forms.MultipleChoiceField(
        choices=[(k.value, k.label) for k in EventKind if k != EventKind.SAMPLE],
        widget=forms.CheckboxSelectMultiple,
        help_text="what this subscriber is told about",
    )

    class Meta:
        model = Subscription
        fields = ["name", "channel", "url", "secret", "email", "kinds", "active"]
        widgets = {"secret": forms.PasswordInput(render_value=True)}

    def clean(self):
        data = super().clean()
        if data.get("channel") == Subscription.Channel.WEBHOOK and not data.get("secret"):
            data["secret"] = secret_new()  # made here so the record is whole when the form checks it
        return data


@admin.register(Subscription)
class SubscriptionAdmin(ReadableListMixin, ActionPermissions, admin.ModelAdmin):
    form = SubscriptionForm
    list_display = ["name", "channel", "destination", "kinds_shown", "active", hk_time_column("updated_at")]
    list_filter = ["channel", "active"]
    search_fields = ["name", "url", "email"]
    actions = ["send_sample"]

    @admin.display(description="event kinds")
    def kinds_shown(self, obj):
        labels = dict(EventKind.choices)
        return ", ".join(str(labels.get(k, k)) for k in obj.kinds)

    def save_model(self, request, obj, form, change):
        try:
            subscription_save(subscription=obj, actor=actor_of(request.user), now=timezone.now())
        except DomainError as error:
            self.message_user(request, f"not saved: {error.message}", messages.ERROR)

    def has_delete_permission(self, request, obj=None):
        return False  # deliveries refer to it: switch it off (active) instead

    @admin.action(description="Send a sample notification", permissions=["act"])
    def send_sample(self, request, queryset):
        for subscription in queryset:
            delivery = notification_sample(subscription=subscription, actor=actor_of(request.user), now=timezone.now())
            deliveries_queue([delivery.id])
            delivery.refresh_from_db()
            self.message_user(
                request,
                f"sample to {subscription.name}: {delivery.status}"
                + (f" ({delivery.last_error})" if delivery.last_error else ""),
                messages.SUCCESS if delivery.status == "sent" else messages.WARNING,
            )


class DeliveryInline(admin.TabularInline):
    model = NotificationDelivery
    extra = 0
    can_delete = False
    fields = readonly_fields = ("subscription", "status", "attempts", "response_status", "last_error")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["id", hk_time_column("at"), "kind", "title", "change", "operator_code"]
    list_filter = ["kind", "operator_code"]
    search_fields = ["title", "key"]
    fields = readonly_fields = ("kind", "title", "change", "operator_code", "at_shown", "key", "details_shown")
    inlines = [DeliveryInline]

    @admin.display(description="change")
    def change(self, obj):
        return f"{obj.previous or '–'} → {obj.state}"

    @admin.display(description="at")
    def at_shown(self, obj):
        return hk_time(obj.at)

    @admin.display(description="details")
    def details_shown(self, obj):
        return json_block(obj.details)


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: every notification to every subscriber, with its attempts."""

    list_display = [
        "id",
        hk_time_column("created_at", "made (HKT)"),
        "notification_title",
        "subscription",
        "status",
        "attempts",
        "response_status",
        "last_error",
        hk_time_column("sent_at", "sent (HKT)"),
    ]
    list_filter = ["status", "subscription", "notification__kind"]
    search_fields = ["notification__title", "subscription__name"]
    list_select_related = ["notification", "subscription"]

    @admin.display(description="notification", ordering="notification__id")
    def notification_title(self, obj):
        return f"[{obj.notification.get_kind_display()}] {obj.notification.title}"
