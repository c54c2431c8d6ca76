"""Checking a plan's references: codes refer to something declared in the
file or registered, natural keys are unique, and nothing asks for a change
the registry refuses (a second home, a rail changing kind, a new opening
contribution). Reads the database; writes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q

from controls.datafile import Checker, show, valid
from controls.money import as_str
from custody.services.statements import normalise_account
from registry.models import Asset, BankAccount, Jurisdiction, Operator, Rail
from reserves.models import ReserveFund
from settlement.models import CapConfig, Trade

from .tables import EVM_ADDRESS, HKD, MARK_FUTURE_TOLERANCE, OPENING, Plan, Row, thresholds_check


def check_references(check: Checker, plan: Plan, *, now: datetime) -> None:
    """Codes refer to something in the file or the database, natural keys are
    unique, and nothing asks for a change the registry refuses."""
    _unique(check, plan.jurisdictions, ("code",), "jurisdiction")
    jurisdictions = set(Jurisdiction.objects.values_list("code", flat=True)) | _keys(plan.jurisdictions, "code")
    operators = _check_operators(check, plan, jurisdictions)
    rails = _check_rails(check, plan)
    assets = _check_assets(check, plan, rails)

    _unique(check, plan.wallets, ("rail", "address"), "wallet")
    for row in plan.wallets:
        _exists(check, row, "operator", operators, "operator")
        rail = _exists(check, row, "rail", rails, "rail")
        if rail and rails[rail] == Rail.Kind.BANK:
            check.problem(
                row.table, "rail", f"{rail} is a bank rail: register a [[bank_account]] there, not a [[wallet]]"
            )
        if (
            rail
            and rails[rail] == Rail.Kind.EVM
            and valid(row["address"])
            and not EVM_ADDRESS.fullmatch(row["address"])
        ):
            check.problem(
                row.table,
                "address",
                f"must be 0x and 40 hex digits on evm rail {rail}, got {show(row.table.data['address'])}",
            )

    _unique(check, plan.bank_accounts, ("rail", "number"), "bank account")
    for row in plan.bank_accounts:
        _exists(check, row, "operator", operators, "operator")
        rail = _exists(check, row, "rail", rails, "rail")
        if rail and rails[rail] != Rail.Kind.BANK:
            check.problem(
                row.table, "rail", f"{rail} is not a bank rail ({rails[rail]}); bank accounts sit on bank rails"
            )

    _unique(check, plan.accounts, ("operator", "ref"), "account")
    for row in plan.accounts:
        _exists(check, row, "operator", operators, "operator")

    _check_reserve(check, plan.reserve)
    _check_trust_account(check, plan)
    _check_cap(check, plan.cap)

    _unique(check, plan.marks, ("asset",), "mark for")
    for row in plan.marks:
        asset = _exists(check, row, "asset", assets, "asset")
        if asset == HKD:
            check.problem(row.table, "asset", "HKD is the valuation currency; its mark is always 1")
        as_of = row["as_of"]
        if valid(as_of) and as_of is not None and as_of > now + MARK_FUTURE_TOLERANCE:
            check.problem(row.table, "as_of", f"is in the future ({as_of.isoformat()})")


def _keys(rows: list[Row], key: str) -> set[Any]:
    return {row[key] for row in rows if valid(row[key])}


def _unique(check: Checker, rows: list[Row], keys: tuple[str, ...], what: str) -> None:
    first: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        natural_key = tuple(row[k] for k in keys)
        if not valid(*natural_key):
            continue
        if natural_key in first:
            shown = " ".join(str(k) for k in natural_key)
            check.problem(
                row.table, keys[-1], f"{what} {shown} is already declared in {first[natural_key].table.label}"
            )
        else:
            first[natural_key] = row


def _exists(check: Checker, row: Row, key: str, known: Any, what: str) -> Any:
    """The referenced code when it is known; otherwise report it and return None."""
    code = row[key]
    if not valid(code) or code is None:
        return None
    if code not in known:
        check.problem(row.table, key, f"unknown {what} {show(code)}: not declared in this file nor registered")
        return None
    return code


def _check_operators(check: Checker, plan: Plan, jurisdictions: set[str]) -> set[str]:
    registered = {code: (role, status) for code, role, status in Operator.objects.values_list("code", "role", "status")}
    registered_home = next((code for code, (role, _) in registered.items() if role == Operator.Role.HOME), None)
    rows = [plan.home] if plan.home else []
    _unique(check, [*rows, *plan.overseas], ("code",), "operator")
    for row in [*rows, *plan.overseas]:
        _exists(check, row, "jurisdiction", jurisdictions, "jurisdiction")

    if plan.home is None:
        if registered_home is None:
            check.problem(None, None, "no home operator: the file needs a [home] table")
    elif valid(code := plan.home["code"]):
        if registered_home is not None and code != registered_home:
            check.problem(
                plan.home.table,
                "code",
                f"the home operator is already {registered_home}; a network has exactly one home",
            )
        elif registered.get(code, (None,))[0] == Operator.Role.OVERSEAS:
            check.problem(
                plan.home.table, "code", f"{code} is registered as an overseas operator; a role cannot change"
            )
    for row in plan.overseas:
        code = row["code"]
        if not valid(code) or code not in registered:
            continue
        role, status = registered[code]
        if role == Operator.Role.HOME:
            check.problem(row.table, "code", f"{code} is the home operator, not an overseas one")
        elif status == Operator.Status.DEFAULTED and row.values.get("status") not in (None, status):
            check.problem(row.table, "status", f"{code} is in default; its status changes through the defaults process")
    return set(registered) | _keys([*rows, *plan.overseas], "code")


def _check_rails(check: Checker, plan: Plan) -> dict[str, str]:
    """rail code -> kind, for the file's and the registered rails."""
    registered = dict(Rail.objects.values_list("code", "kind"))
    _unique(check, plan.rails, ("code",), "rail")
    kinds = dict(registered)
    for row in plan.rails:
        code, kind = row["code"], row["kind"]
        if not valid(code, kind):
            continue
        if code in registered and registered[code] != kind:
            check.problem(
                row.table, "kind", f"rail {code} is registered as {registered[code]}; a rail's kind cannot change"
            )
        kinds[code] = kind
    return kinds


