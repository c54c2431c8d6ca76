"""Default settlement schedules (editable in the admin under Periodic tasks):
exposure verification every 5 minutes, intraday cycles every 2 hours, end
of day at 22:00 Hong Kong, the deadline check every minute."""

from django.db import migrations

from controls.migration_helpers import beat_schedules, beat_schedules_drop

TASKS = [
    {"name": "exposure: verify running figures against a recompute", "task": "settlement.exposure_verify", "every_seconds": 300},
    {"name": "cycles: intraday every 2 hours", "task": "settlement.cycle_run", "crontab": ("0", "*/2"), "kwargs": {"kind": "intraday"}},
    {"name": "cycles: end of day 22:00 HKT", "task": "settlement.cycle_run", "crontab": ("0", "22"), "kwargs": {"kind": "eod"}},
    {"name": "cycles: fail batches past their deadline", "task": "settlement.deadlines_check", "every_seconds": 60},
]


class Migration(migrations.Migration):
    dependencies = [("settlement", "0001_initial"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [
        migrations.RunPython(
            lambda apps, editor: beat_schedules(apps, TASKS),
            lambda apps, editor: beat_schedules_drop(apps, [t["name"] for t in TASKS]),
        )
    ]
