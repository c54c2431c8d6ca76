"""Reading the network file into a plan: the keys and values of every table.
Problems go to the ``Checker`` with their lines; nothing here reads the
database or writes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import holidays
from django.conf import settings

from controls.datafile import (
    INVALID,
    Bad,
    Checker,
    Reader,
    Table,
    array,
    aware_datetime,
    boolean,
    calendar_date,
    choice,
    clock_time,
    decimal,
    integer,
    show,
    text,
    time_zone,
    url,
    valid,
)
from controls.money import MAX_SCALE, as_str
from registry.models import Account, Asset, Operator, Rail, Wallet
from registry.services.jurisdictions import ISO_CODE, jurisdiction_read
from reserves.models import ReserveFund

HKD = "HKD"
OPENING = "opening"  # the reference of the reserve fund's opening contribution
DEFAULT_MARK_SOURCE = "network file"
MARK_FUTURE_TOLERANCE = timedelta(seconds=60)
MAX_MINUTES = 525_600  # a year

# table name -> written as [[name]] (an array of tables)
SECTIONS: dict[str, bool] = {
    "home": False,
    "overseas": True,
    "jurisdiction": True,
    "rail": True,
    "asset": True,
    "wallet": True,
    "bank_account": True,
    "account": True,
    "cap": False,
    "reserve": False,
    "mark": True,
}
HOME_KEYS = ("code", "name", "jurisdiction", "licence")
OVERSEAS_KEYS = (*HOME_KEYS, "sfc_approval", "approved_on", "dvp_policy", "limit_hkd", "status", "escrow_custodian")
RAIL_KEYS = {
    Rail.Kind.EVM: ("chain_id", "rpc_url", "confirmations", "window_minutes"),
    Rail.Kind.BANK: ("currency", "calendars", "cutoff", "timezone", "window_minutes", "weekend"),
    Rail.Kind.MANUAL: ("window_minutes",),
}
ASSET_KEYS = ("code", "kind", "scale", "rail", "contract", "haircut")
WALLET_KEYS = (
    "operator",
    "rail",
    "address",
    "temperature",
    "custodian",
    "lead_time_minutes",
    "designated",
    "escrow",
)
BANK_ACCOUNT_KEYS = ("operator", "rail", "number", "bank", "designated", "escrow_custodian")
ACCOUNT_KEYS = ("operator", "ref", "client_class", "shared_book_opt_in", "disclosure_version")
CAP_KEYS = ("total_hkd", "warn_at", "settle_at", "halt_at")
RESERVE_KEYS = ("trustee", "deed", "bank_account", "name", "opening_hkd")
MARK_KEYS = ("asset", "price_hkd", "as_of", "source")

# Bank rails close on Saturdays and Sundays unless the file says otherwise:
# HKD CHATS does not run on Saturdays (not confirmed by a public source, hence a setting).
DEFAULT_BANK_WEEKEND = [6, 7]
DEFAULT_TIMEZONE = "Asia/Hong_Kong"
DEFAULT_WINDOW_MINUTES = 1440

_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CODE_HINT = "letters, digits, '_', '.' or '-'"
OPERATOR_CODE = text(max_length=16, pattern=_CODE, hint=_CODE_HINT)
RAIL_CODE = text(max_length=32, pattern=_CODE, hint=_CODE_HINT)
ASSET_CODE = text(max_length=16, pattern=_CODE, hint=_CODE_HINT)
EVM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
CURRENCY = text(max_length=3, pattern=re.compile(r"[A-Z]{3}"), hint='an ISO 4217 code such as "HKD"')
MINUTES = integer(minimum=0, maximum=MAX_MINUTES)
WINDOW = integer(minimum=1, maximum=MAX_MINUTES)


@dataclass(slots=True)
class Row:
    """One object the file declares. References to other objects are codes,
    resolved when the plan is applied; a value with a problem is INVALID.

    ``values`` holds every field, with defaults for the optional keys the
    file omits; ``given`` names the fields the file sets. A new object takes
    all of ``values``; an object that exists changes only what is ``given``:
    an omitted optional key leaves its value as it is, an explicit empty
    value ("") clears it."""

    table: Table
    values: dict[str, Any]
    given: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.given is None:
            self.given = frozenset(self.table.data)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def applies(self, key: str) -> bool:
        """Whether the file sets ``key`` (or must: a required key)."""
        return key in (self.given or ())


@dataclass(slots=True)
class Plan:
    home: Row | None = None
    overseas: list[Row] = field(default_factory=list)
    jurisdictions: list[Row] = field(default_factory=list)
    rails: list[Row] = field(default_factory=list)
    assets: list[Row] = field(default_factory=list)
    wallets: list[Row] = field(default_factory=list)
    bank_accounts: list[Row] = field(default_factory=list)
    accounts: list[Row] = field(default_factory=list)
    cap: Row | None = None
    reserve: Row | None = None
    marks: list[Row] = field(default_factory=list)


# --- value readers specific to the network file ------------------------------------------------


def hkd_amount(*, positive: bool) -> Reader:
    return decimal(scale=settings.HKD_SCALE, positive=positive, minimum=None if positive else Decimal(0))


def clearable(reader: Reader, empty: Any = None) -> Reader:
    """An optional value that "" clears (TOML has no null)."""

    def read(value: Any) -> Any:
        return empty if isinstance(value, str) and not value.strip() else reader(value)

    return read


def threshold(value: Any) -> Decimal:
    number = decimal(scale=4, positive=True)(value)
    if number > 1:
        raise Bad(
            f"must be at most 1.00 (utilisation of the cap; above 1 exposure could exceed the cap), got {show(value)}"
        )
    return number


def calendar_code(value: Any) -> str:
    """A holidays-library calendar: a country code ("HK") or a market ("FIN:XHKG")."""
    if not isinstance(value, str):
        raise Bad(f'must be a calendar code such as "HK" or "FIN:XHKG", got {show(value)}')
    if value.startswith("FIN:"):
        if value[4:] not in holidays.list_supported_financial():
            raise Bad(
                f'{show(value)} is not a financial market calendar of the holidays library (e.g. "FIN:XHKG", "FIN:XFED")'
            )
    elif value not in holidays.list_supported_countries():
        raise Bad(
            f'{show(value)} is not a country calendar of the holidays library (e.g. "HK") nor a "FIN:XHKG"-style market'
        )
    return value


def operator_status(value: Any) -> str:
    if value == Operator.Status.DEFAULTED:
        raise Bad("a default is declared by operations with four eyes (the defaults process), not by the network file")
    return choice(Operator.Status.ACTIVE.value, Operator.Status.SUSPENDED.value)(value)


# --- tables -------------------------------------------------------------------------------------


def read_plan(check: Checker, data: dict[str, Any]) -> Plan:
    """Every table's keys and values; problems go to ``check``."""
    for name, value in data.items():
        if name in SECTIONS:
            continue
        expected = ", ".join(f"[[{s}]]" if array else f"[{s}]" for s, array in SECTIONS.items())
        if isinstance(value, dict):
            line = check.locator.table(name) if check.locator else None
            check.problem(None, None, f"unknown table [{name}]; expected {expected}", line=line)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            line = check.locator.table(name, 0) if check.locator else None
            check.problem(None, None, f"unknown table [[{name}]]; expected {expected}", line=line)
        else:
            check.problem(Table(None, None, data), name, f"unknown key; the file holds only the tables {expected}")

    plan = Plan()
    for table in check.tables(data, "home", array=False):
        plan.home = _home(check, table)
    plan.overseas = [_overseas(check, t) for t in check.tables(data, "overseas", array=True)]
    plan.jurisdictions = [_jurisdiction(check, t) for t in check.tables(data, "jurisdiction", array=True)]
    plan.rails = [_rail(check, t) for t in check.tables(data, "rail", array=True)]
    plan.assets = [_asset(check, t) for t in check.tables(data, "asset", array=True)]
    plan.wallets = [_wallet(check, t) for t in check.tables(data, "wallet", array=True)]
    plan.bank_accounts = [_bank_account(check, t) for t in check.tables(data, "bank_account", array=True)]
    plan.accounts = [_account(check, t) for t in check.tables(data, "account", array=True)]
    for table in check.tables(data, "cap", array=False):
        plan.cap = _cap(check, table)
    for table in check.tables(data, "reserve", array=False):
        plan.reserve = _reserve(check, table)
    plan.marks = [_mark(check, t) for t in check.tables(data, "mark", array=True)]
    return plan


