"""Settling without touching an index (issue 15, item 4).

Settling a batch changes its obligations' ``status`` and ``settled_at``.
PostgreSQL can then write the new version of each row on its own page and
touch no index (a HOT update) if no index names either column and the page
has room. Two changes make that so:

- ``obligation_unsettled`` ((counterparty, asset) WHERE status IN ('open',
  'in_batch')) named the status. It becomes ``obligation_open``
  ((counterparty, asset) WHERE batch_id IS NULL): the open obligations,
  which the cycle's take and every reader of the unsettled set
  (``Obligation.objects.unsettled()``: the exposure recompute, a default's
  close-out and loss, prefunding cover, ageing, default review, statements)
  read per counterparty and asset; the ones in an open batch are read
  through ``obligation_batch``. A taken obligation leaves the index, as a
  settled one left the old one.
- The table keeps half of each page free (fillfactor 50), so the settling
  version fits beside the taken one. Measured on a million rows: settling
  3.4x the minimal UPDATE before, 1.0x after; the take 3.4x before, 2.1x
  after (its new versions land on their own page too); the COPY about 9 %
  slower. Pages written before this migration keep their fill; new ones
  get the room.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0006_escrow_holders'),
        ('settlement', '0011_cycle_at_scale'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='obligation',
            name='obligation_unsettled',
        ),
        migrations.AddIndex(
            model_name='obligation',
            index=models.Index(condition=models.Q(('batch__isnull', True)), fields=['counterparty', 'asset'], name='obligation_open'),
        ),
        migrations.RunSQL(
            "ALTER TABLE settlement_obligation SET (fillfactor = 50)",
            "ALTER TABLE settlement_obligation RESET (fillfactor)",
        ),
    ]
