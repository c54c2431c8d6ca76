"""The watcher against a real node: anvil (npm @foundry-rs/anvil), through its
HTTP JSON-RPC like production. Skipped with a reason when anvil is missing."""

import pytest
from django.utils import timezone

from custody.models import ChainBlock, ChainCursor, Movement
from custody.services.chain import chain_poll

from .chain import TUSD, Anvil, requires_anvil, setup_chain

pytestmark = [pytest.mark.django_db, requires_anvil]


@pytest.fixture(scope="module")
def anvil():
    node = Anvil()
    yield node
    node.stop()


@pytest.fixture
def chain(anvil, network):
    chain = setup_chain(anvil.web3(), network, real_node=True, rpc_url=anvil.url)
    chain.mint(chain.sg1, 1000 * TUSD)
    chain.mint(chain.jp1, 1000 * TUSD)
    return chain


def poll(chain):
    return chain_poll(rail_code=chain.rail.code, now=timezone.now())  # the rail's rpc_url, as in production


def test_a_real_node_numbers_logs_per_block_and_the_key_still_holds(chain):
    w3 = chain.w3
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        first = chain.token.functions.transfer(chain.home, 1 * TUSD).transact({"from": chain.sg1})
        second = chain.token.functions.transfer(chain.home, 2 * TUSD).transact({"from": chain.jp1})
        w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    batch = chain.batch_transfer(chain.sg1, [chain.home, chain.home], [3 * TUSD, 4 * TUSD])

    result = poll(chain)

    same_block = Movement.objects.filter(tx_hash__in=["0x" + bytes(first).hex(), "0x" + bytes(second).hex()])
    assert sorted(same_block.values_list("log_index", flat=True)) == [0, 1]  # numbered per block
    assert len(set(same_block.values_list("block_number", flat=True))) == 1
    assert sorted(Movement.objects.filter(tx_hash=batch).values_list("log_index", flat=True)) == [0, 1]
    assert result.error == "" and result.new == 6  # two mints to counterparties, two transfers, a batch of two
    assert poll(chain).new == 0


@pytest.mark.para(13)
def test_anvil_mine_brings_transfers_to_the_confirmation_depth(chain):
    tx = chain.transfer(chain.sg1, chain.home, 5 * TUSD)
    poll(chain)
    assert Movement.objects.get(tx_hash=tx).status == "seen"

    chain.mine(2)
    poll(chain)

    assert Movement.objects.get(tx_hash=tx).status == "final"


@pytest.mark.para(13)
def test_a_snapshot_revert_un_sees_a_transfer(chain):
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    tx = chain.transfer(chain.sg1, chain.home, 9 * TUSD)
    poll(chain)

    chain.w3.provider.make_request("evm_revert", [snapshot])
    chain.mine(3)
    result = poll(chain)

    assert (Movement.objects.get(tx_hash=tx).status, result.reorged) == ("reorged", 1)


@pytest.mark.para(13)
def test_after_anvil_reorg_the_watcher_holds_only_canonical_blocks(chain):
    chain.transfer(chain.sg1, chain.home, 3 * TUSD)
    chain.transfer(chain.jp1, chain.home, 4 * TUSD)
    poll(chain)
    before = ChainCursor.objects.get(rail=chain.rail).block_hash

    chain.w3.provider.make_request("anvil_reorg", [2, []])
    poll(chain)

    cursor = ChainCursor.objects.get(rail=chain.rail)
    head = chain.w3.eth.get_block("latest")
    assert cursor.block_hash == "0x" + bytes(head["hash"]).hex() != before
    for movement in Movement.objects.exclude(status="reorged"):
        canonical = chain.w3.eth.get_block(movement.block_number)["hash"]
        assert movement.block_hash == "0x" + bytes(canonical).hex()


def test_a_transfer_deeper_than_the_trail_takes_its_time_from_the_log(chain, settings):
    """Over JSON-RPC the watcher reads a log's block time from the log
    (blockTimestamp) and fetches only the blocks a reorg can still replace."""
    settings.CUSTODY_WATCHER_TRAIL_BLOCKS = 16
    tx = chain.transfer(chain.sg1, chain.home, 6 * TUSD)
    block = chain.w3.eth.get_transaction_receipt(tx)["blockNumber"]
    chain.mine(40)

    result = poll(chain)

    movement = Movement.objects.get(tx_hash=tx)
    stamp = chain.w3.eth.get_block(block)["timestamp"]
    assert (result.error, movement.block_number, int(movement.occurred_at.timestamp())) == ("", block, stamp)
    kept = set(ChainBlock.objects.filter(rail=chain.rail).values_list("number", flat=True))
    assert block not in kept and len(kept) == 16 and max(kept) == chain.head
