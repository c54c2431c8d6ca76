"""Holds: placing them (one or a batch of up to 1,000, each item judged on
its own), amending them down or later, releasing them, and sweeping the
expired ones (DESIGN section 6a).

A hold is a pending debit on its client's balance: ``held`` grows by its
amount in the transaction that checks ``available`` on the locked balance
row, so two holds near the limit can never both pass (pending holds count
against available: Blnk's bug #181 is the lesson). Idempotent by (operator,
order_id) with a content hash: the same content again answers the hold's
current state, other content is a conflict. Placing is set-based: a batch is
a handful of statements whatever its size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction

from controls.exceptions import Conflict, DomainError, InvalidInput, NotFound
from controls.money import as_str, parse_decimal
from controls.services.audit import audit_record
from controls.timestamps import parse_instant
from registry.selectors import registry_load
from settlement.models import HoldEvent, PrefundingCover, PrefundingHold
from settlement.selectors.prefunding import amount_text, attestation_max_age, availables, hold_as_json, instant_text

from .ledger import OPEN, Key, balances_apply, balances_lock, balances_lock_ids, deltas, events_insert, holds_close
from .parsing import HoldRequest, hold_parse, order_id_of

CREATED, DUPLICATE = "created", "duplicate"


@dataclass(slots=True)
class HoldResult:
    index: int
    order_id: str
    outcome: str  # created | duplicate | refused
    status_code: int
    body: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        head = {"index": self.index, "order_id": self.order_id}
        if self.outcome == "refused":
            return {**head, **self.body}
        return {**head, "result": self.outcome, **self.body}


def _refused(index: int, order_id: str, error: DomainError, **extra) -> HoldResult:
    body = {"code": error.code, "message": error.message}
    if error.field:
        body["field"] = error.field
    body.update(extra)
    return HoldResult(index, order_id, "refused", error.status, body)


def _refusal(request: HoldRequest, code: str, message: str, **extra) -> HoldResult:
    return _refused(request.index, request.order_id, Conflict(code, message), **extra)


# --- placing -------------------------------------------------------------------------------------


def holds_place(*, items: list, actor: str, now: datetime) -> list[HoldResult]:
    """Place each item's hold, or say why not. One transaction for all."""
    registry = registry_load()
    results: dict[int, HoldResult] = {}
    requests: list[HoldRequest] = []
    for index, item in enumerate(items):
        try:
            requests.append(hold_parse(item, index=index, registry=registry))
        except InvalidInput as error:
            results[index] = _refused(index, order_id_of(item), error)
    twins: list[tuple[HoldRequest, HoldRequest]] = []
    with transaction.atomic():
        fresh = _replays(requests, results, twins, now=now)
        fresh = _judge(fresh, results, now=now)
        created = _insert(fresh, results, actor=actor, now=now)
        for twin, first in twins:
            answer = results[first.index]
            if answer.outcome == "refused":
                results[twin.index] = HoldResult(twin.index, twin.order_id, "refused", answer.status_code, answer.body)
            else:
                results[twin.index] = HoldResult(twin.index, twin.order_id, DUPLICATE, 200, answer.body)
        if created or any(r.outcome == "refused" for r in results.values()):
            audit_record(
                actor=actor,
                action="prefunding.holds_placed",
                object_type="PrefundingHold",
                object_id=created[0] if len(created) == 1 else "",
                after={
                    "items": len(items),
                    "created": created,
                    "refused": [[r.index, r.body.get("code")] for r in results.values() if r.outcome == "refused"],
                },
                at=now,
            )
    return [results[i] for i in range(len(items))]


_EXISTING_SQL = """
SELECT h.id, h.order_id, h.account, h.amount, h.consumed, h.remaining, h.status, h.expires_at, h.created_at,
       h.operator_id, h.asset_id, h.balance_id, h.content_hash
FROM settlement_prefundinghold h
JOIN unnest(%s::bigint[], %s::text[]) AS k(operator_id, order_id)
  ON h.operator_id = k.operator_id AND h.order_id = k.order_id
"""


