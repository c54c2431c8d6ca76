"""``Authorization: Api-Key <key>``: a key acts for one operator with one scope."""

import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from controls.api.auth import LimitedAuthentication
from registry.models import OperatorAPIKey

Scope = OperatorAPIKey.Scope


class ApiPrincipal:
    """What ``request.user`` is for an API key."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, key: OperatorAPIKey):
        self.key = key
        self.operator = key.operator
        self.scope = key.scope

    @property
    def actor(self) -> str:
        return f"api-key:{self.key.prefix}:{self.key.name}"

    def __str__(self) -> str:
        return self.actor


# what djangorestframework-api-key issues: "<prefix>.<secret>", letters and digits
_KEY = re.compile(r"[A-Za-z0-9]{1,32}\.[A-Za-z0-9]{1,128}")


class _ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Api-Key"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        parts = header.split()
        if parts[0] != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Api-Key <key>'")
        if not _KEY.fullmatch(parts[1]):
            raise exceptions.AuthenticationFailed("API key is not valid or has been revoked")
        try:
            key = OperatorAPIKey.objects.get_from_key(parts[1])
        except OperatorAPIKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("API key is not valid or has been revoked") from None
        if key.has_expired:
            raise exceptions.AuthenticationFailed("API key has expired")
        return ApiPrincipal(key), key

    def authenticate_header(self, request) -> str:
        return self.keyword


class OperatorApiKeyAuthentication(LimitedAuthentication, _ApiKeyAuthentication):
    """``Authorization: Api-Key <key>``; failed attempts count per address."""


class HasScope(permissions.BasePermission):
    """The view lists ``allowed_scopes``; a key of another scope gets 403."""

    message = "this API key's scope does not allow this endpoint"

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return False
        allowed = getattr(view, "allowed_scopes", ())
        if principal.scope not in allowed:
            self.message = (
                f"an API key with scope {principal.scope!r} cannot use this endpoint (needs {' or '.join(allowed)})"
            )
            return False
        return True


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents "Authorization: Api-Key <key>" in the OpenAPI schema."""

    target_class = "registry.api.auth.OperatorApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Api-Key <key>"}
