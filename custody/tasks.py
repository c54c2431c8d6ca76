"""Celery tasks for custody: thin, idempotent, time-limited."""

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from custody.services.chain import chain_watch_all
from custody.services.prefunding import cover_check, open_orders_reconcile, open_orders_reconcile_pending
from custody.services.reconcile import reconcile_run


@shared_task(name="custody.watch_chain", time_limit=240, soft_time_limit=200)
def watch_chain_task(rail: str | None = None) -> list[dict]:
    """One poll of every evm rail (or one), then matching. Beat runs it often;
    a slow node only delays the next run (the cursor makes runs resumable)."""
    return [result.as_json() for result in chain_watch_all(now=timezone.now(), rail_code=rail)]


@shared_task(name="custody.reconcile", time_limit=240, soft_time_limit=200)
def reconcile_task() -> dict:
    """Matching, breaks (including missing deliveries past deadline) and the
    instruction outbox, also when no chain or statement news arrived."""
    return reconcile_run(as_of=timezone.now()).as_json()


@shared_task(name="custody.prefunding_cover_check", time_limit=120, soft_time_limit=100)
def prefunding_cover_check_task() -> dict:
    """Every operator's prefunding cover against its designated custodians'
    attestations: stale or breached cover becomes a break."""
    result = cover_check(as_of=timezone.now())
    return {"checked": result["checked"], "states": result["states"], "breaks": result["breaks"]}


@shared_task(name="custody.open_orders_reconcile", time_limit=240, soft_time_limit=200)
def open_orders_reconcile_task(snapshot_id: int) -> dict:
    return open_orders_reconcile(snapshot_id=snapshot_id, now=timezone.now()).as_json()


@shared_task(name="custody.open_orders_reconcile_pending", time_limit=240, soft_time_limit=200)
def open_orders_reconcile_pending_task() -> list[dict]:
    return [r.as_json() for r in open_orders_reconcile_pending(now=timezone.now())]


def open_orders_queue(*, snapshot_id: int) -> None:
    """Settlement's open_orders_received hook: reconcile once the list is committed."""
    transaction.on_commit(lambda: open_orders_reconcile_task.delay(snapshot_id))
