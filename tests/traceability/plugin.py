"""Records which circular paragraphs each test proves (``@pytest.mark.para``)
and how it ended, for ``scripts/traceability.py``. Only a full run (no -k, -m,
paths or early stop) writes ``var/traceability/last-run.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(os.environ.get("VAR_DIR", ROOT / "var")) / "traceability" / "last-run.json"
_outcomes: dict[str, dict] = {}


def pytest_collection_modifyitems(items):
    for item in items:
        paragraphs = sorted({int(n) for marker in item.iter_markers("para") for n in marker.args})
        if paragraphs:
            item.user_properties.append(("para", paragraphs))


def pytest_runtest_logreport(report):
    paragraphs = next((value for key, value in report.user_properties if key == "para"), None)
    if paragraphs is None:
        return
    entry = _outcomes.setdefault(report.nodeid, {"para": paragraphs, "outcome": "passed"})
    if report.failed:
        entry["outcome"] = "failed"
    elif report.skipped and entry["outcome"] != "failed":
        entry["outcome"] = "xfailed" if hasattr(report, "wasxfail") else "skipped"


def _complete(session: pytest.Session) -> bool:
    config, options = session.config, session.config.option
    if config.args_source == pytest.Config.ArgsSource.ARGS:  # paths or node ids given
        return False
    if getattr(options, "keyword", "") or getattr(options, "markexpr", "") or getattr(options, "lf", False):
        return False
    return not session.shouldstop


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller writes
        return
    if not _complete(session) or not _outcomes:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"tests": dict(sorted(_outcomes.items()))}, indent=1) + "\n")
