"""The EVM chain watcher (DESIGN section 8).

One poll of one ``evm`` rail:

1. Ask the node for its chain id (it must be the rail's) and head.
2. Check that the block under the cursor still has the hash we stored. If it
   does not, walk back along the stored trail (``ChainBlock``) to the last
   block the node still agrees with, mark every movement above it
   ``reorged`` (un-seeing a leg it made ``confirming``, and raising a break),
   and scan again from there.
3. Scan the new blocks in chunks: ``eth_getLogs`` for ERC-20 ``Transfer``
   events of the rail's token contracts from or to any registered wallet
   (home's and the counterparties'), and, when the rail has a native asset,
   every block's transactions for top-level value to or from those wallets
   (and the gas home's wallets paid). Each chunk is one transaction that also
   moves the cursor (number and hash), so a restart resumes where it stopped
   and nothing is stored twice (unique chain id + tx hash + log index).
4. Movements at the rail's confirmation depth become ``final``
   (depth = head - block + 1: the block holding the transfer counts as one).
5. Health: no new head for ``CUSTODY_WATCHER_STALE_SECONDS`` or
   ``CUSTODY_WATCHER_ERROR_LIMIT`` failed polls in a row marks the rail
   ``degraded`` (with an alert); a later good poll with a new block puts it
   back ``up``. Only a degradation the watcher made is lifted by the watcher:
   a status set by operations is left alone.

Then matching runs (``reconcile.reconcile_run``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from web3 import Web3
from web3.exceptions import BlockNotFound

from custody.models import FEE_LOG_INDEX, NATIVE_LOG_INDEX, Break, ChainBlock, ChainCursor, Movement, Rail, Wallet
from settlement.exceptions import InvalidInput, NotFound
from settlement.models import Alert, Asset, Leg, Operator
from settlement.money import as_str, fits_storage
from settlement.services.audit import audit_record
from settlement.services.cycles import leg_unsee

from .breaks import break_close_if_open, break_raise
from .registry import rail_status_set

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


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def chunk_blocks() -> int:
    return max(1, _setting("CUSTODY_WATCHER_CHUNK_BLOCKS", 500))


def stale_seconds() -> int:
    return _setting("CUSTODY_WATCHER_STALE_SECONDS", 600)


def error_limit() -> int:
    return max(1, _setting("CUSTODY_WATCHER_ERROR_LIMIT", 5))


def trail_blocks() -> int:
    """How many recent blocks are kept to walk a reorg back along."""
    return max(16, _setting("CUSTODY_WATCHER_TRAIL_BLOCKS", 256))


def rpc_timeout() -> int:
    return _setting("CUSTODY_WATCHER_RPC_TIMEOUT", 10)


class ChainError(Exception):
    """Anything wrong with talking to the node (after which the poll stops)."""


class _Restart(Exception):
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


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


def _topic_address(address: str) -> str:
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")


def _address_of_topic(topic: Any) -> str:
    return "0x" + _hex(topic)[-40:]


# --- the poll ----------------------------------------------------------------------------------


def chain_poll(*, rail_code: str, now: datetime, w3: Web3 | None = None, reconcile: bool = True) -> PollResult:
    """One poll of one evm rail (see the module doc). Node failures never
    raise: they are counted on the cursor and reported in the result."""
    rail = Rail.objects.filter(code=rail_code).first()
    if rail is None:
        raise NotFound("not_found", f"no rail {rail_code!r}")
    if rail.kind != Rail.Kind.EVM:
        raise InvalidInput("invalid_field", f"rail {rail_code} is a {rail.kind} rail; the chain watcher needs evm")
    result = PollResult(rail=rail.code)
    cursor = ChainCursor.objects.filter(rail=rail).first()
    try:
        w3 = w3 or web3_for(rail)
        chain_id = w3.eth.chain_id
        if chain_id != rail.chain_id:
            raise ChainError(
                f"the node at {rail.rpc_url or '(test provider)'} is chain {chain_id}; rail {rail.code} is chain {rail.chain_id}"
            )
        head = w3.eth.block_number
        result.head = head
        cursor = _cursor(rail=rail, head=head, now=now)
        if cursor.head_number is None or head > cursor.head_number:
            cursor.head_number, cursor.head_changed_at = head, now
            cursor.save(update_fields=["head_number", "head_changed_at"])
        _check_reorg(w3=w3, rail=rail, cursor=cursor, now=now, result=result)
        _scan(w3=w3, rail=rail, cursor=cursor, head=head, now=now, result=result)
        result.final = _finalise(rail=rail, head=head, now=now)
    except _Restart as restart:
        result.notes.append(str(restart))
    except (InvalidInput, NotFound):
        raise
    except Exception as error:  # the node, the network, a malformed answer: all count as RPC errors
        logger.warning("chain watcher %s: %s", rail.code, error)
        result.error = f"{type(error).__name__}: {error}"[:500]
        cursor = cursor or _cursor_without_head(rail=rail)
        ChainCursor.objects.filter(pk=cursor.pk).update(
            error_count=cursor.error_count + 1, last_error=result.error, last_error_at=now, polled_at=now
        )
        cursor.refresh_from_db()
    else:
        ChainCursor.objects.filter(pk=cursor.pk).update(error_count=0, last_error="", polled_at=now)
        cursor.refresh_from_db()
    assert cursor is not None  # made above on a rail's first poll
    result.status = _health(rail=rail, cursor=cursor, now=now, result=result)
    if reconcile and not result.error:
        from .reconcile import reconcile_run

        reconcile_run(as_of=now)
    return result


def _cursor(*, rail: Rail, head: int, now: datetime) -> ChainCursor:
    start = rail.start_block if rail.start_block is not None else head
    cursor, created = ChainCursor.objects.get_or_create(rail=rail, defaults={"block_number": start - 1})
    if created:
        audit_record(
            actor=ACTOR,
            action="chain_cursor.created",
            object_type="Rail",
            object_id=rail.code,
            after={"start_block": start},
            at=now,
        )
    return cursor


def _cursor_without_head(*, rail: Rail) -> ChainCursor:
    start = rail.start_block if rail.start_block is not None else 0
    cursor, _ = ChainCursor.objects.get_or_create(rail=rail, defaults={"block_number": start - 1})
    return cursor


def _block(w3: Web3, number: int, *, full: bool = False):
    try:
        return w3.eth.get_block(number, full_transactions=full)
    except BlockNotFound:
        return None


# --- reorgs ----------------------------------------------------------------------------------------


def _check_reorg(*, w3: Web3, rail: Rail, cursor: ChainCursor, now: datetime, result: PollResult) -> None:
    if cursor.block_number < 0 or not cursor.block_hash:
        return
    block = _block(w3, cursor.block_number)
    if block is not None and _hex(block["hash"]) == cursor.block_hash:
        return
    ancestor, ancestor_hash = None, ""
    for stored in ChainBlock.objects.filter(rail=rail, number__lt=cursor.block_number).order_by("-number"):
        canonical = _block(w3, stored.number)
        if canonical is not None and _hex(canonical["hash"]) == stored.hash:
            ancestor, ancestor_hash = stored.number, stored.hash
            break
    if ancestor is None:
        lowest = ChainBlock.objects.filter(rail=rail).order_by("number").first()
        ancestor = (lowest.number if lowest else cursor.block_number) - 1
        ancestor_hash = ""
        result.notes.append(f"reorg deeper than the {trail_blocks()}-block trail: rescanning from block {ancestor + 1}")
        Alert.objects.create(
            kind="chain_deep_reorg",
            message=f"rail {rail.code}: reorg deeper than the kept trail; rescanning from block {ancestor + 1}",
            details={"rail": rail.code, "cursor": cursor.block_number},
            created_at=now,
        )
    result.reorged += chain_rewind(rail=rail, ancestor=ancestor, ancestor_hash=ancestor_hash, now=now)
    cursor.refresh_from_db()


def chain_rewind(*, rail: Rail, ancestor: int, ancestor_hash: str, now: datetime) -> int:
    """Everything above ``ancestor`` is no longer on the chain: movements
    there become ``reorged`` (their legs un-seen, a break raised for each one
    home cared about), the trail is cut and the cursor set back."""
    with transaction.atomic():
        cursor = ChainCursor.objects.select_for_update().get(rail=rail)
        before = {"block_number": cursor.block_number, "block_hash": cursor.block_hash}
        gone = list(
            Movement.objects.select_for_update(of=("self",))
            .filter(
                rail=rail,
                source=Movement.Source.CHAIN,
                block_number__gt=ancestor,
                status__in=[Movement.Status.SEEN, Movement.Status.FINAL],
            )
            .select_related("asset", "leg")
            .order_by("id")
        )
        for movement in gone:
            _movement_reorged(movement=movement, now=now)
        ChainBlock.objects.filter(rail=rail, number__gt=ancestor).delete()
        cursor.block_number, cursor.block_hash = ancestor, ancestor_hash
        cursor.save(update_fields=["block_number", "block_hash"])
        audit_record(
            actor=ACTOR,
            action="chain.reorg",
            object_type="Rail",
            object_id=rail.code,
            before=before,
            after={"block_number": ancestor, "block_hash": ancestor_hash, "movements_reorged": [m.id for m in gone]},
            at=now,
        )
        return len(gone)


def _movement_reorged(*, movement: Movement, now: datetime) -> None:
    was_final = movement.status == Movement.Status.FINAL
    leg = movement.leg
    movement.status, movement.reorged_at = Movement.Status.REORGED, now
    movement.save(update_fields=["status", "reorged_at"])
    if leg is not None and leg.status != Leg.Status.CONFIRMED:
        # the leg's other movements go back to the pool and the leg is
        # un-seen; a confirmed leg is final and keeps its evidence (the break
        # below records the problem)
        Movement.objects.filter(leg=leg).update(leg=None, matched_at=None)
        if leg.status == Leg.Status.CONFIRMING:
            leg_unsee(leg_id=leg.id, reason=f"transfer {movement.tx_hash} reorged out", actor=ACTOR, as_of=now)
    if movement.direction == Movement.Direction.EXTERNAL and leg is None:
        return
    severity = "after it was final" if was_final else "before it was final"
    leg_text = f"; it had matched leg {leg.id} ({leg.status})" if leg is not None else ""
    break_raise(
        key=f"{Break.Kind.REORGED}:movement:{movement.id}",
        kind=Break.Kind.REORGED,
        asset_id=movement.asset_id,
        amount=movement.amount,
        description=(
            f"{as_str(movement.amount)} {movement.asset.code} {movement.direction} transfer {movement.tx_hash} "
            f"(block {movement.block_number}) was reorged out {severity}{leg_text}"
        ),
        actor=ACTOR,
        at=now,
        counterparty_id=movement.counterparty_id,
        leg_id=leg.id if leg is not None else None,
        movements=[movement],
    )
    if was_final:
        Alert.objects.create(
            kind="chain_final_reorged",
            message=f"a final transfer {movement.tx_hash} on rail {movement.rail_id} was reorged out: raise the confirmation depth",
            details={"movement": movement.id},
            created_at=now,
        )


# --- scanning ------------------------------------------------------------------------------------------


@dataclass
class _Watch:
    wallets: dict[str, Wallet]
    tokens: dict[str, tuple[Asset, int]]  # contract -> (asset, on-chain decimals)
    native: Asset | None
    home_id: int | None


def _watch(*, w3: Web3, rail: Rail, result: PollResult) -> _Watch:
    wallets = {w.address.lower(): w for w in Wallet.objects.filter(rail=rail).select_related("operator")}
    tokens = {}
    natives = []
    for asset in Asset.objects.filter(rail=rail).order_by("code"):
        if not asset.contract:
            natives.append(asset)
            continue
        address = Web3.to_checksum_address(asset.contract)
        try:
            decimals = w3.eth.contract(address=address, abi=DECIMALS_ABI).functions.decimals().call()
        except Exception:  # a token without decimals(): trust the asset's scale
            decimals = asset.scale
        tokens[asset.contract.lower()] = (asset, int(decimals))
    native = natives[0] if len(natives) == 1 else None
    if len(natives) > 1:
        result.notes.append(
            f"rail {rail.code} has {len(natives)} assets without a contract ({', '.join(a.code for a in natives)}): "
            "native transfers are not watched until only one is the native coin"
        )
    home = Operator.objects.filter(role=Operator.Role.HOME).values_list("id", flat=True).first()
    return _Watch(wallets=wallets, tokens=tokens, native=native, home_id=home)


def _scan(*, w3: Web3, rail: Rail, cursor: ChainCursor, head: int, now: datetime, result: PollResult) -> None:
    start = cursor.block_number + 1
    if start > head:
        return
    watch = _watch(w3=w3, rail=rail, result=result)
    result.scanned_from = start
    size = chunk_blocks()
    while start <= head:
        end = min(start + size - 1, head)
        result.new += _scan_chunk(w3=w3, rail=rail, watch=watch, start=start, end=end, head=head, now=now)
        result.scanned_to = end
        start = end + 1


def _get_logs(w3: Web3, params: dict) -> list:
    """eth_getLogs, halving the range when the node refuses a large one."""
    try:
        return list(w3.eth.get_logs(params))  # type: ignore[arg-type]  # raw filter dict: fromBlock/toBlock, 0x topics
    except Exception:
        lo, hi = params["fromBlock"], params["toBlock"]
        if hi <= lo:
            raise
        mid = (lo + hi) // 2
        return _get_logs(w3, {**params, "toBlock": mid}) + _get_logs(w3, {**params, "fromBlock": mid + 1})


def _scan_chunk(*, w3: Web3, rail: Rail, watch: _Watch, start: int, end: int, head: int, now: datetime) -> int:
    found: dict[tuple[str, int], dict] = {}
    addresses = [_topic_address(a) for a in sorted(watch.wallets)]
    if watch.tokens and addresses:
        contracts = [Web3.to_checksum_address(c) for c in sorted(watch.tokens)]
        for topics in ([TRANSFER_TOPIC, addresses], [TRANSFER_TOPIC, None, addresses]):
            for log in _get_logs(w3, {"fromBlock": start, "toBlock": end, "address": contracts, "topics": topics}):
                if len(log["topics"]) != 3:
                    continue  # an ERC-721 Transfer has the token id as a third indexed topic
                tx_hash, index = _hex(log["transactionHash"]), int(log["logIndex"])
                found[(tx_hash, index)] = {
                    "tx_hash": tx_hash,
                    "log_index": index,
                    "block_number": int(log["blockNumber"]),
                    "block_hash": _hex(log["blockHash"]),
                    "token": _hex(log["address"]) if not isinstance(log["address"], str) else log["address"].lower(),
                    "from": _address_of_topic(log["topics"][1]),
                    "to": _address_of_topic(log["topics"][2]),
                    "raw": int.from_bytes(bytes(log["data"])[:32], "big") if log["data"] else 0,
                }
    # the blocks to fetch: all of them when native value is watched, else the
    # ones with logs, the end, and the recent ones a reorg may still replace
    wanted = set(range(start, end + 1)) if watch.native else {end, *(f["block_number"] for f in found.values())}
    wanted |= set(range(max(start, head - trail_blocks() + 1), end + 1))
    blocks: dict[int, Any] = {}
    home_wallets = {a for a, w in watch.wallets.items() if w.operator_id == watch.home_id}
    for number in sorted(wanted):
        block = _block(w3, number, full=watch.native is not None)
        if block is None:
            raise _Restart(f"block {number} vanished during the scan: the chain is reorganising")
        blocks[number] = block
        parent = blocks.get(number - 1)
        if parent is not None and _hex(block["parentHash"]) != _hex(parent["hash"]):
            raise _Restart(f"block {number} does not follow block {number - 1}: the chain is reorganising")
        if watch.native is None:
            continue
        for tx in block["transactions"]:
            sender, receiver = (tx["from"] or "").lower(), (tx.get("to") or "").lower()
            if not (sender in watch.wallets or receiver in watch.wallets):
                continue
            tx_hash = _hex(tx["hash"])
            if int(tx["value"]) > 0:
                found[(tx_hash, NATIVE_LOG_INDEX)] = {
                    "tx_hash": tx_hash,
                    "log_index": NATIVE_LOG_INDEX,
                    "block_number": number,
                    "block_hash": _hex(block["hash"]),
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
                        "block_hash": _hex(block["hash"]),
                        "token": "",
                        "from": sender,
                        "to": "",
                        "raw": fee,
                    }
    for item in found.values():
        block = blocks[item["block_number"]]
        if _hex(block["hash"]) != item["block_hash"]:
            raise _Restart(f"log in block {item['block_number']} has another block hash: the chain is reorganising")
        item["at"] = datetime.fromtimestamp(int(block["timestamp"]), tz=UTC)
    return _store_chunk(rail=rail, watch=watch, start=start, end=end, blocks=blocks, found=found, head=head, now=now)


def _classify(watch: _Watch, sender: str, receiver: str, log_index: int) -> tuple[str, int | None]:
    home = watch.home_id
    source, target = watch.wallets.get(sender), watch.wallets.get(receiver)
    from_home = source is not None and source.operator_id == home
    to_home = target is not None and target.operator_id == home
    if log_index == FEE_LOG_INDEX:
        return Movement.Direction.FEE, None
    if from_home and to_home:
        return Movement.Direction.INTERNAL, None
    if to_home:
        return Movement.Direction.INBOUND, source.operator_id if source else None
    if from_home:
        return Movement.Direction.OUTBOUND, target.operator_id if target else None
    other = source or target
    return Movement.Direction.EXTERNAL, other.operator_id if other else None


def _store_chunk(
    *, rail: Rail, watch: _Watch, start: int, end: int, blocks: dict, found: dict, head: int, now: datetime
) -> int:
    with transaction.atomic():
        cursor = ChainCursor.objects.select_for_update().get(rail=rail)
        if cursor.block_number != start - 1:
            raise _Restart(f"another watcher moved the cursor of {rail.code} to {cursor.block_number}")
        first = blocks.get(start)
        if first is not None and cursor.block_hash and _hex(first["parentHash"]) != cursor.block_hash:
            raise _Restart(f"block {start} does not follow the cursor: the chain is reorganising")
        new_ids, revived = [], []
        for (tx_hash, log_index), item in sorted(found.items(), key=lambda kv: (kv[1]["block_number"], kv[0])):
            if item["log_index"] == FEE_LOG_INDEX or not item["token"]:
                asset, decimals = watch.native, 18
            else:
                asset, decimals = watch.tokens[item["token"]]
            if asset is None or item["raw"] <= 0:
                continue
            amount = Decimal(item["raw"]).scaleb(-decimals)
            if not fits_storage(amount):
                logger.warning(
                    "chain watcher %s: %s:%s amount %s too large to store", rail.code, tx_hash, log_index, amount
                )
                continue
            direction, counterparty = _classify(watch, item["from"], item["to"], log_index)
            existing = (
                Movement.objects.select_for_update()
                .filter(source=Movement.Source.CHAIN, chain_id=rail.chain_id, tx_hash=tx_hash, log_index=log_index)
                .first()
            )
            if existing is not None:
                if existing.status == Movement.Status.REORGED:
                    existing.status, existing.reorged_at = Movement.Status.SEEN, None
                    existing.block_number, existing.block_hash = item["block_number"], item["block_hash"]
                    existing.occurred_at, existing.seen_at = item["at"], now
                    existing.save(
                        update_fields=["status", "reorged_at", "block_number", "block_hash", "occurred_at", "seen_at"]
                    )
                    break_close_if_open(
                        key=f"{Break.Kind.REORGED}:movement:{existing.id}",
                        note=f"the transfer was included again, in block {item['block_number']}",
                        actor=ACTOR,
                        at=now,
                    )
                    revived.append(existing.id)
                continue
            movement = Movement.objects.create(
                source=Movement.Source.CHAIN,
                rail=rail,
                asset=asset,
                amount=amount,
                direction=direction,
                counterparty_id=counterparty,
                status=Movement.Status.SEEN,
                occurred_at=item["at"],
                seen_at=now,
                chain_id=rail.chain_id,
                tx_hash=tx_hash,
                log_index=log_index,
                block_number=item["block_number"],
                block_hash=item["block_hash"],
                token=item["token"],
                from_address=item["from"],
                to_address=item["to"],
                from_wallet=watch.wallets.get(item["from"]),
                to_wallet=watch.wallets.get(item["to"]),
            )
            new_ids.append(movement.id)
        ChainBlock.objects.bulk_create(
            [
                ChainBlock(
                    rail=rail,
                    number=number,
                    hash=_hex(block["hash"]),
                    parent_hash=_hex(block["parentHash"]),
                    timestamp=datetime.fromtimestamp(int(block["timestamp"]), tz=UTC),
                )
                for number, block in sorted(blocks.items())
            ],
            update_conflicts=True,
            unique_fields=["rail", "number"],
            update_fields=["hash", "parent_hash", "timestamp"],
        )
        ChainBlock.objects.filter(rail=rail, number__lte=head - trail_blocks()).delete()
        before = {"block_number": cursor.block_number, "block_hash": cursor.block_hash}
        cursor.block_number, cursor.block_hash = end, _hex(blocks[end]["hash"])
        cursor.save(update_fields=["block_number", "block_hash"])
        if new_ids or revived:
            audit_record(
                actor=ACTOR,
                action="movements.seen",
                object_type="Rail",
                object_id=rail.code,
                before=before,
                after={"blocks": [start, end], "new": new_ids, "included_again": revived},
                at=now,
            )
        return len(new_ids)


def _finalise(*, rail: Rail, head: int, now: datetime) -> int:
    """Seen movements at the confirmation depth become final."""
    depth = rail.confirmations or _setting("CUSTODY_DEFAULT_CONFIRMATIONS", 12)
    with transaction.atomic():
        cursor = ChainCursor.objects.select_for_update().get(rail=rail)
        limit = min(head - depth + 1, cursor.block_number)
        ready = Movement.objects.filter(
            rail=rail, source=Movement.Source.CHAIN, status=Movement.Status.SEEN, block_number__lte=limit
        )
        ids = list(ready.order_by("id").values_list("id", flat=True))
        if not ids:
            return 0
        Movement.objects.filter(pk__in=ids).update(status=Movement.Status.FINAL, final_at=now)
        audit_record(
            actor=ACTOR,
            action="movements.final",
            object_type="Rail",
            object_id=rail.code,
            after={"movements": ids, "head": head, "confirmations": depth},
            at=now,
        )
        return len(ids)


# --- health --------------------------------------------------------------------------------------------


def _health(*, rail: Rail, cursor: ChainCursor, now: datetime, result: PollResult) -> str:
    rail.refresh_from_db()
    problem = ""
    if cursor.error_count >= error_limit():
        problem = f"{cursor.error_count} failed polls in a row: {cursor.last_error[:120]}"
    elif cursor.head_changed_at is not None and now - cursor.head_changed_at > timedelta(seconds=stale_seconds()):
        seconds = int((now - cursor.head_changed_at).total_seconds())
        problem = f"no new block for {seconds} s (head {cursor.head_number})"
    if problem and rail.status == Rail.Status.UP:
        reason = WATCHER_REASON + problem
        rail_status_set(code=rail.code, status=Rail.Status.DEGRADED, reason=reason[:200], actor=ACTOR, now=now)
        Alert.objects.create(
            kind="rail_degraded",
            message=f"rail {rail.code} degraded: {problem}",
            details={"rail": rail.code, "head": cursor.head_number, "errors": cursor.error_count},
            created_at=now,
        )
        result.notes.append(f"rail {rail.code} marked degraded: {problem}")
        return Rail.Status.DEGRADED
    if (
        not problem
        and not result.error
        and rail.status == Rail.Status.DEGRADED
        and rail.status_reason.startswith(WATCHER_REASON)
    ):
        reason = f"{WATCHER_REASON}recovered: new block {cursor.head_number}, polls succeed"
        rail_status_set(code=rail.code, status=Rail.Status.UP, reason=reason, actor=ACTOR, now=now)
        result.notes.append(f"rail {rail.code} back up")
        return Rail.Status.UP
    return rail.status


def chain_watch_all(*, now: datetime, rail_code: str | None = None) -> list[PollResult]:
    """One poll of every evm rail (or the one named), then one reconciliation."""
    from .reconcile import reconcile_run

    rails = Rail.objects.filter(kind=Rail.Kind.EVM).order_by("code")
    if rail_code is not None:
        rails = rails.filter(code=rail_code)
        if not rails.exists():
            raise NotFound("not_found", f"no evm rail {rail_code!r}")
    results = [chain_poll(rail_code=rail.code, now=now, reconcile=False) for rail in rails]
    reconcile_run(as_of=now)
    return results
