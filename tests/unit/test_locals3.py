"""The local S3 server's launcher without a server: one clear line when Go is missing or too
old, a taken port refused, and the identities file it writes."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tools import locals3
from tools.locals3 import Credentials, LocalS3, LocalS3Error, MissingToolError, check_go

ROOT = Path(__file__).resolve().parents[2]


def launcher(*args: str, path: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.locals3", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
        env={**os.environ, "PATH": path, "ORDERS_PIPELINE_CACHE": str(cache), "S3_PORT": "19997"},
    )


def test_without_go_and_without_a_built_server_up_is_one_line_exit_2(tmp_path: Path) -> None:
    """No cached binary and no `go` on PATH: s3-up says what to install, in one line."""
    proc = launcher("up", path=str(tmp_path), cache=tmp_path / "cache")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no `go` is on PATH" in lines[0], lines


def test_an_old_go_is_refused_naming_both_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "go"
    fake.write_text("#!/bin/sh\necho go1.22.4\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("GOTOOLCHAIN", raising=False)
    with pytest.raises(MissingToolError, match=r"needs Go 1\.26\.6\+, found go1\.22\.4"):
        check_go()


def test_a_taken_port_is_refused_naming_the_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone else listens on the S3 port: refused before anything starts, naming S3_PORT."""
    weed = tmp_path / "weed"
    weed.write_text("#!/bin/sh\nexit 1\n")
    monkeypatch.setattr(locals3, "build", lambda: weed)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        server = LocalS3.at(tmp_path / "s3", holder.getsockname()[1], None)
        with pytest.raises(LocalS3Error, match="S3_PORT"):
            server.start(timeout=5)
    assert not (tmp_path / "s3" / "weed.pid").exists()


def test_keys_and_a_public_bucket_become_an_identities_file_only_the_owner_reads(
    tmp_path: Path,
) -> None:
    """One identity with the keys and every right, and `anonymous` limited to one bucket."""
    server = LocalS3.at(tmp_path, 18333, Credentials("k1", "s'1"), public_bucket="open")
    command = server.command(tmp_path / "weed")
    config = tmp_path / "s3.json"
    assert f"-s3.config={config}" in command
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    identities = {i["name"]: i for i in json.loads(config.read_text())["identities"]}
    assert identities["orders"]["credentials"] == [{"accessKey": "k1", "secretKey": "s'1"}]
    assert "Admin" in identities["orders"]["actions"]
    assert sorted(identities["anonymous"]["actions"]) == ["List:open", "Read:open", "Write:open"]
    anonymous = LocalS3.at(tmp_path, 18333, None)
    assert not any(arg.startswith("-s3.config") for arg in anonymous.command(tmp_path / "weed"))
    assert not config.exists()


def test_a_restart_reuses_the_ports_of_the_data_directory(tmp_path: Path) -> None:
    """A master restarted on other ports would wait for its old raft peer: the ports stay."""
    first = LocalS3.at(tmp_path, 18333, None)
    first.command(tmp_path / "weed")  # writes ports.json, as a start does
    assert LocalS3.at(tmp_path, 18333, None).ports == first.ports
    assert len({18333, *first.ports.values()}) == 1 + len(locals3.LISTENERS)
