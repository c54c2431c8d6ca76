"""Reserving pre-trade checks (DESIGN section 5): the check that makes the
cap binding. A reservation's value counts against the cap and the
counterparty's limit until a trade names it or it expires.

Every reserving check takes the cap row's lock first, so reserving checks
queue behind each other and each one reads the reservations committed
before it: two checks near the cap can never both pass. The advisory check
(no ``reserve``) takes no lock and stays one read."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction

from controls.money import as_str, hkd
from controls.services.audit import audit_record
from settlement.models import ExposureReservation
from settlement.selectors.exposure import exposure_inputs
from settlement.selectors.exposure_check import CheckResult, check_judge, check_parse

from .trade_parsing import ParsedTrade


def exposure_reserve(
    *, counterparty: object, asset: object, amount: object, account: object, actor: str, as_of: datetime
) -> CheckResult:
    """The pre-trade check, and when it allows, a reservation of what it adds
    (``reservation_id`` and ``expires_at`` in the result). One short transaction."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM settlement_capconfig FOR UPDATE")
        inputs = exposure_inputs(as_of=as_of)
        request = check_parse(inputs, counterparty=counterparty, asset=asset, amount=amount, account=account)
        result = check_judge(inputs, request, as_of=as_of)
        if not result.allowed:
            return result
        assert result.added_hkd is not None
        reservation = ExposureReservation.objects.create(
            counterparty_id=request.operator.id,
            asset_id=request.asset.id,
            amount=request.quantity,
            amount_hkd=result.added_hkd,
            account=request.account or "",
            created_at=as_of,
            expires_at=as_of + timedelta(seconds=settings.EXPOSURE_RESERVATION_TTL_SECONDS),
            actor=actor,
        )
        audit_record(
            actor=actor,
            action="exposure.reserved",
            object_type="ExposureReservation",
            object_id=str(reservation.reservation_id),
            after={
                "counterparty": request.operator.code,
                "asset": request.asset.code,
                "amount": as_str(request.quantity),
                "amount_hkd": as_str(result.added_hkd),
                "expires_at": reservation.expires_at.isoformat(),
            },
            at=as_of,
        )
        result.reservation_id = str(reservation.reservation_id)
        result.expires_at = reservation.expires_at
        result.headroom_hkd = hkd(max(result.headroom_hkd - result.added_hkd, Decimal(0)))
        return result


_CONSUME_SQL = """
UPDATE settlement_exposurereservation r
   SET status = 'consumed', trade_id = named.trade_id, consumed_at = %s
  FROM unnest(%s::uuid[], %s::bigint[], %s::bigint[]) AS named(reservation_id, trade_id, counterparty_id)
 WHERE r.reservation_id = named.reservation_id
   AND r.counterparty_id = named.counterparty_id
   AND r.status = 'reserved'
RETURNING r.reservation_id::text
"""


def reservations_consume(*, trades: list[ParsedTrade], ids: dict[str, int], now: datetime) -> list[str]:
    """The reservations the accepted trades name stop counting: the trade's
    own obligations now carry the exposure. One statement for the batch. A
    reservation is consumed once, by the first trade that names it, and only
    by a trade with the counterparty it was taken for; a name that matches
    nothing open (unknown, consumed, another counterparty's) changes nothing:
    the trade executed and is kept either way."""
    first: dict[str, tuple[int, int]] = {}  # reservation id -> (trade pk, counterparty id), in trade order
    for t in trades:
        if t.is_cross:
            for reservation_id in (t.buy_reservation_id, t.sell_reservation_id):
                if reservation_id:
                    first.setdefault(reservation_id, (ids[t.trade_id], t.counterparty.id))
    if not first:
        return []
    unique = [(r, trade_pk, cp) for r, (trade_pk, cp) in first.items()]
    with connection.cursor() as cursor:
        cursor.execute(
            _CONSUME_SQL,
            [now, [r[0] for r in unique], [r[1] for r in unique], [r[2] for r in unique]],
        )
        return sorted(row[0] for row in cursor.fetchall())
