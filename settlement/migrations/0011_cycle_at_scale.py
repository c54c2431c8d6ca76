"""A cycle at a million obligations (issue 15, item 4).

- ``obligation.executed_at``: the trade's execution time, written by the
  intake with the obligation. Neither copy can change afterwards (a
  ``frozen`` trigger on each), so they cannot drift apart. The cycle's take reads
  it on the obligation, so taking a million obligations is one UPDATE over
  the obligation table, with no join to trades (which PostgreSQL misjudged
  by 50x and answered with a million index look-ups).
- ``obligation.batch_id`` loses its deferred foreign key constraint: at the
  commit of a cycle it checked each taken obligation's batch with one query
  and one row lock, a million of them (15 s of a 41 s cycle). The batch is
  written only by the take, from the batch rows it joins in the same
  statement (``cycles._take``), and set back to NULL when the obligation
  leaves the batch; batches are never deleted nor renumbered (``key_kept``),
  so what the constraint guaranteed still holds.
- No batch item per obligation taken: which batch an obligation is in, or
  settled with, is its ``batch_id``; a ``BatchItem`` is written only when
  it leaves a batch unsettled (a fail, a close-out), so every batch it was
  ever in is still on record. ``batch.obligations_taken`` keeps the count
  the items gave (filled here from the items of the batches so far).
"""

import django.db.models.deletion
from django.db import migrations, models

from controls.migration_helpers import drop_triggers, frozen, frozen_drop, key_kept


def backfill(apps, editor):
    editor.execute(
        "UPDATE settlement_obligation o SET executed_at = t.executed_at FROM settlement_trade t WHERE t.id = o.trade_id"
    )


def taken(apps, editor):
    editor.execute(
        "UPDATE settlement_batch b SET obligations_taken = i.n "
        "FROM (SELECT batch_id, count(*) AS n FROM settlement_batchitem GROUP BY batch_id) i WHERE i.batch_id = b.id"
    )


FROZEN = (("settlement_trade", "executed_at"), ("settlement_obligation", "executed_at"))


def kept(apps, editor):
    key_kept(editor, "settlement_batch")
    for table, column in FROZEN:
        frozen(editor, table, column)


def unkept(apps, editor):
    drop_triggers(editor, "key_kept", "settlement_batch")
    for table, column in FROZEN:
        frozen_drop(editor, table, column)


class Migration(migrations.Migration):

    dependencies = [
        ('settlement', '0010_escrow_locked_legs'),
    ]

    operations = [
        migrations.AddField(
            model_name='obligation',
            name='executed_at',
            field=models.DateTimeField(null=True, help_text="the trade's execution time (trades never change)"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='obligation',
            name='executed_at',
            field=models.DateTimeField(help_text="the trade's execution time (trades never change)"),
        ),
        migrations.AlterField(
            model_name='obligation',
            name='batch',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='obligations', to='settlement.batch'),
        ),
        migrations.AddField(
            model_name='batch',
            name='obligations_taken',
            field=models.PositiveIntegerField(default=0, help_text='how many obligations the cycle took into it'),
        ),
        migrations.RunPython(taken, migrations.RunPython.noop),
        migrations.RunPython(kept, unkept),
    ]
