"""The fund ledger, the cap, four eyes, sizing and insurance (circular paras 17, 18)."""

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controls.exceptions import Conflict
from controls.models import Alert
from registry.models import Wallet, WalletBalance
from reserves.models import Claim, ExposureSnapshot, InsurancePolicy, ReserveEntry
from reserves.reports import reserve_report
from reserves.selectors import reserve_balance_hkd
from reserves.services.claims import claim_pay
from reserves.services.ledger import reserve_contribute
from reserves.services.monitoring import exposure_snapshot_take, insurance_check
from settlement.models import CapConfig
from tests.reserves.conftest import approve, staff

pytestmark = pytest.mark.django_db
HKT = ZoneInfo("Asia/Hong_Kong")


@pytest.mark.para(17)
def test_a_contribution_is_posted_at_once_and_a_replay_is_the_same_entry(network, maker):
    body = {"kind": "contribution", "amount_hkd": "5000000", "reference": "top-up-2026-11"}
    first = maker.post("/api/v1/ops/reserve/entries", body, format="json")
    again = maker.post("/api/v1/ops/reserve/entries", body, format="json")
    clash = maker.post("/api/v1/ops/reserve/entries", {**body, "amount_hkd": "1"}, format="json")

    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert clash.status_code == 409
    assert reserve_balance_hkd() == Decimal("125000000.00")


@pytest.mark.para(17)
@pytest.mark.parametrize(("amount", "status"), [("30000000", 409), ("20000000.01", 409), ("20000000", 202)])
def test_a_withdrawal_below_the_cap_is_refused(network, maker, checker, amount, status):
    # fund 120,000,000, cap 100,000,000: at most 20,000,000 can leave
    response = maker.post(
        "/api/v1/ops/reserve/entries", {"kind": "withdrawal", "amount_hkd": amount, "reference": "w1"}, format="json"
    )

    assert response.status_code == status
    if status == 202:
        approve(response, checker)
        assert reserve_balance_hkd() == Decimal("100000000.00")
    else:
        assert response.json()["code"] == "below_cap"


@pytest.mark.para(17)
def test_a_withdrawal_is_checked_again_when_approved(network, maker, checker):
    asked = maker.post(
        "/api/v1/ops/reserve/entries",
        {"kind": "withdrawal", "amount_hkd": "15000000", "reference": "w1"},
        format="json",
    )
    maker.post(
        "/api/v1/ops/reserve/entries",
        {"kind": "withdrawal", "amount_hkd": "10000000", "reference": "w2"},
        format="json",
    )
    approve(asked, checker)

    second = checker.post(f"/api/v1/ops/approvals/{asked.json()['approval_id'] + 1}/approve")

    assert (second.status_code, second.json()["code"]) == (409, "below_cap")
    assert reserve_balance_hkd() == Decimal("105000000.00")


@pytest.mark.para(17)
def test_a_reversal_offsets_an_entry_and_nothing_is_edited(network, maker, checker):
    maker.post(
        "/api/v1/ops/reserve/entries",
        {"kind": "contribution", "amount_hkd": "1000", "reference": "typo"},
        format="json",
    )

    approve(
        maker.post(
            "/api/v1/ops/reserve/entries",
            {"kind": "reversal", "reverses": "typo", "reference": "fix-typo"},
            format="json",
        ),
        checker,
    )
    twice = maker.post(
        "/api/v1/ops/reserve/entries", {"kind": "reversal", "reverses": "typo", "reference": "fix-again"}, format="json"
    )

    assert ReserveEntry.objects.get(reference="fix-typo").amount_hkd == Decimal("-1000.00")
    assert reserve_balance_hkd() == Decimal("120000000.00")
    assert twice.status_code == 409


