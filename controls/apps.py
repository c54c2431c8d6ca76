from django.apps import AppConfig


class ControlsConfig(AppConfig):
    """The bottom layer: audit trail, four-eyes approvals, alerts, and the
    parsing every input goes through (money, times, JSON, data files)."""

    name = "controls"
    verbose_name = "Controls: audit, approvals, alerts"

    def ready(self) -> None:
        # the ``__any`` lookup (one array parameter) on every field; the
        # four-eyes handler for proposed record changes, and the Celery beat
        # schedules as records that change only by proposal
        from . import lookups  # noqa: F401
        from .services import changes, schedules  # noqa: F401
