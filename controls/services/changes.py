"""Proposed changes to records: maker-checker on the data that decides who is
paid and how money moves (DESIGN section 12).

A change to a record of a registered kind (``change_target``) is never
saved by the person who makes it. ``change_propose`` stores it as an
approval request (kind ``record_change``) with one ``ChangeProposal``: the
record by model and natural key, and the values of the changed fields before
and after. A *different* ops_approver approves it (``approval_decide``);
only then is it applied, in the approval's transaction, after checking under
the row lock that the record still holds the values it held when the change
was proposed (otherwise ``stale_proposal``: another approved change came
first, propose again), validating the record as it would be, and running the
owner's rules. Proposal, decision and applied change are audit events with
before and after.

The app that owns a model registers it here with its natural key and its
rules (registry/services/changes.py for the registry; schedules.py here for
the Celery beat schedules), so this module imports no model above it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.contrib.auth.models import User
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import connection, models, transaction
from django.db.models.deletion import ProtectedError, RestrictedError

from controls.exceptions import Conflict, DomainError, InvalidInput
from controls.models import ApprovalRequest, ChangeProposal

from .approvals import actor_of, approval_describer, approval_kind, approval_request
from .audit import audit_record

Operation = ChangeProposal.Operation
# every application of a proposed change takes this lock first, so two
# approvals never interleave their checks and writes
_ADVISORY_LOCK = 0x5EC0_C4A1

Check = Callable[..., None]


@dataclass(frozen=True)
class Target:
    """A kind of record whose changes need four eyes.

    ``natural_key(obj)`` names a record as people do ("eth:0x70..."),
    ``check(operation=, current=, proposed=)`` enforces the owner's rules
    (raise a ``DomainError``), ``normalise(proposed)`` puts values into their
    stored form before they are compared (lower-case addresses), and
    ``volatile`` fields are kept by the system itself (a rail's status, an
    asset's current mark): never proposed, never compared."""

    model: type[models.Model]
    natural_key: Callable[[Any], str]
    check: Check | None = None
    normalise: Callable[[Any], None] | None = None
    volatile: frozenset[str] = field(default_factory=frozenset)

    @property
    def label(self) -> str:
        return self.model._meta.label

    def fields(self) -> list[models.Field]:
        return [
            f
            for f in self.model._meta.concrete_fields
            if not f.primary_key and f.editable and f.name not in self.volatile
        ]


_targets: dict[str, Target] = {}


def change_target(
    model: type[models.Model],
    *,
    natural_key: Callable[[Any], str],
    check: Check | None = None,
    normalise: Callable[[Any], None] | None = None,
    volatile: Iterable[str] = (),
) -> None:
    """Register ``model``: from now on its records change only by proposal."""
    target = Target(model, natural_key, check, normalise, frozenset(volatile))
    _targets[target.label] = target


def change_target_of(model: type[models.Model]) -> Target | None:
    return _targets.get(model._meta.label)


def change_targets() -> list[Target]:
    return list(_targets.values())


def changes_serialise() -> None:
    """Serialise every application of proposed changes (inside a transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK])


# --- values: stored as JSON, compared as Python values ----------------------------------


def _dump(model_field: models.Field, obj: models.Model) -> Any:
    value = model_field.value_from_object(obj)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    return model_field.value_to_string(obj)  # e.g. a time zone, by its name


def _load(model_field: models.Field, raw: Any) -> Any:
    if raw is None:
        return None
    target = model_field.target_field if model_field.is_relation else model_field  # type: ignore[attr-defined]
    return target.to_python(raw)


def record_values(obj: models.Model, fields: Iterable[models.Field]) -> dict[str, Any]:
    """The values of ``fields`` as stored in a proposal (a relation as its id)."""
    return {f.name: _dump(f, obj) for f in fields}


def _field(model: type[models.Model], name: str) -> models.Field:
    return model._meta.get_field(name)  # type: ignore[return-value]


def _assign(obj: models.Model, values: dict[str, Any]) -> None:
    for name, raw in values.items():
        model_field = _field(type(obj), name)
        setattr(obj, model_field.attname, _load(model_field, raw))


def _differs(model_field: models.Field, stored: Any, obj: models.Model) -> bool:
    return _load(model_field, stored) != model_field.value_from_object(obj)


def _shown(model_field: models.Field | None, raw: Any) -> str:
    """A value as people read it: a related record by its name, not its id."""
    if raw is None or raw == "":
        return "(empty)"
    if model_field is not None and model_field.is_relation and isinstance(raw, int):
        related = model_field.related_model._default_manager.filter(pk=raw).first()  # type: ignore[union-attr]
        return str(related) if related is not None else f"#{raw} (gone)"
    if isinstance(raw, bool):
        return "yes" if raw else "no"
    return str(raw)


def change_lines(change: ChangeProposal) -> list[tuple[str, str, str]]:
    """(field, before, after) for each field the change touches, for people."""
    model = _model_of(change.target)
    before, after = change.before or {}, change.after or {}
    lines = []
    for name in [*before, *(k for k in after if k not in before)]:
        model_field = None
        if model is not None:
            try:
                model_field = _field(model, name)
            except FieldDoesNotExist:  # a value named by the network file rather than by a model field
                model_field = None
        label = str(model_field.verbose_name) if model_field is not None else name.replace("_", " ")
        shown_before = _shown(model_field, before[name]) if name in before else "(new)"
        shown_after = _shown(model_field, after[name]) if name in after else "(removed)"
        lines.append((label, shown_before, shown_after))
    return lines


def change_summary(change: ChangeProposal) -> str:
    """One line: what changes, from what to what."""
    what = f"{change.target.split('.')[-1].lower()} {change.natural_key}"
    if change.operation == Operation.DELETE:
        return f"delete {what}"
    if change.operation == Operation.CREATE:
        return f"create {what}"
    changes = "; ".join(f"{label} {before} -> {after}" for label, before, after in change_lines(change))
    return f"{what}: {changes}"


def _model_of(label: str) -> type[models.Model] | None:
    target = _targets.get(label)
    if target is not None:
        return target.model
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


# --- proposing ---------------------------------------------------------------------------


def change_describe(*, proposed: models.Model, operation: str) -> dict:
    """The change that would make the record ``proposed`` (for a deletion:
    remove it), as stored in a proposal: target, natural key, before and after."""
    target = _targets.get(type(proposed)._meta.label)
    if target is None:
        raise InvalidInput("invalid_change", f"{type(proposed)._meta.label} records are not changed by proposal")
    if operation not in Operation.values:
        raise InvalidInput("invalid_field", f"operation must be one of {', '.join(Operation.values)}")
    if target.normalise is not None and operation != Operation.DELETE:
        target.normalise(proposed)
    fields = target.fields()
    if operation == Operation.CREATE:
        before, after, object_id = None, record_values(proposed, fields), ""
        key = target.natural_key(proposed)
    else:
        current = target.model._default_manager.filter(pk=proposed.pk).first()
        if current is None:
            raise Conflict("stale_proposal", f"{target.label} #{proposed.pk} no longer exists")
        key, object_id = target.natural_key(current), str(current.pk)
        if operation == Operation.DELETE:
            before, after = record_values(current, fields), None
        else:
            changed = [f for f in fields if f.value_from_object(proposed) != f.value_from_object(current)]
            if not changed:
                raise InvalidInput("no_change", f"nothing to propose: {key} already holds these values")
            before, after = record_values(current, changed), record_values(proposed, changed)
    return {
        "target": target.label,
        "object_id": object_id,
        "natural_key": key,
        "operation": operation,
        "before": before,
        "after": after,
    }


def change_propose(*, proposed: models.Model, operation: str, user: User, now: datetime) -> ApprovalRequest:
    """Ask for a record to be created, changed or deleted.

    ``proposed`` is the record as it should be (for a deletion: the record).
    Nothing is written to the record itself: the approval request and its
    change (before and after) are, with an audit event. Raises
    ``InvalidInput`` (``no_change``, ``invalid_change``), ``Forbidden`` (not
    an operations user) or ``Conflict``.
    """
    return changes_propose(changes=[change_describe(proposed=proposed, operation=operation)], user=user, now=now)


def changes_propose(*, changes: list[dict], user: User, now: datetime) -> ApprovalRequest:
    """Ask for several record changes (``change_describe``) as one approval:
    approved, they are applied together in one transaction, in this order."""
    if not changes:
        raise InvalidInput("no_change", "nothing to propose")
    with transaction.atomic():
        approval = approval_request(
            kind=ApprovalRequest.Kind.RECORD_CHANGE, payload={"changes": changes}, user=user, now=now
        )
        proposals_record(approval=approval, changes=changes, actor=actor_of(user), now=now)
    return approval


def proposals_record(*, approval: ApprovalRequest, changes: list[dict], actor: str, now: datetime) -> None:
    """The changes an approval request asks for, each with an audit event
    ``change.proposed`` (before and after). Inside the caller's transaction."""
    for change in changes:
        ChangeProposal.objects.create(
            approval=approval,
            target=change["target"],
            object_id=change.get("object_id") or "",
            natural_key=change["natural_key"][:300],
            operation=change["operation"],
            before=change.get("before"),
            after=change.get("after"),
        )
        audit_record(
            actor=actor,
            action="change.proposed",
            object_type=change["target"].split(".")[-1],
            object_id=change["natural_key"][:100],
            before=change.get("before"),
            after={"approval": approval.id, "operation": change["operation"], "values": change.get("after")},
            at=now,
        )


def proposals_pending(*, model: type[models.Model], object_id: object | None = None):
    """Pending changes of a record (or, without ``object_id``, of its kind)."""
    queryset = ChangeProposal.objects.filter(
        target=model._meta.label, approval__status=ApprovalRequest.Status.PENDING
    ).select_related("approval__requested_by")
    if object_id is not None:
        queryset = queryset.filter(object_id=str(object_id))
    return queryset.order_by("approval_id", "id")


# --- checking and applying ------------------------------------------------------------------


def _prepare(payload: dict, *, lock: bool) -> tuple[Target, models.Model | None, models.Model | None]:
    """The target, the record as it is now (locked when asked) and as it
    would be; raises when the change no longer applies cleanly."""
    target = _targets.get(payload.get("target") or "")
    if target is None:
        raise InvalidInput("invalid_change", f"{payload.get('target')!r} records are not changed by proposal")
    operation, key = payload.get("operation"), payload.get("natural_key") or ""
    model = target.model
    current = proposed = None
    if operation in (Operation.UPDATE, Operation.DELETE):
        if not payload.get("object_id"):
            raise InvalidInput("invalid_change", f"{key}: the change names no record")
        queryset = model._default_manager.filter(pk=payload.get("object_id"))
        current = (queryset.select_for_update() if lock else queryset).first()
        if current is None:
            raise Conflict("stale_proposal", f"{key} no longer exists; propose the change again if it is still wanted")
        stale = [
            name for name, raw in (payload.get("before") or {}).items() if _differs(_field(model, name), raw, current)
        ]
        if stale:
            now_held = record_values(current, [_field(model, name) for name in stale])
            detail = "; ".join(f"{name} was {payload['before'][name]!r}, is now {now_held[name]!r}" for name in stale)
            raise Conflict(
                "stale_proposal",
                f"{key} changed since this was proposed ({detail}); propose the change again against its current values",
            )
    if operation == Operation.CREATE:
        proposed = model()
    elif operation == Operation.UPDATE:
        proposed = model._default_manager.get(pk=current.pk)  # type: ignore[union-attr]
    elif operation != Operation.DELETE:
        raise InvalidInput("invalid_field", f"operation must be one of {', '.join(Operation.values)}")
    if proposed is not None:
        _assign(proposed, payload.get("after") or {})
        try:
            proposed.full_clean()
        except ValidationError as error:
            raise InvalidInput("invalid_change", f"{key}: {_validation_message(error)}") from None
    if target.check is not None:
        target.check(operation=operation, current=current, proposed=proposed)
    return target, current, proposed


def _validation_message(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in error.message_dict.items())
    return " ".join(error.messages)


def _changes_of(payload: dict) -> list[dict]:
    changes = payload.get("changes")
    if not isinstance(changes, list) or not changes or not all(isinstance(c, dict) for c in changes):
        raise InvalidInput("invalid_change", "a record change names at least one change")
    return changes


def _record_check(*, payload: dict) -> None:
    for change in _changes_of(payload):
        _prepare(change, lock=False)


def changes_describe(*, approval: ApprovalRequest, **_) -> list[str]:
    """Each record change the request carries: what changes, from what to what."""
    return [change_summary(c) for c in approval.changes.all()]


approval_describer(ApprovalRequest.Kind.RECORD_CHANGE)(changes_describe)


@approval_kind(ApprovalRequest.Kind.RECORD_CHANGE, check=_record_check)
def _record_approved(*, payload: dict, request: ApprovalRequest, approver: User, now: datetime) -> dict:
    changes_serialise()
    return {"applied": [_apply(change, actor=actor_of(approver), now=now) for change in _changes_of(payload)]}


def _apply(change: dict, *, actor: str, now: datetime) -> dict:
    target, current, proposed = _prepare(change, lock=True)
    operation = change["operation"]
    if operation == Operation.DELETE:
        assert current is not None
        record, after = current, None
        object_id = str(current.pk)
        try:
            current.delete()
        except (ProtectedError, RestrictedError) as error:
            users = sorted({str(type(obj)._meta.verbose_name_plural) for obj in error.args[1]})
            raise Conflict(
                "in_use", f"{change['natural_key']} cannot be deleted: {', '.join(users)} refer to it"
            ) from None
    else:
        assert proposed is not None
        names = list(change.get("after") or {})
        if operation == Operation.UPDATE:
            proposed.save(update_fields=[_field(target.model, name).attname for name in names])
        else:
            proposed.save()
        record, object_id = proposed, str(proposed.pk)
        after = record_values(proposed, [_field(target.model, name) for name in names])
    key = target.natural_key(record)
    audit_record(
        actor=actor,
        action=f"change.applied.{operation}",
        object_type=target.model.__name__,
        object_id=key[:100],
        before=change.get("before"),
        after=after,
        at=now,
    )
    return {"target": target.label, "object_id": object_id, "natural_key": key, "operation": operation}


__all__ = [
    "DomainError",
    "Operation",
    "Target",
    "change_describe",
    "change_lines",
    "change_propose",
    "change_summary",
    "change_target",
    "change_target_of",
    "change_targets",
    "changes_propose",
    "changes_serialise",
    "proposals_pending",
    "proposals_record",
    "record_values",
]
