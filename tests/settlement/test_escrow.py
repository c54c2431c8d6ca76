"""Escrow DVP without a chain (the anvil end to end is in
tests/e2e/test_custody_anvil.py): a lock evidenced by the escrow custodian's
report, confirmed by hand, releases nothing until every leg is locked; the
last lock releases all legs in one transaction; and a deadline check racing
the last lock ends one way only (PostgreSQL, real threads, tests/locks.py)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from controls.exceptions import Conflict
from custody.models import Instruction
from registry.models import Custodian, Operator, Rail, Wallet
from settlement.models import Batch, CarriedCredit, Leg, Obligation
from settlement.services.cycles import cycle_run
from settlement.services.deadlines import deadlines_check
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest
from tests import factories
from tests.conftest import staff_client
from tests.factories import trade
from tests.locks import RowLock

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.para(13)]
HKT = ZoneInfo("Asia/Hong_Kong")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=HKT)
LATE = MONDAY + timedelta(days=3)  # past every leg's deadline
ESCROW = "0x9965507d1a55bcc2695c58ba16fb37d819b0a4dc"


def _escrow_batch() -> tuple[Batch, Leg, Leg]:
    """SG1 buys 1 BTC for 64,000 USDC in escrow at Harbour Custody: an
    inbound USDC leg and an outbound BTC leg, both instructed."""
    network = factories.build_network()
    harbour = Custodian.objects.create(name="Harbour Custody Ltd")
    network.sg1.dvp_policy, network.sg1.escrow_custodian = Operator.DvpPolicy.ESCROW, harbour
    network.sg1.save()
    eth = Rail.objects.get(code="eth")
    Wallet.objects.create(operator=network.home, rail=eth, address="0x70997970c51812dc3a010c7d01b50e0d17dc79c8")
    Wallet.objects.create(operator=network.sg1, rail=eth, address="0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc")
    Wallet.objects.create(operator=network.sg1, rail=eth, address=ESCROW, custodian=harbour, escrow=True)
    item = trade(base="BTC", quote="USDC", price="64000", quantity="1", buy=("SG1", "s"), sell=("HK1", "pro-1"))
    item["executed_at"] = (MONDAY - timedelta(hours=1)).isoformat()
    trades_ingest(items=[item], actor="engine", now=MONDAY - timedelta(minutes=59))
    batch = cycle_run(kind="intraday", as_of=MONDAY, actor="test").batches.get()
    inbound, outbound = batch.legs.get(direction="inbound"), batch.legs.get(direction="outbound")
    assert (inbound.status, outbound.status) == ("instructed", "instructed")
    return batch, inbound, outbound


def _report(leg: Leg, at: datetime = MONDAY):
    """What an approved manual confirmation calls, with the custodian's report."""
    evidence = {"manual": "Harbour Custody lock report HC-1", "approval_id": 1}
    return lambda: leg_confirm(leg_id=leg.id, evidence=evidence, actor="approver", as_of=at)


def test_a_lock_from_the_custodians_report_waits_for_the_other_side_then_all_release_together():
    batch, inbound, outbound = _escrow_batch()
    assert Instruction.objects.get(leg=outbound).to_ref == ESCROW  # home delivers to the escrow holder

    assert _report(inbound)().status == "locked"
    assert not Instruction.objects.filter(kind="release").exists()
    assert Batch.objects.get(pk=batch.pk).status == "open"

    _report(outbound, MONDAY + timedelta(minutes=5))()

    batch.refresh_from_db()
    assert batch.status == "settled"
    assert set(batch.legs.values_list("status", flat=True)) == {"confirmed"}
    assert set(Obligation.objects.values_list("status", flat=True)) == {"settled"}
    releases = {i.leg_id: (i.from_ref, i.to_ref, i.reference) for i in Instruction.objects.filter(kind="release")}
    assert releases == {
        inbound.id: (ESCROW, "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", f"SOB-{batch.id}-{inbound.id}-REL"),
        outbound.id: (ESCROW, "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc", f"SOB-{batch.id}-{outbound.id}-REL"),
    }
    with pytest.raises(Conflict):  # a released leg is not locked again
        _report(inbound)()
    # what the escrow custodian must do now, through the API
    listed = staff_client("viewer", "ops_viewer").get("/api/v1/ops/instructions?status=new&kind=release")
    assert sorted(row["reference"] for row in listed.json()["results"]) == sorted(r for _, _, r in releases.values())


def test_a_deadline_check_racing_the_last_lock_leaves_the_batch_released():
    batch, inbound, outbound = _escrow_batch()
    _report(inbound)()

    with RowLock(Batch, batch.id) as held:
        lock = held.start(_report(outbound, LATE), waiters=1)
        deadlines = held.start(lambda: deadlines_check(as_of=LATE, actor="celery"), waiters=2)
        held.release()
    locked, checked = lock.outcome(), deadlines.outcome()

    assert isinstance(locked, Leg) and checked.failed == []
    assert Batch.objects.get(pk=batch.pk).status == "settled"
    assert Instruction.objects.filter(kind="release").count() == 2
    assert not Instruction.objects.filter(kind="return").exists()


def test_a_lock_after_the_deadline_failed_the_batch_is_refused_and_the_other_lock_is_returned():
    batch, inbound, outbound = _escrow_batch()
    _report(inbound)()

    with RowLock(Batch, batch.id) as held:
        deadlines = held.start(lambda: deadlines_check(as_of=LATE, actor="celery"), waiters=1)
        lock = held.start(_report(outbound, LATE), waiters=2)
        held.release()
    checked, refused = deadlines.outcome(), lock.outcome()

    assert checked.failed == [batch.id]
    assert isinstance(refused, Conflict) and refused.code == "leg_not_confirmable"
    inbound.refresh_from_db()
    outbound.refresh_from_db()
    assert (inbound.status, outbound.status) == ("cancelled", "failed")
    returned = Instruction.objects.get(kind="return")
    assert (returned.leg_id, returned.from_ref, returned.to_ref) == (
        inbound.id,
        ESCROW,
        "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc",  # SG1's USDC back to SG1
    )
    assert not Instruction.objects.filter(kind="release").exists()
    assert not CarriedCredit.objects.exists()
    assert set(Obligation.objects.values_list("status", flat=True)) == {"open"}
