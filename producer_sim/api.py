"""The orders API of the original batch design: paginated, flaky, read with retries.

The API serves the simulated stream page by page. Whether an attempt fails is decided before the
page is cut from the stream, and by an RNG of its own, so failures and retries never change what
is published: only when.
"""

from __future__ import annotations

import itertools
import queue
import random
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential_jitter,
)

from orders_common.logs import get_logger
from producer_sim.records import SimRecord

T = TypeVar("T")
HTTP_REASONS = MappingProxyType(
    {
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }
)


class TransientApiError(Exception):
    """A failure worth retrying: a 5xx answer or a timeout."""


class ApiServerError(TransientApiError):
    def __init__(self, status: int, page: int) -> None:
        super().__init__(f"HTTP {status} {HTTP_REASONS[status]} on GET /orders?page={page}")
        self.status = status


class ApiTimeoutError(TransientApiError):
    def __init__(self, page: int, seconds: float = 10.0) -> None:
        super().__init__(f"read timed out after {seconds:.0f}s on GET /orders?page={page}")


class ApiExhaustedError(Exception):
    """Every attempt at one page failed; the pages before it were served whole."""

    def __init__(self, page: int, attempts: int, last_error: TransientApiError) -> None:
        super().__init__(
            f"the orders API failed on page {page} after {attempts} attempt(s); "
            f"last error: {last_error}"
        )
        self.page = page
        self.attempts = attempts
        self.last_error = last_error


# (page, attempt) -> the error that attempt runs into, or None for a good answer.
FaultPlan = Callable[[int, int], TransientApiError | None]


class RandomFaults:
    """Each attempt fails with probability ``rate``: mostly 5xx answers, sometimes a timeout."""

    def __init__(self, rate: float, seed: int) -> None:
        self._rate = rate
        self._rng = random.Random(f"orders-sim:{seed}:api-faults")

    def __call__(self, page: int, attempt: int) -> TransientApiError | None:
        if self._rate <= 0 or self._rng.random() >= self._rate:
            return None
        if self._rng.random() < 0.25:
            return ApiTimeoutError(page)
        return ApiServerError(self._rng.choice((500, 502, 503, 503, 504)), page)


class ScriptedFaults:
    """Page ``p`` fails its first ``failures[p]`` attempts with HTTP 503 (for tests and demos)."""

    def __init__(self, failures: Mapping[int, int]) -> None:
        self._failures = dict(failures)

    def __call__(self, page: int, attempt: int) -> TransientApiError | None:
        return ApiServerError(503, page) if attempt <= self._failures.get(page, 0) else None


@dataclass(frozen=True)
class Page:
    number: int
    records: list[SimRecord]
    last: bool


class OrdersApi:
    """``GET /orders?page=N``: pages of ``page_size`` records, read in order, that may fail.

    With ``read_ahead`` the server side cuts up to that many pages on a thread of its own, so
    the stream keeps being generated while the client waits out a backoff.
    """

    def __init__(
        self, records: Iterable[SimRecord], page_size: int, faults: FaultPlan, read_ahead: int = 0
    ) -> None:
        batches = _batches(iter(records), page_size)
        self._batches = run_ahead(batches, read_ahead) if read_ahead else batches
        self._page_size = page_size
        self._faults = faults
        self._next_page = 0
        self._attempt = 0

    def get_page(self, number: int) -> Page:
        if number != self._next_page:
            raise ValueError(f"page {number} requested, but the next page is {self._next_page}")
        self._attempt += 1
        error = self._faults(number, self._attempt)
        if error is not None:
            raise error
        records = next(self._batches, [])
        self._next_page += 1
        self._attempt = 0
        return Page(number, records, last=len(records) < self._page_size)

    def close(self) -> None:
        """Stop the read-ahead thread, if any."""
        self._batches.close()


def _batches(records: Iterator[SimRecord], size: int) -> Generator[list[SimRecord]]:
    while True:
        batch = list(itertools.islice(records, size))
        yield batch
        if len(batch) < size:
            return


class _End:
    """Marks the end of a read-ahead stream."""


def run_ahead(items: Iterator[T], depth: int) -> Generator[T]:
    """``items``, produced on a thread up to ``depth`` ahead; an error there is raised here.

    Close the generator to stop the thread early.
    """
    handoff: queue.Queue[T | _End | BaseException] = queue.Queue(maxsize=depth)
    closed = threading.Event()

    def hand_over(item: T | _End | BaseException) -> bool:
        while not closed.is_set():
            try:
                handoff.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def feed() -> None:
        try:
            for item in items:
                if not hand_over(item):
                    return
        except BaseException as error:  # re-raised on the reading side
            hand_over(error)
            return
        hand_over(_End())

    worker = threading.Thread(target=feed, name="orders-sim-read-ahead", daemon=True)
    worker.start()
    try:
        while not isinstance(item := handoff.get(), _End):
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        closed.set()
        worker.join(timeout=5)


def fetch_pages(
    api: OrdersApi,
    *,
    attempts: int,
    base_delay: float,
    max_delay: float,
    stop: threading.Event | None = None,
) -> Iterator[Page]:
    """Every page in order; each through up to ``attempts`` tries with exponential backoff.

    Raises ApiExhaustedError when a page keeps failing. With ``stop`` set, waits end at once
    and no new attempt starts (the caller then ends the run).
    """
    halt = stop or threading.Event()

    def pause(seconds: float) -> None:
        halt.wait(seconds)

    retrying = Retrying(
        stop=stop_after_attempt(attempts) | stop_when_event_set(halt),
        wait=wait_exponential_jitter(multiplier=base_delay, max=max_delay, jitter=base_delay),
        retry=retry_if_exception_type(TransientApiError),
        before_sleep=_log_retry(attempts),
        sleep=pause,
        reraise=True,
    )
    for number in itertools.count():
        try:
            page = retrying(api.get_page, number)
        except TransientApiError as error:
            if halt.is_set():
                return
            raise ApiExhaustedError(number, attempts, error) from error
        yield page
        if page.last:
            return


def _log_retry(attempts: int) -> Callable[[RetryCallState], None]:
    log = get_logger("producer_sim.api")

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "api_retry",
            page=state.args[0] if state.args else None,
            attempt=state.attempt_number,
            max_attempts=attempts,
            error=str(error),
            error_type=type(error).__name__,
            next_wait_seconds=round(state.upcoming_sleep, 3),
        )

    return before_sleep
