"""Scanning new blocks: ERC-20 Transfer logs and native value to or from
registered wallets, stored chunk by chunk with the cursor, then finality at
the rail's confirmation depth."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from web3 import Web3

from controls.money import fits_storage
from controls.services.audit import audit_record
from custody.models import FEE_LOG_INDEX, Break, ChainBlock, ChainCursor, Movement
from registry.models import Asset, Operator, Rail, Wallet

from ..breaks import break_close_if_open
from .node import (
    ACTOR,
    DECIMALS_ABI,
    TRANSFER_TOPIC,
    PollResult,
    Restart,
    as_int,
    block_at,
    blocks_get,
    chunk_blocks,
    hexstr,
    logs_get,
    raw_rpc,
    setting,
    topic_address,
    trail_blocks,
)
from .transfers import native_transfers, transfer_decode, transfer_key

logger = logging.getLogger(__name__)


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


def blocks_scan(*, w3: Web3, rail: Rail, cursor: ChainCursor, head: int, now: datetime, result: PollResult) -> None:
    start = cursor.block_number + 1
    if start > head:
        return
    watch = _watch(w3=w3, rail=rail, result=result)
    result.scanned_from = start
    size = chunk_blocks()
    while start <= head:
        end = min(start + size - 1, head)
        new, final = _scan_chunk(w3=w3, rail=rail, watch=watch, start=start, end=end, head=head, now=now)
        result.new += new
        result.final += final
        result.scanned_to = end
        start = end + 1


def _scan_chunk(
    *, w3: Web3, rail: Rail, watch: _Watch, start: int, end: int, head: int, now: datetime
) -> tuple[int, int]:
    """Scan and store one chunk; returns (new movements, of which final on arrival)."""
    found: dict[tuple[str, int], dict] = {}
    addresses = [topic_address(a) for a in sorted(watch.wallets)]
    if watch.tokens and addresses:
        contracts = [Web3.to_checksum_address(c) for c in sorted(watch.tokens)]
        base = {"fromBlock": start, "toBlock": end, "address": contracts}
        for logs in _logs_both_ways(w3, base, addresses):
            for log in logs:
                key = transfer_key(log)
                if key in found:
                    continue  # between two registered wallets: the other look-up had it
                decoded = transfer_decode(log, key)
                if decoded is not None:
                    found[decoded[0]] = decoded[1]
    # the blocks to fetch: all of them when native value is watched; else the
    # end, the recent ones a reorg may still replace (the trail), and those
    # of logs whose block time the node did not send. A log deeper than the
    # trail is past any reorg the watcher can walk back, so its block's
    # header adds nothing its blockTimestamp does not say.
    trail = set(range(max(start, head - trail_blocks() + 1), end + 1))
    if watch.native:
        wanted = set(range(start, end + 1))
    else:
        wanted = {end, *trail, *(f["block_number"] for f in found.values() if f["at"] is None)}
    if watch.native:
        blocks: dict[int, Any] = {}
        for number in sorted(wanted):
            block = block_at(w3, number, full=True)
            if block is None:
                raise Restart(f"block {number} vanished during the scan: the chain is reorganising")
            blocks[number] = block
    else:
        blocks = blocks_get(w3, sorted(wanted))
        missing = sorted(wanted - set(blocks))
        if missing:
            raise Restart(f"block {missing[0]} vanished during the scan: the chain is reorganising")
    for number in sorted(blocks):
        parent = blocks.get(number - 1)
        if parent is not None and hexstr(blocks[number]["parentHash"]) != hexstr(parent["hash"]):
            raise Restart(f"block {number} does not follow block {number - 1}: the chain is reorganising")
    if watch.native:
        native_transfers(w3=w3, wallets=watch.wallets, home_id=watch.home_id, blocks=blocks, found=found)
    # each block's hash and time once, not once per transfer in it
    headers = {
        number: (hexstr(block["hash"]), datetime.fromtimestamp(as_int(block["timestamp"]), tz=UTC))
        for number, block in blocks.items()
    }
    for item in found.values():
        header = headers.get(item["block_number"])
        if header is None:
            continue  # deeper than the trail, with its block time from the log
        if header[0] != item["block_hash"]:
            raise Restart(f"log in block {item['block_number']} has another block hash: the chain is reorganising")
        item["at"] = header[1]
    return _store_chunk(rail=rail, watch=watch, start=start, end=end, blocks=blocks, found=found, head=head, now=now)


_node_reads: ThreadPoolExecutor | None = None


def _logs_both_ways(w3: Web3, base: dict, addresses: list[str]) -> list[list]:
    """Transfer logs from the wallets, then to them: a node filters on one
    topic position at a time, so these are two eth_getLogs. Over JSON-RPC the
    second is sent from a worker thread while the first is read (one thread
    kept for the process, so it keeps its HTTP connection): the node answers
    both at once instead of one after the other."""
    global _node_reads
    sent = {**base, "topics": [TRANSFER_TOPIC, addresses]}
    received = {**base, "topics": [TRANSFER_TOPIC, None, addresses]}
    if not raw_rpc(w3):
        return [logs_get(w3, sent), logs_get(w3, received)]
    if _node_reads is None:
        _node_reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chain-watcher-logs")
    second = _node_reads.submit(logs_get, w3, received)
    try:
        first = logs_get(w3, sent)
    finally:
        to_wallets = second.result()  # waited for even when the first failed: never left running
    return [first, to_wallets]


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


# the columns a chain movement is COPYed with, after its id; the bank
# columns are NOT NULL with a blank default
_MOVEMENT_COLUMNS = (
    "source",
    "rail_id",
    "asset_id",
    "amount",
    "direction",
    "counterparty_id",
    "status",
    "occurred_at",
    "seen_at",
    "final_at",
    "chain_id",
    "tx_hash",
    "log_index",
    "block_number",
    "block_hash",
    "token",
    "from_address",
    "to_address",
    "from_wallet_id",
    "to_wallet_id",
    "side",
    "entry_ref",
    "bank_reference",
    "customer_reference",
    "counterparty_account",
    "details",
)
_BANK_BLANKS = ("",) * 6


def _movements_copy(rows: list[tuple]) -> list[int]:
    """New chain movements in one COPY, in the order given: their ids are
    taken from the table's sequence first, so nothing is read back. The statement-level reference checks (custody migration 0010) and
    the unique chain key apply to the COPY as to an INSERT."""
    if not rows:
        return []
    table = Movement._meta.db_table
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        (sequence,) = cursor.fetchone()
        # the sequence as a constant: named by an expression, it is looked up again for every row
        cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, len(rows)])
        ids = sorted(movement_id for (movement_id,) in cursor.fetchall())
        with cursor.cursor.copy(f"COPY {table} (id, {', '.join(_MOVEMENT_COLUMNS)}) FROM STDIN") as copy:
            for movement_id, row in zip(ids, rows, strict=True):
                copy.write_row((movement_id, *row))
    return ids


def _store_chunk(
    *, rail: Rail, watch: _Watch, start: int, end: int, blocks: dict, found: dict, head: int, now: datetime
) -> tuple[int, int]:
    with transaction.atomic():
        cursor = ChainCursor.objects.select_for_update().get(rail=rail)
        if cursor.block_number != start - 1:
            raise Restart(f"another watcher moved the cursor of {rail.code} to {cursor.block_number}")
        first = blocks.get(start)
        if first is not None and cursor.block_hash and hexstr(first["parentHash"]) != cursor.block_hash:
            raise Restart(f"block {start} does not follow the cursor: the chain is reorganising")
        # a transfer first seen already at the confirmation depth (a watcher
        # catching up) is stored final at once rather than rewritten by
        # movements_finalise in the same poll
        deep = head - confirmation_depth(rail) + 1
        existing = {}
        if found:
            for movement in Movement.objects.select_for_update().filter(
                source=Movement.Source.CHAIN,
                chain_id=rail.chain_id,
                tx_hash__in=sorted({tx for tx, _ in found}),
            ):
                existing[(movement.tx_hash, movement.log_index)] = movement
        rows: list[tuple] = []
        final_ids_at: list[int] = []  # positions in rows of those stored final
        revived = []
        # direction, counterparty and the wallets, per (from, to, fee or not):
        # a handful of pairs however many transfers
        parties: dict[tuple[str, str, bool], tuple] = {}
        for (tx_hash, log_index), item in sorted(found.items(), key=lambda kv: (kv[1]["block_number"], kv[0])):
            if log_index == FEE_LOG_INDEX or not item["token"]:
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
            known = existing.get((tx_hash, log_index))
            if known is not None:
                if known.status == Movement.Status.REORGED:
                    _revive(movement=known, item=item, now=now)
                    revived.append(known.id)
                continue
            pair = (item["from"], item["to"], log_index == FEE_LOG_INDEX)
            party = parties.get(pair)
            if party is None:
                source, target = watch.wallets.get(pair[0]), watch.wallets.get(pair[1])
                direction, counterparty = _classify(watch, pair[0], pair[1], log_index)
                party = parties[pair] = (
                    str(direction),
                    counterparty,
                    source.id if source else None,
                    target.id if target else None,
                )
            direction, counterparty, from_wallet_id, to_wallet_id = party
            final = item["block_number"] <= deep
            if final:
                final_ids_at.append(len(rows))
            rows.append(
                (
                    Movement.Source.CHAIN.value,
                    rail.id,
                    asset.id,
                    amount,
                    direction,
                    counterparty,
                    Movement.Status.FINAL.value if final else Movement.Status.SEEN.value,
                    item["at"],
                    now,
                    now if final else None,
                    rail.chain_id,
                    tx_hash,
                    log_index,
                    item["block_number"],
                    item["block_hash"],
                    item["token"],
                    item["from"],
                    item["to"],
                    from_wallet_id,
                    to_wallet_id,
                    *_BANK_BLANKS,
                )
            )
        new_ids = _movements_copy(rows)
        final_ids = [new_ids[i] for i in final_ids_at]
        ChainBlock.objects.bulk_create(
            [
                ChainBlock(
                    rail=rail,
                    number=number,
                    hash=hexstr(block["hash"]),
                    parent_hash=hexstr(block["parentHash"]),
                    timestamp=datetime.fromtimestamp(as_int(block["timestamp"]), tz=UTC),
                )
                for number, block in sorted(blocks.items())
                if number > head - trail_blocks()
            ],
            update_conflicts=True,
            unique_fields=["rail", "number"],
            update_fields=["hash", "parent_hash", "timestamp"],
        )
        ChainBlock.objects.filter(rail=rail, number__lte=head - trail_blocks()).delete()
        before = {"block_number": cursor.block_number, "block_hash": cursor.block_hash}
        cursor.block_number, cursor.block_hash = end, hexstr(blocks[end]["hash"])
        cursor.save(update_fields=["block_number", "block_hash"])
        if new_ids or revived:
            audit_record(
                actor=ACTOR,
                action="movements.seen",
                object_type="Rail",
                object_id=rail.code,
                before=before,
                after={
                    "blocks": [start, end],
                    "new": new_ids,
                    "final_on_arrival": final_ids,
                    "included_again": revived,
                },
                at=now,
            )
        return len(new_ids), len(final_ids)


def _revive(*, movement: Movement, item: dict, now: datetime) -> None:
    """A transfer reorged out earlier is in a block again."""
    movement.status, movement.reorged_at = Movement.Status.SEEN, None
    movement.block_number, movement.block_hash = item["block_number"], item["block_hash"]
    movement.occurred_at, movement.seen_at = item["at"], now
    movement.save(update_fields=["status", "reorged_at", "block_number", "block_hash", "occurred_at", "seen_at"])
    break_close_if_open(
        key=f"{Break.Kind.REORGED}:movement:{movement.id}",
        note=f"the transfer was included again, in block {item['block_number']}",
        actor=ACTOR,
        at=now,
    )


def confirmation_depth(rail: Rail) -> int:
    return rail.confirmations or setting("CUSTODY_DEFAULT_CONFIRMATIONS", 12)


def movements_finalise(*, rail: Rail, head: int, now: datetime) -> int:
    """Seen movements at the confirmation depth become final."""
    depth = confirmation_depth(rail)
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
