"""Fault injection at the dangerous instants of a batch: one hooks object, which does nothing
unless tests install one. ``wiring`` builds it once, from ``ORDERS_FAULTS``.

``ORDERS_FAULTS`` holds comma-separated ``POINT@BATCHES`` entries, e.g.
``kill_after_db_commit@3`` or ``fail_db_write@2+5``. Batches count from 1 in each process.

Points that kill (the process SIGKILLs itself, as a crash would):
- ``kill_mid_write``: inside the warehouse transaction, after the first inserts;
- ``kill_during_dlq``: after producing the batch's dead letters, before their flush;
- ``kill_after_db_commit``: after the warehouse commit, before the Kafka commit.

Points that fail with a transient error, once per listed batch, so that a retry succeeds:
- ``fail_db_write``: inside the transaction, after the first inserts (partial inserts);
- ``fail_db_commit``: right after the warehouse COMMIT succeeded (an ambiguous commit).

A point that holds, as a hung database would:
- ``hold_db_write``: inside the transaction, after the first inserts, until the file named by
  ``ORDERS_FAULTS_RELEASE`` exists (the records meanwhile wait, and grow old).

In-process tests pass their own ``Faults`` subclass, which may also act at every statement
(``statement:<name>``) of a batch's transaction.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from consumer.errors import ConfigError, InjectedFaultError

KILL_POINTS = frozenset({"kill_mid_write", "kill_during_dlq", "kill_after_db_commit"})
FAIL_POINTS = frozenset({"fail_db_write", "fail_db_commit"})
HOLD_POINTS = frozenset({"hold_db_write"})
POINTS = KILL_POINTS | FAIL_POINTS | HOLD_POINTS
HOLD_POLL_SECONDS = 0.05


class Faults:
    """The hooks: ``hit`` is called at every named point, with the batch's number."""

    def __init__(
        self, points: Mapping[str, frozenset[int]] | None = None, release: Path | None = None
    ) -> None:
        self._points = dict(points or {})
        self._fired: set[tuple[str, int]] = set()
        self._release = release

    @classmethod
    def parse(cls, spec: str, release: Path | None = None) -> Faults:
        points: dict[str, frozenset[int]] = {}
        for entry in filter(None, (part.strip() for part in spec.split(","))):
            point, sep, batches = entry.partition("@")
            if point not in POINTS or not sep:
                known = ", ".join(sorted(POINTS))
                raise ValueError(f"{entry!r} is not POINT@BATCH[+BATCH...] with POINT in {known}")
            try:
                numbers = frozenset(int(n) for n in batches.split("+"))
            except ValueError:
                raise ValueError(f"{entry!r}: batches must be whole numbers") from None
            points[point] = points.get(point, frozenset()) | numbers
        if points.keys() & HOLD_POINTS and release is None:
            raise ValueError("a hold point needs ORDERS_FAULTS_RELEASE, the file that ends it")
        return cls(points, release)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Faults:
        release = environ.get("ORDERS_FAULTS_RELEASE")
        try:
            return cls.parse(environ.get("ORDERS_FAULTS", ""), Path(release) if release else None)
        except ValueError as exc:
            raise ConfigError(f"ORDERS_FAULTS: {exc}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Faults) and self._points == other._points

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return bool(self._points)

    def hit(self, point: str, batch_number: int) -> None:
        """Crash or fail here if the plan says so for this batch."""
        if batch_number not in self._points.get(point, ()) or (point, batch_number) in self._fired:
            return
        self._fired.add((point, batch_number))
        if point in KILL_POINTS:
            os.kill(os.getpid(), signal.SIGKILL)
        if point in HOLD_POINTS:
            assert self._release is not None
            while not self._release.exists():
                time.sleep(HOLD_POLL_SECONDS)
            return
        raise InjectedFaultError(f"injected fault {point} at batch {batch_number}")

    def step(self, batch_number: int) -> Callable[[str], None]:
        """The hook a batch's transaction calls after each statement, with its name: the
        ``statement:<name>`` point, and the write faults once the first inserts are in
        (after ``dim_order``), so that a kill or a failure leaves a partial transaction."""

        def step(name: str) -> None:
            self.hit(f"statement:{name}", batch_number)
            if name == "dim_order":
                self.hit("kill_mid_write", batch_number)
                self.hit("fail_db_write", batch_number)
                self.hit("hold_db_write", batch_number)

        return step


NO_FAULTS = Faults()
