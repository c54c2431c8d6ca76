"""Inputs found by fuzzing: each answered 500 or printed a traceback.
Now each is a 4xx with {code, message, field} (API) or a one-line reason
and a non-zero exit (commands). Circular para 23: records and systems that
hold up."""

import json
from datetime import datetime
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from custody.models import BankStatement, Instruction, Movement
from custody.services.statements import statement_import
from registry.models import BankAccount, Rail
from tests.conftest import staff_client

from ..custody.test_statements import HOME_HKD, SG1_HKD, read

pytestmark = [pytest.mark.django_db, pytest.mark.para(23)]
HKT = ZoneInfo("Asia/Hong_Kong")


@pytest.fixture
def maker(network):
    return staff_client("maker", "ops_operator")


@pytest.fixture
def accounts(network):
    rail = Rail.objects.get(code="hkd-chats")
    BankAccount.objects.create(operator=network.home, rail=rail, number=HOME_HKD, bank="HSBC Hong Kong")
    BankAccount.objects.create(operator=network.sg1, rail=rail, number=SG1_HKD, bank="Bank of China (HK)")


def test_a_billion_hours_old_is_a_400(maker):
    for value in ("1000000000", "\u00b2", "-1", "1.5"):
        response = maker.get("/api/v1/ops/breaks", {"older_than_hours": value})
        assert (response.status_code, response.json()["field"]) == (400, "older_than_hours"), value
    assert maker.get("/api/v1/ops/breaks", {"older_than_hours": "87840"}).status_code == 200


def test_a_nul_in_a_path_is_a_400(maker):
    response = maker.post("/api/v1/ops/rails/%00/status", {"status": "halted", "reason": "x"}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "invalid_request")


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_an_unknown_api_url_is_a_json_404_for_every_method(network, method):
    client = APIClient(enforce_csrf_checks=True)

    response = getattr(client, method)("/api/v1/no-such-thing", {"a": 1}, format="json")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_a_body_nested_deeper_than_a_request_ever_is_a_400(maker):
    body = '{"ids": ' + "[" * 5000 + "]" * 5000 + "}"
    response = maker.generic("POST", "/api/v1/ops/instructions/take", body, content_type="application/json")

    assert (response.status_code, response.json()["code"]) == (400, "invalid_json")


def test_a_lone_surrogate_outside_trades_is_a_400_naming_the_field(maker):
    body = json.dumps({"status": "halted", "reason": "down \ud800"})
    response = maker.generic("POST", "/api/v1/ops/rails/eth/status", body, content_type="application/json")

    assert (response.status_code, response.json()["code"], response.json()["field"]) == (400, "invalid_text", "reason")


# --- statements ------------------------------------------------------------------------


def import_file(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CommandError) as refused:
        call_command("import_statement", str(path), stdout=StringIO())
    return str(refused.value)


def test_a_nul_in_an_mt940_field_is_refused_with_its_line(accounts, tmp_path):
    data = read("hk/hk_mt940.sta").replace(b"LCX7782", b"LCX\x007782")

    message = import_file(tmp_path, "nul.sta", data)

    assert "line 6: the file contains a NUL byte" in message
    assert not Movement.objects.exists()


def test_a_camt053_with_an_out_of_range_date_is_refused(accounts, tmp_path):
    data = read("hk/hk_camt053.xml").replace(
        b"<BookgDt><Dt>2026-11-23</Dt></BookgDt>", b"<BookgDt><DtTm>0001-01-01T00:00:00+14:00</DtTm></BookgDt>", 1
    )
    assert data != read("hk/hk_camt053.xml")

    message = import_file(tmp_path, "year1.xml", data)

    assert "line 38: <BookgDt> '0001-01-01T00:00:00+14:00' is not an ISO date" in message


