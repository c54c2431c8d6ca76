"""DVP that holds for both sides (DESIGN section 7): every fail says whose it
is; operations hold a batch and leave a counterparty out of cycles; the
counterparty affirms or disputes what it is asked to deliver.

Times are Hong Kong local. Monday 23 Nov 2026 is a business day before the
HKD cut-off; the eth rail's window is 60 minutes, the HKD rail's runs to
its cut-off."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, User

from controls.exceptions import Conflict, InvalidInput, NotFound
from controls.models import Alert, ApprovalRequest, AuditEvent
from controls.services.approvals import approval_decide
from custody.models import Break, Instruction
from custody.services.breaks import break_raise
from registry.models import Rail
from settlement.models import Batch, Leg, Obligation
from settlement.services.batch_controls import (
    batch_affirm,
    batch_dispute,
    batch_hold,
    batch_hold_release,
    counterparty_exclude,
    counterparty_include_request,
)
from settlement.services.cycles import cycle_run
from settlement.services.deadlines import deadlines_check
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = [pytest.mark.django_db, pytest.mark.para(13)]
HKT = ZoneInfo("Asia/Hong_Kong")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=HKT)


def ingest(*items, at: datetime = MONDAY - timedelta(hours=1)) -> None:
    stamped = [{**item, "executed_at": at.isoformat()} for item in items]
    assert not trades_ingest(items=stamped, actor="engine", now=at + timedelta(seconds=1)).rejected


def run(at: datetime) -> Batch:
    return cycle_run(kind="intraday", as_of=at, actor="test").batches.get()


def leg(batch: Batch, code: str) -> Leg:
    return batch.legs.get(asset__code=code)


def confirm(one: Leg, at: datetime) -> None:
    leg_confirm(leg_id=one.id, evidence={"test": True}, actor="test", as_of=at)


def fails(batch: Batch) -> dict[str, tuple[str, str, str]]:
    return {one.asset.code: (one.status, one.failed_by, one.fail_reason) for one in batch.legs.select_related("asset")}


def staff(name: str, group: str) -> User:
    user = User.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


# --- fail attribution ----------------------------------------------------------------------------


def test_an_inbound_leg_not_delivered_is_the_counterpartys_fail(network):
    ingest(trade(quantity="1"))  # home buys 1 BTC from SG1
    batch = run(MONDAY)

    deadlines_check(as_of=MONDAY + timedelta(minutes=61), actor="test")

    batch.refresh_from_db()
    assert fails(batch) == {"BTC": ("failed", "SG1", "not_delivered"), "HKD": ("cancelled", "", "")}
    assert (batch.status, batch.failed_by, batch.fail_reason) == ("failed", "SG1", "not_delivered")
    assert "inbound BTC 1.00000000 (SG1: not_delivered)" in batch.fail_detail
    assert set(Obligation.objects.values_list("fail_count", flat=True)) == {1}


def test_a_short_delivery_seen_by_custody_is_named_as_such(network):
    ingest(trade(quantity="1"))
    batch = run(MONDAY)
    btc = leg(batch, "BTC")
    break_raise(
        key=f"short_delivery:leg:{btc.id}",
        kind="short_delivery",
        asset_id=btc.asset_id,
        amount=Decimal("0.4"),
        description="delivered 0.6 of 1",
        actor="reconcile",
        at=MONDAY + timedelta(minutes=30),
        counterparty_id=network.sg1.id,
        leg_id=btc.id,
    )

    deadlines_check(as_of=MONDAY + timedelta(minutes=61), actor="test")

    batch.refresh_from_db()
    assert fails(batch)["BTC"] == ("failed", "SG1", "short_delivery")
    assert (batch.failed_by, batch.fail_reason) == ("SG1", "short_delivery")


def test_home_late_with_its_own_leg_is_homes_fail_and_alerts_operations_not_default_review(network, settings):
    settings.DEFAULT_REVIEW_FAILS = 1
    ingest(trade(quantity="1"))
    batch = run(MONDAY)
    confirm(leg(batch, "BTC"), MONDAY + timedelta(minutes=10))  # SG1 delivered; home's HKD now instructed
    hkd = Leg.objects.get(pk=leg(batch, "HKD").pk)
    assert hkd.status == "instructed"

    result = deadlines_check(as_of=hkd.deadline + timedelta(minutes=1), actor="test")

    batch.refresh_from_db()
    assert result.failed == [batch.id]
    assert fails(batch) == {"BTC": ("confirmed", "", ""), "HKD": ("failed", "home", "home_instruction_late")}
    assert (batch.failed_by, batch.fail_reason) == ("home", "home_instruction_late")
    assert set(Obligation.objects.values_list("status", "fail_count")) == {("open", 0)}  # not SG1's fail
    assert result.flagged == []
    assert not Alert.objects.filter(kind="default_review").exists()
    late = Alert.objects.get(kind="home_leg_late")
    assert late.operator_code == "SG1" and late.details["legs"][0]["reason"] == "home_instruction_late"


def test_a_leg_that_failed_after_its_rail_was_down_failed_for_the_rail_and_does_not_count(network, settings):
    settings.DEFAULT_REVIEW_FAILS = 1
    ingest(trade(quantity="1"))
    batch = run(MONDAY)
    Rail.objects.filter(code="eth").update(status="degraded", status_reason="no new block")
    deadlines_check(as_of=MONDAY + timedelta(hours=2), actor="test")  # waits, says why
    Rail.objects.filter(code="eth").update(status="up")

    result = deadlines_check(as_of=MONDAY + timedelta(hours=3), actor="test")

    batch.refresh_from_db()
    assert fails(batch)["BTC"] == ("failed", "SG1", "rail_outage")
    assert result.flagged == []
    assert set(Obligation.objects.values_list("fail_count", flat=True)) == {0}


def test_only_the_counterpartys_own_fails_flag_it_for_default_review(network, settings):
    settings.DEFAULT_REVIEW_FAILS = 2
    ingest(trade(quantity="1"))
    for n in range(2):
        start = MONDAY + timedelta(hours=2 * n)
        run(start)
        deadlines_check(as_of=start + timedelta(minutes=61), actor="test")

    assert Alert.objects.get(kind="default_review").operator_code == "SG1"


def test_the_api_shows_who_failed_and_why(network):
    from tests.conftest import api_client_for

    ingest(trade(quantity="1"))
    batch = run(MONDAY)
    deadlines_check(as_of=MONDAY + timedelta(minutes=61), actor="test")

    body = api_client_for(network.sg1, scope="operator").get(f"/api/v1/cycles/{batch.cycle_id}").json()

    shown = body["batches"][0]
    assert (shown["failed_by"], shown["fail_reason"]) == ("SG1", "not_delivered")
    legs = {one["asset"]: one for one in shown["legs"]}
    assert (legs["BTC"]["failed_by"], legs["BTC"]["fail_reason"]) == ("SG1", "not_delivered")
    assert (legs["HKD"]["status"], legs["HKD"]["failed_by"]) == ("cancelled", None)


# --- hold and release ----------------------------------------------------------------------------


def test_a_held_batch_does_not_fail_and_instructs_nothing_until_released(network):
    ingest(trade(quantity="1"))
    batch = run(MONDAY)
    btc = leg(batch, "BTC")

    batch_hold(batch_id=batch.id, reason="SG1 reports a wallet migration", actor="user:olga", now=MONDAY)
    confirm(btc, MONDAY + timedelta(minutes=20))  # what was instructed may still arrive
    assert leg(batch, "HKD").status == "pending"  # but home instructs nothing while held
    assert deadlines_check(as_of=MONDAY + timedelta(hours=5), actor="test").failed == []

    batch_hold_release(batch_id=batch.id, reason="migration done", actor="user:olga", now=MONDAY + timedelta(hours=5))

    batch.refresh_from_db()
    hkd = leg(batch, "HKD")
    assert (batch.status, batch.held_at, hkd.status) == ("open", None, "instructed")
    assert Instruction.objects.filter(leg=hkd).exists()
    actions = set(
        AuditEvent.objects.filter(object_type="Batch", object_id=str(batch.id)).values_list("action", flat=True)
    )
    assert {"batch.held", "batch.released"} <= actions


def test_a_held_batch_raises_no_missing_delivery_until_its_moved_deadline_passes(network):
    from custody.services.reconcile import reconcile_run

    ingest(trade(quantity="1"))
    batch = run(MONDAY)
    deadline = leg(batch, "BTC").deadline
    batch_hold(batch_id=batch.id, reason="checking", actor="user:olga", now=MONDAY)

    reconcile_run(as_of=deadline + timedelta(hours=2))
    assert not Break.objects.filter(kind="missing_delivery").exists()

    batch_hold_release(batch_id=batch.id, reason="", actor="user:olga", now=MONDAY + timedelta(hours=3))
    reconcile_run(as_of=deadline + timedelta(hours=3, minutes=1))
    assert Break.objects.get(kind="missing_delivery").leg_id == leg(batch, "BTC").id


def test_a_release_moves_the_deadlines_on_by_the_time_held(network):
    ingest(trade(quantity="1"))
    batch = run(MONDAY)
    deadline = leg(batch, "BTC").deadline

    batch_hold(batch_id=batch.id, reason="checking", actor="user:olga", now=MONDAY + timedelta(minutes=10))
    batch_hold_release(batch_id=batch.id, reason="", actor="user:olga", now=MONDAY + timedelta(minutes=40))

    assert leg(batch, "BTC").deadline == deadline + timedelta(minutes=30)
    assert deadlines_check(as_of=deadline + timedelta(minutes=1), actor="test").failed == []
    assert deadlines_check(as_of=deadline + timedelta(minutes=31), actor="test").failed == [batch.id]


def test_a_hold_needs_a_reason_and_an_open_batch(network):
    ingest(trade(quantity="1"))
    batch = run(MONDAY)
    with pytest.raises(InvalidInput) as error:
        batch_hold(batch_id=batch.id, reason="  ", actor="user:olga", now=MONDAY)
    assert error.value.field == "reason"
    deadlines_check(as_of=MONDAY + timedelta(minutes=61), actor="test")
    with pytest.raises(Conflict):
        batch_hold(batch_id=batch.id, reason="too late", actor="user:olga", now=MONDAY + timedelta(hours=1))
    with pytest.raises(NotFound):
        batch_hold(batch_id=999999, reason="none such", actor="user:olga", now=MONDAY)


# --- exclusion ---------------------------------------------------------------------------------------


@pytest.mark.para(9)
def test_an_excluded_counterparty_is_left_out_until_a_second_person_takes_it_back(network):
    maker, checker = staff("olga", "ops_operator"), staff("pat", "ops_approver")
    ingest(trade(quantity="1"), trade(sell=("JP1", "j"), quantity="1"))

    exclusion, created = counterparty_exclude(code="SG1", reason="sanctions screening", actor="user:olga", now=MONDAY)
    assert created and counterparty_exclude(code="SG1", reason="again", actor="user:olga", now=MONDAY)[0] == exclusion
    first = cycle_run(kind="intraday", as_of=MONDAY, actor="test")
    assert [b.counterparty.code for b in first.batches.all()] == ["JP1"]

    approval = counterparty_include_request(code="SG1", reason="cleared", user=maker, now=MONDAY)
    with pytest.raises(Exception):  # noqa: B017 - the maker cannot approve its own request
        approval_decide(approval_id=approval.id, user=maker, approve=True, reason="", now=MONDAY)
    assert cycle_run(kind="intraday", as_of=MONDAY + timedelta(minutes=5), actor="test").batches.count() == 0

    approval_decide(approval_id=approval.id, user=checker, approve=True, reason="", now=MONDAY + timedelta(minutes=6))

    exclusion.refresh_from_db()
    assert (exclusion.status, exclusion.lifted_by) == ("lifted", "user:pat")
    taken = cycle_run(kind="intraday", as_of=MONDAY + timedelta(minutes=10), actor="test")
    assert [b.counterparty.code for b in taken.batches.all()] == ["SG1"]
    assert ApprovalRequest.objects.get(pk=approval.id).status == "approved"


def test_taking_back_a_counterparty_that_is_not_excluded_is_refused(network):
    with pytest.raises(Conflict):
        counterparty_include_request(code="SG1", reason="", user=staff("olga", "ops_operator"), now=MONDAY)
    with pytest.raises(NotFound):
        counterparty_exclude(code="HK1", reason="home cannot be excluded", actor="user:olga", now=MONDAY)


# --- affirmation -------------------------------------------------------------------------------------


def test_homes_outbound_legs_wait_for_the_counterpartys_affirmation(network, settings):
    settings.BATCH_AFFIRMATION_WINDOW_MINUTES = 30
    ingest(trade(quantity="1"))
    batch = run(MONDAY)
    assert (batch.affirmation, batch.affirmation_due) == ("pending", MONDAY + timedelta(minutes=30))
    confirm(leg(batch, "BTC"), MONDAY + timedelta(minutes=5))
    assert leg(batch, "HKD").status == "pending"

    batch_affirm(batch_id=batch.id, operator=network.sg1, actor="SG1:key", now=MONDAY + timedelta(minutes=6))

    batch.refresh_from_db()
    assert (batch.affirmation, leg(batch, "HKD").status) == ("affirmed", "instructed")


def test_a_batch_not_affirmed_within_the_window_proceeds_as_affirmed_recorded_as_such(network, settings):
    settings.BATCH_AFFIRMATION_WINDOW_MINUTES = 30
    ingest(trade(quantity="1"))
    batch = run(MONDAY)
    confirm(leg(batch, "BTC"), MONDAY + timedelta(minutes=5))

    deadlines_check(as_of=MONDAY + timedelta(minutes=29), actor="beat")
    assert Batch.objects.get(pk=batch.pk).affirmation == "pending"
    deadlines_check(as_of=MONDAY + timedelta(minutes=30), actor="beat")

    batch.refresh_from_db()
    assert (batch.affirmation, leg(batch, "HKD").status) == ("deemed_affirmed", "instructed")
    assert AuditEvent.objects.filter(action="batch.deemed_affirmed", object_id=str(batch.id)).exists()


def test_without_a_window_affirmation_is_not_required(network):
    ingest(trade(quantity="1"))
    batch = run(MONDAY)
    confirm(leg(batch, "BTC"), MONDAY + timedelta(minutes=5))
    batch.refresh_from_db()
    assert (batch.affirmation, leg(batch, "HKD").status) == ("not_required", "instructed")


@pytest.mark.para(9)
def test_a_dispute_holds_the_batch_opens_a_break_and_alerts_operations(network, settings):
    settings.BATCH_AFFIRMATION_WINDOW_MINUTES = 30
    ingest(trade(quantity="1"))
    batch = run(MONDAY)

    batch_dispute(
        batch_id=batch.id,
        operator=network.sg1,
        reason="trade T1 price differs from our record",
        actor="SG1:key",
        now=MONDAY + timedelta(minutes=3),
    )

    batch.refresh_from_db()
    assert batch.affirmation == "disputed" and batch.held_at == MONDAY + timedelta(minutes=3)
    brk = Break.objects.get(kind="batch_disputed")
    assert brk.counterparty == network.sg1 and "price differs" in brk.description
    assert Alert.objects.get(kind="batch_disputed").operator_code == "SG1"
    assert deadlines_check(as_of=MONDAY + timedelta(hours=4), actor="beat").failed == []  # held: no deadline
    with pytest.raises(Conflict):
        batch_affirm(batch_id=batch.id, operator=network.sg1, actor="SG1:key", now=MONDAY + timedelta(minutes=4))


def test_a_counterparty_answers_only_for_its_own_batches(network):
    ingest(trade(quantity="1"))
    batch = run(MONDAY)
    with pytest.raises(NotFound):
        batch_affirm(batch_id=batch.id, operator=network.jp1, actor="JP1:key", now=MONDAY)
    with pytest.raises(NotFound):
        batch_dispute(batch_id=batch.id, operator=network.jp1, reason="not ours", actor="JP1:key", now=MONDAY)


# --- shown to operations: the dashboard and the daily settlement report --------------------------


@pytest.mark.para(14)
def test_held_and_excluded_are_on_the_dashboard_and_still_breaches_in_the_settlement_report(client, network):
    from operations.services.reports import settlement_report

    ingest(trade(quantity="1"), trade(sell=("JP1", "j"), quantity="1"))
    cycle = cycle_run(kind="intraday", as_of=MONDAY, actor="test")
    sg1_batch = cycle.batches.get(counterparty__code="SG1")
    batch_hold(batch_id=sg1_batch.id, reason="SG1 wallet migration", actor="user:olga", now=MONDAY)
    counterparty_exclude(code="JP1", reason="screening JP1", actor="user:olga", now=MONDAY)
    Batch.objects.filter(counterparty__code="JP1").update(status="failed")  # JP1's obligations wait outside
    Obligation.objects.filter(counterparty__code="JP1").update(status="open", batch=None)
    client.force_login(staff("viewer", "ops_viewer"))

    page = client.get("/ops/").content.decode()
    report = settlement_report(day=(MONDAY + timedelta(days=2)).date())

    assert "SG1 wallet migration" in page and "screening JP1" in page
    assert {line["counterparty"] for line in report["breaches"]} == {"SG1", "JP1"}
    assert {line["held_or_excluded"] for line in report["breaches"]} == {
        f"batch {sg1_batch.id} held: SG1 wallet migration",
        "JP1 excluded: screening JP1",
    }
    assert [h["batch"] for h in report["held_batches"]] == [sg1_batch.id]
    assert [x["counterparty"] for x in report["excluded_counterparties"]] == ["JP1"]
