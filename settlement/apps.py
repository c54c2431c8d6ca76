from django.apps import AppConfig


class SettlementConfig(AppConfig):
    name = "settlement"
    verbose_name = "Settlement"

    def ready(self) -> None:
        # registers the four-eyes handlers (manual leg confirmation, lifting a
        # prefunding freeze, taking an excluded counterparty back) beside their services
        from .services import batch_controls, legs, prefunding  # noqa: F401