def test_a_camt053_with_a_doctype_is_refused_not_imported_without_its_entities(accounts, tmp_path):
    original = read("hk/hk_camt053.xml")
    head, _, rest = original.partition(b"?>")
    data = head + b'?>\n<!DOCTYPE Document [<!ENTITY who "LION CITY">]>' + rest.replace(b"LCX-SETTLE-7781", b"&who;", 1)

    message = import_file(tmp_path, "doctype.xml", data)

    assert "DOCTYPE" in message
    assert not BankStatement.objects.exists()


def test_a_500_statement_mt940_file_imports_in_a_bounded_number_of_queries(accounts, django_assert_max_num_queries):
    """Linear: about six statements per statement and a constant number for
    reconciliation (it was a growing number of queries per movement, 58 s
    for 500 statements)."""
    base = read("hk/hk_mt940.sta").decode()
    pages = [
        base.replace(":20:HK26112301", f":20:HK2611{i:05d}")
        .replace("CHATS2611230099", f"CHATS26{i:09d}")
        .replace("FEE2611230011", f"FEE26{i:09d}")
        for i in range(500)
    ]
    with django_assert_max_num_queries(6 * 500 + 60):
        result = statement_import(
            data="".join(pages).encode(), filename="many.sta", format=None, actor="t", now=datetime.now(HKT)
        )

    assert result.new_entries == 1000
    assert Movement.objects.count() == 1000


# --- balance reports and the network file ------------------------------------------------


def run_command(tmp_path, command: str, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with pytest.raises(CommandError) as refused:
        call_command(command, str(path), stdout=StringIO(), stderr=StringIO())
    assert "\n" not in str(refused.value).strip()
    return str(refused.value)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "extreme.json",
            json.dumps({"source": "HSBC", "reference": "R", "as_of": "0001-01-01T00:00:00+14:00"}),
            "range",
        ),
        ("far.json", json.dumps({"source": "HSBC", "reference": "R", "as_of": "9999-12-31T23:59:59-14:00"}), "range"),
        ("deep.json", '{"source": ' + "[" * 100000 + "]" * 100000 + "}", "deeper"),
        (
            "surrogate.json",
            json.dumps({"source": "HSBC\ud800", "reference": "R", "as_of": "2026-01-01T00:00:00+08:00", "lines": []}),
            "surrogate",
        ),
        (
            "nul.json",
            json.dumps({"source": "HSBC\u0000", "reference": "R", "as_of": "2026-01-01T00:00:00+08:00", "lines": []}),
            "NUL",
        ),
    ],
)
def test_record_balance_report_refuses_in_one_line(network, tmp_path, name, text, expected):
    assert expected in run_command(tmp_path, "record_balance_report", name, text)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("deep.toml", "a = " + "[" * 100000 + "]" * 100000 + "\n", "deep"),
        ("nul.toml", '[home]\ncode = "HK1\\u0000"\n', "control characters"),
        ("surrogate.toml", '[home]\ncode = "\\ud800"\n', "line"),
        (
            "extreme.toml",
            '[home]\ncode = "HK1"\nname = "x"\njurisdiction = "HK"\nlicence = "L"\n'
            '[[asset]]\ncode = "BTC"\nkind = "crypto"\nscale = 8\nrail = "eth"\n'
            '[[rail]]\ncode = "eth"\nkind = "evm"\nchain_id = 1\nconfirmations = 1\n'
            '[[mark]]\nasset = "BTC"\nprice_hkd = "1"\nas_of = 0001-01-01T00:00:00+14:00\n',
            "out of range",
        ),
    ],
)
def test_load_network_refuses_in_one_line(db, tmp_path, name, text, expected):
    assert expected in run_command(tmp_path, "load_network", name, text)


def test_take_with_a_boolean_never_takes_instruction_one(maker):
    for ids in (True, [True]):
        response = maker.post("/api/v1/ops/instructions/take", {"ids": ids}, format="json")
        assert (response.status_code, response.json()["field"]) == (400, "ids")
    assert not Instruction.objects.filter(status="taken").exists()
