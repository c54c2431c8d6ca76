"""How staff authenticate to the operations API, and the limit on failed
attempts shared by every authentication class.

Staff tokens are django-rest-knox tokens: stored as a SHA-512 digest (never
in plain text), each with an expiry (``STAFF_TOKEN_TTL_HOURS``), sent as
``Authorization: Token <token>``. A client address that fails to
authenticate ``AUTH_FAILURE_RATE`` times is refused (429, ``throttled``)
until its window passes, before any credential is checked again."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.cache import cache
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

_STAFF_TOKEN = re.compile(r"[0-9a-f]{64}")


def _failures_key(request) -> str:
    return f"auth-failures:{BaseThrottle().get_ident(request)}"


def _limit() -> tuple[int, int]:
    number, seconds = SimpleRateThrottle.parse_rate(None, settings.AUTH_FAILURE_RATE)  # type: ignore[arg-type]
    return int(number or 0), int(seconds or 60)


def auth_failures_check(request) -> None:
    """Refuse at once an address that failed too often in its window."""
    allowed, seconds = _limit()
    if cache.get(_failures_key(request), 0) >= allowed:
        raise exceptions.Throttled(
            wait=seconds, detail="too many failed authentication attempts from this address; try again later"
        )


def auth_failure_record(request) -> None:
    key = _failures_key(request)
    _, seconds = _limit()
    if cache.add(key, 1, timeout=seconds):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=seconds)


class LimitedAuthentication:
    """Mixin: count this class's failures per client address."""

    def authenticate(self, request):
        auth_failures_check(request)
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            auth_failure_record(request)
            raise


class StaffTokenAuthentication(LimitedAuthentication, TokenAuthentication):
    """``Authorization: Token <token>`` from create_staff_user (knox)."""

    def authenticate_credentials(self, token: bytes):
        # a knox token is 64 hex digits; anything else (NUL, non-UTF-8 bytes)
        # is refused here rather than reaching the database
        text = token.decode("latin-1")
        if not _STAFF_TOKEN.fullmatch(text):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(token)


class StaffTokenScheme(OpenApiAuthenticationExtension):
    """Documents "Authorization: Token <token>" in the OpenAPI schema."""

    target_class = "controls.api.auth.StaffTokenAuthentication"
    name = "StaffToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Token <token> (create_staff_user; hashed, expires after STAFF_TOKEN_TTL_HOURS)",
        }
