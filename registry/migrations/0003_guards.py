"""Guards in PostgreSQL itself.

- Marks history is append-only: a price once posted is never changed.
- Operators and assets are never deleted: trades and obligations refer to
  them without database FK constraints (at 10,000 trades a request the
  deferred per-row FK checks cost more than the inserts; bench/README.md),
  so the database refuses the delete instead.
"""

from django.db import migrations

from controls.migration_helpers import append_only, drop_triggers, no_delete

APPEND_ONLY = ("registry_mark",)
NO_DELETE = ("registry_operator", "registry_asset")


def create(apps, editor):
    append_only(editor, *APPEND_ONLY)
    no_delete(editor, *NO_DELETE)


def drop(apps, editor):
    drop_triggers(editor, "append_only", *APPEND_ONLY)
    drop_triggers(editor, "no_delete", *NO_DELETE)


class Migration(migrations.Migration):
    dependencies = [("registry", "0002_jurisdictions"), ("controls", "0002_append_only")]

    operations = [migrations.RunPython(create, drop)]
