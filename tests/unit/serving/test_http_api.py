"""The consumer's HTTP server (interface §7) against a real DuckDB file, without a broker: hostile
parameters get a clean 4xx with a one-line JSON error, and the reports API answers exactly what
``query NAME --format json`` prints for the same file."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from consumer.serving.http import serve
from consumer.serving.metrics import Metrics
from tests.harness import ROOT
from tests.unit.serving.smallwarehouse import build

REPORT_NAMES = ("top-users", "top-products", "top-countries", "sales-by-channel")
HOSTILE = [
    ("/api/reports/top-users?limit=-1", 400),
    ("/api/reports/top-users?limit=1000000000", 400),
    ("/api/reports/top-users?limit=10001", 400),
    ("/api/reports/top-users?limit=abc", 400),
    ("/api/reports/top-users?limit=", 400),
    ("/api/reports/top-users?limit=1e3", 400),
    ("/api/reports/top-users?limit=%C2%B2", 400),  # "²": a digit to str.isdigit, not to int()
    ("/api/reports/top-users?limit=%EF%BC%95", 400),  # a fullwidth "5"
    ("/api/reports/../../etc/passwd", 404),
    ("/api/reports/..%2F..%2Fetc%2Fpasswd", 404),
    ("/api/reports/%2e%2e%2f%2e%2e%2fetc%2fpasswd", 404),
    ("/assets/../../../../etc/passwd", 404),
    ("/assets/..%2Fhttp.py", 404),
    ("/assets/", 404),
    ("/api/reports/", 404),
    ("/api/reports/TOP-USERS", 404),
    ("/api/reports/top-users/extra", 404),
    ("/etc/passwd", 404),
    ("/api/reports/top-users?" + "a" * 3000, 414),
    ("/" + "b" * 5000, 414),
    ("/api/reports/top-users?sql=SELECT+1", 400),
    ("/api/reports/top-users?limit=3&format=csv", 400),
    ("/api/reports/top-users?limit=1&limit=2", 400),
    ("/api/reports/top-users?since=2025-01-01&since=2025-02-01", 400),
    ("/api/reports/top-users?" + "&".join(f"p{i}=1" for i in range(40)), 400),
    ("/api/reports/top-users?since=yesterday", 400),
    ("/api/reports/top-users?until=2025-13-01", 400),
    ("/api/reports/top-users?since=%00", 400),
    ("/api/reports/top-users?since=2025-03-01&until=2025-01-01", 400),
]
VARIANTS = [
    {},
    {"limit": "3", "since": "2025-02-01"},
    {"until": "2025-02-15T12:00:00Z", "limit": "0"},
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("http") / "warehouse.duckdb")


@pytest.fixture(scope="module")
def port(warehouse: Path) -> Iterator[int]:
    server = serve(
        Metrics(), 0, "127.0.0.1", lambda: duckdb.connect(str(warehouse), read_only=True)
    )
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def fetch(
    port: int, target: str, method: str = "GET", body: bytes | None = None
) -> tuple[int, str, str]:
    """(status, content type, body) of one request, the target sent as it is."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, target, body=body)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode()
    finally:
        connection.close()


def assert_clean_error(status: int, content_type: str, body: str, expected: int) -> None:
    assert status == expected, body
    assert content_type == "application/json"
    assert body.endswith("\n") and "\n" not in body.rstrip("\n"), "error is not one line"
    error = json.loads(body)
    assert list(error) == ["error"] and isinstance(error["error"], str) and error["error"]
    assert "root:" not in body and "Traceback" not in body


@pytest.mark.parametrize(("target", "status"), HOSTILE, ids=[t[:60] for t, _ in HOSTILE])
def test_a_hostile_request_gets_a_clean_4xx(port: int, target: str, status: int) -> None:
    """Bad limits, path traversal, a huge or repeated query, unknown or bad parameters: 4xx."""
    assert_clean_error(*fetch(port, target), status)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_anything_but_a_read_is_refused(port: int, method: str) -> None:
    """The server only reads: other methods get 405 with a one-line JSON error."""
    for target in ("/api/reports/top-users", "/", "/api/stats"):
        assert_clean_error(*fetch(port, target, method, b'{"sql": "DROP TABLE dim_order"}'), 405)


def test_the_server_still_answers_after_hostile_requests(port: int, warehouse: Path) -> None:
    """A good request after the hostile ones works, and the warehouse is intact."""
    for target, _ in HOSTILE:
        fetch(port, target)
    status, content_type, body = fetch(port, "/api/reports/top-users?limit=2")
    assert (status, content_type) == (200, "application/json")
    assert len(json.loads(body)) == 2
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM dim_order").fetchone() == (60,)


def query_cli(warehouse: Path, name: str, params: dict[str, str]) -> str:
    flags = [arg for key, value in params.items() for arg in (f"--{key}", value)]
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "query", name, "--db", str(warehouse),
         "--format", "json", *flags],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.rstrip("\n")


@pytest.mark.parametrize("name", REPORT_NAMES)
def test_the_api_answers_exactly_what_query_prints(port: int, warehouse: Path, name: str) -> None:
    """GET /api/reports/NAME with limit, since and until is byte for byte query's JSON."""
    for params in VARIANTS:
        target = f"/api/reports/{name}" + ("?" + "&".join(f"{k}={v}" for k, v in params.items()))
        status, content_type, body = fetch(port, target.rstrip("?"))
        assert (status, content_type) == (200, "application/json"), body
        expected = query_cli(warehouse, name, params)
        assert body == expected, params
        if not params:
            assert len(json.loads(expected)) >= 4, "the test warehouse should fill the report"


def test_the_stats_api_is_plain_json(port: int) -> None:
    """GET /api/stats has the totals, rejects by reason, lag and rate the dashboard draws."""
    status, content_type, body = fetch(port, "/api/stats")
    assert (status, content_type) == (200, "application/json")
    stats = json.loads(body)
    assert stats["records"] == {"loaded": 0, "duplicate": 0, "rejected": 0}
    assert {"rejected_by_reason", "lag", "records_per_second", "batches"} <= stats.keys()