def _operator(check: Checker, table: Table) -> dict[str, Any]:
    return {
        "code": check.get(table, "code", OPERATOR_CODE, required=True),
        "name": check.get(table, "name", text(max_length=200), required=True),
        "jurisdiction": check.get(table, "jurisdiction", ISO_CODE, required=True),
        "licence": check.get(table, "licence", text(max_length=100), required=True),
    }


def _home(check: Checker, table: Table) -> Row:
    check.only(table, HOME_KEYS, elsewhere=dict.fromkeys(OVERSEAS_KEYS, "applies to [[overseas]] operators only"))
    return Row(table, _operator(check, table))


def _overseas(check: Checker, table: Table) -> Row:
    check.only(table, OVERSEAS_KEYS)
    values = _operator(check, table)
    values["sfc_approval"] = check.get(table, "sfc_approval", text(max_length=100, blank=True), default="")
    values["approved_on"] = check.get(table, "approved_on", clearable(calendar_date))
    values["dvp_policy"] = check.get(
        table, "dvp_policy", choice(*Operator.DvpPolicy.values), default=Operator.DvpPolicy.RECEIVE_FIRST.value
    )
    values["limit_hkd"] = check.get(table, "limit_hkd", clearable(hkd_amount(positive=False)))
    # escrow DVP: where both sides' legs are locked and released together
    values["escrow_custodian"] = check.get(table, "escrow_custodian", clearable(text(max_length=200)))
    if "status" in table.data:  # operational state: left alone unless the file sets it
        values["status"] = check.get(table, "status", operator_status)
    given = set(table.data)
    approval, approved_on = values["sfc_approval"], values["approved_on"]
    if "sfc_approval" in given and not approval and "approved_on" not in given:
        given.add("approved_on")  # sfc_approval = "" withdraws the approval, its date with it
    elif valid(approval, approved_on) and bool(approval) != (approved_on is not None):
        check.problem(
            table, None, 'sfc_approval and approved_on go together: give both, or sfc_approval = "" to clear both'
        )
    return Row(table, values, frozenset(given))


