"""make postgres-up / postgres-down: idempotent, a server that answers, nothing left behind."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from consumer.warehouse.extensions import load_extensions
from tools.localkafka import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def launcher(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.localpg", command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )


def postgres_processes_using(data_dir: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-af", "postgres"], capture_output=True, text=True, check=False)
    return [line for line in out.stdout.splitlines() if str(data_dir) in line]


def server_version(port: int) -> str:
    """Ask the server itself, as user postgres with no password, over 127.0.0.1."""
    con = duckdb.connect()
    load_extensions(con)
    con.execute(
        f"ATTACH 'host=127.0.0.1 port={port} user=postgres dbname=postgres' AS pg (TYPE postgres)"
    )
    sql = "SELECT current_setting(''server_version'')"
    row = con.execute(f"SELECT * FROM postgres_query('pg', '{sql}')").fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def cache() -> Iterator[Path]:
    """A cache directory the `postgres` OS user can enter (pytest's tmp dirs are 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="orders-localpg-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_up_twice_answers_and_down_leaves_no_postgres_process(cache: Path) -> None:
    """A second postgres-up does nothing, the server answers without password, down stops it."""
    port = free_port()
    env = {**os.environ, "POSTGRES_PORT": str(port), "ORDERS_PIPELINE_CACHE": str(cache)}
    data_dir = cache / f"postgres-{port}"
    try:
        first = launcher("up", env)
        assert first.returncode == 0, first.stderr
        assert "started" in first.stdout
        second = launcher("up", env)
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        assert server_version(port).startswith("15")
        assert len(postgres_processes_using(data_dir)) == 1
        assert launcher("status", env).returncode == 0
    finally:
        down = launcher("down", env)
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert postgres_processes_using(data_dir) == []
    assert launcher("status", env).returncode == 1
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
