"""Talking to the node: settings, errors, the web3 client and the raw reads."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from web3 import HTTPProvider, Web3
from web3.exceptions import BlockNotFound
from web3.types import RPCEndpoint

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


# --- raw JSON-RPC ------------------------------------------------------------------------------------


def raw_rpc(w3: Web3) -> bool:
    """Whether the node is reached over plain JSON-RPC (HTTP): then the
    watcher sends its reads itself and decodes the answers (hex strings), not
    through web3's result formatters, which build an object per field of
    every log. Other providers (the in-process test chain) go through web3."""
    return isinstance(w3.provider, HTTPProvider)


def _rpc(w3: Web3, method: str, params: list) -> Any:
    response = w3.provider.make_request(RPCEndpoint(method), params)
    if "error" in response:
        error = response["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise ChainError(f"{method}: {message}")
    return response["result"]


def logs_get(w3: Web3, params: dict) -> list:
    """eth_getLogs, halving the range when the node refuses a large one.
    Over JSON-RPC the logs come back as the node sent them (hex strings)."""
    try:
        if raw_rpc(w3):
            raw = {**params, "fromBlock": hex(params["fromBlock"]), "toBlock": hex(params["toBlock"])}
            return list(_rpc(w3, "eth_getLogs", [raw]))
        return list(w3.eth.get_logs(params))  # type: ignore[arg-type]  # raw filter dict: fromBlock/toBlock, 0x topics
    except Exception:
        lo, hi = params["fromBlock"], params["toBlock"]
        if hi <= lo:
            raise
        mid = (lo + hi) // 2
        return logs_get(w3, {**params, "toBlock": mid}) + logs_get(w3, {**params, "fromBlock": mid + 1})


def blocks_get(w3: Web3, numbers: list[int]) -> dict[int, Any]:
    """Block headers (number, hash, parentHash, timestamp) of many blocks;
    over JSON-RPC in batches of 200 calls per HTTP request. A block the node
    does not have is missing from the answer."""
    if not raw_rpc(w3) or not numbers:
        return {n: block for n in numbers if (block := block_at(w3, n)) is not None}
    found: dict[int, Any] = {}
    provider = w3.provider
    assert isinstance(provider, HTTPProvider)
    for i in range(0, len(numbers), 200):
        chunk = numbers[i : i + 200]
        answers = provider.make_batch_request([(RPCEndpoint("eth_getBlockByNumber"), [hex(n), False]) for n in chunk])
        if isinstance(answers, dict):  # the node refused the batch as a whole
            raise ChainError(f"eth_getBlockByNumber batch: {answers.get('error', answers)}")
        for answer in answers:
            if "error" in answer:
                raise ChainError(f"eth_getBlockByNumber: {answer['error']}")
            block = answer.get("result")
            if block is not None:
                found[as_int(block["number"])] = block
    return found


def as_int(value: Any) -> int:
    """A quantity as JSON-RPC sends it (a 0x hex string) or as web3 formats it (an int)."""
    return int(value, 16) if isinstance(value, str) else int(value)
