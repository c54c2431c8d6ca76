"""Cover-1 is watched every minute: an alert when the fund no longer covers
the largest loss if one counterparty defaulted now."""

from django.db import migrations

from controls.migration_helpers import beat_schedules, beat_schedules_drop

TASKS = [{"name": "reserve: cover-1 check", "task": "reserves.cover1_check", "every_seconds": 60}]


def create(apps, editor):
    beat_schedules(apps, TASKS)


def drop(apps, editor):
    beat_schedules_drop(apps, [t["name"] for t in TASKS])


class Migration(migrations.Migration):
    dependencies = [("reserves", "0002_guards_and_schedules")]

    operations = [migrations.RunPython(create, drop)]
