from django.apps import AppConfig


class SettlementConfig(AppConfig):
    name = "settlement"
    verbose_name = "Settlement"

    def ready(self) -> None:
        # The four-eyes handlers (manual leg confirmation, lifting a
        # prefunding freeze, taking an excluded counterparty back) register
        # beside their services. The Celery tasks register in every process,
        # the web one too: a service dispatches a task by name (it cannot
        # import the tasks module, which imports the services), and an
        # unregistered name would bypass CELERY_TASK_ALWAYS_EAGER and wait on
        # a broker.
        from . import tasks  # noqa: F401
        from .services import batch_controls, legs, prefunding  # noqa: F401
