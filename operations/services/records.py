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

from .record_families import AUDIT, TABLES, Table

HK = ZoneInfo("Asia/Hong_Kong")
CHUNK = 5000


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
