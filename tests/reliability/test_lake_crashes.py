"""Three consumers of one group on one DuckLake warehouse, under SIGKILLs and a zombie: no
record lost, none doubled, and a member frozen past its session timeout writes nothing late.
Every scenario ends with the lake equal to the oracle, `audit` complete and the dead letters
read back."""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.lakecheck import assert_complete
from tests.lakeharness import (
    Background,
    Lake,
    Members,
    accounted,
    finish,
    killed_at_end,
    placed,
    produce,
    reference_files,
    wait_for,
    wait_until,
    with_misrouted_copies,
)
from tests.reliability.harness import Figures, events
from tests.reliability.streams import hostile_stream

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

PARTITIONS = 6
MEMBERS = 3
SESSION_TIMEOUT_MS = 6000  # the broker's group.min.session.timeout.ms
FLAGS = (
    "--batch-max-records", "200", "--batch-max-seconds", "0.2",
    "--kafka-option", f"session.timeout.ms={SESSION_TIMEOUT_MS}",
)  # fmt: skip
Report = Callable[[Figures], None]
KILLS = 8


@pytest.fixture
def started() -> Iterator[list[Members]]:
    yield from killed_at_end()


# On S3 under make soak only, until its failures there are understood (neither was on the store:
# once a C assertion in confluent_kafka in the resumed zombie, once the survivors stalled).
STORAGES = ["dir", "s3"] if os.environ.get("RELIABILITY_SCALE") == "soak" else ["dir"]


@pytest.fixture(params=STORAGES)
def data_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """The lake's Parquet files in a directory, or on the S3 server (tests/conftest.py)."""
    if request.param == "s3":
        path: str = request.getfixturevalue("s3_data_path")
        return path
    return tmp_path / "lake"


def members_for(bootstrap: str, topic: str, lake: Lake, workdir: Path, *extra: str) -> Members:
    return Members(bootstrap, topic, f"g-{uuid.uuid4().hex[:10]}", lake, workdir, (*FLAGS, *extra))


def test_random_sigkills_of_members_lose_and_double_nothing(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    lake_catalog: str,
    tmp_path: Path,
    *,
    report: Report,
    started: list[Members],
) -> None:
    """Members are SIGKILLed at random moments and restarted while records (misrouted copies
    among them) arrive; the lake ends equal to the oracle and audit finds it complete."""
    topic = topic_factory(PARTITIONS)
    lake = Lake(lake_catalog, tmp_path / "lake")
    users, products, ref_flags = reference_files(tmp_path, 900)
    stream = with_misrouted_copies(
        placed(hostile_stream(900, seed=31), PARTITIONS), PARTITIONS, every=40
    )
    members = members_for(kafka_bootstrap, topic, lake, tmp_path, *ref_flags)
    started.append(members)
    for m in range(MEMBERS):
        members.start(m)
    trickle = Background(lambda: produce(kafka_bootstrap, topic, stream, seconds=30))
    trickle.start()
    wait_until("the members write", lambda: accounted(lake) > 0, timeout=120)
    rng = random.Random(7)
    figures = Figures("lake: 3 members, random SIGKILL")
    for _ in range(KILLS):
        time.sleep(rng.uniform(1.0, 4.0))
        victim = rng.randrange(MEMBERS)
        members.kill(victim)
        figures.kills["random SIGKILL"] += 1
        members.start(victim)
    trickle.join_checked()
    finish(members, lake, len(stream))
    expected = assert_complete(lake, kafka_bootstrap, topic, users, products)
    figures.records = len(expected.loaded) + len(expected.duplicates) + len(expected.rejected)
    figures.rejected_expected = figures.rejected_actual = len(expected.rejected)
    report(figures)
    print("retries:", dict(members.retries()))


