"""The regulator's export is complete or fails loudly (circular paras 22,
23): a scenario that makes rows in every family, then every file has rows;
a family that cannot be read makes the command fail, naming it."""

import csv
import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from controls.models import ApprovalRequest
from controls.services.alerts import alert_raise
from controls.services.approvals import approval_request
from custody.models import Break
from custody.services.balances import balance_report_record
from custody.services.breaks import break_raise
from custody.services.statements import statement_import
from operations.models import Subscription
from operations.services import records
from operations.services.notifications import delivery_attempt, notification_sample, subscription_save
from registry.models import BankAccount, Rail
from reserves.models import ReserveFund
from reserves.services.defaults import default_close_out
from reserves.services.ledger import reserve_contribute
from settlement.services.batch_controls import batch_hold, counterparty_exclude
from settlement.services.cycles import cycle_run
from settlement.services.deliveries import delivery_report
from settlement.services.legs import leg_confirm
from settlement.services.marks import marks_post
from settlement.services.prefunding import freeze_create
from settlement.services.reservations import exposure_reserve
from settlement.services.statements import statements_generate
from settlement.services.trades import trades_ingest
from tests.factories import trade

from ..custody.test_statements import HOME_HKD, SG1_HKD, read
from ..reserves.test_trust_account import TRUST, camt053, entry
from ..settlement.prefunding.conftest import Prefunding

pytestmark = [pytest.mark.django_db, pytest.mark.para(22), pytest.mark.para(23)]
HKT = ZoneInfo("Asia/Hong_Kong")


def scenario(network) -> None:
    now = timezone.now()
    executed = (now - timedelta(minutes=10)).isoformat()
    trades_ingest(
        items=[
            # home sells BTC to SG1 for USDC: a batch whose outbound BTC leg gets an instruction
            {
                **trade(
                    trade_id="SELL", base="BTC", quote="USDC", price="64000", buy=("SG1", "s"), sell=("HK1", "pro-1")
                ),
                "executed_at": executed,
            },
            # a retail client without opt-in: a compliance exception
            {
                **trade(
                    trade_id="RETAIL",
                    buy=("HK1", "retail-out"),
                    sell=("JP1", "j"),
                    base="ETH",
                    quote="USDC",
                    price="100",
                ),
                "executed_at": executed,
            },
            {"trade_id": "BROKEN"},  # a trade exception
        ],
        actor="engine",
        now=now,
    )
    marks_post(marks=[{"asset": "BTC", "price_hkd": "500001"}], actor="engine", now=now)
    batch = cycle_run(kind="intraday", as_of=now, actor="test").batches.get(counterparty__code="SG1")
    inbound = batch.legs.get(direction="inbound")
    delivery_report(
        leg_id=inbound.id, tx_hash="0x" + "ab" * 32, bank_reference=None, operator=network.sg1, actor="sg1", now=now
    )
    leg_confirm(leg_id=inbound.id, evidence={"test": True}, actor="test", as_of=now)

    rail = Rail.objects.get(code="hkd-chats")
    BankAccount.objects.create(operator=network.home, rail=rail, number=HOME_HKD, bank="HSBC Hong Kong")
    BankAccount.objects.create(operator=network.sg1, rail=rail, number=SG1_HKD, bank="Bank of China (HK)")
    statement_import(data=read("hk/hk_camt053.xml"), filename="s.xml", format=None, actor="t", now=now, reconcile=False)
    balance_report_record(
        source="HSBC",
        reference="R1",
        as_of=now,
        lines=[{"rail": "hkd-chats", "account": HOME_HKD, "asset": "HKD", "amount": "1.00"}],
        actor="t",
        now=now,
    )
    break_raise(
        key="test:1",
        kind=Break.Kind.UNMATCHED_RECEIPT,
        asset_id=network.hkd.id,
        amount=Decimal("1.5"),
        description="a receipt nobody expected",
        actor="t",
        at=now,
    )
    maker = User.objects.create_user("maker", is_staff=True)
    maker.groups.add(Group.objects.get_or_create(name="ops_operator")[0])
    approval_request(
        kind=ApprovalRequest.Kind.LEG_CONFIRM,
        payload={"leg_id": batch.legs.get(direction="outbound").id, "evidence": "SWIFT copy"},
        user=maker,
        now=now,
    )
    alert_raise(kind="test", message="look at this", at=now)
    # JP1 delivered its ETH before its default: a carried credit for the close-out
    jp1_batch = batch.cycle.batches.get(counterparty__code="JP1")
    batch_hold(batch_id=jp1_batch.id, reason="JP1 under review", actor="user:maker", now=now)  # nothing more goes out
    leg_confirm(leg_id=jp1_batch.legs.get(direction="inbound").id, evidence={"test": True}, actor="test", as_of=now)
    counterparty_exclude(code="SG1", reason="screening", actor="user:maker", now=now)
    statements_generate(day=timezone.localdate() - timedelta(days=1), actor="test", now=now)
    default_close_out(
        operator_code="JP1",
        reason="insolvent",
        as_of=now,
        declared_by="user:maker",
        approved_by="user:checker",
        approval=None,
        now=now,
    )
    # para 10: a designated custodian's attestation, a deposit, an order's hold, a freeze
    prefunding = Prefunding(network, {}, {})
    prefunding.designate("SG1")
    prefunding.attest("SG1", "USDC", "1000000")
    prefunding.fund("SG1", "s", "USDC", "5000")
    assert prefunding.hold("O-1", "100", operator="SG1", account="s", asset="USDC").outcome == "created"
    freeze_create(operator="SG1", account="s", reason="client under review", actor="t", now=now)

    # para 17: the reserve fund's trust account shows a ledger entry, and its closing balance is checked
    trust = BankAccount.objects.create(
        operator=network.home, rail=Rail.objects.get(code="hkd-chats"), number=TRUST, bank="Example Bank (Hong Kong)"
    )
    ReserveFund.objects.update(bank_account=trust)
    reserve_contribute(amount_hkd="1000", reference="REC-1", actor="t", now=now)
    day = timezone.localdate(now).isoformat()
    statement_import(
        data=camt053(
            statement_id="TRUST-REC",
            day=day,
            opening="120000000.00",
            closing="120001000.00",
            entries=[entry("9", "1000.00", "CRDT", "REC-1", day=day)],
        ),
        filename="trust.xml",
        format=None,
        actor="t",
        now=now,
    )
    # section 5: a reserving pre-trade check holds room under the cap
    reserved = exposure_reserve(
        counterparty="SG1", asset="BTC", amount="0.1", account="pro-1", actor="engine", as_of=now
    )
    assert reserved.allowed

    # para 15: a notification pushed to a subscriber, and its delivery
    subscription = subscription_save(
        subscription=Subscription(name="duty desk", channel="email", email="duty@example.org", kinds=["default"]),
        actor="t",
        now=now,
    )
    delivery = notification_sample(subscription=subscription, actor="t", now=now)
    delivery_attempt(delivery_id=delivery.id, now=now, last=True)


