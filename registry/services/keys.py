from typing import cast

from django.db import transaction

from controls.exceptions import InvalidInput
from controls.services.audit import audit_record
from registry.models import Operator, OperatorAPIKey


def api_key_create(*, operator_code: str, name: str, scope: str | None, actor: str) -> tuple[OperatorAPIKey, str]:
    operator = Operator.objects.filter(code=operator_code).first()
    if operator is None:
        raise InvalidInput("unknown_operator", f"no operator with code {operator_code!r}", field="operator")
    if not name.strip():
        raise InvalidInput("invalid_field", "name must not be empty", field="name")
    scope = scope or (OperatorAPIKey.Scope.ENGINE if operator.is_home else OperatorAPIKey.Scope.OPERATOR)
    if scope == OperatorAPIKey.Scope.ENGINE and not operator.is_home:
        raise InvalidInput(
            "invalid_field", f"the matching engine's key acts for the home operator, not {operator.code}", field="scope"
        )
    if scope == OperatorAPIKey.Scope.OPERATOR and operator.is_home:
        raise InvalidInput("invalid_field", "an operator-scope key is for an overseas operator", field="scope")
    with transaction.atomic():
        created, secret = OperatorAPIKey.objects.create_key(operator=operator, name=name.strip(), scope=scope)
        key = cast(OperatorAPIKey, created)
        audit_record(
            actor=actor,
            action="api_key.created",
            object_type="OperatorAPIKey",
            object_id=key.prefix,
            after={"operator": operator.code, "scope": scope, "name": key.name},
        )
    return key, secret
