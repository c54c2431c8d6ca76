"""Driving races deterministically on PostgreSQL: hold a row lock in a
connection of its own, start each contender in its own thread, wait until
PostgreSQL reports it waiting on a lock, then release. Waiters get a row
lock in the order they asked for it, so the test decides who goes first."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection, connections, transaction

WAIT_LIMIT_SECONDS = 60


def lock_waiters() -> int:
    """Backends of this database waiting for a heavyweight lock (a row lock is one)."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def wait_for_lock_waiters(count: int) -> None:
    """Block until ``count`` backends wait on a lock (polling a condition, not timing)."""
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while lock_waiters() < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} sessions ever waited on a lock")
        time.sleep(0.01)


class Contender(threading.Thread):
    """Runs ``work`` in its own connection; keeps its result or its error."""

    def __init__(self, work: Callable[[], Any]):
        super().__init__(daemon=True)
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as error:
            self.error = error
        finally:
            connection.close()

    def outcome(self) -> Any:
        self.join(WAIT_LIMIT_SECONDS)
        assert not self.is_alive(), "the contender never finished"
        return self.error if self.error is not None else self.result


class RowLock:
    """``with RowLock(Model, pk) as held: start contenders...; held.release()``."""

    def __init__(self, model, pk: int):
        self.model, self.pk = model, pk
        self._locked, self._release = threading.Event(), threading.Event()
        self._thread = Contender(self._hold)

    def _take(self) -> None:
        self.model.objects.select_for_update().get(pk=self.pk)

    def _hold(self) -> None:
        with transaction.atomic():
            self._take()
            self._locked.set()
            self._release.wait(WAIT_LIMIT_SECONDS)

    def __enter__(self) -> RowLock:
        self._thread.start()
        assert self._locked.wait(WAIT_LIMIT_SECONDS), "could not take the row lock"
        return self

    def start(self, work: Callable[[], Any], *, waiters: int) -> Contender:
        """Start ``work`` and return once ``waiters`` sessions wait on locks
        (so contenders queue in the order they were started)."""
        contender = Contender(work)
        contender.start()
        wait_for_lock_waiters(waiters)
        return contender

    def release(self) -> None:
        self._release.set()
        self._thread.outcome()

    def __exit__(self, *exc) -> None:
        self.release()
        if self._thread.error is not None:
            raise self._thread.error


class TableLock(RowLock):
    """Hold ``LOCK TABLE <model's table> IN <mode> MODE``: SHARE lets readers
    through and stops every writer at its first insert into the table."""

    def __init__(self, model, mode: str = "SHARE"):
        super().__init__(model, 0)
        self.mode = mode

    def _take(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {self.model._meta.db_table} IN {self.mode} MODE")
