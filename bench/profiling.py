"""Where the time goes, for the benchmarks' ``--profile``: pyinstrument over
the Python side and PostgreSQL's auto_explain over the SQL side, together
around one piece of work in this process.

auto_explain writes the plan of every statement slower than ``explain_ms``,
with actual rows and times (EXPLAIN ANALYZE), as a LOG message; the session
asks for LOG messages to be sent to it, and psycopg hands them to a notice
handler that keeps them. The plans go to bench/out/<name>-explain.txt and the
call tree to bench/out/<name>-profile.txt.
"""

from __future__ import annotations

from pathlib import Path

from benchkit import OUT


class Profile:
    def __init__(self, name: str, *, explain_ms: int = 100):
        self.name = name
        self.explain_ms = explain_ms
        self.plans: list[str] = []
        self.profiler = None

    def __enter__(self) -> Profile:
        from django.db import connection

        connection.ensure_connection()
        self.raw = connection.connection
        self.raw.add_notice_handler(self._notice)
        with connection.cursor() as cursor:
            cursor.execute("LOAD 'auto_explain'")
            for setting, value in (
                ("auto_explain.log_min_duration", str(self.explain_ms)),
                ("auto_explain.log_analyze", "on"),
                ("auto_explain.log_nested_statements", "on"),
                ("client_min_messages", "log"),
            ):
                cursor.execute("SELECT set_config(%s, %s, false)", [setting, value])
        try:
            from pyinstrument import Profiler
        except ImportError:  # a requirement-dev; without it the SQL side alone
            self.profiler = None
        else:
            self.profiler = Profiler(interval=0.001)
            self.profiler.start()
        return self

    def _notice(self, diagnostic) -> None:
        text = diagnostic.message_primary or ""
        if "duration:" in text and "plan" in text.lower():
            self.plans.append(text)

    def __exit__(self, *exc) -> None:
        from django.db import connection

        if self.profiler is not None:
            self.profiler.stop()
        if connection.connection is self.raw:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('client_min_messages', 'notice', false)")
                cursor.execute("SELECT set_config('auto_explain.log_min_duration', '-1', false)")
            self.raw.remove_notice_handler(self._notice)

    def write(self) -> list[Path]:
        OUT.mkdir(parents=True, exist_ok=True)
        paths = []
        if self.profiler is not None:
            path = OUT / f"{self.name}-profile.txt"
            path.write_text(self.profiler.output_text(unicode=False, color=False, show_all=False))
            paths.append(path)
        path = OUT / f"{self.name}-explain.txt"
        path.write_text(f"{len(self.plans)} statements over {self.explain_ms} ms\n\n" + "\n\n".join(self.plans) + "\n")
        paths.append(path)
        for p in paths:
            print(f"  profile written to {p}")
        return paths
