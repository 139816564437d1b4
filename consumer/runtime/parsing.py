"""Where micro-batches are parsed: in worker processes beside the polling one, or inline.

Parsing is mostly Python (msgspec structs, Decimals, building Polars frames) and, on the
polling thread, it held that thread's GIL most of the time (the profile is in
docs/performance.md). A worker process has a GIL of its own, so batch N+1 is parsed while
batch N is written and batch N+2 is polled.

Only raw values go to a worker and only the three frames come back (Polars pickles them as
Arrow IPC); keys, positions and everything the guarantee depends on stay in the consumer.
A worker holds no connection and no state: if one dies, its batch fails like a failed write
(nothing is committed past it) and the consumer stops with one line.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from consumer.core.transform import Parsed, parse_values
from consumer.errors import TerminalError

_PR_SET_PDEATHSIG = 1
# Batches handed over beyond one per worker. A checkpoint stalls the writer for seconds every
# dozen batches; meanwhile the workers parse ahead, and the writer then catches up. With the
# native tier a batch parses in a fraction of its write, and one is enough: more gained no
# measurable rate and took the peak memory over make bench's budget (measured: see
# docs/performance.md).
READ_AHEAD = 1


class Pending:
    """A batch being parsed; ``result`` waits for it (on the writer thread)."""

    def __init__(self, future: Future[tuple[Parsed, float]]) -> None:
        self._future = future

    def result(self) -> tuple[Parsed, float]:
        """The parsed frames and the seconds parsing took."""
        try:
            return self._future.result()
        except BrokenProcessPool as exc:
            raise _worker_died(exc) from None


class Parser(Protocol):
    #: How many batches may be handed over and not yet committed: being written, being
    #: parsed, or parsed and waiting for the writer.
    depth: int

    def submit(self, values: Sequence[bytes | None]) -> Pending: ...

    def close(self) -> None: ...


class InlineParser:
    """Parse on the calling thread (``--parse-workers 0``; the loop's unit tests)."""

    depth = 1

    def submit(self, values: Sequence[bytes | None]) -> Pending:
        future: Future[tuple[Parsed, float]] = Future()
        try:
            future.set_result(_parse(values))
        except Exception as exc:  # delivered where the result is awaited, as from a worker
            future.set_exception(exc)
        return Pending(future)

    def close(self) -> None:
        pass


class ProcessParser:
    """Parse in ``workers`` processes, started (spawned, never forked: librdkafka and DuckDB
    threads do not survive a fork) when the parser is made."""

    def __init__(self, workers: int) -> None:
        self.depth = workers + READ_AHEAD
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(os.getpid(),),
        )
        # Start the workers now: they import what they need while the consumer joins its
        # group, rather than when the first batch arrives.
        for _ in range(workers):
            self.submit([])

    def submit(self, values: Sequence[bytes | None]) -> Pending:
        try:
            return Pending(self._pool.submit(_parse, values))
        except BrokenProcessPool as exc:
            raise _worker_died(exc) from None

    def worker_pids(self) -> list[int]:
        """The workers' process ids (for logs and tests)."""
        return list(self._pool._processes or {})  # the executor keeps no public list

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _worker_died(exc: BrokenProcessPool) -> TerminalError:
    return TerminalError(f"a parsing worker process died: {exc}")


def make_parser(workers: int) -> Parser:
    return ProcessParser(workers) if workers > 0 else InlineParser()


def _start_worker(parent: int) -> None:
    """In a worker: die with the consumer, leave signals to it, and keep the GC out."""
    with contextlib.suppress(OSError, AttributeError):  # Linux: a SIGKILLed consumer
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # kills them
    if os.getppid() != parent:  # the consumer died before prctl took effect
        os._exit(1)
    # Ctrl-C reaches the whole process group, and a supervisor may signal it too: the
    # consumer drains on either, and its workers must keep parsing for that drain.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    gc.collect()
    gc.freeze()
    # A parse allocates tens of thousands of acyclic objects; the cyclic GC rescanning them
    # slowed parsing even frozen and with high thresholds (measured: see docs/performance.md).
    # It runs once per batch instead, when they are garbage already.
    gc.disable()


def _parse(values: Sequence[bytes | None]) -> tuple[Parsed, float]:
    started = time.perf_counter()
    parsed = parse_values(values)
    seconds = time.perf_counter() - started
    if not gc.isenabled():
        gc.collect()
    return parsed, seconds
