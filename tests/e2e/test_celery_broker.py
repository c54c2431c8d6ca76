"""Tasks through a real broker (the local Redis) and a real worker process.

The worker connects to this test run's PostgreSQL database, so the test uses
committed transactions. Skipped on SQLite (the test database lives in memory)
and when no Redis answers; CI starts Redis before the suite.
"""

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from celery.result import EagerResult
from django.db import connection

from config.celery import app
from settlement.models import Cycle
from settlement.services.trades import trades_ingest
from settlement.tasks import cycle_run_task, exposure_verify_task
from tests import factories
from tests.conftest import requires_postgres
from tests.factories import trade

REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[2]


def redis_answers() -> bool:
    try:
        import redis
    except ImportError:
        return False
    try:
        return redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        return False


pytestmark = [
    pytest.mark.broker,
    requires_postgres,
    pytest.mark.skipif(not redis_answers(), reason=f"no Redis at {REDIS}"),
    pytest.mark.django_db(transaction=True),
]


def reset_connections() -> None:
    """Make the app open new broker/backend connections for its new config."""
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    app.__dict__.pop("backend", None)
    app._local.__dict__.pop("backend", None)


@pytest.fixture
def worker():
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": REDIS,
        "CELERY_RESULT_BACKEND": REDIS,
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    saved = {k: app.conf[k] for k in ("broker_url", "result_backend", "task_always_eager")}
    app.conf.update(broker_url=REDIS, result_backend=REDIS, task_always_eager=False)
    reset_connections()
    try:
        yield process
    finally:
        app.conf.update(**saved)
        reset_connections()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_a_worker_runs_a_cycle_and_the_exposure_check_through_redis(worker):
    factories.build_network()
    at = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))
    trades_ingest(items=[{**trade(), "executed_at": (at - timedelta(hours=1)).isoformat()}], actor="engine", now=at)

    sent = cycle_run_task.delay("intraday", at.isoformat())
    assert not isinstance(sent, EagerResult)  # it went through Redis to the worker process
    cycle_id = sent.get(timeout=60)
    verified = exposure_verify_task.delay().get(timeout=60)
    again = cycle_run_task.delay("intraday", at.isoformat()).get(timeout=60)  # delivered twice: one cycle

    cycle = Cycle.objects.get(pk=cycle_id)
    assert (cycle.kind, cycle.status, cycle.obligations_taken) == ("intraday", "done", 2)
    assert again == cycle_id
    assert verified == {"ok": True, "differences": 0, "alert_id": None}
