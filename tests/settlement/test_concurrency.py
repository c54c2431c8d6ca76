"""Concurrent intake on PostgreSQL: real threads, real transactions."""

import random
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from settlement.models import Obligation, Trade, TradeException
from settlement.selectors.exposure import exposure_get, exposure_recompute
from settlement.services.exposure import exposure_verify
from tests import factories
from tests.conftest import api_client_for
from tests.factories import trade

pytestmark = [pytest.mark.django_db(transaction=True)]

THREADS = 8
OWN = 70  # trades only one thread sends
SHARED = 30  # trade ids every thread sends, same content (30% of each thread's ids)
CONTESTED = 3  # ids every thread sends with its own content: one wins, the rest conflict


@pytest.mark.para(12)
def test_eight_threads_with_overlapping_batches_store_each_trade_once():
    network = factories.build_network(cap="10000000000", reserve="10000000000")
    network.btc.haircut = Decimal("0.10")  # the figures with haircuts must agree too (section 5)
    network.btc.save(update_fields=["haircut"])
    when = timezone.now().isoformat()
    shared = [
        trade(trade_id=f"S{i}", sell=("SG1" if i % 2 else "JP1", "x"), quantity="0.1", executed_at=when)
        for i in range(SHARED)
    ]
    clients = [api_client_for(network.home, scope="engine") for _ in range(THREADS)]
    results: list[dict] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        try:
            own = [trade(trade_id=f"O{n}-{i}", quantity="0.01", sell=("SG1", f"c{i}")) for i in range(OWN)]
            contested = [trade(trade_id=f"C{i}", quantity=f"0.0{n + 1}") for i in range(CONTESTED)]
            items = own + shared + contested
            random.Random(n).shuffle(items)
            barrier.wait()
            for half in (items[: len(items) // 2], items[len(items) // 2 :]):
                response = clients[n].post("/api/v1/trades", {"trades": half}, format="json")
                assert response.status_code == 200, response.content
                results.append(response.json())
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    expected_trades = THREADS * OWN + SHARED + CONTESTED
    assert Trade.objects.count() == expected_trades
    assert sum(r["accepted"] for r in results) == expected_trades
    assert sum(r["duplicates"] for r in results) == (THREADS - 1) * SHARED
    rejected = [x for r in results for x in r["rejected"]]
    assert {x["code"] for x in rejected} == {"conflict"}
    assert len(rejected) == (THREADS - 1) * CONTESTED
    assert TradeException.objects.filter(code="conflict").count() == (THREADS - 1) * CONTESTED
    assert Obligation.objects.count() == 2 * expected_trades
    assert exposure_verify(as_of=timezone.now()).ok
    now = timezone.now()
    running, recomputed = exposure_get(as_of=now), exposure_recompute(as_of=now)
    assert (running.total_hkd, running.total_at_marks_hkd) == (recomputed.total_hkd, recomputed.total_at_marks_hkd)
    # every receivable is BTC: the haircut figure is the plain one plus 10 %
    assert running.total_hkd == running.total_at_marks_hkd * Decimal("1.10")
    assert running.total_at_marks_hkd > 0


@pytest.mark.para(13)
def test_cycles_racing_each_other_and_an_intake_take_each_obligation_once():
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from settlement.models import BatchItem, Cycle
    from settlement.services.cycles import cycle_run
    from settlement.services.trades import trades_ingest

    factories.build_network(cap="10000000000", reserve="10000000000")
    start = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))
    executed = (start - timedelta(hours=1)).isoformat()
    trades_ingest(
        items=[
            {**trade(trade_id=f"R{i}", sell=("SG1" if i % 2 else "JP1", "c")), "executed_at": executed}
            for i in range(200)
        ],
        actor="engine",
        now=start,
    )
    errors: list[BaseException] = []
    barrier = threading.Barrier(5)

    def cycle_at(minutes: int) -> None:
        try:
            barrier.wait()
            cycle_run(kind="intraday", as_of=start + timedelta(minutes=minutes), actor="race")
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    def late_intake() -> None:
        try:
            barrier.wait()
            items = [{**trade(trade_id=f"LATE{i}"), "executed_at": executed} for i in range(50)]
            trades_ingest(items=items, actor="engine", now=start)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=cycle_at, args=(m,)) for m in (0, 0, 1, 2)] + [
        threading.Thread(target=late_intake)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert Cycle.objects.count() == 3  # the two at the same as_of are one cycle
    in_a_batch = Obligation.objects.filter(batch__isnull=False).count()
    # no obligation taken twice: what the cycles say they took is what is in a batch
    assert sum(Cycle.objects.values_list("obligations_taken", flat=True)) == in_a_batch
    assert not BatchItem.objects.exists()  # none left a batch
    assert Obligation.objects.filter(status="open").count() + in_a_batch == Obligation.objects.count()
    assert exposure_verify(as_of=timezone.now()).ok


@pytest.mark.para(12, 15)
def test_verification_in_its_own_transaction_agrees_while_intake_runs():
    """The Celery task's path: a REPEATABLE READ snapshot, no lock on intake."""
    factories.build_network(cap="10000000000", reserve="10000000000")
    from settlement.services.trades import trades_ingest

    done = threading.Event()
    errors: list[BaseException] = []

    def intake() -> None:
        try:
            for n in range(15):
                trades_ingest(items=[trade(trade_id=f"V{n}-{i}", quantity="0.01") for i in range(40)], actor="engine")
        except BaseException as error:
            errors.append(error)
        finally:
            done.set()
            connection.close()

    writer = threading.Thread(target=intake)
    writer.start()
    results = []
    while not done.is_set():
        results.append(exposure_verify(as_of=timezone.now()).ok)
    writer.join()

    assert errors == []
    assert results and all(results)
    assert exposure_verify(as_of=timezone.now()).ok
