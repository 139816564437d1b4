"""Session-wide real Kafka broker and per-test topics and groups.

The broker is found in this order:
1. ``KAFKA_BOOTSTRAP_SERVERS``, if set;
2. the testcontainers Kafka module, if a Docker engine answers;
3. the native launcher (``tools.localkafka``) on free ports with its own data directory.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from confluent_kafka.admin import AdminClient
from testcontainers.community.kafka import KafkaContainer

from tests.harness import create_topic
from tests.reliability.harness import FIGURES, Figures, format_table
from tools.localkafka import LocalKafka

TESTCONTAINERS_IMAGE = os.environ.get("ORDERS_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.9.0")


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    origin: str
    local: LocalKafka | None = None


def _docker_engine_answers() -> bool:
    try:
        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    if bootstrap := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield Broker(bootstrap, "KAFKA_BOOTSTRAP_SERVERS")
        return
    if os.environ.get("ORDERS_TEST_NO_DOCKER") != "1" and _docker_engine_answers():
        with KafkaContainer(TESTCONTAINERS_IMAGE).with_kraft() as container:
            yield Broker(container.get_bootstrap_server(), "testcontainers")
        return
    local = LocalKafka.ephemeral(tmp_path_factory.mktemp("kafka"))
    local.start()
    try:
        yield Broker(local.bootstrap, "native", local)
    finally:
        local.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Broker) -> str:
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def topic_factory(kafka_admin: AdminClient) -> Iterator[Callable[..., str]]:
    """Make fresh uuid-named topics (``topic_factory(partitions=4)``); delete them afterwards."""
    made: list[str] = []

    def make(partitions: int = 3, prefix: str = "t") -> str:
        name = create_topic(kafka_admin, partitions, prefix)
        made.append(name)
        return name

    yield make
    if made:
        with contextlib.suppress(Exception):
            for future in kafka_admin.delete_topics(made).values():
                future.result(timeout=30)


@pytest.fixture
def topic(topic_factory: Callable[..., str]) -> str:
    return topic_factory(3)


@pytest.fixture
def group_id() -> str:
    return f"g-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[Figures], None]:
    """Record a scenario's figures for the reliability table printed at the end of the run."""
    stash = request.config.stash
    if FIGURES not in stash:
        stash[FIGURES] = []
    return stash[FIGURES].append


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    figures = config.stash.get(FIGURES, [])
    if figures:
        terminalreporter.section("reliability figures")
        terminalreporter.write_line(format_table(figures))
