"""Talking to the node: settings, errors, the web3 client and the raw reads."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from web3 import Web3
from web3.exceptions import BlockNotFound

from registry.models import Rail

logger = logging.getLogger(__name__)

ACTOR = "custody:watcher"
WATCHER_REASON = "watcher: "  # prefix of the rail status reasons the watcher sets (and may lift)
TRANSFER_TOPIC = "0x" + Web3.keccak(text="Transfer(address,address,uint256)").hex().removeprefix("0x")
DECIMALS_ABI = [
    {
        "inputs": [],
        "name": "decimals",
        "outputs": [{"type": "uint8", "name": ""}],
        "stateMutability": "view",
        "type": "function",
    }
]


def setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def chunk_blocks() -> int:
    return max(1, setting("CUSTODY_WATCHER_CHUNK_BLOCKS", 500))


def stale_seconds() -> int:
    return setting("CUSTODY_WATCHER_STALE_SECONDS", 600)


def error_limit() -> int:
    return max(1, setting("CUSTODY_WATCHER_ERROR_LIMIT", 5))


def trail_blocks() -> int:
    """How many recent blocks are kept to walk a reorg back along."""
    return max(16, setting("CUSTODY_WATCHER_TRAIL_BLOCKS", 256))


def rpc_timeout() -> int:
    return setting("CUSTODY_WATCHER_RPC_TIMEOUT", 10)


class ChainError(Exception):
    """Anything wrong with talking to the node (after which the poll stops)."""


class Restart(Exception):
    """The chain moved under the scan (a reorg mid-chunk): stop, the next poll walks back."""


@dataclass
class PollResult:
    rail: str
    head: int | None = None
    scanned_from: int | None = None
    scanned_to: int | None = None
    new: int = 0
    final: int = 0
    reorged: int = 0
    attested: int = 0  # designated wallet balances recorded as prefunding attestations
    status: str = ""
    error: str = ""
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "rail": self.rail,
            "head": self.head,
            "scanned_from": self.scanned_from,
            "scanned_to": self.scanned_to,
            "new_movements": self.new,
            "final": self.final,
            "reorged": self.reorged,
            "attested": self.attested,
            "rail_status": self.status,
            "error": self.error or None,
            "notes": self.notes,
        }


def web3_for(rail: Rail) -> Web3:
    """A client for the rail's node. HTTP(S) only; no retries here: the next
    poll is the retry, and failures count towards ``degraded``."""
    url = rail.rpc_url or ""
    if not url.startswith(("http://", "https://")):
        raise ChainError(f"rail {rail.code} has no http(s) rpc_url (got {url!r})")
    provider = Web3.HTTPProvider(url, request_kwargs={"timeout": rpc_timeout()}, exception_retry_configuration=None)
    return Web3(provider)


def hexstr(value: Any) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


def topic_address(address: str) -> str:
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")


def address_of_topic(topic: Any) -> str:
    return "0x" + hexstr(topic)[-40:]


# --- the poll ----------------------------------------------------------------------------------


def block_at(w3: Web3, number: int, *, full: bool = False):
    try:
        return w3.eth.get_block(number, full_transactions=full)
    except BlockNotFound:
        return None


# --- reorgs ----------------------------------------------------------------------------------------


def logs_get(w3: Web3, params: dict) -> list:
    """eth_getLogs, halving the range when the node refuses a large one."""
    try:
        return list(w3.eth.get_logs(params))  # type: ignore[arg-type]  # raw filter dict: fromBlock/toBlock, 0x topics
    except Exception:
        lo, hi = params["fromBlock"], params["toBlock"]
        if hi <= lo:
            raise
        mid = (lo + hi) // 2
        return logs_get(w3, {**params, "toBlock": mid}) + logs_get(w3, {**params, "fromBlock": mid + 1})
