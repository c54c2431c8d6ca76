"""Money is exact to the last decimal, end to end: what the engine sends is
what every reader gets back (API, cycle legs, exposure, admin, export)."""

import csv
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from settlement.models import Cycle
from tests.factories import trade

pytestmark = pytest.mark.django_db
HKT = ZoneInfo("Asia/Hong_Kong")
SMALL = "0.123456789012345678"  # 18 decimals: ETH's scale
LARGE = "1234.123456789012345678"
SUM = "1234.246913578024691356"


@pytest.fixture
def exact_trades(engine_client, network):
    executed = datetime(2026, 11, 23, 9, 0, tzinfo=HKT)
    items = [
        trade(
            trade_id=f"EXACT-{i}",
            base="ETH",
            quote="USDC",
            price="2500.5",
            quantity=quantity,
            buy=("HK1", "pro-1"),
            sell=("SG1", "sg-client-1"),
            executed_at=executed.isoformat(),
        )
        for i, quantity in enumerate((SMALL, LARGE))
    ]
    response = engine_client.post("/api/v1/trades", {"trades": items}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["accepted"] == 2
    return executed


@pytest.mark.para(12)
def test_eighteen_decimals_come_back_unchanged_from_obligations_legs_and_exposure(
    engine_client, ops_client, exact_trades
):
    """Circular para 12: obligations are tracked until settled, to the last unit."""
    obligations = engine_client.get("/api/v1/obligations", {"counterparty": "SG1"}).json()["results"]
    eth = sorted(o["amount"] for o in obligations if o["asset"] == "ETH")
    assert eth == [SMALL, LARGE]
    usdc = sorted(o["amount"] for o in obligations if o["asset"] == "USDC")
    # quote = price x quantity, half-even to USDC's 6 decimals
    assert usdc == [
        str((Decimal("2500.5") * Decimal(q)).quantize(Decimal("0.000001"), ROUND_HALF_EVEN)) for q in (SMALL, LARGE)
    ]

    ran = ops_client.post(
        "/api/v1/cycles", {"kind": "intraday", "as_of": (exact_trades + timedelta(hours=1)).isoformat()}, format="json"
    )
    assert ran.status_code in (200, 201), ran.json()
    cycle = Cycle.objects.get()
    detail = ops_client.get(f"/api/v1/cycles/{cycle.id}").json()
    legs = {leg["asset"]: leg["amount"] for batch in detail["batches"] for leg in batch["legs"]}
    assert legs["ETH"] == SUM  # the net is the exact sum of its obligations

    exposure = engine_client.get("/api/v1/exposure").json()
    sg1 = next(c for c in exposure["by_counterparty"] if c["operator"] == "SG1")
    assert sg1["exposure_hkd"] == str((Decimal(SUM) * 20000).quantize(Decimal("0.01"), ROUND_HALF_EVEN))


def test_the_admin_shows_amounts_at_the_asset_scale(client, exact_trades):
    """Operations read 0.123456789012345678 ETH as it is, and a 2-decimal
    asset with 2 decimals, not 18 trailing zeros."""
    admin = User.objects.create_superuser("exact-admin", "a@example.invalid", "pw-exact-1")
    client.force_login(admin)
    page = client.get("/admin/settlement/obligation/").content.decode()
    assert SMALL in page
    assert "1,234.123456789012345678" in page
    assert "000000000000000000<" not in page


@pytest.mark.para(22)
def test_the_regulators_export_keeps_every_decimal(exact_trades, tmp_path):
    """Circular para 22: records for the SFC are exact."""
    today = timezone.now().astimezone(HKT).date().isoformat()  # obligations are dated when they arrived
    call_command("export_records", "--from", "2026-11-23", "--to", today, "--out", str(tmp_path), stdout=StringIO())
    with open(tmp_path / "trades.csv", newline="") as handle:
        quantities = sorted(row["quantity"] for row in csv.DictReader(handle))
    assert quantities == [SMALL, LARGE]
    with open(tmp_path / "obligations.csv", newline="") as handle:
        eth = sorted(row["amount"] for row in csv.DictReader(handle) if row["asset.code"] == "ETH")
    assert eth == [SMALL, LARGE]
