"""Which batches an obligation was in. The batch that holds or settled it is
``obligation.batch_id``; each batch it left unsettled (the batch failed and
sent it back to open, or a default closed it out) is a ``BatchItem``, written
here as it leaves. A cycle at a million obligations writes no row per
obligation besides the obligation's own (issue 15, item 4)."""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from settlement.models import BatchItem, Obligation


def batch_leaving(obligations: QuerySet[Obligation]) -> int:
    """Record the batch each of ``obligations`` is in before it leaves it:
    call in the transaction that clears ``batch_id``, before clearing it.
    One INSERT ... SELECT; returns the rows written."""
    sql, params = obligations.filter(batch__isnull=False).values("batch_id", "id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {BatchItem._meta.db_table} (batch_id, obligation_id) {sql}", params)
        return cursor.rowcount
