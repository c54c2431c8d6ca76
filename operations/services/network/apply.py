"""Applying a checked plan: upserts by natural key in dependency order, one
audit event per created or changed object. Runs inside the caller's
transaction; a plan reaches here only when the whole file is valid.

A new object takes every value of its row (defaults for what the file
omits); an object that exists changes only the keys the file gives, so an
omitted optional key never resets a live value (``Row.given``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from django.db import models

from controls.datafile import Recorder
from custody.services.statements import normalise_account
from registry.models import Account, Asset, BankAccount, Custodian, Jurisdiction, Mark, Operator, Rail, Wallet
from reserves.models import ReserveEntry, ReserveFund
from settlement.models import CapConfig

from .tables import OPENING, Plan, Row

# the order objects are written in, and the order of the counts in a summary
KINDS = (
    "jurisdiction",
    "operator",
    "rail",
    "asset",
    "custodian",
    "wallet",
    "bank_account",
    "account",
    "cap",
    "reserve_fund",
    "reserve_entry",
    "mark",
)
# kinds whose change can move the exposure state (a cap, the fund, a mark)
EXPOSURE_KINDS = ("cap", "reserve_entry", "mark")


class _ByCode:
    """Objects by natural key: the ones written now, else read once."""

    def __init__(self, model: type[models.Model], key: str = "code") -> None:
        self.model, self.key = model, key
        self.objects: dict[str, Any] = {}

    def __getitem__(self, code: str) -> Any:
        if code not in self.objects:
            self.objects[code] = self.model._default_manager.get(**{self.key: code})
        return self.objects[code]

    def __setitem__(self, code: str, obj: Any) -> None:
        self.objects[code] = obj


def _upsert(
    recorder: Recorder,
    kind: str,
    model: type[models.Model],
    row: Row,
    *,
    lookup: dict[str, Any],
    values: dict[str, Any],
    object_id: str,
    stamp: dict[str, Any] | None = None,
) -> Any:
    """Create with every value, or update only the values the file gives."""
    if model._default_manager.filter(**lookup).exists():
        values = {key: value for key, value in values.items() if row.applies(key)}
    return recorder.upsert(kind, model, lookup=lookup, values=values, object_id=object_id, stamp=stamp)


def apply_plan(plan: Plan, recorder: Recorder, *, now: datetime) -> list[Operator]:
    """Write the plan; returns the overseas operators the file declares."""
    jurisdictions = _ByCode(Jurisdiction)
    for row in plan.jurisdictions:
        code, values = _split(row, "code")
        jurisdictions[code] = recorder.upsert(
            "jurisdiction", Jurisdiction, lookup={"code": code}, values=values, object_id=code
        )

    custodians = _ByCode(Custodian, key="name")
    named = (
        [row["custodian"] for row in plan.wallets]
        + [row.values.get("escrow_custodian") for row in plan.overseas]
        + [row["escrow_custodian"] for row in plan.bank_accounts]
    )
    for name in dict.fromkeys(name for name in named if name):
        custodians[name] = recorder.upsert("custodian", Custodian, lookup={"name": name}, values={}, object_id=name)

    operators = _ByCode(Operator)
    declared: list[tuple[Row, str]] = [(plan.home, Operator.Role.HOME)] if plan.home else []
    declared += [(row, Operator.Role.OVERSEAS) for row in plan.overseas]
    for row, role in declared:
        code, values = _split(row, "code")
        values["role"] = role
        values["jurisdiction"] = jurisdictions[values["jurisdiction"]]
        if role == Operator.Role.OVERSEAS:
            escrow = values.get("escrow_custodian")
            values["escrow_custodian"] = custodians[escrow] if escrow else None
        operators[code] = _upsert(
            recorder, "operator", Operator, row, lookup={"code": code}, values=values, object_id=code
        )

    rails = _ByCode(Rail)
    for row in plan.rails:
        code, values = _split(row, "code")
        rails[code] = _upsert(recorder, "rail", Rail, row, lookup={"code": code}, values=values, object_id=code)

    assets = _ByCode(Asset)
    for row in plan.assets:
        code, values = _split(row, "code")
        values["rail"] = rails[values["rail"]]
        assets[code] = _upsert(recorder, "asset", Asset, row, lookup={"code": code}, values=values, object_id=code)

    for row in plan.wallets:
        rail, address = rails[row["rail"]], row["address"]
        values = {
            "operator": operators[row["operator"]],
            "temperature": row["temperature"],
            "custodian": custodians[row["custodian"]] if row["custodian"] else None,
            "lead_time_minutes": row["lead_time_minutes"],
            "designated": row["designated"],
            "escrow": row["escrow"],
        }
        _upsert(
            recorder,
            "wallet",
            Wallet,
            row,
            lookup={"rail": rail, "address": address},
            values=values,
            object_id=f"{rail.code}:{address}",
        )

    for row in plan.bank_accounts:
        rail, number = rails[row["rail"]], row["number"]
        values = {
            "operator": operators[row["operator"]],
            "bank": row["bank"],
            "designated": row["designated"],
            "escrow_custodian": custodians[row["escrow_custodian"]] if row["escrow_custodian"] else None,
        }
        _upsert(
            recorder,
            "bank_account",
            BankAccount,
            row,
            lookup={"rail": rail, "number": number},
            values=values,
            object_id=f"{rail.code}:{number}",
        )

    for row in plan.accounts:
        _account(recorder, row, operators[row["operator"]], now=now)
    if plan.cap:
        _upsert(
            recorder,
            "cap",
            CapConfig,
            plan.cap,
            lookup={"singleton": True},
            values=plan.cap.values,
            object_id="cap",
            stamp={"updated_at": now},
        )
    if plan.reserve:
        _reserve(recorder, plan.reserve, now=now)
    for row in plan.marks:
        _mark(recorder, row, assets[row["asset"]], now=now)
    return [operators[row["code"]] for row in plan.overseas]


def _split(row: Row, key: str) -> tuple[str, dict[str, Any]]:
    values = dict(row.values)
    return values.pop(key), values


def _account(recorder: Recorder, row: Row, operator: Operator, *, now: datetime) -> None:
    ref = row["ref"]
    current = Account.objects.filter(operator=operator, ref=ref).first()
    values = {
        key: row[key]
        for key in ("client_class", "shared_book_opt_in", "disclosure_version")
        if current is None or row.applies(key)
    }
    if "shared_book_opt_in" in values:
        if not values["shared_book_opt_in"]:
            values["opted_in_at"] = None
        elif current is None or not current.shared_book_opt_in:
            values["opted_in_at"] = now  # the opt-in is recorded when it is first loaded
    recorder.upsert(
        "account", Account, lookup={"operator": operator, "ref": ref}, values=values, object_id=f"{operator.code}:{ref}"
    )


def _reserve(recorder: Recorder, row: Row, *, now: datetime) -> None:
    deed, opening = row["deed"], row["opening_hkd"]
    values: dict[str, Any] = {key: row[key] for key in ("trustee", "name")}
    values["bank_account"] = _trust_account(row["bank_account"])
    fund = cast(
        ReserveFund,
        _upsert(recorder, "reserve_fund", ReserveFund, row, lookup={"deed": deed}, values=values, object_id=deed),
    )
    # The ledger is append-only: the opening contribution is written once.
    # A different amount for it was refused when the file was checked.
    if fund.entries.filter(reference=OPENING).exists():
        recorder.count("reserve_entry", "unchanged")
        return
    entry = ReserveEntry.objects.create(
        fund=fund,
        kind=ReserveEntry.Kind.CONTRIBUTION,
        amount_hkd=opening,
        reference=OPENING,
        actor=recorder.actor,
        created_at=now,
    )
    recorder.created(
        "reserve_entry",
        entry,
        object_id=f"{deed}:{OPENING}",
        after={"fund": deed, "kind": entry.kind, "amount_hkd": opening, "reference": OPENING},
    )


def _trust_account(number: str) -> BankAccount | None:
    """The registered account ``[reserve] bank_account`` names (checked to exist, be home's and in HKD)."""
    if not number:
        return None
    wanted = normalise_account(number)
    return next(a for a in BankAccount.objects.all() if normalise_account(a.number) == wanted)


def _mark(recorder: Recorder, row: Row, asset: Asset, *, now: datetime) -> None:
    """A new Mark row, and the asset's current mark when it is the newest.

    The same price and source as the current mark (or an identical recorded
    mark, for a file that gives as_of) is no change, so reloading a file
    adds no rows."""
    price, source, as_of = row["price_hkd"], row["source"], row["as_of"]
    asset = Asset.objects.select_for_update().get(pk=asset.pk)
    same_as_current = asset.mark_hkd == price and asset.mark_source == source
    already_recorded = (
        as_of is not None and Mark.objects.filter(asset=asset, as_of=as_of, price_hkd=price, source=source).exists()
    )
    if same_as_current or already_recorded:
        recorder.count("mark", "unchanged")
        return
    as_of = as_of or now
    mark = Mark.objects.create(asset=asset, price_hkd=price, as_of=as_of, source=source, received_at=now)
    recorder.created(
        "mark",
        mark,
        object_id=f"{asset.code}@{as_of.isoformat()}",
        after={"asset": asset.code, "price_hkd": price, "as_of": as_of, "source": source},
    )
    if asset.mark_as_of is None or as_of >= asset.mark_as_of:
        before = {"mark_hkd": asset.mark_hkd, "mark_as_of": asset.mark_as_of, "mark_source": asset.mark_source}
        asset.mark_hkd, asset.mark_as_of, asset.mark_source = price, as_of, source
        asset.save(update_fields=["mark_hkd", "mark_as_of", "mark_source"])
        recorder.audit(
            "updated",
            asset,
            object_id=asset.code,
            before=before,
            after={"mark_hkd": price, "mark_as_of": as_of, "mark_source": source},
        )
