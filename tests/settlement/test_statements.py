"""Daily settlement statements (DESIGN section 7): per counterparty, from one
end-of-day cut-off (22:00 HKT) to the next, kept as sent; a correction is a
new version. Monday 23 Nov 2026, Hong Kong."""

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from controls.exceptions import InvalidInput
from settlement.models import SettlementStatement
from settlement.services.cycles import cycle_run
from settlement.services.deadlines import deadlines_check
from settlement.services.legs import leg_confirm
from settlement.services.statements import statements_generate
from settlement.services.trades import trades_ingest
from tests.conftest import api_client_for
from tests.factories import trade

pytestmark = [pytest.mark.django_db, pytest.mark.para(13)]
HKT = ZoneInfo("Asia/Hong_Kong")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=HKT)
DAY = date(2026, 11, 23)
AFTER_CUTOFF = datetime(2026, 11, 23, 22, 30, tzinfo=HKT)


@pytest.fixture
def failed_with_a_credit(network):
    """SG1 delivered 1 BTC; home's 500,000 HKD was late; the batch failed
    (home's fail) and the BTC is carried as a credit."""
    items = [trade(trade_id="T1", quantity="1"), trade(trade_id="T2", sell=("JP1", "j"), quantity="1")]
    at = (MONDAY - timedelta(hours=1)).isoformat()
    trades_ingest(items=[{**i, "executed_at": at} for i in items], actor="engine", now=MONDAY)
    cycle = cycle_run(kind="intraday", as_of=MONDAY, actor="test")
    batch = cycle.batches.get(counterparty__code="SG1")
    leg_confirm(leg_id=batch.legs.get(asset__code="BTC").id, evidence={"tx": "0xbeef"}, actor="w", as_of=MONDAY)
    deadlines_check(as_of=batch.legs.get(asset__code="HKD").deadline + timedelta(minutes=1), actor="test")
    return batch


def test_a_statement_lists_trades_batches_fails_credits_and_the_closing_position(failed_with_a_credit):
    statements_generate(day=DAY, actor="celery", now=AFTER_CUTOFF)

    sg1 = SettlementStatement.objects.get(counterparty__code="SG1", day=DAY)
    body = sg1.content
    assert (sg1.version, body["period_start"], body["period_end"]) == (
        1,
        "2026-11-22T14:00:00Z",
        "2026-11-23T14:00:00Z",
    )
    assert [(t["trade_id"], t["counterparty_side"], t["quantity"]) for t in body["trades"]] == [
        ("T1", "sell", "1.00000000")
    ]
    assert {(o["asset"], o["direction"], o["amount"], o["status"]) for o in body["obligations"]} == {
        ("BTC", "inbound", "1.00000000", "open"),
        ("HKD", "outbound", "500000.00", "open"),
    }
    (batch,) = body["batches"]
    assert (batch["status"], batch["failed_by"], batch["fail_reason"]) == ("failed", "home", "home_instruction_late")
    assert {leg["asset"]: leg["evidence"] for leg in batch["legs"]}["BTC"] == {"tx": "0xbeef"}
    assert [(f["asset"], f["failed_by"], f["fail_reason"]) for f in body["fails"]] == [
        ("HKD", "home", "home_instruction_late")
    ]
    assert [(c["asset"], c["direction"], c["amount"]) for c in body["credits"]["open"]] == [
        ("BTC", "inbound", "1.00000000")
    ]
    assert body["closing_position"] == [
        {
            "asset": "BTC",
            "owed_to_home": "1.00000000",
            "owed_by_home": "0.00000000",
            "credits_held_by_home": "1.00000000",
            "net_owed_to_home": "0.00000000",
        },
        {
            "asset": "HKD",
            "owed_to_home": "0.00",
            "owed_by_home": "500000.00",
            "credits_held_by_home": "0.00",
            "net_owed_to_home": "-500000.00",
        },
    ]
    rows = list(csv.DictReader(io.StringIO(sg1.csv)))
    assert {row["section"] for row in rows} == {
        "trade",
        "obligation",
        "batch",
        "leg",
        "fail",
        "credit_carried",
        "credit_open",
        "closing_position",
    }
    assert SettlementStatement.objects.get(counterparty__code="JP1").content["trades"][0]["trade_id"] == "T2"


def test_a_statement_once_made_never_changes_and_a_correction_is_a_new_version(failed_with_a_credit):
    first = statements_generate(day=DAY, actor="celery", now=AFTER_CUTOFF)
    assert statements_generate(day=DAY, actor="celery", now=AFTER_CUTOFF + timedelta(minutes=5)) == []
    v1 = SettlementStatement.objects.get(counterparty__code="SG1", version=1)
    kept = (v1.digest, v1.csv)

    # the next day's cycle settles the obligations: the facts of Monday's trades changed
    second = cycle_run(kind="intraday", as_of=MONDAY + timedelta(days=1), actor="test").batches.get(
        counterparty__code="SG1"
    )
    leg_confirm(leg_id=second.legs.get().id, evidence={"bank": "R1"}, actor="w", as_of=MONDAY + timedelta(days=1))
    remade = statements_generate(day=DAY, actor="ops", now=AFTER_CUTOFF + timedelta(days=1))

    assert [(s.counterparty.code, s.version) for s in remade] == [("JP1", 2), ("SG1", 2)]  # JP1 was re-batched
    v1.refresh_from_db()
    assert (v1.digest, v1.csv) == kept
    assert len(first) == 2


def test_no_statement_before_the_days_cut_off(network):
    with pytest.raises(InvalidInput) as error:
        statements_generate(day=DAY, actor="celery", now=AFTER_CUTOFF - timedelta(hours=1))
    assert error.value.code == "day_not_closed"


def test_the_counterparty_downloads_its_own_statement_as_json_and_csv(network, failed_with_a_credit):
    statements_generate(day=DAY, actor="celery", now=AFTER_CUTOFF)
    sg1 = api_client_for(network.sg1, scope="operator")

    body = sg1.get("/api/v1/statements/2026-11-23").json()
    as_csv = sg1.get("/api/v1/statements/2026-11-23?format=csv")

    assert (body["counterparty"], body["date"], body["version"]) == ("SG1", "2026-11-23", 1)
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    assert as_csv.content.decode() == SettlementStatement.objects.get(counterparty__code="SG1").csv
    assert sg1.get("/api/v1/statements/2026-11-22").status_code == 404
    bad = sg1.get("/api/v1/statements/23-11-2026")
    assert (bad.status_code, bad.json()["field"]) == (400, "date")
    ops = api_client_for(network.home, scope="operations")
    assert ops.get("/api/v1/statements/2026-11-23").json()["field"] == "counterparty"
    assert ops.get("/api/v1/statements/2026-11-23?counterparty=JP1").json()["counterparty"] == "JP1"


def test_an_error_is_json_even_when_csv_was_asked_for(network):
    missing = api_client_for(network.sg1, scope="operator").get("/api/v1/statements/2026-11-22?format=csv")

    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"
    assert missing.json()["code"] == "not_found"


def test_the_end_of_day_task_and_the_command_make_the_statements(network, failed_with_a_credit):
    from operations.tasks import settlement_report_task

    result = settlement_report_task.apply(kwargs={"day": "2026-11-23"}).get()

    assert result["statements"] == 2
    out = io.StringIO()
    call_command("settlement_statements", "--date", "2026-11-23", "--json", stdout=out)
    assert out.getvalue().strip() == "[]"  # nothing changed: nothing new
