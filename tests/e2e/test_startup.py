"""Start-up refuses what cannot serve: a database that rounds money."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config import embedded_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("url", ["sqlite:///var/db.sqlite3", "mysql://root@127.0.0.1/settlement"])
def test_a_database_other_than_postgresql_is_refused_with_one_line(url):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"DATABASE_URL={url.split(':')[0]}:... is not supported: this backend runs on PostgreSQL only "
        "(exact NUMERIC money); unset DATABASE_URL to use the project's own server, or point it at PostgreSQL"
    ]


def test_without_database_url_the_projects_own_server_is_the_default(monkeypatch):
    """The default URL names the socket folder under var/ as its host, so
    nothing falls back to the machine's own PostgreSQL on 5432."""
    import dj_database_url

    parsed = dj_database_url.parse(embedded_db.database_url())
    assert parsed["HOST"] == str(embedded_db.socket_dir())
    assert parsed["NAME"] == "settlement"
    assert str(embedded_db.socket_dir()).startswith(str(ROOT / "var")) or "settlement-pg-" in parsed["HOST"]
