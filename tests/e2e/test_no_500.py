"""No input produces a 500: arbitrary JSON (and bytes that are not JSON) at
every endpoint that takes a body, with a valid key or token."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import api_client_for, staff_client

pytestmark = pytest.mark.django_db

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "SG1",
            "HK1",
            "BTC",
            "HKD",
            "1",
            "0.5",
            "-1",
            "1e5",
            "NaN",
            "2026-11-23T10:00:00+08:00",
            "intraday",
            "withdrawal",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=12,
)
field_names = [
    "trades",
    "marks",
    "counterparty",
    "asset",
    "amount",
    "account",
    "kind",
    "as_of",
    "status",
    "reason",
    "evidence",
    "tx_hash",
    "bank_reference",
    "amount_hkd",
    "reference",
    "reverses",
    "total_hkd",
    "operator",
    "loss_hkd",
    "note",
    "lines",
    "source",
]
bodies = st.one_of(json_values, st.dictionaries(st.sampled_from(field_names), json_values, max_size=6))

ENGINE_POSTS = ["/api/v1/trades", "/api/v1/exposure/check", "/api/v1/marks", "/api/v1/legs/1/deliveries"]
OPS_POSTS = [
    "/api/v1/ops/cycles",
    "/api/v1/ops/rails/eth/status",
    "/api/v1/ops/legs/1/confirm",
    "/api/v1/ops/approvals/1/approve",
    "/api/v1/ops/approvals/1/reject",
    "/api/v1/ops/reserve/entries",
    "/api/v1/ops/cap",
    "/api/v1/ops/defaults",
    "/api/v1/ops/claims",
    "/api/v1/ops/claims/1/approve",
    "/api/v1/ops/claims/1/reject",
    "/api/v1/ops/breaks/1/take",
    "/api/v1/ops/breaks/1/resolve",
    "/api/v1/ops/balance-reports",
    "/api/v1/ops/instructions/take",
    "/api/v1/ops/statements",
]


@pytest.fixture
def clients(network):
    return {"engine": api_client_for(network.home, scope="engine"), "ops": staff_client("fuzzer", "ops_approver")}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_no_body_gives_a_500(clients, data):
    who, path = data.draw(st.sampled_from([("engine", p) for p in ENGINE_POSTS] + [("ops", p) for p in OPS_POSTS]))
    if data.draw(st.booleans()):
        raw = json.dumps(data.draw(bodies))
    else:
        raw = data.draw(st.binary(max_size=64)).decode("latin-1")
    response = clients[who].post(path, data=raw, content_type="application/json")
    assert response.status_code < 500, (path, raw, response.content[:300])
    assert "code" in response.json() or response.status_code in (200, 201, 202)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.dictionaries(
        st.sampled_from(
            [
                "status",
                "counterparty",
                "trade_id",
                "asset",
                "direction",
                "cursor",
                "page_size",
                "method",
                "kind",
                "older_than_hours",
                "operator",
            ]
        ),
        st.text(max_size=20),
        max_size=4,
    )
)
def test_no_query_string_gives_a_500(clients, query):
    for who, path in [
        ("engine", "/api/v1/obligations"),
        ("engine", "/api/v1/exposure"),
        ("engine", "/api/v1/cycles"),
        ("ops", "/api/v1/ops/approvals"),
        ("ops", "/api/v1/ops/claims"),
        ("ops", "/api/v1/ops/breaks"),
        ("ops", "/api/v1/ops/instructions"),
    ]:
        response = clients[who].get(path, query)
        assert response.status_code < 500, (path, query, response.content[:300])


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/api/v1/obligations?counterparty=%00", {}),
        ("/api/v1/trades", {"data": '{"trades": [{"trade_id": "A\\u0000B"}]}'}),
    ],
)
def test_a_nul_character_is_refused_as_bad_input(clients, path, kwargs):
    client = clients["engine"]
    response = client.post(path, content_type="application/json", **kwargs) if kwargs else client.get(path)
    assert (response.status_code, response.json()["code"]) == (400, "invalid_request")
