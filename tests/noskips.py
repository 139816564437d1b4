"""No silent skips in CI: with ``CI=true`` in the environment, a test that skips fails the run,
with the skip's reason (what was missing) as its failure.

A skip says that something the test needs is absent (a browser, compose, the native tier, a
server of the right kind). On a developer's machine that may be fine; in CI, every requirement
is installed by the project's own files (``.ci/run``, ``make install``), so a skip there means an
install step is missing or broken, and a green run would hide it. ``xfail`` is not a skip and is
left alone. Registered by ``tests/conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

CI_VALUES = ("true", "1", "yes")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in CI_VALUES


def _reason(longrepr: Any) -> str:
    """The reason of a skip report (pytest keeps it as (path, line, "Skipped: reason"))."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail(report: pytest.TestReport | pytest.CollectReport) -> None:
    report.outcome = "failed"
    report.longrepr = (
        f"skipped, and CI=true allows no skip; what was missing: {_reason(report.longrepr)}"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        _fail(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """A module that skips itself whole (``allow_module_level``) fails too."""
    report = yield
    if in_ci() and report.skipped:
        _fail(report)
    return report
