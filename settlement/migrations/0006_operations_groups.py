"""The three operations groups and what each may do in the admin.

ops_viewer sees everything; ops_operator and ops_approver may also change
the registry and resolve queues. Four-eyes decisions are checked in the
services by group, not by these model permissions.
"""

from django.db import migrations

APPS = ("settlement", "custody", "reserves", "django_celery_beat")
REGISTRY = {"jurisdiction", "operator", "asset", "account", "rail", "custodian", "wallet", "bankaccount", "walletbalance"}
SCHEDULES = {"periodictask", "intervalschedule", "crontabschedule"}


def create(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.filter(content_type__app_label__in=APPS, codename__startswith="view_")
    change = Permission.objects.filter(
        content_type__app_label__in=APPS, content_type__model__in=REGISTRY | SCHEDULES
    ).exclude(codename__startswith="delete_")
    queues = Permission.objects.filter(
        content_type__app_label="settlement",
        content_type__model__in={"tradeexception", "complianceexception", "alert"},
        codename__startswith="change_",
    )
    for name, perms in (
        ("ops_viewer", [view]),
        ("ops_operator", [view, change, queues]),
        ("ops_approver", [view, change, queues]),
    ):
        group, _ = Group.objects.get_or_create(name=name)
        for queryset in perms:
            group.permissions.add(*queryset)


def drop(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["ops_viewer", "ops_operator", "ops_approver"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0005_cycles_and_dvp"),
        ("custody", "0003_cycles_and_dvp"),
        ("reserves", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create, drop)]
