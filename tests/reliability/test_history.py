"""Issue 25's acceptance, on both kinds of warehouse: an independent stream (tests/historystream)
gives, after SIGKILLs, the same answer as the independent oracle, in two phases; in the second,
versions and rates that arrive after their orders re-attribute orders already loaded. The
answer: every report of §5 in USD and in EUR, as was and as is, sales-over-time at every grain,
unconverted-sales, and dim_user_history; and audit complete on every topic."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests import historystream
from tests.harness import ROOT, consumer_env, publish, run_consumer
from tests.lakeharness import Lake, Members, wait_until
from tests.oracle import compute_expected, read_topic
from tests.oracle_reports import report, report_variants

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
KINDS = ("users", "products", "fx")


def cli(*args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, "-m", "consumer", *args], capture_output=True, text=True, timeout=180,
        cwd=ROOT, env=consumer_env(), check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout, parse_float=Decimal) if proc.stdout.strip() else None


class Stream:
    """The test's topics: orders and the three change topics, published phase by phase."""

    def __init__(self, bootstrap: str, topic_factory: Callable[..., str]) -> None:
        self.bootstrap = bootstrap
        self.orders = topic_factory(partitions=3, prefix="hist")
        self.reference = {kind: topic_factory(partitions=2, prefix=f"hist-{kind}")
                          for kind in KINDS}  # fmt: skip
        self.published = 0

    def flags(self) -> tuple[str, ...]:
        return ("--users-topic", self.reference["users"], "--products-topic",
                self.reference["products"], "--fx-topic", self.reference["fx"])  # fmt: skip

    def publish(self, phase: historystream.Phase) -> None:
        for topic, records in ((self.orders, phase.orders),
                               (self.reference["users"], phase.users),
                               (self.reference["products"], phase.products),
                               (self.reference["fx"], phase.rates)):  # fmt: skip
            self.published += publish(self.bootstrap, topic, records)

    def expected(self) -> Any:
        read = {kind: read_topic(self.bootstrap, topic) for kind, topic in self.reference.items()}
        return compute_expected(
            read_topic(self.bootstrap, self.orders),
            user_records=read["users"], product_records=read["products"], fx_records=read["fx"],
        )  # fmt: skip


def compare(stream: Stream, where: tuple[str, ...]) -> None:
    """Every report variant and dim_user_history against the oracle; audit on every topic."""
    expected = stream.expected()
    assert not expected.ambiguous_reference
    for name, options in report_variants():
        argv = ["query", name, *where, "--format", "json", "--limit", "10000",
                "--currency", options.get("currency", "USD")]  # fmt: skip
        argv += ["--as-is"] if options.get("as_is") else []
        argv += ["--grain", options["grain"]] if "grain" in options else []
        assert cli(*argv) == report(expected, name, None, **options), (name, options)
    history = cli("sql", "SELECT user_id, valid_from, valid_to, is_current, name, email, "
                  "country, signup_date FROM dim_user_history ORDER BY user_id, valid_from",
                  *where, "--format", "json")  # fmt: skip
    wanted = [
        [v.user_id, v.valid_from.isoformat(),  # -infinity reaches Python as datetime.min
         None if v.valid_to is None else v.valid_to.isoformat(), v.is_current, v.name, v.email,
         v.country, None if v.signup_date is None else str(v.signup_date)]
        for _, v in sorted(expected.user_history.items())
    ]  # fmt: skip
    assert [[r[k] for k in r] for r in history] == wanted
    for topic in (stream.orders, *stream.reference.values()):
        proc = subprocess.run(
            [sys.executable, "-m", "consumer", "audit", "--bootstrap-servers", stream.bootstrap,
             "--topic", topic, *where],
            capture_output=True, text=True, timeout=180, cwd=ROOT, env=consumer_env(),
            check=False,
        )  # fmt: skip
        assert proc.returncode == 0, f"{topic}: {proc.stdout}{proc.stderr}"


def test_a_file_gives_the_oracles_answer_in_two_phases_after_kills(
    kafka_bootstrap: str, topic_factory: Callable[..., str], group_id: str, tmp_path: Path
) -> None:
    stream = Stream(kafka_bootstrap, topic_factory)
    db = tmp_path / "w.duckdb"
    first, second = historystream.build()
    stream.publish(first)
    # Killed inside a batch's transaction, then after a commit before Kafka's: both redone.
    for faults in ("kill_mid_write@1", "kill_after_db_commit@1", ""):
        done = run_consumer(kafka_bootstrap, stream.orders, group_id, db, *stream.flags(),
                            "--batch-max-records", "100", faults=faults)  # fmt: skip
        assert done.returncode == (0 if not faults else -9), done.stderr[-2000:]
    compare(stream, ("--db", str(db)))
    stream.publish(second)
    for faults in ("kill_mid_write@1", ""):
        done = run_consumer(kafka_bootstrap, stream.orders, group_id, db, *stream.flags(),
                            faults=faults)  # fmt: skip
        assert done.returncode == (0 if not faults else -9), done.stderr[-2000:]
    compare(stream, ("--db", str(db)))


def test_three_lake_members_give_the_oracles_answer_in_two_phases_after_kills(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    group_id: str,
    lake_catalog: str,
    tmp_path: Path,
) -> None:
    """The owner of partition 0 writes the reference data; it is killed in each phase, and
    whoever owns partition 0 next carries on from the ledgers."""
    stream = Stream(kafka_bootstrap, topic_factory)
    lake = Lake(lake_catalog, tmp_path / "lake")
    # A short session: a killed member's partitions move on after 6 s, not librdkafka's 45.
    members = Members(kafka_bootstrap, stream.orders, group_id, lake, tmp_path,
                      extra=(*stream.flags(), "--batch-max-records", "100",
                             "--kafka-option", "session.timeout.ms=6000"))  # fmt: skip
    first, second = historystream.build()
    try:
        for m in (1, 2, 3):
            members.start(m)
        for phase in (first, second):
            stream.publish(phase)
            owner = reference_writer(members)
            members.kill(owner)
            members.start(owner)
            wait_until("everything accounted for", lambda: held(lake) >= stream.published,
                       240, 1.0)  # fmt: skip
            compare(stream, ("--catalog", lake.catalog))
        codes = members.stop_all()
    finally:
        members.kill_all()
    assert set(codes.values()) == {0}


def reference_writer(members: Members) -> int:
    """The member that writes the reference data now (its log says so last)."""

    def latest() -> int | None:
        for m in members.procs:
            for line in reversed(members.log(m).read_text().splitlines()):
                if '"reference_writer"' in line:
                    if json.loads(line)["writing"]:
                        return m
                    break
        return None

    wait_until("a reference writer", lambda: latest() is not None, 120, 0.5)
    found = latest()
    assert found is not None
    return found


def held(lake: Lake) -> int:
    """Records of every topic the lake accounts for: each lands in exactly one place."""
    try:
        return int(lake.rows(
            "SELECT (SELECT count(*) FROM dim_order) + (SELECT count(*) FROM dropped_duplicates)"
            " + (SELECT count(*) FROM rejected_events)"
            " + (SELECT count(*) FROM user_versions WHERE topic IS NOT NULL)"
            " + (SELECT count(*) FROM product_versions WHERE topic IS NOT NULL)"
            " + (SELECT count(*) FROM fx_rate_versions WHERE topic IS NOT NULL)"
        )[0][0])  # fmt: skip
    except Exception:
        return 0
