"""The network file (DESIGN section 11) and the jurisdiction data."""

import json
import tomllib
from datetime import UTC, date, datetime, time
from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from controls.datafile import LineLocator
from controls.exceptions import InvalidInput
from controls.models import AuditEvent
from controls.services.approvals import approval_decide
from operations.services.network import NetworkLoadResult, network_load
from registry.models import Account, Asset, BankAccount, Custodian, Jurisdiction, Mark, Operator, Rail, Wallet
from registry.services.jurisdictions import DATA_FILE, jurisdictions_sync
from reserves.models import ReserveEntry, ReserveFund
from reserves.selectors import reserve_balance_hkd
from settlement.models import CapConfig

pytestmark = pytest.mark.django_db

DEMO = settings.BASE_DIR / "demo" / "network.toml"

# fmt: off
FATF_MEMBERS = [
    "AR", "AU", "AT", "BE", "BR", "CA", "CN", "DK", "FI", "FR", "DE", "GR", "HK", "IS", "IN", "ID",
    "IE", "IL", "IT", "JP", "KR", "LU", "MY", "MX", "NL", "NZ", "NO", "PT", "SA", "SG", "ZA", "ES",
    "SE", "CH", "TR", "GB", "US", "RU", "AW", "CW", "SX",
]
CALL_FOR_ACTION = ["KP", "IR", "MM"]
GREY_LIST = [
    "DZ", "AO", "BO", "BG", "CM", "CI", "CD", "HT", "KE", "KW", "LA", "LB", "MC", "NA", "NP", "PG",
    "SS", "SY", "VE", "VN", "VG", "YE",
]
# fmt: on


@pytest.fixture
def demo() -> str:
    return DEMO.read_text(encoding="utf-8")


def load(text: str, **kwargs) -> NetworkLoadResult:
    return network_load(text=text, actor="test", **kwargs)


def ops_user(name: str, group: str) -> User:
    user, created = User.objects.get_or_create(username=name, defaults={"is_staff": True})
    if created:
        user.groups.add(Group.objects.get(name=group))
    return user


def approved(text: str) -> NetworkLoadResult:
    """On a loaded network: the file's changes proposed by one person and
    approved by another (DESIGN section 12)."""
    result = load(text, user=ops_user("maker", "ops_operator"))
    if result.approval_id is not None:
        approval_decide(
            approval_id=result.approval_id,
            user=ops_user("checker", "ops_approver"),
            approve=True,
            reason="",
            now=timezone.now(),
        )
    return result


