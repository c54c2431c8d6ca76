import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("settlement_backend")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.on_after_configure.connect
def _broker_folders(sender, **kwargs):
    """The filesystem broker (the local default) needs its folders before
    the first message: a fresh clone has no var/broker yet. Done once the
    configuration is read (not at import: the settings load lazily)."""
    for folder in (sender.conf.broker_transport_options or {}).values():
        if isinstance(folder, str) and folder.startswith("/"):
            os.makedirs(folder, exist_ok=True)


app.autodiscover_tasks()
