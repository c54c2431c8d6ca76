"""Observed movements' references after custody migration 0010 (issue 15,
item 5): the registry references and the statement are checked once per
INSERT or COPY instead of by foreign key constraints checked row by row at
commit, and nothing is lost of what the constraints guaranteed: a movement
naming no such row is refused, naming the column; a referenced row is never
deleted nor renumbered; the columns never change afterwards. The leg, which
the matcher sets after insert, keeps its constraint. The movements are the
evidence that a leg was delivered (circular para 13)."""

from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from custody.models import BankStatement, Movement
from registry.models import BankAccount, Rail, Wallet

pytestmark = [pytest.mark.django_db, pytest.mark.para(13)]

AT = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
MISSING = 999_999_999
HOME, SG1, JP1 = ("0x" + c * 40 for c in "abc")


@pytest.fixture
def rows(network):
    """A chain movement and a bank movement naming every reference, and for
    each reference another row it could be changed to."""
    eth, bank = Rail.objects.get(code="eth"), Rail.objects.get(code="hkd-chats")
    home = Wallet.objects.create(operator=network.home, rail=eth, address=HOME)
    sg1 = Wallet.objects.create(operator=network.sg1, rail=eth, address=SG1)
    jp1 = Wallet.objects.create(operator=network.jp1, rail=eth, address=JP1)
    account = BankAccount.objects.create(operator=network.home, rail=bank, number="012-1", bank="HSBC")
    other_account = BankAccount.objects.create(operator=network.sg1, rail=bank, number="004-2", bank="SCB")
    statement, other_statement = (
        BankStatement.objects.create(
            account=account,
            statement_ref=ref,
            format="camt053",
            currency="HKD",
            content_hash=ref,
            imported_at=AT,
            imported_by="test",
        )
        for ref in ("S-1", "S-2")
    )
    chain = Movement.objects.create(
        source=Movement.Source.CHAIN,
        rail=eth,
        asset=network.usdc,
        amount=5,
        direction=Movement.Direction.INBOUND,
        counterparty=network.sg1,
        status=Movement.Status.SEEN,
        occurred_at=AT,
        seen_at=AT,
        chain_id=1,
        tx_hash="0x" + "1" * 64,
        log_index=0,
        block_number=7,
        block_hash="0x" + "2" * 64,
        token="0x" + "3" * 40,
        from_address=SG1,
        to_address=HOME,
        from_wallet=sg1,
        to_wallet=home,
    )
    bank_entry = Movement.objects.create(
        source=Movement.Source.BANK,
        rail=bank,
        asset=network.hkd,
        amount=100,
        direction=Movement.Direction.INBOUND,
        counterparty=network.sg1,
        status=Movement.Status.FINAL,
        occurred_at=AT,
        seen_at=AT,
        final_at=AT,
        statement=statement,
        account=account,
        side=Movement.Side.CREDIT,
        entry_ref="E-1",
    )
    others = {
        "rail_id": bank.id,
        "asset_id": network.eth.id,
        "counterparty_id": network.jp1.id,
        "from_wallet_id": jp1.id,
        "to_wallet_id": jp1.id,
        "account_id": other_account.id,
        "statement_id": other_statement.id,
    }
    return {"chain": chain, "bank": bank_entry, "others": others, "unused_wallet": jp1}


# column -> (referenced table, the movement that names it)
CHECKED = {
    "rail_id": ("registry_rail", "chain"),
    "asset_id": ("registry_asset", "chain"),
    "counterparty_id": ("registry_operator", "chain"),
    "from_wallet_id": ("registry_wallet", "chain"),
    "to_wallet_id": ("registry_wallet", "chain"),
    "account_id": ("registry_bankaccount", "bank"),
    "statement_id": ("custody_bankstatement", "bank"),
}


def copy_of(movement: Movement, **values) -> tuple[str, list]:
    """An INSERT of a copy of ``movement`` with ``values`` in place of its own."""
    columns = [f.column for f in Movement._meta.concrete_fields if f.column != "id"]
    chosen = ", ".join("%s" if c in values else c for c in columns)
    params = [values[c] for c in columns if c in values]
    sql = f"INSERT INTO custody_movement ({', '.join(columns)}) SELECT {chosen} FROM custody_movement WHERE id = %s"
    return sql, [*params, movement.id]


def sqlstate(error: Exception) -> str | None:
    return getattr(error.__cause__, "sqlstate", None)