def _check_assets(check: Checker, plan: Plan, rails: dict[str, str]) -> set[str]:
    registered = {code: scale for code, scale in Asset.objects.values_list("code", "scale")}
    currencies = dict(Rail.objects.filter(kind=Rail.Kind.BANK).values_list("code", "currency"))
    currencies.update(
        {r["code"]: r["currency"] for r in plan.rails if r["kind"] == Rail.Kind.BANK and valid(r["code"])}
    )
    _unique(check, plan.assets, ("code",), "asset")
    for row in plan.assets:
        code, kind, scale, contract = row["code"], row["kind"], row["scale"], row["contract"]
        rail = _exists(check, row, "rail", rails, "rail")
        if rail:
            rail_kind = rails[rail]
            if kind == Asset.Kind.CRYPTO and rail_kind == Rail.Kind.BANK:
                check.problem(
                    row.table, "rail", f"{rail} is a bank rail; a crypto asset settles on an evm or manual rail"
                )
            if kind == Asset.Kind.FIAT and rail_kind == Rail.Kind.EVM:
                check.problem(
                    row.table, "rail", f"{rail} is an evm rail; a fiat asset settles on a bank or manual rail"
                )
            if contract and rail_kind != Rail.Kind.EVM:
                check.problem(
                    row.table, "contract", f"a token contract needs an evm rail; {rail} is a {rail_kind} rail"
                )
            currency = currencies.get(rail)
            if rail_kind == Rail.Kind.BANK and valid(code, currency) and code != currency:
                check.problem(row.table, "rail", f"bank rail {rail} moves {currency}, not {code}")
        if not valid(code, scale):
            continue
        if code == HKD and scale != settings.HKD_SCALE:
            check.problem(row.table, "scale", f"HKD amounts have {settings.HKD_SCALE} decimal places, got {scale}")
        if code in registered and registered[code] != scale and _has_trades(code):
            check.problem(
                row.table,
                "scale",
                f"{code} has scale {registered[code]} and recorded trades; a new scale would change what they mean",
            )
    return set(registered) | _keys(plan.assets, "code")


