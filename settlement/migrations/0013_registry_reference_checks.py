"""The registry references of trades and obligations, checked once per
statement (issue 15, item 2, completed).

The schema diet (0009) took the foreign key constraints off the asset and
operator columns of trades and obligations (checked at commit one row at a
time, they were most of the intake's commit) and relied on the intake
resolving every code through the registry. The database now checks them
again, once per INSERT or COPY: the distinct values of the statement's new
rows probed in the registry (a handful of rows for thousands of new ones),
each column frozen afterwards, and assets and operators never deleted nor
renumbered (``key_kept``, also installed by custody 0010). What the
constraints guaranteed holds again.
"""

from django.db import migrations

from controls.migration_helpers import key_kept, references_check_columns, references_check_columns_drop

CHECKS = {
    "settlement_trade": [
        ("base_asset_id", "registry_asset"),
        ("quote_asset_id", "registry_asset"),
        ("buy_operator_id", "registry_operator"),
        ("sell_operator_id", "registry_operator"),
    ],
    "settlement_obligation": [
        ("asset_id", "registry_asset"),
        ("debtor_id", "registry_operator"),
        ("creditor_id", "registry_operator"),
        ("counterparty_id", "registry_operator"),
    ],
}


def create(apps, editor):
    key_kept(editor, "registry_asset", "registry_operator")
    for table, checks in CHECKS.items():
        references_check_columns(editor, table, "registry", checks)


def drop(apps, editor):
    # key_kept stays: custody's movements rely on it too
    for table, checks in CHECKS.items():
        references_check_columns_drop(editor, table, "registry", [column for column, _ in checks])


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0006_escrow_holders'),
        ('settlement', '0012_open_obligations_and_room_to_settle'),
    ]

    operations = [migrations.RunPython(create, drop)]
