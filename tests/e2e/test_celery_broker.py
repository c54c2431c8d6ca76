"""Tasks through a real broker and a real worker process: the filesystem
transport that make run uses, and Redis (production's) when one answers.

The worker connects to this test run's PostgreSQL database, so the test uses
committed transactions.
"""

import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from celery.result import EagerResult
from django.db import connection

from config.celery import app
from settlement.models import Cycle
from settlement.services.trades import trades_ingest
from settlement.tasks import cycle_run_task, exposure_verify_task
from tests import factories
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


pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True)]


def reset_connections() -> None:
    """Make the app open new broker/backend connections for its new config."""
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    app.__dict__.pop("backend", None)
    app._local.__dict__.pop("backend", None)


def database_url() -> str:
    """This run's test database. The host may be a socket folder: it is
    percent-encoded so the worker reaches this server, not a default socket."""
    db = connection.settings_dict
    host = quote(str(db["HOST"]), safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{db['USER']}@{host}{port}/{db['NAME']}"


@pytest.fixture(params=["filesystem", "redis"])
def broker(request, tmp_path):
    """(broker URL, result backend URL, transport options, environment for the worker)."""
    if request.param == "redis":
        if not redis_answers():
            pytest.skip(f"no Redis at {REDIS}")
        return REDIS, REDIS, {}, {}
    folders = tmp_path / "broker"
    for name in ("queue", "processed", "control"):
        (folders / name).mkdir(parents=True)
    (tmp_path / "results").mkdir()
    options = {
        "data_folder_in": str(folders / "queue"),
        "data_folder_out": str(folders / "queue"),
        "processed_folder": str(folders / "processed"),
        "control_folder": str(folders / "control"),
        "store_processed": False,
    }
    # the settings derive the filesystem broker's folders from VAR_DIR
    return "filesystem://", f"file://{tmp_path / 'results'}", options, {"VAR_DIR": str(tmp_path)}


@pytest.fixture
def worker(broker):
    broker_url, backend_url, options, extra_env = broker
    env = {
        **os.environ,
        **extra_env,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": backend_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    # a queue of this run's own: another test run on the same Redis (a second
    # checkout, CI beside a developer) must not take these tasks, nor this
    # worker theirs
    queue = f"test-{uuid.uuid4().hex}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--queues",
            queue,
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
    keys = ("broker_url", "result_backend", "task_always_eager", "broker_transport_options", "task_default_queue")
    saved = {k: app.conf[k] for k in keys}
    app.conf.update(
        broker_url=broker_url,
        result_backend=backend_url,
        task_always_eager=False,
        broker_transport_options=options,
        task_default_queue=queue,
    )
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


def test_a_worker_runs_a_cycle_and_the_exposure_check_through_a_real_broker(worker):
    factories.build_network()
    at = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))
    trades_ingest(items=[{**trade(), "executed_at": (at - timedelta(hours=1)).isoformat()}], actor="engine", now=at)

    sent = cycle_run_task.delay("intraday", at.isoformat())
    assert not isinstance(sent, EagerResult)  # it went through the broker to the worker process
    cycle_id = sent.get(timeout=60)
    verified = exposure_verify_task.delay().get(timeout=60)
    again = cycle_run_task.delay("intraday", at.isoformat()).get(timeout=60)  # delivered twice: one cycle

    cycle = Cycle.objects.get(pk=cycle_id)
    assert (cycle.kind, cycle.status, cycle.obligations_taken) == ("intraday", "done", 2)
    assert again == cycle_id
    assert verified == {"ok": True, "differences": 0, "alert_id": None}
