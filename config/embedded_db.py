"""Where the project-owned PostgreSQL lives when DATABASE_URL is unset.

Pure paths, no server code: the settings read the default URL from here and
``scripts/pg.py`` (which starts and stops the server with ``pg_ctl``) uses the
same places, so both always agree.

The server listens on a Unix socket only (no TCP port), in a folder of this
checkout, so two checkouts on one machine never meet and the machine's own
PostgreSQL on 5432 is never touched.
"""

import hashlib
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
# Unix socket paths are limited to 107 bytes; ".s.PGSQL.5432" takes 13.
_SOCKET_PATH_MAX = 100
DATABASE_NAME = "settlement"
SUPERUSER = "postgres"
# The socket's name carries a port number even without TCP.
SOCKET_PORT = 5432


def var_dir() -> Path:
    return Path(os.environ.get("VAR_DIR", BASE_DIR / "var")).resolve()


def data_dir() -> Path:
    return var_dir() / "pg" / "data"


def socket_dir() -> Path:
    """A folder inside the checkout, or a short one under the system's temp
    folder (named by a hash of the checkout) when the checkout path is too
    long for a Unix socket."""
    inside = var_dir() / "pg" / "run"
    if len(str(inside / f".s.PGSQL.{SOCKET_PORT}")) <= _SOCKET_PATH_MAX:
        return inside
    digest = hashlib.sha256(str(var_dir()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"settlement-pg-{digest}"


def database_url(database: str = DATABASE_NAME) -> str:
    """The socket folder goes in the host part, percent-encoded, so every
    reader of the URL (dj-database-url, psycopg, a test that rebuilds it)
    sees it as the host and never falls back to the default socket."""
    return f"postgres://{SUPERUSER}@{quote(str(socket_dir()), safe='')}:{SOCKET_PORT}/{database}"
