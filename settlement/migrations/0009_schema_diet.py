"""Schema diet (issue 15, item 2): every index on trades and obligations
earns its place by a query that reads it; the rest go, because the intake
writes every one of them for every row (bench/README.md, "Schema diet").

Kept or added, and the query each serves:

settlement_trade
- primary key (id): obligations, compliance exceptions, hold events point
  at it; the references check below.
- trade_unique_trade_id (trade_id): idempotency, the intake's
  ``ON CONFLICT (trade_id)`` and its stored-hash look-up
  (``trade_id = ANY(%s)``), the API's ``?trade_id=`` filters. Was
  ``unique=True``, which also built a ``varchar_pattern_ops`` copy for
  ``LIKE 'x%'`` that no query runs (admin search is ``icontains``).
- executed_at: the admin list (``ORDER BY executed_at DESC, id DESC``), the
  records export's time range, the cycle's cut-off (``executed_at <= as_of``).

settlement_obligation
- primary key (id): batch items, the API list's cursor (``ORDER BY id DESC``).
- obligation_unique_trade_asset (trade_id, asset_id): one obligation per
  trade and asset; an obligation's trade (``trade_id = %s``; the prefunding
  consumption's join on ``o.trade_id = e.trade_id``).
- obligation_batch (batch_id) WHERE batch_id IS NOT NULL: a batch's
  obligations (netting, settling, failing, prefunding consumption,
  ``batch_id = %s``); the intake stores open obligations, which it skips.
- obligation_unsettled (counterparty_id, asset_id) WHERE status IN (open,
  in_batch): the exposure recompute, a default's close-out
  (``counterparty_id = %s AND status IN (...)``), cover's outbound sums,
  ageing and the cycle's take (``status = 'open'``). Replaces
  (counterparty_id, status, asset_id), which also kept every settled row.

Dropped: on trades base_asset_id, quote_asset_id, buy_operator_id,
sell_operator_id (a handful of operators and assets: each value matches a
large share of the rows, so a filter on one reads the table), ingest_id (the
intake now numbers its trades itself instead of reading them back), the
pattern copy of trade_id; on obligations asset_id, counterparty_id,
creditor_id, debtor_id (same reason), trade_id (the unique pair leads with
it), batch_id over every row (replaced by the partial one).

Foreign keys: obligation.trade_id and trade.ingest_id were constraints, each
checked at commit with one query and one row lock per inserted row (the
larger part of the intake's commit). They become ``references_check``: one
anti-join per statement over its new rows, the column frozen afterwards, and
the referenced rows (trades, trade ingests) never deleted nor renumbered
(``key_kept``). What the constraint guaranteed still holds.
"""

import django.db.models.deletion
from django.db import migrations, models

from controls.migration_helpers import drop_triggers, key_kept, references_check, references_check_drop

CHECKED = (("settlement_obligation", "trade_id", "settlement_trade"), ("settlement_trade", "ingest_id", "settlement_tradeingest"))
KEPT = ("settlement_trade", "settlement_tradeingest")


def create(apps, editor):
    key_kept(editor, *KEPT)
    for table, column, parent in CHECKED:
        references_check(editor, table, column, parent)


def drop(apps, editor):
    drop_triggers(editor, "key_kept", *KEPT)
    for table, column, _ in CHECKED:
        references_check_drop(editor, table, column)


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0004_designated_custodian_accounts'),
        ('settlement', '0008_settlement_statements'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='obligation',
            name='settlement__counter_af197b_idx',
        ),
        migrations.AlterField(
            model_name='obligation',
            name='asset',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.asset'),
        ),
        migrations.AlterField(
            model_name='obligation',
            name='batch',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='obligations', to='settlement.batch'),
        ),
        migrations.AlterField(
            model_name='obligation',
            name='counterparty',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='obligations', to='registry.operator'),
        ),
        migrations.AlterField(
            model_name='obligation',
            name='creditor',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.operator'),
        ),
        migrations.AlterField(
            model_name='obligation',
            name='debtor',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.operator'),
        ),
        migrations.AlterField(
            model_name='obligation',
            name='trade',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='obligations', to='settlement.trade'),
        ),
        migrations.AlterField(
            model_name='trade',
            name='base_asset',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.asset'),
        ),
        migrations.AlterField(
            model_name='trade',
            name='buy_operator',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.operator'),
        ),
        migrations.AlterField(
            model_name='trade',
            name='ingest',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='trades', to='settlement.tradeingest'),
        ),
        migrations.AlterField(
            model_name='trade',
            name='quote_asset',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.asset'),
        ),
        migrations.AlterField(
            model_name='trade',
            name='sell_operator',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='registry.operator'),
        ),
        migrations.AlterField(
            model_name='trade',
            name='trade_id',
            field=models.CharField(max_length=64),
        ),
        migrations.AddIndex(
            model_name='obligation',
            index=models.Index(condition=models.Q(('batch__isnull', False)), fields=['batch'], name='obligation_batch'),
        ),
        migrations.AddIndex(
            model_name='obligation',
            index=models.Index(condition=models.Q(('status__in', ['open', 'in_batch'])), fields=['counterparty', 'asset'], name='obligation_unsettled'),
        ),
        migrations.AddConstraint(
            model_name='trade',
            constraint=models.UniqueConstraint(fields=('trade_id',), name='trade_unique_trade_id'),
        ),
        migrations.RunPython(create, drop),
    ]
