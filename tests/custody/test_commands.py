"""The custody management commands: --help, output, --json, one-line errors."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from custody.models import Movement
from registry.models import BankAccount, Rail

from .test_statements import FIXTURES, HOME_HKD, SG1_HKD

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def accounts(network):
    rail = Rail.objects.get(code="hkd-chats")
    BankAccount.objects.create(operator=network.home, rail=rail, number=HOME_HKD, bank="HSBC")
    BankAccount.objects.create(operator=network.sg1, rail=rail, number=SG1_HKD, bank="BOCHK")


@pytest.mark.parametrize("name", ["watch_chain", "import_statement", "record_balance_report", "reconcile"])
def test_every_command_has_help(name):
    from django.core.management import load_command_class

    command = load_command_class("custody", name)
    assert command.help and len(command.help) > 40
    parser = command.create_parser("manage.py", name)
    assert "--json" in parser.format_help()


def test_import_statement_prints_what_it_did_and_json(accounts):
    path = FIXTURES / "hk" / "hk_camt053.xml"

    text = run("import_statement", str(path))
    body = json.loads(run("import_statement", str(path), "--json"))

    assert "012-345678-001 statement STMT-012345678001-20261123/327: created, 2 new entries" in text
    assert body["statements"][0]["result"] == "duplicate"
    assert Movement.objects.count() == 2


def test_import_statement_fails_with_one_line_and_changes_nothing(accounts, tmp_path):
    with pytest.raises(CommandError, match=r"^betterplace_sepa_snippet_broken.sta: line 6: :25: appears twice"):
        run("import_statement", str(FIXTURES / "mt940" / "betterplace_sepa_snippet_broken.sta"))
    with pytest.raises(CommandError, match="cannot read"):
        run("import_statement", str(tmp_path / "missing.sta"))
    with pytest.raises(CommandError, match=r"hk_camt053\.xml: no MT940 statement found"):
        run("import_statement", str(FIXTURES / "hk" / "hk_camt053.xml"), "--format", "mt940")
    assert not Movement.objects.exists()


def test_record_balance_report_from_a_file(accounts, tmp_path):
    path = tmp_path / "report.json"
    path.write_text(
        json.dumps(
            {
                "source": "HSBC",
                "reference": "BAL-7",
                "as_of": "2026-11-20T18:00:00+08:00",
                "lines": [{"rail": "hkd-chats", "account": HOME_HKD, "asset": "HKD", "amount": "100.00"}],
            }
        )
    )

    text = run("record_balance_report", str(path))
    body = json.loads(run("record_balance_report", str(path), "--json"))

    assert "report BAL-7 from HSBC: created" in text and "baseline" in text
    assert body["result"] == "duplicate"
    path.write_text("{")
    with pytest.raises(CommandError, match="is not JSON"):
        run("record_balance_report", str(path))


def test_watch_chain_reports_a_missing_rail_or_node_in_one_line(network):
    with pytest.raises(CommandError, match="no evm rail 'nope'"):
        run("watch_chain", "--rail", "nope", "--once")
    with pytest.raises(CommandError, match="rail eth: ChainError: rail eth has no http"):
        run("watch_chain", "--rail", "eth", "--once")


def test_reconcile_reports_in_json(network):
    body = json.loads(run("reconcile", "--json"))
    assert body == {
        "confirmed_legs": [],
        "confirming_legs": [],
        "locked_legs": [],
        "breaks_raised": [],
        "instructions_written": 0,
        "unresolved_breaks": {},
    }


def test_record_balance_report_refuses_a_nul_character(network, tmp_path):
    report = tmp_path / "nul.json"
    report.write_text(
        '{"source": "Harbour\\u0000Custody", "reference": "R1", "as_of": "2026-11-23T10:00:00+08:00", "lines": []}'
    )
    with pytest.raises(CommandError, match="source contains a NUL character"):
        call_command("record_balance_report", str(report))
