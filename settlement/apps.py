from django.apps import AppConfig


class SettlementConfig(AppConfig):
    name = "settlement"
    verbose_name = "Settlement"

    def ready(self) -> None:
        # registers the four-eyes handlers that live beside their services
        from .services import cycles  # noqa: F401
