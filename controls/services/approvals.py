"""Four eyes: an operations user asks, a *different* ops_approver decides.

Each kind of request registers a handler that does the work on approval,
inside the approval's transaction, so an approval and its effect commit
together or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction

from controls.exceptions import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from controls.models import ApprovalRequest

from .audit import audit_record

logger = logging.getLogger(__name__)

APPROVER_GROUP = "ops_approver"
OPERATOR_GROUPS = ("ops_operator", "ops_approver")
VIEWER_GROUPS = ("ops_viewer", "ops_operator", "ops_approver")

Handler = Callable[..., dict]
_checks: dict[str, Callable[..., None]] = {}
_handlers: dict[str, Handler] = {}


def approval_kind(kind: str, *, check: Callable[..., None]):
    """Register what approving ``kind`` does. ``check(payload=...)`` runs when
    the request is made (refuse nonsense early) and again on approval."""

    def register(handler: Handler) -> Handler:
        _checks[kind] = check
        _handlers[kind] = handler
        return handler

    return register


_describers: dict[str, Callable[..., list[str]]] = {}


def approval_describer(kind: str):
    """Register how to tell people what approving ``kind`` would do:
    ``describe(payload=..., approval=...)`` returns lines such as "confirm the inbound leg
    of 64,000.00 USDC from SG1 (batch 12)", naming records by their codes and
    amounts with their assets, never by ids alone."""

    def register(describe: Callable[..., list[str]]) -> Callable[..., list[str]]:
        _describers[kind] = describe
        return describe

    return register


def approval_describe(approval: ApprovalRequest) -> list[str]:
    """What the request would do, for the approver: the kind's describer (the
    record changes describe themselves), or its payload in words."""
    describe = _describers.get(approval.kind)
    payload = approval.payload if isinstance(approval.payload, dict) else {}
    if describe is not None:
        try:
            return describe(payload=payload, approval=approval)
        except Exception as error:  # a record since deleted or changed must not break the approver's page
            logger.warning("approval %s: cannot describe: %s", approval.id, error)
    return [
        ", ".join(
            f"{key.replace('_', ' ')} {value}" for key, value in payload.items() if value not in (None, "", [], {})
        )
    ]


def actor_of(user: User) -> str:
    return f"user:{user.username}"


def in_groups(user: User, groups: tuple[str, ...]) -> bool:
    return user.is_active and user.groups.filter(name__in=groups).exists()


def can_request(user: User) -> bool:
    """Who may ask for a four-eyes change (and work the queues): ops_operator,
    ops_approver, and superusers, who propose like everyone else and approve
    only when they are in ops_approver too."""
    return bool(getattr(user, "is_active", False)) and (
        bool(getattr(user, "is_superuser", False)) or in_groups(user, OPERATOR_GROUPS)
    )


def can_decide(user: User) -> bool:
    return bool(getattr(user, "is_active", False)) and in_groups(user, (APPROVER_GROUP,))


def approval_request(*, kind: str, payload: dict, user: User, now: datetime) -> ApprovalRequest:
    if kind not in _handlers:
        raise InvalidInput("invalid_field", f"no approval kind {kind!r}", field="kind")
    if not can_request(user):
        raise Forbidden("forbidden", "only ops_operator or ops_approver users can ask for an approval")
    _checks[kind](payload=payload)
    with transaction.atomic():
        request = ApprovalRequest.objects.create(kind=kind, payload=payload, requested_by=user, requested_at=now)
        audit_record(
            actor=actor_of(user),
            action="approval.requested",
            object_type="ApprovalRequest",
            object_id=request.id,
            after={"kind": kind, "payload": payload},
            at=now,
        )
    return request


def approval_decide(*, approval_id: int, user: User, approve: bool, reason: str, now: datetime) -> ApprovalRequest:
    if not can_decide(user):
        raise Forbidden("forbidden", "only an ops_approver can approve or reject")
    with transaction.atomic():
        request = ApprovalRequest.objects.select_for_update().filter(pk=approval_id).first()
        if request is None:
            raise NotFound("not_found", f"no approval request {approval_id}")
        if request.status != ApprovalRequest.Status.PENDING:
            raise Conflict("already_decided", f"approval {request.id} is already {request.status}")
        if request.requested_by_id == user.id:
            raise Forbidden("four_eyes", "the person who asked cannot approve or reject their own request")
        if not approve and not reason.strip():
            raise InvalidInput("invalid_field", "a reason is required to reject", field="reason")
        result = None
        if approve:
            try:
                with transaction.atomic():
                    _checks[request.kind](payload=request.payload)
                    result = _handlers[request.kind](payload=request.payload, request=request, approver=user, now=now)
            except DomainError as error:
                raise Conflict(error.code, f"cannot approve: {error.message}", field=error.field) from None
        request.status = ApprovalRequest.Status.APPROVED if approve else ApprovalRequest.Status.REJECTED
        request.decided_by, request.decided_at, request.reason, request.result = user, now, reason.strip(), result
        request.save(update_fields=["status", "decided_by", "decided_at", "reason", "result"])
        audit_record(
            actor=actor_of(user),
            action=f"approval.{request.status}",
            object_type="ApprovalRequest",
            object_id=request.id,
            before={"status": ApprovalRequest.Status.PENDING},
            after={"status": request.status, "reason": request.reason, "result": result},
            at=now,
        )
    return request


def approval_as_json(request: ApprovalRequest) -> dict:
    return {
        "approval_id": request.id,
        "kind": request.kind,
        "status": request.status,
        "payload": request.payload,
        "requested_by": request.requested_by.username,
        "requested_at": request.requested_at,
        "decided_by": request.decided_by.username if request.decided_by else None,
        "decided_at": request.decided_at,
        "reason": request.reason,
        "result": request.result,
        "changes": [
            {
                "target": change.target,
                "natural_key": change.natural_key,
                "operation": change.operation,
                "before": change.before,
                "after": change.after,
            }
            for change in request.changes.all()
        ],
    }
