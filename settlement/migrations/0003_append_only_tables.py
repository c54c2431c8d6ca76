"""Make the audit trail, the marks history and the reserve ledger append-only
in PostgreSQL itself, not only in code: an UPDATE or DELETE raises."""

from django.db import migrations

TABLES = ["settlement_auditevent", "settlement_mark", "reserves_reserveentry"]


def create(apps, schema_editor):
    for table in TABLES:
        schema_editor.execute(
            """
            CREATE OR REPLACE FUNCTION append_only_guard() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'table %% is append-only: %% refused', TG_TABLE_NAME, TG_OP;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION append_only_guard()"
        )


def drop(apps, schema_editor):
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0002_jurisdictions"),
        ("reserves", "0001_initial"),
    ]

    operations = [migrations.RunPython(create, drop)]
