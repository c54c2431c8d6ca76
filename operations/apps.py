from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _groups_sync(**kwargs) -> None:
    from .services.groups import groups_sync

    groups_sync()


class OperationsConfig(AppConfig):
    """The top layer: the dashboard, the network file, the records export,
    reports, notifications and the demo."""

    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        # last in INSTALLED_APPS: every app's permissions exist when this runs
        post_migrate.connect(_groups_sync, sender=self, dispatch_uid="operations.groups_sync")
        # registers the four-eyes handler for network changes (load_network on a running network)
        from .services import network  # noqa: F401
