import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Everything loaded so far lives as long as the process: move it out of the
# collector's way, so full collections during a 10,000-trade request scan only
# that request's objects (bench/README.md).
gc.freeze()
