"""The custody operations API: breaks, statement upload, balance reports,
the instruction outbox. Contract of each endpoint: status, body, errors."""

from datetime import datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from custody.models import Break, Instruction, Movement
from custody.services.breaks import break_raise
from registry.models import BankAccount, Rail
from settlement.services.cycles import cycle_run
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest
from tests.factories import trade

from .test_statements import HKT, HOME_HKD, SG1_HKD, read

pytestmark = pytest.mark.django_db


def staff(username: str, group: str) -> APIClient:
    out = StringIO()
    call_command("create_staff_user", "--username", username, "--group", group, stdout=out)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip().splitlines()[-1]}")
    return client


@pytest.fixture
def maker(network):
    return staff("maker", "ops_operator")


@pytest.fixture
def viewer(network):
    return staff("viewer", "ops_viewer")


def a_break(network, *, kind="unmatched_receipt", key="k1", hours_old=0) -> Break:
    at = timezone.now() - timedelta(hours=hours_old)
    brk, _ = break_raise(
        key=key, kind=kind, asset_id=network.usdc.id, amount=Decimal("12.5"), description="test", actor="test", at=at
    )
    return brk


def test_list_breaks_with_filters_and_age(network, viewer):
    old = a_break(network, key="old", hours_old=30)
    a_break(network, key="new", kind="short_delivery")

    everything = viewer.get("/api/v1/ops/breaks").json()["results"]
    aged = viewer.get("/api/v1/ops/breaks?older_than_hours=24").json()["results"]
    short = viewer.get("/api/v1/ops/breaks?kind=short_delivery&status=open").json()["results"]
    bad = viewer.get("/api/v1/ops/breaks?kind=lost")

    assert len(everything) == 2
    assert [b["id"] for b in aged] == [old.id]
    assert aged[0]["age_seconds"] >= 30 * 3600 and aged[0]["amount"] == "12.500000"
    assert [b["kind"] for b in short] == ["short_delivery"]
    assert bad.status_code == 400 and bad.json()["field"] == "kind"


@pytest.mark.para(12)
def test_take_and_resolve_a_break_keeps_its_history(network, maker, viewer):
    brk = a_break(network)

    taken = maker.post(f"/api/v1/ops/breaks/{brk.id}/take", {"note": "looking at it"}, format="json")
    no_note = maker.post(f"/api/v1/ops/breaks/{brk.id}/resolve", {}, format="json")
    by_viewer = viewer.post(f"/api/v1/ops/breaks/{brk.id}/resolve", {"note": "x"}, format="json")
    resolved = maker.post(
        f"/api/v1/ops/breaks/{brk.id}/resolve", {"note": "returned to sender, ref R-1"}, format="json"
    )
    twice = maker.post(f"/api/v1/ops/breaks/{brk.id}/resolve", {"note": "again"}, format="json")
    missing = maker.post("/api/v1/ops/breaks/999999/resolve", {"note": "x"}, format="json")
    detail = viewer.get(f"/api/v1/ops/breaks/{brk.id}").json()

    assert (taken.status_code, taken.json()["status"], taken.json()["owner"]) == (200, "investigating", "user:maker")
    assert (no_note.status_code, no_note.json()["field"]) == (400, "note")
    assert by_viewer.status_code == 403
    assert resolved.status_code == 200
    assert (resolved.json()["status"], resolved.json()["resolution"]) == ("resolved", "returned to sender, ref R-1")
    assert (twice.status_code, twice.json()["code"]) == (409, "break_resolved")
    assert missing.status_code == 404
    assert [e["action"] for e in detail["history"]] == ["opened", "taken", "resolved"]


def test_upload_a_statement_as_multipart_and_as_the_raw_body(network, maker):
    rail = Rail.objects.get(code="hkd-chats")
    BankAccount.objects.create(operator=network.home, rail=rail, number=HOME_HKD, bank="HSBC")
    BankAccount.objects.create(operator=network.sg1, rail=rail, number=SG1_HKD, bank="BOCHK")

    multipart = maker.post(
        "/api/v1/ops/statements",
        {"file": SimpleUploadedFile("hk.xml", read("hk/hk_camt053.xml"), content_type="application/xml")},
        format="multipart",
    )
    raw = maker.post(
        "/api/v1/ops/statements?format=mt940",
        data=read("hk/hk_mt940.sta"),
        content_type="text/plain",
        HTTP_CONTENT_DISPOSITION="attachment; filename=hk.sta",
    )
    again = maker.post(
        "/api/v1/ops/statements",
        {"file": SimpleUploadedFile("hk.xml", read("hk/hk_camt053.xml"))},
        format="multipart",
    )

    assert (multipart.status_code, multipart.json()["new_entries"]) == (201, 2)
    assert raw.status_code == 201, raw.json()
    assert (raw.status_code, raw.json()["statements"][0]["result"]) == (201, "created")
    assert (again.status_code, again.json()["duplicate_statements"]) == (200, 1)
    assert Movement.objects.count() == 4


