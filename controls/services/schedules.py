"""The Celery beat schedules (django-celery-beat) change only by proposal
(DESIGN sections 4 and 12): they decide when cycles run, when deadlines fail
batches and when the daily report is made."""

from __future__ import annotations

from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from .changes import change_target


def _task_normalise(task: PeriodicTask) -> None:
    """What ``PeriodicTask.save`` stores for blank options, so a form's
    blanks are not mistaken for a change."""
    task.exchange = task.exchange or None
    task.routing_key = task.routing_key or None
    task.queue = task.queue or None
    task.headers = task.headers or None


for _model in (IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule):
    change_target(_model, natural_key=str)

change_target(PeriodicTask, natural_key=lambda task: task.name, normalise=_task_normalise)
