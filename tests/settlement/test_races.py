"""Every state transition re-checks its precondition under the row lock
(circular para 13: a settled batch stays settled). Each race is driven
deterministically: one connection holds the batch (or claim, approval,
instruction) row lock, both contenders queue behind it in a chosen order,
then the lock is released. PostgreSQL, real threads."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from controls.exceptions import Conflict
from controls.models import Alert, ApprovalRequest
from custody.models import Instruction
from settlement.models import Batch, Leg, Obligation
from settlement.services.batch_controls import batch_dispute, batch_hold
from settlement.services.cycles import cycle_run
from settlement.services.deadlines import deadlines_check
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest
from tests import factories
from tests.factories import trade
from tests.locks import RowLock

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.para(13)]
HKT = ZoneInfo("Asia/Hong_Kong")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=HKT)
LATE = MONDAY + timedelta(days=3)  # past every leg's deadline


def _last_leg_outstanding() -> tuple[Batch, Leg]:
    """A batch whose inbound leg is confirmed and whose outbound leg (past
    its deadline at LATE) is the last one outstanding."""
    factories.build_network()
    item = trade(base="BTC", quote="USDC", price="64000", quantity="1", buy=("SG1", "s"), sell=("HK1", "pro-1"))
    item["executed_at"] = (MONDAY - timedelta(hours=1)).isoformat()
    trades_ingest(items=[item], actor="engine", now=MONDAY - timedelta(minutes=59))
    batch = cycle_run(kind="intraday", as_of=MONDAY, actor="test").batches.get()
    leg_confirm(leg_id=batch.legs.get(direction="inbound").id, evidence={"test": 1}, actor="t", as_of=MONDAY)
    outbound = batch.legs.get(direction="outbound")
    assert outbound.status == "instructed" and outbound.deadline < LATE
    return batch, outbound


def _confirm(leg: Leg):
    return lambda: leg_confirm(leg_id=leg.id, evidence={"tx": "0xfeed"}, actor="watcher", as_of=LATE)


def _deadlines():
    return deadlines_check(as_of=LATE, actor="celery")


def test_a_deadline_check_racing_the_last_confirmation_leaves_the_batch_settled():
    """The reported race: check_deadlines read the overdue leg before the
    confirmation committed, then failed the batch it settled."""
    batch, outbound = _last_leg_outstanding()

    with RowLock(Batch, batch.id) as held:
        confirm = held.start(_confirm(outbound), waiters=1)
        deadlines = held.start(_deadlines, waiters=2)  # it has read the overdue leg and waits for the batch
        held.release()
    confirmed, checked = confirm.outcome(), deadlines.outcome()

    assert isinstance(confirmed, Leg) and checked.failed == []
    batch.refresh_from_db()
    outbound.refresh_from_db()
    assert (batch.status, outbound.status) == ("settled", "confirmed")
    assert set(Obligation.objects.values_list("status", flat=True)) == {"settled"}
    assert not Alert.objects.filter(kind="failed_batch_with_movements").exists()
    assert Instruction.objects.get(leg=outbound).status == "done"


def test_a_confirmation_after_the_deadline_failed_the_batch_is_refused_and_the_batch_stays_failed():
    batch, outbound = _last_leg_outstanding()

    with RowLock(Batch, batch.id) as held:
        deadlines = held.start(_deadlines, waiters=1)
        confirm = held.start(_confirm(outbound), waiters=2)
        held.release()
    checked, refused = deadlines.outcome(), confirm.outcome()

    assert checked.failed == [batch.id]
    assert isinstance(refused, Conflict) and refused.code == "leg_not_confirmable"
    batch.refresh_from_db()
    outbound.refresh_from_db()
    assert (batch.status, outbound.status) == ("failed", "failed")
    assert set(Obligation.objects.values_list("status", flat=True)) == {"open"}  # recycled
    assert Instruction.objects.get(leg=outbound).status == "cancelled"


def test_a_default_racing_the_last_confirmation_leaves_the_batch_settled():
    from django.utils import timezone

    from reserves.services.defaults import default_close_out

    batch, outbound = _last_leg_outstanding()

    def declare():
        now = timezone.now()
        return default_close_out(
            operator_code="SG1",
            reason="insolvent",
            as_of=now,
            declared_by="user:a",
            approved_by="user:b",
            approval=None,
            now=now,
        )

    with RowLock(Batch, batch.id) as held:
        confirm = held.start(_confirm(outbound), waiters=1)
        default = held.start(declare, waiters=2)
        held.release()
    confirm.outcome()
    closed = default.outcome()

    assert closed.obligations_closed_out == 0  # settled in the batch before the default
    batch.refresh_from_db()
    assert batch.status == "settled"
    assert set(Obligation.objects.values_list("status", flat=True)) == {"settled"}


def test_taking_an_instruction_racing_its_cancellation_never_leaves_a_cancelled_payment_taken():
    batch, outbound = _last_leg_outstanding()
    instruction = Instruction.objects.get(leg=outbound)

    from custody.services.instructions import instructions_take

    with RowLock(Batch, batch.id) as held:
        deadlines = held.start(_deadlines, waiters=1)
        held.release()
    deadlines.outcome()
    with RowLock(Instruction, instruction.id) as held:
        take = held.start(lambda: instructions_take(ids=[instruction.id], actor="user:x", now=LATE), waiters=1)
        held.release()

    refused = take.outcome()
    assert isinstance(refused, Conflict) and refused.code == "instruction_cancelled"
    instruction.refresh_from_db()
    assert instruction.status == "cancelled"


def test_two_approvers_deciding_one_request_at_once_decide_it_once():
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from controls.services.approvals import approval_decide, approval_request

    _batch, outbound = _last_leg_outstanding()
    maker = User.objects.create_user("maker", is_staff=True)
    maker.groups.add(Group.objects.get_or_create(name="ops_operator")[0])
    approvers = []
    for name in ("anna", "bert"):
        user = User.objects.create_user(name, is_staff=True)
        user.groups.add(Group.objects.get_or_create(name="ops_approver")[0])
        approvers.append(user)
    request = approval_request(
        kind=ApprovalRequest.Kind.LEG_CONFIRM,
        payload={"leg_id": outbound.id, "evidence": "custodian's SWIFT"},
        user=maker,
        now=timezone.now(),
    )

    def decide(user, approve):
        return lambda: approval_decide(
            approval_id=request.id, user=user, approve=approve, reason="no" if not approve else "", now=timezone.now()
        )

    with RowLock(ApprovalRequest, request.id) as held:
        first = held.start(decide(approvers[0], True), waiters=1)
        second = held.start(decide(approvers[1], False), waiters=2)
        held.release()

    assert first.outcome().status == "approved"
    refused = second.outcome()
    assert isinstance(refused, Conflict) and refused.code == "already_decided"
    outbound.refresh_from_db()
    assert outbound.status == "confirmed"
    connection.close()


@pytest.mark.para(17)
def test_a_claim_paid_and_rejected_at_once_ends_one_way_only():
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from reserves.models import Claim
    from reserves.services.claims import claim_file, claim_pay, claim_reject

    factories.build_network()
    maker = User.objects.create_user("maker", is_staff=True)
    maker.groups.add(Group.objects.get_or_create(name="ops_operator")[0])
    approver = User.objects.create_user("anna", is_staff=True)
    approver.groups.add(Group.objects.get_or_create(name="ops_approver")[0])
    claim = claim_file(
        counterparty="SG1",
        account="pro-1",
        loss_hkd="1000.00",
        evidence="SG1 never delivered",
        trade_id=None,
        user=maker,
        now=timezone.now(),
    )

    with RowLock(Claim, claim.id) as held:
        pay = held.start(lambda: claim_pay(claim_id=claim.id, approved_by="user:anna", now=timezone.now()), waiters=1)
        reject = held.start(
            lambda: claim_reject(claim_id=claim.id, reason="duplicate", user=approver, now=timezone.now()), waiters=2
        )
        held.release()

    assert pay.outcome().status == "paid"
    refused = reject.outcome()
    assert isinstance(refused, Conflict) and refused.code == "claim_not_payable"
    claim.refresh_from_db()
    assert (claim.status, claim.paid_hkd) == ("paid", claim.loss_hkd)


def test_a_hold_that_gets_the_batch_first_stops_the_deadline_check_from_failing_it():
    """The deadline check read the overdue leg before the hold committed; it
    re-reads the batch under its lock and leaves the held batch alone."""
    batch, _ = _last_leg_outstanding()

    with RowLock(Batch, batch.id) as held:
        hold = held.start(
            lambda: batch_hold(batch_id=batch.id, reason="ops checking", actor="user:olga", now=LATE), waiters=1
        )
        deadlines = held.start(_deadlines, waiters=2)
        held.release()
    hold.outcome()
    checked = deadlines.outcome()

    batch.refresh_from_db()
    assert checked.failed == [] and batch.status == "open" and batch.held_at == LATE


def test_a_dispute_that_gets_the_batch_first_is_not_overridden_by_the_affirmation_window(settings):
    settings.BATCH_AFFIRMATION_WINDOW_MINUTES = 30
    factories.build_network()
    item = trade(quantity="1")
    item["executed_at"] = (MONDAY - timedelta(hours=1)).isoformat()
    trades_ingest(items=[item], actor="engine", now=MONDAY - timedelta(minutes=59))
    batch = cycle_run(kind="intraday", as_of=MONDAY, actor="test").batches.select_related("counterparty").get()
    at = MONDAY + timedelta(minutes=31)

    with RowLock(Batch, batch.id) as held:
        dispute = held.start(
            lambda: batch_dispute(
                batch_id=batch.id, operator=batch.counterparty, reason="not ours", actor="SG1", now=at
            ),
            waiters=1,
        )
        deadlines = held.start(lambda: deadlines_check(as_of=at, actor="celery"), waiters=2)
        held.release()
    dispute.outcome()
    deadlines.outcome()

    batch.refresh_from_db()
    assert (batch.affirmation, batch.held_at is not None) == ("disputed", True)
    assert batch.legs.get(direction="outbound").status == "pending"
