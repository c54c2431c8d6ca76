import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("settlement_backend")
app.config_from_object("django.conf:settings", namespace="CELERY")
# the filesystem broker (the local default) needs its folders before the
# first message: a fresh clone has no var/broker yet
for _folder in (app.conf.broker_transport_options or {}).values():
    if isinstance(_folder, str) and _folder.startswith("/"):
        os.makedirs(_folder, exist_ok=True)
app.autodiscover_tasks()
