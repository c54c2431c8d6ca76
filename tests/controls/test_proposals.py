"""Maker-checker on the records that decide who is paid and how money moves
(DESIGN section 12): in the admin, saving proposes; a different ops_approver
approves; the change is re-checked under the row lock, applied and audited."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import RequestFactory
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from controls.exceptions import Conflict, Forbidden
from controls.models import Alert, ApprovalRequest, AuditEvent, ChangeProposal
from controls.services.alerts import alert_raise
from controls.services.approvals import approval_decide
from controls.services.changes import Operation, change_propose
from custody.models import Instruction
from custody.services.instructions import instructions_write
from registry.models import Custodian, Jurisdiction, Operator, Rail, Wallet
from settlement.models import ComplianceException, Leg, TradeException
from settlement.services.cycles import cycle_run
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = pytest.mark.django_db
HKT = ZoneInfo("Asia/Hong_Kong")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=HKT)
OLD = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"
HOME = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
DEAD = "0x000000000000000000000000000000000000dEaD"


def ops_user(name: str, group: str) -> User:
    user = User.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def wallets(network):
    rail = Rail.objects.get(code="eth")
    Wallet.objects.create(operator=network.home, rail=rail, address=HOME)
    return Wallet.objects.create(operator=network.sg1, rail=rail, address=OLD)


def form_data(obj, user, **changes) -> dict:
    """The admin change form of ``obj`` as a browser would post it, with ``changes``."""
    model_admin = admin.site._registry[type(obj)]
    request = RequestFactory().get("/")
    request.user = user
    form = model_admin.get_form(request, obj, change=True)(instance=obj)
    data = {}
    for name, bound in ((name, form[name]) for name in form.fields):
        value = bound.value()
        if value is None or value is False:
            continue
        data[name] = value
    for formset, _ in model_admin.get_formsets_with_inlines(request, obj):
        prefix = formset(instance=obj).prefix  # read-only inlines: an empty management form
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    data.update(changes)
    return data


def change_in_admin(client, obj, user, **changes):
    client.force_login(user)
    meta = obj._meta
    return client.post(
        reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]),
        form_data(obj, user, **changes),
        follow=True,
    )


def approve_in_admin(client, user, approval_id: int):
    client.force_login(user)
    return client.post(
        reverse("admin:controls_approvalrequest_changelist"),
        {"action": "approve", "_selected_action": [approval_id]},
        follow=True,
    )


def outbound_instruction(network, *, hours: int) -> Instruction:
    """SG1 buys 1 BTC from home: home owes SG1 one BTC, paid to SG1's wallet."""
    at = MONDAY + timedelta(hours=hours)
    item = trade(base="BTC", quote="USDC", price="64000", quantity="1", buy=("SG1", "s"), sell=("HK1", "pro-1"))
    item["executed_at"] = (at - timedelta(minutes=5)).isoformat()
    trades_ingest(items=[item], actor="engine", now=at - timedelta(minutes=4))
    batch = cycle_run(kind="intraday", as_of=at, actor="test").batches.get()
    leg_confirm(leg_id=batch.legs.get(direction="inbound").id, evidence={"t": 1}, actor="t", as_of=at)
    instructions_write(as_of=at)
    return Instruction.objects.get(leg__batch=batch)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.mark.para(23, 13)
def test_a_wallet_changed_in_the_admin_is_proposed_and_payments_follow_only_after_approval(client, network, wallets):
    maker, checker = ops_user("maker", "ops_operator"), ops_user("checker", "ops_approver")

    page = change_in_admin(client, wallets, maker, address=DEAD)

    approval = ApprovalRequest.objects.get()
    said = " ".join(messages_of(page))
    assert f"proposed as approval {approval.id}; a different ops_approver must approve it" in said
    wallets.refresh_from_db()
    assert wallets.address == OLD  # nothing saved
    (change,) = approval.changes.all()
    assert (change.target, change.operation, change.natural_key) == ("registry.Wallet", "update", f"eth:{OLD}")
    assert (change.before, change.after) == ({"address": OLD}, {"address": DEAD.lower()})
    # the object shows its pending proposal
    shown = client.get(reverse("admin:registry_wallet_change", args=[wallets.pk]))
    assert f"approval {approval.id}" in " ".join(messages_of(shown)) and "maker" in " ".join(messages_of(shown))

    assert outbound_instruction(network, hours=0).to_ref == OLD  # still the registered address

    approve_in_admin(client, maker, approval.id)  # a maker is not an approver
    approval.refresh_from_db()
    assert approval.status == "pending"

    approve_in_admin(client, checker, approval.id)
    approval.refresh_from_db()
    wallets.refresh_from_db()
    assert (approval.status, approval.decided_by, wallets.address) == ("approved", checker, DEAD.lower())
    assert outbound_instruction(network, hours=3).to_ref == DEAD.lower()


