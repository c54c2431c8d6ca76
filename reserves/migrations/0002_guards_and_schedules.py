"""The reserve fund's ledger is append-only in PostgreSQL itself (a
correction is a reversing entry), and the default schedules: an exposure
snapshot every minute (the sizing history) and the insurance check at 08:00
Hong Kong."""

from django.db import migrations

from controls.migration_helpers import append_only, beat_schedules, beat_schedules_drop, drop_triggers

APPEND_ONLY = ("reserves_reserveentry",)
TASKS = [
    {"name": "reserve: exposure snapshot", "task": "reserves.exposure_snapshot", "every_seconds": 60},
    {"name": "reserve: insurance check 08:00 HKT", "task": "reserves.insurance_check", "crontab": ("0", "8")},
]


def create(apps, editor):
    append_only(editor, *APPEND_ONLY)
    beat_schedules(apps, TASKS)


def drop(apps, editor):
    drop_triggers(editor, "append_only", *APPEND_ONLY)
    beat_schedules_drop(apps, [t["name"] for t in TASKS])


class Migration(migrations.Migration):
    dependencies = [
        ("reserves", "0001_initial"),
        ("controls", "0002_append_only"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, drop)]
