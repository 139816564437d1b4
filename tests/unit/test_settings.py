"""Settings by concern: built from flags and environment with one default each, and
validated (finite numbers only) however they are constructed."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import pytest

from consumer import cli, flags
from consumer.errors import ConfigError
from consumer.settings import (
    BatchSettings,
    HttpSettings,
    KafkaSettings,
    LogSettings,
    ReferenceSettings,
    Settings,
    WarehouseSettings,
)

REQUIRED = ["--bootstrap-servers", "127.0.0.1:9092", "--group-id", "g"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ORDERS_") or name == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(name)


def settings(*argv: str, db: Path = Path("w.duckdb")) -> Settings:
    args = cli.build_parser().parse_args(["run", "--db", str(db), *argv])
    return flags.settings_from_args(args)


def test_unset_flags_take_the_settings_defaults() -> None:
    """With only the required flags, every concern equals its settings object's defaults:
    the flags keep no defaults of their own."""
    built = settings(*REQUIRED)
    assert built.batch == BatchSettings()
    assert built.reference == ReferenceSettings()
    assert built.http == HttpSettings()
    assert built.logging == LogSettings()
    defaults = KafkaSettings("127.0.0.1:9092", "g")
    for name in ("topic", "startup_timeout", "static_membership", "options"):
        assert getattr(built.kafka, name) == getattr(defaults, name), name
    assert built.warehouse == WarehouseSettings(Path("w.duckdb"))


def test_the_dead_letter_topic_defaults_to_the_topic_dot_dlq_and_can_be_off() -> None:
    """No --dlq-topic: <topic>.dlq; --no-dlq: none at all."""
    assert settings(*REQUIRED, "--topic", "sales").kafka.dlq_topic == "sales.dlq"
    assert settings(*REQUIRED, "--dlq-topic", "rejects").kafka.dlq_topic == "rejects"
    assert settings(*REQUIRED, "--no-dlq").kafka.dlq_topic is None


def test_group_instance_id_none_turns_static_membership_off() -> None:
    """An explicit id is kept; 'none' disables static membership; unset derives it later."""
    explicit = settings(*REQUIRED, "--group-instance-id", "member-7").kafka
    assert (explicit.group_instance_id, explicit.static_membership) == ("member-7", True)
    off = settings(*REQUIRED, "--group-instance-id", "none").kafka
    assert (off.group_instance_id, off.static_membership) == (None, False)
    derived = settings(*REQUIRED).kafka
    assert (derived.group_instance_id, derived.static_membership) == (None, True)


def test_kafka_options_from_flags_and_environment_are_passed_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ORDERS_KAFKA_OPTIONS pairs and repeated --kafka-option flags all arrive; a value may
    itself contain '='."""
    monkeypatch.setenv("ORDERS_KAFKA_OPTIONS", "security.protocol=SASL_SSL;sasl.mechanism=PLAIN")
    built = settings(*REQUIRED, "--kafka-option", "sasl.jaas.config=a=b", "--kafka-option",
                     " client.rack =r1")  # fmt: skip
    assert dict(built.kafka.options) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.jaas.config": "a=b",
        "client.rack": "r1",
    }


def test_every_concern_reads_its_environment_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Values set only in ORDERS_* variables reach the settings, converted to their types."""
    users = tmp_path / "users.csv"
    users.write_text("user_id,name,email,country,signup_date\n")
    env = {
        "ORDERS_BOOTSTRAP_SERVERS": "broker:9093",
        "ORDERS_GROUP_ID": "envgroup",
        "ORDERS_TOPIC": "envtopic",
        "ORDERS_BATCH_MAX_RECORDS": "7",
        "ORDERS_BATCH_MAX_SECONDS": "0.25",
        "ORDERS_UNTIL_IDLE": "0",
        "ORDERS_USERS_CSV": str(users),
        "ORDERS_METRICS_PORT": "9108",
        "ORDERS_LOG_LEVEL": "debug",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    built = settings()
    assert (built.kafka.bootstrap_servers, built.kafka.group_id) == ("broker:9093", "envgroup")
    assert built.kafka.topic == "envtopic"
    assert (built.batch.max_records, built.batch.max_seconds) == (7, 0.25)
    assert built.batch.until_idle == 0.0
    assert built.reference.users_csv == users
    assert built.http.port == 9108
    assert built.logging.level == "debug"


def test_orders_bootstrap_servers_wins_over_kafka_bootstrap_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """KAFKA_BOOTSTRAP_SERVERS is a fallback; ORDERS_BOOTSTRAP_SERVERS comes first."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "fallback:9092")
    assert settings("--group-id", "g").kafka.bootstrap_servers == "fallback:9092"
    monkeypatch.setenv("ORDERS_BOOTSTRAP_SERVERS", "first:9092")
    assert settings("--group-id", "g").kafka.bootstrap_servers == "first:9092"


NOT_FINITE = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("value", NOT_FINITE)
@pytest.mark.parametrize(
    ("field", "flag"),
    [("max_seconds", "--batch-max-seconds"), ("retry_seconds", "--retry-seconds"),
     ("until_idle", "--until-idle")],
)  # fmt: skip
def test_batch_settings_refuse_nan_and_infinities(value: float, field: str, flag: str) -> None:
    """Built in code (not from flags), a non-finite duration is still ConfigError naming it."""
    with pytest.raises(ConfigError, match=flag):
        changes: dict[str, Any] = {field: value}
        dataclasses.replace(BatchSettings(), **changes)


@pytest.mark.parametrize("value", [*NOT_FINITE, 0.0, -1.0])
def test_kafka_and_reference_durations_must_be_finite_and_positive(value: float) -> None:
    """--startup-timeout and --reference-poll-seconds: finite and > 0."""
    with pytest.raises(ConfigError, match="--startup-timeout"):
        KafkaSettings("127.0.0.1:9092", "g", startup_timeout=value)
    with pytest.raises(ConfigError, match="--reference-poll-seconds"):
        ReferenceSettings(poll_seconds=value)


def test_a_record_limit_below_one_is_refused() -> None:
    """A batch needs room for at least one record."""
    with pytest.raises(ConfigError, match="--batch-max-records"):
        BatchSettings(max_records=0)


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_a_metrics_port_outside_the_tcp_range_is_refused(port: int) -> None:
    """Ports are 1..65535."""
    with pytest.raises(ConfigError, match="--metrics-port"):
        HttpSettings(port=port)


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after they are built."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        BatchSettings().max_records = 5  # type: ignore[misc]
