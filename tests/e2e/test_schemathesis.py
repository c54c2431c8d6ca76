"""The whole API against its own OpenAPI schema (/api/v1/schema/), with
schemathesis, as each principal: the engine key, SG1's operator key, an
operations key, and operations staff tokens (an operator and an approver).
Every operation gets a bounded number of generated requests, valid ones
and ones that break the schema on purpose; no answer may be a 5xx and none may fall outside the schema
(status code, content type, body). SCHEMATHESIS_EXAMPLES raises the number
per operation for a longer run (the default keeps CI to about a minute)."""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.conftest import api_client_for, staff_client
from tests.factories import trade

pytestmark = [pytest.mark.django_db, pytest.mark.para(23)]
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "4"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _summary(error: BaseException) -> str:
    """One line per failed check: what failed and the request that showed it."""
    parts = getattr(error, "exceptions", None) or [error]
    lines = []
    for part in parts:
        text = [t.strip() for t in str(part).strip().splitlines() if t.strip()]
        curl = next((t for t in text if t.startswith("curl ")), "")
        lines.append(f"{type(part).__name__}: {' | '.join(text[:2])[:300]} {curl[:300]}")
    return "; ".join(lines)


def _header(client) -> str:
    return client._credentials["HTTP_AUTHORIZATION"]


PRINCIPALS = {
    "engine key": lambda network: _header(api_client_for(network.home, scope="engine")),
    "SG1 operator key": lambda network: _header(api_client_for(network.sg1, scope="operator")),
    "operations key": lambda network: _header(api_client_for(network.home, scope="operations")),
    "ops_operator token": lambda network: _header(staff_client("fuzz-operator", "ops_operator")),
    "ops_approver token": lambda network: _header(staff_client("fuzz-approver", "ops_approver")),
}


@pytest.fixture
def in_process():
    """schemathesis calls the WSGI application itself: keep Django from
    closing the test's connection (and its transaction) after each request,
    as Django's own test client does (which puts the handlers back after
    each of its requests: so this fixture comes after any use of it)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(network, engine_client):
    """Something for every read to find: trades, a cycle with batches and legs."""
    engine_client.post("/api/v1/trades", {"trades": [trade(), trade(sell=("JP1", "j"))]}, format="json")
    api_client_for(network.home, scope="operations").post("/api/v1/cycles", {"kind": "intraday"}, format="json")
    return network


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_no_operation_answers_5xx_or_outside_its_schema(world, in_process, principal):
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)
    authorization = PRINCIPALS[principal](world)
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30

    for operation in operations:

        @given(case=st.one_of(operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE)))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case):
            response = case.call(headers={"Authorization": authorization})
            case.validate_response(response, checks=CHECKS)

        try:
            exercise()
        except (Exception, BaseExceptionGroup) as error:  # every operation's failures, reported together
            failures.append(f"{operation.label}: {_summary(error)}")

    assert failures == [], "\n\n".join(failures)
