"""What the watcher reads off the chain, decoded by hand: ERC-20 Transfer
logs from their topics and data (not through web3's contract event
machinery), and native value and gas fees from blocks' full transactions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from web3 import Web3

from custody.models import FEE_LOG_INDEX, NATIVE_LOG_INDEX
from registry.models import Wallet

from .node import address_of_topic, as_int, hexstr


def transfer_key(log: Any) -> tuple[str, int]:
    """A log's natural key (tx hash, log index), read before decoding the
    rest: the watcher's two look-ups (from a wallet, to a wallet) both return
    a transfer between two registered wallets, decoded once."""
    return hexstr(log["transactionHash"]), as_int(log["logIndex"])


def transfer_decode(log: Any, key: tuple[str, int] | None = None) -> tuple[tuple[str, int], dict] | None:
    """An ERC-20 Transfer log decoded from its topics and data: (from, to)
    are the last 20 bytes of topics 1 and 2, the amount the first 32 bytes of
    the data. An ERC-721 Transfer (the token id as a third indexed topic)
    is not ours."""
    topics = log["topics"]
    if len(topics) != 3:
        return None
    data = log["data"]
    if isinstance(data, str):
        raw = int(data[2:66], 16) if len(data) > 2 else 0
    else:
        raw = int.from_bytes(bytes(data)[:32], "big") if data else 0
    address = log["address"]
    tx_hash, index = key or transfer_key(log)
    stamp = log.get("blockTimestamp")
    return (tx_hash, index), {
        "tx_hash": tx_hash,
        "log_index": index,
        "block_number": as_int(log["blockNumber"]),
        "block_hash": hexstr(log["blockHash"]),
        "token": address.lower() if isinstance(address, str) else hexstr(address),
        "from": address_of_topic(topics[1]),
        "to": address_of_topic(topics[2]),
        "raw": raw,
        "at": datetime.fromtimestamp(as_int(stamp), tz=UTC) if stamp is not None else None,
    }


def native_transfers(
    *, w3: Web3, wallets: dict[str, Wallet], home_id: int | None, blocks: dict[int, Any], found: dict
) -> None:
    """Top-level value to or from a registered wallet, and the gas home's
    wallets paid, from the blocks' full transactions."""
    home_wallets = {a for a, w in wallets.items() if w.operator_id == home_id}
    for number, block in sorted(blocks.items()):
        for tx in block["transactions"]:
            sender, receiver = (tx["from"] or "").lower(), (tx.get("to") or "").lower()
            if not (sender in wallets or receiver in wallets):
                continue
            tx_hash = hexstr(tx["hash"])
            if int(tx["value"]) > 0:
                found[(tx_hash, NATIVE_LOG_INDEX)] = {
                    "tx_hash": tx_hash,
                    "log_index": NATIVE_LOG_INDEX,
                    "block_number": number,
                    "block_hash": hexstr(block["hash"]),
                    "token": "",
                    "from": sender,
                    "to": receiver,
                    "raw": int(tx["value"]),
                }
            if sender in home_wallets:
                receipt = w3.eth.get_transaction_receipt(tx["hash"])
                fee = int(receipt["gasUsed"]) * int(receipt.get("effectiveGasPrice") or tx.get("gasPrice") or 0)
                if fee > 0:
                    found[(tx_hash, FEE_LOG_INDEX)] = {
                        "tx_hash": tx_hash,
                        "log_index": FEE_LOG_INDEX,
                        "block_number": number,
                        "block_hash": hexstr(block["hash"]),
                        "token": "",
                        "from": sender,
                        "to": "",
                        "raw": fee,
                    }
