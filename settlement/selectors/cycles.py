"""Cycles, batches and legs as the API shows them."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch, QuerySet

from controls.money import at_scale
from registry.models import Operator
from settlement.models import CarriedCredit, Leg


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def leg_as_json(leg) -> dict:
    return {
        "id": leg.id,
        "asset": leg.asset.code,
        "direction": leg.direction,
        "amount": format(at_scale(leg.amount, leg.asset.scale), "f"),
        "status": leg.status,
        "deadline": _iso(leg.deadline),
        "value_date": leg.value_date.isoformat(),
        "lead_time_minutes": leg.lead_time_minutes,
        "instructed_at": _iso(leg.instructed_at),
        "confirmed_at": _iso(leg.confirmed_at),
        "evidence": leg.evidence,
        "failed_by": leg.failed_by or None,
        "fail_reason": leg.fail_reason or None,
    }


def batches_for_listing(batches: QuerySet) -> QuerySet:
    """Batches with what ``batch_as_json`` shows loaded in a fixed number of
    queries, however many batches a page holds."""
    return batches.select_related("counterparty", "escrow_custodian").prefetch_related(
        Prefetch(
            "legs", Leg.objects.select_related("asset").order_by("direction", "asset__code"), to_attr="legs_shown"
        ),
        Prefetch(
            "credits_applied", CarriedCredit.objects.select_related("asset").order_by("id"), to_attr="credits_shown"
        ),
    )


def batch_as_json(batch, *, legs: bool = True) -> dict:
    credits = getattr(batch, "credits_shown", None)
    if credits is None:
        credits = batch.credits_applied.select_related("asset").order_by("id")
    body = {
        "id": batch.id,
        "counterparty": batch.counterparty.code,
        "dvp_policy": batch.dvp_policy,
        "escrow_custodian": batch.escrow_custodian.name if batch.escrow_custodian else None,
        "status": batch.status,
        "settled_by_netting": batch.settled_by_netting,
        "waiting_reason": batch.waiting_reason or None,
        "failed_by": batch.failed_by or None,
        "fail_reason": batch.fail_reason or None,
        "fail_detail": batch.fail_detail or None,
        "obligations": batch.obligations_taken,
        "settled_at": _iso(batch.settled_at),
        "failed_at": _iso(batch.failed_at),
        "held": batch.held_at is not None,
        "held_at": _iso(batch.held_at),
        "hold_reason": batch.hold_reason or None,
        "affirmation": batch.affirmation,
        "affirmation_due": _iso(batch.affirmation_due),
        "affirmed_at": _iso(batch.affirmed_at),
        "dispute_reason": batch.dispute_reason or None,
        "credits_netted": [
            {
                "credit": c.id,
                "asset": c.asset.code,
                "direction": c.direction,
                "amount": format(at_scale(c.amount, c.asset.scale), "f"),
            }
            for c in credits
        ],
    }
    if legs:
        shown = getattr(batch, "legs_shown", None)
        if shown is None:
            shown = batch.legs.select_related("asset").order_by("direction", "asset__code")
        body["legs"] = [leg_as_json(leg) for leg in shown]
    return body


def cycle_as_json(cycle, *, detail: bool = False, counterparty: Operator | None = None) -> dict:
    """A cycle with its batches. For a ``counterparty`` (an overseas
    operator's key) only its own batches, its own obligations in
    ``obligations_taken``, and nothing of the others or of home's staff:
    ``requested_by`` and ``obligations_deferred`` are null."""
    batches = cycle.batches.select_related("counterparty", "escrow_custodian").order_by("counterparty__code")
    if counterparty is not None:
        batches = batches.filter(counterparty=counterparty)
    shown = [batch_as_json(b, legs=detail) for b in batches]
    own = counterparty is not None
    return {
        "id": cycle.id,
        "kind": cycle.kind,
        "as_of": _iso(cycle.as_of),
        "status": cycle.status,
        "requested_by": None if own else cycle.requested_by,
        "obligations_taken": sum(b["obligations"] for b in shown) if own else cycle.obligations_taken,
        "obligations_deferred": None if own else cycle.obligations_deferred,
        "finished_at": _iso(cycle.finished_at),
        "batches": shown,
    }
