"""Daily settlement statements (DESIGN section 7): per counterparty, what
it traded with home's clients and what settlement asked of it, from one
end-of-day cut-off to the next: trades and obligations taken, batches and
legs with their statuses and evidence, fails with who failed and why,
carried credits, and the closing unsettled position per asset. Generated
by the end-of-day task and kept as sent; generating again changes nothing
unless the facts changed, and then makes a new version (a correction)."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import Q

from controls.exceptions import InvalidInput
from controls.money import at_scale
from controls.services.audit import audit_record
from registry.models import Asset, Operator
from settlement.aggregates import sums_by_direction
from settlement.models import Batch, CarriedCredit, Leg, Obligation, SettlementStatement, Trade

HK = ZoneInfo("Asia/Hong_Kong")
CSV_FIELDS = [
    "section",
    "reference",
    "batch",
    "leg",
    "asset",
    "direction",
    "amount",
    "status",
    "failed_by",
    "fail_reason",
    "detail",
]


def statement_period(day: date) -> tuple[datetime, datetime]:
    """From the previous day's end-of-day cut-off (exclusive) to this day's
    (inclusive), Hong Kong time (``EOD_CUTOFF_HKT``)."""
    hour, minute = (int(part) for part in settings.EOD_CUTOFF_HKT.split(":"))
    end = datetime.combine(day, time(hour, minute), tzinfo=HK)
    return end - timedelta(days=1), end


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


class _Amounts:
    """Amounts as strings at each asset's scale."""

    def __init__(self) -> None:
        self.assets = {a.id: a for a in Asset.objects.all()}

    def code(self, asset_id: int) -> str:
        return self.assets[asset_id].code

    def text(self, amount: Decimal, asset_id: int) -> str:
        return format(at_scale(amount, self.assets[asset_id].scale), "f")


def statement_content(*, counterparty: Operator, start: datetime, end: datetime) -> dict:
    amounts = _Amounts()
    home_side = Q(buy_operator=counterparty) | Q(sell_operator=counterparty)
    trades = list(
        Trade.objects.filter(home_side, executed_at__gt=start, executed_at__lte=end, is_cross=True)
        .order_by("executed_at", "id")
        .values(
            "id", "trade_id", "executed_at", "base_asset_id", "quote_asset_id", "price", "quantity", "sell_operator_id"
        )
    )
    obligations = (
        Obligation.objects.filter(counterparty=counterparty, trade_id__in=[t["id"] for t in trades])
        .order_by("trade_id", "asset_id")
        .values_list("trade__trade_id", "asset_id", "direction", "amount", "status")
    )
    batches = (
        Batch.objects.filter(counterparty=counterparty)
        .filter(
            Q(created_at__gt=start, created_at__lte=end)
            | Q(settled_at__gt=start, settled_at__lte=end)
            | Q(failed_at__gt=start, failed_at__lte=end)
        )
        .prefetch_related("legs", "credits_applied")
        .order_by("id")
    )
    shown_batches = [_batch(batch, amounts) for batch in batches]
    credits = CarriedCredit.objects.filter(counterparty=counterparty).select_related("source_leg")
    return {
        "counterparty": counterparty.code,
        "period_start": _iso(start),
        "period_end": _iso(end),
        "trades": [
            {
                "trade_id": t["trade_id"],
                "executed_at": _iso(t["executed_at"]),
                "base": amounts.code(t["base_asset_id"]),
                "quote": amounts.code(t["quote_asset_id"]),
                "price": format(t["price"].normalize(), "f"),
                "quantity": amounts.text(t["quantity"], t["base_asset_id"]),
                "counterparty_side": "sell" if t["sell_operator_id"] == counterparty.id else "buy",
            }
            for t in trades
        ],
        "obligations": [
            {
                "trade_id": trade_id,
                "asset": amounts.code(asset_id),
                "direction": direction,
                "amount": amounts.text(amount, asset_id),
                "status": status,
            }
            for trade_id, asset_id, direction, amount, status in obligations
        ],
        "batches": shown_batches,
        "fails": [
            {key: leg[key] for key in ("leg", "asset", "direction", "amount", "failed_by", "fail_reason")}
            | {"batch": batch["id"]}
            for batch in shown_batches
            for leg in batch["legs"]
            if leg["status"] == Leg.Status.FAILED
        ],
        "credits": {
            "carried": [
                _credit(c, amounts) for c in credits.filter(created_at__gt=start, created_at__lte=end).order_by("id")
            ],
            "open": [_credit(c, amounts) for c in credits.filter(status__in=CarriedCredit.UNSETTLED).order_by("id")],
        },
        "closing_position": _closing(counterparty=counterparty, end=end, amounts=amounts),
    }