def _existing(pairs: list[tuple[int, str]]) -> dict[tuple[int, str], PrefundingHold]:
    if not pairs:
        return {}
    holds = PrefundingHold.objects.raw(_EXISTING_SQL, [[p[0] for p in pairs], [p[1] for p in pairs]])
    return {(h.operator_id, h.order_id): h for h in holds}


def _replays(
    requests: list[HoldRequest], results: dict[int, HoldResult], twins: list[tuple[HoldRequest, HoldRequest]], *, now
) -> list[HoldRequest]:
    """Answer the orders already held (the same content: its current state;
    other content: a conflict). Returns the requests for new holds, the
    first of each order in this batch; a later twin with the same content
    goes to ``twins`` to get the first's answer."""
    existing = _existing(sorted({(r.operator.id, r.order_id) for r in requests}))
    fresh: list[HoldRequest] = []
    first: dict[tuple[int, str], HoldRequest] = {}
    known = []
    for request in requests:
        pair = (request.operator.id, request.order_id)
        hold = existing.get(pair)
        if hold is not None:
            known.append((request, hold))
        elif pair in first:
            if first[pair].content_hash != request.content_hash:
                results[request.index] = _refusal(
                    request,
                    "conflict",
                    f"order {request.order_id} appears earlier in this request (item {first[pair].index}) "
                    "with other content",
                )
            else:
                twins.append((request, first[pair]))
        else:
            first[pair] = request
            fresh.append(request)
    _answer_known(known, results, now=now)
    return fresh


def _answer_known(known: list[tuple[HoldRequest, PrefundingHold]], results: dict[int, HoldResult], *, now) -> None:
    available = availables(sorted({hold.balance_id for _, hold in known}), now=now)
    for request, hold in known:
        if hold.content_hash != request.content_hash:
            results[request.index] = _refusal(
                request,
                "conflict",
                f"order {request.order_id} of {request.operator.code} is already held with other content",
            )
            continue
        body = hold_as_json(
            hold,
            operator=request.operator.code,
            asset=request.asset.code,
            scale=request.asset.scale,
            available=available.get(hold.balance_id),
            now=now,
        )
        results[request.index] = HoldResult(request.index, request.order_id, DUPLICATE, 200, body)


def _operator_refusal(request: HoldRequest) -> HoldResult | None:
    operator = request.operator
    if operator.status != "active":
        return _refusal(request, f"counterparty_{operator.status}", f"operator {operator.code} is {operator.status}")
    if operator.problems:
        return _refusal(
            request,
            "counterparty_ineligible",
            f"operator {operator.code} is not eligible: " + "; ".join(operator.problems),
        )
    return None


def _expiry(request: HoldRequest, *, now: datetime) -> datetime:
    longest = now + timedelta(seconds=settings.PREFUNDING_HOLD_MAX_TTL_SECONDS)
    if request.expires_given is None:
        return min(now + timedelta(seconds=settings.PREFUNDING_HOLD_DEFAULT_TTL_SECONDS), longest)
    if request.expires_given <= now:
        raise InvalidInput("invalid_field", "expires_at must be in the future", field="expires_at")
    if request.expires_given > longest:
        raise InvalidInput(
            "invalid_field",
            f"expires_at may be at most {settings.PREFUNDING_HOLD_MAX_TTL_SECONDS} s from now ({longest.isoformat()})",
            field="expires_at",
        )
    return request.expires_given


def _freezes(operator_ids: list[int]) -> list[tuple[int, int, str, int | None]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, operator_id, account, asset_id FROM settlement_prefundingfreeze "
            "WHERE status = 'active' AND operator_id = ANY(%s) ORDER BY id",
            [operator_ids],
        )
        return cursor.fetchall()


