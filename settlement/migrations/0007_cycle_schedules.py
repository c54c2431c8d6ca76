"""Default cycle schedules (editable in the admin under Periodic tasks):
intraday every 2 hours, end of day at 22:00 Hong Kong, deadline check every
minute, the daily settlement report at 22:30 Hong Kong."""

import json

from django.db import migrations

HK = "Asia/Hong_Kong"


def create(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    Crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")

    def crontab(minute, hour):
        schedule, _ = Crontab.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*", timezone=HK
        )
        return schedule

    every_minute, _ = Interval.objects.get_or_create(every=60, period="seconds")
    tasks = [
        ("cycles: intraday every 2 hours", "settlement.cycle_run", {"crontab": crontab("0", "*/2")}, {"kind": "intraday"}),
        ("cycles: end of day 22:00 HKT", "settlement.cycle_run", {"crontab": crontab("0", "22")}, {"kind": "eod"}),
        ("cycles: fail batches past their deadline", "settlement.deadlines_check", {"interval": every_minute}, {}),
        ("cycles: daily settlement report 22:30 HKT", "settlement.settlement_report", {"crontab": crontab("30", "22")}, {}),
    ]
    for name, task, schedule, kwargs in tasks:
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "kwargs": json.dumps(kwargs), **schedule})


def drop(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__startswith="cycles: ").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0006_operations_groups"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, drop)]
