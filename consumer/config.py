"""One frozen settings object, built once at start-up from flags and environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from consumer.errors import ConfigError
from consumer.faults import FaultPlan
from consumer.logs import LogFormat

TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
HOST_PORT = re.compile(r"\[?[A-Za-z0-9._:-]+\]?:(\d{1,5})")


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str
    topic: str
    group_id: str
    db_path: Path
    users_csv: Path | None = None
    products_csv: Path | None = None
    until_idle: float | None = None
    metrics_port: int | None = None
    batch_max_records: int = 20_000
    batch_max_seconds: float = 0.5
    dlq_topic: str | None = None
    group_instance_id: str | None = None
    static_membership: bool = True
    startup_timeout: float = 30.0
    commit_retry_seconds: float = 300.0
    reference_poll_seconds: float = 30.0
    kafka_options: Mapping[str, str] = field(default_factory=dict)
    log_format: LogFormat = "auto"
    log_level: str = "info"
    faults: FaultPlan = field(default_factory=FaultPlan)

    def __post_init__(self) -> None:
        validate_bootstrap(self.bootstrap_servers)
        validate_topic(self.topic, "--topic")
        if self.dlq_topic is not None:
            validate_topic(self.dlq_topic, "--dlq-topic")
            if self.dlq_topic == self.topic:
                raise ConfigError("--dlq-topic must differ from --topic")
        if not self.group_id.strip():
            raise ConfigError("--group-id must not be empty")
        if self.db_path.is_dir():
            raise ConfigError(f"--db {self.db_path} is a directory, not a database file")
        for flag, csv_path in (
            ("--users-csv", self.users_csv),
            ("--products-csv", self.products_csv),
        ):
            if csv_path is not None and not csv_path.is_file():
                raise ConfigError(f"{flag} {csv_path} does not exist or is not a file")
        positive = {
            "--batch-max-records": self.batch_max_records,
            "--batch-max-seconds": self.batch_max_seconds,
            "--startup-timeout": self.startup_timeout,
            "--reference-poll-seconds": self.reference_poll_seconds,
        }
        for flag, number in positive.items():
            if number <= 0:
                raise ConfigError(f"{flag} must be greater than 0, got {number}")
        if self.until_idle is not None and self.until_idle < 0:
            raise ConfigError(f"--until-idle must be >= 0 seconds, got {self.until_idle}")
        if self.metrics_port is not None and not 1 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port must be within 1..65535, got {self.metrics_port}")


def validate_bootstrap(servers: str) -> None:
    for server in servers.split(","):
        match = HOST_PORT.fullmatch(server.strip())
        if match is None or not 1 <= int(match.group(1)) <= 65535:
            raise ConfigError(
                f"--bootstrap-servers: {server.strip()!r} is not HOST:PORT (e.g. 127.0.0.1:9092)"
            )


def validate_topic(name: str, flag: str) -> None:
    if not TOPIC_NAME.fullmatch(name) or name in {".", ".."}:
        raise ConfigError(f"{flag}: {name!r} is not a valid Kafka topic name")


def parse_kafka_options(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs passed through to librdkafka (security settings and the like)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--kafka-option expects KEY=VALUE, got {pair!r}")
        options[key.strip()] = value
    return options


def faults_from_env(environ: Mapping[str, str] = os.environ) -> FaultPlan:
    spec = environ.get("ORDERS_FAULTS", "")
    try:
        return FaultPlan.parse(spec)
    except ValueError as exc:
        raise ConfigError(f"ORDERS_FAULTS: {exc}") from None
