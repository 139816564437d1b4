"""``orders-consumer redrive``: rejected records read again under today's rules and reference
data (issue 26), chunk by chunk, each chunk one warehouse transaction (``warehouse.redrive``).

On a lake it runs beside the members; on a DuckDB file that a consumer holds it runs inside
that consumer, asked through the file's local channel; on a free file it opens the file. A
chunk that conflicts with a consumer's batch is redone; one killed is rolled back, and running
the command again finds its records still rejected: a second run loads nothing new.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from consumer.core import rules
from consumer.core.windows import parse_instant
from consumer.errors import ConfigError, PipelineError
from consumer.runtime.retrying import Retrier
from consumer.serving.metrics import Metrics
from consumer.warehouse.protocol import Warehouse
from consumer.warehouse.redrive import Key, Selection, Tally
from orders_common.logs import get_logger

log = get_logger("consumer.redrive")
DEFAULT_CHUNK = 5_000
RETRY_SECONDS = 300.0


def relax_from_env(environ: dict[str, str] | None = None) -> None:
    """Apply ``ORDERS_TEST_RELAX`` (a test's relaxed rules, consumer.core.rules)."""
    names = (environ if environ is not None else dict(os.environ)).get("ORDERS_TEST_RELAX", "")
    try:
        rules.relax(names.split(","))
    except ValueError as exc:
        raise ConfigError(f"ORDERS_TEST_RELAX: {exc}") from None


def redrive(
    warehouse: Warehouse,
    selection: Selection,
    *,
    chunk: int = DEFAULT_CHUNK,
    dry_run: bool = False,
    progress: Callable[[Tally], None] = lambda _tally: None,
) -> Tally:
    """Every selected reject read again, ``chunk`` at a time; the tally of what became of them
    (with ``dry_run``, of what would, and nothing written)."""
    retry = Retrier(RETRY_SECONDS, Metrics())
    total, number = Tally(), 0
    while True:
        number += 1

        def one(after: Key | None = total.last, n: int = number) -> Tally:
            return warehouse.redrive_chunk(selection, after, chunk, dry_run=dry_run, number=n)

        done = retry("redrive", one, on_retry=warehouse.reconnect)
        if not done.examined:
            return total
        total.add(done)
        progress(total)
        log.info("redrive_chunk", chunk=number, dry_run=dry_run, **done.summary())


def answer(warehouse: Warehouse, request: dict[str, Any]) -> dict[str, Any]:
    """A redrive asked through the local channel of the consumer that holds the file. (A
    test's relaxed rules, from the consumer's environment, apply to it alone: the consumer's
    batches are parsed in worker processes.)"""
    try:
        relax_from_env()
        selection = Selection(
            topic=str(request["topic"]),
            reasons=tuple(request.get("reasons") or ()),
            since=_instant(request.get("since")),
            until=_instant(request.get("until")),
        )
        tally = redrive(
            warehouse, selection, chunk=int(request.get("chunk") or DEFAULT_CHUNK),
            dry_run=bool(request.get("dry_run")),
        )  # fmt: skip
    except (KeyError, ValueError) as exc:
        return {"ok": False, "error": f"bad redrive request: {exc}", "code": 2}
    except ConfigError as exc:
        return {"ok": False, "error": str(exc), "code": 2}
    except PipelineError as exc:
        return {"ok": False, "error": str(exc), "code": exc.exit_code}
    return {"ok": True, "tally": tally.summary()}


def _instant(text: Any) -> Any:
    return None if text is None else parse_instant(str(text), "redrive bound")
