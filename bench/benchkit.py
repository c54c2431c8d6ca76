"""What every benchmark shares: where its database is, the machine it ran
on, the real server, and the summary rows ``make bench`` gathers.

Databases. By default the benchmarks run on the project's own PostgreSQL
(``scripts/pg.py start``; the server ``make test`` uses, on its Unix socket),
each in a database of its own named ``settlement_bench_<name>`` that it drops
and creates, so ``make test`` (database ``settlement`` and its test copies) is
never touched. ``BENCH_DATABASE_URL`` points them at another server instead:
its database name, which must contain ``bench``, becomes the prefix
(``.../settlement_bench`` gives ``settlement_bench_ingest`` and so on).

Summary rows. Each benchmark returns rows ``{figure, ours, limit, ratio,
target, unit}``: ``ours`` is our figure, ``limit`` the physical limit
measured in the same run on the same server, ``ratio`` ours/limit (for a
duration, how many times the limit it takes; for a rate, which share of the
limit it reaches), ``target`` the issue's bound on that ratio, as text.
"""

from __future__ import annotations

import functools
import http.client
import json
import math
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
GUNICORN_CONF = ROOT / "scripts" / "gunicorn.conf.py"


class BenchError(Exception):
    """The benchmark's own figures are wrong (not a slow result)."""


# --- databases ------------------------------------------------------------------------


@functools.cache
def server_url() -> str:
    """The URL of the server the benchmarks run on, with a database name
    containing 'bench' (the prefix of each benchmark's own database)."""
    explicit = os.environ.get("BENCH_DATABASE_URL")
    if explicit:
        return explicit
    python = ROOT / ".venv" / "bin" / "python"
    python_cmd = str(python) if python.exists() else sys.executable
    subprocess.run([python_cmd, str(ROOT / "scripts" / "pg.py"), "start"], check=True, capture_output=True)
    url = subprocess.run(
        [python_cmd, str(ROOT / "scripts" / "pg.py"), "url"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return with_database(url, "settlement_bench")


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def database_url(name: str) -> str:
    """This benchmark's own database on the bench server."""
    base = urlsplit(server_url()).path.lstrip("/") or "settlement_bench"
    return with_database(server_url(), f"{base}_{name}")


def admin_url(url: str) -> str:
    return with_database(url, "postgres")


def database_recreate(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    if "bench" not in name:
        raise BenchError(f"refusing to drop database {name!r}: its name must contain 'bench'")
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    if "bench" not in name:
        raise BenchError(f"refusing to drop database {name!r}: its name must contain 'bench'")
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def django_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        # production settings, but a bench on loopback: plain HTTP, its own key, no request limits
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        SECURE_SSL_REDIRECT="0",
        THROTTLE_PER_KEY="100000000/min",
        THROTTLE_PER_ADDRESS="100000000/min",
        LOG_LEVEL="WARNING",
        CONN_MAX_AGE="600",
        VAR_DIR=str(OUT / "var"),
        PYTHONPATH=str(ROOT),
    )
    return env


def database_prepare(url: str) -> dict[str, str]:
    """Drop, create and migrate the database; refuse models without a
    migration (the bench database could not match them). Returns the
    environment the Django processes of the bench run with."""
    database_recreate(url)
    (OUT / "var").mkdir(parents=True, exist_ok=True)
    env = django_env(url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)
    pending = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if pending.returncode != 0:
        raise BenchError(
            "the models have changes without a migration, so the bench database cannot match them:\n"
            + pending.stdout[-2000:]
            + pending.stderr[-2000:]
        )
    return env


def django_setup(env: dict[str, str]) -> None:
    """Django in this process, on the bench database."""
    keys = (
        "DATABASE_URL",
        "DJANGO_SETTINGS_MODULE",
        "DEBUG",
        "LOG_LEVEL",
        "VAR_DIR",
        "SECRET_KEY",
        "SECURE_SSL_REDIRECT",
    )
    os.environ.update({k: env[k] for k in keys})
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def server_settings(url: str) -> dict[str, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        names = ("server_version", "shared_buffers", "synchronous_commit", "fsync", "wal_level", "max_wal_size")
        return {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}


def checkpoint(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


# --- the machine ----------------------------------------------------------------------


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def load_average() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


class Steps:
    """Timestamped progress lines on stdout."""

    def __init__(self) -> None:
        self.began = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.began:6.1f}s] {message}", flush=True)

    @property
    def elapsed(self) -> float:
        return round(time.monotonic() - self.began, 1)


# --- the real server --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn ``config.wsgi:application`` on a free loopback port, with the
    settings ``scripts/run.sh`` uses (``scripts/gunicorn.conf.py``: gthread
    workers that keep connections alive) unless ``worker_class="sync"``.
    Stopped by its own pid."""

    def __init__(self, *, url: str, workers: int, log: Path, worker_class: str = "gthread", threads: int | None = None):
        self.port = free_port()
        self.workers = workers
        self.worker_class = worker_class
        self.threads = threads
        self.log = log
        self.env = django_env(url)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-c", str(GUNICORN_CONF)]
        command += ["--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}", "--timeout", "300"]
        command += ["--worker-class", self.worker_class, "--error-logfile", str(self.log)]
        if self.threads is not None:
            command += ["--threads", str(self.threads)]
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"gunicorn exited with {self.proc.returncode}; see {self.log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    if len(self.worker_pids()) >= self.workers:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"gunicorn did not answer /health within 30 s; see {self.log}")

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak so far) of a process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


# --- summary rows -----------------------------------------------------------------------


def row(
    figure: str, *, ours: float, limit: float | None, unit: str, target: str = "", ratio: float | None = None
) -> dict:
    """One summary row; ``ratio`` defaults to ours / limit."""
    if ratio is None and limit:
        ratio = ours / limit
    return {"figure": figure, "ours": ours, "limit": limit, "unit": unit, "ratio": ratio, "target": target}


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit in ("trades/s", "rows/s", "KiB", "MiB") or abs(value) >= 1000:
        return f"{value:,.0f}"
    if unit == "ms":
        return f"{value:.2f}"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:,.1f}"


def summary_lines(rows: Iterable[dict], *, markdown: bool = False) -> list[str]:
    header = ("figure", "ours", "limit", "ratio", "target")
    body = []
    for r in rows:
        unit = r["unit"]
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        body.append(
            (
                f"{r['figure']} ({unit})" if unit else r["figure"],
                _num(r["ours"], unit),
                _num(r["limit"], unit),
                ratio,
                r["target"] or "—",
            )
        )
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|---|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return lines
    widths = [max(len(header[i]), *(len(cells[i]) for cells in body)) if body else len(header[i]) for i in range(5)]
    fmt = "  {:<{w0}}  {:>{w1}}  {:>{w2}}  {:>{w3}}  {:<{w4}}"
    kw = {f"w{i}": w for i, w in enumerate(widths)}
    return [fmt.format(*header, **kw)] + [fmt.format(*cells, **kw) for cells in body]


def result_write(name: str, result: dict) -> Path:
    """bench/out/<name>.json: every figure, the summary rows among them."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path
