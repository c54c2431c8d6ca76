import pytest
from rest_framework.test import APIClient

from tests.conftest import staff_client

staff = staff_client


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
