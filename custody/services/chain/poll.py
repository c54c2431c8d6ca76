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
   Designated custodian wallets are read at the head: their balances attest
   their operators' prefunding cover (``balances``).
5. Health: no new head for ``CUSTODY_WATCHER_STALE_SECONDS`` or
   ``CUSTODY_WATCHER_ERROR_LIMIT`` failed polls in a row marks the rail
   ``degraded`` (with an alert); a later good poll with a new block puts it
   back ``up``. Only a degradation the watcher made is lifted by the watcher:
   a status set by operations is left alone.

Then matching runs (``reconcile.reconcile_run``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from web3 import Web3

from controls.exceptions import InvalidInput, NotFound
from controls.services.alerts import alert_raise
from controls.services.audit import audit_record
from custody.models import ChainCursor
from registry.models import Rail
from registry.services.rails import rail_status_set

from .balances import designated_balances_read
from .node import ACTOR, WATCHER_REASON, ChainError, PollResult, Restart, error_limit, stale_seconds, web3_for
from .reorg import reorg_check
from .scan import blocks_scan, movements_finalise

logger = logging.getLogger(__name__)


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
        reorg_check(w3=w3, rail=rail, cursor=cursor, now=now, result=result)
        blocks_scan(w3=w3, rail=rail, cursor=cursor, head=head, now=now, result=result)
        result.final += movements_finalise(rail=rail, head=head, now=now)
        result.attested = designated_balances_read(w3=w3, rail=rail, head=head, now=now)
    except Restart as restart:
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
        from custody.services.reconcile import reconcile_run

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
        alert_raise(
            kind="rail_degraded",
            message=f"rail {rail.code} degraded: {problem}",
            details={"rail": rail.code, "head": cursor.head_number, "errors": cursor.error_count},
            at=now,
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
    from custody.services.reconcile import reconcile_run

    rails = Rail.objects.filter(kind=Rail.Kind.EVM).order_by("code")
    if rail_code is not None:
        rails = rails.filter(code=rail_code)
        if not rails.exists():
            raise NotFound("not_found", f"no evm rail {rail_code!r}")
    results = [chain_poll(rail_code=rail.code, now=now, reconcile=False) for rail in rails]
    reconcile_run(as_of=now)
    return results
