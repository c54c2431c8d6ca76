"""The network file on a running network (DESIGN sections 11 and 12): its
change set is proposed as one approval a different ops_approver approves;
omitted optional keys leave live values alone; a cap never above the fund."""

import json
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from controls.exceptions import Conflict, Forbidden, InvalidInput
from controls.models import ApprovalRequest, AuditEvent, ChangeProposal
from controls.services.approvals import approval_decide
from controls.services.changes import Operation, change_propose
from operations.services.network import NetworkLoadResult, network_load
from registry.models import BankAccount, Operator, Wallet
from registry.selectors import operator_eligibility
from settlement.models import CapConfig

pytestmark = pytest.mark.django_db
DEMO = (settings.BASE_DIR / "demo" / "network.toml").read_text(encoding="utf-8")
NEW_ACCOUNT = (
    '\n[[bank_account]]\noperator = "SG1"\nrail = "hkd-chats"\nnumber = "999-000000-001"\nbank = "Elsewhere Bank"\n'
)


def ops_user(name: str, group: str) -> User:
    user, created = User.objects.get_or_create(username=name, defaults={"is_staff": True})
    if created:
        user.groups.add(Group.objects.get(name=group))
    return user


def load(text: str, **kwargs) -> NetworkLoadResult:
    return network_load(text=text, actor="test", **kwargs)


