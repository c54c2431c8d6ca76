from django.apps import AppConfig


class ControlsConfig(AppConfig):
    """The bottom layer: audit trail, four-eyes approvals, alerts, and the
    parsing every input goes through (money, times, JSON, data files)."""

    name = "controls"
    verbose_name = "Controls: audit, approvals, alerts"
