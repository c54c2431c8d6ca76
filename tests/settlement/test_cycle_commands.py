"""run_cycle, check_deadlines and settlement_report from a terminal."""

import json
from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from controls.models import Alert
from operations.services.reports import settlement_report, settlement_report_alert
from registry.models import Rail
from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = pytest.mark.django_db
HKT = ZoneInfo("Asia/Hong_Kong")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=HKT)


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def ingest(item, at):
    trades_ingest(items=[{**item, "executed_at": at.isoformat()}], actor="engine", now=at + timedelta(seconds=1))


def test_run_cycle_prints_batches_and_is_idempotent(network):
    ingest(trade(), MONDAY - timedelta(hours=1))

    text = run("run_cycle", "--kind", "intraday", "--as-of", "2026-11-23T10:00+08:00")
    again = json.loads(run("run_cycle", "--kind", "intraday", "--as-of", "2026-11-23T02:00Z", "--json"))

    assert "2 obligation(s) taken" in text and "SG1: batch" in text
    assert again["obligations_taken"] == 2 and len(again["batches"]) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "intraday", "--as-of", "tomorrow"], "not an ISO 8601"),
        (["--kind", "intraday", "--as-of", "2026-11-23T10:00"], "no time zone"),
        (["--kind", "intraday", "--as-of", "2999-01-01T00:00Z"], "future"),
    ],
)
def test_run_cycle_bad_input_is_a_one_line_error(network, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("run_cycle", *args)


@pytest.mark.para(13)
def test_check_deadlines_fails_overdue_batches(network):
    ingest(trade(), MONDAY - timedelta(hours=1))
    run("run_cycle", "--kind", "intraday", "--as-of", MONDAY.isoformat())

    body = json.loads(run("check_deadlines", "--as-of", (MONDAY + timedelta(hours=2)).isoformat(), "--json"))

    assert len(body["failed"]) == 1


@pytest.mark.para(14)
def test_settlement_report_separates_breaches_from_rail_deferrals(network):
    # Friday 20 Nov: a crypto trade (settleable at once) and an HKD trade after the cut-off.
    ingest(trade(trade_id="CRYPTO", base="BTC", quote="USDC", price="64000"), datetime(2026, 11, 20, 9, 0, tzinfo=HKT))
    ingest(trade(trade_id="AFTER-CUTOFF", base="BTC", quote="HKD"), datetime(2026, 11, 20, 18, 0, tzinfo=HKT))
    ingest(trade(trade_id="FRESH"), datetime(2026, 11, 24, 9, 0, tzinfo=HKT))  # 13 h old at the cut-off

    saturday = settlement_report(day=datetime(2026, 11, 21).date())
    tuesday = settlement_report(day=datetime(2026, 11, 24).date())

    assert {line["trade_id"] for line in saturday["breaches"]} == {"CRYPTO"}
    assert {line["trade_id"] for line in saturday["deferred"]} == {"AFTER-CUTOFF"}  # CHATS next opens Monday
    assert {line["trade_id"] for line in tuesday["breaches"]} == {"CRYPTO", "AFTER-CUTOFF"}
    assert "FRESH" not in {line["trade_id"] for line in tuesday["breaches"] + tuesday["deferred"]}


@pytest.mark.para(14)
def test_a_degraded_rail_defers_and_the_report_raises_one_alert_per_day(network):
    ingest(trade(trade_id="C1", base="BTC", quote="USDC", price="64000"), datetime(2026, 11, 20, 9, 0, tzinfo=HKT))
    report = settlement_report(day=datetime(2026, 11, 21).date())
    settlement_report_alert(report=report, actor="test")
    settlement_report_alert(report=report, actor="test")
    assert Alert.objects.filter(kind="daily_settlement_breach").count() == 1

    Rail.objects.filter(code="eth").update(status="degraded", status_reason="RPC errors")
    deferred = settlement_report(day=datetime(2026, 11, 21).date())["deferred"]
    assert deferred[0]["reason"].startswith("rail eth is degraded")


def test_settlement_report_command(network):
    ingest(trade(trade_id="OLD", base="BTC", quote="USDC", price="64000"), datetime(2026, 11, 20, 9, 0, tzinfo=HKT))

    body = json.loads(run("settlement_report", "--date", "2026-11-21", "--json"))
    text = run("settlement_report", "--date", "2026-11-21")

    assert body["counts"] == {"breaches": 2, "deferred": 0}  # both obligations of the trade
    assert "BREACH" in text and "OLD" in text
    with pytest.raises(CommandError, match="not a date"):
        call_command("settlement_report", "--date", "21/11/2026")
