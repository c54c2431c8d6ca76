"""The audit trail is append-only in PostgreSQL itself, not only in code."""

from django.db import migrations

from controls.migration_helpers import append_only, drop_triggers

TABLES = ("controls_auditevent",)


class Migration(migrations.Migration):
    dependencies = [("controls", "0001_initial")]

    operations = [
        migrations.RunPython(
            lambda apps, editor: append_only(editor, *TABLES),
            lambda apps, editor: drop_triggers(editor, "append_only", *TABLES),
        )
    ]
