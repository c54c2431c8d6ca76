"""Hardening (circular para 23: systems that keep their records safe):
staff tokens stored hashed and expiring, request and failed-authentication
limits, admin login lockout, no start without a SECRET_KEY, a clean
``check --deploy``, and a schema that says what the API answers."""

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.conftest import api_client_for, staff_client

pytestmark = [pytest.mark.django_db, pytest.mark.para(23)]
ROOT = Path(__file__).resolve().parents[2]


def created_token(username: str, group: str = "ops_viewer") -> str:
    out = StringIO()
    call_command("create_staff_user", "--username", username, "--group", group, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert "valid until" in lines[-2]
    return lines[-1]


def test_a_staff_token_is_stored_as_a_digest_and_expires(db, settings):
    token = created_token("viewer")

    (stored,) = AuthToken.objects.all()
    assert token not in (stored.digest, stored.token_key) and stored.digest != token
    assert len(token) == 64 and stored.token_key == token[:15]
    assert stored.expiry - timezone.now() == pytest.approx(
        timedelta(hours=settings.STAFF_TOKEN_TTL_HOURS), abs=timedelta(minutes=1)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/ops/approvals").status_code == 200

    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))

    refused = client.get("/api/v1/ops/approvals")
    assert (refused.status_code, refused.json()["code"]) == (401, "authentication_failed")


def test_a_new_token_can_be_issued_for_an_existing_user(db):
    created_token("viewer")
    out = StringIO()
    call_command("create_staff_user", "--username", "viewer", "--new-token", stdout=out)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip().splitlines()[-1]}")

    assert client.get("/api/v1/ops/approvals").status_code == 200
    assert AuthToken.objects.count() == 2


@pytest.mark.parametrize(
    "header", ["Token " + "g" * 64, "Token \u00e9\u00e9", "Token abc", "Api-Key x\u0000.y", "Api-Key .."]
)
def test_malformed_credentials_are_a_401_never_a_500(network, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/ops/approvals" if header.startswith("Token") else "/api/v1/exposure")

    assert response.status_code == 401, response.content


def test_repeated_failed_authentication_from_one_address_is_throttled(network, settings):
    settings.AUTH_FAILURE_RATE = "3/min"
    good = api_client_for(network.home, scope="engine")
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Api-Key abcdefgh.wrongwrongwrong")

    answers = [bad.get("/api/v1/exposure").status_code for _ in range(4)]

    assert answers == [401, 401, 401, 429]
    throttled = bad.get("/api/v1/exposure")
    assert throttled.json()["code"] == "throttled" and int(throttled["Retry-After"]) > 0
    # the same address is refused whatever it sends until the window passes
    assert good.get("/api/v1/exposure").status_code == 429
    other = api_client_for(network.home, scope="engine")
    assert other.get("/api/v1/exposure", REMOTE_ADDR="10.0.0.9").status_code == 200


def test_requests_are_limited_per_key_and_per_address(network, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    # the rates DRF read from REST_FRAMEWORK at start, lowered for this test only
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"principal": "3/min", "address": "5/min"})
    engine = api_client_for(network.home, scope="engine")
    per_key = [engine.get("/api/v1/exposure").status_code for _ in range(4)]
    ops = api_client_for(network.home, scope="operations")
    per_address = [ops.get("/api/v1/exposure").status_code for _ in range(2)]

    assert per_key == [200, 200, 200, 429]  # the key's own limit
    assert per_address == [200, 429]  # the address has had 5 requests in this minute


def test_the_admin_login_locks_out_after_repeated_failures(db, client, settings):
    from django.contrib.auth.models import User

    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_superuser("boss", password="right-horse-battery")
    for _ in range(3):
        response = client.post("/admin/login/?next=/admin/", {"username": "boss", "password": "wrong"})
        assert response.status_code in (200, 429)

    locked = client.post("/admin/login/?next=/admin/", {"username": "boss", "password": "right-horse-battery"})

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "SESSION_", "CSRF_", "SECRET_KEY"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DEBUG": "0", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_a_secret_key_and_debug_off_the_process_refuses_to_start():
    result = run_manage("check")

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "SECRET_KEY is not set: set it in the environment (DEBUG is off, so no built-in key is used)"
    ]


def test_check_deploy_is_clean_under_production_settings():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", SECRET_KEY="prod-" + "x7Qp2" * 12, ALLOWED_HOSTS="sob.example"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_schema_documents_list_envelopes_and_every_error_response(db):
    import yaml

    out = StringIO()
    call_command("spectacular", "--fail-on-warn", stdout=out)
    schema = yaml.safe_load(out.getvalue())

    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "message"] and set(error["properties"]) == {"code", "message", "field"}
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            for status in ("400", "401", "403", "404", "409", "429"):
                assert status in operation["responses"], (path, method, status)
    for path in ("/api/v1/cycles", "/api/v1/ops/approvals", "/api/v1/ops/breaks", "/api/v1/ops/instructions"):
        body = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        component = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
        assert {"next", "previous", "results"} <= set(component["properties"]), path
    run = schema["paths"]["/api/v1/ops/cycles"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert "replayed" in schema["components"]["schemas"][run["$ref"].rsplit("/", 1)[-1]]["properties"]


def test_staff_client_still_reads_the_token_from_the_last_line(network):
    assert staff_client("reader", "ops_viewer").get("/api/v1/ops/approvals").status_code == 200
