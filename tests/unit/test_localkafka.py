"""The native broker launcher: clear one-line errors when its tools are missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.localkafka import MissingToolError, check_java

ROOT = Path(__file__).resolve().parents[2]


def launcher(*args: str, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.localkafka", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PATH": path, "KAFKA_PORT": "19999"},
    )


def test_missing_java_is_one_clear_line(tmp_path: Path) -> None:
    """Without java on PATH, kafka-up exits 2 with a single line naming what is missing."""
    proc = launcher("up", path=str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "java 17+" in lines[0]


def test_an_old_java_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A java older than 17 is refused with its version in the message."""
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError, match="found java 11"):
        check_java()