def _jurisdiction(check: Checker, table: Table) -> Row:
    code, values = jurisdiction_read(check, table, partial=True)
    return Row(table, {"code": code, **values})


def _rail(check: Checker, table: Table) -> Row:
    kind = check.get(table, "kind", choice(*Rail.Kind.values), required=True)
    every_kind = {key for keys in RAIL_KEYS.values() for key in keys}
    if kind is INVALID:
        check.only(table, ("code", "kind", *sorted(every_kind)))
    else:
        mine = ("code", "kind", *RAIL_KEYS[kind])
        check.only(table, mine, elsewhere={k: f"does not apply to {kind} rails" for k in every_kind - set(mine)})
    values: dict[str, Any] = {"code": check.get(table, "code", RAIL_CODE, required=True), "kind": kind}
    window = check.get(table, "window_minutes", WINDOW, default=DEFAULT_WINDOW_MINUTES)
    if kind == Rail.Kind.EVM:
        values["chain_id"] = check.get(table, "chain_id", integer(minimum=1, maximum=2**63 - 1), required=True)
        values["rpc_url"] = check.get(
            table, "rpc_url", clearable(url(schemes=("http", "https", "ws", "wss"), max_length=300), ""), default=""
        )
        values["confirmations"] = check.get(table, "confirmations", integer(minimum=0, maximum=10_000), required=True)
        values["window_minutes"] = window
    elif kind == Rail.Kind.BANK:
        values["currency"] = check.get(table, "currency", CURRENCY, required=True)
        values["calendars"] = check.get(table, "calendars", array(calendar_code), required=True)
        values["cutoff"] = check.get(table, "cutoff", clock_time, required=True)
        values["timezone"] = check.get(table, "timezone", time_zone, default=DEFAULT_TIMEZONE)
        values["window_minutes"] = window
        weekend = check.get(table, "weekend", array(integer(minimum=1, maximum=7)), default=DEFAULT_BANK_WEEKEND)
        values["weekend"] = sorted(weekend) if valid(weekend) else weekend
    elif kind == Rail.Kind.MANUAL:
        values["window_minutes"] = window
    return Row(table, values)


def _asset(check: Checker, table: Table) -> Row:
    check.only(table, ASSET_KEYS)
    contract = check.get(
        table,
        "contract",
        clearable(text(max_length=64, pattern=EVM_ADDRESS, hint="0x and 40 hex digits"), ""),
        default="",
    )
    return Row(
        table,
        {
            "code": check.get(table, "code", ASSET_CODE, required=True),
            "kind": check.get(table, "kind", choice(*Asset.Kind.values), required=True),
            "scale": check.get(table, "scale", integer(minimum=0, maximum=MAX_SCALE), required=True),
            "rail": check.get(table, "rail", RAIL_CODE, required=True),
            # lower-case like wallet addresses, so chain data matches in any checksum case
            "contract": contract.lower() if valid(contract) else contract,
            # exposure against the cap is receivable x mark x (1 + haircut)
            "haircut": check.get(
                table, "haircut", decimal(scale=4, minimum=Decimal(0), maximum=Decimal(1)), default=Decimal(0)
            ),
        },
    )


