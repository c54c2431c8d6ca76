"""Prefunding schedules for custody (editable in the admin under Periodic
tasks): the cover of every operator and asset checked every minute (stale
attestations and breaches become breaks), and the engine's open-order lists
reconciled with the holds every minute (a list is also reconciled as soon as
it arrives; this catches one whose queued task was lost)."""

from django.db import migrations

from controls.migration_helpers import beat_schedules, beat_schedules_drop

TASKS = [
    {"name": "prefunding: check custodian cover", "task": "custody.prefunding_cover_check", "every_seconds": 60},
    {"name": "prefunding: reconcile open orders with holds", "task": "custody.open_orders_reconcile_pending", "every_seconds": 60},
]


class Migration(migrations.Migration):
    dependencies = [("custody", "0004_prefunding_breaks"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [
        migrations.RunPython(
            lambda apps, editor: beat_schedules(apps, TASKS),
            lambda apps, editor: beat_schedules_drop(apps, [t["name"] for t in TASKS]),
        )
    ]
