"""The consumer's settings, one frozen object per concern, built once from flags and
environment (``consumer.flags``). Each default lives here, and only here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from consumer.errors import ConfigError
from orders_common.kafka import check_bootstrap, check_topic
from orders_common.logs import LogFormat

# librdkafka settings the delivery guarantee depends on (docs/interface.md §4): the consumer
# sets them itself, and --kafka-option may not change them.
GUARANTEED_OPTIONS = frozenset(
    {
        "enable.auto.commit",
        "enable.auto.offset.store",
        "auto.commit.interval.ms",
        "isolation.level",
        "group.id",
        "group.instance.id",
        "partition.assignment.strategy",
        "group.protocol",
        "group.remote.assignor",
        "enable.partition.eof",
        "auto.offset.reset",
        "bootstrap.servers",
        "enable.idempotence",
        "transactional.id",
        "acks",
    }
)


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    group_id: str
    topic: str = "orders"
    dlq_topic: str | None = None
    group_instance_id: str | None = None
    static_membership: bool = True
    startup_timeout: float = 30.0
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        _check(check_bootstrap, self.bootstrap_servers, "--bootstrap-servers")
        _check(check_topic, self.topic, "--topic")
        if self.dlq_topic is not None:
            _check(check_topic, self.dlq_topic, "--dlq-topic")
            if self.dlq_topic == self.topic:
                raise ConfigError("--dlq-topic must differ from --topic")
        if not self.group_id.strip():
            raise ConfigError("--group-id must not be empty")
        _positive("--startup-timeout", self.startup_timeout)
        refused = sorted(set(self.options) & GUARANTEED_OPTIONS)
        if refused:
            raise ConfigError(
                f"--kafka-option {refused[0]} is refused: the delivery guarantee depends on it "
                "(docs/interface.md)"
            )


MAX_PARSE_WORKERS = 16


@dataclass(frozen=True)
class BatchSettings:
    max_records: int = 20_000
    max_seconds: float = 0.5
    until_idle: float | None = None
    retry_seconds: float = 300.0
    # One worker process: the consumer then keeps both cores of the bench machine busy
    # (polling and writing on one, parsing on the other); 0 parses on the polling thread.
    parse_workers: int = 1

    def __post_init__(self) -> None:
        _positive("--batch-max-records", self.max_records)
        if not 0 <= self.parse_workers <= MAX_PARSE_WORKERS:
            raise ConfigError(
                f"--parse-workers must be 0 to {MAX_PARSE_WORKERS}, got {self.parse_workers}"
            )
        _positive("--batch-max-seconds", self.max_seconds)
        _positive("--retry-seconds", self.retry_seconds)
        if self.until_idle is not None and not (
            math.isfinite(self.until_idle) and self.until_idle >= 0
        ):
            raise ConfigError(f"--until-idle must be >= 0 seconds, got {self.until_idle}")


@dataclass(frozen=True)
class WarehouseSettings:
    """A DuckDB file (``db_path``) or a DuckLake lakehouse (``catalog``, ``data_path``)."""

    db_path: Path | None = None
    catalog: str | None = None
    data_path: str | None = None
    # DuckDB's buffer pool counts in the consumer's peak memory: 96 MB keeps the consumer and
    # its parsing worker within make bench's memory budget (measured: see docs/performance.md).
    memory_limit: str = "96MB"
    maintain_every: float | None = None  # seconds between a lake member's maintenance passes
    maintain_older_than: float = 3600.0  # seconds of snapshots that maintenance keeps

    def __post_init__(self) -> None:
        if (self.db_path is None) == (self.catalog is None):
            raise ConfigError(
                "give the warehouse as --db PATH or as --catalog postgres:CONNINFO "
                "[--data-path DIR|s3://...] (one of them)"
                if self.db_path is None
                else "--db and --catalog exclude each other: a file or a lake, not both"
            )
        if self.db_path is not None and self.db_path.is_dir():
            raise ConfigError(f"--db {self.db_path} is a directory, not a database file")
        if self.data_path is not None and self.catalog is None:
            raise ConfigError("--data-path goes with --catalog")
        if self.catalog is not None and not self.catalog.startswith("postgres:"):
            raise ConfigError("--catalog must be postgres:CONNINFO, e.g. 'postgres:host=...'")
        if self.maintain_every is not None and self.catalog is None:
            raise ConfigError("--maintain-every goes with --catalog (a DuckDB file needs none)")

    @property
    def is_lake(self) -> bool:
        return self.catalog is not None


@dataclass(frozen=True)
class ReferenceSettings:
    """Reference data (CONTRACT §2): CSV files and change topics, any of them."""

    users_csv: Path | None = None
    products_csv: Path | None = None
    fx_csv: Path | None = None
    users_topic: str | None = None
    products_topic: str | None = None
    fx_topic: str | None = None
    poll_seconds: float = 30.0

    def __post_init__(self) -> None:
        csvs = (("--users-csv", self.users_csv), ("--products-csv", self.products_csv),
                ("--fx-csv", self.fx_csv))  # fmt: skip
        for flag, csv_path in csvs:
            if csv_path is not None and not csv_path.is_file():
                raise ConfigError(f"{flag} {csv_path} does not exist or is not a file")
        seen: dict[str, str] = {}
        for flag, topic in self.topic_flags():
            _check(check_topic, topic, flag)
            if topic in seen:
                raise ConfigError(f"{flag} {topic!r} is also {seen[topic]}: one topic each")
            seen[topic] = flag
        _positive("--reference-poll-seconds", self.poll_seconds)

    def topic_flags(self) -> list[tuple[str, str]]:
        given = (("--users-topic", self.users_topic), ("--products-topic", self.products_topic),
                 ("--fx-topic", self.fx_topic))  # fmt: skip
        return [(flag, topic) for flag, topic in given if topic is not None]

    def topics(self) -> dict[str, str]:
        """Reference topic -> the kind of reference data it carries (users, products, rates)."""
        kinds = (("users", self.users_topic), ("products", self.products_topic),
                 ("rates", self.fx_topic))  # fmt: skip
        return {topic: kind for kind, topic in kinds if topic is not None}


@dataclass(frozen=True)
class HttpSettings:
    port: int | None = None
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if self.port is not None and not 1 <= self.port <= 65535:
            raise ConfigError(f"--metrics-port must be within 1..65535, got {self.port}")


@dataclass(frozen=True)
class LogSettings:
    format: LogFormat = "auto"
    level: str = "info"


@dataclass(frozen=True)
class Settings:
    """Everything ``run`` needs, by concern."""

    kafka: KafkaSettings
    warehouse: WarehouseSettings
    batch: BatchSettings = field(default_factory=BatchSettings)
    reference: ReferenceSettings = field(default_factory=ReferenceSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    logging: LogSettings = field(default_factory=LogSettings)

    def __post_init__(self) -> None:
        taken = {self.kafka.topic: "--topic", self.kafka.dlq_topic: "--dlq-topic"}
        for flag, topic in self.reference.topic_flags():
            if topic in taken:
                raise ConfigError(f"{flag} {topic!r} is also {taken[topic]}: one topic each")


def parse_kafka_options(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs passed through to librdkafka (security settings and the like)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--kafka-option expects KEY=VALUE, got {pair!r}")
        options[key.strip()] = value
    return options


def _positive(flag: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{flag} must be a finite number greater than 0, got {value}")


def _check(check: Any, value: str, flag: str) -> None:
    try:
        check(value)
    except ValueError as error:
        raise ConfigError(f"{flag}: {error}") from None
