"""Celery tasks for custody: thin, idempotent, time-limited."""

from celery import shared_task
from django.utils import timezone

from custody.services.chain import chain_watch_all
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
