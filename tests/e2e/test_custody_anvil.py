"""End to end on a real node (anvil): a cycle's legs confirm from chain
transfers found by ``watch_chain``, receive-first releases the outbound leg
and the batch settles; a short delivery is a break; a reorg before finality
un-sees a transfer. Escrow DVP with a real token: both sides deliver to the
escrow custodian's holding wallet, the watcher's transfers lock each leg,
and only when both are locked do the releases go to the escrow custodian,
together; a batch that misses its deadline with one side unlocked returns
the other side's lock, and nothing settles."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from controls.models import AuditEvent
from custody.models import Break, Instruction
from registry.models import Custodian, Wallet
from settlement.models import Batch, CarriedCredit, Leg, Obligation
from settlement.services.deadlines import deadlines_check
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


# --- escrow DVP -----------------------------------------------------------------------------------


@pytest.fixture
def escrow_chain(chain, network):
    """SG1 settles in escrow at Harbour Custody, whose escrow wallet on the
    chain is accounts[5]."""
    harbour = Custodian.objects.create(name="Harbour Custody Ltd")
    network.sg1.dvp_policy, network.sg1.escrow_custodian = "escrow", harbour
    network.sg1.save()
    chain.escrow = chain.w3.eth.accounts[5]
    Wallet.objects.create(
        operator=network.sg1, rail=chain.rail, address=chain.escrow.lower(), custodian=harbour, escrow=True
    )
    return chain


def amounts(instructions) -> dict[str, tuple[str, str, str, str]]:
    return {i.asset.code: (i.kind, i.from_ref, i.to_ref, format(i.amount.normalize(), "f")) for i in instructions}


def test_both_sides_lock_at_the_escrow_custodian_and_the_releases_go_out_together(escrow_chain):
    chain = escrow_chain
    batch = sell_teth_for_tusd(at=timezone.now() - timedelta(minutes=2)).batches.get()
    tusd, teth = batch.legs.get(asset__code="TUSD"), batch.legs.get(asset__code="TETH")
    escrow, home, sg1 = chain.escrow.lower(), chain.home.lower(), chain.sg1.lower()
    # both legs at once; home's delivery goes to the escrow holder, not to SG1
    assert (tusd.status, teth.status) == ("instructed", "instructed")
    assert amounts(Instruction.objects.all()) == {"TETH": ("delivery", home, escrow, "1")}

    tx = chain.transfer(chain.sg1, chain.escrow, 2500 * TUSD)
    chain.mine(2)
    watch()
    tusd.refresh_from_db()
    assert tusd.status == "locked"
    assert tusd.evidence["movements"][0]["tx_hash"] == tx
    assert Leg.objects.get(pk=teth.pk).status == "instructed"
    assert not Instruction.objects.filter(kind="release").exists()  # one side locked: nothing released
    assert Batch.objects.get(pk=batch.pk).status == "open"

    chain.send(chain.home, chain.escrow, 1 * TETH)  # operations carry out the delivery instruction
    chain.mine(2)
    watch()

    batch.refresh_from_db()
    assert batch.status == "settled"
    assert {leg.status for leg in batch.legs.all()} == {"confirmed"}
    assert set(Obligation.objects.values_list("status", flat=True)) == {"settled"}
    releases = Instruction.objects.filter(kind="release")
    assert amounts(releases) == {
        "TUSD": ("release", escrow, home, "2500"),  # the counterparty's asset to home
        "TETH": ("release", escrow, sg1, "1"),  # home's asset to the counterparty
    }
    assert {i.status for i in releases} == {"new"}
    assert len({i.created_at for i in releases}) == 1  # instructed together, in one transaction
    assert Instruction.objects.get(kind="delivery").status == "done"
    actions = set(AuditEvent.objects.filter(object_type="Leg").values_list("action", flat=True))
    assert {"leg.locked", "leg.released"} <= actions
    assert exposure_verify(as_of=timezone.now()).ok
    assert not Break.objects.exists()

    watch()  # again: nothing is released twice
    assert Instruction.objects.filter(kind="release").count() == 2

    # the escrow custodian carries the releases out: seen, they are done
    chain.transfer(chain.escrow, chain.home, 2500 * TUSD)
    chain.send(chain.escrow, chain.sg1, 1 * TETH)
    chain.mine(2)
    watch()
    assert {i.status for i in Instruction.objects.filter(kind="release")} == {"done"}
    assert not Break.objects.exists()  # the custodian's payouts are no unmatched receipt


def test_a_deadline_with_one_side_unlocked_returns_the_other_sides_lock(escrow_chain):
    chain = escrow_chain
    batch = sell_teth_for_tusd(at=timezone.now() - timedelta(minutes=2)).batches.get()
    tusd, teth = batch.legs.get(asset__code="TUSD"), batch.legs.get(asset__code="TETH")
    chain.transfer(chain.sg1, chain.escrow, 2500 * TUSD)  # SG1 locks; home never delivers
    chain.mine(2)
    watch()
    assert Leg.objects.get(pk=tusd.pk).status == "locked"

    result = deadlines_check(as_of=teth.deadline + timedelta(minutes=1), actor="test")

    assert result.failed == [batch.id]
    batch.refresh_from_db()
    assert (batch.status, batch.failed_by, batch.fail_reason) == ("failed", "home", "home_instruction_late")
    tusd.refresh_from_db()
    teth.refresh_from_db()
    assert (tusd.status, teth.status, teth.failed_by) == ("cancelled", "failed", "home")
    returned = Instruction.objects.filter(kind="return")
    assert amounts(returned) == {"TUSD": ("return", chain.escrow.lower(), chain.sg1.lower(), "2500")}
    assert Instruction.objects.get(kind="delivery").status == "cancelled"
    assert not Instruction.objects.filter(kind="release").exists()
    assert not CarriedCredit.objects.exists()  # returned, not carried: nothing settles
    assert set(Obligation.objects.values_list("status", flat=True)) == {"open"}
    assert AuditEvent.objects.get(action="leg.cancelled", object_id=str(tusd.id)).after["returned_from_escrow"]

    chain.transfer(chain.escrow, chain.sg1, 2500 * TUSD)  # the custodian returns SG1's lock
    chain.mine(2)
    watch()
    assert Instruction.objects.get(kind="return").status == "done"
