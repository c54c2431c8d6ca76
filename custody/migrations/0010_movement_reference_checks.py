"""Movement references checked once per statement (issue 15, item 5): the
chain watcher stores thousands of movements in one INSERT, and each foreign
key constraint on custody_movement was checked at commit with one query and
one row lock per new row (a poll of 10,000 transfers spent about as long in
the commit as in the INSERT; bench/README.md, "Reconciliation and the
watcher"). The columns below never change once the row is inserted, so each
becomes ``references_check`` (as settlement migration 0009 did for
obligation.trade_id and trade.ingest_id): one anti-join over the statement's
new rows, ``foreign_key_violation`` naming the column when one names no
parent row, and the column frozen afterwards (an UPDATE that changes it
raises). The referenced side is kept by a trigger on the parent.

Per column, why the check is where it is:

- rail_id -> registry_rail: written once by the watcher or the statement
  import, never updated (grep: no UPDATE of rail_id in custody/ or
  settlement/). A rail no record uses may be deleted by four-eyes proposal
  (registry/services/changes.py), so the parent keeps ``references_kept``:
  DELETE or renumbering is refused while a movement names the rail, what the
  constraint's NO ACTION refused; an unused rail can still go.
- asset_id -> registry_asset: never updated. Assets are never deleted
  (registry 0003 ``no_delete``); ``key_kept`` is added here, which also
  refuses renumbering (registry 0003 refused the DELETE only).
- counterparty_id -> registry_operator: set at insert from the wallets or the
  statement entry's account, never updated (the matcher pairs by it, it does
  not write it). Operators are never deleted (registry 0003); ``key_kept``
  added as for assets.
- from_wallet_id, to_wallet_id -> registry_wallet: the registered wallets a
  transfer came from and went to, set at insert, never updated; a reorged
  transfer included again keeps them (``_revive`` rewrites status, block and
  times only). Wallets not in use may be deleted by proposal:
  ``references_kept`` on both columns.
- account_id -> registry_bankaccount: the statement's account, never
  updated; accounts not in use may be deleted by proposal:
  ``references_kept``.
- statement_id -> custody_bankstatement: the statement that first booked the
  entry, set in the same transaction that creates the statement, never
  updated. Statements are never deleted (read-only in the admin, no service
  deletes one): ``key_kept``.

Kept as a database constraint: leg_id -> settlement_leg. The matcher sets it
after insert (custody/services/reconcile/links.py and escrow.py, one UPDATE
per run) and a reorg clears it (custody/services/chain/reorg.py), so it is
not frozen and a statement-level insert check would not cover it; its
constraint costs a new, unlinked movement only the deferred check of a NULL.
"""

import django.db.models.deletion
from django.db import migrations, models

from controls.migration_helpers import (
    drop_triggers,
    key_kept,
    references_check,
    references_check_drop,
    references_kept,
    references_kept_drop,
)

TABLE = "custody_movement"
CHECKED = (
    ("rail_id", "registry_rail"),
    ("asset_id", "registry_asset"),
    ("counterparty_id", "registry_operator"),
    ("from_wallet_id", "registry_wallet"),
    ("to_wallet_id", "registry_wallet"),
    ("account_id", "registry_bankaccount"),
    ("statement_id", "custody_bankstatement"),
)
# never deleted: key_kept (DELETE and renumbering refused outright)
KEPT = ("registry_asset", "registry_operator", "custody_bankstatement")
# deleted by proposal when unused: refused only while a movement refers to the row
REFERENCED = (
    ("registry_rail", ("rail_id",)),
    ("registry_wallet", ("from_wallet_id", "to_wallet_id")),
    ("registry_bankaccount", ("account_id",)),
)


def create(apps, editor):
    key_kept(editor, *KEPT)
    for parent, columns in REFERENCED:
        references_kept(editor, parent, TABLE, *columns)
    for column, parent in CHECKED:
        references_check(editor, TABLE, column, parent)


def drop(apps, editor):
    for column, _ in CHECKED:
        references_check_drop(editor, TABLE, column)
    for parent, _ in REFERENCED:
        references_kept_drop(editor, parent, TABLE)
    drop_triggers(editor, "key_kept", *KEPT)


class Migration(migrations.Migration):

    dependencies = [
        ('custody', '0009_escrow_instructions'),
        ('registry', '0006_escrow_holders'),
    ]

    operations = [
        migrations.AlterField(
            model_name='movement',
            name='account',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.bankaccount'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='asset',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.asset'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='counterparty',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.operator'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='from_wallet',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.wallet'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='rail',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='movements', to='registry.rail'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='statement',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='lines', to='custody.bankstatement'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='to_wallet',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.wallet'),
        ),
        migrations.RunPython(create, drop),
    ]
