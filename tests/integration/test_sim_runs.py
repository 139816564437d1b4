"""Runs of the simulator that add up (issue 16): two seeds, an endless run restarted, a replay.

Each publishes into one topic, has the real consumer load it, and compares the warehouse with
the independent oracle; the simulator's own summary must account for every conflict.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.harness import assert_warehouse_matches, run_consumer
from tests.integration.simcli import publish_cli, run_endless_until, sim_env, summary_of
from tests.oracle import CONFLICTING_DUPLICATE, Expected, compute_expected, read_topic

pytestmark = pytest.mark.integration


def consume(bootstrap: str, topic: str, group: str, db: Path, ref: Path | None) -> Expected:
    """Run the consumer to idle; return the oracle's expectation for the whole topic."""
    flags: tuple[str, ...] = ()
    users = products = None
    if ref is not None:
        users, products = ref / "users.csv", ref / "products.csv"
        flags = ("--users-csv", str(users), "--products-csv", str(products))
    proc = run_consumer(bootstrap, topic, group, db, *flags)
    assert proc.returncode == 0, proc.stderr
    return compute_expected(read_topic(bootstrap, topic), users, products)


def meant(summaries: list[dict[str, Any]], kind: str) -> int:
    return sum(s["by_kind"].get(kind, 0) for s in summaries)


def orders_in(db: Path) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {row[0] for row in con.execute("SELECT order_id FROM dim_order").fetchall()}


def test_two_seeds_in_one_topic_load_in_full(
    kafka_bootstrap: str, topic: str, group_id: str, db_path: Path, tmp_path: Path
) -> None:
    """Seeds 1 and 2 (3,000 orders each, one reference dir): 6,000 orders load; the only
    conflicts are the conflicting re-sends the simulator reports; the CSVs stay the same."""
    ref = tmp_path / "ref"
    args = ("--orders", "3000", "--reference-dir", str(ref), "--state-dir", str(tmp_path / "s"))
    one = publish_cli(kafka_bootstrap, topic, tmp_path, "--seed", "1", *args)
    csv_after_one = [(ref / n).read_bytes() for n in ("users.csv", "products.csv")]
    two = publish_cli(kafka_bootstrap, topic, tmp_path, "--seed", "2", *args)
    assert [(ref / n).read_bytes() for n in ("users.csv", "products.csv")] == csv_after_one
    assert (one["new_orders"], two["new_orders"], two["replayed_orders"]) == (3000, 3000, 0)

    expected = consume(kafka_bootstrap, topic, group_id, db_path, ref)
    assert len(expected.orders) == 6_000
    reasons = Counter(expected.rejected.values())
    assert reasons[CONFLICTING_DUPLICATE] == meant([one, two], "resend_conflicting") > 0
    assert (
        sum(reasons.values()) - reasons[CONFLICTING_DUPLICATE]
        == one["malformed"] + two["malformed"]
    )
    assert len(expected.duplicates) == meant([one, two], "resend_identical")
    assert_warehouse_matches(db_path, expected, topic)
    assert len(orders_in(db_path)) == 6_000


def test_an_endless_simulator_restarted_grows_the_warehouse(
    kafka_bootstrap: str, topic: str, group_id: str, db_path: Path, tmp_path: Path
) -> None:
    """The compose command (environment only, --orders 0) stopped and started again: the second
    run adds new orders, re-sends none, and the warehouse grows with no unmeant conflict."""
    env = sim_env(
        tmp_path / "state-home",
        ORDERS_BOOTSTRAP_SERVERS=kafka_bootstrap,
        ORDERS_TOPIC=topic,
        ORDERS_SIM_SEED="42",
        ORDERS_SIM_ORDERS="0",
        ORDERS_SIM_RATE="600",
        ORDERS_SIM_API_FAILURE_RATE="0",
        ORDERS_SIM_LOG_FORMAT="json",
    )
    first = summary_of(run_endless_until(env, kafka_bootstrap, topic, grow=800))
    after_first = consume(kafka_bootstrap, topic, group_id, db_path, None)
    loaded_first = orders_in(db_path)
    assert len(loaded_first) == first["new_orders"] > 0

    second = summary_of(run_endless_until(env, kafka_bootstrap, topic, grow=800))
    assert second["new_orders"] > 0 and second["replayed_orders"] == 0
    expected = consume(kafka_bootstrap, topic, group_id, db_path, None)
    loaded = orders_in(db_path)
    assert loaded > loaded_first and len(loaded) == first["new_orders"] + second["new_orders"]
    reasons = Counter(expected.rejected.values())
    assert reasons[CONFLICTING_DUPLICATE] == meant([first, second], "resend_conflicting")
    assert len(expected.duplicates) == meant([first, second], "resend_identical")
    assert len(expected.orders) > len(after_first.orders)
    assert_warehouse_matches(db_path, expected, topic)


def test_the_same_seed_twice_gives_identical_resends_only(
    kafka_bootstrap: str, topic: str, group_id: str, db_path: Path, tmp_path: Path
) -> None:
    """Seed 3 twice: the second run's records are the first run's bytes again; the warehouse
    keeps the same orders, and the summary calls every order a re-send."""
    args = ("--seed", "3", "--orders", "2000", "--state-dir", str(tmp_path / "s"))
    first = publish_cli(kafka_bootstrap, topic, tmp_path, *args)
    assert (first["new_orders"], first["replayed_orders"]) == (2000, 0)
    records_one = Counter((r.key, r.value) for r in read_topic(kafka_bootstrap, topic))
    once = consume(kafka_bootstrap, topic, group_id, db_path, None)
    loaded_once = orders_in(db_path)

    second = publish_cli(kafka_bootstrap, topic, tmp_path, *args)
    assert (second["new_orders"], second["replayed_orders"]) == (0, 2000)
    records_all = Counter((r.key, r.value) for r in read_topic(kafka_bootstrap, topic))
    assert records_all - records_one == records_one  # the same records once more, nothing else
    twice = consume(kafka_bootstrap, topic, group_id, db_path, None)
    assert orders_in(db_path) == loaded_once and len(loaded_once) == 2_000
    assert twice.orders == once.orders
    new_rejects = Counter(twice.rejected.values()) - Counter(once.rejected.values())
    assert new_rejects == Counter(once.rejected.values())  # the same malformed and conflicts
    assert_warehouse_matches(db_path, twice, topic)
