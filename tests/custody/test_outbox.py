"""The outbox never lists a payment that must not be sent (circular para 13,
DVP): an instruction follows its leg. Done when the leg is confirmed;
cancelled when the leg fails or is cancelled (its batch missed its deadline,
or the counterparty was declared in default), in the same transaction."""

from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from controls.models import Alert, AuditEvent
from custody.models import Instruction
from reserves.services.defaults import default_close_out
from settlement.models import Batch, Leg
from settlement.services.cycles import cycle_run
from settlement.services.deadlines import deadlines_check
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = [pytest.mark.django_db, pytest.mark.para(13)]
HKT = ZoneInfo("Asia/Hong_Kong")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=HKT)
LATER = MONDAY + timedelta(days=3)


def staff(username: str, group: str) -> APIClient:
    out = StringIO()
    call_command("create_staff_user", "--username", username, "--group", group, stdout=out)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip().splitlines()[-1]}")
    return client


@pytest.fixture
def maker(network):
    return staff("maker", "ops_operator")


def released() -> tuple[Batch, Leg, Instruction]:
    """Home sells 1 BTC to SG1 for 64,000 USDC: the USDC comes in first
    (receive-first), then home's BTC leg is instructed and the outbox holds
    its instruction."""
    item = trade(base="BTC", quote="USDC", price="64000", quantity="1", buy=("SG1", "s"), sell=("HK1", "pro-1"))
    item["executed_at"] = (MONDAY - timedelta(hours=1)).isoformat()
    trades_ingest(items=[item], actor="engine", now=MONDAY - timedelta(minutes=59))
    batch = cycle_run(kind="intraday", as_of=MONDAY, actor="test").batches.get()
    inbound = batch.legs.get(direction="inbound")
    leg_confirm(leg_id=inbound.id, evidence={"test": True}, actor="t", as_of=MONDAY)
    outbound = batch.legs.get(direction="outbound")
    assert outbound.status == "instructed"
    return batch, outbound, Instruction.objects.get(leg=outbound)


def due(client: APIClient) -> list[int]:
    response = client.get("/api/v1/ops/instructions?status=new")
    assert response.status_code == 200, response.content
    return [i["id"] for i in response.json()["results"]]


def test_an_instruction_is_done_when_its_leg_is_confirmed(maker):
    batch, outbound, instruction = released()
    assert due(maker) == [instruction.id]

    leg_confirm(leg_id=outbound.id, evidence={"tx": "0xabc"}, actor="watcher", as_of=MONDAY + timedelta(minutes=5))

    instruction.refresh_from_db()
    batch.refresh_from_db()
    assert (batch.status, instruction.status) == ("settled", "done")
    assert instruction.closed_at == MONDAY + timedelta(minutes=5)
    assert due(maker) == []
    done = maker.get("/api/v1/ops/instructions?status=done").json()["results"]
    assert [(i["id"], i["status"]) for i in done] == [(instruction.id, "done")]
    assert AuditEvent.objects.filter(action="instruction.done", object_id=str(instruction.id)).exists()


def test_an_instruction_is_cancelled_when_its_batch_fails_at_the_deadline(maker):
    batch, outbound, instruction = released()

    result = deadlines_check(as_of=LATER, actor="test")

    batch.refresh_from_db()
    outbound.refresh_from_db()
    instruction.refresh_from_db()
    assert result.failed == [batch.id]
    assert (batch.status, outbound.status, instruction.status) == ("failed", "failed", "cancelled")
    assert due(maker) == []
    assert not Alert.objects.filter(kind="instruction_recall").exists()  # it was never handed over


def test_a_taken_instruction_whose_batch_fails_is_cancelled_and_raises_a_recall_alert(maker):
    _batch, _, instruction = released()
    assert maker.post("/api/v1/ops/instructions/take", {"ids": [instruction.id]}, format="json").status_code == 200

    deadlines_check(as_of=LATER, actor="test")

    instruction.refresh_from_db()
    assert instruction.status == "cancelled"
    (alert,) = Alert.objects.filter(kind="instruction_recall")
    assert alert.operator_code == "SG1" and instruction.reference in alert.message


def test_the_instructions_of_a_defaulted_counterparty_are_cancelled(maker):
    batch, outbound, instruction = released()

    default_close_out(
        operator_code="SG1",
        reason="insolvent",
        as_of=timezone.now(),  # the network's marks are as of now
        declared_by="user:maker",
        approved_by="user:checker",
        approval=None,
        now=timezone.now(),
    )

    batch.refresh_from_db()
    outbound.refresh_from_db()
    instruction.refresh_from_db()
    assert (batch.status, outbound.status, instruction.status) == ("failed", "cancelled", "cancelled")
    assert due(maker) == []
    assert AuditEvent.objects.filter(action="leg.cancelled", object_id=str(outbound.id)).exists()


def test_a_cancelled_instruction_cannot_be_taken(maker):
    _, _, instruction = released()
    deadlines_check(as_of=LATER, actor="test")

    response = maker.post("/api/v1/ops/instructions/take", {"ids": [instruction.id]}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "instruction_cancelled"
    instruction.refresh_from_db()
    assert instruction.status == "cancelled"


@pytest.mark.parametrize("ids", [True, [True], [1.0], ["1"], [], [2**63], [-1], list(range(1, 1002)), None])
def test_take_refuses_ids_that_are_not_a_list_of_whole_numbers(maker, ids):
    _, _, _instruction = released()

    response = maker.post("/api/v1/ops/instructions/take", {"ids": ids}, format="json")

    assert response.status_code == 400, response.content
    assert (response.json()["code"], response.json()["field"]) == ("invalid_field", "ids")
    assert Instruction.objects.get().status == "new"  # [true] never takes instruction 1
