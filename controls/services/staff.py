from django.contrib.auth.models import Group, User
from django.db import transaction
from rest_framework.authtoken.models import Token

from controls.exceptions import Conflict, InvalidInput

from .approvals import VIEWER_GROUPS
from .audit import audit_record


def staff_user_create(*, username: str, group: str, actor: str) -> tuple[User, str]:
    """An operations user in one group, with an API token (returned once)."""
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
        token = Token.objects.create(user=user)
        audit_record(
            actor=actor, action="staff_user.created", object_type="User", object_id=username, after={"group": group}
        )
    return user, token.key
