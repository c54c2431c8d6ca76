"""Demo activity for `make run`: trades, a cycle, and SIMULATED confirmations.

Every confirmation this writes carries evidence saying it is a demo
simulation, not a transfer, and the command refuses to run unless the
DEMO setting is on.
"""

import json
import random
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import rlp
from django.conf import settings
from django.db import transaction
from eth_typing import ChecksumAddress
from eth_utils import keccak, to_canonical_address, to_checksum_address
from web3 import Web3
from web3.types import Wei

from controls.exceptions import Conflict, Forbidden, NotFound
from controls.money import as_str, quote_amount
from controls.services.audit import audit_record
from custody.models import BalanceReport, ChainBlock, ChainCursor
from custody.services.balances import balance_report_record
from registry.models import Asset, BankAccount, Operator, Rail, Wallet
from settlement.models import Batch, Leg
from settlement.services.cycles import cycle_run
from settlement.services.legs import leg_confirm
from settlement.services.prefunding import funding_event_record, holds_place
from settlement.services.trades import trades_ingest

DEMO_EVIDENCE = {"demo": "DEMO CONFIRMATION: simulated by demo_activity, no real transfer took place"}
ACTOR = "demo"
# What the demo custodians hold in each designated wallet (minted on the demo
# chain) and each designated bank account (reported once a day): far above
# what the demo's clients fund, so the cover shows headroom.
DEMO_CUSTODY = {
    "BTC": Decimal("2500"),
    "ETH": Decimal("1000"),  # the chain's native coin: sent, not minted
    "USDC": Decimal("250000000"),
    "HKD": Decimal("2000000000.00"),
}
TOKEN = Path(__file__).resolve().parents[2] / "custody" / "contracts" / "TestToken.json"
PAIRS = [
    ("BTC", "USDC", "64000", 4),
    ("ETH", "USDC", "2500", 3),
    ("BTC", "HKD", "500000", 4),
    ("ETH", "HKD", "20000", 3),
]


def demo_activity(*, now: datetime, trades: int = 12, seed: int | None = None) -> dict:
    if not settings.DEMO_MODE:
        raise Forbidden("forbidden", "demo_activity runs only with DEMO=1 (make run); it simulates confirmations")
    rng = random.Random(seed)
    counterparties = list(Operator.objects.filter(role="overseas", status="active").values_list("code", flat=True))
    home = Operator.objects.get(role="home")
    accounts = list(home.accounts.filter(client_class="professional").values_list("ref", flat=True)) or ["demo-client"]
    stamp = now.strftime("%Y%m%d%H%M%S")
    items = []
    for i in range(trades):
        base, quote, price, places = rng.choice(PAIRS)
        cp = rng.choice(counterparties)
        quantity = f"{rng.randint(1, 10**places) / 10**places:.{places}f}"
        buy, sell = (home.code, rng.choice(accounts)), (cp, f"{cp.lower()}-client-{rng.randint(1, 50)}")
        if rng.random() < 0.5:
            buy, sell = sell, buy
        items.append(
            {
                "trade_id": f"DEMO-{stamp}-{i:03d}",
                "base_asset": base,
                "quote_asset": quote,
                "price": price,
                "quantity": quantity,
                "buy": {"operator": buy[0], "account": buy[1]},
                "sell": {"operator": sell[0], "account": sell[1]},
                "executed_at": (now - timedelta(seconds=5)).isoformat(),
            }
        )
    bank_reports = _demo_bank_reports(now=now)
    holds = _demo_prefund(items, now=now)
    ingest = trades_ingest(items=items, actor=ACTOR, now=now)
    cycle = cycle_run(kind="intraday", as_of=now.replace(second=0, microsecond=0) + timedelta(minutes=1), actor=ACTOR)
    # Settle every batch but one, so the dashboard shows both a finished and a waiting DVP.
    batches = list(cycle.batches.filter(status=Batch.Status.OPEN).order_by("counterparty__code"))
    confirmed = 0
    for batch in batches[:-1] if len(batches) > 1 else batches:
        for direction in (Leg.Direction.INBOUND, Leg.Direction.OUTBOUND):
            for leg in batch.legs.filter(direction=direction, status=Leg.Status.INSTRUCTED):
                leg_confirm(leg_id=leg.id, evidence=DEMO_EVIDENCE, actor=ACTOR, as_of=cycle.as_of)
                confirmed += 1
    return {
        "trades": ingest.accepted,
        "cycle": cycle.id,
        "batches": len(batches),
        "legs_confirmed_by_demo": confirmed,
        "bank_reports": bank_reports,
        "holds": holds,
    }


