"""With CI=true a skipped test fails the run, naming what was missing (tests/noskips.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = """
import pytest

def test_passes():
    pass

def test_needs_a_tool():
    pytest.skip("the frobnicator is not installed")

@pytest.mark.skipif(True, reason="no grommet server")
def test_marked():
    pass

@pytest.mark.xfail(reason="a known bug", strict=True)
def test_known_bug():
    assert False
"""

MODULE_SKIP = """
import pytest
pytest.skip("the whole module needs a widget", allow_module_level=True)
"""


def run_pytest(
    tmp_path: Path, ci: str | None, source: str = SAMPLE
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.noskips", "-p", "no:cacheprovider",
         "-q", "-rA", "test_sample.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_skips_fail_under_ci_with_their_reason(tmp_path: Path) -> None:
    """A skip in the test fails it, a skip mark errs its setup, each naming its reason; a pass
    and an xfail stay as they are."""
    result = run_pytest(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in result.stdout, result.stdout
    for reason in ("the frobnicator is not installed", "no grommet server"):
        assert f"CI=true allows no skip; what was missing: {reason}" in result.stdout, reason


def test_a_module_that_skips_itself_fails_under_ci(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "true", MODULE_SKIP)
    assert result.returncode != 0, result.stdout
    assert "what was missing: the whole module needs a widget" in result.stdout, result.stdout


def test_skips_stay_skips_outside_ci(tmp_path: Path) -> None:
    for ci in (None, "false"):
        result = run_pytest(tmp_path, ci)
        assert result.returncode == 0, result.stdout
        assert "1 passed, 2 skipped, 1 xfailed" in result.stdout, result.stdout
