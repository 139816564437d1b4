"""The retry policy for transient failures: exponential backoff with jitter, for a while."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from consumer.errors import TransientError
from consumer.serving.metrics import Metrics
from orders_common.logs import get_logger

T = TypeVar("T")
log = get_logger("consumer")


class Retrier:
    """Runs an action, retrying TransientError for up to ``seconds``; anything else, or the
    last TransientError, propagates. Each retry is logged and counted."""

    def __init__(self, seconds: float, metrics: Metrics, *, initial: float = 0.2) -> None:
        self._seconds = seconds
        self._metrics = metrics
        self._initial = initial

    def __call__(
        self,
        operation: str,
        action: Callable[[], T],
        on_retry: Callable[[], None] | None = None,
    ) -> T:
        metrics = self._metrics

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "retrying",
                operation=operation,
                attempt=state.attempt_number,
                error=str(error),
                wait_s=round(state.upcoming_sleep, 2),
            )
            metrics.retries.labels(operation).inc()
            metrics.tick()
            if on_retry is not None:
                on_retry()

        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait_exponential_jitter(multiplier=self._initial, max=10.0),
            stop=stop_after_delay(self._seconds),
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(action)