def load_error(text: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        load(text)
    assert info.value.code == "invalid_network_file"
    assert "\n" not in info.value.message
    return info.value


def snapshot() -> dict[str, int]:
    """Row counts of every model of the three apps, audit trail included."""
    models = [m for label in ("settlement", "custody", "reserves") for m in apps.get_app_config(label).get_models()]
    return {m._meta.label: m.objects.count() for m in models}


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line containing ``needle``."""
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return lines[occurrence - 1]


def line_in_replacement(text: str, new: str, key: str) -> int:
    """The line of ``key`` inside the replacement text ``new`` placed in ``text``."""
    start = text[: text.index(new)].count("\n") + 1
    return start + next(i for i, line in enumerate(new.splitlines()) if line.lstrip().startswith(key))


def replace_once(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# --- jurisdictions ---------------------------------------------------------------------------


@pytest.mark.para(7)
def test_migration_seeded_the_jurisdictions():
    sg, kp, ru, vg, hk = (Jurisdiction.objects.get(code=c) for c in ("SG", "KP", "RU", "VG", "HK"))
    assert sg.fatf_member and sg.iosco_aligned and not sg.call_for_action and not sg.increased_monitoring
    assert kp.call_for_action and not kp.fatf_member
    assert ru.fatf_member and ru.fatf_suspended and not ru.iosco_aligned
    assert vg.increased_monitoring and not vg.fatf_member
    assert hk.name == "Hong Kong"
    assert sg.lists_as_of == date(2026, 2, 13)


@pytest.mark.para(7)
def test_data_file_lists_every_code_from_facts():
    data = tomllib.loads(DATA_FILE.read_text(encoding="utf-8"))
    rows = {row["code"]: row for row in data["jurisdiction"]}
    assert data["as_of"] == date(2026, 2, 13)
    assert {c for c, r in rows.items() if r["fatf_member"]} == set(FATF_MEMBERS)
    assert {c for c, r in rows.items() if r["call_for_action"]} == set(CALL_FOR_ACTION)
    assert {c for c, r in rows.items() if r["increased_monitoring"]} == set(GREY_LIST)
    assert {c for c, r in rows.items() if r["fatf_suspended"]} == {"RU"}
    assert {c for c, r in rows.items() if r["iosco_aligned"]} == set(FATF_MEMBERS) - {"RU"}


@pytest.mark.para(7, 23)
def test_jurisdictions_sync_is_idempotent_and_audits_changes():
    data = tomllib.loads(DATA_FILE.read_text(encoding="utf-8"))
    audit_before = AuditEvent.objects.count()
    result = jurisdictions_sync(data=data, actor="test")
    assert result["created"] == result["updated"] == 0
    assert AuditEvent.objects.count() == audit_before

    for row in data["jurisdiction"]:
        if row["code"] == "KE":
            row["increased_monitoring"] = False  # off the grey list
    data["jurisdiction"].append({"code": "XK", "name": "Kosovo"})
    result = jurisdictions_sync(data=data, actor="ops")
    assert (result["created"], result["updated"]) == (1, 1)
    assert not Jurisdiction.objects.get(code="KE").increased_monitoring
    event = AuditEvent.objects.get(action="jurisdictions.updated", object_id="KE")
    assert event.before == {"increased_monitoring": True} and event.after == {"increased_monitoring": False}
    assert event.actor == "ops"


def test_jurisdictions_sync_refuses_bad_data_and_writes_nothing():
    data = {"as_of": date(2026, 6, 1), "jurisdiction": [{"code": "SG", "fatf_member": "yes"}, {"code": "sg"}]}
    before = snapshot()
    with pytest.raises(InvalidInput) as info:
        jurisdictions_sync(data=data, actor="test")
    assert 'key "fatf_member": must be true or false' in info.value.message
    assert 'key "code"' in info.value.message
    assert snapshot() == before


def test_load_jurisdictions_command(tmp_path):
    out = StringIO()
    call_command("load_jurisdictions", "--json", stdout=out)
    assert json.loads(out.getvalue())["unchanged"] == len(FATF_MEMBERS) + len(CALL_FOR_ACTION) + len(GREY_LIST)

    bad = tmp_path / "j.toml"
    bad.write_text('as_of = 2026-06-01\n\n[[jurisdiction]]\ncode = "SG"\nfatf_membr = true\n', encoding="utf-8")
    with pytest.raises(CommandError) as info:
        call_command("load_jurisdictions", str(bad))
    assert 'line 5: [[jurisdiction]] #1 (SG) key "fatf_membr": unknown key' in str(info.value)


# --- the demo network -------------------------------------------------------------------------


@pytest.mark.para(9)
def test_demo_file_loads(demo):
    result = load(demo)

    assert result.updated == 0 and result.unchanged == 0
    assert result.counts["operator"]["created"] == 3
    assert result.warnings == []
    home, sg1, jp1 = (Operator.objects.get(code=c) for c in ("HK1", "SG1", "JP1"))
    assert home.is_home and home.jurisdiction.code == "HK"
    assert sg1.dvp_policy == "receive_first" and sg1.limit_hkd == Decimal("40000000")
    assert sg1.approved_on == date(2026, 1, 15)
    assert jp1.dvp_policy == "escrow" and jp1.jurisdiction.code == "JP"

    eth, hkd_chats, usd_chats = (Rail.objects.get(code=c) for c in ("eth", "hkd-chats", "usd-chats"))
    assert (eth.kind, eth.chain_id, eth.confirmations, eth.window_minutes) == ("evm", 31337, 3, 60)
    assert hkd_chats.calendars == ["HK"] and hkd_chats.weekend == [6, 7] and hkd_chats.cutoff == time(17, 30)
    assert usd_chats.calendars == ["HK", "FIN:XFED"] and usd_chats.currency == "USD"

    assert {a.code: (a.scale, a.rail.code) for a in Asset.objects.select_related("rail")} == {
        "BTC": (8, "eth"),
        "ETH": (18, "eth"),
        "USDC": (6, "eth"),
        "HKD": (2, "hkd-chats"),
        "USD": (2, "usd-chats"),
    }
    assert Asset.objects.get(code="USDC").contract == "0x5fbdb2315678afecb367f032d93f642f64180aa3"
    assert Asset.objects.get(code="ETH").contract == ""
    assert Asset.objects.get(code="BTC").haircut == Decimal("0.12")
    assert Asset.objects.get(code="ETH").haircut == Decimal(0)  # omitted: none

    cold = Wallet.objects.get(temperature="cold")
    assert cold.operator == home and cold.lead_time_minutes == 120
    assert cold.custodian.name == "Harbour Custody Ltd"
    assert Wallet.objects.filter(address="0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc", operator=sg1).exists()
    assert all(w.address == w.address.lower() for w in Wallet.objects.all())
    assert Custodian.objects.count() == 3
    assert BankAccount.objects.filter(rail=hkd_chats).count() == 4  # with the reserve fund's trust account

    cap = CapConfig.objects.get()
    assert (cap.total_hkd, cap.warn_at, cap.settle_at, cap.halt_at) == (
        Decimal("100000000"),
        Decimal("0.70"),
        Decimal("0.80"),
        Decimal("1.00"),
    )
    fund = ReserveFund.objects.get()
    assert (fund.trustee, fund.deed, fund.bank_account.number) == (
        "Harbour Trustee Ltd",
        "TD-2026-01",
        "004-100200-990",
    )
    assert reserve_balance_hkd() == Decimal("120000000")
    entry = ReserveEntry.objects.get()
    assert (entry.kind, entry.reference, entry.actor) == ("contribution", "opening", "test")

    assert Asset.objects.get(code="BTC").mark_hkd == Decimal("520000")
    assert Asset.objects.get(code="USD").mark_source == "network file"
    assert Asset.objects.get(code="HKD").mark_hkd is None  # valuation currency: always 1
    assert Mark.objects.count() == 4

    retail_in = Account.objects.get(operator=home, ref="retail-in")
    assert retail_in.shared_book_opt_in and retail_in.disclosure_version == "SOB-2026-01"
    assert retail_in.opted_in_at is not None
    assert Account.objects.get(ref="pro-1").client_class == "professional"
    assert not Account.objects.get(ref="retail-out").shared_book_opt_in

    created = AuditEvent.objects.filter(action="network.created")
    assert created.count() == result.created
    sg1_event = created.get(object_type="Operator", object_id="SG1")
    assert sg1_event.before is None and sg1_event.after["limit_hkd"] == "40000000"
    assert sg1_event.after["jurisdiction"] == "SG" and sg1_event.after["approved_on"] == "2026-01-15"


def test_loading_twice_changes_nothing(demo):
    first = load(demo)
    after_first = snapshot()
    second = load(demo)

    assert snapshot() == after_first
    assert (second.created, second.updated) == (0, 0)
    assert second.unchanged == first.created
    assert second.summary() == f"network loaded: nothing changed ({first.created} unchanged)"


def test_dry_run_reports_and_rolls_back(demo):
    before = snapshot()
    result = load(demo, dry_run=True)
    assert result.dry_run and result.created > 0
    assert result.summary().startswith("dry run, rolled back: ")
    assert snapshot() == before


# --- problems name the key and the line ---------------------------------------------------------


def test_unknown_key_names_key_and_line(demo):
    text = replace_once(demo, 'dvp_policy = "escrow"', 'dvp_policy = "escrow"\nsettle_by = "T+0"')
    error = load_error(text)
    assert error.message.startswith(
        f'line {line_of(text, "settle_by")}: [[overseas]] #2 (JP1) key "settle_by": unknown key'
    )
    assert error.field == "overseas#2.settle_by"
    assert error.line == line_of(text, "settle_by")


def test_unknown_table_names_line(demo):
    text = demo + "\n[[custodian]]\nname = 'x'\n"
    error = load_error(text)
    assert error.message.startswith(f"line {line_of(text, '[[custodian]]')}: unknown table [[custodian]]")


@pytest.mark.parametrize(
    ("old", "new", "key", "says"),
    [
        (
            'dvp_policy = "receive_first"',
            'dvp_policy = "fast"',
            "dvp_policy",
            'must be one of receive_first, escrow, got "fast"',
        ),
        (
            'limit_hkd = "40000000"',
            "limit_hkd = 40000000.0",
            "limit_hkd",
            'TOML float (40000000.0), which cannot hold money exactly; quote it as a string: "40000000"',
        ),
        ('limit_hkd = "40000000"', 'limit_hkd = "40000000.001"', "limit_hkd", "at most 2 allowed"),
        ("scale = 8", "scale = 19", "scale", "must be at most 18, got 19"),
        ('haircut = "0.12"', 'haircut = "1.5"', "haircut", 'must be at most 1, got "1.5"'),
        ('haircut = "0.12"', 'haircut = "0.12345"', "haircut", "at most 4 allowed"),
        (
            'calendars = ["HK"]',
            'calendars = ["HK", "FIN:NOPE"]',
            "calendars",
            '"FIN:NOPE" is not a financial market calendar',
        ),
        ('calendars = ["HK"]', 'calendars = ["ZZ"]', "calendars", '"ZZ" is not a country calendar'),
        ('rail = "usd-chats"\n', 'rail = "usd-chat"\n', "rail", 'unknown rail "usd-chat"'),
        ('cutoff = "17:30"', 'cutoff = "5pm"', "cutoff", 'must be a time "HH:MM"'),
        ('timezone = "Asia/Hong_Kong"', 'timezone = "Asia/Hongkong_Central"', "timezone", "not a known IANA time zone"),
        ('temperature = "cold"', 'temperature = "warm"', "temperature", "must be one of hot, cold"),
        (
            'address = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"',
            'address = "0x3C44"',
            "address",
            "0x and 40 hex digits",
        ),
        ('jurisdiction = "JP"', 'jurisdiction = "QQ"', "jurisdiction", 'unknown jurisdiction "QQ"'),
        ('operator = "JP1"\nrail = "eth"', 'operator = "JP2"\nrail = "eth"', "operator", 'unknown operator "JP2"'),
        ('rail = "usd-chats"\nnumber', 'rail = "eth"\nnumber', "rail", "bank accounts sit on bank rails"),
        ('opening_hkd = "120000000"', 'opening_hkd = "-5"', "opening_hkd", "must be greater than zero"),
        ('price_hkd = "21000"', 'price_hkd = "0"', "price_hkd", "must be greater than zero"),
        ('warn_at = "0.70"', "warn_at = 0.7", "warn_at", "TOML float"),
        ('halt_at = "1.00"', 'halt_at = "1.20"', "halt_at", "must be at most 1.00"),
        ("chain_id = 31337", 'chain_id = "31337"', "chain_id", "must be an integer, got a string"),
    ],
)
def test_bad_value_names_key_and_line(demo, old, new, key, says):
    text = replace_once(demo, old, new)
    error = load_error(text)
    assert error.message.startswith(f"line {line_in_replacement(text, new, key)}: "), error.message
    assert f'key "{key}": ' in error.message
    assert says in error.message


def test_missing_required_key_names_the_table_line(demo):
    text = replace_once(demo, 'licence = "BXX001"\n', "")
    error = load_error(text)
    assert error.message == f'line {line_of(text, "[home]")}: [home] (HK1): missing required key "licence"'


def test_thresholds_must_be_ordered(demo):
    text = replace_once(demo, 'warn_at = "0.70"', 'warn_at = "0.90"')
    error = load_error(text)
    assert error.message.startswith(
        f'line {line_of(text, "settle_at")}: [cap] key "settle_at": thresholds must satisfy'
    )


def test_a_mark_for_hkd_is_refused(demo):
    text = demo + '\n[[mark]]\nasset = "HKD"\nprice_hkd = "1"\n'
    error = load_error(text)
    line = line_of(text, 'asset = "HKD"')
    assert f'line {line}: [[mark]] #5 (HKD) key "asset": HKD is the valuation currency' in error.message


def test_a_second_home_is_refused(demo):
    load(demo)
    text = replace_once(demo, 'code = "HK1"', 'code = "HK2"')
    error = load_error(text)
    assert error.message == (
        f'line {line_of(text, "HK2")}: [home] (HK2) key "code": the home operator is already HK1; '
        "a network has exactly one home"
    )


def test_a_second_home_table_is_a_syntax_error(demo):
    text = demo + '\n[home]\ncode = "HK2"\n'
    error = load_error(text)
    assert error.message.startswith(f"line {len(text.splitlines()) - 1}, column ")
    assert "TOML syntax error: Cannot declare ('home',) twice" in error.message


def test_home_code_declared_again_as_overseas_is_refused(demo):
    text = replace_once(demo, 'code = "JP1"', 'code = "HK1"')
    error = load_error(text)
    line = line_of(text, 'code = "HK1"', 2)
    assert f'line {line}: [[overseas]] #2 (HK1) key "code": operator HK1 is already declared in [home]' in error.message


def test_duplicate_codes_are_refused(demo):
    text = replace_once(demo, 'code = "ETH"', 'code = "BTC"')
    error = load_error(text)
    assert 'key "code": asset BTC is already declared in [[asset]] #1 (BTC)' in error.message


def test_no_home_anywhere_is_refused():
    error = load_error('[[mark]]\nasset = "BTC"\nprice_hkd = "1"\n')
    assert "no home operator: the file needs a [home] table" in error.message


def test_syntax_error_reports_line_and_column(demo):
    text = replace_once(demo, "scale = 18", "scale = = 18")
    error = load_error(text)
    assert error.message == f"line {line_of(text, 'scale = = 18')}, column 9: TOML syntax error: Invalid value"


def test_every_problem_is_reported_at_once(demo):
    text = replace_once(demo, 'dvp_policy = "escrow"', 'dvp_policy = "later"')
    text = replace_once(text, 'total_hkd = "100000000"', "total_hkd = 1e8")
    error = load_error(text)
    assert error.message.startswith("2 problems: ")
    assert f'line {line_of(text, "later")}: [[overseas]] #2 (JP1) key "dvp_policy"' in error.message
    assert f'line {line_of(text, "1e8")}: [cap] key "total_hkd"' in error.message
    assert len(error.problems) == 2


def test_a_broken_file_applies_nothing(demo):
    before = snapshot()
    text = demo + '\n[[mark]]\nasset = "DOGE"\nprice_hkd = "1"\n'  # every section valid but the last
    error = load_error(text)
    assert 'unknown asset "DOGE"' in error.message
    assert snapshot() == before


def test_a_broken_file_changes_nothing_on_a_loaded_network(demo):
    load(demo)
    before = snapshot()
    text = replace_once(demo, 'limit_hkd = "40000000"', 'limit_hkd = "30000000"')
    text = replace_once(text, 'price_hkd = "520000"', 'price_hkd = "530000"')
    text = replace_once(text, 'halt_at = "1.00"', 'halt_at = "0.75"')  # below settle_at
    load_error(text)
    assert snapshot() == before
    assert Operator.objects.get(code="SG1").limit_hkd == Decimal("40000000")
    assert Asset.objects.get(code="BTC").mark_hkd == Decimal("520000")


# --- updates --------------------------------------------------------------------------------------


@pytest.mark.para(23)
def test_a_changed_field_updates_and_is_audited(demo):
    load(demo)
    text = replace_once(demo, 'limit_hkd = "40000000"', 'limit_hkd = "30000000.50"')
    result = approved(text)

    assert (result.created, result.updated) == (0, 1)
    assert result.counts["operator"] == {"created": 0, "updated": 1, "unchanged": 2}
    assert Operator.objects.get(code="SG1").limit_hkd == Decimal("30000000.50")
    event = AuditEvent.objects.get(action="network.updated", object_type="Operator")
    assert (event.object_id, event.actor) == ("SG1", "user:checker")
    assert event.before == {"limit_hkd": "40000000.00"}
    assert event.after == {"limit_hkd": "30000000.50"}
    assert result.summary() == (
        f"network change proposed as approval {result.approval_id}; a different ops_approver must approve it: "
        "0 created, 1 updated, 34 unchanged (operator: 1 updated)"
    )


@pytest.mark.para(23)
def test_cap_update_stamps_updated_at(demo):
    load(demo)
    stamped = CapConfig.objects.get().updated_at
    approved(replace_once(demo, 'total_hkd = "100000000"', 'total_hkd = "90000000"'))
    cap = CapConfig.objects.get()
    assert cap.total_hkd == Decimal("90000000") and cap.updated_at > stamped
    event = AuditEvent.objects.get(action="network.updated", object_type="CapConfig")
    assert event.before == {"total_hkd": "100000000.00"} and event.after == {"total_hkd": "90000000"}


@pytest.mark.para(17)
def test_the_reserve_opening_cannot_change(demo):
    load(demo)
    text = replace_once(demo, 'opening_hkd = "120000000"', 'opening_hkd = "150000000"')
    error = load_error(text)
    assert error.message == (
        f'line {line_of(text, "opening_hkd")}: [reserve] (TD-2026-01) key "opening_hkd": the opening contribution '
        "is already recorded as 120000000.00 HKD; change the fund through ledger entries (the ledger is append-only)"
    )
    assert reserve_balance_hkd() == Decimal("120000000")


def test_a_second_reserve_fund_is_refused(demo):
    load(demo)
    error = load_error(replace_once(demo, 'deed = "TD-2026-01"', 'deed = "TD-2027-01"'))
    assert "the reserve fund is registered under deed TD-2026-01" in error.message


def test_marks_are_idempotent_and_a_new_price_is_recorded(demo):
    load(demo)
    assert Mark.objects.count() == 4
    load(demo)
    assert Mark.objects.count() == 4

    text = replace_once(demo, 'price_hkd = "520000"', 'price_hkd = "530000"')
    result = approved(text)
    assert result.counts["mark"] == {"created": 1, "updated": 0, "unchanged": 3}
    btc = Asset.objects.get(code="BTC")
    assert btc.mark_hkd == Decimal("530000") and Mark.objects.filter(asset=btc).count() == 2
    event = AuditEvent.objects.filter(action="network.updated", object_type="Asset", object_id="BTC").first()
    assert Decimal(event.before["mark_hkd"]) == 520000 and event.after["mark_hkd"] == "530000"
    assert event.after["mark_source"] == "network file"
    approved(text)
    assert Mark.objects.filter(asset=btc).count() == 2


def test_an_older_mark_is_history_only(demo):
    load(demo)
    text = replace_once(demo, 'price_hkd = "21000"', 'price_hkd = "19000"\nas_of = 2026-01-02T10:00:00+08:00')
    approved(text)
    eth = Asset.objects.get(code="ETH")
    assert eth.mark_hkd == Decimal("21000")  # the newer mark stays current
    older = Mark.objects.get(asset=eth, price_hkd=Decimal("19000"))
    assert older.as_of == datetime(2026, 1, 2, 2, 0, tzinfo=UTC)
    approved(text)
    assert Mark.objects.filter(asset=eth).count() == 2


@pytest.mark.para(25)
def test_accounts_opt_in_is_stamped_once(demo):
    load(demo)
    retail_out = replace_once(
        demo, "shared_book_opt_in = false", 'shared_book_opt_in = true\ndisclosure_version = "SOB-2026-01"'
    )
    approved(retail_out)
    account = Account.objects.get(ref="retail-out")
    assert account.shared_book_opt_in and account.opted_in_at is not None
    stamped = account.opted_in_at
    approved(retail_out)
    assert Account.objects.get(ref="retail-out").opted_in_at == stamped


@pytest.mark.para(24)
def test_an_opt_in_needs_a_disclosure_version(demo):
    text = replace_once(demo, "shared_book_opt_in = false", "shared_book_opt_in = true")
    error = load_error(text)
    assert "needs the disclosure_version the client accepted" in error.message


def test_a_partial_file_updates_a_loaded_network(demo):
    load(demo)
    result = approved('[[mark]]\nasset = "ETH"\nprice_hkd = "22000"\nsource = "ops desk"\n')
    assert result.counts == {"mark": {"created": 1, "updated": 0, "unchanged": 0}}
    assert Asset.objects.get(code="ETH").mark_source == "ops desk"


@pytest.mark.para(7)
def test_jurisdiction_overrides_and_eligibility_warnings(demo):
    text = demo.replace('jurisdiction = "JP"', 'jurisdiction = "XK"') + (
        '\n[[jurisdiction]]\ncode = "XK"\nname = "Kosovo"\nfsrb_bodies = ["MONEYVAL"]\n'
        '\n[[jurisdiction]]\ncode = "SG"\nincreased_monitoring = true\n'
    )
    result = load(text)
    assert result.counts["jurisdiction"] == {"created": 1, "updated": 1, "unchanged": 0}
    assert Jurisdiction.objects.get(code="XK").fsrb_bodies == ["MONEYVAL"]
    sg = Jurisdiction.objects.get(code="SG")
    assert sg.increased_monitoring and sg.fatf_member  # only the given keys change
    assert result.warnings == [
        "SG1 is not an eligible counterparty: jurisdiction SG is under FATF increased monitoring",
        "JP1 is not an eligible counterparty: jurisdiction XK is not recorded as having IOSCO-aligned regulation",
    ]


# --- the line locator -------------------------------------------------------------------------------


def test_line_locator_follows_tables_and_skips_multiline_values():
    text = (
        "top = 1\n"  # 1
        "[[rail]]\n"  # 2
        'code = "a"\n'  # 3
        "calendars = [\n"  # 4
        '  "HK",\n'  # 5
        '  ["not", "a header"],\n'  # 6
        "]\n"  # 7
        'note = """\n'  # 8
        "fake = 1\n"  # 9
        '"""\n'  # 10
        "[[rail]]  # the second\n"  # 11
        "'code' = \"b\"\n"  # 12
        "[cap]\n"  # 13
        "total_hkd = 1\n"  # 14
    )
    tomllib.loads(text)
    locate = LineLocator(text)
    assert locate.key(None, None, "top") == 1
    assert locate.table("rail", 0) == 2 and locate.table("rail", 1) == 11
    assert locate.key("rail", 0, "calendars") == 4
    assert locate.key("rail", 0, "fake") is None
    assert locate.key("rail", 1, "code") == 12
    assert locate.key("cap", None, "total_hkd") == 14