def _covers(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[str, datetime | None, str]]:
    """(state, attested_at, rail kind) per (operator, asset) as last evaluated."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.operator_id, c.asset_id, c.state, c.attested_at, c.reason FROM settlement_prefundingcover c "
            "JOIN unnest(%s::bigint[], %s::bigint[]) AS k(operator_id, asset_id) "
            "ON c.operator_id = k.operator_id AND c.asset_id = k.asset_id",
            [[p[0] for p in pairs], [p[1] for p in pairs]],
        )
        return {(r[0], r[1]): (r[2], r[3], r[4]) for r in cursor.fetchall()}


def _rail_kinds(asset_ids: list[int]) -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.id, r.kind FROM registry_asset a JOIN registry_rail r ON r.id = a.rail_id WHERE a.id = ANY(%s)",
            [asset_ids],
        )
        return dict(cursor.fetchall())


def _cover_refusal(request: HoldRequest, cover, rail_kind: str, *, now: datetime) -> HoldResult | None:
    """Fail closed: no attestation, an old one, or a breach refuses the hold."""
    where = f"{request.operator.code} {request.asset.code}"
    if cover is None or cover[1] is None:
        return _refusal(
            request, "attestation_stale", f"no designated custodian has attested {where} (prefunding cover unverified)"
        )
    state, attested_at, reason = cover
    age, limit = now - attested_at, attestation_max_age(rail_kind)
    if age > limit:
        return _refusal(
            request,
            "attestation_stale",
            f"the custodian attestation of {where} is {int(age.total_seconds())} s old; at most "
            f"{int(limit.total_seconds())} s allowed",
        )
    if state == PrefundingCover.State.BREACH:
        return _refusal(request, "cover_breach", f"the designated custodian does not cover {where}: {reason}")
    return None


def _judge(fresh: list[HoldRequest], results: dict[int, HoldResult], *, now: datetime) -> list[HoldRequest]:
    """Everything but the balance: operator status, expiry bounds, freezes,
    cover. Then the balances, locked, in item order."""
    if not fresh:
        return []
    freezes = _freezes(sorted({r.operator.id for r in fresh}))
    pairs = sorted({(r.operator.id, r.asset.id) for r in fresh})
    covers = _covers(pairs)
    kinds = _rail_kinds(sorted({p[1] for p in pairs}))
    passed = []
    for request in fresh:
        refusal = _operator_refusal(request)
        if refusal is None:
            try:
                request.expires_given = _expiry(request, now=now)
            except InvalidInput as error:
                refusal = _refused(request.index, request.order_id, error)
        if refusal is None:
            freeze = next(
                (
                    f
                    for f in freezes
                    if f[1] == request.operator.id
                    and f[2] in ("", request.account)
                    and f[3] in (None, request.asset.id)
                ),
                None,
            )
            if freeze is not None:
                refusal = _refusal(
                    request,
                    "account_frozen",
                    f"prefunding for {request.operator.code} {request.account} {request.asset.code} is frozen "
                    f"(freeze {freeze[0]})",
                )
        if refusal is None:
            refusal = _cover_refusal(
                request, covers.get((request.operator.id, request.asset.id)), kinds[request.asset.id], now=now
            )
        if refusal is not None:
            results[request.index] = refusal
        else:
            passed.append(request)
    return _within_available(passed, results, now=now)


def _within_available(
    requests: list[HoldRequest], results: dict[int, HoldResult], *, now: datetime
) -> list[HoldRequest]:
    """Lock the balances and take each request, in item order, while its
    balance's available covers it. Expired holds in the way are swept first
    (only when something is short: an expired hold matters only then)."""
    if not requests:
        return []
    balances = balances_lock({r.key for r in requests})

    def take() -> tuple[list[HoldRequest], list[HoldRequest]]:
        left = {key: balance.available for key, balance in balances.items()}
        taken, short = [], []
        for request in requests:
            available = left.get(request.key)
            if available is None or available < request.amount:
                request.available_after = available or Decimal(0)  # what it found: the refusal says so
                short.append(request)
                continue
            left[request.key] = available - request.amount
            request.available_after = left[request.key]
            taken.append(request)
        return taken, short

    taken, short = take()
    if short:
        lapsed = [balances[r.key].id for r in short if r.key in balances]
        if lapsed:
            closed = holds_close(
                where="balance_id = ANY(%s) AND expires_at <= %s",
                params=[sorted(set(lapsed)), now],
                kind=HoldEvent.Kind.EXPIRED,
                as_of=now,
                actor="prefunding:expiry",
                skip_locked=True,
            )
            if closed:
                balances = balances_lock({r.key for r in requests})  # re-read what the expiry gave back
                taken, short = take()
    for request in short:
        available = request.available_after
        results[request.index] = _refusal(
            request,
            "insufficient_prefunding",
            f"{request.operator.code} {request.account} has {amount_text(available, request.asset.scale)} "
            f"{request.asset.code} available; the order needs {amount_text(request.amount, request.asset.scale)}",
            available=amount_text(available, request.asset.scale),
        )
    for request in taken:
        request.balance_id = balances[request.key].id
    return taken


_INSERT_SQL = """
WITH input AS (
    SELECT * FROM unnest(%(operators)s::bigint[], %(orders)s::text[], %(accounts)s::text[], %(assets)s::bigint[],
                         %(balances)s::bigint[], %(amounts)s::numeric[], %(expiries)s::timestamptz[], %(hashes)s::text[])
             AS t(operator_id, order_id, account, asset_id, balance_id, amount, expires_at, content_hash)
),
ins AS (
    INSERT INTO settlement_prefundinghold (operator_id, order_id, account, asset_id, balance_id, amount, consumed,
                                           remaining, status, expires_at, created_at, updated_at, content_hash, created_by)
    SELECT operator_id, order_id, account, asset_id, balance_id, amount, 0, amount, 'held', expires_at,
           %(now)s, %(now)s, content_hash, %(actor)s
    FROM input ORDER BY operator_id, order_id
    ON CONFLICT (operator_id, order_id) DO NOTHING
    RETURNING id, operator_id, order_id, balance_id, amount, expires_at
),
events AS (
    INSERT INTO settlement_holdevent (hold_id, kind, amount, remaining, expires_at, trade_id, at, actor)
    SELECT id, 'created', amount, amount, expires_at, NULL, %(now)s, %(actor)s FROM ins
),
moved AS (
    UPDATE settlement_prefundingbalance b SET held = b.held + s.amount, updated_at = %(now)s
    FROM (SELECT balance_id, sum(amount) AS amount FROM ins GROUP BY balance_id) s
    WHERE b.id = s.balance_id
)
SELECT id, operator_id, order_id FROM ins
"""


def _insert(fresh: list[HoldRequest], results: dict[int, HoldResult], *, actor: str, now: datetime) -> list:
    """Insert the holds, their events and the balances' new held in one
    statement. An order another request stored meanwhile is answered as a
    replay or a conflict, and moves nothing here."""
    if fresh:
        params = {
            "operators": [r.operator.id for r in fresh],
            "orders": [r.order_id for r in fresh],
            "accounts": [r.account for r in fresh],
            "assets": [r.asset.id for r in fresh],
            "balances": [r.balance_id for r in fresh],
            "amounts": [r.amount for r in fresh],
            "expiries": [r.expires_given for r in fresh],
            "hashes": [r.content_hash for r in fresh],
            "now": now,
            "actor": actor,
        }
        with connection.cursor() as cursor:
            cursor.execute(_INSERT_SQL, params)
            ids = {(operator_id, order_id): hold_id for hold_id, operator_id, order_id in cursor.fetchall()}
    else:
        ids = {}
    created, lost = [], []
    for request in fresh:
        hold_id = ids.get((request.operator.id, request.order_id))
        if hold_id is None:
            lost.append(request)
            continue
        amount = amount_text(request.amount, request.asset.scale)
        body = {
            "hold_id": hold_id,
            "order_id": request.order_id,
            "operator": request.operator.code,
            "account": request.account,
            "asset": request.asset.code,
            "amount": amount,
            "consumed": amount_text(Decimal(0), request.asset.scale),
            "remaining": amount,
            "status": PrefundingHold.Status.HELD.value,
            "available_after": amount_text(request.available_after, request.asset.scale),
            "expires_at": instant_text(request.expires_given),
            "created_at": instant_text(now),
        }
        results[request.index] = HoldResult(request.index, request.order_id, CREATED, 201, body)
        created.append([hold_id, request.operator.code, request.order_id, as_str(request.amount)])
    if lost:  # a concurrent request stored these orders first
        _answer_known(
            [(r, h) for r in lost if (h := _existing([(r.operator.id, r.order_id)]).get((r.operator.id, r.order_id)))],
            results,
            now=now,
        )
    return created


# --- one hold: read, amend, release --------------------------------------------------------------


@dataclass(slots=True)
class _Located:
    hold: PrefundingHold
    operator: str
    asset: str
    scale: int


def _locate(*, operator: str, order_id: str, lock: bool) -> _Located:
    queryset = PrefundingHold.objects.select_related("operator", "asset")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    hold = queryset.filter(operator__code=operator, order_id=order_id).first()
    if hold is None:
        raise NotFound("not_found", f"no hold for order {order_id!r} of operator {operator!r}")
    return _Located(hold, hold.operator.code, hold.asset.code, hold.asset.scale)


def _as_json(found: _Located, *, now: datetime) -> dict:
    available = availables([found.hold.balance_id], now=now).get(found.hold.balance_id)
    return hold_as_json(
        found.hold, operator=found.operator, asset=found.asset, scale=found.scale, available=available, now=now
    )


def hold_get(*, operator: str, order_id: str, now: datetime) -> dict:
    """A hold's state, with expiry applied."""
    return _as_json(_locate(operator=operator, order_id=order_id, lock=False), now=now)


