"""No input produces a 500 at the prefunding endpoints (DESIGN section 6a):
arbitrary JSON, bytes that are not JSON, and odd paths and query strings."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import api_client_for, staff_client

from .test_no_500 import json_values

pytestmark = pytest.mark.django_db

fields = [
    "order_id",
    "operator",
    "account",
    "asset",
    "amount",
    "expires_at",
    "holds",
    "event_id",
    "kind",
    "occurred_at",
    "reference",
    "release_open_holds",
    "reason",
    "as_of",
    "order_ids",
]
values = st.one_of(
    json_values,
    st.sampled_from(["HK1", "SG1", "pro-1", "HKD", "USDC", "10", "deposit", "withdrawal_commit", "O1", True]),
    st.lists(st.dictionaries(st.sampled_from(fields), json_values, max_size=6), max_size=3),
)
bodies = st.one_of(json_values, st.dictionaries(st.sampled_from(fields), values, max_size=7))

CALLS = [
    ("engine", "post", "/api/v1/prefunding/holds"),
    ("engine", "post", "/api/v1/prefunding/holds/batch"),
    ("engine", "patch", "/api/v1/prefunding/holds/HK1/O1"),
    ("engine", "delete", "/api/v1/prefunding/holds/HK1/O1"),
    ("engine", "post", "/api/v1/prefunding/open-orders"),
    ("operator", "post", "/api/v1/prefunding/funding-events"),
    ("operations", "post", "/api/v1/prefunding/funding-events"),
    ("ops", "post", "/api/v1/ops/prefunding/freeze"),
    ("ops", "post", "/api/v1/ops/prefunding/freeze/1/lift"),
]


@pytest.fixture
def clients(network):
    return {
        "engine": api_client_for(network.home, scope="engine"),
        "operator": api_client_for(network.sg1, scope="operator"),
        "operations": api_client_for(network.home, scope="operations"),
        "ops": staff_client("fuzzer", "ops_approver"),
    }


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_no_body_gives_a_500(clients, data):
    who, method, path = data.draw(st.sampled_from(CALLS))
    if data.draw(st.booleans()):
        raw = json.dumps(data.draw(bodies))
    else:
        raw = data.draw(st.binary(max_size=64)).decode("latin-1")
    response = getattr(clients[who], method)(path, data=raw, content_type="application/json")
    assert response.status_code < 500, (path, raw, response.content[:300])
    assert "code" in response.json() or response.status_code in (200, 201, 202)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    segment=st.text(min_size=1, max_size=20).filter(lambda s: "/" not in s and "\x00" not in s),
    query=st.dictionaries(st.sampled_from(["operator", "asset", "status"]), st.text(max_size=12), max_size=3),
)
def test_no_path_or_query_gives_a_500(clients, segment, query):
    from urllib.parse import quote

    seg = quote(segment, safe="")
    for who, path in [
        ("engine", f"/api/v1/prefunding/holds/HK1/{seg}"),
        ("engine", f"/api/v1/prefunding/holds/{seg}/O1"),
        ("engine", f"/api/v1/prefunding/accounts/{seg}/x"),
        ("operator", f"/api/v1/prefunding/accounts/SG1/{seg}"),
        ("engine", "/api/v1/prefunding/cover"),
        ("operator", "/api/v1/prefunding/cover"),
        ("ops", "/api/v1/ops/prefunding/freezes"),
    ]:
        response = clients[who].get(path, query)
        assert response.status_code < 500, (path, query, response.content[:300])
