"""The bench's network and its trades.

``network_build`` runs inside ``django.setup()`` against the bench database and
creates what the intake needs to accept every generated trade: home HK1 and
three eligible overseas operators, rails, BTC/ETH/USDC/HKD with marks, a cap
and a reserve far above what the run reaches (so the exposure state stays
``normal`` and no cycle request is queued), registered professional home
accounts (so no compliance exception is raised) and an engine API key.

``trades_generate`` makes TRADE items exactly as the matching engine sends
them, from a fixed seed: only ``executed_at`` follows the clock (a trade may
not lie in the future).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

HOME = "HK1"
COUNTERPARTIES = ("SG1", "JP1", "GB1")
JURISDICTIONS = {"HK1": "HK", "SG1": "SG", "JP1": "JP", "GB1": "GB"}
# code -> (scale, mark in HKD or None for HKD itself, rail)
ASSETS = {
    "BTC": (8, "500000", "eth"),
    "ETH": (18, "20000", "eth"),
    "USDC": (6, "7.80", "eth"),
    "HKD": (2, None, "hkd-chats"),
}
HOME_ACCOUNTS = 2000
CAP_HKD = "1000000000000"  # 10^12: far above what 100,000 trades reach
RESERVE_HKD = "1000000000000"

# (base, quote, mid price, price decimals, weight)
PAIRS = (
    ("BTC", "HKD", 500_000, 2, 30),
    ("ETH", "HKD", 20_000, 2, 20),
    ("BTC", "USDC", 64_100, 2, 15),
    ("ETH", "USDC", 2_564, 2, 15),
    ("USDC", "HKD", 7.8, 4, 10),
    ("ETH", "BTC", 0.04, 6, 10),
)
# base asset -> (smallest, largest) quantity in units of 10^-scale
QUANTITY_UNITS = {
    "BTC": (100_000, 50_000_000),  # 0.001 to 0.5 BTC
    "ETH": (10**16, 10**19),  # 0.01 to 10 ETH, all 18 decimals used
    "USDC": (10_000_000, 100_000_000_000),  # 10 to 100,000 USDC
}
INTERNAL_SHARE = 0.10


def network_build(*, home_accounts: int = HOME_ACCOUNTS) -> str:
    """Create the network; return the engine API key (shown once)."""
    from django.utils import timezone

    from registry.models import Account, Asset, Jurisdiction, Mark, Operator, OperatorAPIKey, Rail
    from reserves.models import ReserveEntry, ReserveFund
    from settlement.models import CapConfig

    now = timezone.now()
    jurisdictions = {}
    for code in sorted(set(JURISDICTIONS.values())):
        jurisdictions[code], _ = Jurisdiction.objects.update_or_create(
            code=code, defaults={"fatf_member": True, "iosco_aligned": True, "lists_as_of": date(2026, 2, 13)}
        )
    operators = {}
    for code, jurisdiction in JURISDICTIONS.items():
        is_home = code == HOME
        operators[code], _ = Operator.objects.update_or_create(
            code=code,
            defaults={
                "name": f"{code} Exchange Ltd",
                "role": Operator.Role.HOME if is_home else Operator.Role.OVERSEAS,
                "jurisdiction": jurisdictions[jurisdiction],
                "licence": f"LIC-{code}",
                "sfc_approval": "" if is_home else f"SFC/SOB/2026/{code}",
                "approved_on": None if is_home else date(2026, 1, 15),
            },
        )
    rails = {
        "eth": Rail.objects.update_or_create(
            code="eth", defaults={"kind": Rail.Kind.EVM, "chain_id": 31337, "confirmations": 3, "window_minutes": 60}
        )[0],
        "hkd-chats": Rail.objects.update_or_create(
            code="hkd-chats",
            defaults={"kind": Rail.Kind.BANK, "currency": "HKD", "calendars": ["HK"], "window_minutes": 1440},
        )[0],
    }
    for code, (scale, mark, rail) in ASSETS.items():
        asset, _ = Asset.objects.update_or_create(
            code=code,
            defaults={
                "kind": Asset.Kind.FIAT if code == "HKD" else Asset.Kind.CRYPTO,
                "scale": scale,
                "rail": rails[rail],
                "mark_hkd": Decimal(mark) if mark else None,
                "mark_as_of": now if mark else None,
                "mark_source": "bench" if mark else "",
            },
        )
        if mark:
            Mark.objects.create(asset=asset, price_hkd=Decimal(mark), as_of=now, source="bench", received_at=now)
    CapConfig.objects.update_or_create(singleton=True, defaults={"total_hkd": Decimal(CAP_HKD), "updated_at": now})
    fund, _ = ReserveFund.objects.get_or_create(trustee="Bench Trustee Ltd", deed="TD-BENCH")
    ReserveEntry.objects.get_or_create(
        fund=fund,
        reference="bench-opening",
        defaults={"kind": "contribution", "amount_hkd": Decimal(RESERVE_HKD), "actor": "bench", "created_at": now},
    )
    from reserves.services.cover import reserve_cover_sync

    reserve_cover_sync(actor="bench", at=now)  # exposure reads the fund's available balance from its cover row
    Account.objects.bulk_create(
        [
            Account(operator=operators[HOME], ref=home_account(k), client_class=Account.ClientClass.PROFESSIONAL)
            for k in range(home_accounts)
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )
    _, key = OperatorAPIKey.objects.create_key(operator=operators[HOME], scope="engine", name="bench")
    return key


def home_account(k: int) -> str:
    return f"pro-{k:04d}"


def _plain(units: int, scale: int) -> str:
    """An integer number of 10^-scale units as a plain decimal string."""
    if scale == 0:
        return str(units)
    whole, fraction = divmod(units, 10**scale)
    return f"{whole}.{fraction:0{scale}d}"


def trades_generate(count: int, *, seed: int, start: datetime, home_accounts: int = HOME_ACCOUNTS) -> list[dict]:
    """``count`` TRADE items, ids ``BENCH-0000001``...; executed 1 ms apart from ``start``."""
    rng = random.Random(seed)
    weights = [p[4] for p in PAIRS]
    items = []
    for i in range(count):
        base, quote, mid, decimals, _ = rng.choices(PAIRS, weights)[0]
        price_units = round(mid * rng.uniform(0.98, 1.02) * 10**decimals)
        low, high = QUANTITY_UNITS[base]
        quantity_units = rng.randint(low, high)
        home_side = {"operator": HOME, "account": home_account(rng.randrange(home_accounts))}
        if rng.random() < INTERNAL_SHARE:
            other = {"operator": HOME, "account": home_account(rng.randrange(home_accounts))}
        else:
            cp = rng.choice(COUNTERPARTIES)
            other = {"operator": cp, "account": f"{cp.lower()}-c{rng.randrange(100_000):05d}"}
        buy, sell = (home_side, other) if rng.random() < 0.5 else (other, home_side)
        executed = start + timedelta(milliseconds=i)
        items.append(
            {
                "trade_id": f"BENCH-{i + 1:07d}",
                "base_asset": base,
                "quote_asset": quote,
                "price": _plain(price_units, decimals),
                "quantity": _plain(quantity_units, ASSETS[base][0]),
                "buy": buy,
                "sell": sell,
                "executed_at": executed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
        )
    return items


@dataclass(frozen=True, slots=True)
class Ids:
    """Primary keys of the registry rows, for the raw COPY."""

    operators: dict[str, int]
    home_id: int
    assets: dict[str, int]


def ids_load(conn) -> Ids:
    operators = dict(conn.execute("SELECT code, id FROM registry_operator").fetchall())
    assets = dict(conn.execute("SELECT code, id FROM registry_asset").fetchall())
    return Ids(operators, operators[HOME], assets)


def copy_rows(items: list[dict], ids: Ids, *, ingest_id: int, now: datetime) -> tuple[list[tuple], list[tuple]]:
    """The settlement_trade and settlement_obligation rows the intake would
    store for ``items``, as typed Python values, with explicit trade ids 1..N
    (columns: ``TRADE_COPY_COLUMNS`` / ``OBLIGATION_COPY_COLUMNS``)."""
    trades, obligations = [], []
    for pk, item in enumerate(items, start=1):
        base, quote = item["base_asset"], item["quote_asset"]
        price, quantity = Decimal(item["price"]), Decimal(item["quantity"])
        amount = (price * quantity).quantize(Decimal(1).scaleb(-ASSETS[quote][0]), rounding=ROUND_HALF_EVEN)
        buy, sell = item["buy"], item["sell"]
        buy_id, sell_id = ids.operators[buy["operator"]], ids.operators[sell["operator"]]
        executed_at = datetime.fromisoformat(item["executed_at"]).astimezone(UTC)
        digest = hashlib.blake2b(
            "\x1f".join(
                (
                    item["trade_id"],
                    base,
                    quote,
                    format(price.normalize(), "f"),
                    format(quantity.normalize(), "f"),
                    buy["operator"],
                    buy["account"],
                    sell["operator"],
                    sell["account"],
                    executed_at.isoformat(),
                )
            ).encode(),
            digest_size=16,
        ).hexdigest()
        is_cross = buy_id != sell_id
        trades.append(
            (
                pk,
                item["trade_id"],
                ids.assets[base],
                ids.assets[quote],
                price,
                quantity,
                amount,
                buy_id,
                buy["account"],
                sell_id,
                sell["account"],
                executed_at,
                now,
                is_cross,
                digest,
                ingest_id,
            )
        )
        if is_cross:
            home_buys = buy_id == ids.home_id
            cp = sell_id if home_buys else buy_id
            base_dir, quote_dir = ("inbound", "outbound") if home_buys else ("outbound", "inbound")
            obligations.append(
                (pk, sell_id, buy_id, cp, base_dir, ids.assets[base], quantity, "open", 0, now, executed_at)
            )
            obligations.append(
                (pk, buy_id, sell_id, cp, quote_dir, ids.assets[quote], amount, "open", 0, now, executed_at)
            )
    return trades, obligations


TRADE_COPY_COLUMNS = (
    "id",
    "trade_id",
    "base_asset_id",
    "quote_asset_id",
    "price",
    "quantity",
    "quote_amount",
    "buy_operator_id",
    "buy_account",
    "sell_operator_id",
    "sell_account",
    "executed_at",
    "received_at",
    "is_cross",
    "content_hash",
    "ingest_id",
)
OBLIGATION_COPY_COLUMNS = (
    "trade_id",
    "debtor_id",
    "creditor_id",
    "counterparty_id",
    "direction",
    "asset_id",
    "amount",
    "status",
    "fail_count",
    "created_at",
    "executed_at",
)


def copy_text(rows: list[tuple]) -> bytes:
    """Rows pre-rendered in COPY text format (no value needs escaping here)."""
    out = []
    for row in rows:
        fields = []
        for value in row:
            if isinstance(value, bool):
                fields.append("t" if value else "f")
            elif isinstance(value, Decimal):
                fields.append(format(value, "f"))
            elif isinstance(value, datetime):
                fields.append(value.isoformat())
            else:
                fields.append(str(value))
        out.append("\t".join(fields))
    out.append("")
    return "\n".join(out).encode()