def replace_once(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def approve(approval_id: int, name: str = "checker") -> ApprovalRequest:
    return approval_decide(
        approval_id=approval_id, user=ops_user(name, "ops_approver"), approve=True, reason="", now=timezone.now()
    )


@pytest.fixture
def running():
    """The demo network, loaded on an empty database (applied at once)."""
    result = load(DEMO)
    assert result.approval_id is None and result.created > 0
    return result


@pytest.mark.para(23, 13)
def test_on_a_running_network_the_file_is_proposed_as_one_approval(running):
    maker = ops_user("maker", "ops_operator")
    text = replace_once(DEMO, 'limit_hkd = "40000000"', 'limit_hkd = "30000000"') + NEW_ACCOUNT

    result = load(text, user=maker)

    approval = ApprovalRequest.objects.get(pk=result.approval_id)
    assert (approval.kind, approval.status, approval.requested_by) == ("network_change", "pending", maker)
    assert Operator.objects.get(code="SG1").limit_hkd == Decimal("40000000")  # nothing applied yet
    assert not BankAccount.objects.filter(number="999-000000-001").exists()
    changes = {(c.target, c.natural_key, c.operation): c for c in ChangeProposal.objects.filter(approval=approval)}
    limit = changes["registry.Operator", "SG1", "update"]
    assert (limit.before, limit.after) == ({"limit_hkd": "40000000.00"}, {"limit_hkd": "30000000"})
    assert limit.object_id == str(Operator.objects.get(code="SG1").pk)  # shown on the operator's admin page
    account = changes["registry.BankAccount", "hkd-chats:999-000000-001", "create"]
    assert account.before is None and account.after["operator"] == "SG1"
    assert AuditEvent.objects.filter(action="change.proposed").count() == 2

    with pytest.raises(Forbidden):  # the maker cannot approve, nor could an approver who proposed
        approval_decide(approval_id=approval.id, user=maker, approve=True, reason="", now=timezone.now())
    approve(approval.id)

    assert Operator.objects.get(code="SG1").limit_hkd == Decimal("30000000")
    assert BankAccount.objects.get(number="999-000000-001").operator.code == "SG1"
    applied = AuditEvent.objects.get(action="network.updated", object_type="Operator", object_id="SG1")
    assert (applied.actor, applied.before, applied.after) == (
        "user:checker",
        {"limit_hkd": "40000000.00"},
        {"limit_hkd": "30000000"},
    )
    assert load(text, user=maker).approval_id is None  # nothing left to change: nothing proposed


@pytest.mark.para(23, 13)
def test_a_network_change_made_stale_by_another_approved_change_is_refused(running):
    maker = ops_user("maker", "ops_operator")
    proposal = load(replace_once(DEMO, 'limit_hkd = "40000000"', 'limit_hkd = "30000000"'), user=maker)
    sg1 = Operator.objects.get(code="SG1")
    sg1.limit_hkd = Decimal("35000000")
    approve(change_propose(proposed=sg1, operation=Operation.UPDATE, user=maker, now=timezone.now()).id)

    with pytest.raises(Conflict) as refused:
        approve(proposal.approval_id)

    assert refused.value.code == "stale_proposal"
    assert "limit_hkd was '40000000.00' when proposed, is '35000000.00' now" in refused.value.message
    assert Operator.objects.get(code="SG1").limit_hkd == Decimal("35000000")
    assert ApprovalRequest.objects.get(pk=proposal.approval_id).status == "pending"


def test_a_running_network_needs_a_proposer_and_a_dry_run_shows_the_changes(running):
    text = replace_once(DEMO, 'limit_hkd = "40000000"', 'limit_hkd = "30000000"')

    with pytest.raises(InvalidInput) as refused:
        load(text)
    dry = load(text, dry_run=True)

    assert refused.value.code == "proposer_required"
    assert dry.dry_run and dry.approval_id is None and not ApprovalRequest.objects.exists()
    assert dry.changes == [
        {
            "target": "registry.Operator",
            "object_id": str(Operator.objects.get(code="SG1").pk),
            "natural_key": "SG1",
            "operation": "update",
            "before": {"limit_hkd": "40000000.00"},
            "after": {"limit_hkd": "30000000"},
        }
    ]


def test_the_command_proposes_shows_the_diff_and_reports_the_approval_id(running, tmp_path):
    ops_user("maker", "ops_operator")
    path = tmp_path / "network.toml"
    path.write_text(replace_once(DEMO, 'limit_hkd = "40000000"', 'limit_hkd = "30000000"'), encoding="utf-8")

    dry, out = StringIO(), StringIO()
    call_command("load_network", str(path), "--dry-run", stdout=dry)
    with pytest.raises(CommandError, match="--user USERNAME"):
        call_command("load_network", str(path), stdout=StringIO())
    call_command("load_network", str(path), "--user", "maker", "--json", stdout=out)

    assert "dry run, rolled back: 0 created, 1 updated" in dry.getvalue()
    assert "operator SG1: limit hkd 40000000.00 -> 30000000" in dry.getvalue()
    body = json.loads(out.getvalue())
    assert body["proposed"] is True and body["approval_id"] == ApprovalRequest.objects.get().id
    assert body["changes"][0]["after"] == {"limit_hkd": "30000000"}


@pytest.mark.para(23, 7)
def test_an_omitted_optional_key_leaves_a_live_value_alone_and_an_empty_one_clears_it(running):
    sg1_table = DEMO[DEMO.index('code = "SG1"') : DEMO.index('[[overseas]]\ncode = "JP1"')]
    trimmed = sg1_table.replace('limit_hkd = "40000000"\n', "").replace('dvp_policy = "receive_first"\n', "")
    trimmed = trimmed.replace('sfc_approval = "SFC/SOB/2026/001"\n', "").replace("approved_on = 2026-01-15\n", "")
    without = DEMO.replace(sg1_table, trimmed)
    without = without.replace('warn_at = "0.70"\n', "").replace('custodian = "Lion City Custody Pte Ltd"\n', "")

    result = load(without, user=ops_user("maker", "ops_operator"))

    assert not result.changed and result.approval_id is None
    sg1 = Operator.objects.get(code="SG1")
    assert (sg1.limit_hkd, sg1.sfc_approval, sg1.approved_on) == (
        Decimal("40000000"),
        "SFC/SOB/2026/001",
        date(2026, 1, 15),
    )
    assert operator_eligibility(sg1) == []
    assert Wallet.objects.get(operator=sg1).custodian.name == "Lion City Custody Pte Ltd"
    assert CapConfig.objects.get().warn_at == Decimal("0.70")

    cleared = DEMO.replace(sg1_table, sg1_table.replace('"40000000"', '""').replace('"SFC/SOB/2026/001"', '""'))
    cleared = cleared.replace("approved_on = 2026-01-15\n", "")
    proposal = load(cleared, user=ops_user("maker", "ops_operator"))
    approve(proposal.approval_id)

    sg1.refresh_from_db()
    assert (sg1.limit_hkd, sg1.sfc_approval, sg1.approved_on) == (None, "", None)
    assert "has no SFC approval reference and date" in operator_eligibility(sg1)[0]


def test_an_omitted_threshold_keeps_its_current_value_when_checking_the_order(running):
    CapConfig.objects.update(warn_at=Decimal("0.50"), settle_at=Decimal("0.60"))
    text = replace_once(DEMO, 'warn_at = "0.70"\nsettle_at = "0.80"\n', 'settle_at = "0.65"\n')

    result = load(text, user=ops_user("maker", "ops_operator"))

    assert result.changes[0]["before"] == {"settle_at": "0.6000"} and result.changes[0]["after"] == {
        "settle_at": "0.65"
    }


@pytest.mark.para(17)
def test_a_cap_above_the_opening_fund_is_refused_on_an_empty_database():
    text = replace_once(DEMO, 'total_hkd = "100000000"', 'total_hkd = "120000000.01"')

    with pytest.raises(Conflict) as refused:
        load(text)

    line = text[: text.index('total_hkd = "120000000.01"')].count("\n") + 1
    assert refused.value.code == "cap_above_fund"
    assert refused.value.message == (
        f'line {line}: [cap] key "total_hkd": a cap of 120000000.01 HKD exceeds the reserve fund\'s '
        "120000000 HKD (para 17)"
    )
    assert not Operator.objects.exists()


@pytest.mark.para(17)
def test_a_cap_above_the_current_fund_is_refused_on_a_running_network(running):
    text = replace_once(DEMO, 'total_hkd = "100000000"', 'total_hkd = "130000000"')

    with pytest.raises(Conflict) as refused:
        load(text, user=ops_user("maker", "ops_operator"))

    assert refused.value.code == "cap_above_fund"
    assert "exceeds the reserve fund's 120000000.00 HKD" in refused.value.message
    assert not ApprovalRequest.objects.exists()
    assert CapConfig.objects.get().total_hkd == Decimal("100000000")


@pytest.mark.para(23, 7)
def test_jurisdiction_facts_of_a_running_network_are_proposed(running):
    import tomllib

    from registry.models import Jurisdiction
    from registry.services.jurisdictions import DATA_FILE, jurisdictions_sync

    data = tomllib.loads(DATA_FILE.read_text(encoding="utf-8"))
    for row in data["jurisdiction"]:
        if row["code"] == "SG":
            row["increased_monitoring"] = True  # SG1 would become ineligible

    with pytest.raises(InvalidInput, match="need four eyes"):
        jurisdictions_sync(data=data, actor="ops")
    result = jurisdictions_sync(data=data, actor="ops", user=ops_user("maker", "ops_operator"))

    assert (result["updated"], result["created"]) == (1, 0)
    assert not Jurisdiction.objects.get(code="SG").increased_monitoring
    change = ChangeProposal.objects.get(approval_id=result["approval_id"])
    assert (change.natural_key, change.before, change.after) == (
        "SG",
        {"increased_monitoring": False},
        {"increased_monitoring": True},
    )
    approve(result["approval_id"])
    assert Jurisdiction.objects.get(code="SG").increased_monitoring