def _demo_bank_reports(*, now: datetime) -> int:
    """Once a day, each bank reports the designated accounts it keeps (para
    10: the custodian's attestation of the operators' prefunding cover)."""
    by_bank: dict[str, list[dict]] = defaultdict(list)
    for account in BankAccount.objects.filter(designated=True).select_related("rail").order_by("id"):
        amount = DEMO_CUSTODY.get(account.rail.currency or "")
        if amount is not None:
            line = {"rail": account.rail.code, "account": account.number, "asset": account.rail.currency}
            by_bank[account.bank].append({**line, "amount": as_str(amount)})
    reference = f"DEMO-{now.date().isoformat()}"
    made = 0
    for bank, lines in sorted(by_bank.items()):
        if not BalanceReport.objects.filter(source=bank, reference=reference).exists():
            balance_report_record(source=bank, reference=reference, as_of=now, lines=lines, actor=ACTOR, now=now)
            made += 1
    return made


def _demo_prefund(items: list[dict], *, now: datetime) -> dict:
    """Each order of a demo trade is prefunded before it is matched (para
    10): its operator deposits what the order needs into the client's
    account, the engine places a hold, and the trade names the order. An
    order whose hold is refused still trades (an executed trade is never
    refused) and becomes a compliance exception, as in production."""
    placed, refused = 0, Counter[str]()
    for item in items:
        asset = Asset.objects.get(code=item["quote_asset"])
        sides = {
            "buy": (
                item["quote_asset"],
                as_str(quote_amount(Decimal(item["price"]), Decimal(item["quantity"]), asset.scale)),
            ),
            "sell": (item["base_asset"], item["quantity"]),
        }
        for side, (asset_code, amount) in sides.items():
            order_id = f"{item['trade_id']}-{side[0].upper()}"
            party = item[side]
            funding_event_record(
                item={
                    "event_id": f"{order_id}-DEPOSIT",
                    "account": party["account"],
                    "asset": asset_code,
                    "kind": "deposit",
                    "amount": amount,
                    "occurred_at": (now - timedelta(seconds=30)).isoformat(),
                    "reference": "demo deposit",
                },
                operator=party["operator"],
                actor=ACTOR,
                now=now,
            )
            hold = {"order_id": order_id, **party, "asset": asset_code, "amount": amount}
            (result,) = holds_place(items=[hold], actor=ACTOR, now=now)
            if result.outcome == "refused":
                refused[result.body.get("code", "refused")] += 1
            else:
                placed += 1
                party["order_id"] = order_id
    return {"placed": placed, "refused": dict(refused)}


def demo_chain_reset(*, rail_code: str, now: datetime) -> bool:
    """The demo chain (anvil) started afresh while the database remembers the
    old one: forget the watcher's cursor and block trail for that rail, so
    the watcher starts at the new chain's head instead of reporting a reorg
    deeper than its trail. Demo only: on a real chain that is an alarm."""
    if not settings.DEMO_MODE:
        raise Forbidden("forbidden", "demo_chain_reset runs only with DEMO=1 (make run)")
    with transaction.atomic():
        rail = Rail.objects.select_for_update().filter(code=rail_code).first()
        if rail is None:
            raise NotFound("unknown_rail", f"no rail {rail_code!r}")
        cursor = ChainCursor.objects.filter(rail=rail).first()
        if cursor is None:
            return False
        before = {"block_number": cursor.block_number, "block_hash": cursor.block_hash}
        ChainBlock.objects.filter(rail=rail).delete()
        cursor.delete()
        audit_record(
            actor=ACTOR,
            action="chain_cursor.demo_reset",
            object_type="Rail",
            object_id=rail.code,
            before=before,
            after={"reason": "the demo chain started without its saved state"},
            at=now,
        )
    return True