@pytest.mark.para(23, 13)
def test_the_person_who_proposes_cannot_approve(network, wallets):
    approver = ops_user("approver", "ops_approver")
    wallets.address = DEAD
    approval = change_propose(proposed=wallets, operation=Operation.UPDATE, user=approver, now=MONDAY)

    with pytest.raises(Forbidden) as refused:
        approval_decide(approval_id=approval.id, user=approver, approve=True, reason="", now=MONDAY)

    assert refused.value.code == "four_eyes"
    assert Wallet.objects.get(pk=wallets.pk).address == OLD


@pytest.mark.para(23, 13)
def test_a_proposal_made_stale_by_another_approved_change_is_refused(network, wallets):
    alice, bob, checker = (
        ops_user("alice", "ops_operator"),
        ops_user("bob", "ops_operator"),
        ops_user("c", "ops_approver"),
    )
    first, second = Wallet.objects.get(pk=wallets.pk), Wallet.objects.get(pk=wallets.pk)
    first.address, second.address = "0x" + "1" * 40, DEAD
    one = change_propose(proposed=first, operation=Operation.UPDATE, user=alice, now=MONDAY)
    two = change_propose(proposed=second, operation=Operation.UPDATE, user=bob, now=MONDAY)
    approval_decide(approval_id=one.id, user=checker, approve=True, reason="", now=MONDAY)

    with pytest.raises(Conflict) as refused:
        approval_decide(approval_id=two.id, user=checker, approve=True, reason="", now=MONDAY)

    assert refused.value.code == "stale_proposal"
    assert "changed since this was proposed" in refused.value.message and OLD in refused.value.message
    two.refresh_from_db()
    assert two.status == "pending"
    assert Wallet.objects.get(pk=wallets.pk).address == "0x" + "1" * 40


@pytest.mark.para(23, 13)
def test_every_proposal_decision_and_applied_change_is_audited_with_before_and_after(network, wallets):
    maker, checker = ops_user("maker", "ops_operator"), ops_user("checker", "ops_approver")
    wallets.address = DEAD
    approval = change_propose(proposed=wallets, operation=Operation.UPDATE, user=maker, now=MONDAY)
    approval_decide(approval_id=approval.id, user=checker, approve=True, reason="", now=MONDAY)

    events = {e.action: e for e in AuditEvent.objects.all()}
    proposed, applied = events["change.proposed"], events["change.applied.update"]
    assert (proposed.actor, proposed.object_type, proposed.object_id) == ("user:maker", "Wallet", f"eth:{OLD}")
    assert proposed.before == {"address": OLD}
    assert proposed.after == {"approval": approval.id, "operation": "update", "values": {"address": DEAD.lower()}}
    assert events["approval.requested"].after["payload"]["changes"][0]["before"] == {"address": OLD}
    assert events["approval.approved"].before == {"status": "pending"}
    assert events["approval.approved"].after["result"]["applied"][0]["natural_key"] == f"eth:{DEAD.lower()}"
    assert (applied.actor, applied.before, applied.after) == (
        "user:checker",
        {"address": OLD},
        {"address": DEAD.lower()},
    )


@pytest.mark.para(23, 7)
def test_eligibility_data_changed_in_the_admin_waits_for_a_second_person(client, network):
    maker, checker = ops_user("maker", "ops_operator"), ops_user("checker", "ops_approver")
    sg1 = network.sg1

    change_in_admin(client, sg1, maker, dvp_policy="escrow", limit_hkd="1", sfc_approval="", approved_on="")
    change_in_admin(client, Jurisdiction.objects.get(code="SG"), maker, iosco_aligned="")

    sg1.refresh_from_db()
    assert (sg1.dvp_policy, sg1.limit_hkd, sg1.sfc_approval) == ("receive_first", None, "SFC/SOB/2026/SG1")
    assert Jurisdiction.objects.get(code="SG").iosco_aligned is True
    assert ApprovalRequest.objects.filter(kind="record_change", status="pending").count() == 2
    for approval in ApprovalRequest.objects.order_by("id"):
        approval_decide(approval_id=approval.id, user=checker, approve=True, reason="", now=MONDAY)
    sg1.refresh_from_db()
    assert (sg1.dvp_policy, str(sg1.limit_hkd), sg1.sfc_approval, sg1.approved_on) == ("escrow", "1.00", "", None)
    assert Jurisdiction.objects.get(code="SG").iosco_aligned is False