def test_a_broken_upload_is_a_400_naming_the_line_and_changes_nothing(network, maker):
    broken = maker.post(
        "/api/v1/ops/statements",
        {"file": SimpleUploadedFile("b.sta", read("mt940/betterplace_sepa_snippet_broken.sta"))},
        format="multipart",
    )
    nothing = maker.post("/api/v1/ops/statements", {}, format="multipart")
    bad_format = maker.post(
        "/api/v1/ops/statements?format=pdf", {"file": SimpleUploadedFile("x", b"x")}, format="multipart"
    )

    assert broken.status_code == 400
    assert broken.json() == {
        "code": "invalid_statement",
        "message": "b.sta: line 6: :25: appears twice in the statement that starts on line 1 (first on line 2)",
        "field": "file",
    }
    assert (nothing.status_code, nothing.json()["field"]) == (400, "file")
    assert bad_format.status_code == 400, bad_format.json()
    assert (bad_format.status_code, bad_format.json()["field"]) == (400, "format")
    assert not Movement.objects.exists()


def test_record_a_balance_report(network, maker):
    rail = Rail.objects.get(code="hkd-chats")
    BankAccount.objects.create(operator=network.home, rail=rail, number=HOME_HKD, bank="HSBC")
    body = {
        "source": "HSBC",
        "reference": "BAL-1",
        "as_of": (timezone.now() - timedelta(minutes=5)).isoformat(),
        "lines": [{"rail": "hkd-chats", "account": HOME_HKD, "asset": "HKD", "amount": "10.00"}],
    }

    created = maker.post("/api/v1/ops/balance-reports", body, format="json")
    again = maker.post("/api/v1/ops/balance-reports", body, format="json")
    number = maker.post(
        "/api/v1/ops/balance-reports",
        {**body, "reference": "BAL-2", "lines": [{**body["lines"][0], "amount": 10}]},
        format="json",
    )
    no_time = maker.post("/api/v1/ops/balance-reports", {**body, "as_of": None}, format="json")

    assert created.status_code == 201
    assert created.json()["lines"][0] | {"break": None} == {
        "rail": "hkd-chats",
        "wallet": None,
        "account": HOME_HKD,
        "asset": "HKD",
        "reported": "10.00",
        "expected": None,
        "difference": None,
        "outcome": "baseline",
        "break": None,
    }
    assert (again.status_code, again.json()["result"]) == (200, "duplicate")
    assert (number.status_code, number.json()["code"], number.json()["field"]) == (
        400,
        "number_not_string",
        "lines[0].amount",
    )
    assert (no_time.status_code, no_time.json()["field"]) == (400, "as_of")


def test_instructions_list_and_take(network, maker, viewer):
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=HKT)
    item = trade(base="BTC", quote="USDC", price="64000", quantity="1", buy=("SG1", "s"), sell=("HK1", "pro-1"))
    item["executed_at"] = (monday - timedelta(hours=1)).isoformat()
    trades_ingest(items=[item], actor="engine", now=monday - timedelta(minutes=59))
    batch = cycle_run(kind="intraday", as_of=monday, actor="test").batches.get()
    leg_confirm(leg_id=batch.legs.get(direction="inbound").id, evidence={"test": True}, actor="t", as_of=monday)
    call_command("reconcile", "--as-of", (monday + timedelta(minutes=1)).isoformat(), stdout=StringIO())

    listed = viewer.get("/api/v1/ops/instructions?status=new").json()["results"]
    (instruction,) = listed
    assert (instruction["asset"], instruction["amount"], instruction["counterparty"]) == ("BTC", "1.00000000", "SG1")
    assert "home has no wallet on rail eth" in instruction["problem"]
    taken = maker.post("/api/v1/ops/instructions/take", {"ids": [instruction["id"]]}, format="json")
    twice = maker.post("/api/v1/ops/instructions/take", {"ids": [instruction["id"]]}, format="json")
    assert taken.status_code == 200 and Instruction.objects.get().status == "taken"
    assert twice.status_code == 409


def test_the_ops_custody_api_needs_an_operations_token(network, ops_client):
    assert ops_client.get("/api/v1/ops/breaks").status_code == 401
    assert APIClient().post("/api/v1/ops/statements").status_code == 401
