"""``orders-consumer redrive`` on a real DuckDB file (issue 26): after a rule is relaxed (the
test hook ORDERS_TEST_RELAX), exactly the rejects that pass now are loaded at their own
offsets, or dropped as identical re-sends; a dry run writes nothing; a SIGKILL in the middle
loses and doubles nothing (``audit``); a second run loads nothing; and a redrive sent to a
running consumer through its local channel does the same beside its batches."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.harness import (
    ROOT,
    assert_audit_complete,
    consumer_env,
    publish,
    run_consumer,
)
from tests.lakeharness import Lake, Members, accounted, audit_lake, wait_until

pytestmark = pytest.mark.integration
RELAX = {"ORDERS_TEST_RELAX": "date_only_created_at"}


def order(order_id: str, created_at: str, price: str = "10.00") -> bytes:
    return (
        f'{{"order_id": "{order_id}", "user_id": "u-1", "currency": "USD", '
        f'"created_at": "{created_at}", "items": [{{"sku": "p-1", "quantity": 1, '
        f'"price": {price}}}]}}'
    ).encode()


# Offsets on partition 0, in order. Under today's rules a date alone is no timestamp: 1, 2, 3
# and 5 are rejected (invalid_created_at), 4 is loaded, 6 is not JSON.
STREAM = [
    order("o-ok", "2025-08-01T10:00:00Z"),  # 0: loaded
    order("o-date", "2025-08-02"),  # 1: passes once relaxed: loaded at offset 1
    order("o-twice", "2025-08-03"),  # 2: passes: loaded
    order("o-twice", "2025-08-03"),  # 3: the same again: an identical re-send of offset 2
    order("o-other", "2025-08-04T00:00:00Z"),  # 4: loaded now
    order("o-other", "2025-08-04"),  # 5: passes, but o-other is loaded with other content
    b"{not json",  # 6: stays invalid_json
]


def redrive(db: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "consumer", "redrive", "--db", str(db), "--topic", TOPIC[0],
         "--format", "json", "--log-format", "json", *extra],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
        env={**consumer_env(), **(env if env is not None else RELAX)},
    )  # fmt: skip
    return proc


TOPIC: list[str] = []


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def state(db: Path) -> list[list[tuple[Any, ...]]]:
    return [
        rows(db, "SELECT order_id, kafka_offset FROM dim_order ORDER BY 2"),
        rows(db, 'SELECT "offset", reason FROM rejected_events ORDER BY 1'),
        rows(db, 'SELECT "offset", order_id FROM dropped_duplicates ORDER BY 1'),
    ]


def test_redrive_loads_what_passes_now_once_even_when_killed(
    kafka_bootstrap: str, topic_factory: Any, group_id: str, tmp_path: Path
) -> None:
    topic = topic_factory(partitions=1)
    TOPIC[:] = [topic]
    db = tmp_path / "w.duckdb"
    publish(kafka_bootstrap, topic, [(None, value) for value in STREAM])
    done = run_consumer(kafka_bootstrap, topic, group_id, db)
    assert done.returncode == 0, done.stderr
    before = state(db)
    assert before[0] == [("o-ok", 0), ("o-other", 4)]
    assert [o for o, _ in before[1]] == [1, 2, 3, 5, 6]

    dry = redrive(db, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) == {
        "dry_run": True, "examined": 5, "loaded": 2, "duplicate": 1, "still_rejected": 2,
        "still_rejected_by_reason": {"conflicting_duplicate": 1, "invalid_json": 1},
    }  # fmt: skip
    assert state(db) == before  # a dry run writes nothing

    # One reject a transaction; the process kills itself inside the second one's writes.
    killed = redrive(db, "--chunk", "1", env={**RELAX, "ORDERS_FAULTS": "kill_mid_write@2"})
    assert killed.returncode == -9, killed.stderr
    assert_audit_complete(kafka_bootstrap, topic, db)  # nothing lost, nothing doubled

    again = redrive(db, "--chunk", "2")
    assert again.returncode == 0, again.stderr
    after = state(db)
    assert after[0] == [("o-ok", 0), ("o-date", 1), ("o-twice", 2), ("o-other", 4)]
    assert after[1] == [(5, "conflicting_duplicate"), (6, "invalid_json")]
    assert after[2] == [(3, "o-twice")]
    assert rows(db, 'SELECT "offset", reason, outcome FROM redriven_events ORDER BY 1') == [
        (1, "invalid_created_at", "loaded"),
        (2, "invalid_created_at", "loaded"),
        (3, "invalid_created_at", "duplicate"),
    ]
    assert_audit_complete(kafka_bootstrap, topic, db)
    audited = subprocess.run(
        [sys.executable, "-m", "consumer", "audit", "--bootstrap-servers", kafka_bootstrap,
         "--topic", topic, "--db", str(db), "--format", "json"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=consumer_env(), check=True,
    )  # fmt: skip
    assert json.loads(audited.stdout)[0]["redriven"] == 3

    third = redrive(db)
    assert json.loads(third.stdout)["loaded"] == 0 and state(db) == after
    # Back to today's rules (unrelaxed): nothing passes, and each reject states today's reason.
    unrelaxed = redrive(db, env={})
    assert json.loads(unrelaxed.stdout)["loaded"] == 0
    assert state(db) == [after[0], [(5, "invalid_created_at"), (6, "invalid_json")], after[2]]


def test_a_redrive_of_a_file_a_consumer_holds_runs_in_that_consumer(
    kafka_bootstrap: str, topic_factory: Any, group_id: str, tmp_path: Path
) -> None:
    """The consumer holds the file and goes on loading; the redrive goes through its local
    channel and loads o-late at its own offset; the same order_id arriving on the topic after
    that (other content) is then a conflicting re-send: the order is loaded once.

    The consumer runs with the relaxed rule in its environment: it applies to redrives only
    (batches are parsed in worker processes, by today's rules)."""
    topic = topic_factory(partitions=1)
    TOPIC[:] = [topic]
    db = tmp_path / "held.duckdb"
    publish(kafka_bootstrap, topic, [(None, order("o-late", "2025-08-02"))])
    log = tmp_path / "consumer.log"
    consumer = subprocess.Popen(
        [sys.executable, "-m", "consumer", "run", "--bootstrap-servers", kafka_bootstrap,
         "--topic", topic, "--group-id", group_id, "--db", str(db), "--log-format", "json"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
        env={**consumer_env(), **RELAX},
    )  # fmt: skip
    try:
        wait_for_rows(db, "SELECT count(*) FROM rejected_events", [(1,)])
        done = redrive(db)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["loaded"] == 1
        publish(kafka_bootstrap, topic, [(None, order("o-late", "2025-08-02T00:00:00Z"))])
        wait_for_rows(db, "SELECT reason FROM rejected_events", [("conflicting_duplicate",)])
    finally:
        consumer.terminate()
        assert consumer.wait(60) == 0, log.read_text()[-3000:]
    assert rows(db, "SELECT order_id, kafka_offset FROM dim_order") == [("o-late", 0)]
    assert rows(db, 'SELECT "offset", reason FROM rejected_events') == [
        (1, "conflicting_duplicate")
    ]
    assert_audit_complete(kafka_bootstrap, topic, db)


def wait_for_rows(db: Path, sql: str, expected: list[tuple[Any, ...]]) -> None:
    """Read the held file through its consumer's channel (``sql``) until ``sql`` gives
    ``expected``."""
    deadline, found = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        probe = subprocess.run(
            [sys.executable, "-m", "consumer", "sql", sql, "--db", str(db), "--format", "json"],
            capture_output=True, text=True, cwd=ROOT, env=consumer_env(), check=False,
        )  # fmt: skip
        if probe.returncode == 0:
            found = [tuple(r.values()) for r in json.loads(probe.stdout)]
            if found == expected:
                return
        time.sleep(0.3)
    pytest.fail(f"{sql}: {found} after 60 s, expected {expected}")


def test_a_redrive_of_a_lake_beside_its_running_members_survives_a_kill(
    kafka_bootstrap: str, topic_factory: Any, group_id: str, lake_catalog: str, tmp_path: Path
) -> None:
    """Two members load the stream into a lake and keep running; a redrive (relaxed rule) is
    killed in its second transaction, then run again, while the members load more records,
    one of them an order the redrive loaded: every offset is accounted for once, the
    redriven ones at their own offsets, and a third run loads nothing."""
    topic = topic_factory(partitions=2)
    lake = Lake(lake_catalog, tmp_path / "lake")
    members = Members(kafka_bootstrap, topic, group_id, lake, tmp_path)
    try:
        for m in (1, 2):
            members.start(m)
        publish(kafka_bootstrap, topic, [(b"k", value) for value in STREAM])  # partition of b"k"
        wait_until("the stream in the lake", lambda: accounted(lake) >= len(STREAM), 120, 0.5)
        cli_args = ("redrive", "--catalog", lake.catalog, "--topic", topic, "--format", "json",
                    "--chunk", "1")  # fmt: skip
        killed = lake_cli(*cli_args, env={**RELAX, "ORDERS_FAULTS": "kill_mid_write@2"})
        assert killed.returncode == -9, killed.stderr
        assert audit_lake(lake, kafka_bootstrap, topic).returncode == 0
        done = lake_cli(*cli_args, env=RELAX)
        assert done.returncode == 0, done.stderr
        # o-date again, valid and written otherwise: a conflicting re-send of what was redriven.
        publish(kafka_bootstrap, topic, [(b"k", order("o-date", "2025-08-02T00:00:00+00:00"))])
        wait_until("the new record in the lake", lambda: accounted(lake) >= len(STREAM) + 1)
        third = lake_cli(*cli_args, env=RELAX)
        assert json.loads(third.stdout)["loaded"] == 0
    finally:
        codes = members.stop_all()
        members.kill_all()
    assert set(codes.values()) == {0}
    loaded = lake.rows("SELECT order_id, kafka_offset FROM dim_order ORDER BY 2")
    assert loaded == [("o-ok", 0), ("o-date", 1), ("o-twice", 2), ("o-other", 4)]
    assert lake.rows('SELECT "offset", reason FROM rejected_events ORDER BY 1') == [
        (5, "conflicting_duplicate"), (6, "invalid_json"), (7, "conflicting_duplicate"),
    ]  # fmt: skip
    assert lake.rows('SELECT "offset" FROM redriven_events ORDER BY 1') == [(1,), (2,), (3,)]
    audited = audit_lake(lake, kafka_bootstrap, topic)
    assert audited.returncode == 0, audited.stdout + audited.stderr


def lake_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer", *args], capture_output=True, text=True, timeout=300,
        cwd=ROOT, check=False, env={**consumer_env(), **env},
    )  # fmt: skip