@pytest.mark.para(23, 16)
def test_a_default_is_never_set_in_the_admin(client, network):
    maker = ops_user("maker", "ops_operator")

    page = change_in_admin(client, network.sg1, maker, status="defaulted")

    assert "only through the default process" in " ".join(messages_of(page))
    assert not ApprovalRequest.objects.exists()
    assert Operator.objects.get(code="SG1").status == "active"


@pytest.mark.para(23)
def test_a_superuser_proposes_too(client, network, wallets):
    root = User.objects.create_superuser("root")
    change_in_admin(client, wallets, root, address=DEAD)

    assert Wallet.objects.get(pk=wallets.pk).address == OLD
    assert ApprovalRequest.objects.get().requested_by == root
    with pytest.raises(Forbidden):  # and approves only as an ops_approver
        approval_decide(approval_id=ApprovalRequest.objects.get().id, user=root, approve=True, reason="", now=MONDAY)


@pytest.mark.para(23, 13)
def test_creation_and_deletion_are_proposed_and_a_record_in_use_is_not_deleted(client, network, wallets):
    maker, checker = ops_user("maker", "ops_operator"), ops_user("checker", "ops_approver")
    client.force_login(maker)

    client.post(reverse("admin:registry_custodian_add"), {"name": "New Custody Ltd"})
    assert not Custodian.objects.filter(name="New Custody Ltd").exists()
    created = ApprovalRequest.objects.get()
    assert created.changes.get().operation == "create"
    listing = client.get(reverse("admin:registry_custodian_changelist"))
    assert f"approval {created.id}" in " ".join(messages_of(listing))
    approval_decide(approval_id=created.id, user=checker, approve=True, reason="", now=MONDAY)
    custodian = Custodian.objects.get(name="New Custody Ltd")

    client.post(reverse("admin:registry_custodian_delete", args=[custodian.pk]), {"post": "yes"})
    deletion = ApprovalRequest.objects.get(changes__operation="delete")
    assert Custodian.objects.filter(pk=custodian.pk).exists()
    approval_decide(approval_id=deletion.id, user=checker, approve=True, reason="", now=MONDAY)
    assert not Custodian.objects.filter(pk=custodian.pk).exists()

    rail = Rail.objects.get(code="eth")  # assets and wallets sit on it
    rail_deletion = change_propose(proposed=rail, operation=Operation.DELETE, user=maker, now=MONDAY)
    with pytest.raises(Conflict) as refused:
        approval_decide(approval_id=rail_deletion.id, user=checker, approve=True, reason="", now=MONDAY)
    assert refused.value.code == "in_use"
    assert Rail.objects.filter(code="eth").exists()


@pytest.mark.para(23, 14)
def test_schedules_change_only_by_proposal(client, network):
    maker, checker = ops_user("maker", "ops_operator"), ops_user("checker", "ops_approver")
    task = PeriodicTask.objects.get(name="cycles: end of day 22:00 HKT")
    client.force_login(maker)

    client.post(
        reverse("admin:django_celery_beat_periodictask_changelist"),
        {"action": "propose_disable", "_selected_action": [task.id]},
    )
    for action in ("disable_tasks", "toggle_tasks"):  # the library's direct actions are gone
        client.post(
            reverse("admin:django_celery_beat_periodictask_changelist"),
            {"action": action, "_selected_action": [task.id]},
        )

    assert PeriodicTask.objects.get(pk=task.pk).enabled is True
    approval = ApprovalRequest.objects.get()
    assert approval.changes.get().before == {"enabled": True}
    approval_decide(approval_id=approval.id, user=checker, approve=True, reason="", now=MONDAY)
    assert PeriodicTask.objects.get(pk=task.pk).enabled is False


@pytest.mark.para(23)
def test_ops_viewer_cannot_resolve_an_exception_or_acknowledge_an_alert(client, network):
    trades_ingest(items=[trade(base="DOGE")], actor="engine")  # an unknown asset: a trade exception
    trades_ingest(items=[trade(buy=("HK1", "retail-out"))], actor="engine")  # no opt-in: a compliance exception
    alert = alert_raise(kind="test", message="look at this")
    exception, compliance = TradeException.objects.get(), ComplianceException.objects.get()
    client.force_login(ops_user("viewer", "ops_viewer"))

    for url, obj, action in (
        ("admin:settlement_tradeexception_changelist", exception, "mark_resolved"),
        ("admin:settlement_complianceexception_changelist", compliance, "mark_resolved"),
        ("admin:controls_alert_changelist", alert, "acknowledge"),
    ):
        listing = client.get(reverse(url))
        assert f'value="{action}"' not in listing.content.decode()
        client.post(reverse(url), {"action": action, "_selected_action": [obj.id]})

    assert TradeException.objects.get().status == "open"
    assert ComplianceException.objects.get().status == "open"
    assert Alert.objects.get().status == "open"