# --- the command ------------------------------------------------------------------------------------


def test_command_loads_and_summarises(demo):
    out = StringIO()
    call_command("load_network", str(DEMO), stdout=out)
    assert out.getvalue().startswith("network loaded: 35 created, 0 updated, 0 unchanged (operator: 3 created;")
    assert Operator.objects.count() == 3

    out = StringIO()
    call_command("load_network", str(DEMO), "--json", stdout=out)
    body = json.loads(out.getvalue())
    assert body["created"] == 0 and body["unchanged"] == 35 and body["dry_run"] is False
    assert body["counts"]["operator"] == {"created": 0, "updated": 0, "unchanged": 3}


def test_command_dry_run_applies_nothing():
    before = snapshot()
    out = StringIO()
    call_command("load_network", str(DEMO), "--dry-run", stdout=out)
    assert out.getvalue().startswith("dry run, rolled back: 35 created")
    assert snapshot() == before


def test_command_fails_with_one_line(tmp_path, demo):
    path = tmp_path / "network.toml"
    path.write_text(replace_once(demo, "scale = 8", "scale = 19"), encoding="utf-8")
    with pytest.raises(CommandError) as info:
        call_command("load_network", str(path))
    message = str(info.value)
    assert "\n" not in message
    assert (
        message
        == f'{path}: line {line_of(path.read_text(), "scale = 19")}: [[asset]] #1 (BTC) key "scale": must be at most 18, got 19'
    )
    assert info.value.returncode == 1
    assert Operator.objects.count() == 0


