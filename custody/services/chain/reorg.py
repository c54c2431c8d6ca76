"""Reorgs: the block under the cursor changed, so walk back along the
stored trail to the last block the node agrees with and un-see every
movement above it."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from web3 import Web3

from controls.money import as_str
from controls.services.alerts import alert_raise
from controls.services.audit import audit_record
from custody.models import Break, ChainBlock, ChainCursor, Movement
from registry.models import Rail
from settlement.models import Leg
from settlement.services.legs import leg_unsee

from ..breaks import break_raise
from .node import ACTOR, PollResult, block_at, hexstr, trail_blocks

logger = logging.getLogger(__name__)


def reorg_check(*, w3: Web3, rail: Rail, cursor: ChainCursor, now: datetime, result: PollResult) -> None:
    if cursor.block_number < 0 or not cursor.block_hash:
        return
    block = block_at(w3, cursor.block_number)
    if block is not None and hexstr(block["hash"]) == cursor.block_hash:
        return
    ancestor, ancestor_hash = None, ""
    for stored in ChainBlock.objects.filter(rail=rail, number__lt=cursor.block_number).order_by("-number"):
        canonical = block_at(w3, stored.number)
        if canonical is not None and hexstr(canonical["hash"]) == stored.hash:
            ancestor, ancestor_hash = stored.number, stored.hash
            break
    if ancestor is None:
        lowest = ChainBlock.objects.filter(rail=rail).order_by("number").first()
        ancestor = (lowest.number if lowest else cursor.block_number) - 1
        ancestor_hash = ""
        result.notes.append(f"reorg deeper than the {trail_blocks()}-block trail: rescanning from block {ancestor + 1}")
        alert_raise(
            kind="chain_deep_reorg",
            message=f"rail {rail.code}: reorg deeper than the kept trail; rescanning from block {ancestor + 1}",
            details={"rail": rail.code, "cursor": cursor.block_number},
            at=now,
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
        alert_raise(
            kind="chain_final_reorged",
            message=f"a final transfer {movement.tx_hash} on rail {movement.rail_id} was reorged out: raise the confirmation depth",
            details={"movement": movement.id},
            at=now,
        )


# --- scanning ------------------------------------------------------------------------------------------
