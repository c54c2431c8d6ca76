"""Schema diet on observed movements (issue 15, items 2 and 5): the watcher
and the statement import write every index of custody_movement for every
row, and the matcher's links rewrite them. Fifteen indexes become seven, each
read by a query:

- primary key (id): links, breaks, evidence (``id = ANY(...)``).
- movement_unique_chain_key, movement_unique_bank_entry: idempotency (one row
  per chain id + tx hash + log index, per account + entry reference); the
  watcher's look-up of what it already stored (``chain_id = %s AND tx_hash IN
  (...)``), the statement import's (``account_id = %s AND entry_ref IN
  (...)``), a bank account's books (``books_balance``: ``source = 'bank' AND
  account_id = %s``).
- movement_unlinked (asset_id, counterparty_id, direction, amount) WHERE
  leg_id IS NULL: what the matcher may still link (the one-to-one pairing
  probes it per leg by all four columns; the candidates of a leg, missing
  deliveries and unmatched receipts by the first three); a linked
  movement (the bulk, over time) drops out. Replaces (status, direction,
  asset_id, counterparty_id) over every row.
- movement_leg (leg_id) WHERE leg_id IS NOT NULL: a leg's movements
  (``leg_id = %s``, the matcher's ``NOT EXISTS (... x.leg_id = l.id)``,
  finalising legs). Replaces two identical indexes over every row (the
  foreign key's and an explicit one), which new, unlinked movements also
  wrote.
- movement_chain_block (rail_id, status, block_number) WHERE source =
  'chain': the finality pass (``status = 'seen' AND block_number <= %s``)
  and the reorg walk-back (``block_number > %s``); bank entries skip it.
- movement_statement (statement_id) WHERE statement_id IS NOT NULL: a
  statement's lines; chain transfers skip it.

Dropped: tx_hash alone (every look-up by hash names the chain too, and the
admin's search is ``icontains``), and the foreign keys' own indexes on
rail_id, asset_id, counterparty_id, from_wallet_id, to_wallet_id and
account_id: a handful of each, so a filter on one alone reads the table.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('custody', '0006_batch_disputed_break'),
        ('registry', '0004_designated_custodian_accounts'),
        ('settlement', '0009_schema_diet'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='movement',
            name='custody_mov_status_a79083_idx',
        ),
        migrations.RemoveIndex(
            model_name='movement',
            name='custody_mov_rail_id_80f821_idx',
        ),
        migrations.RemoveIndex(
            model_name='movement',
            name='custody_mov_leg_id_bd7ff6_idx',
        ),
        migrations.RemoveIndex(
            model_name='movement',
            name='custody_mov_tx_hash_90bdb0_idx',
        ),
        migrations.AlterField(
            model_name='movement',
            name='account',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.bankaccount'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='asset',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.asset'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='counterparty',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.operator'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='from_wallet',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.wallet'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='leg',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='movements', to='settlement.leg'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='rail',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='movements', to='registry.rail'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='statement',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='lines', to='custody.bankstatement'),
        ),
        migrations.AlterField(
            model_name='movement',
            name='to_wallet',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.wallet'),
        ),
        migrations.AddIndex(
            model_name='movement',
            index=models.Index(condition=models.Q(('leg__isnull', True)), fields=['asset', 'counterparty', 'direction', 'amount'], name='movement_unlinked'),
        ),
        migrations.AddIndex(
            model_name='movement',
            index=models.Index(condition=models.Q(('leg__isnull', False)), fields=['leg'], name='movement_leg'),
        ),
        migrations.AddIndex(
            model_name='movement',
            index=models.Index(condition=models.Q(('source', 'chain')), fields=['rail', 'status', 'block_number'], name='movement_chain_block'),
        ),
        migrations.AddIndex(
            model_name='movement',
            index=models.Index(condition=models.Q(('statement__isnull', False)), fields=['statement'], name='movement_statement'),
        ),
    ]
