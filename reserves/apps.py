from django.apps import AppConfig


class ReservesConfig(AppConfig):
    name = "reserves"
    verbose_name = "Reserve fund"

    def ready(self) -> None:
        # registers the four-eyes handlers (withdrawal, reversal, cap, default, claim payout)
        from . import services  # noqa: F401
