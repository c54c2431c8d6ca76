"""The layers are enforced, not just drawn: ``make lint`` runs import-linter
with the contracts in pyproject.toml. These tests copy the code, plant a
violation, and check the linter refuses it (and passes the code as it is)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "controls", "registry", "settlement", "custody", "reserves", "operations")
LINT = Path(sys.executable).parent / "lint-imports"


@pytest.fixture
def copy(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(where)},
    )


def plant(where: Path, module: str, line: str) -> None:
    path = where / module
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_code_as_it_is_keeps_both_contracts(copy):
    result = lint(copy)
    assert result.returncode == 0, result.stdout
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_fails_the_lint(copy):
    plant(copy, "settlement/services/positions.py", "import reserves.selectors  # noqa")
    result = lint(copy)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "settlement.services.positions -> reserves.selectors" in result.stdout


def test_an_import_cycle_inside_an_app_fails_the_lint(copy):
    plant(copy, "settlement/services/positions.py", "from settlement.services import trades  # noqa")
    result = lint(copy)
    assert result.returncode != 0
    assert "No import cycles between the modules of one app BROKEN" in result.stdout