def test_an_ops_operator_can_resolve_and_acknowledge(client, network):
    alert = alert_raise(kind="test", message="look at this")
    client.force_login(ops_user("maker", "ops_operator"))

    client.post(reverse("admin:controls_alert_changelist"), {"action": "acknowledge", "_selected_action": [alert.id]})

    assert Alert.objects.get().status == "acknowledged"


def test_the_approval_page_shows_what_changes_who_asked_and_when(client, network, wallets):
    maker, checker = ops_user("maker", "ops_operator"), ops_user("checker", "ops_approver")
    wallets.address = DEAD
    approval = change_propose(proposed=wallets, operation=Operation.UPDATE, user=maker, now=MONDAY)
    client.force_login(checker)

    listing = client.get(reverse("admin:controls_approvalrequest_changelist")).content.decode()
    page = client.get(reverse("admin:controls_approvalrequest_change", args=[approval.id])).content.decode()

    assert f"wallet eth:{OLD}: address {OLD} -&gt; {DEAD.lower()}" in listing
    assert "maker" in page and "2026" in page and OLD in page and DEAD.lower() in page
    assert ChangeProposal.objects.get().approval == approval


def test_api_keys_made_in_the_admin_are_checked_like_create_api_key(client, network):
    from registry.models import OperatorAPIKey

    client.force_login(User.objects.create_superuser("root"))
    wrong = client.post(
        reverse("admin:registry_operatorapikey_add"), {"operator": network.sg1.pk, "scope": "engine", "name": "x"}
    )
    made = client.post(
        reverse("admin:registry_operatorapikey_add"),
        {"operator": network.sg1.pk, "scope": "operator", "name": "sg1"},
        follow=True,
    )

    assert wrong.status_code == 200 and "acts for the home operator" in wrong.content.decode()
    key = OperatorAPIKey.objects.get()
    assert (key.operator, key.scope, key.name) == (network.sg1, "operator", "sg1")
    assert any("is not shown again" in m for m in messages_of(made))
    assert AuditEvent.objects.filter(action="api_key.created", object_id=key.prefix).exists()
    assert not Leg.objects.exists()


@pytest.mark.para(23, 14)
def test_a_cycle_time_changed_in_the_admin_is_proposed_then_applied(client, network):
    from django_celery_beat.models import CrontabSchedule

    maker, checker = ops_user("maker", "ops_operator"), ops_user("checker", "ops_approver")
    eod = PeriodicTask.objects.get(name="cycles: end of day 22:00 HKT").crontab

    change_in_admin(client, eod, maker, hour="21")

    assert CrontabSchedule.objects.get(pk=eod.pk).hour == "22"
    change = ApprovalRequest.objects.get().changes.get()
    assert (change.before, change.after) == ({"hour": "22"}, {"hour": "21"})
    approval_decide(approval_id=change.approval_id, user=checker, approve=True, reason="", now=MONDAY)
    assert CrontabSchedule.objects.get(pk=eod.pk).hour == "21"
    assert str(CrontabSchedule.objects.get(pk=eod.pk).timezone) == "Asia/Hong_Kong"


@pytest.mark.para(23, 14)
def test_a_new_periodic_task_is_created_only_on_approval(network):
    from django_celery_beat.models import IntervalSchedule

    maker, checker = ops_user("maker", "ops_operator"), ops_user("checker", "ops_approver")
    every = IntervalSchedule.objects.order_by("id").first()
    task = PeriodicTask(name="extra reconcile", task="custody.reconcile", interval=every, kwargs="{}")

    approval = change_propose(proposed=task, operation=Operation.CREATE, user=maker, now=MONDAY)
    assert not PeriodicTask.objects.filter(name="extra reconcile").exists()
    approval_decide(approval_id=approval.id, user=checker, approve=True, reason="", now=MONDAY)

    created = PeriodicTask.objects.get(name="extra reconcile")
    assert (created.task, created.interval, created.enabled) == ("custody.reconcile", every, True)
