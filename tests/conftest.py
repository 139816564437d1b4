"""Session-wide real Kafka broker and PostgreSQL server; per-test topics, groups and catalogs.

The broker is found in this order:
1. ``KAFKA_BOOTSTRAP_SERVERS``, if set;
2. the testcontainers Kafka module, if a Docker engine answers;
3. the native launcher (``tools.localkafka``) on free ports with its own data directory.

The PostgreSQL server of the DuckLake catalogs likewise: ``ORDERS_TEST_CATALOG`` (a libpq
conninfo such as ``host=127.0.0.1 port=5432 user=postgres dbname=postgres``), else the
testcontainers PostgreSQL module, else the native launcher (``tools.localpg``) on a free port.

The S3-compatible server of the lakes on S3: ``ORDERS_TEST_S3`` (a URL naming the keys, the
endpoint and a bucket to write under, ``http://KEY:SECRET@127.0.0.1:9000/bucket``), else the
native SeaweedFS (``tools.locals3``, built on first use) on free ports, with credentials.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import duckdb
import pytest
from confluent_kafka.admin import AdminClient
from testcontainers.community.kafka import KafkaContainer
from testcontainers.community.postgres import PostgresContainer

from consumer.warehouse.extensions import load_extensions
from consumer.warehouse.objectstore import VARIABLES
from tests.harness import create_topic
from tests.noskips import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401
from tests.reliability.harness import FIGURES, Figures, format_table
from tools import provenance
from tools.localkafka import LocalKafka
from tools.localpg import LocalPostgres
from tools.locals3 import Credentials, LocalS3

TESTCONTAINERS_IMAGE = os.environ.get("ORDERS_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.9.0")
POSTGRES_IMAGE = os.environ.get("ORDERS_TEST_POSTGRES_IMAGE", "postgres:15")


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


@dataclass(frozen=True)
class PgServer:
    """A PostgreSQL server for catalogs: a conninfo to its maintenance database."""

    conninfo: str
    origin: str
    local: LocalPostgres | None = None


def with_dbname(conninfo: str, dbname: str) -> str:
    """The same libpq conninfo, pointed at another database."""
    kept = [part for part in conninfo.split() if not part.startswith("dbname=")]
    return " ".join([*kept, f"dbname={dbname}"])


def pg_execute(conninfo: str, *statements: str) -> None:
    """Run statements outside a transaction (CREATE/DROP DATABASE), through DuckDB's postgres
    extension: no PostgreSQL driver or psql needed on the test machine."""
    con = duckdb.connect()
    try:
        load_extensions(con)
        con.execute(f"ATTACH '{conninfo}' AS pg (TYPE postgres)")
        for sql in statements:
            con.execute("CALL postgres_execute('pg', ?, use_transaction := false)", [sql])
    finally:
        con.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    if conninfo := os.environ.get("ORDERS_TEST_CATALOG"):
        yield PgServer(conninfo, "ORDERS_TEST_CATALOG")
        return
    if os.environ.get("ORDERS_TEST_NO_DOCKER") != "1" and _docker_engine_answers():
        with PostgresContainer(
            POSTGRES_IMAGE, username="postgres", password="postgres", dbname="postgres"
        ) as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(5432)
            yield PgServer(
                f"host={host} port={port} user=postgres password=postgres dbname=postgres",
                "testcontainers",
            )
        return
    local = LocalPostgres.ephemeral()
    local.start()
    try:
        yield PgServer(local.conninfo, "native", local)
    finally:
        local.remove()


@pytest.fixture(scope="session")
def pg_catalog(pg_server: PgServer) -> str:
    """A conninfo to the session's PostgreSQL server (its maintenance database)."""
    return pg_server.conninfo


@pytest.fixture
def lake_catalog(pg_server: PgServer) -> Iterator[str]:
    """A conninfo to a fresh database of its own (``lake_<uuid>``): no two tests share a catalog.
    Dropped afterwards on a server we did not start (ours is deleted whole at the end)."""
    name = f"lake_{uuid.uuid4().hex[:12]}"
    pg_execute(pg_server.conninfo, f'CREATE DATABASE "{name}"')
    yield with_dbname(pg_server.conninfo, name)
    if pg_server.local is None:
        with contextlib.suppress(Exception):
            pg_execute(pg_server.conninfo, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class S3Server:
    """An S3-compatible server: the consumer's environment for it, and a bucket to write under
    (each test under a prefix of its own); the native one also has a bucket open to anonymous
    requests."""

    env: dict[str, str]
    bucket: str
    origin: str
    local: LocalS3 | None = None
    public_bucket: str | None = None

    @classmethod
    def from_url(cls, url: str) -> S3Server:
        parts = urllib.parse.urlsplit(url)
        bucket = parts.path.strip("/")
        if parts.scheme not in ("http", "https") or not parts.hostname or not bucket:
            raise pytest.UsageError(
                "ORDERS_TEST_S3 must be http(s)://[KEY:SECRET@]HOST:PORT/BUCKET"
            )
        env = {
            "ORDERS_S3_ENDPOINT": parts.netloc.rsplit("@", 1)[-1],
            "ORDERS_S3_USE_SSL": str(parts.scheme == "https").lower(),
            "ORDERS_S3_URL_STYLE": "path",
        }
        if parts.username:
            env["AWS_ACCESS_KEY_ID"] = urllib.parse.unquote(parts.username)
            env["AWS_SECRET_ACCESS_KEY"] = urllib.parse.unquote(parts.password or "")
        return cls(env, bucket, "ORDERS_TEST_S3")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if url := os.environ.get("ORDERS_TEST_S3"):
        yield S3Server.from_url(url)
        return
    keys = Credentials(f"orders-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
    local = LocalS3.ephemeral(tmp_path_factory.mktemp("s3"), keys, public_bucket="orders-public")
    local.start()  # the first start on a machine builds SeaweedFS (minutes)
    try:
        for bucket in ("orders-test", "orders-public"):
            local.create_bucket(bucket)
        yield S3Server(local.env(), "orders-test", "native", local, "orders-public")
    finally:
        local.remove()


@pytest.fixture
def s3_data_path(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """An ``s3://`` data path of its own; the server's settings are in this process's
    environment for the test, so the consumers and readers it starts inherit them."""
    for name in (*VARIABLES, "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return f"s3://{s3_server.bucket}/{uuid.uuid4().hex[:12]}"


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
    """The reliability table in Markdown, under the line that names this pytest command, the
    date, the commit and the outcome: docs/reliability.md takes both as they are."""
    figures = config.stash.get(FIGURES, [])
    if figures:
        words = ["python", "-m", "pytest", *config.invocation_params.args]
        stats = terminalreporter.stats
        outcome = ", ".join(
            f"{len(stats.get(kind, []))} {label}"
            for kind, label in (("passed", "passed"), ("failed", "failed"), ("error", "errors"))
        )
        caption = provenance.caption(
            provenance.command_line(words, os.environ), note=f"{outcome} in this run"
        )
        terminalreporter.section("reliability figures")
        terminalreporter.write_line(f"{caption}\n\n{format_table(figures)}")
