"""Fixtures of the CLI tests: a clean environment, and the process-wide state `run` changes."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator

import pytest
import structlog

from consumer import cli
from orders_common.logs import LogFormat, configure_logging


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ORDERS_* or KAFKA_BOOTSTRAP_SERVERS from the caller's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("ORDERS_") or name == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(name)


@pytest.fixture
def process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`run` configures structlog and tunes the GC and the GIL for the whole process: put all
    three back afterwards, and keep loggers uncached so none keeps this test's stdout."""
    saved_logging = structlog.get_config()
    saved_gc, saved_switch = gc.get_threshold(), sys.getswitchinterval()

    def configure_uncached(log_format: LogFormat, level: str) -> None:
        configure_logging(log_format, level)
        structlog.configure(cache_logger_on_first_use=False)

    monkeypatch.setattr(cli, "configure_logging", configure_uncached)
    yield
    structlog.configure(**saved_logging)
    gc.unfreeze()
    gc.set_threshold(*saved_gc)
    sys.setswitchinterval(saved_switch)
