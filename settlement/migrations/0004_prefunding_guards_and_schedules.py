"""Prefunding guards in PostgreSQL itself, and its schedules.

- Hold events, funding events, settlement entries and attestations are
  append-only: the balances are sums of them, and a recompute must agree.
- Balances and holds are never deleted (events refer to them without a
  database FK constraint on the hot path; see settlement.models.prefunding).
- Beat: expired holds swept every minute (expiry is also applied on every
  read), and the balances verified against a recompute every 5 minutes.
"""

from django.db import migrations

from controls.migration_helpers import append_only, beat_schedules, beat_schedules_drop, drop_triggers, no_delete

APPEND_ONLY = (
    "settlement_holdevent",
    "settlement_fundingevent",
    "settlement_prefundingsettlement",
    "settlement_custodianattestation",
)
NO_DELETE = ("settlement_prefundingbalance", "settlement_prefundinghold")
TASKS = [
    {"name": "prefunding: expire holds past their time", "task": "settlement.prefunding_expire", "every_seconds": 60},
    {"name": "prefunding: verify balances against a recompute", "task": "settlement.prefunding_verify", "every_seconds": 300},
]


def create(apps, editor):
    append_only(editor, *APPEND_ONLY)
    no_delete(editor, *NO_DELETE)
    beat_schedules(apps, TASKS)


def drop(apps, editor):
    drop_triggers(editor, "append_only", *APPEND_ONLY)
    drop_triggers(editor, "no_delete", *NO_DELETE)
    beat_schedules_drop(apps, [t["name"] for t in TASKS])


class Migration(migrations.Migration):
    dependencies = [("settlement", "0003_prefunding"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [migrations.RunPython(create, drop)]