def _has_trades(asset_code: str) -> bool:
    return Trade.objects.filter(Q(base_asset__code=asset_code) | Q(quote_asset__code=asset_code)).exists()


def _check_reserve(check: Checker, row: Row | None) -> None:
    if row is None or not valid(row["deed"]):
        return
    deed, opening = row["deed"], row["opening_hkd"]
    other = ReserveFund.objects.exclude(deed=deed).values_list("deed", flat=True).first()
    if other is not None:
        check.problem(
            row.table,
            "deed",
            f"the reserve fund is registered under deed {other}; there is one fund and its ledger, "
            "so a new deed is a change for operations, not the network file",
        )
        return
    recorded = (
        ReserveFund.objects.filter(deed=deed, entries__reference=OPENING)
        .values_list("entries__amount_hkd", flat=True)
        .first()
    )
    if recorded is not None and valid(opening) and recorded != opening:
        check.problem(
            row.table,
            "opening_hkd",
            f"the opening contribution is already recorded as {as_str(recorded)} HKD; "
            "change the fund through ledger entries (the ledger is append-only)",
        )


def _check_trust_account(check: Checker, plan: Plan) -> None:
    """``[reserve] bank_account`` names a bank account of home's, declared in
    this file or registered, on a bank rail in HKD: the fund's account on trust,
    whose statements are reconciled with the fund's ledger."""
    row = plan.reserve
    if row is None or not valid(row["bank_account"]) or not row["bank_account"]:
        return
    number = row["bank_account"]
    found = trust_account_in(plan, number)
    # the file's home or the registered one (a file naming another home is refused for that already)
    homes = {plan.home["code"] if plan.home and valid(plan.home["code"]) else None}
    homes |= set(Operator.objects.filter(role=Operator.Role.HOME).values_list("code", flat=True))
    if found is None:
        check.problem(
            row.table,
            "bank_account",
            f"{show(number)} is not a registered bank account: the fund's trust account must be one of home's "
            "bank accounts; declare it as a [[bank_account]] (operator, rail, number, bank) and give its number here",
        )
        return
    operator, rail_code = found
    if operator not in homes:
        check.problem(
            row.table, "bank_account", f"{show(number)} is {operator}'s account; the fund's trust account is home's"
        )
        return
    currency = next((r["currency"] for r in plan.rails if r["code"] == rail_code and valid(r["currency"])), None)
    if currency is None:
        currency = Rail.objects.filter(code=rail_code).values_list("currency", flat=True).first()
    if currency != HKD:
        check.problem(
            row.table,
            "bank_account",
            f"{show(number)} is on rail {rail_code} ({currency or 'no currency'}); the fund is held in HKD",
        )


def trust_account_in(plan: Plan, number: str) -> tuple[str, str] | None:
    """(operator code, rail code) of the bank account with this number, from
    the file's [[bank_account]] tables or the registry (numbers compared
    without spaces, dashes or dots, as statements give them)."""
    wanted = normalise_account(number)
    for row in plan.bank_accounts:
        if valid(row["number"]) and normalise_account(row["number"]) == wanted:
            return row["operator"], row["rail"]
    for account in BankAccount.objects.select_related("operator", "rail"):
        if normalise_account(account.number) == wanted:
            return account.operator.code, account.rail.code
    return None


def _check_cap(check: Checker, row: Row | None) -> None:
    if row is None:
        return
    current = CapConfig.objects.first()
    thresholds = {
        key: row[key] if current is None or row.applies(key) else getattr(current, key)
        for key in ("warn_at", "settle_at", "halt_at")
    }
    thresholds_check(check, row, thresholds)
