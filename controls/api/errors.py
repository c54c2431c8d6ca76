"""Every error is ``{"code", "message", "field"?}`` with the right status."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from controls.exceptions import DomainError

logger = logging.getLogger(__name__)

_CODES = {
    exceptions.ParseError: "invalid_json",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def _first_error(detail, path: str = ""):
    """Flatten DRF's nested validation detail to (field, message)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            return _first_error(value, f"{path}.{name}" if path and name else (name or path))
    if isinstance(detail, list):
        for i, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                nested = f"{path}[{i}]" if isinstance(value, dict) else path
                return _first_error(value, nested)
            return path, str(value)
    return path, str(detail)


def error_body(code: str, message: str, field: str | None = None) -> dict:
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    return body


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.field), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        field, message = _first_error(exc.detail)
        body = error_body(
            "invalid_field" if field else "invalid_request", f"{field}: {message}" if field else message, field
        )
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.APIException):
        code = _CODES.get(type(exc)) or next((c for t, c in _CODES.items() if isinstance(exc, t)), "error")
        detail = exc.detail if isinstance(exc.detail, str) else _first_error(exc.detail)[1]
        response = Response(error_body(code, str(detail)), status=exc.status_code)
        if getattr(exc, "auth_header", None):
            response["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            response["Retry-After"] = f"{int(exc.wait)}"
        return response
    logger.exception("unhandled error in %s", context.get("view"))
    return Response(error_body("internal_error", "an internal error occurred; it has been logged"), status=500)


def json_404(request, exception=None):
    return JsonResponse(error_body("not_found", f"no such endpoint: {request.path}"), status=404)


def json_500(request):
    return JsonResponse(error_body("internal_error", "an internal error occurred; it has been logged"), status=500)