def _batch(batch: Batch, amounts: _Amounts) -> dict:
    return {
        "id": batch.id,
        "cycle": batch.cycle_id,
        "created_at": _iso(batch.created_at),
        "dvp_policy": batch.dvp_policy,
        "status": batch.status,
        "affirmation": batch.affirmation,
        "held": batch.held_at is not None,
        "failed_by": batch.failed_by or None,
        "fail_reason": batch.fail_reason or None,
        "settled_at": _iso(batch.settled_at),
        "failed_at": _iso(batch.failed_at),
        "legs": [
            {
                "leg": leg.id,
                "asset": amounts.code(leg.asset_id),
                "direction": leg.direction,
                "amount": amounts.text(leg.amount, leg.asset_id),
                "status": leg.status,
                "deadline": _iso(leg.deadline),
                "confirmed_at": _iso(leg.confirmed_at),
                "evidence": leg.evidence,
                "failed_by": leg.failed_by or None,
                "fail_reason": leg.fail_reason or None,
            }
            for leg in sorted(batch.legs.all(), key=lambda leg: leg.id)
        ],
        "credits_netted": sorted(credit.id for credit in batch.credits_applied.all()),
    }


def _credit(credit: CarriedCredit, amounts: _Amounts) -> dict:
    return {
        "credit": credit.id,
        "asset": amounts.code(credit.asset_id),
        "direction": credit.direction,
        "amount": amounts.text(credit.amount, credit.asset_id),
        "status": credit.status,
        "source_batch": credit.source_leg.batch_id,
        "applied_batch": credit.applied_batch_id,
    }


def _closing(*, counterparty: Operator, end: datetime, amounts: _Amounts) -> list[dict]:
    """Per asset: unsettled obligations of trades up to the cut-off, owed to
    home and by home, the credits home holds (or owes), and the net still
    owed to home (negative: owed by home)."""
    owed = sums_by_direction(
        Obligation.objects.unsettled().filter(counterparty=counterparty, trade__executed_at__lte=end),
        ("asset_id",),
    )
    held = sums_by_direction(
        CarriedCredit.objects.filter(counterparty=counterparty, status__in=CarriedCredit.UNSETTLED), ("asset_id",)
    )
    zero = (Decimal(0), Decimal(0), 0, 0)
    lines = []
    for asset_id in sorted(set(k for (k,) in owed) | set(k for (k,) in held), key=amounts.code):
        to_home, by_home, _, _ = owed.get((asset_id,), zero)
        held_in, held_out, _, _ = held.get((asset_id,), zero)
        credit = held_in - held_out
        lines.append(
            {
                "asset": amounts.code(asset_id),
                "owed_to_home": amounts.text(to_home, asset_id),
                "owed_by_home": amounts.text(by_home, asset_id),
                "credits_held_by_home": amounts.text(credit, asset_id),
                "net_owed_to_home": amounts.text(to_home - by_home - credit, asset_id),
            }
        )
    return lines