def _wallet(check: Checker, table: Table) -> Row:
    check.only(table, WALLET_KEYS)
    address = check.get(table, "address", text(max_length=64), required=True)
    values = {
        "operator": check.get(table, "operator", OPERATOR_CODE, required=True),
        "rail": check.get(table, "rail", RAIL_CODE, required=True),
        "address": address.lower() if valid(address) else address,
        "temperature": check.get(
            table, "temperature", choice(*Wallet.Temperature.values), default=Wallet.Temperature.HOT.value
        ),
        "custodian": check.get(table, "custodian", clearable(text(max_length=200))),
        "lead_time_minutes": check.get(table, "lead_time_minutes", MINUTES, default=0),
        # a designated custodian wallet of its operator (prefunding, circular para 10)
        "designated": check.get(table, "designated", boolean, default=False),
        # an escrow holding wallet at its custodian (escrow DVP, DESIGN section 7)
        "escrow": check.get(table, "escrow", boolean, default=False),
    }
    if values["escrow"] is True and not values["custodian"]:
        check.problem(table, "escrow", "an escrow holding wallet names its escrow custodian (custodian)")
    given = set(table.data)
    if values["temperature"] == Wallet.Temperature.HOT:
        if valid(values["lead_time_minutes"]) and values["lead_time_minutes"]:
            check.problem(table, "lead_time_minutes", "applies to cold wallets; a hot wallet has no lead time")
        given.add("lead_time_minutes")  # a wallet made hot has no lead time any more
    return Row(table, values, frozenset(given))


def _bank_account(check: Checker, table: Table) -> Row:
    check.only(table, BANK_ACCOUNT_KEYS)
    return Row(
        table,
        {
            "operator": check.get(table, "operator", OPERATOR_CODE, required=True),
            "rail": check.get(table, "rail", RAIL_CODE, required=True),
            "number": check.get(table, "number", text(max_length=64), required=True),
            "bank": check.get(table, "bank", text(max_length=200), required=True),
            "designated": check.get(table, "designated", boolean, default=False),
            # set on an escrow holding account: the escrow custodian keeping it
            "escrow_custodian": check.get(table, "escrow_custodian", clearable(text(max_length=200))),
        },
    )


def _account(check: Checker, table: Table) -> Row:
    check.only(table, ACCOUNT_KEYS)
    values = {
        "operator": check.get(table, "operator", OPERATOR_CODE, required=True),
        "ref": check.get(table, "ref", text(max_length=64), required=True),
        "client_class": check.get(
            table, "client_class", choice(*Account.ClientClass.values), default=Account.ClientClass.RETAIL.value
        ),
        "shared_book_opt_in": check.get(table, "shared_book_opt_in", boolean, default=False),
        "disclosure_version": check.get(table, "disclosure_version", text(max_length=32, blank=True), default=""),
    }
    if values["shared_book_opt_in"] is True and values["disclosure_version"] == "":
        check.problem(
            table, None, "an opt-in (shared_book_opt_in = true) needs the disclosure_version the client accepted"
        )
    return Row(table, values)


def _cap(check: Checker, table: Table) -> Row:
    check.only(table, CAP_KEYS)
    defaults = settings.DEFAULT_THRESHOLDS
    values = {
        "total_hkd": check.get(table, "total_hkd", hkd_amount(positive=False), required=True),
        **{key: check.get(table, key, threshold, default=defaults[key]) for key in ("warn_at", "settle_at", "halt_at")},
    }
    # their order is checked with the references: an omitted threshold keeps its current value
    return Row(table, values)


def thresholds_check(check: Checker, row: Row, thresholds: dict[str, Any]) -> None:
    """0 < warn_at <= settle_at <= halt_at, for the thresholds as they will be."""
    warn, settle, halt = thresholds["warn_at"], thresholds["settle_at"], thresholds["halt_at"]
    if valid(warn, settle, halt) and not warn <= settle <= halt:
        pair = ("warn_at", "settle_at") if warn > settle else ("settle_at", "halt_at")
        check.problem(
            row.table,
            next((key for key in reversed(pair) if key in row.table.data), None),
            f"thresholds must satisfy 0 < warn_at <= settle_at <= halt_at, got warn_at {as_str(warn)}, "
            f"settle_at {as_str(settle)}, halt_at {as_str(halt)}",
        )


def _reserve(check: Checker, table: Table) -> Row:
    check.only(table, RESERVE_KEYS)
    return Row(
        table,
        {
            "trustee": check.get(table, "trustee", text(max_length=200), required=True),
            "deed": check.get(table, "deed", text(max_length=100), required=True),
            "bank_account": check.get(table, "bank_account", clearable(text(max_length=64), ""), default=""),
            "name": check.get(table, "name", text(max_length=200), default=ReserveFund._meta.get_field("name").default),
            "opening_hkd": check.get(table, "opening_hkd", hkd_amount(positive=True), required=True),
        },
    )


def _mark(check: Checker, table: Table) -> Row:
    check.only(table, MARK_KEYS)
    return Row(
        table,
        {
            "asset": check.get(table, "asset", ASSET_CODE, required=True),
            "price_hkd": check.get(table, "price_hkd", decimal(scale=MAX_SCALE, positive=True), required=True),
            "as_of": check.get(table, "as_of", aware_datetime),
            "source": check.get(table, "source", text(max_length=100), default=DEFAULT_MARK_SOURCE),
        },
    )
