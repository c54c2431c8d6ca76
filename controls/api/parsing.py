"""Parsing request bodies the same way at every endpoint: strict JSON (a
bare NaN or a huge number is one item's problem, not the request's), an
object at the top, no deeper than a real request nests, text PostgreSQL can
store, and instants with a time zone."""

import json
from datetime import datetime

import orjson
from django.utils import timezone

from controls.exceptions import InvalidInput
from controls.money import NonFiniteConstant
from controls.timestamps import parse_instant
from controls.validation import unstorable_text

# Far deeper than any request of this API nests (a trade batch is 4 levels);
# deeper input is refused before anything walks or stores it.
MAX_DEPTH = 32


def _depth_within(data: object, limit: int) -> bool:
    """Level by level: every container of one depth, then their children."""
    level = [data] if isinstance(data, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return False
        children: list = []
        for item in level:
            children.extend(item.values() if isinstance(item, dict) else item)
        level = [child for child in children if isinstance(child, (dict, list))]
    return True


def _load(body: bytes, *, what: str) -> tuple[object, bool]:
    """The parsed body, and whether every string and key in it is known to
    be storable without walking it: orjson refuses lone surrogates (escaped
    or encoded) and raw control characters, so after orjson only the escape
    ``\\u0000`` can bring a NUL in."""
    try:
        data, storable = orjson.loads(body), b"\\u0000" not in body
    except orjson.JSONDecodeError as error:
        if "depth limit" in str(error):  # never hand that to the recursive standard parser
            raise InvalidInput("invalid_json", f"{what} nests deeper than {MAX_DEPTH} levels") from None
        try:
            data, storable = json.loads(body, parse_constant=NonFiniteConstant), False
        except (ValueError, RecursionError) as error:
            raise InvalidInput("invalid_json", f"{what} is not JSON: {error}") from None
    if not _depth_within(data, MAX_DEPTH):
        raise InvalidInput("invalid_json", f"{what} nests deeper than {MAX_DEPTH} levels")
    return data, storable


def load_json(body: bytes, *, what: str = "request body") -> object:
    """orjson for speed; the standard parser as a fallback so that a bare
    NaN/Infinity, a huge number or a lone surrogate in one trade is that
    trade's rejection, not the whole request's."""
    return _load(body, what=what)[0]


def json_body(request, key: str) -> tuple[dict, bool]:
    """The body as a JSON object, and whether all its text is known to be
    storable (see ``_load``); when it is not, an endpoint that judges items
    one by one (trades) walks each item and rejects only the bad ones."""
    data, storable = _load(request.body, what="request body")
    if not isinstance(data, dict):
        raise InvalidInput("invalid_request", f"request body must be a JSON object with {key!r}")
    return data, storable


def json_object(request, key: str) -> dict:
    """The body as a JSON object. Text that cannot be stored (NUL, a lone
    surrogate) is refused naming where."""
    data, storable = json_body(request, key)
    if not storable:
        where = unstorable_text(data)
        if where is not None:
            raise InvalidInput(
                "invalid_text",
                f"{where or 'a key'} holds a NUL character or a lone surrogate (not valid Unicode text)",
                field=where or None,
            )
    return data


def request_actor(request) -> str:
    """Who an API request acts as: the key's actor, or the user."""
    return getattr(request.user, "actor", str(request.user))


def parse_as_of(raw: object, *, default: datetime) -> datetime:
    # a cycle cannot take trades not yet executed
    return parse_instant(raw, field="as_of", default=default, not_after=timezone.now())


def query_choice(request, name: str, values: list[str]) -> str | None:
    """A query parameter that must be one of ``values``; None when absent."""
    value = request.query_params.get(name)
    if not value:
        return None
    if value not in values:
        raise InvalidInput("invalid_field", f"{name} must be one of {', '.join(values)}", field=name)
    return value
