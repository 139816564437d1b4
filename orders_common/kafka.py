"""Kafka client plumbing shared by both services: bootstrap validation, the client-config
builder, librdkafka's log lines routed into structlog, and broker errors as one line."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from orders_common.logs import get_logger

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


def check_bootstrap(value: str) -> str:
    """Accept ``host:port[,host:port...]``; raise ValueError with a readable reason otherwise."""
    servers = [part.strip() for part in value.split(",")]
    if not value.strip() or not all(servers):
        raise ValueError(f"must be HOST:PORT[,HOST:PORT...], got {value!r}")
    for server in servers:
        match = _HOST_PORT.match(server)
        if match is None:
            raise ValueError(f"{server!r} is not HOST:PORT (e.g. 127.0.0.1:9092)")
        if not 1 <= int(match.group(2)) <= 65535:
            raise ValueError(f"{server!r} has a port outside 1-65535")
    return value


def check_topic(name: str) -> str:
    """A legal Kafka topic name, or ValueError."""
    if not _TOPIC_NAME.fullmatch(name) or name in {".", ".."}:
        raise ValueError(f"{name!r} is not a valid Kafka topic name")
    return name


class ClientLog:
    """librdkafka's own log lines, as structlog JSON lines on stdout instead of raw stderr.

    A line repeated within one client (a dead broker is retried every second) is logged once
    until a different line comes; the caller reports the failure itself, as one clear line.
    """

    def __init__(self, client: str, service: str) -> None:
        self._log = get_logger(f"{service}.librdkafka")
        self._client = client
        self._last: str | None = None

    def log(self, level: int, fmt: str, *args: Any) -> None:
        message = fmt % args if args else fmt
        text = re.sub(r"\d+ms", "", message)  # "after 1001ms in state" varies between repeats
        if text == self._last:
            return
        self._last = text
        self._log.debug(
            "librdkafka",
            client=self._client,
            level_name=logging.getLevelName(level),
            message=message,
        )


class ClientErrors:
    """Client-level errors (broker down, auth...) logged once per kind, not on every retry."""

    def __init__(self, client: str, service: str) -> None:
        self._log = get_logger(f"{service}.kafka")
        self._client = client
        self._seen: set[int] = set()
        self.last: KafkaError | None = None

    def __call__(self, error: KafkaError) -> None:
        self.last = error
        if error.code() not in self._seen:
            self._seen.add(error.code())
            self._log.warning(
                "kafka_client_error",
                client=self._client,
                error=error.str(),
                code=error.name(),
                fatal=error.fatal(),
            )


def client_config(
    bootstrap_servers: str,
    client_id: str,
    *,
    service: str,
    fixed: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """librdkafka settings: the service's ``fixed`` ones, then the user's ``options``.

    Every client logs through structlog (``logger``) and reports its errors once (``error_cb``)
    unless ``fixed`` names its own.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "client.id": client_id,
        "logger": ClientLog(client_id, service),
        "error_cb": ClientErrors(client_id, service),
    }
    config.update(fixed or {})
    config.update(options or {})
    return config


def error_text(error: BaseException | KafkaError) -> str:
    """One line for a KafkaException, a KafkaError or anything else."""
    inner: object = error
    if isinstance(error, KafkaException) and error.args:
        inner = error.args[0]
    return inner.str() if isinstance(inner, KafkaError) else str(inner)
