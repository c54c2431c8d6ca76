"""Prefunding under concurrency on PostgreSQL: real threads, real
transactions. Where the order of a race matters, the test holds a row lock
in its own connection, lets the threads queue up behind it (seen in
pg_stat_activity, not guessed with sleeps) and then lets them go."""

import random
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from settlement.models import HoldEvent, PrefundingBalance, PrefundingHold
from settlement.selectors.prefunding import prefunding_recompute
from settlement.services.prefunding import hold_release, holds_place
from settlement.services.trades import trades_ingest
from tests.factories import trade

from .conftest import prefunding_network

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.para(10)]

THREADS = 8


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # the view is a snapshot per transaction otherwise
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def until(condition, *, seconds: float = 30) -> None:
    """Poll for a state of the database (not a timing guess): fail if it never comes."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the threads never queued on the lock")
        time.sleep(0.01)


class holding:
    """Hold a row lock in this connection for the block; the threads started
    in the block are joined by the caller after it, even when the block fails."""

    def __init__(self, lock):
        self.lock, self.atomic = lock, transaction.atomic()

    def __enter__(self):
        self.atomic.__enter__()
        self.lock()

    def __exit__(self, *exc):
        return self.atomic.__exit__(*exc)


def run_threads(target, count=THREADS):
    errors: list[BaseException] = []

    def wrapped(n):
        try:
            target(n)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=wrapped, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    return threads, errors


def test_eight_threads_placing_and_releasing_near_the_limit_never_overdraw():
    pf = prefunding_network()
    for account in ("a", "b"):
        pf.fund("HK1", account, "HKD", "100.00")
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []

    def worker(n: int) -> None:
        rng = random.Random(n)
        barrier.wait()
        for i in range(25):
            account = rng.choice(("a", "b"))
            item = {
                "order_id": f"T{n}-{i}",
                "operator": "HK1",
                "account": account,
                "asset": "HKD",
                "amount": str(rng.choice((7, 13, 29, 41))),
            }
            result = holds_place(items=[item], actor=f"t{n}", now=timezone.now())[0]
            outcomes.append(result.outcome if result.outcome != "refused" else result.body["code"])
            if result.outcome == "created" and rng.random() < 0.6:
                hold_release(operator="HK1", order_id=item["order_id"], actor=f"t{n}", now=timezone.now())

    threads, errors = run_threads(worker)
    for t in threads:
        t.join()

    assert errors == []
    assert set(outcomes) <= {"created", "insufficient_prefunding"}
    assert outcomes.count("created") > 0 and outcomes.count("insufficient_prefunding") > 0  # the limit was reached
    for balance in PrefundingBalance.objects.filter(account__in=("a", "b")):
        open_holds = sum(h.remaining for h in PrefundingHold.objects.filter(balance=balance, status="held"))
        assert balance.held == open_holds <= balance.funded == Decimal(100)
    assert prefunding_recompute() == []


def test_two_holds_that_fit_only_one_at_a_time_are_decided_by_the_balance_lock():
    pf = prefunding_network()
    pf.fund("HK1", "a", "HKD", "100.00")
    results = []

    def place(n: int) -> None:
        item = {"order_id": f"R{n}", "operator": "HK1", "account": "a", "asset": "HKD", "amount": "60"}
        results.append(holds_place(items=[item], actor="race", now=timezone.now())[0])

    with holding(lambda: PrefundingBalance.objects.select_for_update().get(account="a")):  # both queue behind it
        threads, errors = run_threads(place, count=2)
        until(lambda: waiting_on_locks() >= 2)
    for t in threads:
        t.join()

    assert errors == []
    assert sorted(r.outcome for r in results) == ["created", "refused"]
    refused = next(r for r in results if r.outcome == "refused")
    assert (refused.body["code"], refused.body["available"]) == ("insufficient_prefunding", "40.00")
    assert PrefundingBalance.objects.get(account="a").held == Decimal(60)


def test_the_same_order_placed_concurrently_is_one_hold():
    pf = prefunding_network()
    pf.fund("HK1", "a", "HKD", "100.00")
    results = []

    def place(n: int) -> None:
        item = {"order_id": "SAME", "operator": "HK1", "account": "a", "asset": "HKD", "amount": "30"}
        results.append(holds_place(items=[item], actor="race", now=timezone.now())[0])

    with holding(lambda: PrefundingBalance.objects.select_for_update().get(account="a")):
        threads, errors = run_threads(place)
        until(lambda: waiting_on_locks() >= THREADS)
    for t in threads:
        t.join()

    assert errors == []
    assert sorted(r.outcome for r in results) == ["created"] + ["duplicate"] * (THREADS - 1)
    assert PrefundingHold.objects.count() == 1
    assert PrefundingBalance.objects.get(account="a").held == Decimal(30)


def test_a_trade_replayed_concurrently_consumes_its_holds_once():
    pf = prefunding_network()
    pf.fund("HK1", "pro-1", "USDC", "10000")
    pf.fund("SG1", "sg-1", "BTC", "1")
    pf.hold("B1", "10000", operator="HK1", account="pro-1", asset="USDC")
    pf.hold("S1", "1", operator="SG1", account="sg-1", asset="BTC")
    item = trade(
        trade_id="RACE",
        base="BTC",
        quote="USDC",
        price="50000",
        quantity="0.1",
        buy=("HK1", "pro-1"),
        sell=("SG1", "sg-1"),
        executed_at=timezone.now().isoformat(),
    )
    item["buy"]["order_id"], item["sell"]["order_id"] = "B1", "S1"
    results = []

    def replay(n: int) -> None:
        results.append(trades_ingest(items=[item], actor=f"engine-{n}"))

    # the first intake waits on the hold, the rest behind it on the trade id
    with holding(lambda: PrefundingHold.objects.select_for_update().get(order_id="S1")):
        threads, errors = run_threads(replay)
        until(lambda: waiting_on_locks() >= THREADS)
    for t in threads:
        t.join()

    assert errors == []
    assert sum(r.accepted for r in results) == 1 and sum(r.duplicates for r in results) == THREADS - 1
    assert HoldEvent.objects.filter(kind="consumed").count() == 2
    sell = PrefundingBalance.objects.get(account="sg-1", asset__code="BTC")
    assert (sell.held, sell.committed) == (Decimal("0.9"), Decimal("0.1"))
    assert prefunding_recompute() == []
