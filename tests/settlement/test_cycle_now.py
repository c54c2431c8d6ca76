""" "Run a cycle now" takes what executed up to now (circular para 15:
intraday settlement on demand). A cycle asked for without as_of takes every
trade executed up to the moment it runs, not up to the minute before; a
request that returns a cycle already run says so ("replayed": true); beat
and Celery stay idempotent per (kind, as_of)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from settlement.models import Cycle
from settlement.services.trades import trades_ingest
from settlement.tasks import cycle_run_task
from tests.conftest import api_client_for, staff_client
from tests.factories import trade

pytestmark = [pytest.mark.django_db, pytest.mark.para(15)]
HKT = ZoneInfo("Asia/Hong_Kong")
AT_15_08 = datetime(2026, 11, 23, 15, 8, tzinfo=HKT)


def executed(at: datetime, trade_id: str) -> None:
    item = {**trade(trade_id=trade_id, base="BTC", quote="USDC", price="64000"), "executed_at": at.isoformat()}
    result = trades_ingest(items=[item], actor="engine", now=at + timedelta(seconds=1))
    assert result.accepted == 1


@pytest.fixture
def clock(monkeypatch):
    """The API's now, set by the test."""
    from django.utils import timezone

    class Clock:
        def set(self, moment: datetime) -> None:
            monkeypatch.setattr(timezone, "now", lambda: moment.astimezone(UTC))

    return Clock()


@pytest.fixture
def maker(network):
    return staff_client("maker", "ops_operator")


def test_a_cycle_asked_for_now_takes_a_trade_executed_seconds_ago(network, maker, clock):
    executed(AT_15_08 + timedelta(seconds=7), "T-15:08:07")
    clock.set(AT_15_08 + timedelta(seconds=30))

    response = maker.post("/api/v1/ops/cycles", {"kind": "intraday"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["obligations_taken"], body["replayed"]) == (2, False)
    assert body["as_of"] == "2026-11-23T07:08:30Z"


def test_a_second_request_in_the_same_minute_runs_a_new_cycle(network, maker, clock):
    executed(AT_15_08 + timedelta(seconds=7), "T-15:08:07")
    clock.set(AT_15_08 + timedelta(seconds=30))
    first = maker.post("/api/v1/ops/cycles", {"kind": "intraday"}, format="json").json()
    executed(AT_15_08 + timedelta(seconds=40), "T-15:08:40")
    clock.set(AT_15_08 + timedelta(seconds=45))

    response = maker.post("/api/v1/ops/cycles", {"kind": "intraday"}, format="json")

    second = response.json()
    assert response.status_code == 201
    assert second["id"] != first["id"] and (second["obligations_taken"], second["replayed"]) == (2, False)


def test_the_engine_door_takes_everything_up_to_now_too(network, clock):
    ops_key = api_client_for(network.home, scope="operations")
    executed(AT_15_08 + timedelta(seconds=7), "T-15:08:07")
    clock.set(AT_15_08 + timedelta(seconds=30))

    response = ops_key.post("/api/v1/cycles", {"kind": "intraday"}, format="json")

    assert response.status_code == 201
    assert (response.json()["obligations_taken"], response.json()["replayed"]) == (2, False)


def test_asking_again_for_a_cycle_that_ran_says_replayed(network, maker, clock):
    executed(AT_15_08 + timedelta(seconds=7), "T-15:08:07")
    clock.set(AT_15_08 + timedelta(minutes=5))
    as_of = (AT_15_08 + timedelta(seconds=30)).isoformat()

    first = maker.post("/api/v1/ops/cycles", {"kind": "intraday", "as_of": as_of}, format="json")
    again = maker.post("/api/v1/ops/cycles", {"kind": "intraday", "as_of": as_of}, format="json")

    assert (first.status_code, first.json()["replayed"]) == (201, False)
    assert (again.status_code, again.json()["replayed"]) == (200, True)
    assert again.json()["id"] == first.json()["id"]
    assert Cycle.objects.count() == 1


def test_a_cycle_task_delivered_twice_makes_one_cycle(network):
    executed(AT_15_08 + timedelta(seconds=7), "T-15:08:07")
    as_of = (AT_15_08 + timedelta(seconds=30)).isoformat()

    first = cycle_run_task.delay("intraday", as_of).get()
    second = cycle_run_task.delay("intraday", as_of).get()

    assert first == second and Cycle.objects.count() == 1
