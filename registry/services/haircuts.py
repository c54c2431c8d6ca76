"""An asset's haircut changes only by proposal (four eyes, DESIGN section 12):
the cap holds at the replacement price, so lowering a haircut raises what
home may owe its clients."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import User

from controls.exceptions import InvalidInput, NotFound
from controls.models import ApprovalRequest
from controls.money import parse_decimal
from controls.services.changes import Operation, change_propose
from registry.models import Asset

HAIRCUT_SCALE = 4


def haircut_parse(value: object, *, field: str = "haircut") -> Decimal:
    """A haircut from outside: a decimal string, 0 to 1, at most four places."""
    haircut = parse_decimal(value, field=field, scale=HAIRCUT_SCALE, positive=False)
    if haircut < 0 or haircut > 1:
        raise InvalidInput(
            "out_of_range", f"{field} must be between 0 and 1 (0.10 = 10 %), got {format(haircut, 'f')}", field=field
        )
    return haircut


def asset_get(code: object) -> Asset:
    asset = Asset.objects.select_related("rail").filter(code=code).first() if isinstance(code, str) else None
    if asset is None:
        raise NotFound("not_found", f"no asset {code!r}", field="code")
    return asset


def haircut_propose(*, code: object, haircut: object, user: User, now: datetime) -> ApprovalRequest:
    """Propose ``haircut`` for the asset ``code``; a different ops_approver applies it."""
    asset = asset_get(code)
    asset.haircut = haircut_parse(haircut)
    return change_propose(proposed=asset, operation=Operation.UPDATE, user=user, now=now)