def _when(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def _owned_at(log: Path, moment: float) -> set[int]:
    """The partitions a member owned at ``moment``, from its last assignment before it."""
    owned: set[int] = set()
    for event in events(log):
        if _when(event) > moment:
            break
        if event.get("event") == "partitions_assigned":
            owned = set(event["owned"])
        elif event.get("event") in ("partitions_revoked", "partitions_lost"):
            owned -= set(event["partitions"])
    return owned


def test_a_zombie_member_resumed_past_its_session_timeout_commits_nothing_beyond_the_new_owner(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    lake_catalog: str,
    tmp_path: Path,
    *,
    data_path: Path | str,
    report: Report,
    started: list[Members],
) -> None:
    """A member SIGSTOPped past its session timeout loses its partitions to the others; once
    SIGCONTed, no batch it logs as committed goes past where a new owner began reading a
    partition it lost (unless it was given that partition again), and the lake equals the
    oracle. Whether it still had a batch to write when resumed, and so whether it ends fenced
    (exit 1, one line, checked when it happens) or rejoins, is up to timing: this scenario does
    not prove that a stale batch is refused. tests/integration/test_lake_fencing.py does, step
    by step. The lake's data are in a directory or on S3."""
    topic = topic_factory(PARTITIONS)
    lake = Lake(lake_catalog, data_path)
    users, products, ref_flags = reference_files(tmp_path, 900)
    stream = placed(hostile_stream(900, seed=41), PARTITIONS)
    members = members_for(kafka_bootstrap, topic, lake, tmp_path, *ref_flags)
    started.append(members)
    for m in range(MEMBERS):
        members.start(m)
    trickle = Background(lambda: produce(kafka_bootstrap, topic, stream, seconds=30))
    trickle.start()
    zombie = 0
    wait_for(members.log(zombie), "batch_committed", timeout=180)
    members.procs[zombie].send_signal(signal.SIGSTOP)
    frozen_at = time.time()
    owned = _owned_at(members.log(zombie), frozen_at)
    assert owned, "the zombie owned nothing when frozen"

    starts: dict[int, int] = {}  # where each new owner began reading the zombie's partitions

    def taken_over() -> bool:
        for m in range(1, MEMBERS):
            for e in events(members.log(m)):
                if e.get("event") == "partitions_assigned" and _when(e) > frozen_at:
                    for p, offset in e["start_offsets"].items():
                        starts.setdefault(int(p), int(offset))
        return owned <= set(starts)

    wait_until("the others take the zombie's partitions", taken_over, timeout=120)
    time.sleep(2.0)  # the new owners write some batches of them
    members.procs[zombie].send_signal(signal.SIGCONT)
    resumed_at = time.time()
    zombie_proc = members.procs[zombie]
    wait_until(
        "the zombie stops or rejoins",
        lambda: zombie_proc.poll() is not None or _given_after(members.log(zombie), resumed_at),
        timeout=120,
    )
    trickle.join_checked()
    fenced = zombie_proc.poll() is not None
    if fenced:
        assert zombie_proc.returncode == 1, members.stderr(zombie)
        lines = members.stderr(zombie).strip().splitlines()
        assert len(lines) == 1 and "belongs to another member" in lines[0], lines
        del members.procs[zombie]
    late = [
        e
        for e in events(members.log(zombie))
        if e.get("event") == "batch_committed" and _when(e) >= resumed_at
    ]
    given_again = _given_after(members.log(zombie), resumed_at)
    for batch in late:
        for p, next_offset in batch["next_offsets"].items():
            # A batch logged late may have reached the lake before the new owner's claim:
            # then the new owner began past it. Anything beyond is a late write.
            assert int(p) in given_again or int(next_offset) <= starts[int(p)], (
                f"the zombie committed {batch} after losing partition {p} (new owner began "
                f"at {starts.get(int(p))})"
            )
    finish(members, lake, len(stream))
    expected = assert_complete(lake, kafka_bootstrap, topic, users, products)
    where = "" if isinstance(data_path, Path) else " on S3"
    figures = Figures(f"lake{where}: zombie ({'fenced, exit 1' if fenced else 'rejoined'})")
    figures.kills["SIGSTOP past session"] += 1
    figures.records = len(expected.loaded) + len(expected.duplicates) + len(expected.rejected)
    figures.rejected_expected = figures.rejected_actual = len(expected.rejected)
    report(figures)
    print("zombie fenced:", fenced, "late batches:", len(late), "retries:", members.retries())


def _given_after(log: Path, moment: float) -> set[int]:
    """Partitions assigned to the member after ``moment`` (a fresh claim, a new epoch)."""
    return {
        int(p)
        for e in events(log)
        if e.get("event") == "partitions_assigned" and _when(e) > moment
        for p in e["partitions"]
    }
