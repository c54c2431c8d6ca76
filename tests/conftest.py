"""Shared fixtures: a small network built with factories, API clients per scope."""

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests import factories

pytest_plugins = ["tests.traceability.plugin"]


def pytest_configure(config):
    """Plain ``pytest`` works too: without DATABASE_URL the project's own
    PostgreSQL is started (make test does the same, and stops it after)."""
    if not os.environ.get("DATABASE_URL"):
        root = Path(__file__).resolve().parent.parent
        subprocess.run(
            [sys.executable, str(root / "scripts" / "pg.py"), "start"], check=True, stdout=subprocess.DEVNULL
        )


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Request rates and failed-login counts live in the cache: each test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from config.celery import app

    app.conf.task_always_eager = True


@pytest.fixture
def network(db):
    """HK1 (home) with two overseas counterparties, BTC/USDC/HKD and a cap."""
    return factories.build_network()


@pytest.fixture
def engine_client(network):
    return api_client_for(network.home, scope="engine")


@pytest.fixture
def ops_client(network):
    return api_client_for(network.home, scope="operations")


def api_client_for(operator, *, scope: str) -> APIClient:
    _, key = factories.api_key(operator, scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


def staff_client(username: str, group: str) -> APIClient:
    """An operations user made with create_staff_user, authenticated by its token."""
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("create_staff_user", "--username", username, "--group", group, stdout=out)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip().splitlines()[-1]}")
    return client


__all__ = ["Decimal", "api_client_for", "connection", "staff_client"]