def test_command_reports_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match=r"nope\.toml: no such file$"):
        call_command("load_network", str(tmp_path / "nope.toml"))
    with pytest.raises(CommandError, match="is a directory"):
        call_command("load_network", str(tmp_path))


def test_a_nul_character_in_a_name_is_refused_with_its_line(db, demo):
    # TOML allows the \u0000 escape; PostgreSQL text cannot hold it
    error = load_error(demo.replace('name = "Lion City Exchange Pte Ltd"', 'name = "Lion\\u0000City"'))

    assert 'key "name": must not contain control characters' in error.message
    assert error.message.startswith("line ")


@pytest.mark.para(9, 13)
def test_an_escrow_counterparty_names_its_custodian_and_cycles_use_it(db, demo):
    from registry.models import Operator
    from settlement.services.cycles import cycle_run

    load(demo)
    jp1 = Operator.objects.get(code="JP1")
    assert (jp1.dvp_policy, jp1.escrow_custodian.name) == ("escrow", "Harbour Custody Ltd")
    before = snapshot()
    load(demo)
    assert snapshot() == before  # still idempotent

    at = eth_for_usdc(buy=("HK1", "c"), sell=("JP1", "j"))
    batch = cycle_run(kind="intraday", as_of=at, actor="test").batches.get()
    assert batch.escrow_custodian.name == "Harbour Custody Ltd"


