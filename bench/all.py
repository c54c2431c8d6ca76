#!/usr/bin/env python
"""``make bench``: every benchmark in one go, one after the other on the same
PostgreSQL server, then one summary table of every figure (ours, the
physical limit measured in the same run, the ratio, the issue's target),
written into bench/README.md between the ``bench:figures`` markers with the
date and the machine's load average.

Each benchmark runs as its own process (its own Django, its own database)
and is runnable alone: bench/ingest.py, bench/cycles.py, bench/reconcile.py,
bench/watcher.py (``--help`` for the sizes). Here:

    .venv/bin/python bench/all.py [--only ingest,cycles] [--quick] [--no-readme] [--profile]

``--quick`` runs every benchmark at a tenth of its size (a smoke run; its
figures are not comparable with the issue's and are not written to the
README).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import benchkit  # noqa: E402

README = BENCH / "README.md"
BEGIN, END = "<!-- bench:figures begin -->", "<!-- bench:figures end -->"
BENCHMARKS = {
    "ingest": [],
    "cycles": ["--trades", "560000"],
    "reconcile": [],
    "watcher": [],
}
QUICK = {
    "ingest": ["--trades", "10000", "--latency-requests", "200", "--warmup", "50", "--rss-trades", "1000"],
    "cycles": ["--trades", "20000"],
    "reconcile": ["--legs", "1000", "--movements", "10000", "--history", "4000"],
    "watcher": ["--transfers", "1000"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated: " + ", ".join(BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="a tenth of every size (a smoke run)")
    parser.add_argument("--no-readme", action="store_true", help="do not write the figures into bench/README.md")
    parser.add_argument(
        "--profile", action="store_true", help="also profile cycles and reconcile (before their timed runs)"
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --only: the summary also takes the other benchmarks' figures from their last run (bench/out)",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    step = benchkit.Steps()
    load_before = benchkit.load_average()
    failed = []
    for name in names:
        extra = QUICK[name] if args.quick else BENCHMARKS[name]
        if args.profile and name in ("cycles", "reconcile"):
            extra = [*extra, "--profile"]
        step(f"bench/{name}.py {' '.join(extra)}")
        (benchkit.OUT / f"{name}.json").unlink(missing_ok=True)
        done = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *extra], check=False)
        if done.returncode != 0:
            failed.append(name)
    load_after = benchkit.load_average()

    rows, dates = [], {}
    for name in BENCHMARKS if args.merge else names:
        path = benchkit.OUT / f"{name}.json"
        if name in failed or not path.exists():
            continue
        result = json.loads(path.read_text())
        rows += result.get("summary", [])
        dates[name] = (result.get("date", ""), result.get("load_average_before"), result.get("load_average_after"))
    machine = benchkit.machine()
    postgres = benchkit.server_settings(benchkit.admin_url(benchkit.server_url()))
    heading = (
        f"`{'bench/all.py ' + ' '.join(argv or sys.argv[1:]) if (argv or sys.argv[1:]) else 'make bench'}`, "
        f"{benchkit.now_iso()}: {machine['cores']} cores "
        f"({machine['cpu']}), PostgreSQL {postgres['server_version'].split()[0]} "
        f"(shared_buffers {postgres['shared_buffers']}, synchronous_commit {postgres['synchronous_commit']}), "
        f"Python {machine['python']}; load average {load_before:.2f} before, {load_after:.2f} after; "
        f"{step.elapsed / 60:.0f} minutes in all."
    )
    if args.merge:
        heading += (
            " Each benchmark's own run: "
            + "; ".join(
                f"{name} {date} (load {before:.2f} before, {after:.2f} after)"
                if before is not None and after is not None
                else f"{name} {date}"
                for name, (date, before, after) in dates.items()
            )
            + "."
        )
    print()
    print(heading)
    print("ratio = ours / limit (a rate: the share of the limit reached; a duration or a latency: times the limit)")
    print("\n".join(benchkit.summary_lines(rows)))
    if failed:
        print(f"\nFAILED: {', '.join(failed)} (see above): their figures are missing", file=sys.stderr)
    if not args.quick and not args.no_readme and rows:
        table = "\n".join([heading, "", *benchkit.summary_lines(rows, markdown=True)])
        text = README.read_text()
        if BEGIN in text and END in text:
            head, _, rest = text.partition(BEGIN)
            _, _, tail = rest.partition(END)
            README.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
            print(f"\nfigures written into {README.relative_to(BENCH.parent)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
