"""Judging one trade item from the matching engine: every field checked,
the quote amount computed (half-even to the quote asset's scale), and a hash
of the normalised content for idempotency. Pure: reads only the registry
snapshot it is given."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings

from controls.exceptions import InvalidInput
from controls.money import MAX_AMOUNT, MAX_SCALE, amount_in_range, parse_decimal, quote_amount
from controls.timestamps import parse_instant
from controls.validation import storable, unstorable_text
from registry.selectors import HKD, AssetInfo, OperatorInfo, Registry


@dataclass(slots=True)
class Rejection:
    index: int
    trade_id: str
    code: str
    message: str
    field: str | None
    payload: object

    def as_json(self) -> dict:
        body = {"index": self.index, "trade_id": self.trade_id, "code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


@dataclass(slots=True)
class ParsedTrade:
    index: int
    trade_id: str
    base: AssetInfo
    quote: AssetInfo
    price: Decimal
    quantity: Decimal
    quote_amount: Decimal
    buy: OperatorInfo
    buy_account: str
    sell: OperatorInfo
    sell_account: str
    executed_at: datetime
    executed_text: str  # executed_at in ISO 8601, as hashed and as stored by COPY (formatted once)
    content_hash: str
    payload: object
    # the engine's orders on each side ("" when not named): they consume prefunding holds
    buy_order_id: str = ""
    sell_order_id: str = ""
    # the reserving pre-trade checks this trade used ("" when not named): they stop counting
    buy_reservation_id: str = ""
    sell_reservation_id: str = ""

    @property
    def is_cross(self) -> bool:
        return self.buy.id != self.sell.id

    @property
    def counterparty(self) -> OperatorInfo:
        """The overseas side (asked of cross trades only)."""
        return self.sell if self.buy.is_home else self.buy


# --- parsing one item ----------------------------------------------------------


def text_field(item: dict, key: str, *, prefix: str = "", max_length: int = 64) -> str:
    """A required, printable, trimmed string of at most ``max_length`` characters."""
    name = prefix + key
    if key not in item or item[key] is None:
        raise InvalidInput("missing_field", f"{name} is required", field=name)
    value = item[key]
    if not isinstance(value, str):
        raise InvalidInput("invalid_field", f"{name} must be a string", field=name)
    value = value.strip()
    if not value:
        raise InvalidInput("invalid_field", f"{name} must not be empty", field=name)
    if len(value) > max_length:
        raise InvalidInput("invalid_field", f"{name} is longer than {max_length} characters", field=name)
    if not value.isprintable():
        raise InvalidInput("invalid_field", f"{name} contains control characters", field=name)
    return value


def _reservation(side: dict, key: str) -> str:
    """Optional: the ``reservation_id`` a reserving pre-trade check returned."""
    if side.get("reservation_id") is None:
        return ""
    text = text_field(side, "reservation_id", prefix=f"{key}.")
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise InvalidInput(
            "invalid_field",
            f"{key}.reservation_id must be the reservation_id a reserving exposure check returned, got {text!r}",
            field=f"{key}.reservation_id",
        ) from None


def _side(item: dict, key: str, registry: Registry) -> tuple[OperatorInfo, str, str]:
    side = item.get(key)
    if side is None:
        raise InvalidInput("missing_field", f"{key} is required", field=key)
    if not isinstance(side, dict):
        raise InvalidInput("invalid_field", f"{key} must be an object with operator and account", field=key)
    code = text_field(side, "operator", prefix=f"{key}.", max_length=16)
    account = text_field(side, "account", prefix=f"{key}.")
    operator = registry.operators.get(code)
    if operator is None:
        raise InvalidInput(
            "unknown_operator", f"{key}.operator {code!r} is not a registered operator", field=f"{key}.operator"
        )
    # optional: the order whose prefunding hold this side consumes (para 10)
    order_id = text_field(side, "order_id", prefix=f"{key}.") if side.get("order_id") is not None else ""
    return operator, account, order_id


def _asset(item: dict, key: str, registry: Registry) -> AssetInfo:
    code = text_field(item, key, max_length=16)
    asset = registry.assets.get(code)
    if asset is None:
        raise InvalidInput("unknown_asset", f"{key} {code!r} is not a registered asset", field=key)
    return asset


def _timestamp(item: dict, now: datetime) -> datetime:
    value = parse_instant(item.get("executed_at"), field="executed_at")
    tolerance = timedelta(seconds=settings.TRADE_FUTURE_TOLERANCE_SECONDS)
    if value > now + tolerance:
        raise InvalidInput(
            "future_executed_at",
            f"executed_at {item['executed_at']} is more than {settings.TRADE_FUTURE_TOLERANCE_SECONDS} s in the future",
            field="executed_at",
        )
    return value


def _counterparty_check(buy: OperatorInfo, sell: OperatorInfo, registry: Registry) -> None:
    if not buy.is_home and not sell.is_home:
        home = registry.home.code if registry.home else "the home operator"
        raise InvalidInput(
            "not_home_trade",
            f"neither side is {home}: only trades of the home operator are settled here",
            field="buy.operator",
        )
    if buy.id == sell.id:
        return
    counterparty, key = (sell, "sell") if buy.is_home else (buy, "buy")
    if counterparty.status != "active":
        raise InvalidInput(
            f"counterparty_{counterparty.status}",
            f"counterparty {counterparty.code} is {counterparty.status}",
            field=f"{key}.operator",
        )
    if counterparty.problems:
        raise InvalidInput(
            "counterparty_ineligible",
            f"counterparty {counterparty.code} is not eligible: " + "; ".join(counterparty.problems),
            field=f"{key}.operator",
        )


def _value_in_range(amount: Decimal, asset: AssetInfo, marks: dict[int, Decimal | None], field: str) -> None:
    """What the amount is worth in HKD at today's mark must fit the exposure
    arithmetic too (it is summed per counterparty and compared with the cap)."""
    mark = Decimal(1) if asset.code == HKD else marks.get(asset.id)
    if mark is not None and amount * mark >= MAX_AMOUNT:
        raise InvalidInput(
            "out_of_range",
            f"{field} is worth {MAX_AMOUNT:,f} HKD or more at the {asset.code} mark: not a plausible trade",
            field=field,
        )


def trade_parse(
    item: object,
    *,
    index: int,
    registry: Registry,
    now: datetime,
    marks: dict[int, Decimal | None] | None = None,
    text_checked: bool = False,
) -> ParsedTrade:
    """``text_checked``: the request's parser already knows every string in
    it can be stored (``controls.api.parsing.json_body``)."""
    if not isinstance(item, dict):
        raise InvalidInput("invalid_item", "each trade must be a JSON object")
    bad_text = None if text_checked else unstorable_text(item)
    if bad_text is not None:
        raise InvalidInput(
            "invalid_text",
            f"{bad_text or 'a key'} holds a NUL character or a lone surrogate (not valid Unicode text)",
            field=bad_text or None,
        )
    trade_id = text_field(item, "trade_id")
    base = _asset(item, "base_asset", registry)
    quote = _asset(item, "quote_asset", registry)
    if base.id == quote.id:
        raise InvalidInput("same_asset", "base_asset and quote_asset must differ", field="quote_asset")
    price = parse_decimal(item.get("price"), field="price", scale=MAX_SCALE)
    quantity = amount_in_range(
        parse_decimal(item.get("quantity"), field="quantity", scale=base.scale), scale=base.scale, field="quantity"
    )
    buy, buy_account, buy_order_id = _side(item, "buy", registry)
    sell, sell_account, sell_order_id = _side(item, "sell", registry)
    buy_reservation_id, sell_reservation_id = _reservation(item["buy"], "buy"), _reservation(item["sell"], "sell")
    _counterparty_check(buy, sell, registry)
    executed_at = _timestamp(item, now)
    executed_text = executed_at.isoformat()
    amount = quote_amount(price, quantity, quote.scale)
    if amount <= 0:
        raise InvalidInput(
            "quote_amount_zero",
            f"price x quantity rounds to zero at {quote.code}'s {quote.scale} decimal places",
            field="quantity",
        )
    amount_in_range(amount, scale=quote.scale, field="price", label="price x quantity")
    marks = marks or {}
    _value_in_range(quantity, base, marks, "quantity")
    _value_in_range(amount, quote, marks, "price")
    parts = [
        trade_id,
        base.code,
        quote.code,
        format(price.normalize(), "f"),
        format(quantity.normalize(), "f"),
        buy.code,
        buy_account,
        sell.code,
        sell_account,
        executed_text,
    ]
    if buy_order_id or sell_order_id:  # only then: the hashes of trades without orders stay as they were
        parts += [buy_order_id, sell_order_id]
    if buy_reservation_id or sell_reservation_id:  # likewise
        parts += ["reservation", buy_reservation_id, sell_reservation_id]
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
    return ParsedTrade(
        index,
        trade_id,
        base,
        quote,
        price,
        quantity,
        amount,
        buy,
        buy_account,
        sell,
        sell_account,
        executed_at,
        executed_text,
        digest,
        item,
        buy_order_id,
        sell_order_id,
        buy_reservation_id,
        sell_reservation_id,
    )


def trade_id_of(item: object) -> str:
    """The item's trade id as far as it can be stored (for the exceptions queue)."""
    if isinstance(item, dict) and isinstance(item.get("trade_id"), str):
        return storable(item["trade_id"][:200])
    return ""
