"""Audited upserts by natural key: one audit event per created or changed
row, with before/after of the changed fields, and counts per kind."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.db import models

from controls.money import as_str
from controls.services.audit import audit_record

OUTCOMES = ("created", "updated", "unchanged")


def json_safe(value: Any) -> Any:
    """Values for the audit trail: decimals, dates and times as strings."""
    if isinstance(value, Decimal):
        return as_str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


@dataclass(slots=True)
class Recorder:
    """Writes rows by natural key, one audit event per created or changed row,
    and counts what happened per kind of object."""

    actor: str
    at: datetime
    action_prefix: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, kind: str, outcome: str) -> None:
        counts = self.counts.setdefault(kind, dict.fromkeys(OUTCOMES, 0))
        counts[outcome] += 1

    def created(self, kind: str, obj: models.Model, *, object_id: str, after: Mapping[str, Any]) -> None:
        self.audit("created", obj, object_id=object_id, before=None, after=after)
        self.count(kind, "created")

    def upsert(
        self,
        kind: str,
        model: type[models.Model],
        *,
        lookup: Mapping[str, Any],
        values: Mapping[str, Any],
        object_id: str,
        stamp: Mapping[str, Any] | None = None,
    ) -> models.Model:
        """Create the row found by ``lookup`` or update the ``values`` that
        differ, under its row lock (inside the caller's transaction).
        ``stamp`` (e.g. ``updated_at``) is written only with a change."""
        obj = model._default_manager.select_for_update().filter(**lookup).first()
        if obj is None:
            obj = model._default_manager.create(**lookup, **values, **(stamp or {}))
            self.created(kind, obj, object_id=object_id, after={**lookup, **values})
            return obj
        changed = [name for name, value in values.items() if not _same(obj, name, value)]
        if not changed:
            self.count(kind, "unchanged")
            return obj
        before = {name: getattr(obj, name) for name in changed}
        for name in changed:
            setattr(obj, name, values[name])
        for name, value in (stamp or {}).items():
            setattr(obj, name, value)
        obj.save(update_fields=[*changed, *(stamp or {})])
        self.audit("updated", obj, object_id=object_id, before=before, after={name: values[name] for name in changed})
        self.count(kind, "updated")
        return obj

    def audit(
        self,
        outcome: str,
        obj: models.Model,
        *,
        object_id: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any],
    ) -> None:
        audit_record(
            actor=self.actor,
            action=f"{self.action_prefix}.{outcome}",
            object_type=type(obj).__name__,
            object_id=object_id,
            before=json_safe(before) if before is not None else None,
            after=json_safe(after),
            at=self.at,
        )

    def totals(self) -> dict[str, int]:
        return {outcome: sum(c[outcome] for c in self.counts.values()) for outcome in OUTCOMES}


def _same(obj: models.Model, name: str, value: Any) -> bool:
    model_field = obj._meta.get_field(name)
    if model_field.is_relation:
        return getattr(obj, getattr(model_field, "attname", name)) == (
            value.pk if isinstance(value, models.Model) else value
        )
    return getattr(obj, name) == value


def iter_counts(
    counts: Mapping[str, Mapping[str, int]], kinds: Collection[str]
) -> Iterator[tuple[str, dict[str, int]]]:
    """Counts in a fixed order of kinds, then any others."""
    for kind in [*kinds, *sorted(set(counts) - set(kinds))]:
        if kind in counts:
            yield kind, dict(counts[kind])
