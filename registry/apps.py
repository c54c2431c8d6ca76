from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """Who takes part and how assets move: operators, jurisdictions, assets
    and marks, rails and calendars, custodians, wallets, bank accounts,
    client accounts, API keys."""

    name = "registry"
    verbose_name = "Registry"

    def ready(self) -> None:
        # the registry's records change only by proposal: register them and their rules
        from .services import changes  # noqa: F401
