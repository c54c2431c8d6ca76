"""Default custody schedules (editable in the admin under Periodic tasks):
the chain watcher every 15 seconds, reconciliation (matching, breaks past
deadline, the instruction outbox) every minute."""

from django.db import migrations

from controls.migration_helpers import beat_schedules, beat_schedules_drop

TASKS = [
    {"name": "custody: watch evm rails", "task": "custody.watch_chain", "every_seconds": 15},
    {"name": "custody: reconcile, breaks and instruction outbox", "task": "custody.reconcile", "every_seconds": 60},
]


class Migration(migrations.Migration):
    dependencies = [("custody", "0001_initial"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [
        migrations.RunPython(
            lambda apps, editor: beat_schedules(apps, TASKS),
            lambda apps, editor: beat_schedules_drop(apps, [t["name"] for t in TASKS]),
        )
    ]
