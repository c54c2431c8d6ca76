import csv
import hashlib
import json
from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from settlement.services.cycles import cycle_run
from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = pytest.mark.django_db
HKT = ZoneInfo("Asia/Hong_Kong")


@pytest.mark.para(22)
def test_export_records_for_a_date_range(network, tmp_path):
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=HKT)
    for day, trade_id in ((0, "IN-RANGE"), (-3, "BEFORE")):
        at = monday + timedelta(days=day)
        trades_ingest(
            items=[{**trade(trade_id=trade_id), "executed_at": (at - timedelta(hours=1)).isoformat()}],
            actor="engine",
            now=at,
        )
    cycle_run(kind="intraday", as_of=monday, actor="test")

    out = StringIO()
    call_command(
        "export_records",
        "--from",
        "2026-11-23",
        "--to",
        "2026-11-23",
        "--out",
        str(tmp_path / "x"),
        "--json",
        stdout=out,
    )

    manifest = json.loads(out.getvalue())
    with (tmp_path / "x" / "trades.csv").open() as handle:
        trades = list(csv.DictReader(handle))
    assert [t["trade_id"] for t in trades] == ["IN-RANGE"]
    assert trades[0]["buy_operator.code"] == "HK1"
    assert manifest["files"]["legs.csv"]["rows"] == 2
    assert (
        manifest["files"]["trades.csv"]["sha256"]
        == hashlib.sha256((tmp_path / "x" / "trades.csv").read_bytes()).hexdigest()
    )
    audit = [json.loads(line) for line in (tmp_path / "x" / "audit_trail.jsonl").read_text().splitlines()]
    assert {"trades.ingested", "cycle.done"} <= {a["action"] for a in audit}


def test_export_records_refuses_a_non_empty_directory_and_a_reversed_range(network, tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(CommandError, match="not empty"):
        call_command("export_records", "--from", "2026-11-01", "--to", "2026-11-02", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="before"):
        call_command("export_records", "--from", "2026-11-02", "--to", "2026-11-01", "--out", str(tmp_path / "new"))
