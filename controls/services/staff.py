from datetime import datetime

from django.contrib.auth.models import Group, User
from django.db import transaction
from knox.models import AuthToken

from controls.exceptions import Conflict, InvalidInput, NotFound

from .approvals import VIEWER_GROUPS
from .audit import audit_record


def staff_user_create(*, username: str, group: str, actor: str) -> tuple[User, str, datetime | None]:
    """An operations user in one group, with an API token (returned once)
    and when it expires."""
    if group not in VIEWER_GROUPS:
        raise InvalidInput("invalid_field", f"group must be one of {', '.join(VIEWER_GROUPS)}", field="group")
    if not username or not username.strip() or len(username) > 150:
        raise InvalidInput("invalid_field", "username must be 1 to 150 characters", field="username")
    with transaction.atomic():
        if User.objects.filter(username=username).exists():
            raise Conflict("conflict", f"user {username!r} already exists")
        user = User.objects.create_user(username=username, is_staff=True)
        user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get(name=group))
        token, expiry = _token_issue(user)
        audit_record(
            actor=actor,
            action="staff_user.created",
            object_type="User",
            object_id=username,
            after={"group": group, "token_expires": expiry.isoformat() if expiry else None},
        )
    return user, token, expiry


def staff_token_issue(*, username: str, actor: str) -> tuple[User, str, datetime | None]:
    """A new API token for an existing operations user (tokens expire);
    the user's other tokens stay valid until they expire."""
    with transaction.atomic():
        user = User.objects.filter(username=username, is_staff=True, is_active=True).first()
        if user is None:
            raise NotFound("not_found", f"no active operations user {username!r}")
        token, expiry = _token_issue(user)
        audit_record(
            actor=actor,
            action="staff_token.issued",
            object_type="User",
            object_id=username,
            after={"token_expires": expiry.isoformat() if expiry else None},
        )
    return user, token, expiry


def _token_issue(user: User) -> tuple[str, datetime | None]:
    """A knox token: only its digest is stored, with an expiry (REST_KNOX TOKEN_TTL)."""
    instance, token = AuthToken.objects.create(user=user)
    return token, instance.expiry
