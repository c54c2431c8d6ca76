"""The notification scan every 15 s (editable in the admin under Periodic tasks)."""

from django.db import migrations

from controls.migration_helpers import beat_schedules, beat_schedules_drop

TASKS = [{"name": "operations: notifications scan", "task": "operations.notifications_scan", "every_seconds": 15}]


class Migration(migrations.Migration):
    dependencies = [("operations", "0002_notifications")]

    operations = [
        migrations.RunPython(
            lambda apps, editor: beat_schedules(apps, TASKS),
            lambda apps, editor: beat_schedules_drop(apps, [t["name"] for t in TASKS]),
        )
    ]
