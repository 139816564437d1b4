"""The consumer's HTTP server (interface §7) against a real DuckDB file, without a broker: hostile
parameters get a clean 4xx with a one-line JSON error, and the reports API answers exactly what
``query NAME --format json`` prints for the same file."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from consumer.cli import main
from consumer.serving.http import serve
from consumer.serving.metrics import Metrics
from tests.unit.serving.smallwarehouse import RATES, build

REPORT_NAMES = (
    "top-users",
    "top-products",
    "top-countries",
    "sales-by-channel",
    "sales-over-time",
    "unconverted-sales",
)
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
    ("/api/reports/top-users?currency=eur", 400),
    ("/api/reports/top-users?currency=EURO", 400),
    ("/api/reports/top-users?currency=", 400),
    ("/api/reports/top-users?currency=E%00R", 400),
    ("/api/reports/top-users?currency=%E2%82%AC", 400),  # "€"
    ("/api/reports/top-users?currency=%EF%BC%A5UR", 400),  # a fullwidth "E"
    ("/api/reports/top-users?currency=EUR&currency=USD", 400),
    ("/api/reports/top-countries?as_is=yes", 400),
    ("/api/reports/top-countries?as_is=2", 400),
    ("/api/reports/top-countries?as_is=", 400),
    ("/api/reports/sales-over-time?grain=year", 400),
    ("/api/reports/sales-over-time?grain=DAY", 400),
    ("/api/reports/sales-over-time?grain=", 400),
    ("/api/reports/sales-over-time?grain=day%00", 400),
    ("/api/currencies?currency=EUR", 400),
    ("/api/currencies?sql=SELECT+1", 400),
    ("/api/currencies?", 200),
    ("/api/currencies?" + "&".join(f"c{i}=1" for i in range(40)), 400),
    ("/api/currencies/", 404),
    ("/api/currencies/EUR", 404),
    ("/api/currencies/../reports/top-users", 404),
    ("/api/currencies%00", 404),
    ("/api/CURRENCIES", 404),
    ("/api/currencies?" + "c" * 3000, 414),
]
VARIANTS = [
    {},
    {"limit": "3", "since": "2025-02-01"},
    {"until": "2025-02-15T12:00:00Z", "limit": "0"},
    {"currency": "EUR"},
    {"currency": "GBP", "as_is": "1", "grain": "week"},
    {"currency": "JPY", "grain": "month"},  # a currency without rates
    {"as_is": "true", "grain": "hour", "since": "2025-02-01", "until": "2025-02-03"},
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
    """Bad limits, currencies, as_is and grains, path traversal, a huge or repeated query,
    unknown parameters: 4xx (an empty query string is no parameter at all)."""
    if status == 200:
        assert fetch(port, target)[0] == 200
    else:
        assert_clean_error(*fetch(port, target), status)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_anything_but_a_read_is_refused(port: int, method: str) -> None:
    """The server only reads: other methods get 405 with a one-line JSON error."""
    for target in ("/api/reports/top-users", "/", "/api/stats", "/api/currencies"):
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
    """``query NAME --format json`` with the flags that say what the API's ``params`` say."""
    flags = [
        arg
        for key, value in params.items()
        for arg in (["--as-is"] if value in ("1", "true") else [])
        if key == "as_is"
    ]
    flags += [arg for key, value in params.items() if key != "as_is" for arg in (f"--{key}", value)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # in-process: the same command, without a start-up each
        code = main(["query", name, "--db", str(warehouse), "--format", "json", *flags])
    assert code == 0, params
    return out.getvalue().rstrip("\n")


@pytest.mark.parametrize("name", REPORT_NAMES)
def test_the_api_answers_exactly_what_query_prints(port: int, warehouse: Path, name: str) -> None:
    """GET /api/reports/NAME with limit, since, until, currency, as_is and grain is byte for
    byte query's JSON with the same options."""
    for params in VARIANTS:
        target = f"/api/reports/{name}" + ("?" + "&".join(f"{k}={v}" for k, v in params.items()))
        status, content_type, body = fetch(port, target.rstrip("?"))
        assert (status, content_type) == (200, "application/json"), body
        expected = query_cli(warehouse, name, params)
        assert body == expected, params
        if not params:
            least = 1 if name == "unconverted-sales" else 4
            assert len(json.loads(expected)) >= least, "the test warehouse should fill the report"


def test_the_stats_api_is_plain_json(port: int) -> None:
    """GET /api/stats has the totals, rejects by reason, lag and rate the dashboard draws."""
    status, content_type, body = fetch(port, "/api/stats")
    assert (status, content_type) == (200, "application/json")
    stats = json.loads(body)
    assert stats["records"] == {"loaded": 0, "duplicate": 0, "rejected": 0}
    assert {"rejected_by_reason", "lag", "records_per_second", "batches"} <= stats.keys()


def test_currencies_are_usd_and_every_currency_with_a_rate(port: int, tmp_path: Path) -> None:
    """GET /api/currencies: a sorted JSON list of USD and the currencies fx_rates holds, each
    once (GBP has three rates); a warehouse without rates offers USD alone."""
    status, content_type, body = fetch(port, "/api/currencies")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == sorted({"USD", *(currency for _, currency, _ in RATES)})

    bare = build(tmp_path / "bare.duckdb")
    with duckdb.connect(str(bare)) as con:
        con.execute("DELETE FROM fx_rate_versions")
    server = serve(Metrics(), 0, "127.0.0.1", lambda: duckdb.connect(str(bare), read_only=True))
    try:
        assert json.loads(fetch(int(server.server_address[1]), "/api/currencies")[2]) == ["USD"]
    finally:
        server.shutdown()
        server.server_close()


def test_a_consumer_that_serves_no_reports_says_so_for_currencies_too() -> None:
    """Without a warehouse to read, /api/currencies is a 503 with a one-line JSON error."""
    server = serve(Metrics(), 0, "127.0.0.1", None)
    try:
        assert_clean_error(*fetch(int(server.server_address[1]), "/api/currencies"), 503)
    finally:
        server.shutdown()
        server.server_close()
