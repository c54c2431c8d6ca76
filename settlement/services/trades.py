"""Trade intake from the matching engine (DESIGN section 6).

Each item is judged on its own. Valid items are stored with their
obligations and move the exposure positions in the same transaction;
rejected items go to the exceptions queue with their raw payload. The whole
request is one transaction: a failure leaves nothing behind.

Idempotency is by ``trade_id`` with a content hash: the same content again
is a duplicate, other content under a known id is a conflict. Concurrent
requests with overlapping ids are safe: the insert is ``ON CONFLICT DO
NOTHING`` in trade-id order (so two requests never wait on each other in a
cycle), and a row another request won is judged against what it stored.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from controls.exceptions import InvalidInput
from controls.services.audit import audit_record
from controls.validation import storable
from registry.models import Account, Asset
from registry.selectors import Registry, registry_load
from settlement.models import ComplianceException, Obligation, TradeException, TradeIngest
from settlement.selectors.exposure import Exposure, exposure_get

from .cycle_requests import cycle_request_if_settling
from .positions import PositionDelta, positions_apply
from .prefunding import ConsumeResult, prefunding_consume
from .reservations import reservations_consume
from .trade_parsing import ParsedTrade, Rejection, trade_id_of, trade_parse

logger = logging.getLogger(__name__)

INBOUND = Obligation.Direction.INBOUND
OUTBOUND = Obligation.Direction.OUTBOUND


@dataclass(slots=True)
class IngestResult:
    ingest_id: int
    accepted: int
    duplicates: int
    rejected: list[Rejection] = field(default_factory=list)
    accepted_ids: list[str] = field(default_factory=list)
    exposure: Exposure | None = None
    prefunding: ConsumeResult = field(default_factory=ConsumeResult)

    def as_json(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [r.as_json() for r in self.rejected],
            "exposure": self.exposure.as_json() if self.exposure else None,
            "prefunding": self.prefunding.as_json(),
        }


# --- the service -----------------------------------------------------------------


def trades_ingest(*, items: list, actor: str, now: datetime | None = None, text_checked: bool = False) -> IngestResult:
    """Store a batch of executed trades from the matching engine.
    ``text_checked``: the caller's parser knows every string in ``items``
    can be stored (no NUL, no lone surrogate), so items are not walked for it."""
    now = now or timezone.now()
    registry = registry_load()
    marks = dict(Asset.objects.values_list("id", "mark_hkd"))
    rejected: list[Rejection] = []
    duplicates = 0
    parsed: dict[str, ParsedTrade] = {}
    for index, item in enumerate(items):
        try:
            trade = trade_parse(item, index=index, registry=registry, now=now, marks=marks, text_checked=text_checked)
        except InvalidInput as error:
            # kept in the exceptions queue as it came, as far as it can be stored
            rejected.append(
                Rejection(
                    index,
                    trade_id_of(item),
                    error.code,
                    storable(error.message),
                    storable(error.field),
                    storable(item),
                )
            )
            continue
        earlier = parsed.get(trade.trade_id)
        if earlier is None:
            parsed[trade.trade_id] = trade
        elif earlier.content_hash == trade.content_hash:
            duplicates += 1
        else:
            rejected.append(_conflict(trade, f"item {earlier.index} of this request"))

    with transaction.atomic():
        ingest = TradeIngest.objects.create(received_at=now, actor=actor, items=len(items))
        fresh = sorted(parsed.values(), key=lambda t: t.trade_id)
        ids = _insert_trades(fresh, ingest_id=ingest.id, now=now)
        accepted = [t for t in fresh if t.trade_id in ids]
        known = [t for t in fresh if t.trade_id not in ids]
        if known:  # ids stored before, by an earlier or a concurrent request
            stored = _stored_hashes([t.trade_id for t in known])
            for trade in known:
                if stored.get(trade.trade_id) == trade.content_hash:
                    duplicates += 1
                else:
                    rejected.append(_conflict(trade, "an earlier request"))
        _insert_obligations(accepted, ids, now=now)
        _record_compliance(accepted, ids, registry=registry, now=now)
        # para 10: the orders' holds, in this same transaction (never a refusal)
        prefunding = prefunding_consume(trades=accepted, ids=ids, actor=actor, now=now)
        # section 5: reservations the trades name stop counting against the cap
        reservations = reservations_consume(trades=accepted, ids=ids, now=now)
        rejected.sort(key=lambda r: r.index)
        TradeException.objects.bulk_create(
            [
                TradeException(
                    ingest=ingest,
                    index=r.index,
                    trade_id=r.trade_id,
                    code=r.code,
                    message=r.message,
                    field=(r.field or "")[:100],
                    payload=r.payload,
                    received_at=now,
                )
                for r in rejected
            ],
            batch_size=1000,
        )
        ingest.accepted, ingest.duplicates, ingest.rejected = len(accepted), duplicates, len(rejected)
        ingest.save(update_fields=["accepted", "duplicates", "rejected"])
        accepted_ids = [t.trade_id for t in accepted]
        audit_record(
            actor=actor,
            action="trades.ingested",
            object_type="TradeIngest",
            object_id=ingest.id,
            after={
                "items": len(items),
                "accepted": len(accepted),
                "duplicates": duplicates,
                "rejected": [{"index": r.index, "trade_id": r.trade_id, "code": r.code} for r in rejected],
                "trade_ids": accepted_ids,
                "reservations_consumed": reservations,
            },
            at=now,
        )
        # the running positions last: their rows are every request's, locked
        # from here to the commit, so concurrent intakes wait on each other
        # for this much only
        positions_apply(deltas=_deltas(accepted))
        exposure = exposure_get(as_of=now)
        cycle_request_if_settling(exposure=exposure, actor=actor)
    return IngestResult(ingest.id, len(accepted), duplicates, rejected, accepted_ids, exposure, prefunding)


def _conflict(trade: ParsedTrade, where: str) -> Rejection:
    return Rejection(
        trade.index,
        trade.trade_id,
        "conflict",
        f"trade_id {trade.trade_id} was already received from {where} with different content",
        "trade_id",
        trade.payload,
    )


def _stored_hashes(trade_ids: list[str]) -> dict[str, str]:
    with connection.cursor() as cursor:  # one array parameter, not thousands of placeholders
        cursor.execute("SELECT trade_id, content_hash FROM settlement_trade WHERE trade_id = ANY(%s)", [trade_ids])
        return dict(cursor.fetchall())


_TRADE_COLUMNS = (
    "trade_id",
    "base_asset_id",
    "quote_asset_id",
    "price",
    "quantity",
    "quote_amount",
    "buy_operator_id",
    "buy_account",
    "buy_order_id",
    "sell_operator_id",
    "sell_account",
    "sell_order_id",
    "executed_at",
    "received_at",
    "is_cross",
    "content_hash",
    "ingest_id",
)
_OBLIGATION_COLUMNS = (
    "trade_id",
    "debtor_id",
    "creditor_id",
    "counterparty_id",
    "direction",
    "asset_id",
    "amount",
    "status",
    "fail_count",
    "created_at",
    "executed_at",
)


# --- COPY text -------------------------------------------------------------------
# The rows are written as COPY text directly: formatting them value by value
# through the driver cost as much as the server's work on them. Every text
# field here passed ``text_field`` (printable: no tab, newline or carriage
# return), so a backslash is the only character COPY needs escaped.


def _text(value: str) -> str:
    return value.replace("\\", "\\\\") if "\\" in value else value


def _trade_line(t: ParsedTrade, ingest_id: int, received: str) -> str:
    """One row of _TRADE_COLUMNS, in COPY text format."""
    return (
        f"{_text(t.trade_id)}\t{t.base.id}\t{t.quote.id}\t{t.price:f}\t{t.quantity:f}\t{t.quote_amount:f}\t"
        f"{t.buy.id}\t{_text(t.buy_account)}\t{_text(t.buy_order_id)}\t"
        f"{t.sell.id}\t{_text(t.sell_account)}\t{_text(t.sell_order_id)}\t"
        f"{t.executed_text}\t{received}\t{'t' if t.buy.id != t.sell.id else 'f'}\t{t.content_hash}\t{ingest_id}\n"
    )


def _obligation_lines(t: ParsedTrade, trade_pk: int, created: str) -> str:
    """The two rows of _OBLIGATION_COLUMNS of a cross trade, in COPY text
    format: the base asset from the seller's operator to the buyer's, the
    quote amount the other way."""
    cp = t.counterparty.id
    base_direction, quote_direction = (
        (INBOUND.value, OUTBOUND.value) if t.buy.is_home else (OUTBOUND.value, INBOUND.value)
    )
    executed = t.executed_text
    return (
        f"{trade_pk}\t{t.sell.id}\t{t.buy.id}\t{cp}\t{base_direction}\t{t.base.id}\t{t.quantity:f}\topen\t0\t{created}\t{executed}\n"
        f"{trade_pk}\t{t.buy.id}\t{t.sell.id}\t{cp}\t{quote_direction}\t{t.quote.id}\t{t.quote_amount:f}\topen\t0\t{created}\t{executed}\n"
    )


def _insert_trades(trades: list[ParsedTrade], *, ingest_id: int, now: datetime) -> dict[str, int]:
    """Insert in trade-id order, skipping ids already stored; return
    trade_id -> primary key for the rows this request stored.

    The common case, no id seen before, is one COPY straight into the
    table, with primary keys drawn from the table's sequence beforehand (so
    nothing is read back). If any id exists (a retry, a concurrent request),
    that COPY fails on the unique index and is rolled back to its savepoint;
    the batch then goes through a temporary table with INSERT ... ON
    CONFLICT DO NOTHING."""
    from psycopg.errors import UniqueViolation

    if not trades:
        return {}
    columns = ", ".join(_TRADE_COLUMNS)
    received = now.isoformat()
    lines = [_trade_line(t, ingest_id, received) for t in trades]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('settlement_trade', 'id')) FROM generate_series(1, %s)", [len(lines)]
        )
        pks = [pk for (pk,) in cursor.fetchall()]
        try:
            with (
                transaction.atomic(),
                cursor.cursor.copy(f"COPY settlement_trade (id, {columns}) FROM STDIN") as copy,
            ):
                copy.write("".join(f"{pk}\t{line}" for pk, line in zip(pks, lines, strict=True)).encode())
        except (IntegrityError, UniqueViolation):
            cursor.execute(
                f"CREATE TEMP TABLE ingest_trade ON COMMIT DROP AS SELECT {columns} FROM settlement_trade WITH NO DATA"
            )
            with cursor.cursor.copy(f"COPY ingest_trade ({columns}) FROM STDIN") as copy:
                copy.write("".join(lines).encode())
            cursor.execute(
                f"INSERT INTO settlement_trade ({columns}) SELECT {columns} FROM ingest_trade "
                "ORDER BY trade_id ON CONFLICT (trade_id) DO NOTHING RETURNING trade_id, id"
            )
            ids = dict(cursor.fetchall())
            cursor.execute("DROP TABLE ingest_trade")
            return ids
    return {t.trade_id: pk for t, pk in zip(trades, pks, strict=True)}


def _insert_obligations(trades: list[ParsedTrade], ids: dict[str, int], *, now: datetime) -> None:
    created = now.isoformat()
    text = "".join(_obligation_lines(t, ids[t.trade_id], created) for t in trades if t.is_cross)
    if not text:
        return
    columns = ", ".join(_OBLIGATION_COLUMNS)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY settlement_obligation ({columns}) FROM STDIN") as copy,
    ):
        copy.write(text.encode())


def _deltas(trades: list[ParsedTrade]) -> list[PositionDelta]:
    sums: dict[tuple[int, int], list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0, 0])
    for t in trades:
        if not t.is_cross:
            continue
        cp = t.counterparty.id
        received, paid = ((t.base, t.quantity), (t.quote, t.quote_amount))
        if not t.buy.is_home:
            received, paid = paid, received
        row = sums[(cp, received[0].id)]
        row[0] += received[1]
        row[2] += 1
        row = sums[(cp, paid[0].id)]
        row[1] += paid[1]
        row[3] += 1
    return [PositionDelta(cp, asset, *values) for (cp, asset), values in sums.items()]


def _record_compliance(trades: list[ParsedTrade], ids: dict[str, int], *, registry: Registry, now: datetime) -> None:
    """Para 25: a home retail client may trade on the shared book only after
    opting in. The trade executed, so it is kept; the breach is flagged."""
    home = registry.home
    assert home is not None  # a cross trade was accepted, so there is a home operator
    sides = [
        (t, account)
        for t in trades
        if t.is_cross
        for operator, account in ((t.buy, t.buy_account), (t.sell, t.sell_account))
        if operator.is_home
    ]
    if not sides:
        return
    refs = sorted({account for _, account in sides})
    known: dict[str, tuple[str, bool]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ref, client_class, shared_book_opt_in FROM registry_account WHERE operator_id = %s AND ref = ANY(%s)",
            [home.id, refs],
        )
        known.update((ref, (client_class, opt_in)) for ref, client_class, opt_in in cursor.fetchall())
    flagged = []
    for trade, account in sides:
        profile = known.get(account)
        if profile is None:
            code, message = (
                "unregistered_home_account",
                f"home account {account} is not registered, so its shared-book opt-in cannot be confirmed",
            )
        elif profile[0] == Account.ClientClass.RETAIL and not profile[1]:
            code, message = (
                "retail_without_opt_in",
                f"retail home account {account} traded on the shared order book without opting in",
            )
        else:
            continue
        flagged.append(
            ComplianceException(
                trade_id=ids[trade.trade_id],
                operator_id=home.id,
                account_ref=account,
                code=code,
                message=message,
                created_at=now,
            )
        )
    ComplianceException.objects.bulk_create(flagged, batch_size=1000, ignore_conflicts=True)
