"""The three operations groups and the admin permissions each holds.

- ``ops_viewer`` may view every page of the project's apps and the
  schedules, and nothing else: no add, change or delete permission, and no
  admin action that changes state is offered to it (actions check the group
  through ``controls.admin.ActionPermissions``; the operations API checks it
  in ``controls.api.ops.InGroups``).
- ``ops_operator`` and ``ops_approver`` also hold add, change and delete on
  the records that change only by proposal (the registry and the Celery beat
  schedules): in the admin, saving those forms proposes the change for a
  second person's approval and saves nothing. They may also change what
  operations keep directly, each save audited through a service: wallet
  balances, insurance policies, breaks (resolution notes) and
  notification subscriptions.
- Approving is not a permission: ``approval_decide`` admits only
  ``ops_approver`` members other than the requester.

Synced after every migrate (operations is the last app), so models added
later are covered without a migration of their own.
"""

from django.contrib.auth.models import Group, Permission

from controls.services.changes import change_targets

GROUPS = ("ops_viewer", "ops_operator", "ops_approver")
APPS = ("controls", "registry", "settlement", "custody", "reserves", "operations", "django_celery_beat")
# changed directly (each save goes through an audited service); never deleted
DIRECT = {
    ("registry", "walletbalance"),
    ("reserves", "insurancepolicy"),
    ("custody", "break"),
    ("operations", "subscription"),
}


def _permissions(actions: tuple[str, ...], models: set[tuple[str, str]]) -> set[Permission]:
    wanted = {f"{action}_{model}" for action in actions for _, model in models}
    candidates = Permission.objects.filter(codename__in=wanted).select_related("content_type")
    return {p for p in candidates if (p.content_type.app_label, p.content_type.model) in models}


def groups_sync() -> dict[str, int]:
    view = set(Permission.objects.filter(content_type__app_label__in=APPS, codename__startswith="view_"))
    proposed = {(t.model._meta.app_label, str(t.model._meta.model_name)) for t in change_targets()}
    work = _permissions(("add", "change", "delete"), proposed) | _permissions(("add", "change"), DIRECT)
    wanted = {"ops_viewer": view, "ops_operator": view | work, "ops_approver": view | work}
    counts = {}
    for name in GROUPS:
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(wanted[name])
        counts[name] = len(wanted[name])
    return counts