@pytest.mark.para(23)
@pytest.mark.parametrize("ask", ["withdrawal", "cap", "default", "payout"])
def test_four_eyes_the_requester_cannot_approve(network, ask):
    approver = staff("solo", "ops_approver")
    if ask == "payout":
        from registry.models import Operator

        claim = Claim.objects.create(
            counterparty=Operator.objects.get(code="SG1"),
            account_ref="c",
            loss_hkd=Decimal("10"),
            filed_by="t",
            created_at=timezone.now(),
        )
        asked = approver.post(f"/api/v1/ops/claims/{claim.id}/approve")
    else:
        path, body = {
            "withdrawal": ("/api/v1/ops/reserve/entries", {"kind": "withdrawal", "amount_hkd": "1", "reference": "w"}),
            "cap": ("/api/v1/ops/cap", {"total_hkd": "90000000"}),
            "default": ("/api/v1/ops/defaults", {"operator": "SG1", "reason": "test"}),
        }[ask]
        asked = approver.post(path, body, format="json")

    response = approver.post(f"/api/v1/ops/approvals/{asked.json()['approval_id']}/approve")

    assert asked.status_code == 202
    assert (response.status_code, response.json()["code"]) == (403, "four_eyes")
    assert not ReserveEntry.objects.filter(kind__in=["withdrawal", "payout"]).exists()


@pytest.mark.para(17, 23)
def test_a_cap_change_needs_a_second_person_and_may_not_exceed_the_fund(network, maker, checker):
    too_big = maker.post("/api/v1/ops/cap", {"total_hkd": "150000000"}, format="json")
    bad_order = maker.post("/api/v1/ops/cap", {"total_hkd": "1", "warn_at": "0.9", "settle_at": "0.8"}, format="json")
    approve(maker.post("/api/v1/ops/cap", {"total_hkd": "80000000", "warn_at": "0.6"}, format="json"), checker)

    cap = CapConfig.objects.get()
    assert (too_big.status_code, too_big.json()["code"]) == (409, "cap_above_fund")
    assert bad_order.status_code == 400
    assert (cap.total_hkd, cap.warn_at, cap.settle_at) == (Decimal("80000000.00"), Decimal("0.6000"), Decimal("0.8000"))


def test_get_reserve_shows_the_contract_figures(network, checker):
    body = checker.get("/api/v1/ops/reserve").json()

    assert {
        k: body[k]
        for k in ("balance_hkd", "available_hkd", "cap_hkd", "effective_cap_hkd", "coverage_ratio", "recommended_hkd")
    } == {
        "balance_hkd": "120000000.00",
        "available_hkd": "120000000.00",
        "cap_hkd": "100000000.00",
        "effective_cap_hkd": "100000000.00",
        "coverage_ratio": "1.2000",
        "recommended_hkd": "100000000.00",
    }
    assert body["method"]


@pytest.mark.para(17)
def test_the_sizing_report_explains_its_recommendation(network):
    now = datetime(2026, 11, 23, 12, 0, tzinfo=HKT)
    for day, peak in enumerate([10, 40, 90, 30, 120, 60]):  # millions
        ExposureSnapshot.objects.create(
            at=now - timedelta(days=day, hours=1),
            total_hkd=Decimal(peak * 1_000_000),
            effective_cap_hkd=Decimal(100_000_000),
            utilisation=Decimal(peak) / 100,
            state="normal",
        )

    report = reserve_report(as_of=now)

    assert report["last_90_days"]["peak_hkd"] == Decimal("120000000.00")
    assert report["last_90_days"]["p99_daily_peak_hkd"] == Decimal("120000000.00")
    assert report["recommended_cap_hkd"] == Decimal("150000000")  # 1.25 x 120,000,000
    assert report["recommended_hkd"] >= report["cap_hkd"]
    hkd = next(c for c in report["closures"] if c["rail"] == "hkd-chats")
    assert hkd["days"] >= 3  # Christmas 2026: Fri 25, Sat 26, Sun 27 (and Mon 28 if observed)
    assert any("99th percentile" in line for line in report["method"])


def test_reserve_report_command(network):
    out = StringIO()
    call_command("reserve_report", "--json", stdout=out)
    assert json.loads(out.getvalue())["balance_hkd"] == "120000000.00"
    text = StringIO()
    call_command("reserve_report", stdout=text)
    assert "method:" in text.getvalue()


def test_snapshots_are_one_per_minute(network):
    now = timezone.now()
    exposure_snapshot_take(now=now)
    exposure_snapshot_take(now=now.replace(second=59) if now.second < 59 else now)
    assert ExposureSnapshot.objects.count() == 1


