"""A counterparty default turns into claims that two people approve and the fund pays.

Worked example (all figures exact). SG1 defaults; close-out mark BTC 560,000 HKD.
  client A (pro-1) bought 1 BTC from SG1 at 500,000: owed 1 BTC = 560,000;
      home retained A's 500,000 HKD -> loss 60,000.00
  client B (retail-in) sold 2 BTC to SG1 at 600,000: owed 1,200,000 HKD;
      home retained B's 2 BTC = 1,120,000 -> loss 80,000.00
  client C (pro-2) bought 1 BTC earlier and that batch settled: received it -> no claim
"""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from controls.models import Alert
from registry.models import Account, Mark
from reserves.models import Claim, Default, ReserveEntry
from reserves.selectors import reserve_available_hkd, reserve_balance_hkd
from settlement.models import Leg, Obligation
from settlement.selectors.exposure import exposure_get
from settlement.services.cycles import cycle_run
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest
from tests.factories import set_reserve, trade
from tests.reserves.conftest import approve

pytestmark = pytest.mark.django_db
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))


def ingest(*items, at):
    result = trades_ingest(
        items=[{**i, "executed_at": at.isoformat()} for i in items], actor="engine", now=at + timedelta(seconds=1)
    )
    assert not result.rejected, result.rejected
    return result


@pytest.fixture
def defaulted_setup(network):
    Account.objects.create(operator=network.home, ref="pro-2", client_class="professional")
    # C's trade settles in a morning cycle
    ingest(trade(trade_id="C1", buy=("HK1", "pro-2"), quantity="1", price="500000"), at=MONDAY - timedelta(hours=2))
    cycle = cycle_run(kind="intraday", as_of=MONDAY - timedelta(hours=1, minutes=30), actor="test")
    for direction in ("inbound", "outbound"):
        for leg in Leg.objects.filter(batch__cycle=cycle, direction=direction):
            leg_confirm(leg_id=leg.id, evidence={"test": True}, actor="test", as_of=MONDAY - timedelta(hours=1))
    # A and B trade afterwards and never settle
    ingest(
        trade(trade_id="A1", buy=("HK1", "pro-1"), sell=("SG1", "s1"), quantity="1", price="500000"),
        trade(trade_id="B1", buy=("SG1", "s2"), sell=("HK1", "retail-in"), quantity="2", price="600000"),
        at=MONDAY - timedelta(minutes=30),
    )
    Mark.objects.create(
        asset=network.btc,
        price_hkd=Decimal("560000"),
        as_of=MONDAY - timedelta(minutes=1),
        source="close-out",
        received_at=MONDAY,
    )
    return network


def declare(maker, checker, operator="SG1"):
    asked = maker.post(
        "/api/v1/ops/defaults",
        {"operator": operator, "reason": "missed settlement, insolvency filing", "as_of": MONDAY.isoformat()},
        format="json",
    )
    return approve(asked, checker)


@pytest.mark.para(16)
def test_a_default_closes_out_and_assesses_one_claim_per_client_with_the_working(defaulted_setup, maker, checker):
    result = declare(maker, checker)

    assert result["result"]["obligations_closed_out"] == 4
    claims = {c.account_ref: c for c in Claim.objects.all()}
    assert set(claims) == {"pro-1", "retail-in"}  # C received their asset: no claim
    assert claims["pro-1"].loss_hkd == Decimal("60000.00")
    assert claims["retail-in"].loss_hkd == Decimal("80000.00")
    line = claims["retail-in"].lines.get()
    assert (line.owed_asset, line.owed_hkd, line.retained_asset, line.retained_hkd) == (
        "HKD",
        Decimal("1200000.00"),
        "BTC",
        Decimal("1120000.00"),
    )
    assert Default.objects.get().marks["BTC"] == "560000.000000000000000000"
    assert set(
        Obligation.objects.filter(counterparty__code="SG1")
        .exclude(trade__trade_id="C1")
        .values_list("status", flat=True)
    ) == {"closed_out"}
    assert exposure_get(as_of=MONDAY).counterparty("SG1").exposure_hkd == Decimal("0.00")