def _expire_if_due(found: _Located, *, now: datetime) -> bool:
    """Expiry is applied on every change: a hold past its time is expired
    first (its event, its balance), whatever the change was."""
    hold = found.hold
    if hold.status not in OPEN or hold.expires_at > now:
        return False
    holds_close(where="id = %s", params=[hold.id], kind=HoldEvent.Kind.EXPIRED, as_of=now, actor="prefunding:expiry")
    hold.refresh_from_db()
    return True


def hold_release(*, operator: str, order_id: str, actor: str, now: datetime) -> dict:
    """Release what remains. Releasing a closed hold changes nothing and
    answers its final state, however often it is called."""
    with transaction.atomic():
        found = _locate(operator=operator, order_id=order_id, lock=True)
        hold = found.hold
        if not _expire_if_due(found, now=now) and hold.status in OPEN:
            before = {"status": hold.status, "remaining": as_str(hold.remaining)}
            holds_close(where="id = %s", params=[hold.id], kind=HoldEvent.Kind.RELEASED, as_of=now, actor=actor)
            hold.refresh_from_db()
            audit_record(
                actor=actor,
                action="prefunding.hold_released",
                object_type="PrefundingHold",
                object_id=hold.id,
                before=before,
                after={"status": hold.status, "remaining": as_str(hold.remaining)},
                at=now,
            )
        return _as_json(found, now=now)


