"""API keys: one operator, one scope, stored hashed, shown once."""

from datetime import datetime
from typing import cast

from django.db import transaction

from controls.exceptions import InvalidInput, NotFound
from controls.services.audit import audit_record
from registry.models import Operator, OperatorAPIKey


def api_key_scope_check(*, operator: Operator, scope: str) -> None:
    """A key's scope must fit its operator: ``engine`` acts for home,
    ``operator`` for an overseas operator, ``operations`` for either."""
    if scope not in OperatorAPIKey.Scope.values:
        raise InvalidInput(
            "invalid_field", f"scope must be one of {', '.join(OperatorAPIKey.Scope.values)}", field="scope"
        )
    if scope == OperatorAPIKey.Scope.ENGINE and not operator.is_home:
        raise InvalidInput(
            "invalid_field", f"the matching engine's key acts for the home operator, not {operator.code}", field="scope"
        )
    if scope == OperatorAPIKey.Scope.OPERATOR and operator.is_home:
        raise InvalidInput("invalid_field", "an operator-scope key is for an overseas operator", field="scope")


def api_key_create(
    *, operator_code: str, name: str, scope: str | None, actor: str, expiry_date: datetime | None = None
) -> tuple[OperatorAPIKey, str]:
    operator = Operator.objects.filter(code=operator_code).first()
    if operator is None:
        raise InvalidInput("unknown_operator", f"no operator with code {operator_code!r}", field="operator")
    if not name.strip():
        raise InvalidInput("invalid_field", "name must not be empty", field="name")
    scope = scope or (OperatorAPIKey.Scope.ENGINE if operator.is_home else OperatorAPIKey.Scope.OPERATOR)
    api_key_scope_check(operator=operator, scope=scope)
    with transaction.atomic():
        created, secret = OperatorAPIKey.objects.create_key(
            operator=operator, name=name.strip(), scope=scope, expiry_date=expiry_date
        )
        key = cast(OperatorAPIKey, created)
        audit_record(
            actor=actor,
            action="api_key.created",
            object_type="OperatorAPIKey",
            object_id=key.prefix,
            after={
                "operator": operator.code,
                "scope": scope,
                "name": key.name,
                "expiry_date": expiry_date.isoformat() if expiry_date else None,
            },
        )
    return key, secret


def api_key_update(
    *, key_id: str, revoked: bool, expiry_date: datetime | None, actor: str, now: datetime
) -> OperatorAPIKey:
    """Revoke a key or change its expiry (a revocation is final)."""
    with transaction.atomic():
        key = OperatorAPIKey.objects.select_for_update().filter(pk=key_id).first()
        if key is None:
            raise NotFound("not_found", "no such API key")
        now_revoked = key.revoked or revoked  # a revocation is final
        before = {"revoked": key.revoked, "expiry_date": key.expiry_date.isoformat() if key.expiry_date else None}
        after = {"revoked": now_revoked, "expiry_date": expiry_date.isoformat() if expiry_date else None}
        if before == after:
            return key
        key.revoked, key.expiry_date = now_revoked, expiry_date
        key.save(update_fields=["revoked", "expiry_date"])
        audit_record(
            actor=actor,
            action="api_key.changed",
            object_type="OperatorAPIKey",
            object_id=key.prefix,
            before=before,
            after=after,
            at=now,
        )
        return key
