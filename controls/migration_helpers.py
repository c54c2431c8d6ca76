"""Small, stable helpers for the data migrations of every app: append-only
and no-delete guards enforced by PostgreSQL itself, and default Celery beat
schedules (kept in the database so operations change them in the admin)."""

import json

APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION append_only_guard() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'table %% is append-only: %% refused', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql
"""
NO_DELETE_FUNCTION = """
CREATE OR REPLACE FUNCTION registry_no_delete() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'rows of %% are never deleted (trades and obligations refer to them)', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql
"""


def append_only(schema_editor, *tables: str) -> None:
    """UPDATE and DELETE on these tables raise (TRUNCATE, used only by test
    flushes, is not a row change)."""
    schema_editor.execute(APPEND_ONLY_FUNCTION)
    for table in tables:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION append_only_guard()"
        )


def no_delete(schema_editor, *tables: str) -> None:
    schema_editor.execute(NO_DELETE_FUNCTION)
    for table in tables:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION registry_no_delete()"
        )


def drop_triggers(schema_editor, suffix: str, *tables: str) -> None:
    for table in tables:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_{suffix} ON {table}")


def beat_schedules(apps, tasks: list[dict]) -> None:
    """Each task: name, task, kwargs (optional), and every_seconds or
    crontab (minute, hour) in Hong Kong time. Existing rows (an operator may
    have changed them) are left as they are."""
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for spec in tasks:
        if "every_seconds" in spec:
            interval, _ = interval_model.objects.get_or_create(every=spec["every_seconds"], period="seconds")
            schedule = {"interval": interval}
        else:
            minute, hour = spec["crontab"]
            crontab, _ = crontab_model.objects.get_or_create(
                minute=minute,
                hour=hour,
                day_of_week="*",
                day_of_month="*",
                month_of_year="*",
                timezone="Asia/Hong_Kong",
            )
            schedule = {"crontab": crontab}
        task_model.objects.get_or_create(
            name=spec["name"], defaults={"task": spec["task"], "kwargs": json.dumps(spec.get("kwargs", {})), **schedule}
        )


def beat_schedules_drop(apps, names: list[str]) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=names).delete()
