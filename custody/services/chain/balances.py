"""Reading the designated custodian wallets (circular para 10): each poll
reads every designated wallet's balance of every asset of the rail at the
scanned head (ERC-20 ``balanceOf``, ``eth_getBalance`` for the native coin)
and records it through settlement as an attestation of its operator's
prefunding cover; a stale or breached cover becomes a break at once.

An unchanged balance is recorded again only once the last attestation is
older than ``PREFUNDING_CHAIN_ATTEST_EVERY_SECONDS``: the cover stays fresh
without a row per wallet and asset on every poll.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Max
from web3 import Web3

from controls.money import fits_storage
from registry.models import Asset, Rail, Wallet
from settlement.models import CustodianAttestation
from settlement.services.prefunding import AttestationLine, attestations_record

from ..prefunding import cover_breaks_sync
from .node import ACTOR, DECIMALS_ABI

BALANCE_OF_ABI = [
    {
        "inputs": [{"name": "owner", "type": "address"}],
        "name": "balanceOf",
        "outputs": [{"name": "", "type": "uint256"}],
        "stateMutability": "view",
        "type": "function",
    }
]


def _decimals(w3: Web3, asset: Asset) -> int:
    try:
        contract = w3.eth.contract(address=Web3.to_checksum_address(asset.contract), abi=DECIMALS_ABI)
        return int(contract.functions.decimals().call())
    except Exception:  # a token without decimals(): trust the asset's scale
        return asset.scale


def _latest(wallets: list[Wallet]) -> dict[tuple[int, int], tuple[Decimal, datetime]]:
    """The last chain attestation of each (wallet, asset): its amount and time."""
    rows = (
        CustodianAttestation.objects.filter(wallet__in=wallets, source=CustodianAttestation.Source.CHAIN)
        .values("wallet_id", "asset_id")
        .annotate(last=Max("id"))
    )
    last = CustodianAttestation.objects.in_bulk([r["last"] for r in rows])
    return {(a.wallet_id, a.asset_id): (a.amount, a.as_of) for a in last.values() if a.wallet_id is not None}


def designated_balances_read(*, w3: Web3, rail: Rail, head: int, now: datetime) -> int:
    """Attest the designated wallets of ``rail`` at block ``head``. Returns
    the number of balances recorded. Node errors propagate (the poll counts
    them as RPC errors)."""
    wallets = list(Wallet.objects.filter(rail=rail, designated=True).order_by("id"))
    if not wallets:
        return 0
    assets = list(Asset.objects.filter(rail=rail).order_by("code"))
    natives = [a for a in assets if not a.contract]
    native = natives[0] if len(natives) == 1 else None  # as the scan: several "natives" are ambiguous
    tokens = [(a, _decimals(w3, a)) for a in assets if a.contract]
    every = timedelta(seconds=int(getattr(settings, "PREFUNDING_CHAIN_ATTEST_EVERY_SECONDS", 60)))
    latest = _latest(wallets)
    lines = []
    for wallet in wallets:
        owner = Web3.to_checksum_address(wallet.address)
        readings: list[tuple[Asset, Decimal]] = []
        for asset, decimals in tokens:
            contract = w3.eth.contract(address=Web3.to_checksum_address(asset.contract), abi=BALANCE_OF_ABI)
            raw = contract.functions.balanceOf(owner).call(block_identifier=head)
            readings.append((asset, Decimal(int(raw)).scaleb(-decimals)))
        if native is not None:
            readings.append((native, Decimal(int(w3.eth.get_balance(owner, block_identifier=head))).scaleb(-18)))
        for asset, amount in readings:
            if not fits_storage(amount):
                continue
            previous = latest.get((wallet.id, asset.id))
            if previous is not None and previous[0] == amount and now - previous[1] < every:
                continue  # unchanged and recently attested
            lines.append(
                AttestationLine(operator_id=wallet.operator_id, asset_id=asset.id, amount=amount, wallet_id=wallet.id)
            )
    if lines:
        covers = attestations_record(
            lines=lines,
            source=CustodianAttestation.Source.CHAIN,
            reference=f"{rail.code} block {head}",
            as_of=now,
            actor=ACTOR,
            now=now,
        )
        cover_breaks_sync(covers=covers, actor=ACTOR, now=now)
    return len(lines)
