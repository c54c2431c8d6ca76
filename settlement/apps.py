from django.apps import AppConfig


class SettlementConfig(AppConfig):
    name = "settlement"
    verbose_name = "Settlement"

    def ready(self) -> None:
        # registers the four-eyes handler (manual leg confirmation) beside its service
        from .services import legs  # noqa: F401
