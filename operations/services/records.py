"""The records export for the regulator (circular paras 22, 23): every
family DESIGN section 10 names (trades, obligations, cycles, legs, observed
movements, breaks, claims, the audit trail) and what else a regulator asks
about a settlement: trade and compliance exceptions, batches, deliveries,
instructions, marks history, bank statements, custodian balance reports,
approvals and proposals, defaults, the reserve ledger, alerts, and the
notifications pushed with their deliveries. CSV (JSON
Lines for the audit trail), with a manifest of row counts and SHA-256
digests. Amounts are written at their asset's scale.

Complete or loud: a family that cannot be read (a model or column that does
not exist, a query that fails) is named in the manifest and the export
fails (``ExportIncomplete``; the command exits non-zero).

Rows stream from the database in chunks, so memory stays flat however long
the range. Dates are Hong Kong dates, inclusive.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.apps import apps
from django.core.exceptions import FieldError
from django.db import DatabaseError
from django.db.models import Model

from controls.exceptions import DomainError, InvalidInput
from controls.money import at_scale

HK = ZoneInfo("Asia/Hong_Kong")
CHUNK = 5000


@dataclass(frozen=True)
class Table:
    name: str
    model: str  # app_label.ModelName
    time_field: str
    columns: tuple[str, ...]
    # amount column -> the path of its asset's scale: written at that scale
    scales: tuple[tuple[str, str], ...] = ()


TABLES = (
    Table(
        "trades",
        "settlement.Trade",
        "executed_at",
        (
            "trade_id",
            "executed_at",
            "received_at",
            "base_asset__code",
            "quote_asset__code",
            "price",
            "quantity",
            "quote_amount",
            "buy_operator__code",
            "buy_account",
            "sell_operator__code",
            "sell_account",
            "is_cross",
            "content_hash",
        ),
        (("quantity", "base_asset__scale"), ("quote_amount", "quote_asset__scale")),
    ),
    Table(
        "trade_exceptions",
        "settlement.TradeException",
        "received_at",
        (
            "id",
            "received_at",
            "index",
            "trade_id",
            "code",
            "field",
            "message",
            "status",
            "resolution",
            "resolved_by",
            "payload",
        ),
    ),
    Table(
        "obligations",
        "settlement.Obligation",
        "created_at",
        (
            "id",
            "trade__trade_id",
            "created_at",
            "counterparty__code",
            "debtor__code",
            "creditor__code",
            "direction",
            "asset__code",
            "amount",
            "status",
            "fail_count",
            "settled_at",
            "batch_id",
        ),
        (("amount", "asset__scale"),),
    ),
    Table(
        "cycles",
        "settlement.Cycle",
        "as_of",
        ("id", "kind", "as_of", "status", "requested_by", "obligations_taken", "obligations_deferred", "finished_at"),
    ),
    Table(
        "batches",
        "settlement.Batch",
        "created_at",
        (
            "id",
            "cycle_id",
            "counterparty__code",
            "dvp_policy",
            "status",
            "settled_by_netting",
            "created_at",
            "settled_at",
            "failed_at",
            "failed_by",
            "fail_reason",
            "fail_detail",
            "held_at",
            "held_by",
            "hold_reason",
            "affirmation",
            "affirmed_at",
            "affirmed_by",
            "dispute_reason",
        ),
    ),
    Table(
        "legs",
        "settlement.Leg",
        "batch__created_at",
        (
            "id",
            "batch_id",
            "asset__code",
            "direction",
            "amount",
            "status",
            "value_date",
            "deadline",
            "instructed_at",
            "confirmed_at",
            "confirmed_by",
            "evidence",
            "failed_by",
            "fail_reason",
        ),
        (("amount", "asset__scale"),),
    ),
    Table("deliveries", "settlement.Delivery", "reported_at", ()),
    Table(
        "carried_credits",
        "settlement.CarriedCredit",
        "created_at",
        (
            "id",
            "counterparty__code",
            "asset__code",
            "direction",
            "amount",
            "status",
            "source_leg_id",
            "applied_batch_id",
            "created_at",
            "settled_at",
        ),
        (("amount", "asset__scale"),),
    ),
    Table(
        "counterparty_exclusions",
        "settlement.CounterpartyExclusion",
        "created_at",
        ("id", "operator__code", "status", "reason", "created_at", "created_by", "lifted_at", "lifted_by"),
    ),
    Table(
        "settlement_statements",
        "settlement.SettlementStatement",
        "generated_at",
        ("id", "counterparty__code", "day", "version", "period_start", "period_end", "generated_at", "digest"),
    ),
    Table("batch_items", "settlement.BatchItem", "batch__created_at", ()),
    Table(
        "compliance_exceptions",
        "settlement.ComplianceException",
        "created_at",
        (
            "id",
            "created_at",
            "trade__trade_id",
            "operator__code",
            "account_ref",
            "code",
            "message",
            "status",
            "resolution",
            "resolved_by",
            "resolved_at",
        ),
    ),
    Table(
        "marks", "registry.Mark", "received_at", ("id", "asset__code", "price_hkd", "as_of", "source", "received_at")
    ),
    Table("observed_movements", "custody.Movement", "occurred_at", (), (("amount", "asset__scale"),)),
    Table("bank_statements", "custody.BankStatement", "imported_at", ()),
    Table("balance_reports", "custody.BalanceReport", "received_at", ()),
    Table(
        "balance_report_lines",
        "custody.BalanceReportLine",
        "report__received_at",
        (),
        (("reported", "asset__scale"), ("expected", "asset__scale"), ("difference", "asset__scale")),
    ),
    Table("breaks", "custody.Break", "opened_at", (), (("amount", "asset__scale"),)),
    Table("break_events", "custody.BreakEvent", "at", (), (("amount", "brk__asset__scale"),)),
    Table("instructions", "custody.Instruction", "created_at", (), (("amount", "asset__scale"),)),
    Table(
        "approvals",
        "controls.ApprovalRequest",
        "requested_at",
        (
            "id",
            "kind",
            "status",
            "payload",
            "requested_by__username",
            "requested_at",
            "decided_by__username",
            "decided_at",
            "reason",
            "result",
        ),
    ),
    Table("alerts", "controls.Alert", "created_at", ()),
    Table("defaults", "reserves.Default", "created_at", ()),
    # para 15 and 23: what was pushed to whom, and whether it arrived
    Table(
        "notifications",
        "operations.Notification",
        "at",
        ("id", "at", "kind", "key", "previous", "state", "title", "operator_code", "details"),
    ),
    Table(
        "notification_deliveries",
        "operations.NotificationDelivery",
        "created_at",
        (
            "id",
            "created_at",
            "notification_id",
            "subscription__name",
            "subscription__channel",
            "status",
            "attempts",
            "response_status",
            "last_error",
            "sent_at",
        ),
    ),
    # para 10 and 22: every order's prefunding hold (operator, account, outcome) and its history
    Table(
        "prefunding_holds",
        "settlement.PrefundingHold",
        "created_at",
        (
            "id",
            "order_id",
            "operator__code",
            "account",
            "asset__code",
            "amount",
            "consumed",
            "remaining",
            "status",
            "expires_at",
            "created_at",
            "closed_at",
            "created_by",
        ),
        (("amount", "asset__scale"), ("consumed", "asset__scale"), ("remaining", "asset__scale")),
    ),
    Table(
        "prefunding_hold_events",
        "settlement.HoldEvent",
        "at",
        (
            "id",
            "hold_id",
            "hold__operator__code",
            "hold__order_id",
            "kind",
            "amount",
            "remaining",
            "expires_at",
            "trade__trade_id",
            "at",
            "actor",
        ),
        (("amount", "hold__asset__scale"), ("remaining", "hold__asset__scale")),
    ),
    Table(
        "prefunding_funding_events",
        "settlement.FundingEvent",
        "received_at",
        (
            "id",
            "event_id",
            "operator__code",
            "account",
            "asset__code",
            "kind",
            "amount",
            "occurred_at",
            "reference",
            "reserve__event_id",
            "received_at",
            "actor",
        ),
        (("amount", "asset__scale"),),
    ),
    Table(
        "prefunding_freezes",
        "settlement.PrefundingFreeze",
        "created_at",
        (
            "id",
            "operator__code",
            "account",
            "asset__code",
            "status",
            "reason",
            "release_open_holds",
            "released_holds",
            "created_at",
            "created_by",
            "lifted_at",
            "lifted_by",
            "lift_approval_id",
        ),
    ),
    Table(
        "prefunding_attestations",
        "settlement.CustodianAttestation",
        "as_of",
        (
            "id",
            "operator__code",
            "asset__code",
            "wallet__address",
            "bank_account__number",
            "amount",
            "as_of",
            "source",
            "reference",
            "recorded_at",
        ),
    ),
    Table(
        "claims",
        "reserves.Claim",
        "created_at",
        (
            "id",
            "default_id",
            "counterparty__code",
            "account_ref",
            "status",
            "loss_hkd",
            "paid_hkd",
            "shortfall_hkd",
            "created_at",
            "approved_by",
            "approved_at",
            "paid_at",
            "rejected_reason",
            "evidence",
        ),
    ),
    Table(
        "claim_lines",
        "reserves.ClaimLine",
        "claim__created_at",
        (
            "id",
            "claim_id",
            "trade__trade_id",
            "owed_asset",
            "owed_amount",
            "owed_hkd",
            "retained_asset",
            "retained_amount",
            "retained_hkd",
            "loss_hkd",
        ),
    ),
    Table(
        "reserve_ledger",
        "reserves.ReserveEntry",
        "created_at",
        ("id", "created_at", "kind", "amount_hkd", "reference", "claim_id", "actor"),
    ),
)
AUDIT = Table(
    "audit_trail",
    "controls.AuditEvent",
    "at",
    ("id", "at", "actor", "action", "object_type", "object_id", "before", "after"),
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _scaled_rows(rows, columns: tuple[str, ...], scales: tuple[tuple[str, str], ...]) -> Iterator[tuple]:
    """Rows of ``columns`` with each amount quantised to its asset's scale
    (storage keeps 18 decimals for every asset; a record shows the asset's)."""
    if not scales:
        yield from rows.values_list(*columns).iterator(chunk_size=CHUNK)
        return
    positions = [(columns.index(amount), len(columns) + i) for i, (amount, _) in enumerate(scales)]
    for row in rows.values_list(*columns, *(scale for _, scale in scales)).iterator(chunk_size=CHUNK):
        values = list(row[: len(columns)])
        for at, scale_at in positions:
            if values[at] is not None:
                values[at] = at_scale(values[at], row[scale_at])
        yield tuple(values)


class ExportIncomplete(DomainError):
    """One or more families could not be read: the export is not complete."""

    status = 500


def _columns(model: type[Model], table: Table) -> tuple[str, ...]:
    if table.columns:
        return table.columns
    return tuple(f.attname for f in model._meta.concrete_fields)


def records_export(
    *, start: date, end: date, out: Path, progress: Callable[[str], None] = lambda _: None, now: datetime
) -> dict:
    if end < start:
        raise InvalidInput("invalid_field", "--to is before --from", field="to")
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise InvalidInput("invalid_field", f"{out} is not empty: export into a new directory", field="out")
    since = datetime.combine(start, time(0), tzinfo=HK)
    until = datetime.combine(end + timedelta(days=1), time(0), tzinfo=HK)
    manifest: dict[str, Any] = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "timezone": "Asia/Hong_Kong",
        "exported_at": now.isoformat(),
        "files": {},
    }
    failed = []
    for table in (*TABLES, AUDIT):
        path = out / (f"{table.name}.jsonl" if table is AUDIT else f"{table.name}.csv")
        try:
            model = apps.get_model(table.model)
            rows = model._default_manager.order_by("pk").filter(
                **{f"{table.time_field}__gte": since, f"{table.time_field}__lt": until}
            )
            columns = _columns(model, table)
            count = _write(
                path,
                _scaled_rows(rows, columns, table.scales),
                columns,
                jsonl=table is AUDIT,
                progress=progress,
                name=table.name,
            )
        except (LookupError, FieldError, DatabaseError, ValueError, TypeError) as error:
            # complete or loud: the family is named, and the export fails
            path.unlink(missing_ok=True)
            manifest["files"][path.name] = {"error": f"{table.model}: {error}".splitlines()[0][:300]}
            failed.append(table.name)
            progress(f"{table.name}: FAILED: {manifest['files'][path.name]['error']}")
            continue
        manifest["files"][path.name] = {
            "rows": count,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "filtered_on": table.time_field,
        }
        progress(f"{table.name}: {count} rows")
    manifest["complete"] = not failed
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if failed:
        raise ExportIncomplete(
            "export_incomplete", f"the export is incomplete: {', '.join(failed)} could not be read (see manifest.json)"
        )
    return manifest


def _write(path: Path, rows: Iterator[tuple], columns: tuple[str, ...], *, jsonl: bool, progress, name: str) -> int:
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if not jsonl:
            writer.writerow([c.replace("__", ".") for c in columns])
        for row in rows:
            if jsonl:
                handle.write(json.dumps(dict(zip(columns, row, strict=True)), sort_keys=True, default=_cell) + "\n")
            else:
                writer.writerow([_cell(v) for v in row])
            count += 1
            if count % 100_000 == 0:
                progress(f"{name}: {count} rows so far")
    return count
