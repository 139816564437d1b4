"""make kafka-up / kafka-down: idempotent start, a broker that answers, nothing left behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from tools.localkafka import free_ports

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def launcher(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.localkafka", command],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
        check=False,
    )


def java_processes_using(data_dir: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-af", "java"], capture_output=True, text=True, check=False)
    return [line for line in out.stdout.splitlines() if str(data_dir) in line]


def test_up_twice_answers_metadata_and_down_leaves_no_java_process(tmp_path: Path) -> None:
    """A second kafka-up does nothing, a client lists the broker, kafka-down stops the JVM."""
    port, controller = free_ports(2)
    cache = tmp_path / "cache"
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller),
        "ORDERS_PIPELINE_CACHE": str(cache),
    }
    data_dir = cache / f"broker-{port}"
    try:
        first = launcher("up", env)
        assert first.returncode == 0, first.stderr
        assert "started" in first.stdout
        second = launcher("up", env)
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout
        brokers = (
            AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=30).brokers
        )
        assert [b.port for b in brokers.values()] == [port]
        assert len(java_processes_using(data_dir)) == 1
    finally:
        down = launcher("down", env)
    assert down.returncode == 0, down.stderr
    assert java_processes_using(data_dir) == []
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