def hold_amend(
    *, operator: str, order_id: str, amount: object = None, expires_at: object = None, actor: str, now: datetime
) -> dict:
    """Amend an open hold: ``amount`` down only (the order got smaller; what
    it no longer needs goes back to available, and it may not go below what
    trades consumed), ``expires_at`` later only (up to the maximum time to
    live from its creation). The same values again change nothing."""
    if amount is None and expires_at is None:
        raise InvalidInput("missing_field", "give amount (down only) or expires_at (later only)", field="amount")
    with transaction.atomic():
        found = _locate(operator=operator, order_id=order_id, lock=True)
        hold = found.hold
        new_amount = hold.amount
        if amount is not None:
            new_amount = parse_decimal(amount, field="amount", scale=found.scale)
            if new_amount > hold.amount:
                raise InvalidInput(
                    "invalid_field",
                    f"amount may only go down: the hold is {amount_text(hold.amount, found.scale)}",
                    field="amount",
                )
            if new_amount < hold.consumed:
                raise InvalidInput(
                    "invalid_field",
                    f"amount may not go below what trades consumed ({amount_text(hold.consumed, found.scale)})",
                    field="amount",
                )
        new_expiry = hold.expires_at
        if expires_at is not None:
            new_expiry = parse_instant(expires_at, field="expires_at")
            longest = hold.created_at + timedelta(seconds=settings.PREFUNDING_HOLD_MAX_TTL_SECONDS)
            if new_expiry < hold.expires_at:
                raise InvalidInput("invalid_field", "expires_at may only move later", field="expires_at")
            if new_expiry > longest:
                raise InvalidInput(
                    "invalid_field",
                    f"expires_at may be at most {longest.isoformat()} (the maximum time to live from the hold's creation)",
                    field="expires_at",
                )
        if new_amount == hold.amount and new_expiry == hold.expires_at:
            return _as_json(found, now=now)  # nothing to change: a replay
        if _expire_if_due(found, now=now) or hold.status not in OPEN:
            raise Conflict("hold_closed", f"the hold of order {order_id} is {hold.status}: it cannot be amended")
        released = hold.amount - new_amount
        before = {
            "amount": as_str(hold.amount),
            "remaining": as_str(hold.remaining),
            "expires_at": hold.expires_at.isoformat(),
        }
        hold.amount, hold.remaining, hold.expires_at, hold.updated_at = (
            new_amount,
            hold.remaining - released,
            new_expiry,
            now,
        )
        fields = ["amount", "remaining", "expires_at", "updated_at"]
        if hold.remaining == 0:  # amended down to what trades already took
            hold.status, hold.closed_at = PrefundingHold.Status.CONSUMED, now
            fields += ["status", "closed_at"]
        hold.save(update_fields=fields)
        events_insert([(hold.id, HoldEvent.Kind.AMENDED, released, hold.remaining, new_expiry, None, now, actor)])
        if released:
            moved = deltas()
            moved[hold.balance_id][1] -= released
            balances_lock_ids([hold.balance_id])
            balances_apply(moved, now=now)
        audit_record(
            actor=actor,
            action="prefunding.hold_amended",
            object_type="PrefundingHold",
            object_id=hold.id,
            before=before,
            after={
                "amount": as_str(hold.amount),
                "remaining": as_str(hold.remaining),
                "expires_at": new_expiry.isoformat(),
            },
            at=now,
        )
        return _as_json(found, now=now)


# --- expiry --------------------------------------------------------------------------------------

SWEEP_LIMIT = 10_000


def holds_expire(*, as_of: datetime, actor: str, limit: int = SWEEP_LIMIT) -> int:
    """Expire the open holds past their time (at most ``limit`` a run; the
    next run takes the rest). Holds another transaction is changing are
    skipped, not waited for: expiry is applied on every read anyway."""
    with transaction.atomic():
        closed = holds_close(
            where="id IN (SELECT id FROM settlement_prefundinghold WHERE status = ANY(%s) AND expires_at <= %s "
            "ORDER BY id LIMIT %s)",
            params=[OPEN, as_of, limit],
            kind=HoldEvent.Kind.EXPIRED,
            as_of=as_of,
            actor=actor,
            skip_locked=True,
        )
        if closed:
            audit_record(
                actor=actor,
                action="prefunding.holds_expired",
                object_type="PrefundingHold",
                after={"holds": [hold_id for hold_id, _, _ in closed]},
                at=as_of,
            )
    return len(closed)


__all__ = ["HoldResult", "Key", "hold_amend", "hold_get", "hold_release", "holds_expire", "holds_place"]