def statement_csv(content: dict) -> str:
    """The same statement as CSV, one row per item, the section first."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for t in content["trades"]:
        detail = (
            f"{t['counterparty_side']} {t['quantity']} {t['base']} at {t['price']} {t['quote']} ({t['executed_at']})"
        )
        writer.writerow({"section": "trade", "reference": t["trade_id"], "asset": t["base"], "detail": detail})
    for o in content["obligations"]:
        writer.writerow(
            {"section": "obligation", "reference": o["trade_id"], **_pick(o, "asset", "direction", "amount", "status")}
        )
    for b in content["batches"]:
        writer.writerow(
            {
                "section": "batch",
                "batch": b["id"],
                **_pick(b, "status", "failed_by", "fail_reason"),
                "detail": b["affirmation"],
            }
        )
        for leg in b["legs"]:
            writer.writerow(
                {
                    "section": "leg",
                    "batch": b["id"],
                    "leg": leg["leg"],
                    **_pick(leg, "asset", "direction", "amount", "status", "failed_by", "fail_reason"),
                    "detail": orjson.dumps(leg["evidence"]).decode() if leg["evidence"] else "",
                }
            )
    for f in content["fails"]:
        writer.writerow(
            {
                "section": "fail",
                "batch": f["batch"],
                "leg": f["leg"],
                **_pick(f, "asset", "direction", "amount", "failed_by", "fail_reason"),
            }
        )
    for kind in ("carried", "open"):
        for c in content["credits"][kind]:
            writer.writerow(
                {
                    "section": f"credit_{kind}",
                    "reference": c["credit"],
                    "batch": c["source_batch"],
                    **_pick(c, "asset", "direction", "amount", "status"),
                }
            )
    for p in content["closing_position"]:
        detail = f"owed to home {p['owed_to_home']}; owed by home {p['owed_by_home']}; credits held by home {p['credits_held_by_home']}"
        writer.writerow(
            {"section": "closing_position", "asset": p["asset"], "amount": p["net_owed_to_home"], "detail": detail}
        )
    return out.getvalue()


def _pick(row: dict, *keys: str) -> dict:
    return {key: row[key] for key in keys}


def statements_generate(*, day: date, actor: str, now: datetime) -> list[SettlementStatement]:
    """Every overseas counterparty's statement for ``day``, once its cut-off
    has passed. A statement whose facts did not change since its last
    version is left as it is; one whose facts changed gets a new version.
    Returns the statements made now."""
    start, end = statement_period(day)
    if now < end:
        raise InvalidInput("day_not_closed", f"the {day} cut-off ({end.isoformat()}) has not passed yet", field="date")
    made = []
    for counterparty in Operator.objects.filter(role=Operator.Role.OVERSEAS).order_by("code"):
        with transaction.atomic():
            Operator.objects.select_for_update().get(pk=counterparty.pk)  # one generation per counterparty at a time
            content = statement_content(counterparty=counterparty, start=start, end=end)
            digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
            last = SettlementStatement.objects.filter(counterparty=counterparty, day=day).order_by("-version").first()
            if last is not None and last.digest == digest:
                continue
            statement = SettlementStatement.objects.create(
                counterparty=counterparty,
                day=day,
                version=(last.version + 1) if last else 1,
                period_start=start,
                period_end=end,
                generated_at=now,
                generated_by=actor,
                content=content,
                csv=statement_csv(content),
                digest=digest,
            )
            audit_record(
                actor=actor,
                action="statement.generated",
                object_type="SettlementStatement",
                object_id=statement.id,
                after={
                    "counterparty": counterparty.code,
                    "day": day.isoformat(),
                    "version": statement.version,
                    "digest": digest,
                },
                at=now,
            )
            made.append(statement)
    return made


def statement_as_json(statement: SettlementStatement) -> dict:
    return {
        "counterparty": statement.counterparty.code,
        "date": statement.day.isoformat(),
        "version": statement.version,
        "generated_at": _iso(statement.generated_at),
        "digest": statement.digest,
        **{key: value for key, value in statement.content.items() if key != "counterparty"},
    }
