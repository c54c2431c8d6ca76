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
from django.db.models import Case, When

from controls.exceptions import Conflict, InvalidInput
from controls.services.alerts import alert_raise
from controls.services.audit import audit_record, audit_record_many
from custody.models import Instruction
from custody.selectors import amount_str
from registry.models import BankAccount, Operator, Rail, Wallet
from settlement.models import Leg

ACTOR = "custody:outbox"


def instruction_reference(leg: Leg, kind: str = Instruction.Kind.DELIVERY) -> str:
    """What the payment carries so the counterparty (and our matching) can
    tell which leg it settles; an escrow release or return says which."""
    suffix = {"release": "-REL", "return": "-RET"}.get(str(kind), "")
    return f"SOB-{leg.batch_id}-{leg.id}{suffix}"


def _holder(leg: Leg, whose: str) -> tuple[str, str]:
    """The wallet address or account number on the leg's rail of ``whose``:
    "home" (a hot wallet first), "counterparty" (its own, never an escrow
    holder) or "escrow" (the batch's escrow custodian's holding wallet or
    account); with a problem when there is none."""
    rail, batch = leg.asset.rail, leg.batch
    if rail.kind == Rail.Kind.BANK:
        accounts = BankAccount.objects.filter(rail=rail).order_by("id")
        own_accounts = accounts.filter(escrow_custodian__isnull=True)
        account = {
            "escrow": accounts.filter(escrow_custodian=batch.escrow_custodian_id).first,
            "home": own_accounts.filter(operator__role=Operator.Role.HOME).first,
            "counterparty": own_accounts.filter(operator=batch.counterparty_id).first,
        }[whose]()
        found, what = (account.number if account else ""), "bank account"
    else:
        wallets = Wallet.objects.filter(rail=rail).order_by("id")
        own_wallets = wallets.filter(escrow=False)
        hot_first = Case(When(temperature=Wallet.Temperature.HOT, then=0), default=1)
        wallet = {
            "escrow": wallets.filter(escrow=True, custodian=batch.escrow_custodian_id).first,
            "home": own_wallets.filter(operator__role=Operator.Role.HOME).order_by(hot_first, "id").first,
            "counterparty": own_wallets.filter(operator=batch.counterparty_id).first,
        }[whose]()
        found, what = (wallet.address if wallet else ""), "wallet"
    if found:
        return found, ""
    if whose == "escrow":
        return "", f"the escrow custodian of batch {batch.id} has no escrow {what} on rail {rail.code}"
    if whose == "home":
        return "", f"home has no {what} on rail {rail.code}"
    return "", f"{batch.counterparty.code} has no registered {what} on rail {rail.code}"


def _ends(leg: Leg, kind: str = Instruction.Kind.DELIVERY) -> tuple[str, str, str]:
    """From and to of an instruction: a delivery goes from home to the
    counterparty, or for an escrow batch to its escrow holder; a release
    from the escrow holder to the leg's new owner (home for an inbound leg,
    the counterparty for an outbound one); a return to the side that
    locked it."""
    inbound = leg.direction == Leg.Direction.INBOUND
    if kind == Instruction.Kind.DELIVERY:
        ends = ("home", "escrow" if leg.batch.dvp_policy == Operator.DvpPolicy.ESCROW else "counterparty")
    elif kind == Instruction.Kind.RELEASE:
        ends = ("escrow", "home" if inbound else "counterparty")
    else:
        ends = ("escrow", "counterparty" if inbound else "home")
    (from_ref, from_problem), (to_ref, to_problem) = (_holder(leg, ends[0]), _holder(leg, ends[1]))
    return from_ref, to_ref, "; ".join(p for p in (from_problem, to_problem) if p)


def _instruction_write(*, leg: Leg, kind: str, as_of: datetime, actor: str) -> Instruction | None:
    from_ref, to_ref, problem = _ends(leg, kind)
    try:
        with transaction.atomic():
            instruction = Instruction.objects.create(
                leg=leg,
                kind=kind,
                asset=leg.asset,
                amount=leg.amount,
                rail=leg.asset.rail,
                from_ref=from_ref,
                to_ref=to_ref,
                counterparty=leg.batch.counterparty,
                reference=instruction_reference(leg, kind),
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
        return None  # another worker wrote it first: unique per leg and kind
    return instruction


def instructions_write(*, as_of: datetime, actor: str = ACTOR) -> list[Instruction]:
    """A delivery instruction for every instructed outbound leg that has none."""
    legs = (
        Leg.objects.filter(direction=Leg.Direction.OUTBOUND, status=Leg.Status.INSTRUCTED)
        .exclude(instructions__kind=Instruction.Kind.DELIVERY)
        .select_related("asset__rail", "batch__counterparty")
        .order_by("id")
    )
    written = []
    for leg in legs:
        instruction = _instruction_write(leg=leg, kind=Instruction.Kind.DELIVERY, as_of=as_of, actor=actor)
        if instruction is not None:
            written.append(instruction)
    return written


def escrow_instructions_write(*, leg_ids: list[int], kind: str, as_of: datetime, actor: str) -> list[Instruction]:
    """Settlement released an escrow batch's legs (``release``) or failed a
    batch with legs locked (``return``), in its transaction: one instruction
    to the escrow custodian per leg (a batch has a leg per asset, so a
    handful), none written twice."""
    legs = Leg.objects.filter(pk__in=leg_ids).select_related("asset__rail", "batch__counterparty").order_by("id")
    written = []
    for leg in legs:
        instruction = _instruction_write(leg=leg, kind=kind, as_of=as_of, actor=actor)
        if instruction is not None:
            written.append(instruction)
    return written


def escrow_releases_write(*, leg_ids: list[int], as_of: datetime, actor: str) -> list[Instruction]:
    return escrow_instructions_write(leg_ids=leg_ids, kind=Instruction.Kind.RELEASE, as_of=as_of, actor=actor)


def escrow_returns_write(*, leg_ids: list[int], as_of: datetime, actor: str) -> list[Instruction]:
    return escrow_instructions_write(leg_ids=leg_ids, kind=Instruction.Kind.RETURN, as_of=as_of, actor=actor)


MAX_TAKE = 1000
# instruction ids are bigint primary keys
MAX_ID = 2**63 - 1


def _instruction_ids(raw: object) -> list[int]:
    """A non-empty list of instruction ids (JSON integers, not booleans)."""
    if (
        not isinstance(raw, list)
        or not raw
        or len(raw) > MAX_TAKE
        or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i <= MAX_ID for i in raw)
    ):
        raise InvalidInput(
            "invalid_field", f"ids must be a list of 1 to {MAX_TAKE} instruction ids (whole numbers)", field="ids"
        )
    return sorted(set(raw))


