"""docker-compose.yml validates with docker-compose and wires the stack as docs/operations.md says.

Compose's own ``config`` command interpolates variables, applies YAML anchors and normalizes the
file; the structural checks read its output as JSON. docker-compose 1.x (Debian's package) only
prints YAML, so its output is converted by the Python interpreter docker-compose itself runs on,
which always has PyYAML (a hard dependency of docker-compose 1.x); PyYAML is no dependency here.
Compose 2 (``docker compose`` or a v2 ``docker-compose``) prints JSON directly.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
YAML_TO_JSON = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"
APP_SERVICES = ("reference", "producer_sim", "consumer")


def _compose_command() -> list[str] | None:
    if binary := shutil.which("docker-compose"):
        return [binary]
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    return None


COMPOSE = _compose_command()
pytestmark = pytest.mark.skipif(
    COMPOSE is None,
    reason="docker-compose is not installed (apt-get install --no-install-recommends "
    "docker-compose); CI installs it",
)


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run compose on docker-compose.yml with no variables set but ``env`` and no .env file, so
    that the file's own defaults apply unless ``env`` overrides them."""
    assert COMPOSE is not None
    environment = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
    with tempfile.TemporaryDirectory() as empty:
        env_file = Path(empty) / "empty.env"
        env_file.write_text("")
        return subprocess.run(
            [*COMPOSE, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args],
            capture_output=True,
            text=True,
            env={**environment, **(env or {})},
            cwd=ROOT,
            timeout=60,
            check=False,
        )


@functools.cache
def compose_version() -> str:
    result = compose("version", "--short")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().lstrip("v")


