"""docker-compose.yml validates with every compose found and wires the stack as docs/operations.md
says: one image build, health-gated dependencies, Kafka, the consumers, monitoring, the lake.

Compose's own ``config`` command interpolates variables, applies YAML anchors and normalizes the
file (tests/unit/deploy_compose.py); the checks read its output. Each test runs once per
implementation found (docker-compose 1.29 and Compose v2) and is skipped without any.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy_compose import (
    ROOT,
    Compose,
    depends_on,
    has_healthcheck,
    implementations,
    mounts,
    ports,
)

IMPLEMENTATIONS = implementations()
pytestmark = pytest.mark.skipif(
    not IMPLEMENTATIONS,
    reason="no compose: apt-get install --no-install-recommends docker-compose (CI does), or "
    "COMPOSE_V2=/path/to/a/compose-v2-binary",
)
APP_IMAGE = "orders-pipeline:local"
LAKE_MEMBERS = ("consumer-lake-1", "consumer-lake-2", "consumer-lake-3")
PROFILED = {
    "prometheus": "monitoring",
    "grafana": "monitoring",
    "postgres": "lake",
    "minio": "lake",
    "buckets": "lake",
    **dict.fromkeys(LAKE_MEMBERS, "lake"),
}


@pytest.fixture(scope="module", params=IMPLEMENTATIONS, ids=lambda c: c.name)
def compose(request: pytest.FixtureRequest) -> Compose:
    implementation: Compose = request.param
    return implementation


@pytest.fixture(scope="module")
def stack(compose: Compose) -> dict[str, Any]:
    return compose.config()


def waits_for(services: dict[str, Any], name: str) -> set[str]:
    """Every service `name` waits for, directly or through others."""
    seen: set[str] = set()
    todo = list(depends_on(services[name]))
    while todo:
        dependency = todo.pop()
        if dependency not in seen:
            seen.add(dependency)
            todo += depends_on(services[dependency])
    return seen


def test_compose_file_validates_with_every_profile(compose: Compose) -> None:
    """`config -q` accepts the file under each profile, and every variable has a default."""
    for profiles in ([], ["monitoring"], ["lake"], ["monitoring", "lake"]):
        args = [word for name in profiles for word in ("--profile", name)]
        result = compose.run(*args, "config", "-q")
        assert result.returncode == 0, (profiles, result.stderr)
        assert "variable is not set" not in result.stderr, result.stderr


def test_the_image_is_built_once_before_any_service_that_uses_it(stack: dict[str, Any]) -> None:
    """One service has `build:`; the others name its tag, never pull it, and wait for it."""
    services = stack["services"]
    builders = [name for name, service in services.items() if "build" in service]
    assert len(builders) == 1, f"{builders} all build the image (Compose v2 races on its tag)"
    (builder,) = builders
    assert Path(services[builder]["build"]["context"]).resolve() == ROOT
    assert (ROOT / "Dockerfile").is_file()
    assert services[builder]["image"] == APP_IMAGE
    users = [name for name, service in services.items() if service["image"] == APP_IMAGE]
    assert {"reference", "producer_sim", "consumer", *LAKE_MEMBERS} <= set(users)
    for name in users:
        if name == builder:
            continue
        # docker-compose 1.29 prepares images in dependency order and pulls what it cannot
        # build: the builder must come first.
        assert builder in waits_for(services, name), f"{name} can start before {builder} builds"
        assert services[name].get("pull_policy") == "never", name


def test_services_profiles_and_images(stack: dict[str, Any]) -> None:
    """Every service exists, the optional ones only in their profile, with the intended image."""
    services = stack["services"]
    assert set(services) == {"kafka", "topics", "reference", "producer_sim", "consumer"} | set(
        PROFILED
    )
    for name, service in services.items():
        expected = [PROFILED[name]] if name in PROFILED else []
        assert service.get("profiles", []) == expected, name
    assert services["kafka"]["image"] == services["topics"]["image"] == "apache/kafka:4.1.1"
    assert services["minio"]["image"] == services["buckets"]["image"]
    assert services["consumer"].get("entrypoint") is None  # the image's orders-consumer
    assert services["consumer"]["command"] == ["run"]
    for name in ("reference", "producer_sim"):
        assert services[name]["entrypoint"] == ["orders-sim"], name
        assert not has_healthcheck(services[name]), f"{name} would inherit the /healthz probe"
    assert services["reference"]["command"] == ["reference"]
    assert services["producer_sim"]["command"] == ["publish"]


def test_kafka_runs_kraft_single_node_with_a_light_healthcheck(stack: dict[str, Any]) -> None:
    """One KRaft node, two client listeners, RF 1, and a probe JVM with its own small heap."""
    kafka = stack["services"]["kafka"]
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    advertised = env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert {"INTERNAL://kafka:9092", "HOST://localhost:9092"} <= set(advertised)
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
    probe = " ".join(kafka["healthcheck"]["test"])
    assert "kafka-broker-api-versions.sh" in probe
    heaps = re.findall(r"-Xmx(\d+)([mg])", probe)
    assert heaps, "the probe JVM would take the broker's KAFKA_HEAP_OPTS"
    assert all(int(n) * (1024 if unit == "g" else 1) <= 128 for n, unit in heaps), heaps


def test_one_shot_jobs_wait_for_their_server_and_do_not_restart(stack: dict[str, Any]) -> None:
    """topics waits for a healthy Kafka, buckets for a healthy MinIO; both run once."""
    services = stack["services"]
    assert depends_on(services["topics"]) == {"kafka": "service_healthy"}
    assert depends_on(services["buckets"]) == {"minio": "service_healthy"}
    for name in ("topics", "buckets", "reference"):
        assert services[name]["restart"] == "no", name
    assert services["topics"]["environment"]["ORDERS_TOPIC"] == "orders"


def test_consumer_config_volumes_ports_and_health(stack: dict[str, Any]) -> None:
    """The file consumer is configured by env, keeps DuckDB on a volume and publishes :9108."""
    services = stack["services"]
    consumer = services["consumer"]
    env = consumer["environment"]
    assert env["ORDERS_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["ORDERS_TOPIC"] == "orders"
    assert env["ORDERS_GROUP_ID"] == "orders-consumer"
    assert env["ORDERS_DB"] == "/data/warehouse.duckdb"
    assert env["ORDERS_METRICS_PORT"] == "9108"
    assert env["ORDERS_METRICS_HOST"] == "0.0.0.0"
    assert env["ORDERS_LOG_FORMAT"] == "json"
    assert env["ORDERS_USERS_CSV"] == "/reference/users.csv"
    assert env["ORDERS_PRODUCTS_CSV"] == "/reference/products.csv"
    assert mounts(consumer)["/data"] == ("warehouse", False)
    assert mounts(consumer)["/reference"] == ("reference", True)
    assert mounts(services["reference"])["/reference"] == ("reference", False)
    assert services["reference"]["environment"]["ORDERS_SIM_REFERENCE_DIR"] == "/reference"
    assert {"warehouse", "reference", "kafka-data", "grafana-data"} <= set(stack["volumes"])
    assert ("127.0.0.1", 9108, 9108) in ports(consumer)
    assert has_healthcheck(consumer)
    assert "/healthz" in " ".join(consumer["healthcheck"]["test"])
    assert depends_on(consumer) == {
        "kafka": "service_healthy",
        "topics": "service_completed_successfully",
        "reference": "service_completed_successfully",
    }


def test_simulator_trickles_records_forever_with_the_reference_seed(stack: dict[str, Any]) -> None:
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


def test_lake_profile_servers_have_healthchecks_and_durable_volumes(
    stack: dict[str, Any],
) -> None:
    """PostgreSQL (pg_isready over TCP) and MinIO (mc ready) are health-checked, on volumes."""
    services = stack["services"]
    postgres, minio = services["postgres"], services["minio"]
    assert has_healthcheck(postgres) and has_healthcheck(minio)
    probe = " ".join(postgres["healthcheck"]["test"])
    assert "pg_isready" in probe and "-h 127.0.0.1" in probe, probe
    assert minio["healthcheck"]["test"][-3:] == ["mc", "ready", "local"]
    assert mounts(postgres)["/var/lib/postgresql/data"] == ("lake-catalog", False)
    assert mounts(minio)["/data"] == ("lake-data", False)
    assert minio["command"][:2] == ["server", "/data"]
    assert ("127.0.0.1", 5432, 5432) in ports(postgres)
    assert ("127.0.0.1", 9000, 9000) in ports(minio)


def test_lake_members_share_one_group_and_one_warehouse(stack: dict[str, Any]) -> None:
    """Three members of one group write one catalog and one bucket, each with its id and port."""
    services = stack["services"]
    pg_env, minio_env = services["postgres"]["environment"], services["minio"]["environment"]
    bucket = services["buckets"]["environment"]["ORDERS_LAKE_BUCKET"]
    envs = [services[name]["environment"] for name in LAKE_MEMBERS]
    assert len({env["ORDERS_GROUP_ID"] for env in envs}) == 1
    assert envs[0]["ORDERS_GROUP_ID"] != services["consumer"]["environment"]["ORDERS_GROUP_ID"]
    assert len({env["ORDERS_GROUP_INSTANCE_ID"] for env in envs}) == len(LAKE_MEMBERS)
    for name, env in zip(LAKE_MEMBERS, envs, strict=True):
        catalog = env["ORDERS_CATALOG"]
        assert catalog.startswith("postgres:"), name
        conninfo = dict(pair.split("=", 1) for pair in catalog.removeprefix("postgres:").split())
        assert conninfo["host"] == "postgres" and conninfo["port"] == "5432", name
        assert conninfo["dbname"] == pg_env["POSTGRES_DB"], name
        assert conninfo["user"] == pg_env["POSTGRES_USER"], name
        assert conninfo["password"] == pg_env["POSTGRES_PASSWORD"], name
        assert env["ORDERS_DATA_PATH"].startswith(f"s3://{bucket}/"), name
        assert env["ORDERS_S3_ENDPOINT"] == "minio:9000", name
        assert env["ORDERS_S3_USE_SSL"] == "false" and env["ORDERS_S3_URL_STYLE"] == "path"
        assert env["AWS_ACCESS_KEY_ID"] == minio_env["MINIO_ROOT_USER"], name
        assert env["AWS_SECRET_ACCESS_KEY"] == minio_env["MINIO_ROOT_PASSWORD"], name
        assert env["AWS_REGION"], name
        assert env["ORDERS_DB"] == "", f"{name} would get the image's file as well as the lake"
        assert env["ORDERS_METRICS_HOST"] == "0.0.0.0" and env["ORDERS_METRICS_PORT"] == "9108"
        assert env["ORDERS_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        assert mounts(services[name])["/reference"] == ("reference", True), name
        assert "/data" not in mounts(services[name]), name
        assert has_healthcheck(services[name]), name
        assert depends_on(services[name]) == {
            "kafka": "service_healthy",
            "topics": "service_completed_successfully",
            "reference": "service_completed_successfully",
            "postgres": "service_healthy",
            "buckets": "service_completed_successfully",
        }, name
    published = [port for name in LAKE_MEMBERS for port in ports(services[name])]
    assert sorted(published) == [("127.0.0.1", 9111 + i, 9108) for i in range(3)]


def test_monitoring_scrapes_every_consumer_and_provisions_grafana(stack: dict[str, Any]) -> None:
    """Prometheus scrapes the file consumer and each lake member; Grafana's provisioning files
    are mounted where Grafana reads them and agree with the datasource and dashboard files."""
    services = stack["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    source, read_only = mounts(prometheus)["/etc/prometheus"]
    assert read_only
    scrape = (Path(source) / "prometheus.yml").read_text()
    for name in ("consumer", *LAKE_MEMBERS):
        assert re.search(rf'"{name}(:9108)?"', scrape), f"Prometheus does not scrape {name}"
        assert "9108" in " ".join(services[name].get("expose", [])) or ports(services[name])
    assert ("127.0.0.1", 9090, 9090) in ports(prometheus)

    grafana_mounts = mounts(grafana)
    assert "/etc/grafana/provisioning" not in grafana_mounts, "hides the image's other kinds"
    provided = sorted(p for p in (ROOT / "deploy/grafana/provisioning").iterdir() if p.is_dir())
    for kind in provided:
        mounted, read_only = grafana_mounts[f"/etc/grafana/provisioning/{kind.name}"]
        assert Path(mounted).resolve() == kind and read_only, kind.name
    assert grafana_mounts["/var/lib/grafana"] == ("grafana-data", False)
    datasource = next((ROOT / "deploy/grafana/provisioning/datasources").glob("*.yml")).read_text()
    assert re.search(r"^\s*url:\s*http://prometheus:9090\s*$", datasource, flags=re.M)
    provider = next((ROOT / "deploy/grafana/provisioning/dashboards").glob("*.yml")).read_text()
    (path,) = re.findall(r"^\s*path:\s*(\S+)", provider, flags=re.M)
    dashboards, _ = grafana_mounts[path]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent.as_posix() == path
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


def test_environment_variables_override_the_defaults(compose: Compose) -> None:
    """Topic, ports, rate, group, advertised host and credentials come from the environment."""
    overridden = compose.config(
        env={
            "ORDERS_TOPIC": "events",
            "ORDERS_GROUP_ID": "warehouse-2",
            "ORDERS_SIM_RATE": "5",
            "ORDERS_METRICS_HOST_PORT": "19108",
            "KAFKA_HOST_PORT": "19092",
            "KAFKA_ADVERTISED_HOST": "kafka.example.internal",
            "GRAFANA_HOST_PORT": "13000",
            "GRAFANA_ADMIN_PASSWORD": "s3cret",
            "PUBLISH_ADDRESS": "0.0.0.0",
            "POSTGRES_PASSWORD": "pg-s3cret",
            "ORDERS_LAKE_BUCKET": "other-bucket",
        }
    )["services"]
    for name in ("topics", "producer_sim", "consumer", *LAKE_MEMBERS):
        assert overridden[name]["environment"]["ORDERS_TOPIC"] == "events", name
    assert overridden["consumer"]["environment"]["ORDERS_GROUP_ID"] == "warehouse-2"
    assert overridden["producer_sim"]["environment"]["ORDERS_SIM_RATE"] == "5"
    assert ("0.0.0.0", 19108, 9108) in ports(overridden["consumer"])
    assert ("0.0.0.0", 19092, 9094) in ports(overridden["kafka"])
    advertised = overridden["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "HOST://kafka.example.internal:19092" in advertised.split(",")
    assert ("0.0.0.0", 13000, 3000) in ports(overridden["grafana"])
    assert overridden["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "s3cret"
    lake = overridden["consumer-lake-2"]["environment"]
    assert "password=pg-s3cret" in lake["ORDERS_CATALOG"].split()
    assert lake["ORDERS_DATA_PATH"].startswith("s3://other-bucket/")
    assert overridden["buckets"]["environment"]["ORDERS_LAKE_BUCKET"] == "other-bucket"
