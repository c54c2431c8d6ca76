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


KEY_KEPT_FUNCTION = """
CREATE OR REPLACE FUNCTION key_kept_guard() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'rows of %% are referenced by id: never deleted nor renumbered (%% refused)', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def key_kept(schema_editor, *tables: str) -> None:
    """DELETE, and an UPDATE that changes ``id``, raise: what a foreign key
    constraint guarantees on the referenced side, for tables whose
    referencing rows are checked by ``references_check`` instead. Installing
    it again (another app's migration relying on it too) replaces it."""
    schema_editor.execute(KEY_KEPT_FUNCTION)
    for table in tables:
        schema_editor.execute(
            f"CREATE OR REPLACE TRIGGER {table}_key_kept BEFORE DELETE OR UPDATE OF id ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION key_kept_guard()"
        )


def references_check(schema_editor, table: str, column: str, parent: str) -> None:
    """The referencing side of a foreign key, checked once per statement: an
    INSERT (or COPY) fails if any new row's ``column`` names no ``parent``
    row, in one anti-join over the statement's new rows, where a constraint
    runs one query and takes one row lock per row. ``column`` never changes
    afterwards. With ``key_kept`` on ``parent`` this keeps what the
    constraint kept.

    The parent is probed through its primary key whatever the planner
    believes of its size (``enable_seqscan = off`` for the check only): right
    after a TRUNCATE or in a fresh table it would otherwise expect an empty
    parent and scan it once per new row."""
    check = f"{table}_{column}_exists"
    schema_editor.execute(f"""
        CREATE OR REPLACE FUNCTION {check}() RETURNS trigger AS $$
        DECLARE missing bigint;
        BEGIN
            SELECT n.{column} INTO missing FROM new_rows n
            WHERE n.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.id = n.{column}) LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'insert into {table}: {column} %% is not a row of {parent}', missing
                    USING ERRCODE = 'foreign_key_violation';
            END IF;
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql SET enable_seqscan = off
    """)
    schema_editor.execute(
        f"CREATE TRIGGER {check} AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {check}()"
    )
    frozen(schema_editor, table, column, errcode="foreign_key_violation")


def frozen(schema_editor, table: str, column: str, *, errcode: str = "integrity_constraint_violation") -> None:
    """An UPDATE that changes ``column`` raises (one that leaves it alone
    costs nothing: the trigger fires only when the column is assigned)."""
    name = f"{table}_{column}_frozen"
    schema_editor.execute(f"""
        CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'update of {table}: {column} never changes' USING ERRCODE = '{errcode}';
        END;
        $$ LANGUAGE plpgsql
    """)
    schema_editor.execute(
        f"CREATE TRIGGER {name} BEFORE UPDATE OF {column} ON {table} FOR EACH ROW "
        f"WHEN (OLD.{column} IS DISTINCT FROM NEW.{column}) EXECUTE FUNCTION {name}()"
    )


def frozen_drop(schema_editor, table: str, column: str) -> None:
    name = f"{table}_{column}_frozen"
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()")


def references_check_columns(schema_editor, table: str, name: str, checks: list[tuple[str, str]]) -> None:
    """``references_check`` for several (column, parent) pairs of one table
    in one statement trigger: per column, the distinct values of the
    statement's new rows probed in the parent (a handful of registry rows
    for thousands of new rows), and the column frozen afterwards."""
    function = f"{table}_{name}_exist"
    probes = "\n".join(
        f"""
            SELECT d.v INTO missing FROM (SELECT DISTINCT n.{column} AS v FROM new_rows n) d
            WHERE d.v IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.id = d.v) LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'insert into {table}: {column} %% is not a row of {parent}', missing
                    USING ERRCODE = 'foreign_key_violation';
            END IF;"""
        for column, parent in checks
    )
    schema_editor.execute(f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
        DECLARE missing bigint;
        BEGIN{probes}
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql
    """)
    schema_editor.execute(
        f"CREATE TRIGGER {function} AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    )
    for column, _ in checks:
        frozen(schema_editor, table, column, errcode="foreign_key_violation")


def references_check_columns_drop(schema_editor, table: str, name: str, columns: list[str]) -> None:
    function = f"{table}_{name}_exist"
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {function} ON {table}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {function}()")
    for column in columns:
        frozen_drop(schema_editor, table, column)


def references_check_drop(schema_editor, table: str, column: str) -> None:
    for name in (f"{table}_{column}_exists", f"{table}_{column}_frozen"):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()")


def references_kept(schema_editor, parent: str, table: str, *columns: str) -> None:
    """The referenced side of a foreign key for a parent whose rows may be
    deleted while nothing refers to them (a registry record entered by
    mistake): DELETE, or an UPDATE that changes ``id``, raises
    ``foreign_key_violation`` while a row of ``table`` names the row in one
    of ``columns``, what the constraint's ``NO ACTION`` refused. For tables
    whose rows are never deleted at all, ``key_kept`` says so instead. Costs
    what the constraint's check cost: one probe of ``table`` per deleted row
    (a scan where no index leads with the column)."""
    name = f"{parent}_{table}_kept"
    named = " OR ".join(f"c.{column} = OLD.id" for column in columns)
    schema_editor.execute(f"""
        CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
        DECLARE referring bigint;
        BEGIN
            IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
                RETURN NEW;
            END IF;
            SELECT c.id INTO referring FROM {table} c WHERE {named} LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION '%% of {parent} %% refused: {table} %% refers to it', TG_OP, OLD.id, referring
                    USING ERRCODE = 'foreign_key_violation';
            END IF;
            IF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql
    """)
    schema_editor.execute(
        f"CREATE TRIGGER {name} BEFORE DELETE OR UPDATE OF id ON {parent} FOR EACH ROW EXECUTE FUNCTION {name}()"
    )


def references_kept_drop(schema_editor, parent: str, table: str) -> None:
    name = f"{parent}_{table}_kept"
    schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {parent}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()")


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
