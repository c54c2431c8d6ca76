"""The three operations groups and what each may do in the admin.

ops_viewer sees everything; ops_operator and ops_approver may also change
the registry and resolve queues. Four-eyes decisions are checked in the
services by group, not by these model permissions. Synced after every
migrate, so models added later are covered without a migration of their own.
"""

from django.contrib.auth.models import Group, Permission

GROUPS = ("ops_viewer", "ops_operator", "ops_approver")
APPS = ("controls", "registry", "settlement", "custody", "reserves", "operations", "django_celery_beat")
REGISTRY = {
    "jurisdiction",
    "operator",
    "asset",
    "account",
    "rail",
    "custodian",
    "wallet",
    "bankaccount",
    "walletbalance",
}
SCHEDULES = {"periodictask", "intervalschedule", "crontabschedule"}
QUEUES = {("settlement", "tradeexception"), ("settlement", "complianceexception"), ("controls", "alert")}


def groups_sync() -> dict[str, int]:
    view = Permission.objects.filter(content_type__app_label__in=APPS, codename__startswith="view_")
    change = Permission.objects.filter(
        content_type__app_label__in=APPS, content_type__model__in=REGISTRY | SCHEDULES
    ).exclude(codename__startswith="delete_")
    queues = [
        p
        for p in Permission.objects.filter(codename__startswith="change_").select_related("content_type")
        if (p.content_type.app_label, p.content_type.model) in QUEUES
    ]
    wanted = {
        "ops_viewer": set(view),
        "ops_operator": set(view) | set(change) | set(queues),
        "ops_approver": set(view) | set(change) | set(queues),
    }
    counts = {}
    for name in GROUPS:
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(wanted[name])
        counts[name] = len(wanted[name])
    return counts