@pytest.mark.para(18)
def test_insurance_shortfall_and_expiry_alert_once_a_day(network):
    hot = Wallet.objects.create(
        operator=network.home, rail_id=network.btc.rail_id, address="0x" + "a" * 40, temperature="hot"
    )
    cold = Wallet.objects.create(
        operator=network.home, rail_id=network.btc.rail_id, address="0x" + "b" * 40, temperature="cold"
    )
    WalletBalance.objects.create(
        wallet=hot, asset=network.btc, amount=Decimal("2"), as_of=timezone.now()
    )  # 1,000,000 at 100%
    WalletBalance.objects.create(
        wallet=cold, asset=network.btc, amount=Decimal("10"), as_of=timezone.now()
    )  # 5,000,000 at 50%
    InsurancePolicy.objects.create(
        reference="P-1",
        provider="Harbour Mutual",
        form="insurance",
        coverage_hkd=Decimal("3000000"),
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 12, 10),
    )

    alerts = insurance_check(on=date(2026, 11, 23), actor="test")
    insurance_check(on=date(2026, 11, 23), actor="test")

    kinds = sorted(a.kind for a in alerts)
    assert kinds == ["insurance_shortfall", "policy_expiring"]
    shortfall = Alert.objects.get(kind="insurance_shortfall")
    assert "required 3500000.00 HKD by 500000.00 HKD" in shortfall.message
    assert Alert.objects.filter(kind__in=kinds).count() == 2


@pytest.mark.para(17)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["contribute", "claim"]), st.integers(1, 50_000_000)), min_size=1, max_size=8
    )
)
def test_the_balance_is_the_sum_of_the_entries_and_never_below_zero(network, steps):
    from registry.models import Operator

    sg1 = Operator.objects.get(code="SG1")
    for kind, amount in steps:
        now = timezone.now()
        if kind == "contribute":
            reserve_contribute(
                amount_hkd=f"{amount}.00", reference=f"c-{ReserveEntry.objects.count()}-{amount}", actor="p", now=now
            )
        else:
            claim = Claim.objects.create(
                counterparty=sg1, account_ref="x", loss_hkd=Decimal(amount) * 10, filed_by="p", created_at=now
            )
            claim_pay(claim_id=claim.id, approved_by="p", now=now)
        total = sum(ReserveEntry.objects.values_list("amount_hkd", flat=True), Decimal(0))
        assert reserve_balance_hkd() == total >= 0


@pytest.mark.para(16, 17)
@pytest.mark.django_db(transaction=True)
def test_two_approvers_paying_the_same_claim_and_a_withdrawal_racing_payouts():
    import threading

    from registry.models import Operator
    from tests.factories import build_network

    build_network(cap="100000000", reserve="100300000")
    sg1 = Operator.objects.get(code="SG1")
    now = timezone.now()
    claims = [
        Claim.objects.create(
            counterparty=sg1, account_ref=f"c{i}", loss_hkd=Decimal("200000"), filed_by="t", created_at=now
        )
        for i in range(2)
    ]
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def pay(claim_id: int) -> None:
        try:
            barrier.wait()
            claim_pay(claim_id=claim_id, approved_by="t", now=now)
            outcomes.append("paid")
        except Conflict as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    def withdraw() -> None:
        from reserves.services.ledger import _refuse_below_cap, _write, fund_balance, fund_locked

        try:
            barrier.wait()
            with transaction.atomic():
                fund = fund_locked()
                _refuse_below_cap(balance=fund_balance(fund), amount=Decimal("300000"))
                _write(fund=fund, kind="withdrawal", amount=Decimal("-300000"), reference="w", actor="t", now=now)
            outcomes.append("withdrawn")
        except (Conflict, DatabaseError) as error:
            outcomes.append(getattr(error, "code", "db_error"))
        finally:
            connection.close()

    threads = [threading.Thread(target=pay, args=(claims[0].id,)) for _ in range(2)]
    threads += [threading.Thread(target=pay, args=(claims[1].id,)), threading.Thread(target=withdraw)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert ReserveEntry.objects.filter(kind="payout", claim=claims[0]).count() == 1  # paid once
    assert outcomes.count("claim_not_payable") == 1
    total = sum(ReserveEntry.objects.values_list("amount_hkd", flat=True), Decimal(0))
    assert reserve_balance_hkd() == total >= 0
    # whatever order the lock gave, the withdrawal never took the fund below the cap
    if "withdrawn" in outcomes:
        assert total + sum(c.paid_hkd for c in Claim.objects.all()) >= Decimal("100000000")
