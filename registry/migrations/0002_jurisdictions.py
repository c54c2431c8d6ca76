"""Seed the jurisdictions from registry/data/jurisdictions.toml.

Uses the historical model only (no service code), so later model changes
cannot break this migration. It reads the data file as it is when the
migration runs: a fresh database gets the lists current at that time.
Later list changes are loaded with ``manage.py load_jurisdictions``.
"""

import tomllib
from pathlib import Path

from django.db import migrations

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "jurisdictions.toml"
FACTS = (
    "name",
    "fatf_member",
    "fatf_suspended",
    "fsrb_bodies",
    "iosco_aligned",
    "call_for_action",
    "increased_monitoring",
)


def load_jurisdictions(apps, schema_editor):
    Jurisdiction = apps.get_model("registry", "Jurisdiction")
    manager = Jurisdiction.objects.using(schema_editor.connection.alias)
    data = tomllib.loads(DATA_FILE.read_text(encoding="utf-8"))
    for row in data["jurisdiction"]:
        defaults = {key: row[key] for key in FACTS if key in row}
        defaults["lists_as_of"] = row.get("lists_as_of", data["as_of"])
        manager.update_or_create(code=row["code"], defaults=defaults)


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [migrations.RunPython(load_jurisdictions, migrations.RunPython.noop, elidable=False)]
