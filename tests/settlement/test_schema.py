"""The trade and obligation tables after the schema diet (issue 15, item 2;
settlement migration 0005): only the indexes a query reads, and the two
references that were foreign key constraints checked once per statement
instead, with nothing lost of what the constraints guaranteed. Every trade
and its obligations stay on record (circular para 22)."""

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from settlement.models import Obligation, Trade, TradeIngest
from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = [pytest.mark.django_db, pytest.mark.para(22)]

# the queries each one serves are named in settlement/migrations/0009_schema_diet.py
EXPECTED_INDEXES = {
    "settlement_trade": {
        "btree (id)",
        "btree (trade_id)",
        "btree (executed_at)",
    },
    "settlement_obligation": {
        "btree (id)",
        "btree (trade_id, asset_id)",
        "btree (batch_id) WHERE (batch_id IS NOT NULL)",
        "btree (counterparty_id, asset_id) WHERE (batch_id IS NULL)",
    },
}


def indexes(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return {definition.split(" USING ", 1)[1] for (definition,) in cursor.fetchall()}


@pytest.mark.parametrize("table", sorted(EXPECTED_INDEXES))
def test_the_intake_writes_only_the_indexes_a_query_reads(table):
    assert indexes(table) == EXPECTED_INDEXES[table]


def stored(network) -> Obligation:
    trades_ingest(items=[trade(trade_id="SCHEMA-1")], actor="engine")
    return Obligation.objects.filter(trade__trade_id="SCHEMA-1").first()


def test_an_obligation_of_no_trade_is_refused(network):
    obligation = stored(network)
    with (
        pytest.raises(IntegrityError, match=r"trade_id 999999999 is not a row of settlement_trade"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO settlement_obligation (trade_id, debtor_id, creditor_id, counterparty_id, direction, "
            "asset_id, amount, status, fail_count, created_at, executed_at) SELECT 999999999, debtor_id, creditor_id, "
            "counterparty_id, direction, asset_id, amount, status, fail_count, created_at, executed_at "
            "FROM settlement_obligation WHERE id = %s",
            [obligation.id],
        )


def test_a_trade_of_no_ingest_is_refused(network):
    with (
        pytest.raises(IntegrityError, match=r"ingest_id 999999999 is not a row of settlement_tradeingest"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO settlement_trade (trade_id, base_asset_id, quote_asset_id, price, quantity, quote_amount, "
            "buy_operator_id, buy_account, sell_operator_id, sell_account, executed_at, received_at, is_cross, "
            "content_hash, ingest_id) VALUES ('ORPHAN', %s, %s, 1, 1, 1, %s, 'a', %s, 'b', now(), now(), true, "
            "'h', 999999999)",
            [network.btc.id, network.hkd.id, network.home.id, network.sg1.id],
        )
    assert not Trade.objects.filter(trade_id="ORPHAN").exists()


def test_an_obligation_never_moves_to_another_trade(network):
    obligation = stored(network)
    trades_ingest(items=[trade(trade_id="SCHEMA-2")], actor="engine")
    other = Trade.objects.get(trade_id="SCHEMA-2")
    with pytest.raises(IntegrityError, match="trade_id never changes"), transaction.atomic():
        Obligation.objects.filter(pk=obligation.pk).update(trade=other)
    obligation.refresh_from_db()
    assert obligation.trade.trade_id == "SCHEMA-1"


@pytest.mark.parametrize("model", [Trade, TradeIngest])
def test_trades_and_their_ingests_are_never_deleted_nor_renumbered(network, model):
    stored(network)
    row = model.objects.order_by("id").first()
    with pytest.raises(DatabaseError, match="never deleted nor renumbered"), transaction.atomic():
        model.objects.filter(pk=row.pk).update(id=row.pk + 1_000_000)
    with (
        pytest.raises(DatabaseError, match="never deleted nor renumbered"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE id = %s", [row.pk])
    assert model.objects.filter(pk=row.pk).exists()


def test_an_obligation_carries_its_trades_execution_time(network):
    """The cycle's take reads it there instead of joining trades (issue 15, item 4)."""
    obligation = stored(network)
    assert obligation.executed_at == obligation.trade.executed_at


@pytest.mark.para(13)
def test_a_batch_obligations_name_is_never_deleted_nor_renumbered(network):
    """``obligation.batch_id`` has no constraint (a million checks at a
    cycle's commit): the take writes it from the batch rows it joins, and
    the batch rows stay (settlement migration 0011)."""
    from datetime import timedelta

    from django.utils import timezone

    from settlement.models import Batch
    from settlement.services.cycles import cycle_run

    obligation = stored(network)
    cycle_run(kind="intraday", as_of=timezone.now() + timedelta(seconds=1), actor="test")
    obligation.refresh_from_db()
    batch = Batch.objects.get()
    assert obligation.batch_id == batch.id and batch.obligations_taken == 2
    with pytest.raises(DatabaseError, match="never deleted nor renumbered"), transaction.atomic():
        Batch.objects.filter(pk=batch.pk).update(id=batch.pk + 1_000_000)
    with (
        pytest.raises(DatabaseError, match="never deleted nor renumbered"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM settlement_batch WHERE id = %s", [batch.pk])
    assert Batch.objects.filter(pk=batch.pk).exists()


@pytest.mark.parametrize("model", [Trade, Obligation])
def test_an_execution_time_never_changes(network, model):
    """The trade's and its obligations' copies cannot drift apart."""
    stored(network)
    row = model.objects.order_by("id").first()
    with pytest.raises(IntegrityError, match="executed_at never changes"), transaction.atomic():
        model.objects.filter(pk=row.pk).update(executed_at=row.executed_at.replace(year=2020))


def test_obligation_pages_keep_room_for_the_settling_version():
    """fillfactor 50 (settlement migration 0012): with no index naming the
    status, settling rewrites each obligation on its own page, no index touched."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'settlement_obligation'")
        assert cursor.fetchone()[0] == ["fillfactor=50"]


@pytest.mark.parametrize(
    ("table", "column", "parent"),
    [
        ("settlement_trade", "base_asset_id", "registry_asset"),
        ("settlement_trade", "sell_operator_id", "registry_operator"),
        ("settlement_obligation", "asset_id", "registry_asset"),
        ("settlement_obligation", "counterparty_id", "registry_operator"),
    ],
)
def test_a_row_naming_no_registry_record_is_refused(network, table, column, parent):
    """Checked once per statement (settlement migration 0013), as the
    constraint did row by row."""
    stored(network)
    model = {"settlement_trade": Trade, "settlement_obligation": Obligation}[table]
    columns = [f.column for f in model._meta.concrete_fields if f.column != "id"]
    if table == "settlement_trade":
        replaced = {"trade_id": "'ORPHAN-REF'", column: "999999999"}
    else:  # an obligation of a trade that has none (home-internal), naming no registry record
        trades_ingest(items=[trade(trade_id="INTERNAL", buy=("HK1", "a"), sell=("HK1", "b"))], actor="engine")
        internal = Trade.objects.get(trade_id="INTERNAL")
        replaced = {"trade_id": str(internal.id), column: "999999999"}
    selected = ", ".join(replaced.get(c, c) for c in columns)
    with (
        pytest.raises(IntegrityError, match=rf"{column} 999999999 is not a row of {parent}"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {selected} FROM {table} ORDER BY id LIMIT 1")


def test_a_registry_reference_never_changes(network):
    obligation = stored(network)
    with pytest.raises(IntegrityError, match="counterparty_id never changes"), transaction.atomic():
        Obligation.objects.filter(pk=obligation.pk).update(counterparty=network.jp1)
