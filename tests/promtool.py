"""Prometheus's own checker, ``promtool``, from Debian's ``prometheus`` package (.ci/run installs
it): the deployment's configuration and rules, the rules' unit tests, and a live /metrics page
are checked by the tool that Prometheus itself uses to read them."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

INSTALL = "apt-get install --no-install-recommends prometheus; .ci/run does"


def promtool() -> str:
    """The promtool binary; without it a skip saying how to get it, or in CI (CI=true, where
    .ci/run installs it) a failure: the rules must not go unchecked there in silence."""
    path = shutil.which("promtool")
    if path is None:
        missing = f"promtool is not installed (Debian package prometheus: {INSTALL})"
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    return path


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``promtool ARGS``, its output captured (it reports problems on both streams)."""
    return subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
