"""The native PostgreSQL launcher: binaries found, or one clear line says what to install."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tools import localpg
from tools.localpg import LocalPostgres, LocalPostgresError, find_bin_dir


def fake_bin(root: Path, version: str, tools: tuple[str, ...] = localpg.TOOLS) -> Path:
    bin_dir = root / version / "bin"
    bin_dir.mkdir(parents=True)
    for tool in tools:
        (bin_dir / tool).write_text("#!/bin/sh\nexit 1\n")
        (bin_dir / tool).chmod(0o755)
    return bin_dir


def test_no_server_binaries_exits_2_with_one_line_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without initdb/pg_ctl anywhere, postgres-up exits 2 with one line telling to install it."""
    monkeypatch.setattr(localpg, "DEBIAN_ROOT", tmp_path / "none")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("POSTGRES_PORT", "19998")
    monkeypatch.setenv("ORDERS_PIPELINE_CACHE", str(tmp_path / "cache"))
    assert localpg.main(["up"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "install the `postgresql` package" in lines[0]


def test_the_newest_complete_debian_version_is_chosen(tmp_path: Path) -> None:
    """Of 13, 15 and an incomplete 16, the binaries of 15 are used."""
    fake_bin(tmp_path, "13")
    chosen = fake_bin(tmp_path, "15")
    fake_bin(tmp_path, "16", tools=("pg_ctl",))
    assert find_bin_dir(tmp_path) == chosen


def test_binaries_on_path_are_used_without_a_debian_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server installed elsewhere (PATH) is found when /usr/lib/postgresql has none."""
    on_path = fake_bin(tmp_path / "elsewhere", "x")
    monkeypatch.setenv("PATH", str(on_path))
    assert find_bin_dir(tmp_path / "none") == on_path


def test_a_port_taken_by_another_process_is_refused_with_the_override(tmp_path: Path) -> None:
    """A port someone else listens on is reported, naming POSTGRES_PORT, and nothing starts."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        server = LocalPostgres(holder.getsockname()[1], tmp_path / "cluster")
        with pytest.raises(LocalPostgresError, match="POSTGRES_PORT"):
            server.start(timeout=5)
    assert not (tmp_path / "cluster" / "PG_VERSION").exists()