def instructions_take(*, ids: object, actor: str, now: datetime) -> list[Instruction]:
    """Mark instructions as taken (exported to the custodian or handled by
    operations). Only a ``new`` instruction can be taken: a taken one is a
    conflict, and so is one that is done or cancelled (its leg ended: it
    must not be sent). Checked under the rows' locks, all or nothing."""
    wanted = _instruction_ids(ids)
    with transaction.atomic():
        found = list(Instruction.objects.select_for_update().filter(pk__in=wanted).order_by("id"))
        missing = sorted(set(wanted) - {i.id for i in found})
        if missing:
            raise InvalidInput("not_found", f"no instruction {missing[0]}", field="ids")
        for instruction in found:
            if instruction.status == Instruction.Status.TAKEN:
                raise Conflict("instruction_taken", f"instruction {instruction.id} was taken already")
            if instruction.status != Instruction.Status.NEW:
                raise Conflict(
                    f"instruction_{instruction.status}",
                    f"instruction {instruction.id} is {instruction.status}: its leg ended, it must not be sent",
                )
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


def instructions_follow_legs(*, leg_ids: list[int], as_of: datetime, actor: str) -> list[int]:
    """Settlement ended these legs (hooks.legs_finished, in its transaction):
    the instruction of a confirmed leg is ``done``; of a failed or cancelled
    one ``cancelled``, so the outbox no longer lists it as due. A cancelled
    instruction that was already taken raises an alert: the custodian must
    be told not to send it (or the asset recovered). Reads only ids and
    statuses, however many legs ended at once; returns the ids closed."""
    rows = list(
        Instruction.objects.select_for_update(of=("self",))
        .filter(leg_id__any=leg_ids, status__in=Instruction.OPEN, kind=Instruction.Kind.DELIVERY)
        .order_by("id")
        .values_list("id", "status", "leg__status")
    )
    closing: dict[str, list[int]] = {Instruction.Status.DONE: [], Instruction.Status.CANCELLED: []}
    events: list[dict] = []
    recalls: dict[int, str] = {}
    for instruction_id, before, leg_status in rows:
        if leg_status in (Leg.Status.CONFIRMED, Leg.Status.LOCKED):
            status = Instruction.Status.DONE  # delivered (to the escrow holder, for a locked leg)
        elif leg_status in (Leg.Status.FAILED, Leg.Status.CANCELLED):
            status = Instruction.Status.CANCELLED
        else:
            continue
        closing[status].append(instruction_id)
        events.append(
            {
                "actor": actor,
                "action": f"instruction.{status}",
                "object_type": "Instruction",
                "object_id": instruction_id,
                "before": {"status": before},
                "after": {"status": status, "leg_status": leg_status},
                "at": as_of,
            }
        )
        if status == Instruction.Status.CANCELLED and before == Instruction.Status.TAKEN:
            recalls[instruction_id] = leg_status
    # one UPDATE per new status and one INSERT of the audit events, however
    # many legs the matcher confirmed at once (the rows are locked above)
    for new_status, ids in closing.items():
        if ids:
            Instruction.objects.filter(pk__any=ids).update(status=new_status, closed_at=as_of)
    audit_record_many(events)
    for instruction in Instruction.objects.filter(pk__in=list(recalls)).select_related("asset", "counterparty"):
        leg_status = recalls[instruction.id]
        alert_raise(
            kind="instruction_recall",
            operator_code=instruction.counterparty.code,
            message=(
                f"instruction {instruction.reference} ({amount_str(instruction.amount, instruction.asset)} "
                f"{instruction.asset.code} to {instruction.to_ref or '?'}) was taken, but its leg is {leg_status}: "
                "stop the payment, or recover the asset if it was sent"
            ),
            details={"instruction": instruction.id, "leg": instruction.leg_id, "leg_status": leg_status},
            at=as_of,
        )
    return sorted(i for ids in closing.values() for i in ids)


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
    "taken_at",
    "closed_at",
    "kind",
)


def instruction_as_json(instruction: Instruction) -> dict:
    return {
        "id": instruction.id,
        "kind": instruction.kind,
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
        "taken_at": instruction.taken_at.isoformat() if instruction.taken_at else None,
        "closed_at": instruction.closed_at.isoformat() if instruction.closed_at else None,
    }