def _create_address(sender: str, nonce: int) -> ChecksumAddress:
    """The address of the contract that ``sender`` creates with ``nonce``."""
    return to_checksum_address(keccak(rlp.encode([to_canonical_address(sender), nonce]))[12:])


def demo_chain_tokens(*, rail_code: str, now: datetime) -> dict:
    """The demo chain's tokens at the addresses the network file names, and
    the demo custodians' holdings in every designated wallet of the rail:
    the watcher reads those balances as attestations (para 10). Safe to run
    again: a token with code and a wallet with a balance are left alone."""
    if not settings.DEMO_MODE:
        raise Forbidden("forbidden", "demo_chain_tokens runs only with DEMO=1 (make run)")
    rail = Rail.objects.filter(code=rail_code).first()
    if rail is None:
        raise NotFound("unknown_rail", f"no rail {rail_code!r}")
    w3 = Web3(Web3.HTTPProvider(rail.rpc_url, request_kwargs={"timeout": 10}))
    if not w3.is_connected():
        raise Conflict("chain_unreachable", f"the demo chain of rail {rail_code} does not answer at {rail.rpc_url}")
    artifact = json.loads(TOKEN.read_text())
    deployer = w3.eth.accounts[0]
    assets: dict[ChecksumAddress, Asset] = {
        Web3.to_checksum_address(a.contract): a for a in Asset.objects.filter(rail=rail).exclude(contract="")
    }
    missing = {address: asset for address, asset in assets.items() if not w3.eth.get_code(address)}
    deployed = []
    while missing:
        address = _create_address(deployer, w3.eth.get_transaction_count(deployer))
        asset = missing.pop(address, None)
        if asset is None:
            raise Conflict(
                "invalid_field",
                f"the demo chain's next contract would be {address}; the network file names "
                f"{', '.join(sorted(missing))}: start the chain afresh (make clean-db)",
            )
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        tx = factory.constructor(f"Demo {asset.code}", asset.code, asset.scale).transact({"from": deployer})
        w3.eth.wait_for_transaction_receipt(tx, timeout=30)
        deployed.append(asset.code)
    minted = []
    for wallet in Wallet.objects.filter(rail=rail, designated=True).select_related("operator").order_by("id"):
        for address, asset in sorted(assets.items(), key=lambda pair: pair[1].code):
            holding = DEMO_CUSTODY.get(asset.code)
            token = w3.eth.contract(address=address, abi=artifact["abi"])
            owner = Web3.to_checksum_address(wallet.address)
            if holding is None or token.functions.balanceOf(owner).call():
                continue
            units = int(holding.scaleb(asset.scale))
            w3.eth.wait_for_transaction_receipt(
                token.functions.mint(owner, units).transact({"from": deployer}), timeout=30
            )
            minted.append(f"{wallet.operator.code} {as_str(holding)} {asset.code}")
    native = Asset.objects.filter(rail=rail, contract="").first()
    holding = DEMO_CUSTODY.get(native.code) if native is not None else None
    for wallet in Wallet.objects.filter(rail=rail, designated=True).select_related("operator").order_by("id"):
        owner = Web3.to_checksum_address(wallet.address)
        if native is None or holding is None or w3.eth.get_balance(owner):
            continue
        value = Wei(int(holding.scaleb(18)))
        w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": deployer, "to": owner, "value": value}))
        minted.append(f"{wallet.operator.code} {as_str(holding)} {native.code}")
    if deployed or minted:
        audit_record(
            actor=ACTOR,
            action="demo_chain.tokens",
            object_type="Rail",
            object_id=rail.code,
            after={"deployed": deployed, "minted": minted, "note": "demo chain only"},
            at=now,
        )
    return {"deployed": deployed, "minted": minted}