@pytest.mark.para(16)
def test_a_defaulted_counterparty_is_refused_new_trades_and_pre_trade_checks(
    defaulted_setup, maker, checker, engine_client
):
    declare(maker, checker)

    rejected = trades_ingest(items=[trade()], actor="engine").rejected
    check = engine_client.post(
        "/api/v1/exposure/check", {"counterparty": "SG1", "asset": "BTC", "amount": "1"}, format="json"
    ).json()

    assert rejected[0].code == "counterparty_defaulted"
    assert check["allowed"] is False and "defaulted" in check["reason"]


@pytest.mark.para(16)
def test_claims_are_paid_in_full_by_a_second_person(defaulted_setup, maker, checker):
    declare(maker, checker)
    claim = Claim.objects.get(account_ref="pro-1")
    before = reserve_balance_hkd()

    paid = approve(maker.post(f"/api/v1/ops/claims/{claim.id}/approve"), checker)

    claim.refresh_from_db()
    assert (claim.status, claim.paid_hkd, claim.shortfall_hkd) == ("paid", Decimal("60000.00"), Decimal("0.00"))
    assert paid["result"]["paid_hkd"] == "60000.00"
    assert reserve_balance_hkd() == before - Decimal("60000.00")
    assert ReserveEntry.objects.get(kind="payout").claim == claim


@pytest.mark.para(16)
def test_when_the_fund_is_short_claims_are_paid_pro_rata_and_the_shortfall_reported(db, maker, checker):
    from tests.factories import build_network

    network = build_network(reserve="70000")  # the fund covers half of the 140,000 claimed
    ingest(
        trade(trade_id="A1", buy=("HK1", "pro-1"), sell=("SG1", "s1"), quantity="1", price="500000"),
        trade(trade_id="B1", buy=("SG1", "s2"), sell=("HK1", "retail-in"), quantity="2", price="600000"),
        at=MONDAY - timedelta(minutes=30),
    )
    Mark.objects.create(
        asset=network.btc,
        price_hkd=Decimal("560000"),
        as_of=MONDAY - timedelta(minutes=1),
        source="close-out",
        received_at=MONDAY,
    )
    declare(maker, checker)

    for claim in Claim.objects.order_by("account_ref"):
        approve(maker.post(f"/api/v1/ops/claims/{claim.id}/approve"), checker)

    claims = {c.account_ref: (c.paid_hkd, c.shortfall_hkd) for c in Claim.objects.all()}
    assert claims == {
        "pro-1": (Decimal("30000.00"), Decimal("30000.00")),
        "retail-in": (Decimal("40000.00"), Decimal("40000.00")),
    }
    assert reserve_balance_hkd() == Decimal("0.00")  # never below zero
    assert Alert.objects.filter(kind="claims_shortfall").exists()
    assert Default.objects.get().payout_ratio == Decimal("0.5")


@pytest.mark.para(16)
def test_a_claim_is_paid_once(defaulted_setup, maker, checker):
    declare(maker, checker)
    claim = Claim.objects.get(account_ref="pro-1")

    first = maker.post(f"/api/v1/ops/claims/{claim.id}/approve")
    second = maker.post(f"/api/v1/ops/claims/{claim.id}/approve")  # the same pending request back
    approve(first, checker)
    late = maker.post(f"/api/v1/ops/claims/{claim.id}/approve")

    assert first.json()["approval_id"] == second.json()["approval_id"]
    assert late.status_code == 409
    assert ReserveEntry.objects.filter(kind="payout").count() == 1


@pytest.mark.para(16)
def test_a_claim_can_be_rejected_with_a_reason(defaulted_setup, maker, checker):
    declare(maker, checker)
    claim = Claim.objects.get(account_ref="pro-1")

    assert maker.post(f"/api/v1/ops/claims/{claim.id}/reject", {"reason": "x"}, format="json").status_code == 403
    assert checker.post(f"/api/v1/ops/claims/{claim.id}/reject", {}, format="json").status_code == 400
    body = checker.post(
        f"/api/v1/ops/claims/{claim.id}/reject", {"reason": "client was compensated off-line"}, format="json"
    ).json()

    assert body["status"] == "rejected"


