"""Default custody schedules (editable in the admin under Periodic tasks):
the chain watcher every 15 seconds, reconciliation (matching, breaks past
deadline, the instruction outbox) every minute."""

import json

from django.db import migrations


def create(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_15s, _ = Interval.objects.get_or_create(every=15, period="seconds")
    every_minute, _ = Interval.objects.get_or_create(every=60, period="seconds")
    tasks = [
        ("custody: watch evm rails", "custody.watch_chain", every_15s),
        ("custody: reconcile, breaks and instruction outbox", "custody.reconcile", every_minute),
    ]
    for name, task, interval in tasks:
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "kwargs": json.dumps({}), "interval": interval, "expires": None}
        )


def drop(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__startswith="custody: ").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("custody", "0004_custody_rails"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, drop)]
