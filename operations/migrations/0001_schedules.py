"""Default operations schedule (editable in the admin under Periodic tasks):
the daily settlement report at 22:30 Hong Kong (circular para 14)."""

from django.db import migrations

from controls.migration_helpers import beat_schedules, beat_schedules_drop

TASKS = [
    {"name": "cycles: daily settlement report 22:30 HKT", "task": "operations.settlement_report", "crontab": ("30", "22")},
]


class Migration(migrations.Migration):
    dependencies = [("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [
        migrations.RunPython(
            lambda apps, editor: beat_schedules(apps, TASKS),
            lambda apps, editor: beat_schedules_drop(apps, [t["name"] for t in TASKS]),
        )
    ]
