"""Matching observed movements to legs, and the breaks for what does not match.

An inbound leg matches movements from the counterparty's registered wallets
or accounts (``Movement.counterparty``), of the leg's asset, that occurred
after the leg was instructed and sum exactly to the leg: one-to-one, or
several in the order they occurred (many-to-one). An outbound leg matches
home's own movements to the counterparty the same way. Movements a
counterparty told us about (``Delivery`` hints) are tried first; a hint never
confirms anything by itself.

Matched movements are linked to the leg. While any of them is only seen (not
final) the leg is ``confirming``; when all are final, it is confirmed with
the evidence. A reorg of a seen movement unlinks it and un-sees the leg (see
``chain``).

The modules, in the order a run uses them:

- ``matching``: the one-to-one pass, set-based (one SQL statement pairs legs
  and movements by asset, counterparty, direction and amount in time order;
  the links, the legs' new states and their audit events are written for all
  pairs at once), then the per-leg pass for what it leaves (hints,
  many-to-one), and confirming legs whose movements became final;
- ``escrow``: escrow legs locked by what reached their escrow custodian
  (an escrow batch's legs are never matched as deliveries to home);
- ``deliveries``: short and over deliveries (final movements that do not add
  up to an inbound leg);
- ``missing``: unmatched receipts and payments, and missing deliveries past
  the deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from custody.hooks import reconcile_finished
from settlement.models import Delivery

from .escrow import escrow_locks, escrow_payouts_seen
from .matching import ACTOR, MATCHABLE_LEG, finalise, match_leg, one_to_one_link, one_to_one_pairs, pending_link
from .missing import missing_deliveries, unmatched_movements


@dataclass
class ReconcileResult:
    confirmed: list[int] = field(default_factory=list)
    confirming: list[int] = field(default_factory=list)
    locked: list[int] = field(default_factory=list)  # escrow legs held at their custodian
    breaks: list[int] = field(default_factory=list)
    instructions: int = 0
    # seconds per phase, for the benchmark and the logs ("batches": releasing
    # and settling the batches the confirmed legs complete)
    timings: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "confirmed_legs": self.confirmed,
            "confirming_legs": self.confirming,
            "locked_legs": self.locked,
            "breaks_raised": self.breaks,
            "instructions_written": self.instructions,
        }


def reconcile_run(*, as_of: datetime, actor: str = ACTOR) -> ReconcileResult:
    """Match what can be matched, confirm what is final, raise the breaks,
    write the outbox. Idempotent: running it twice changes nothing more."""
    from custody.services.instructions import instructions_write

    result = ReconcileResult()
    clock = _Clock(result)
    escrow_locks(as_of=as_of, actor=actor, result=result)
    escrow_payouts_seen(as_of=as_of, actor=actor)
    clock("escrow")
    hinted = set(Delivery.objects.filter(leg__status__in=MATCHABLE_LEG).values_list("leg_id", flat=True))
    for leg_id in sorted(hinted):
        match_leg(leg_id=leg_id, as_of=as_of, actor=actor, result=result)
    clock("hinted")
    one_to_one_link(exclude_legs=hinted, as_of=as_of, actor=actor, result=result)
    clock("one_to_one")
    pending_link(exclude_legs=hinted, as_of=as_of, actor=actor, result=result)
    clock("many_to_one")
    finalise(as_of=as_of, actor=actor, result=result)
    clock("finalise")
    unmatched_movements(as_of=as_of, actor=actor, result=result)
    missing_deliveries(as_of=as_of, actor=actor, result=result)
    clock("breaks")
    result.instructions = len(instructions_write(as_of=as_of, actor=actor))
    clock("instructions")
    reconcile_finished.fire(as_of=as_of, actor=actor, result=result)
    clock("elsewhere")
    return result


class _Clock:
    """Seconds per phase into ``result.timings`` (a phase's batch work,
    already counted under "batches", is not counted twice)."""

    def __init__(self, result: ReconcileResult):
        self.result = result
        self.last = time.perf_counter()
        self.batches = 0.0

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        batches = self.result.timings.get("batches", 0.0)
        self.result.timings[phase] = now - self.last - (batches - self.batches)
        self.last, self.batches = now, batches


# the names the tests and the bench reach for
_one_to_one_pairs = one_to_one_pairs

__all__ = ["ReconcileResult", "one_to_one_pairs", "reconcile_run"]
