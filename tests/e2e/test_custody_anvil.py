"""End to end on a real node (anvil): a cycle's legs confirm from chain
transfers found by ``watch_chain``, receive-first releases the outbound leg
and the batch settles; a short delivery is a break; a reorg before finality
un-sees a transfer."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from custody.models import Break, Instruction
from settlement.models import Batch, Leg, Obligation
from settlement.services.exposure import exposure_verify
from tests.custody.chain import TETH, TUSD, Anvil, requires_anvil, sell_teth_for_tusd, setup_chain

pytestmark = [pytest.mark.django_db, requires_anvil, pytest.mark.para(13)]


@pytest.fixture(scope="module")
def anvil():
    node = Anvil()
    yield node
    node.stop()


@pytest.fixture
def chain(anvil, network):
    chain = setup_chain(anvil.web3(), network, real_node=True, rpc_url=anvil.url, confirmations=3)
    chain.mint(chain.sg1, 10_000 * TUSD)
    return chain


def watch() -> str:
    out = StringIO()
    call_command("watch_chain", "--rail", "tchain", "--once", stdout=out)
    return out.getvalue()


def test_an_inbound_leg_confirms_after_n_blocks_and_the_batch_settles_receive_first(chain):
    cycle = sell_teth_for_tusd(at=timezone.now() - timedelta(minutes=2))
    batch = cycle.batches.get()
    tusd, teth = batch.legs.get(asset__code="TUSD"), batch.legs.get(asset__code="TETH")

    tx = chain.transfer(chain.sg1, chain.home, 2500 * TUSD)
    watch()
    assert Leg.objects.get(pk=tusd.pk).status == "confirming"
    assert Leg.objects.get(pk=teth.pk).status == "pending"

    chain.mine(2)  # confirmations = 3: the transfer's block and two more
    output = watch()

    tusd.refresh_from_db()
    assert tusd.status == "confirmed", output
    assert tusd.evidence["movements"][0]["tx_hash"] == tx
    assert Leg.objects.get(pk=teth.pk).status == "instructed"
    instruction = Instruction.objects.get(leg=teth)
    assert (instruction.to_ref, format(instruction.amount.normalize(), "f")) == (chain.sg1.lower(), "1")

    chain.send(chain.home, chain.sg1, 1 * TETH)  # operations carry out the instruction
    chain.mine(2)
    watch()

    batch.refresh_from_db()
    assert batch.status == "settled"
    assert set(Obligation.objects.values_list("status", flat=True)) == {"settled"}
    assert exposure_verify(as_of=timezone.now()).ok
    assert not Break.objects.exists()


def test_a_short_delivery_becomes_a_break_and_the_leg_stays_unconfirmed(chain):
    batch = sell_teth_for_tusd(at=timezone.now() - timedelta(minutes=2)).batches.get()

    chain.transfer(chain.sg1, chain.home, 2400 * TUSD)
    chain.mine(2)
    watch()

    brk = Break.objects.get(kind="short_delivery")
    assert (format(brk.amount.normalize(), "f"), brk.counterparty.code) == ("100", "SG1")
    assert batch.legs.get(asset__code="TUSD").status == "instructed"
    assert batch.legs.get(asset__code="TETH").status == "pending"
    assert Batch.objects.get(pk=batch.pk).status == "open"


def test_a_reorg_before_finality_un_sees_the_transfer(chain):
    batch = sell_teth_for_tusd(at=timezone.now() - timedelta(minutes=2)).batches.get()
    tusd = batch.legs.get(asset__code="TUSD")
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    chain.transfer(chain.sg1, chain.home, 2500 * TUSD)
    watch()
    assert Leg.objects.get(pk=tusd.pk).status == "confirming"

    chain.w3.provider.make_request("evm_revert", [snapshot])
    chain.mine(3)
    output = watch()

    assert "1 reorged out" in output
    assert Leg.objects.get(pk=tusd.pk).status == "instructed"
    assert Break.objects.get(kind="reorged").leg_id == tusd.id
