"""The outbound instruction outbox.

When an outbound leg becomes ``instructed`` (the cycle service does that in
``_batch_release``), home must send the asset. ``instructions_write`` finds
every instructed outbound leg without an instruction and writes one: asset,
amount, from (home's hot wallet or account on the rail), to (the
counterparty's registered wallet or account), a reference the counterparty
will see, and the deadline. A custodian integration (a later adapter) or
operations take them from here (admin export as CSV/JSON, or the API).
Unique per leg, so running it again writes nothing twice.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from controls.exceptions import Conflict, InvalidInput
from controls.services.audit import audit_record
from custody.models import Instruction
from custody.selectors import amount_str
from registry.models import BankAccount, Operator, Rail, Wallet
from settlement.models import Leg

ACTOR = "custody:outbox"


def instruction_reference(leg: Leg) -> str:
    """What the payment carries so the counterparty (and our matching) can
    tell which leg it settles."""
    return f"SOB-{leg.batch_id}-{leg.id}"


def _ends(leg: Leg) -> tuple[str, str, str]:
    rail = leg.asset.rail
    counterparty = leg.batch.counterparty
    problems = []
    if rail.kind == Rail.Kind.BANK:
        home_account = BankAccount.objects.filter(rail=rail, operator__role=Operator.Role.HOME).order_by("id").first()
        their_account = BankAccount.objects.filter(rail=rail, operator=counterparty).order_by("id").first()
        from_ref = home_account.number if home_account else ""
        to_ref = their_account.number if their_account else ""
        what = "bank account"
    else:
        home_wallets = Wallet.objects.filter(rail=rail, operator__role=Operator.Role.HOME)
        home_wallet = (
            home_wallets.filter(temperature=Wallet.Temperature.HOT).order_by("id").first()
            or home_wallets.order_by("id").first()
        )
        their_wallet = Wallet.objects.filter(rail=rail, operator=counterparty).order_by("id").first()
        from_ref = home_wallet.address if home_wallet else ""
        to_ref = their_wallet.address if their_wallet else ""
        what = "wallet"
    if not from_ref:
        problems.append(f"home has no {what} on rail {rail.code}")
    if not to_ref:
        problems.append(f"{counterparty.code} has no registered {what} on rail {rail.code}")
    return from_ref, to_ref, "; ".join(problems)


def instructions_write(*, as_of: datetime, actor: str = ACTOR) -> list[Instruction]:
    """An instruction for every instructed outbound leg that has none."""
    legs = (
        Leg.objects.filter(direction=Leg.Direction.OUTBOUND, status=Leg.Status.INSTRUCTED, instruction__isnull=True)
        .select_related("asset__rail", "batch__counterparty")
        .order_by("id")
    )
    written = []
    for leg in legs:
        from_ref, to_ref, problem = _ends(leg)
        try:
            with transaction.atomic():
                instruction = Instruction.objects.create(
                    leg=leg,
                    asset=leg.asset,
                    amount=leg.amount,
                    rail=leg.asset.rail,
                    from_ref=from_ref,
                    to_ref=to_ref,
                    counterparty=leg.batch.counterparty,
                    reference=instruction_reference(leg),
                    deadline=leg.deadline,
                    problem=problem,
                    created_at=as_of,
                )
                audit_record(
                    actor=actor,
                    action="instruction.written",
                    object_type="Instruction",
                    object_id=instruction.id,
                    after=instruction_as_json(instruction),
                    at=as_of,
                )
        except IntegrityError:
            continue  # another worker wrote it first: unique per leg
        written.append(instruction)
    return written


def instructions_take(*, ids: list[int], actor: str, now: datetime) -> list[Instruction]:
    """Mark instructions as taken (exported to the custodian or handled by
    operations). Taking a taken instruction is a conflict."""
    if not ids or not all(isinstance(i, int) for i in ids):
        raise InvalidInput("invalid_field", "ids must be a non-empty list of instruction ids", field="ids")
    with transaction.atomic():
        found = list(Instruction.objects.select_for_update().filter(pk__in=ids).order_by("id"))
        missing = sorted(set(ids) - {i.id for i in found})
        if missing:
            raise InvalidInput("not_found", f"no instruction {missing[0]}", field="ids")
        taken = [i.id for i in found if i.status == Instruction.Status.TAKEN]
        if taken:
            raise Conflict("instruction_taken", f"instruction {taken[0]} was taken already")
        for instruction in found:
            instruction.status, instruction.taken_at, instruction.taken_by = Instruction.Status.TAKEN, now, actor
            instruction.save(update_fields=["status", "taken_at", "taken_by"])
            audit_record(
                actor=actor,
                action="instruction.taken",
                object_type="Instruction",
                object_id=instruction.id,
                before={"status": Instruction.Status.NEW},
                after={"status": Instruction.Status.TAKEN},
                at=now,
            )
        return found


EXPORT_FIELDS = (
    "id",
    "reference",
    "leg",
    "counterparty",
    "rail",
    "asset",
    "amount",
    "from",
    "to",
    "deadline",
    "status",
    "problem",
    "created_at",
)


def instruction_as_json(instruction: Instruction) -> dict:
    return {
        "id": instruction.id,
        "reference": instruction.reference,
        "leg": instruction.leg_id,
        "counterparty": instruction.counterparty.code,
        "rail": instruction.rail.code,
        "asset": instruction.asset.code,
        "amount": amount_str(instruction.amount, instruction.asset),
        "from": instruction.from_ref,
        "to": instruction.to_ref,
        "deadline": instruction.deadline.isoformat(),
        "status": instruction.status,
        "problem": instruction.problem,
        "created_at": instruction.created_at.isoformat(),
    }