@pytest.mark.parametrize("column", sorted(CHECKED))
def test_a_movement_naming_a_missing_row_is_refused_naming_the_column(rows, column):
    parent, kind = CHECKED[column]
    movement = rows[kind]
    key = {"tx_hash": "0x" + "9" * 64} if kind == "chain" else {"entry_ref": "E-ORPHAN"}
    sql, params = copy_of(movement, **{column: MISSING}, **key)
    with (
        pytest.raises(IntegrityError, match=rf"{column} {MISSING} is not a row of {parent}") as refused,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)
    assert sqlstate(refused.value) == "23503"  # foreign_key_violation
    assert Movement.objects.count() == 2


def test_the_watchers_copy_is_checked_too(rows):
    chain = rows["chain"]
    with (
        pytest.raises(IntegrityError, match=rf"to_wallet_id {MISSING} is not a row of registry_wallet"),
        transaction.atomic(),
        connection.cursor() as cursor,
        connection.wrap_database_errors,
    ):
        sql, params = copy_of(chain, tx_hash="0x" + "8" * 64)
        cursor.execute(sql, params)  # a good row first: the check covers every row of the statement
        with cursor.cursor.copy(
            "COPY custody_movement (source, rail_id, asset_id, amount, direction, status, "
            "occurred_at, seen_at, chain_id, tx_hash, log_index, to_wallet_id, from_address, "
            "to_address, block_hash, token, side, entry_ref, bank_reference, customer_reference, "
            "counterparty_account, details) FROM STDIN"
        ) as copy:
            for i, wallet in enumerate((chain.to_wallet_id, MISSING)):
                copy.write_row(
                    (
                        "chain",
                        chain.rail_id,
                        chain.asset_id,
                        1,
                        "inbound",
                        "seen",
                        AT,
                        AT,
                        1,
                        "0x" + "7" * 64,
                        i,
                        wallet,
                        SG1,
                        HOME,
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                    )
                )
    assert Movement.objects.count() == 2


REFERENCED = [
    # (table, column of the movement naming the row, message): deleted by
    # proposal when unused, so refused while a movement refers to the row
    ("registry_rail", "rail_id", "refers to it"),
    ("registry_wallet", "from_wallet_id", "refers to it"),
    ("registry_wallet", "to_wallet_id", "refers to it"),
    ("registry_bankaccount", "account_id", "refers to it"),
    # never deleted at all
    ("registry_asset", "asset_id", "never deleted nor renumbered"),
    ("registry_operator", "counterparty_id", "never deleted nor renumbered"),
    ("custody_bankstatement", "statement_id", "never deleted nor renumbered"),
]


@pytest.mark.parametrize(("table", "column", "message"), REFERENCED)
def test_a_row_a_movement_refers_to_is_never_deleted_nor_renumbered(rows, table, column, message):
    movement = rows[CHECKED[column][1]]
    parent_id = getattr(movement, column)
    for sql in (f"DELETE FROM {table} WHERE id = %s", f"UPDATE {table} SET id = id + 1000000 WHERE id = %s"):
        with (
            pytest.raises(DatabaseError, match=message),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [parent_id])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table} WHERE id = %s", [parent_id])
        assert cursor.fetchone() == (1,)


def test_a_wallet_no_movement_names_can_still_be_deleted(rows):
    # a registry record entered by mistake goes by four-eyes proposal
    # (registry/services/changes.py); only one in use is kept
    unused = rows["unused_wallet"]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM registry_wallet WHERE id = %s", [unused.id])
    assert not Wallet.objects.filter(pk=unused.pk).exists()


@pytest.mark.parametrize("column", sorted(CHECKED))
def test_a_checked_reference_never_changes(rows, column):
    movement = rows[CHECKED[column][1]]
    before = getattr(movement, column)
    with pytest.raises(IntegrityError, match=f"{column} never changes") as refused, transaction.atomic():
        Movement.objects.filter(pk=movement.pk).update(**{column: rows["others"][column]})
    assert sqlstate(refused.value) == "23503"
    movement.refresh_from_db()
    assert getattr(movement, column) == before


def test_the_leg_keeps_its_foreign_key_constraint():
    # the matcher links and a reorg unlinks after insert: checked by PostgreSQL as a constraint
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
            "WHERE c.conrelid = 'custody_movement'::regclass AND c.contype = 'f'"
        )
        assert [name for (name,) in cursor.fetchall()] == ["leg_id"]