@pytest.mark.para(16)
def test_claims_list_detail_and_statement(defaulted_setup, maker, checker):
    declare(maker, checker)
    claim = Claim.objects.get(account_ref="retail-in")

    listing = checker.get("/api/v1/ops/claims?status=assessed&operator=SG1").json()["results"]
    detail = checker.get(f"/api/v1/ops/claims/{claim.id}").json()
    csv_text = checker.get(f"/api/v1/ops/claims/{claim.id}/statement").content.decode()

    assert {c["account"] for c in listing} == {"pro-1", "retail-in"}
    assert detail["lines"] == [
        {
            "trade_id": "B1",
            "owed": {"asset": "HKD", "amount": "1200000", "value_hkd": "1200000.00"},
            "retained": {"asset": "BTC", "amount": "2", "value_hkd": "1120000.00"},
            "loss_hkd": "80000.00",
            "owed_valued_at": "close_out_mark",  # no buy-in recorded
            "buy_in": None,
        }
    ]
    assert "B1,HKD,1200000,1200000.00,BTC,2,1120000.00,80000.00" in csv_text


@pytest.mark.para(16)
def test_a_default_without_a_close_out_mark_is_refused_and_changes_nothing(network, maker, checker):
    network.btc.mark_hkd = None
    network.btc.mark_as_of = None
    network.btc.save()
    ingest(trade(trade_id="A1"), at=MONDAY - timedelta(minutes=30))

    asked = maker.post(
        "/api/v1/ops/defaults", {"operator": "SG1", "reason": "x", "as_of": MONDAY.isoformat()}, format="json"
    )
    response = checker.post(f"/api/v1/ops/approvals/{asked.json()['approval_id']}/approve")

    assert (response.status_code, response.json()["code"]) == (409, "no_close_out_mark")
    network.sg1.refresh_from_db()
    assert network.sg1.status == "active"
    assert Default.objects.count() == 0


@pytest.mark.para(16)
def test_a_claim_filed_by_hand_needs_evidence(network, maker, checker):
    no_evidence = maker.post(
        "/api/v1/ops/claims", {"counterparty": "SG1", "account": "pro-1", "loss_hkd": "100"}, format="json"
    )
    filed = maker.post(
        "/api/v1/ops/claims",
        {"counterparty": "SG1", "account": "pro-1", "loss_hkd": "1000.50", "evidence": "bank recall failed, ref 991"},
        format="json",
    )

    assert no_evidence.status_code == 400
    assert filed.status_code == 201 and filed.json()["status"] == "assessed"
    approve(maker.post(f"/api/v1/ops/claims/{filed.json()['id']}/approve"), checker)
    assert Claim.objects.get().paid_hkd == Decimal("1000.50")


@pytest.mark.para(17)
def test_a_payout_lowers_the_effective_cap_at_once(db, maker, checker):
    from tests.factories import build_network

    build_network(cap="1000000", reserve="1000000")
    ingest(trade(quantity="1.5", price="500000"), at=MONDAY - timedelta(minutes=30))  # 750,000: warning
    assert exposure_get(as_of=MONDAY).state == "warning"
    filed = maker.post(
        "/api/v1/ops/claims",
        {"counterparty": "JP1", "account": "pro-1", "loss_hkd": "100000", "evidence": "e"},
        format="json",
    )

    approve(maker.post(f"/api/v1/ops/claims/{filed.json()['id']}/approve"), checker)

    exposure = exposure_get(as_of=MONDAY)
    assert reserve_available_hkd() == Decimal("900000.00")
    assert exposure.effective_cap_hkd == Decimal("900000.00")
    assert (exposure.state, exposure.utilisation) == ("settling", Decimal("0.8333"))


def test_set_reserve_helper_is_additive(db):
    set_reserve("5", reference="a")
    set_reserve("7", reference="b")
    assert reserve_balance_hkd() == Decimal("12.00")
