"""Parsing request bodies the same way at every endpoint: strict JSON (a
bare NaN or a huge number is one item's problem, not the request's), an
object at the top, and instants with a time zone."""

import json
from datetime import datetime

import orjson
from django.utils import timezone

from controls.exceptions import InvalidInput
from controls.money import NonFiniteConstant
from controls.timestamps import parse_instant


def load_json(body: bytes) -> object:
    """orjson for speed; the standard parser as a fallback so that a bare
    NaN/Infinity or a huge number in one trade is that trade's rejection,
    not the whole request's."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body, parse_constant=NonFiniteConstant)
    except (ValueError, RecursionError) as error:
        raise InvalidInput("invalid_json", f"request body is not valid JSON: {error}") from None


def json_object(request, key: str) -> dict:
    data = load_json(request.body)
    if not isinstance(data, dict):
        raise InvalidInput("invalid_request", f"request body must be a JSON object with {key!r}")
    return data


def request_actor(request) -> str:
    """Who an API request acts as: the key's actor, or the user."""
    return getattr(request.user, "actor", str(request.user))


def parse_as_of(raw: object, *, default: datetime) -> datetime:
    # a cycle cannot take trades not yet executed
    return parse_instant(raw, field="as_of", default=default, not_after=timezone.now())
