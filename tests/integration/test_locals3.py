"""make s3-up / s3-down: idempotent, an S3 server that answers on loopback, nothing left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tools import locals3
from tools.localkafka import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def launcher(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.locals3", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
        check=False,
    )


def weed_processes_using(data_dir: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-af", "weed"], capture_output=True, text=True, check=False)
    return [line for line in out.stdout.splitlines() if str(data_dir) in line]


def listening_addresses(pid: int) -> set[str]:
    """The local addresses of the TCP sockets ``pid`` listens on, from /proc (Linux)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                address = fields[1].split(":")[0]
                found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0))
                          if len(address) == 8 else address)  # fmt: skip
    return found


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_up_twice_serves_s3_and_down_leaves_no_weed_process(tmp_path: Path) -> None:
    """A second s3-up does nothing; the server listens on 127.0.0.1 only and answers S3; a
    bucket made by `bucket` is listed; down stops it and leaves neither a process nor a socket
    file. (The binary is the machine's, built once.)"""
    binary = locals3.build()  # the machine's cache: the test cache gets a link to it
    cache = tmp_path / "cache"
    (cache / "seaweedfs" / locals3.VERSION).mkdir(parents=True)
    (cache / "seaweedfs" / locals3.VERSION / "weed").symlink_to(binary)
    port = free_port()
    env = {**os.environ, "S3_PORT": str(port), "ORDERS_PIPELINE_CACHE": str(cache)}
    env.pop("S3_ACCESS_KEY", None)
    env.pop("S3_SECRET_KEY", None)
    data_dir = cache / f"s3-{port}"
    try:
        first = launcher("up", env=env)
        assert first.returncode == 0, first.stderr
        assert "started" in first.stdout and "anonymous" in first.stdout
        second = launcher("up", env=env)
        assert second.returncode == 0 and "already running" in second.stdout, second.stderr
        assert len(weed_processes_using(data_dir)) == 1
        pid = int((data_dir / "weed.pid").read_text())
        assert listening_addresses(pid) == {"127.0.0.1"}
        made = launcher("bucket", "demo-bucket", env=env)
        assert made.returncode == 0, made.stderr
        listing = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
        assert b"<Name>demo-bucket</Name>" in listing
        assert status_of(f"http://127.0.0.1:{port}/no-such-bucket/") == 404
        assert launcher("status", env=env).returncode == 0
    finally:
        down = launcher("down", env=env)
    assert down.returncode == 0 and "stopped" in down.stdout, down.stderr
    assert weed_processes_using(data_dir) == []
    ports = json.loads((data_dir / "ports.json").read_text())
    assert not [p for p in ports.values() if list(Path("/tmp").glob(f"seaweedfs-*-grpc-{p}.sock"))]
    assert launcher("status", env=env).returncode == 1