def config(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The normalized configuration with the monitoring profile, as a dict."""
    if compose_version().startswith("1."):
        result = compose("--profile", "monitoring", "config", env=env)
        assert result.returncode == 0, result.stderr
        python = _interpreter_of(Path(COMPOSE[0]))  # type: ignore[index]
        converted = subprocess.run(
            [python, "-c", YAML_TO_JSON],
            input=result.stdout,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert converted.returncode == 0, f"cannot read docker-compose 1.x output: {converted}"
        text = converted.stdout
    else:
        result = compose("--profile", "monitoring", "config", "--format", "json", env=env)
        assert result.returncode == 0, result.stderr
        text = result.stdout
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def _interpreter_of(script: Path) -> str:
    first = script.read_bytes().split(b"\n", 1)[0].decode()
    assert first.startswith("#!"), f"{script} is not a Python script; cannot read its YAML"
    words = first[2:].split()
    return words[1] if Path(words[0]).name == "env" else words[0]


# -- normalizers: compose 1 prints short syntax, compose 2 long syntax --------------------------


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read_only)"""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            found[target] = (source, bool(mode) and "ro" in mode[0].split(","))
        else:
            found[volume["target"]] = (volume["source"], bool(volume.get("read_only")))
    return found


def ports(service: dict[str, Any]) -> set[tuple[str, int, int]]:
    """(host_ip, published, target)"""
    found = set()
    for port in service.get("ports", []):
        if isinstance(port, str):
            ip, published, target = port.split("/")[0].rsplit(":", 2)
            found.add((ip, int(published), int(target)))
        else:
            found.add((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
    return found


def has_healthcheck(service: dict[str, Any]) -> bool:
    check: dict[str, Any] = service.get("healthcheck") or {}
    return bool(check) and not check.get("disable") and check.get("test") not in (["NONE"], None)


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return config()


# -- tests -------------------------------------------------------------------------------------


def test_compose_file_validates_with_and_without_the_monitoring_profile() -> None:
    """`docker-compose config -q` accepts the file, and every variable it reads has a default."""
    for profile in ([], ["--profile", "monitoring"]):
        result = compose(*profile, "config", "-q")
        assert result.returncode == 0, result.stderr
        assert "variable is not set" not in result.stderr, result.stderr


def test_services_profiles_and_images(stack: dict[str, Any]) -> None:
    """All seven services exist, monitoring ones only in its profile, with the intended images."""
    services = stack["services"]
    assert set(services) == {
        "kafka",
        "topics",
        "reference",
        "producer_sim",
        "consumer",
        "prometheus",
        "grafana",
    }
    for name, service in services.items():
        expected = ["monitoring"] if name in ("prometheus", "grafana") else []
        assert service.get("profiles", []) == expected, name
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["topics"]["image"] == "apache/kafka:4.1.1"
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        assert Path(services[name]["build"]["context"]).resolve() == ROOT, name
    assert (ROOT / "Dockerfile").is_file()
    assert services["consumer"].get("entrypoint") is None  # the image's orders-consumer
    assert services["consumer"]["command"] == ["run"]
    for name in ("reference", "producer_sim"):
        assert services[name]["entrypoint"] == ["orders-sim"], name
        assert not has_healthcheck(services[name]), f"{name} would inherit the /healthz probe"
    assert services["reference"]["command"] == ["reference"]
    assert services["producer_sim"]["command"] == ["publish"]


def test_kafka_runs_kraft_single_node_with_a_healthcheck(stack: dict[str, Any]) -> None:
    """Kafka is one KRaft node, two client listeners, RF 1, no rebalance delay, a healthcheck."""
    kafka = stack["services"]["kafka"]
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "INTERNAL://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "HOST://localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", key
    assert ("127.0.0.1", 9092, 9094) in ports(kafka)
    assert mounts(kafka)["/var/lib/kafka/data"] == ("kafka-data", False)
    assert has_healthcheck(kafka)
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])


def test_topics_are_created_once_kafka_is_healthy(stack: dict[str, Any]) -> None:
    """A one-shot service creates the order topic and its dead-letter topic, idempotently."""
    topics = stack["services"]["topics"]
    assert depends_on(topics) == {"kafka": "service_healthy"}
    assert topics["restart"] == "no"
    script = " ".join(topics["command"])
    assert script.count("kafka-topics.sh") >= 1
    assert "--create --if-not-exists" in script
    assert ".dlq" in script
    assert topics["environment"]["ORDERS_TOPIC"] == "orders"


def test_consumer_config_volumes_ports_and_health(stack: dict[str, Any]) -> None:
    """The consumer is configured by env, keeps DuckDB on a volume and publishes :9108."""
    services = stack["services"]
    consumer = services["consumer"]
    env = consumer["environment"]
    assert env["ORDERS_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["ORDERS_TOPIC"] == "orders"
    assert env["ORDERS_GROUP_ID"] == "orders-consumer"
    assert env["ORDERS_DB"] == "/data/warehouse.duckdb"
    assert env["ORDERS_METRICS_PORT"] == "9108"
    assert env["ORDERS_LOG_FORMAT"] == "json"
    assert env["ORDERS_USERS_CSV"] == "/reference/users.csv"
    assert env["ORDERS_PRODUCTS_CSV"] == "/reference/products.csv"
    assert mounts(consumer)["/data"] == ("warehouse", False)
    assert mounts(consumer)["/reference"] == ("reference", True)
    assert mounts(services["reference"])["/reference"] == ("reference", False)
    assert services["reference"]["environment"]["ORDERS_SIM_REFERENCE_DIR"] == "/reference"
    assert {"warehouse", "reference", "kafka-data"} <= set(stack["volumes"])
    assert ("127.0.0.1", 9108, 9108) in ports(consumer)
    assert has_healthcheck(consumer)
    assert "/healthz" in " ".join(consumer["healthcheck"]["test"])
    assert depends_on(consumer) == {
        "kafka": "service_healthy",
        "topics": "service_completed_successfully",
        "reference": "service_completed_successfully",
    }


def test_simulator_trickles_orders_forever_with_the_reference_seed(stack: dict[str, Any]) -> None:
    """producer_sim publishes an endless, paced stream whose seed matches the reference CSVs."""
    services = stack["services"]
    sim = services["producer_sim"]["environment"]
    assert sim["ORDERS_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert sim["ORDERS_SIM_ORDERS"] == "0"
    assert float(sim["ORDERS_SIM_RATE"]) > 0
    reference = services["reference"]["environment"]
    assert (sim["ORDERS_SIM_SEED"], sim["ORDERS_SIM_ORDERS"]) == (
        reference["ORDERS_SIM_SEED"],
        reference["ORDERS_SIM_ORDERS"],
    )


def test_monitoring_profile_scrapes_the_consumer_and_provisions_grafana(
    stack: dict[str, Any],
) -> None:
    """Prometheus and Grafana mount existing deploy/ files and publish ports 9090 and 3000."""
    services = stack["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    prom_mounts = mounts(prometheus)
    source, read_only = prom_mounts["/etc/prometheus"]
    assert read_only
    assert (Path(source) / "prometheus.yml").is_file()
    assert "consumer:9108" in (Path(source) / "prometheus.yml").read_text()
    assert ("127.0.0.1", 9090, 9090) in ports(prometheus)

    grafana_mounts = mounts(grafana)
    provisioning, _ = grafana_mounts["/etc/grafana/provisioning"]
    dashboards, _ = grafana_mounts["/etc/grafana/dashboards"]
    assert list((Path(provisioning) / "datasources").glob("*.yml"))
    provider = next((Path(provisioning) / "dashboards").glob("*.yml")).read_text()
    assert "path: /etc/grafana/dashboards" in provider
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith("/etc/grafana/dashboards/")
    assert (Path(dashboards) / Path(home).name).is_file()
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert ("127.0.0.1", 3000, 3000) in ports(grafana)


def test_dependencies_wait_for_health_or_completion_that_can_happen(
    stack: dict[str, Any],
) -> None:
    """Waited-for health has a healthcheck; waited-for completion is a one-shot service."""
    services = stack["services"]
    for name, service in services.items():
        for dependency, condition in depends_on(service).items():
            target = services[dependency]
            if condition == "service_healthy":
                assert has_healthcheck(target), f"{name} waits for {dependency}'s health"
            if condition == "service_completed_successfully":
                assert target.get("restart", "no") == "no", f"{name} waits for {dependency}"


def test_environment_variables_override_the_defaults() -> None:
    """Topic, ports, rate, group and credentials come from the environment when set."""
    overridden = config(
        env={
            "ORDERS_TOPIC": "events",
            "ORDERS_GROUP_ID": "warehouse-2",
            "ORDERS_SIM_RATE": "5",
            "ORDERS_METRICS_HOST_PORT": "19108",
            "KAFKA_HOST_PORT": "19092",
            "GRAFANA_HOST_PORT": "13000",
            "GRAFANA_ADMIN_PASSWORD": "s3cret",
            "PUBLISH_ADDRESS": "0.0.0.0",
        }
    )["services"]
    for name in ("topics", "producer_sim", "consumer"):
        assert overridden[name]["environment"]["ORDERS_TOPIC"] == "events", name
    assert overridden["consumer"]["environment"]["ORDERS_GROUP_ID"] == "warehouse-2"
    assert overridden["producer_sim"]["environment"]["ORDERS_SIM_RATE"] == "5"
    assert ("0.0.0.0", 19108, 9108) in ports(overridden["consumer"])
    assert ("0.0.0.0", 19092, 9094) in ports(overridden["kafka"])
    advertised = overridden["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "HOST://localhost:19092" in advertised.split(",")
    assert ("0.0.0.0", 13000, 3000) in ports(overridden["grafana"])
    assert overridden["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "s3cret"
