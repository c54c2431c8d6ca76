"""What the OpenAPI schema says beyond each view's own annotations: the
cursor-page envelope of list endpoints, and the error body every operation
can answer with (``{"code", "message", "field"?}``)."""

from __future__ import annotations

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

ERROR_STATUSES = {
    "400": "Bad input: the body, a parameter or a field (named in field) is not acceptable",
    "401": "No credentials, or credentials that are not valid (or have expired)",
    "403": "These credentials may not use this endpoint",
    "404": "No such object (or endpoint)",
    "409": "Conflicts with the current state (already decided, taken, settled...)",
    "429": "Too many requests (or failed authentications) from this key or address; see Retry-After",
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "machine-readable, e.g. invalid_field, not_found, throttled"},
        "message": {"type": "string", "description": "for people"},
        "field": {"type": "string", "description": "the field or parameter at fault, when there is one"},
    },
    "required": ["code", "message"],
}


def cursor_page(name: str, item) -> serializers.Serializer:
    """A list endpoint's body: one page of ``item`` and the cursors around it."""
    return inline_serializer(
        name,
        {
            "next": serializers.URLField(allow_null=True, help_text="the next page, or null"),
            "previous": serializers.URLField(allow_null=True, help_text="the previous page, or null"),
            "results": item(many=True) if isinstance(item, type) else serializers.ListField(child=item),
        },
    )


def error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: every operation documents the
    error statuses it can answer, with the one error body."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for methods in result.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses.setdefault(status, {"description": description, "content": body})
    return result
