"""Streams for the crash scenarios: the seeded hostile mix, padded copies of it that outgrow
the consumer's read-ahead, re-sends to other partitions, and a background publisher."""

from __future__ import annotations

import hashlib
import json
import threading
import time

from confluent_kafka import Producer

from producer_sim.config import MessRates
from producer_sim.config import Settings as SimSettings
from producer_sim.events import generate_records
from tests.corpus import Record, malformed


def hostile_stream(orders: int, seed: int) -> list[Record]:
    """The simulator's messy mix with more re-sends, plus every hand-written malformed case."""
    rates = MessRates(resend_identical=0.08, resend_conflicting=0.04, malformed=0.02)
    settings = SimSettings(seed=seed, orders=orders, rates=rates)
    records: list[Record] = [(r.key, r.value) for r in generate_records(settings)]
    return records + malformed()


class Trickle(threading.Thread):
    """Publish records at a steady pace in the background, in order, keyed like publish()."""

    def __init__(self, bootstrap: str, topic: str, records: list[Record], seconds: float) -> None:
        super().__init__(name="trickle", daemon=True)
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
        )
        self._topic, self._records, self._seconds = topic, records, seconds
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            started = time.monotonic()
            pace = self._seconds / max(len(self._records), 1)
            for n, (key, value) in enumerate(self._records):
                delay = started + n * pace - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if key is None:
                    self._producer.produce(self._topic, value=value, partition=0)
                else:
                    self._producer.produce(self._topic, value=value, key=key)
                self._producer.poll(0)
            assert self._producer.flush(60) == 0
        except BaseException as exc:  # reported by the test thread via join_checked()
            self.error = exc

    def join_checked(self) -> None:
        self.join(timeout=300)
        if self.error is not None:
            raise self.error


def _order_id(value: bytes | None) -> str | None:
    try:
        document = json.loads(value or b"")
    except ValueError:
        return None
    order_id = document.get("order_id") if isinstance(document, dict) else None
    return order_id if isinstance(order_id, str) else None


def padded(records: list[Record], size: int) -> list[Record]:
    """The records, each JSON object with an ``order_id`` given an unknown extra field of
    ``size`` characters derived from that id (ignored by the contract, §1). The rest of the
    bytes is kept as written, so identical re-sends stay identical and conflicting ones
    conflicting; anything else is left alone."""
    out: list[Record] = []
    for key, value in records:
        order_id = _order_id(value)
        brace = value.find(b"{") if value is not None else -1
        if value is None or order_id is None or value[:brace].strip():
            out.append((key, value))
            continue
        seed = hashlib.sha256(order_id.encode()).hexdigest()
        pad = (seed * (size // len(seed) + 1))[:size].encode()
        out.append((key, value[:brace] + b'{"padding": "' + pad + b'", ' + value[brace + 1 :]))
    return out
