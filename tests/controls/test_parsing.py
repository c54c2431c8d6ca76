"""Request bodies: when the parser already knows all their text can be
stored, nothing walks it again; when it cannot know, the walk still runs
(circular para 22: every executed trade is kept, a bad one in the exceptions
queue, never a request lost to a 500)."""

from types import SimpleNamespace

import pytest

from controls.api.parsing import MAX_DEPTH, json_body, load_json
from controls.exceptions import InvalidInput

pytestmark = pytest.mark.para(22)


def request(body: bytes) -> SimpleNamespace:
    return SimpleNamespace(body=body)


@pytest.mark.parametrize(
    ("body", "storable"),
    [
        (b'{"trades": [{"trade_id": "T1", "note": "caf\xc3\xa9 \\ud83d\\ude00 \\\\ \\n"}]}', True),
        (b'{"trades": [{"trade_id": "T1", "note": "a\\u0000b"}]}', False),  # orjson takes a NUL escape
        (b'{"trades": [{"trade_id": "\\ud800"}]}', False),  # a lone surrogate: the fallback parser
        (b'{"trades": [{"trade_id": "T1", "price": NaN}]}', False),  # a bare NaN: the fallback parser
    ],
)
def test_text_is_known_storable_only_after_orjson_and_without_a_nul_escape(body, storable):
    data, known = json_body(request(body), "trades")

    assert known is storable
    assert isinstance(data["trades"], list)


def test_nesting_is_limited_at_every_depth():
    assert load_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    with pytest.raises(InvalidInput, match="nests deeper"):
        load_json(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    with pytest.raises(InvalidInput, match="nests deeper"):
        load_json(b'{"a": ' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1))
    assert load_json(b'{"a": ' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH) is not None
