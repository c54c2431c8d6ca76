from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient


def staff(username: str, group: str) -> APIClient:
    out = StringIO()
    call_command("create_staff_user", "--username", username, "--group", group, stdout=out)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip().splitlines()[-1]}")
    return client


@pytest.fixture
def maker(db):
    return staff("maker", "ops_operator")


@pytest.fixture
def checker(db):
    return staff("checker", "ops_approver")


def approve(maker_response, checker: APIClient) -> dict:
    assert maker_response.status_code == 202, maker_response.content
    response = checker.post(f"/api/v1/ops/approvals/{maker_response.json()['approval_id']}/approve")
    assert response.status_code == 200, response.content
    return response.json()
