"""gunicorn settings for `make run` (scripts/run.sh) and the benchmarks
(bench/benchkit.Server): threaded workers that keep client connections alive.

Why gthread: the matching engine calls the pre-trade check on every order,
on a connection it keeps open. gunicorn's sync workers close the connection
after each response, so every check paid for a new TCP connection (and the
p99 with it); gthread workers park an idle connection in their poller and
answer the next request on it. The app is synchronous Django (DRF views,
psycopg, one transaction per service): an ASGI server would run every view
in a thread pool through sync_to_async and add a hop, not remove one.
bench/README.md has the figures behind this choice.

Threads: the intake is CPU-bound Python between database round trips; a
second thread per worker overlaps one request's database wait with another's
parsing. Each thread keeps its own database connection (CONN_MAX_AGE), so
PostgreSQL sees workers x threads connections.

Every setting can be changed from the environment (WEB_WORKERS, WEB_THREADS,
WEB_KEEPALIVE) or on the command line, which wins over this file.
"""

import os

wsgi_app = "config.wsgi:application"
worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "2"))
# seconds an idle client connection is kept open: longer than an engine's
# pause between orders, and longer than a load balancer's idle timeout (often
# 60 s) so that the balancer, not gunicorn, closes an idle connection
keepalive = int(os.environ.get("WEB_KEEPALIVE", "75"))
# a 10,000-trade intake request takes about a second here; leave room
timeout = int(os.environ.get("WEB_TIMEOUT", "120"))
graceful_timeout = 30