ESCROW_HOLDERS = """
[[wallet]]
operator = "JP1"
rail = "eth"
address = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"
custodian = "Harbour Custody Ltd"
escrow = true

[[bank_account]]
operator = "JP1"
rail = "hkd-chats"
number = "024-000111-009"
bank = "Harbour Custody Ltd"
escrow_custodian = "Harbour Custody Ltd"
"""


@pytest.mark.para(13)
def test_escrow_holders_are_registered_and_home_delivers_to_them_not_to_the_counterparty(db, demo):

    from custody.models import Instruction
    from settlement.services.cycles import cycle_run

    load(demo + ESCROW_HOLDERS)
    harbour = Custodian.objects.get(name="Harbour Custody Ltd")
    escrow = Wallet.objects.get(escrow=True)
    assert (escrow.operator.code, escrow.custodian, escrow.address) == (
        "JP1",
        harbour,
        "0x9965507d1a55bcc2695c58ba16fb37d819b0a4dc",
    )
    assert BankAccount.objects.get(escrow_custodian=harbour).number == "024-000111-009"
    before = snapshot()
    load(demo + ESCROW_HOLDERS)
    assert snapshot() == before  # idempotent

    at = eth_for_usdc(buy=("JP1", "j"), sell=("HK1", "c"))
    cycle_run(kind="intraday", as_of=at, actor="test")
    delivery = Instruction.objects.get()  # home's ETH leg to JP1
    assert (delivery.kind, delivery.asset.code, delivery.to_ref, delivery.problem) == (
        "delivery",
        "ETH",
        escrow.address,
        "",
    )


@pytest.mark.para(13)
def test_an_escrow_wallet_names_its_custodian(demo):
    text = demo + ESCROW_HOLDERS.replace('custodian = "Harbour Custody Ltd"\nescrow = true', "escrow = true")
    error = load_error(text)
    assert "an escrow holding wallet names its escrow custodian (custodian)" in error.message
    assert error.field.endswith(".escrow")


def eth_for_usdc(*, buy: tuple[str, str], sell: tuple[str, str]) -> datetime:
    """One ETH for 2,500 USDC between home and JP1, ingested; returns when
    the cycle that takes it may run."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from settlement.services.trades import trades_ingest

    at = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))
    item = {
        "trade_id": "E1",
        "base_asset": "ETH",
        "quote_asset": "USDC",
        "price": "2500",
        "quantity": "1",
        "buy": {"operator": buy[0], "account": buy[1]},
        "sell": {"operator": sell[0], "account": sell[1]},
        "executed_at": (at - timedelta(minutes=5)).isoformat(),
    }
    trades_ingest(items=[item], actor="test", now=at)
    return at
