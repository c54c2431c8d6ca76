"""Exposure snapshots every minute (the sizing history) and the daily
insurance check at 08:00 Hong Kong."""

from django.db import migrations


def create(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    Crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    minute, _ = Interval.objects.get_or_create(every=60, period="seconds")
    morning, _ = Crontab.objects.get_or_create(
        minute="0", hour="8", day_of_week="*", day_of_month="*", month_of_year="*", timezone="Asia/Hong_Kong"
    )
    PeriodicTask.objects.get_or_create(name="reserve: exposure snapshot", defaults={"task": "reserves.exposure_snapshot", "interval": minute})
    PeriodicTask.objects.get_or_create(name="reserve: insurance check 08:00 HKT", defaults={"task": "reserves.insurance_check", "crontab": morning})


def drop(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__startswith="reserve: ").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reserves", "0002_fund_ledger_defaults_claims"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, drop)]
