"""The caption line of a table of measured figures: the command that printed the table, the
date and the commit it measured, so that a table pasted into the docs keeps them.

    Measured by `make bench` (`python -m bench --bootstrap-servers ...`) on 2026-12-08 at commit
    c85f8fd; 2 CPUs, Python 3.11.2.

`make bench` and the crash suite (tests/conftest.py) print one above each table they write;
docs/performance.md and docs/reliability.md hold such tables, and tests/unit/test_docs.py checks
that each of theirs carries one.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Environment variables that change what a measuring command does, shown in front of it.
SETTINGS = ("RELIABILITY_SCALE", "RELIABILITY_ORDERS", "RELIABILITY_KILLS", "RELIABILITY_BATCH")


def commit(root: Path = ROOT) -> str:
    """``git rev-parse --short HEAD``, and whether tracked files differ from it; ``unknown``
    outside a git checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} with uncommitted changes" if changed else head


def command_line(words: Sequence[str], environ: Mapping[str, str] | None = None) -> str:
    """The command as a shell would take it, with the settings of ``SETTINGS`` that are set."""
    env = environ or {}
    prefix = [f"{name}={shlex.quote(env[name])}" for name in SETTINGS if env.get(name)]
    return " ".join([*prefix, *(shlex.quote(word) for word in words)])


def caption(
    command: str, *, note: str = "", when: datetime | None = None, root: Path = ROOT
) -> str:
    """``Measured by `COMMAND` on DATE at commit HASH`` and the note, as one line."""
    day = (when or datetime.now(UTC)).strftime("%Y-%m-%d")
    tail = f"; {note}" if note else ""
    return f"Measured by `{command}` on {day} at commit {commit(root)}{tail}."
