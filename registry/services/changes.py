"""The registry's records change only by proposal (DESIGN section 12):
operators (status, DVP policy, limits, SFC approval, escrow custodian),
jurisdictions, rails (their settings), assets, custodians, wallets, bank
accounts and client accounts. This module registers each with its natural
key and the registry's own rules, checked when a change is proposed and again
under the row lock when it is approved (controls/services/changes.py).

Not here, on purpose: a rail's status (``POST /api/v1/ops/rails/{code}/status``
takes effect at once), an asset's current mark (the marks feed), what a
wallet holds (``wallet_balance_set``) and API keys.
"""

from __future__ import annotations

import re

from django.db import models

from controls.exceptions import Conflict, InvalidInput
from controls.services.changes import Operation, change_target
from registry.models import Account, Asset, BankAccount, Custodian, Jurisdiction, Operator, Rail, Wallet

EVM_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
MARK_FIELDS = ("mark_hkd", "mark_as_of", "mark_source")
RAIL_STATUS_FIELDS = ("status", "status_reason")


def _used_outside_registry(obj: models.Model) -> list[str]:
    """What records of the layers above refer to ``obj`` (trades, obligations,
    legs...), found through the model's relations so the registry imports
    nothing above it."""
    users = []
    for relation in obj._meta.related_objects:
        related = relation.related_model
        if related._meta.app_label == "registry" or not relation.field.concrete:
            continue
        if related._default_manager.filter(**{relation.field.name: obj}).exists():
            users.append(str(related._meta.verbose_name_plural))
    return users


def _operator_check(*, operation: str, current: Operator | None, proposed: Operator | None) -> None:
    if operation == Operation.DELETE:
        raise Conflict(
            "not_deletable",
            "operators are never deleted: trades and obligations refer to them; suspend a counterparty instead",
        )
    assert proposed is not None
    was = current.status if current else None
    if proposed.status == Operator.Status.DEFAULTED and was != Operator.Status.DEFAULTED:
        raise InvalidInput(
            "invalid_change",
            f"{proposed.code} becomes defaulted only through the default process (POST /api/v1/ops/defaults)",
            field="status",
        )
    if was == Operator.Status.DEFAULTED and proposed.status != was:
        raise InvalidInput(
            "invalid_change", f"{proposed.code} is in default; its status changes through the defaults process"
        )
    if current is not None and proposed.role != current.role:
        raise InvalidInput("invalid_change", f"{current.code} is the {current.role} operator; a role cannot change")
    if proposed.role == Operator.Role.HOME and (proposed.limit_hkd is not None or proposed.sfc_approval):
        raise InvalidInput("invalid_change", "the home operator has no counterparty limit nor SFC approval reference")
    if bool(proposed.sfc_approval) != (proposed.approved_on is not None):
        raise InvalidInput("invalid_change", "sfc_approval and approved_on go together: give both or neither")


def _rail_check(*, operation: str, current: Rail | None, proposed: Rail | None) -> None:
    if current is not None and proposed is not None and proposed.kind != current.kind:
        raise InvalidInput("invalid_change", f"rail {current.code} is {current.kind}; a rail's kind cannot change")


def _asset_check(*, operation: str, current: Asset | None, proposed: Asset | None) -> None:
    if operation == Operation.DELETE:
        raise Conflict("not_deletable", "assets are never deleted: trades, obligations and marks refer to them")
    assert proposed is not None
    if current is not None and proposed.scale != current.scale and (users := _used_outside_registry(current)):
        raise InvalidInput(
            "invalid_change",
            f"{current.code} has scale {current.scale} and {', '.join(users)} recorded in it; "
            "a new scale would change what they mean",
        )
    if proposed.contract and proposed.rail.kind != Rail.Kind.EVM:
        raise InvalidInput("invalid_change", f"a token contract needs an evm rail; {proposed.rail.code} is not one")
    if proposed.kind == Asset.Kind.CRYPTO and proposed.rail.kind == Rail.Kind.BANK:
        raise InvalidInput("invalid_change", f"{proposed.rail.code} is a bank rail; a crypto asset cannot settle there")


def _address_normalise(wallet: Wallet) -> None:
    wallet.address = (wallet.address or "").strip().lower()  # chain data is matched lower-case


def _contract_normalise(asset: Asset) -> None:
    asset.contract = (asset.contract or "").strip().lower()


def _wallet_check(*, operation: str, current: Wallet | None, proposed: Wallet | None) -> None:
    if proposed is None:
        return
    rail = proposed.rail
    if rail.kind == Rail.Kind.BANK:
        raise InvalidInput("invalid_change", f"{rail.code} is a bank rail: register a bank account there, not a wallet")
    if rail.kind == Rail.Kind.EVM and not EVM_ADDRESS.fullmatch(proposed.address):
        raise InvalidInput(
            "invalid_change", f"a wallet on evm rail {rail.code} needs 0x and 40 hex digits, got {proposed.address!r}"
        )
    if proposed.temperature == Wallet.Temperature.HOT and proposed.lead_time_minutes:
        raise InvalidInput("invalid_change", "a lead time applies to cold wallets; a hot wallet has none")


def _bank_account_check(*, operation: str, current: BankAccount | None, proposed: BankAccount | None) -> None:
    if proposed is not None and proposed.rail.kind != Rail.Kind.BANK:
        raise InvalidInput(
            "invalid_change", f"{proposed.rail.code} is not a bank rail; bank accounts sit on bank rails"
        )


def _account_check(*, operation: str, current: Account | None, proposed: Account | None) -> None:
    if (
        current is not None
        and proposed is not None
        and (proposed.operator_id, proposed.ref)
        != (
            current.operator_id,
            current.ref,
        )
    ):
        # claims and exceptions name a client by operator and reference
        raise InvalidInput(
            "invalid_change", "a client account keeps its operator and reference; register a new account instead"
        )
    if proposed is not None and proposed.shared_book_opt_in and not proposed.disclosure_version:
        raise InvalidInput("invalid_change", "an opt-in needs the disclosure_version the client accepted")


change_target(Jurisdiction, natural_key=lambda j: j.code)
change_target(Operator, natural_key=lambda o: o.code, check=_operator_check)
change_target(Rail, natural_key=lambda r: r.code, check=_rail_check, volatile=RAIL_STATUS_FIELDS)
change_target(
    Asset, natural_key=lambda a: a.code, check=_asset_check, normalise=_contract_normalise, volatile=MARK_FIELDS
)
change_target(Custodian, natural_key=lambda c: c.name)
change_target(
    Wallet,
    natural_key=lambda w: f"{w.rail.code}:{w.address}",
    check=_wallet_check,
    normalise=_address_normalise,
)
change_target(BankAccount, natural_key=lambda b: f"{b.rail.code}:{b.number}", check=_bank_account_check)
change_target(Account, natural_key=lambda a: f"{a.operator.code}:{a.ref}", check=_account_check)
