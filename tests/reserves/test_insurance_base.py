"""Insurance base (circular para 18, footnote 4): the settlement assets still
to be delivered by overseas operators count, and an overseas operator's
policy counts only with home or its associated entity beneficiary on trust."""

from datetime import date
from decimal import Decimal

import pytest

from controls.models import Alert
from reserves.models import InsurancePolicy
from reserves.services.monitoring import insurance_check, insurance_required
from settlement.services.trades import trades_ingest
from tests.conftest import staff_client
from tests.factories import trade

pytestmark = pytest.mark.django_db
ON = date(2026, 6, 1)


def policy(reference: str, coverage: str, **fields) -> InsurancePolicy:
    return InsurancePolicy.objects.create(
        reference=reference,
        provider="Harbour Mutual",
        form="insurance",
        coverage_hkd=Decimal(coverage),
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 12, 31),
        **fields,
    )


@pytest.mark.para(18)
def test_required_coverage_counts_the_assets_still_to_be_delivered(network):
    # SG1 owes home 2 BTC (1,000,000 HKD); JP1 owes home 300,000 HKD for BTC home sold it
    trades_ingest(
        items=[
            trade(sell=("SG1", "s"), quantity="2", price="500000"),
            trade(buy=("JP1", "j"), sell=("HK1", "pro-1"), quantity="0.6", price="500000"),
        ],
        actor="engine",
    )

    required = insurance_required(on=ON)

    assert required["to_be_delivered_hkd"] == Decimal("1300000.00")
    assert required["required_hkd"] == Decimal("1300000.00")  # no home wallets here
    body = staff_client("viewer", "ops_viewer").get("/api/v1/ops/insurance").json()
    assert (body["to_be_delivered_hkd"], body["hot_hkd"], body["cold_hkd"]) == ("1300000.00", "0.00", "0.00")


@pytest.mark.para(18)
def test_an_overseas_operators_policy_counts_only_with_home_beneficiary_on_trust(network):
    trades_ingest(items=[trade(sell=("SG1", "s"), quantity="2", price="500000")], actor="engine")
    policy("HOME-1", "400000")
    policy("SG1-NOT-FOR-HOME", "5000000", policyholder=network.sg1)
    policy("SG1-ON-TRUST", "300000", policyholder=network.sg1, trust_beneficiary="associated_entity")

    required = insurance_required(on=ON)

    assert required["coverage_hkd"] == Decimal("700000.00")
    assert required["policies_not_counted"] == ["SG1-NOT-FOR-HOME"]
    assert required["shortfall_hkd"] == Decimal("300000.00")
    alerts = insurance_check(on=ON, actor="test")
    assert [a.kind for a in alerts] == ["insurance_shortfall"]
    assert Alert.objects.get(kind="insurance_shortfall").message.endswith("by 300000.00 HKD")
