"""Judging one hold or funding-event item from outside: every field checked,
decimals at the asset's scale, and a hash of the content for idempotency.
Pure: reads only the registry snapshot it is given."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from controls.exceptions import InvalidInput
from controls.money import amount_in_range, parse_decimal
from controls.timestamps import parse_instant
from registry.selectors import AssetInfo, OperatorInfo, Registry
from settlement.models import FundingEvent
from settlement.services.trade_parsing import text_field


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def _amount(raw: object, *, asset: AssetInfo, field: str = "amount", positive: bool = True) -> Decimal:
    """At the asset's scale and in the range every amount from outside keeps
    (``controls.money``): the same rule as a trade's quantity."""
    amount = parse_decimal(raw, field=field, scale=asset.scale, positive=positive)
    return amount_in_range(amount, scale=asset.scale, field=field)


def operator_of(item: dict, registry: Registry, *, key: str = "operator") -> OperatorInfo:
    code = text_field(item, key, max_length=16)
    operator = registry.operators.get(code)
    if operator is None:
        raise InvalidInput("unknown_operator", f"{key} {code!r} is not a registered operator", field=key)
    return operator


def asset_of(item: dict, registry: Registry) -> AssetInfo:
    code = text_field(item, "asset", max_length=16)
    asset = registry.assets.get(code)
    if asset is None:
        raise InvalidInput("unknown_asset", f"asset {code!r} is not a registered asset", field="asset")
    return asset


def instant_of(item: dict, key: str) -> datetime | None:
    raw = item.get(key)
    return None if raw is None else parse_instant(raw, field=key)


@dataclass(slots=True)
class HoldRequest:
    index: int
    order_id: str
    operator: OperatorInfo
    account: str
    asset: AssetInfo
    amount: Decimal
    expires_given: datetime | None
    content_hash: str
    # set while the hold is placed: its balance, and available after it
    balance_id: int = 0
    available_after: Decimal = Decimal(0)

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.operator.id, self.account, self.asset.id)


def hold_parse(item: object, *, index: int, registry: Registry) -> HoldRequest:
    """One hold item: ``{"order_id", "operator", "account", "asset",
    "amount", "expires_at"?}``. The bounds of ``expires_at`` are judged when
    a new hold is placed (a replay may come after the time it names)."""
    if not isinstance(item, dict):
        raise InvalidInput("invalid_item", "each hold must be a JSON object")
    order_id = text_field(item, "order_id")
    operator = operator_of(item, registry)
    account = text_field(item, "account")
    asset = asset_of(item, registry)
    amount = _amount(item.get("amount"), asset=asset)
    expires = instant_of(item, "expires_at")
    content_hash = _digest(
        operator.code,
        order_id,
        account,
        asset.code,
        format(amount.normalize(), "f"),
        expires.isoformat() if expires else "",
    )
    return HoldRequest(index, order_id, operator, account, asset, amount, expires, content_hash)


def order_id_of(item: object) -> str:
    if isinstance(item, dict) and isinstance(item.get("order_id"), str):
        return item["order_id"][:200]
    return ""


@dataclass(slots=True)
class FundingRequest:
    event_id: str
    operator: OperatorInfo
    account: str
    asset: AssetInfo
    kind: str
    amount: Decimal
    occurred_at: datetime
    reference: str
    content_hash: str

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.operator.id, self.account, self.asset.id)


FINISHES = (FundingEvent.Kind.WITHDRAWAL_COMMIT, FundingEvent.Kind.WITHDRAWAL_ABORT)


def funding_parse(item: object, *, operator: OperatorInfo, registry: Registry, now: datetime) -> FundingRequest:
    """``{"event_id", "account", "asset", "kind", "amount", "occurred_at",
    "reference"}``; a commit or an abort names its reserve's event_id in
    ``reference``. An adjustment may be negative, never zero."""
    if not isinstance(item, dict):
        raise InvalidInput("invalid_request", "request body must be a JSON object with event_id")
    event_id = text_field(item, "event_id")
    account = text_field(item, "account")
    asset = asset_of(item, registry)
    kind = item.get("kind")
    if kind not in FundingEvent.Kind.values:
        raise InvalidInput("invalid_field", f"kind must be one of {', '.join(FundingEvent.Kind.values)}", field="kind")
    adjustment = kind == FundingEvent.Kind.ADJUSTMENT
    amount = _amount(item.get("amount"), asset=asset, positive=not adjustment)
    if amount == 0:
        raise InvalidInput("non_positive", "an adjustment must not be zero", field="amount")
    occurred_at = parse_instant(item.get("occurred_at"), field="occurred_at", not_after=now)
    reference = item.get("reference")
    if reference is None:
        reference = ""
    if not isinstance(reference, str) or len(reference) > 140 or not reference.isprintable():
        raise InvalidInput(
            "invalid_field", "reference must be printable text of at most 140 characters", field="reference"
        )
    reference = reference.strip()
    if kind in FINISHES and not reference:
        raise InvalidInput(
            "missing_field", f"a {kind} names the withdrawal_reserve it finishes in reference", field="reference"
        )
    content_hash = _digest(
        operator.code,
        event_id,
        account,
        asset.code,
        kind,
        format(amount.normalize(), "f"),
        occurred_at.isoformat(),
        reference,
    )
    return FundingRequest(event_id, operator, account, asset, kind, amount, occurred_at, reference, content_hash)
