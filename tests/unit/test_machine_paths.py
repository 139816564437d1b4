"""No committed file names a path of one developer's machine (a working tree, a home folder):
such a path means nothing elsewhere, and tells more about the machine than anyone should read.

Paths that mean the same on every machine stay allowed: system folders (/usr, /var, /etc,
/tmp, /opt, /dev), and the image's own user home (/home/app, made by the Dockerfile)."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.harness import ROOT

# A path from the root into a working tree or a home folder: work, root, Users/NAME,
# home/NAME (but the image's app), mnt/X. Not inside a longer path or a URL.
MACHINE_PATH = re.compile(
    r"(?<![\w.~/-])/(?:work|root|Users/[\w.-]+|home/(?!app\b)[\w.-]+|mnt/[a-z])/[\w.-]"
)


def machine_paths(text: str) -> list[str]:
    """The lines of ``text`` that hold a machine-specific path, as ``N: line``."""
    return [
        f"{n}: {line.strip()[:160]}"
        for n, line in enumerate(text.splitlines(), 1)
        if MACHINE_PATH.search(line)
    ]


def committed_texts() -> dict[str, str]:
    """Every file git tracks in this checkout that reads as UTF-8 text."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    texts = {}
    for name in filter(None, listed.decode().split("\0")):
        path = ROOT / name
        if not path.is_file():  # deleted in the working tree
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def test_no_committed_file_names_a_path_of_one_machine() -> None:
    texts = committed_texts()
    assert "README.md" in texts and "pyproject.toml" in texts
    found = {name: lines for name, text in texts.items() if (lines := machine_paths(text))}
    assert not found


@pytest.mark.parametrize(
    "line",
    [
        "logs in " + "/work" + "/wt-lakeops/data/lake-demo/member-N.log",
        "(data: " + "/root" + "/.cache/orders-pipeline/broker-9092)",
        "--db=" + "/home" + "/alice/orders/w.duckdb",
        "'" + "/Users" + "/bob/src/orders-pipeline'",
        "cd " + "/mnt" + "/c/Users/carol",
    ],
)
def test_a_machine_path_is_found(line: str) -> None:
    assert machine_paths(f"first line\n{line}\n") == [f"2: {line}"]


@pytest.mark.parametrize(
    "line",
    [
        "--home-dir /home/app --create-home",
        "chromium at /usr/bin/chromium",
        "(data: /var/lib/postgresql/.cache/orders-pipeline/postgres-5432)",
        "--db /tmp/x.duckdb",
        "GET /api/reports/top-users",
        "see https://example.com/work/root/x",
        "(data: ~/.cache/orders-pipeline/broker-9092)",
        "--data-path ./data/lake",
        "/tmp/pytest-of-root/pytest-3/w.duckdb",
    ],
)
def test_a_path_the_same_on_every_machine_is_allowed(line: str) -> None:
    assert machine_paths(line) == []
