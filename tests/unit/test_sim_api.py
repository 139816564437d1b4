"""The flaky paginated API and its retries, and a whole run against an in-memory sink."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
from structlog.testing import capture_logs

from producer_sim.api import (
    ApiExhaustedError,
    ApiServerError,
    OrdersApi,
    ScriptedFaults,
    fetch_pages,
)
from producer_sim.config import Settings
from producer_sim.events import SimRecord, generate_records
from producer_sim.runner import publish

PAGE = 100


class MemorySink:
    """Keeps what it is sent; can fail deliveries or raise the stop flag after some records."""

    topic_key = "memory"

    def __init__(self, stop_after: int | None = None, stop: threading.Event | None = None) -> None:
        self.records: list[SimRecord] = []
        self.closed = False
        self.failed = 0
        self.first_error: str | None = None
        self._stop_after = stop_after
        self._stop = stop

    def send(self, record: SimRecord) -> None:
        assert not self.closed
        self.records.append(record)
        if self._stop is not None and len(self.records) == self._stop_after:
            self._stop.set()

    def poll(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> int:
        self.closed = True
        return self.failed


def settings(**changes: Any) -> Settings:
    return Settings(
        **{"seed": 31, "orders": 1_000, "page_size": PAGE, "retry_base_delay": 0, **changes}
    )


def retries(logs: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(e["page"], e["attempt"]) for e in logs if e["event"] == "api_retry"]


@pytest.mark.parametrize("read_ahead", [0, 3])
def test_transient_failures_are_retried_and_logged(read_ahead: int) -> None:
    """Pages that fail 2 and 3 times still arrive whole and in order; each retry is logged."""
    stream = list(generate_records(settings()))
    api = OrdersApi(stream, PAGE, ScriptedFaults({1: 2, 4: 3}), read_ahead=read_ahead)
    with capture_logs() as logs:
        pages = list(fetch_pages(api, attempts=4, base_delay=0, max_delay=0))
    api.close()
    assert [r for page in pages for r in page.records] == stream
    assert [p.number for p in pages] == list(range(len(pages)))
    assert pages[-1].last and not any(p.last for p in pages[:-1])
    assert retries(logs) == [(1, 1), (1, 2), (4, 1), (4, 2), (4, 3)]
    assert all(e["log_level"] == "warning" and "503" in e["error"] for e in logs)
    assert not any(t.name == "orders-sim-read-ahead" for t in threading.enumerate())


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    """Announced waits are base·2^(n-1) plus jitter below base, and never exceed the maximum."""
    api = OrdersApi(generate_records(settings()), PAGE, ScriptedFaults({0: 5}))
    with capture_logs() as logs:
        next(fetch_pages(api, attempts=6, base_delay=0.001, max_delay=0.005))
    waits = [e["next_wait_seconds"] for e in logs]
    assert len(waits) == 5
    for attempt, wait in enumerate(waits[:3], start=1):
        assert 0.001 * 2 ** (attempt - 1) <= wait <= 0.001 * 2 ** (attempt - 1) + 0.001
    assert waits[3:] == [0.005, 0.005]


@pytest.mark.parametrize("read_ahead", [0, 3])
def test_exhausted_retries_stop_at_the_failing_page(read_ahead: int) -> None:
    """After 4 failed attempts at page 2 the error names it; pages 0 and 1 came through whole."""
    stream = list(generate_records(settings()))
    api = OrdersApi(stream, PAGE, ScriptedFaults({2: 4}), read_ahead=read_ahead)
    got: list[SimRecord] = []
    with pytest.raises(ApiExhaustedError) as caught:
        for page in fetch_pages(api, attempts=4, base_delay=0, max_delay=0):
            got.extend(page.records)
    api.close()
    assert caught.value.page == 2 and caught.value.attempts == 4
    assert isinstance(caught.value.last_error, ApiServerError)
    assert got == stream[: 2 * PAGE]


def test_run_with_exhausted_api_flushes_earlier_pages_then_fails() -> None:
    """The run publishes exactly pages 0-2, closes (flushes) the sink, and reports exit code 1."""
    sink = MemorySink()
    report = publish(
        settings(),
        faults=ScriptedFaults({3: 99}),
        sink_factory=lambda _: sink,
        progress_stream=io.StringIO(),
    )
    assert sink.closed
    assert sink.records == list(generate_records(settings()))[: 3 * PAGE]
    assert report.exit_code == 1 and report.pages == 3 and report.records == 3 * PAGE
    failure = report.failure()
    assert failure is not None and "page 3" in failure and "\n" not in failure


def test_run_without_failures_publishes_everything_and_counts_kinds() -> None:
    """A clean run sends the whole stream once and its report counts records by kind."""
    sink = MemorySink()
    report = publish(
        settings(),
        faults=ScriptedFaults({}),
        sink_factory=lambda _: sink,
        progress_stream=io.StringIO(),
    )
    stream = list(generate_records(settings()))
    assert sink.records == stream and sink.closed
    assert report.exit_code == 0 and report.failure() is None
    assert report.records == len(stream) and report.orders == 1_000
    assert report.by_kind["resend_identical"] == sum(r.kind == "resend_identical" for r in stream)


def test_delivery_errors_make_the_run_fail() -> None:
    """Records the broker never acknowledged turn a finished run into exit code 1."""
    sink = MemorySink()
    sink.failed, sink.first_error = 2, "Local: Message timed out"
    report = publish(
        settings(),
        faults=ScriptedFaults({}),
        sink_factory=lambda _: sink,
        progress_stream=io.StringIO(),
    )
    failure = report.failure()
    assert report.exit_code == 1 and failure is not None and "Message timed out" in failure


def test_endless_run_stops_on_the_flag_and_sent_a_prefix_of_the_stream() -> None:
    """With --orders 0 the run goes on until the stop flag, then ends cleanly (exit code 0)."""
    stop = threading.Event()
    sink = MemorySink(stop_after=1_234, stop=stop)
    report = publish(
        settings(orders=0),
        stop=stop,
        faults=ScriptedFaults({}),
        sink_factory=lambda _: sink,
        progress_stream=io.StringIO(),
    )
    endless = generate_records(settings(orders=0))
    assert sink.records == [next(endless) for _ in range(1_234)]
    assert report.stopped and report.exit_code == 0 and sink.closed


def test_progress_bar_is_drawn_when_asked() -> None:
    """With --progress always the bar reaches 100% and ends its line."""
    out = io.StringIO()
    publish(
        settings(progress="always"),
        faults=ScriptedFaults({}),
        sink_factory=lambda _: MemorySink(),
        progress_stream=out,
    )
    text = out.getvalue()
    assert "100.0%" in text and "1,000/1,000 orders" in text and text.endswith("\n")
