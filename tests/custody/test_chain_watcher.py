"""The EVM watcher against web3's in-process EthereumTesterProvider (short chains)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from controls.models import Alert
from custody.models import Break, ChainCursor, Movement
from custody.services.chain import chain_poll
from registry.models import Rail

from .chain import TETH, TUSD, in_process_web3, setup_chain

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(network):
    return setup_chain(in_process_web3(), network)


@pytest.mark.para(13)
def test_token_and_native_transfers_are_stored_once_and_become_final_at_the_confirmation_depth(chain):
    chain.mint(chain.sg1, 1000 * TUSD)
    tx_in = chain.transfer(chain.sg1, chain.home, 250 * TUSD)
    tx_out = chain.send(chain.home, chain.sg1, TETH // 2)
    chain.mint(chain.stranger, 5 * TUSD)  # nothing to do with any registered wallet

    first = chain.poll()
    again = chain.poll()

    moves = {(m.tx_hash, m.log_index): m for m in Movement.objects.all()}
    inbound = moves[(tx_in, 0)]
    native = moves[(tx_out, -1)]
    fee = moves[(tx_out, -2)]
    assert (inbound.direction, inbound.asset.code, inbound.amount, inbound.counterparty.code) == (
        "inbound",
        "TUSD",
        Decimal(250),
        "SG1",
    )
    assert (native.direction, native.asset.code, native.amount, native.counterparty.code) == (
        "outbound",
        "TETH",
        Decimal("0.5"),
        "SG1",
    )
    assert fee.direction == "fee" and fee.amount > 0 and fee.from_wallet.address == chain.home.lower()
    assert Movement.objects.filter(direction="external").count() == 1  # the mint to SG1's wallet
    assert not Movement.objects.filter(to_address=chain.stranger.lower()).exists()
    assert (first.new, again.new) == (4, 0)
    assert set(Movement.objects.values_list("status", flat=True)) <= {"seen", "final"}
    # confirmations 3: the block holding a transfer counts as one
    assert Movement.objects.get(pk=inbound.pk).status == "final"  # 2 blocks on top of it
    assert Movement.objects.get(pk=native.pk).status == "seen"  # 1 block on top

    chain.mine(1)
    chain.poll()

    assert Movement.objects.get(pk=native.pk).status == "final"
    assert Movement.objects.get(pk=fee.pk).status == "final"


def test_the_natural_key_holds_when_eth_tester_numbers_logs_per_transaction(chain):
    chain.mint(chain.sg1, 100 * TUSD)
    chain.mint(chain.jp1, 100 * TUSD)
    tester = chain.w3.provider.ethereum_tester
    tester.disable_auto_mine_transactions()
    try:  # two transactions in one block: eth-tester gives each log index 0
        first = chain.token.functions.transfer(chain.home, 1 * TUSD).transact({"from": chain.sg1})
        second = chain.token.functions.transfer(chain.home, 2 * TUSD).transact({"from": chain.jp1})
        chain.mine(1)
    finally:
        tester.enable_auto_mine_transactions()
    batch = chain.batch_transfer(chain.sg1, [chain.home, chain.home], [3 * TUSD, 4 * TUSD])

    chain.poll()

    same_block = Movement.objects.filter(tx_hash__in=["0x" + bytes(first).hex(), "0x" + bytes(second).hex()])
    assert sorted(same_block.values_list("log_index", "amount")) == [(0, Decimal(1)), (0, Decimal(2))]
    assert len(set(same_block.values_list("block_number", flat=True))) == 1
    assert sorted(Movement.objects.filter(tx_hash=batch).values_list("log_index", "amount")) == [
        (0, Decimal(3)),
        (1, Decimal(4)),
    ]


@pytest.mark.para(13)
def test_a_reorg_before_finality_un_sees_the_transfer_and_raises_a_break(chain):
    chain.mint(chain.sg1, 100 * TUSD)
    snapshot = chain.w3.testing.snapshot()
    tx = chain.transfer(chain.sg1, chain.home, 40 * TUSD)
    chain.poll()
    seen = Movement.objects.get(tx_hash=tx)
    assert seen.status == "seen"

    chain.w3.testing.revert(snapshot)  # the block with the transfer is gone ...
    chain.mine(2)  # ... and a longer chain without it takes its place
    result = chain.poll()

    seen.refresh_from_db()
    assert (seen.status, result.reorged) == ("reorged", 1)
    brk = Break.objects.get(kind="reorged")
    assert (brk.amount, brk.status, brk.counterparty.code) == (Decimal(40), "open", "SG1")
    cursor = ChainCursor.objects.get(rail=chain.rail)
    assert (cursor.block_number, cursor.block_hash) == (
        chain.head,
        "0x" + bytes(chain.w3.eth.get_block("latest")["hash"]).hex(),
    )
    chain.mine(3)
    chain.poll()
    assert Movement.objects.get(pk=seen.pk).status == "reorged"  # never final: it is not on the chain


def test_the_watcher_resumes_from_its_cursor_after_a_restart(chain):
    chain.mint(chain.sg1, 10 * TUSD)
    first = chain.poll()
    chain.transfer(chain.sg1, chain.home, 1 * TUSD)

    # a new process: a new client, the same database
    chain.w3 = chain.w3  # the node is the same; only the cursor carries state
    second = chain.poll()

    assert second.scanned_from == first.scanned_to + 1
    assert second.new == 1
    assert Movement.objects.count() == 2


def test_a_long_range_is_scanned_in_chunks(chain, settings):
    settings.CUSTODY_WATCHER_CHUNK_BLOCKS = 2
    chain.mint(chain.sg1, 10 * TUSD)
    for n in range(1, 5):
        chain.transfer(chain.sg1, chain.home, n * TUSD)

    result = chain.poll()

    assert result.new == 5
    assert ChainCursor.objects.get(rail=chain.rail).block_number == chain.head


@pytest.mark.para(13)
def test_no_new_block_for_the_configured_time_degrades_the_rail_and_it_recovers_by_itself(chain, settings):
    settings.CUSTODY_WATCHER_STALE_SECONDS = 120
    t0 = timezone.now()
    chain.poll(now=t0)

    stale = chain.poll(now=t0 + timedelta(seconds=121))

    rail = Rail.objects.get(pk=chain.rail.pk)
    assert (stale.status, rail.status) == ("degraded", "degraded")
    assert rail.status_reason.startswith("watcher: no new block for 121 s")
    assert Alert.objects.filter(kind="rail_degraded").count() == 1

    chain.mine(1)
    back = chain.poll(now=t0 + timedelta(seconds=130))

    assert back.status == "up"
    assert Rail.objects.get(pk=chain.rail.pk).status == "up"


@pytest.mark.para(13)
def test_persistent_rpc_errors_degrade_the_rail_and_a_good_poll_recovers_it(chain, settings):
    settings.CUSTODY_WATCHER_ERROR_LIMIT = 3
    Rail.objects.filter(pk=chain.rail.pk).update(rpc_url="http://127.0.0.1:9")  # nothing listens there
    now = timezone.now()

    results = [chain_poll(rail_code="tchain", now=now) for _ in range(3)]

    assert all(r.error for r in results)
    assert [r.status for r in results] == ["up", "up", "degraded"]
    assert "3 failed polls in a row" in Rail.objects.get(pk=chain.rail.pk).status_reason
    assert ChainCursor.objects.get(rail=chain.rail).error_count == 3

    recovered = chain.poll(now=now + timedelta(seconds=5))

    assert (recovered.error, recovered.status) == ("", "up")
    assert ChainCursor.objects.get(rail=chain.rail).error_count == 0


@pytest.mark.para(13)
def test_a_status_set_by_operations_is_left_alone(chain, settings):
    settings.CUSTODY_WATCHER_STALE_SECONDS = 60
    Rail.objects.filter(pk=chain.rail.pk).update(status="halted", status_reason="ops: custodian incident")
    t0 = timezone.now()
    chain.poll(now=t0)
    chain.poll(now=t0 + timedelta(minutes=5))

    rail = Rail.objects.get(pk=chain.rail.pk)
    assert (rail.status, rail.status_reason) == ("halted", "ops: custodian incident")


def test_a_node_on_another_chain_is_refused(chain):
    Rail.objects.filter(pk=chain.rail.pk).update(chain_id=1)

    result = chain.poll()

    assert "is chain" in result.error and "rail tchain is chain 1" in result.error
    assert not Movement.objects.exists()
