"""Custody's side of prefunding (circular para 10): breaks for cover that
fails, and the reconciliation of the engine's open orders with the open
holds. Custody sits above settlement: it reads settlement's figures and
calls its services; settlement never calls up here (the open-orders hook is
how it asks).

- ``cover_check`` (beat, every minute) evaluates every operator's cover in
  every asset; ``cover_breaks_sync`` keeps one break per bad spell: a
  ``cover_breach`` or ``attestation_stale`` break opens when the cover goes
  bad and is closed with a note when it is covered again. The alert is
  settlement's (once per change of state).
- ``open_orders_reconcile`` compares a list of open orders with the holds
  open at its ``as_of``: a hold without an order is a ``hold_without_order``
  break, an order without a hold an ``order_without_hold`` break. A later
  list that no longer shows the difference closes its break.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from controls.exceptions import NotFound
from controls.services.alerts import alert_raise
from custody.models import Break
from settlement.models import OpenOrdersSnapshot, PrefundingCover
from settlement.selectors.prefunding import CoverFigures, amount_text, open_orders_compare
from settlement.services.prefunding import cover_evaluate, open_orders_reconciled

from .breaks import break_close_if_open, break_raise

ACTOR = "custody:prefunding"
# individual breaks per kind and list; beyond that an alert says how many more
MAX_BREAKS_PER_LIST = 2_000


# --- cover ---------------------------------------------------------------------------------------


def _close(prefix: str, *, note: str, actor: str, at: datetime) -> list[int]:
    closed = []
    for key in Break.objects.filter(key__startswith=prefix, status__in=Break.UNRESOLVED).values_list("key", flat=True):
        brk = break_close_if_open(key=key, note=note, actor=actor, at=at)
        if brk is not None:
            closed.append(brk.id)
    return closed


def cover_breaks_sync(*, covers: list[CoverFigures], actor: str, now: datetime) -> list[int]:
    """One break per bad spell of each operator's cover in each asset.
    Returns the ids of the breaks opened or brought up to date."""
    touched = []
    for cover in covers:
        where = f"{cover.operator}:{cover.asset}:"
        breach, stale = f"{Break.Kind.COVER_BREACH}:{where}", f"{Break.Kind.ATTESTATION_STALE}:{where}"
        since = (cover.since or now).isoformat()
        if cover.state == PrefundingCover.State.BREACH:
            shortfall = -(cover.headroom or Decimal(0))
            brk, changed = break_raise(
                key=breach + since,
                kind=Break.Kind.COVER_BREACH,
                asset_id=cover.asset_id,
                amount=shortfall,
                counterparty_id=cover.operator_id,
                description=(
                    f"{cover.operator}'s designated custodians attest {amount_text(cover.attested or Decimal(0), cover.scale)} "
                    f"{cover.asset}; short by {amount_text(shortfall, cover.scale)}: {cover.reason}. "
                    "New holds are refused (cover_breach); existing holds stay."
                ),
                actor=actor,
                at=now,
            )
            _close(stale, note="the attestation is fresh again (the cover is now judged a breach)", actor=actor, at=now)
        elif cover.state == PrefundingCover.State.STALE:
            brk, changed = break_raise(
                key=stale + since,
                kind=Break.Kind.ATTESTATION_STALE,
                asset_id=cover.asset_id,
                amount=cover.required,
                counterparty_id=cover.operator_id,
                description=(
                    f"{cover.operator}'s prefunding in {cover.asset} is not verified: {cover.reason}. "
                    f"{amount_text(cover.required, cover.scale)} {cover.asset} must be attested. New holds are "
                    "refused (attestation_stale); existing holds stay."
                ),
                actor=actor,
                at=now,
            )
        else:
            note = f"covered again: attested {amount_text(cover.attested or Decimal(0), cover.scale)} {cover.asset}"
            _close(breach, note=note, actor=actor, at=now)
            _close(stale, note=note, actor=actor, at=now)
            continue
        if changed:
            touched.append(brk.id)
    return touched


def cover_check(*, as_of: datetime, actor: str = ACTOR) -> dict:
    """Evaluate every operator's cover in every asset and keep the breaks in
    step (the scheduled check: attestations age even when nothing arrives)."""
    with transaction.atomic():
        covers = cover_evaluate(as_of=as_of, actor=actor)
        touched = cover_breaks_sync(covers=covers, actor=actor, now=as_of)
    counts: dict[str, int] = {}
    for cover in covers:
        counts[cover.state] = counts.get(cover.state, 0) + 1
    return {"checked": len(covers), "states": counts, "breaks": touched, "cover": [c.as_json() for c in covers]}


# --- open orders ---------------------------------------------------------------------------------


@dataclass(slots=True)
class OpenOrdersResult:
    snapshot_id: int
    holds_without_order: int = 0
    orders_without_hold: int = 0
    breaks: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    already: bool = False

    def as_json(self) -> dict:
        return {
            "snapshot_id": self.snapshot_id,
            "holds_without_order": self.holds_without_order,
            "orders_without_hold": self.orders_without_hold,
            "breaks": self.breaks,
            "closed": self.closed,
        }


def open_orders_reconcile(*, snapshot_id: int, now: datetime, actor: str = ACTOR) -> OpenOrdersResult:
    """Compare one open-orders list with the holds open at its time; the
    differences become breaks. Reconciling a list twice changes nothing."""
    with transaction.atomic():
        snapshot = OpenOrdersSnapshot.objects.select_for_update().filter(pk=snapshot_id).first()
        if snapshot is None:
            raise NotFound("not_found", f"no open-orders list {snapshot_id}")
        result = OpenOrdersResult(snapshot_id=snapshot.id)
        if snapshot.status == OpenOrdersSnapshot.Status.RECONCILED:
            result.already = True
            stored = snapshot.result or {}
            result.holds_without_order = stored.get("holds_without_order", 0)
            result.orders_without_hold = stored.get("orders_without_hold", 0)
            result.breaks, result.closed = stored.get("breaks", []), stored.get("closed", [])
            return result
        found = open_orders_compare(snapshot)
        result.holds_without_order = len(found.holds_without_order)
        result.orders_without_hold = len(found.orders_without_hold)
        at = snapshot.as_of.isoformat()
        keys = set()
        for hold_id, operator_id, operator, order_id, asset_id, remaining in found.holds_without_order[
            :MAX_BREAKS_PER_LIST
        ]:
            key = f"{Break.Kind.HOLD_WITHOUT_ORDER}:hold:{hold_id}"
            keys.add(key)
            brk, changed = break_raise(
                key=key,
                kind=Break.Kind.HOLD_WITHOUT_ORDER,
                asset_id=asset_id,
                amount=remaining,
                counterparty_id=operator_id,
                description=(
                    f"hold {hold_id} of order {order_id} ({operator}) was open at {at} but the engine did not list "
                    "the order as open: release the hold, or find the order"
                ),
                actor=actor,
                at=now,
            )
            if changed:
                result.breaks.append(brk.id)
        for operator, order_id in found.orders_without_hold[:MAX_BREAKS_PER_LIST]:
            key = f"{Break.Kind.ORDER_WITHOUT_HOLD}:{operator or '*'}:{order_id}"
            keys.add(key)
            brk, changed = break_raise(
                key=key,
                kind=Break.Kind.ORDER_WITHOUT_HOLD,
                asset_id=None,
                amount=Decimal(0),
                description=(
                    f"the engine listed order {order_id}{f' ({operator})' if operator else ''} as open at {at} "
                    "with no open prefunding hold: an order in the shared book without verified prefunding"
                ),
                actor=actor,
                at=now,
            )
            if changed:
                result.breaks.append(brk.id)
        # a difference a newer list no longer shows is gone
        stale = Break.objects.filter(
            kind__in=[Break.Kind.HOLD_WITHOUT_ORDER, Break.Kind.ORDER_WITHOUT_HOLD],
            status__in=Break.UNRESOLVED,
            opened_at__lte=snapshot.as_of,
        ).exclude(key__in=keys)
        for key in stale.values_list("key", flat=True):
            closed = break_close_if_open(
                key=key, note=f"not a difference in the open-orders list at {at}", actor=actor, at=now
            )
            if closed is not None:
                result.closed.append(closed.id)
        overflow = sum(
            max(0, n - MAX_BREAKS_PER_LIST) for n in (result.holds_without_order, result.orders_without_hold)
        )
        if result.breaks or overflow:
            alert_raise(
                kind="prefunding_open_orders",
                message=(
                    f"open orders at {at}: {result.holds_without_order} hold(s) without an order, "
                    f"{result.orders_without_hold} order(s) without a hold"
                    + (
                        f" ({overflow} beyond the first {MAX_BREAKS_PER_LIST} of a kind have no break of their own)"
                        if overflow
                        else ""
                    )
                ),
                details=result.as_json(),
                at=now,
            )
        open_orders_reconciled(snapshot_id=snapshot.id, result=result.as_json(), actor=actor, now=now)
    return result


def open_orders_reconcile_pending(*, now: datetime, actor: str = ACTOR) -> list[OpenOrdersResult]:
    """Every list not reconciled yet, oldest first."""
    ids = OpenOrdersSnapshot.objects.filter(status=OpenOrdersSnapshot.Status.RECEIVED).order_by("id")
    return [open_orders_reconcile(snapshot_id=i, now=now, actor=actor) for i in ids.values_list("id", flat=True)]
