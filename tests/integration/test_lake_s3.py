"""A DuckLake warehouse with its Parquet files on a real S3-compatible server (SeaweedFS, or the
server of ORDERS_TEST_S3), with credentials: every wrong S3 setting is one line and exit 2 that
never shows the secret key; without keys, a bucket open to anonymous requests works. (Every
command working on a lake on S3, under kills and a restart of the server:
tests/reliability/test_lake_s3.py.)"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from consumer.warehouse.extensions import attach_lake, load_extensions
from consumer.warehouse.objectstore import S3Settings
from tests.conftest import S3Server
from tests.lakeharness import Lake, cli, placed, produce, query_lake
from tests.oracle import compute_expected, read_topic, report
from tests.reliability.streams import hostile_stream
from tools.localkafka import free_port

pytestmark = pytest.mark.integration


def s3_files(data_path: str) -> list[str]:
    """Every object under the data path, listed on the store itself (not from the catalog)."""
    con = duckdb.connect()
    try:
        load_extensions(con, remote=True)
        con.execute(S3Settings.from_env().secret_sql())
        return [row[0] for row in con.execute("FROM glob(?)", [f"{data_path}/**"]).fetchall()]
    finally:
        con.close()


def run_until_idle(bootstrap: str, topic: str, lake: Lake, *extra: str) -> tuple[int, str, str]:
    proc = cli(
        "run", "--bootstrap-servers", bootstrap, "--topic", topic, "--group-id",
        f"g-{uuid.uuid4().hex[:8]}", *lake.flags(), "--until-idle", "1", "--log-format", "json",
        *extra, timeout=300,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def create_lake(lake: Lake) -> None:
    """Create the lake's catalog with its data path, as a first member would (touching no
    file on the store, so even in a bucket that does not exist)."""
    con = duckdb.connect()
    try:
        attach_lake(con, lake.catalog, str(lake.data_path))
    finally:
        con.close()


Breaker = Callable[[S3Server, str], tuple[dict[str, str], str, str]]


def missing_bucket(_server: S3Server, path: str) -> tuple[dict[str, str], str, str]:
    return {}, f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/wh", "bucket does not exist"


def wrong_secret(_server: S3Server, path: str) -> tuple[dict[str, str], str, str]:
    return {"AWS_SECRET_ACCESS_KEY": "not-the-secret-" + uuid.uuid4().hex}, path, "credentials"


def wrong_endpoint(_server: S3Server, path: str) -> tuple[dict[str, str], str, str]:
    return {"ORDERS_S3_ENDPOINT": f"127.0.0.1:{free_port()}"}, path, "nothing answers"


def tls_not_served(server: S3Server, path: str) -> tuple[dict[str, str], str, str]:
    if server.env.get("ORDERS_S3_USE_SSL") == "true":
        pytest.skip("ORDERS_TEST_S3 serves https: no plain-HTTP endpoint to expect TLS of")
    return {"ORDERS_S3_USE_SSL": "true"}, path, "TLS"


@pytest.mark.parametrize("breaker", [missing_bucket, wrong_secret, wrong_endpoint, tls_not_served])
def test_a_wrong_s3_setting_is_one_line_and_exit_2_on_every_command_without_the_secret(
    breaker: Breaker,
    kafka_bootstrap: str,
    topic: str,
    lake_catalog: str,
    s3_data_path: str,
    *,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`run` and `query` (and with a wrong secret also `sql`, `audit`, `report` and `maintain`)
    with one S3 setting wrong: each exits 2 with one line on stderr that says what to check,
    and neither the configured secret key nor the server's appears on stderr or stdout (the log
    records of `run` included)."""
    changes, data_path, hint = breaker(s3_server, s3_data_path)
    lake = Lake(lake_catalog, data_path)
    create_lake(lake)  # the readers' case: a lake that exists, read with the wrong setting
    for name, value in changes.items():
        monkeypatch.setenv(name, value)
    secrets = {s3_server.env.get("AWS_SECRET_ACCESS_KEY"), os.environ["AWS_SECRET_ACCESS_KEY"]}
    code, out, err = run_until_idle(kafka_bootstrap, topic, lake)
    outputs = [("run", code, out, err)]
    catalog = ("--catalog", lake.catalog)
    commands = [
        ("query", "top-users", *catalog),
        ("sql", "SELECT count(*) FROM dim_order", *catalog),
        ("audit", "--bootstrap-servers", kafka_bootstrap, "--topic", topic, *catalog),
        ("report", "--html", str(tmp_path / "r.html"), *catalog),
        ("maintain", *catalog, "--log-format", "json"),
    ]
    # Every command meets the same check (lakeconn.connect); one case tries them all.
    for name, *args in commands if breaker is wrong_secret else commands[:1]:
        proc = cli(name, *args)
        outputs.append((name, proc.returncode, proc.stdout, proc.stderr))
    for name, code, out, err in outputs:
        lines = err.strip().splitlines()
        assert (code, len(lines)) == (2, 1), (name, code, err[-1500:])
        assert hint in lines[0], (name, lines[0])
        for secret in secrets - {None}:
            assert secret not in out + err, name


def test_a_lake_in_a_bucket_open_to_anonymous_requests_needs_no_keys(
    kafka_bootstrap: str,
    topic: str,
    lake_catalog: str,
    s3_data_path: str,
    *,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With only the endpoint set (no keys), requests go unsigned to it: a run writes its
    Parquet files into a bucket that allows anonymous access, and `query` reads them back."""
    if s3_server.public_bucket is None:
        pytest.skip("needs the native server, which has a bucket open to anonymous requests")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    lake = Lake(lake_catalog, s3_data_path.replace(s3_server.bucket, s3_server.public_bucket, 1))
    produce(kafka_bootstrap, topic, placed(hostile_stream(100, seed=9), 3))
    code, _, err = run_until_idle(kafka_bootstrap, topic, lake, "--batch-max-records", "40")
    assert code == 0, err[-2000:]
    assert [f for f in s3_files(str(lake.data_path)) if f.endswith(".parquet")]
    expected = compute_expected(read_topic(kafka_bootstrap, topic))
    assert query_lake(lake, "top-users") == report(expected, "top-users")
