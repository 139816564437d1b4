"""The compose one-shot jobs (topics, buckets) retry a failing call and give up in the end.

Each job's script is taken from the normalized compose configuration and run here, with the
service's own environment, by the shell its entrypoint names (bash, sh), against a stand-in for
the tool it calls (kafka-topics.sh, mc) that fails a given number of times and logs each call.
No engine and no broker: what is tested is the script's control flow, which is what stops a
whole `docker compose up` when one early call fails.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy_compose import implementations, script_of

IMPLEMENTATIONS = implementations()
pytestmark = pytest.mark.skipif(not IMPLEMENTATIONS, reason="no compose (see test_deploy_compose)")

#: A stand-in tool: logs its arguments, fails while the failure budget lasts.
FAKE_TOOL = """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
left=$(cat "$FAKE_FAILURES")
if [ "$left" -gt 0 ]; then
  echo $((left - 1)) > "$FAKE_FAILURES"
  echo "Error: 0 broker(s) registered" >&2
  exit 1
fi
"""


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    parsed: dict[str, Any] = IMPLEMENTATIONS[-1].config()["services"]
    return parsed


def run_job(
    service: dict[str, Any], tool: str, tmp_path: Path, failures: int, attempts: int = 5
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the job's script with ``tool`` failing ``failures`` times; (result, calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / tool
    fake.write_text(FAKE_TOOL)
    fake.chmod(0o755)
    log, budget = tmp_path / "calls.log", tmp_path / "failures"
    log.write_text("")
    budget.write_text(str(failures))
    shell, *flags = service["entrypoint"]
    assert shutil.which(Path(shell).name), f"{shell} is not installed here"
    env = {
        **{key: str(value) for key, value in service["environment"].items()},
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "KAFKA_BIN": str(bin_dir),  # topics: where the image keeps kafka-topics.sh
        "RETRY_ATTEMPTS": str(attempts),
        "RETRY_SECONDS": "0",
        "FAKE_LOG": str(log),
        "FAKE_FAILURES": str(budget),
    }
    result = subprocess.run(
        [Path(shell).name, *flags, script_of(service)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return result, log.read_text().splitlines()


def test_topics_job_retries_until_kafka_answers(services: dict[str, Any], tmp_path: Path) -> None:
    """Two failed calls are retried; both topics are then created and the order topic described."""
    result, calls = run_job(services["topics"], "kafka-topics.sh", tmp_path, failures=2)
    assert result.returncode == 0, result.stderr
    creates = [call for call in calls if "--create" in call]
    assert len(creates) == 4  # two failures, then orders, then orders.dlq
    assert creates[:3] == [creates[0]] * 3
    assert "--topic orders " in creates[0] + " " and "--if-not-exists" in creates[0]
    assert "--topic orders.dlq " in creates[3] + " "
    assert "--describe" in calls[-1]
    assert result.stderr.count("retrying") == 2


def test_topics_job_gives_up_after_its_attempts(services: dict[str, Any], tmp_path: Path) -> None:
    """A broker that never answers fails the job after RETRY_ATTEMPTS calls, with a message."""
    result, calls = run_job(services["topics"], "kafka-topics.sh", tmp_path, failures=99)
    assert result.returncode != 0
    assert len(calls) == 5
    assert "giving up" in result.stderr


def test_bucket_job_retries_until_minio_answers(services: dict[str, Any], tmp_path: Path) -> None:
    """Failed mc calls are retried; the lake's bucket is then made, idempotently."""
    buckets = services["buckets"]
    result, calls = run_job(buckets, "mc", tmp_path, failures=2)
    assert result.returncode == 0, result.stderr
    bucket = buckets["environment"]["ORDERS_LAKE_BUCKET"]
    assert calls[-1].split() == ["mb", "--ignore-existing", f"lake/{bucket}"]
    assert len(calls) == 4  # alias set fails twice, then succeeds; then mb
    assert calls[0].startswith("alias set lake http://minio:9000 ")


def test_bucket_job_gives_up_after_its_attempts(services: dict[str, Any], tmp_path: Path) -> None:
    """A MinIO that never answers fails the job after RETRY_ATTEMPTS calls, with a message."""
    result, calls = run_job(services["buckets"], "mc", tmp_path, failures=99)
    assert result.returncode != 0
    assert len(calls) == 5
    assert "giving up" in result.stderr
