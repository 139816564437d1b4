"""The metrics HTTP server on a free loopback port: /metrics in Prometheus text format, and
/healthz and /readyz following the loop's state (interface §7)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumer.serving import http as http_server
from consumer.serving.metrics import Metrics


class Server:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.http = http_server.serve(metrics, 0, "127.0.0.1", None)  # port 0: the kernel picks one
        self.port = self.http.server_address[1]

    def get(self, path: str) -> tuple[int, str, str]:
        con = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            con.request("GET", path)
            response = con.getresponse()
            content_type = response.getheader("Content-Type") or ""
            return response.status, content_type, response.read().decode()
        finally:
            con.close()


@pytest.fixture(scope="module")
def shared() -> Iterator[Server]:
    # One server for the module: each shutdown waits out serve_forever's 0.5 s poll interval.
    running = Server(Metrics())
    yield running
    running.http.shutdown()
    running.http.server_close()


@pytest.fixture
def server(shared: Server) -> Server:
    """The shared server, its health state back to that of a fresh, alive, unassigned loop."""
    shared.metrics.tick()
    shared.metrics.set_ready(False)
    shared.metrics.set_writable(True)
    return shared


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_are_served_in_prometheus_text_format_with_the_contract_names(
    server: Server,
) -> None:
    """GET /metrics parses as Prometheus text and carries the counters a batch moved."""
    server.metrics.observe_batch(
        loaded=5, duplicates=2, rejected_by_reason={"invalid_json": 1}, fact_rows=9, records=8,
        seconds=0.2,
    )  # fmt: skip
    server.metrics.set_lag({0: 4, 1: 0})
    status, content_type, body = server.get("/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    found = samples(body)
    assert found[("pipeline_records_total", (("outcome", "loaded"),))] == 5
    assert found[("pipeline_records_total", (("outcome", "duplicate"),))] == 2
    assert found[("pipeline_records_total", (("outcome", "rejected"),))] == 1
    assert found[("pipeline_fact_rows_total", ())] == 9
    assert found[("pipeline_batches_total", ())] == 1
    assert found[("pipeline_consumer_lag", (("partition", "0"),))] == 4
    assert ("pipeline_batch_duration_seconds_count", ()) in found
    assert ("pipeline_last_commit_timestamp_seconds", ()) in found


def test_a_partition_no_longer_owned_leaves_the_lag_gauge(server: Server) -> None:
    """Lag is reported only for the partitions of the latest set_lag."""
    server.metrics.set_lag({0: 4, 1: 7})
    server.metrics.set_lag({1: 2})
    lags = {k[1]: v for k, v in samples(server.get("/metrics")[2]).items()
            if k[0] == "pipeline_consumer_lag"}  # fmt: skip
    assert lags == {(("partition", "1"),): 2}


def test_readyz_needs_partitions_and_a_writable_database(server: Server) -> None:
    """/readyz is 503 before assignment, 200 once ready, 503 again while writes fail."""
    assert server.get("/readyz")[0] == 503
    server.metrics.set_ready(True)
    assert server.get("/readyz")[0] == 200
    server.metrics.set_writable(False)
    assert server.get("/readyz")[0] == 503
    server.metrics.set_writable(True)
    assert server.get("/readyz")[0] == 200


def test_healthz_is_200_while_the_loop_ticks(server: Server) -> None:
    """/healthz answers 200 for a loop that ticked within the liveness timeout."""
    server.metrics.tick()
    status, _, body = server.get("/healthz")
    assert (status, body) == (200, "ok\n")


def test_a_stalled_loop_fails_both_probes() -> None:
    """With no tick within the liveness timeout, /healthz and /readyz answer 503."""
    running = Server(Metrics(liveness_timeout=0))
    try:
        running.metrics.set_ready(True)
        assert running.get("/healthz")[0] == 503
        assert running.get("/readyz")[0] == 503
    finally:
        running.http.shutdown()
        running.http.server_close()


def test_unknown_paths_are_404_and_queries_are_ignored(server: Server) -> None:
    """Only the three endpoints exist; a query string does not change the route."""
    assert server.get("/nope")[0] == 404
    assert server.get("/healthz?verbose=1")[0] == 200
