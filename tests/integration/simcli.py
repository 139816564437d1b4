"""Running `orders-sim publish` as a real process, and reading its summary log line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from tests.harness import ROOT


def sim_env(state_home: Path, **extra: str) -> dict[str, str]:
    """The environment minus any ORDERS_SIM_*, with the default state dir under ``state_home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_SIM_")}
    env.update(XDG_STATE_HOME=str(state_home), PYTHONPATH=str(ROOT), **extra)
    return env


def publish_cli(
    bootstrap: str, topic: str, state_home: Path, *args: str, timeout: float = 180
) -> dict[str, Any]:
    """Run a bounded publish to completion (exit 0 asserted); return its summary log event."""
    done = subprocess.run(
        [sys.executable, "-m", "producer_sim", "publish", "--bootstrap-servers", bootstrap,
         "--topic", topic, "--api-failure-rate", "0", "--log-format", "json", *args],
        capture_output=True, text=True, timeout=timeout, env=sim_env(state_home), cwd=ROOT,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return summary_of(done.stdout)


def summary_of(stdout: str) -> dict[str, Any]:
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    summaries = [e for e in events if e["event"] == "publish_summary"]
    assert len(summaries) == 1, stdout[-2000:]
    return summaries[0]


def end_offsets(bootstrap: str, topic: str) -> int:
    """The sum of the topic's high watermarks (retried while a new topic has no leader yet)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "peek"})
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                meta = consumer.list_topics(topic, timeout=10).topics[topic]
                return sum(
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in meta.partitions
                )
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        consumer.close()


def run_endless_until(env: dict[str, str], bootstrap: str, topic: str, grow: int) -> str:
    """Start the simulator with only ``env`` (compose-style), SIGTERM it once the topic has
    grown by ``grow`` offsets, assert a clean exit 0, and return its stdout."""
    before = end_offsets(bootstrap, topic)
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer_sim", "publish"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if end_offsets(bootstrap, topic) - before >= grow:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    return out