def export(tmp_path) -> dict:
    today = timezone.localdate()
    out = StringIO()
    call_command(
        "export_records",
        "--from",
        (today - timedelta(days=400)).isoformat(),
        "--to",
        (today + timedelta(days=400)).isoformat(),
        "--out",
        str(tmp_path / "x"),
        "--json",
        stdout=out,
    )
    return json.loads(out.getvalue())


EVERY_FAMILY = {
    "trades.csv",
    "trade_exceptions.csv",
    "compliance_exceptions.csv",
    "obligations.csv",
    "cycles.csv",
    "batches.csv",
    "batch_items.csv",
    "legs.csv",
    "deliveries.csv",
    "carried_credits.csv",
    "counterparty_exclusions.csv",
    "settlement_statements.csv",
    "instructions.csv",
    "marks.csv",
    "observed_movements.csv",
    "bank_statements.csv",
    "balance_reports.csv",
    "balance_report_lines.csv",
    "breaks.csv",
    "break_events.csv",
    "approvals.csv",
    "alerts.csv",
    "defaults.csv",
    "claims.csv",
    "claim_lines.csv",
    "reserve_ledger.csv",
    "exposure_reservations.csv",
    "trust_matches.csv",
    "trust_balance_checks.csv",
    "prefunding_holds.csv",
    "prefunding_hold_events.csv",
    "prefunding_funding_events.csv",
    "prefunding_freezes.csv",
    "prefunding_attestations.csv",
    "notifications.csv",
    "notification_deliveries.csv",
    "audit_trail.jsonl",
}


def test_every_family_has_rows_after_a_scenario_that_makes_some(network, tmp_path):
    scenario(network)

    manifest = export(tmp_path)

    assert manifest["complete"] is True
    assert set(manifest["files"]) == EVERY_FAMILY
    empty = sorted(name for name, info in manifest["files"].items() if not info.get("rows"))
    assert empty == []
    with (tmp_path / "x" / "observed_movements.csv").open() as handle:
        movements = list(csv.DictReader(handle))
    assert {m["amount"] for m in movements} >= {"740000.00"}  # at HKD's scale, not 18 places
    with (tmp_path / "x" / "instructions.csv").open() as handle:
        (instruction,) = list(csv.DictReader(handle))
    assert instruction["amount"] == "1.00000000"


def test_a_family_that_cannot_be_read_fails_the_export_and_is_named(network, tmp_path, monkeypatch):
    broken = records.Table("observed_movements", "custody.ObservedMovement", "occurred_at", ())
    monkeypatch.setattr(records, "TABLES", (*records.TABLES, broken))

    with pytest.raises(CommandError, match="observed_movements could not be read"):
        export(tmp_path)

    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert manifest["complete"] is False
    assert "ObservedMovement" in manifest["files"]["observed_movements.csv"]["error"]
