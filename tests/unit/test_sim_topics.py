"""The change topics (issue 25): every version and rate, interleaved with the orders as a CDC
tool would publish them; judged by an independent reading of the bytes (tests.unit.refstream)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import itertools
import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from producer_sim.api import ScriptedFaults
from producer_sim.cli import main
from producer_sim.config import Settings, reference_stream
from producer_sim.events import SimRecord, generate_records
from producer_sim.runner import publish
from tests.unit.refstream import Reading, instant, parse, read
from tests.unit.test_sim_cli import run_sim
from tests.unit.test_sim_state import ListSink

SEED, ORDERS = 17, 8_000
TOPICS: dict[str, Any] = {"users_topic": "u", "products_topic": "p", "fx_topic": "fx"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("ORDERS_SIM_", "ORDERS_")) and name.endswith(("_TOPIC", "_DAYS")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


def as_lines(records: list[SimRecord]) -> list[tuple[str | None, bytes | None, bytes | None]]:
    return [(reference_stream(r.kind), r.key, r.value) for r in records]


@pytest.fixture(scope="module")
def stream() -> tuple[list[SimRecord], Reading]:
    records = list(generate_records(Settings(seed=SEED, orders=ORDERS, **TOPICS)))
    return records, read(as_lines(records))


def test_each_reference_records_fate_is_what_the_bytes_show(stream: Any) -> None:
    """on_time, late, out_of_order, repeat: the kind of every reference record is what an
    independent reading makes of its place in the stream; most are on time, none is missing."""
    records, reading = stream
    kinds = [r.kind for r in records if reference_stream(r.kind) is not None]
    assert [kind.split(":")[1] for kind in kinds] == reading.fates
    counts = Counter(kinds)
    for stream_name in ("users", "products"):
        for fate in ("late", "out_of_order", "repeat"):
            assert counts[f"{stream_name}:{fate}"] > 0, (stream_name, fate)
    assert counts["fx:late"] > 0 and counts["fx:repeat"] > 0
    assert counts["users:on_time"] > 0.85 * sum(counts[k] for k in counts if "users:" in k)
    # Keyed by the natural key: user_id, sku, CURRENCY:YYYY-MM-DD.
    for record in records:
        if (name := reference_stream(record.kind)) is not None:
            assert record.key is not None and record.value is not None
            doc = parse(record.value)
            if name == "fx":
                assert record.key == f"{doc['currency']}:{doc['date']}".encode(), record
            else:
                assert record.key == doc["user_id" if name == "users" else "sku"].encode()


def test_late_keys_first_records_come_after_orders_that_use_them(stream: Any) -> None:
    """No version of a late-arriving user or product is published before the first order that
    uses it (the other late versions: see the fates above)."""
    records, _ = stream
    first_use: dict[str, int] = {}
    first_version: dict[str, int] = {}
    for position, record in enumerate(records):
        if record.value is None or not record.kind.startswith(("late_user", "late_sku")):
            if reference_stream(record.kind) in ("users", "products"):
                doc = parse(record.value or b"")
                first_version.setdefault(doc.get("user_id") or doc["sku"], position)
            continue
        doc = parse(record.value)
        keys = [doc["user_id"]] + [line["sku"] for line in doc["items"]]
        for key in keys:
            if key.startswith(("u-9", "p-9")):
                first_use.setdefault(key, position)
    assert sum(k.startswith("u-") for k in first_use) >= 5
    assert sum(k.startswith("p-") for k in first_use) >= 2
    for key, used in first_use.items():
        assert first_version[key] > used, key


def test_repeats_are_the_same_values_as_the_same_bytes_or_spelled_otherwise(
    stream: Any,
) -> None:
    """A version or rate delivered twice: sometimes the same bytes, sometimes other bytes with
    the same values (key order, blanks, escapes, a number written otherwise)."""
    _, reading = stream
    same = other = numbers = escaped = reordered = 0
    for values in reading.records.values():
        for again in values[1:]:
            if again == values[0]:
                same += 1
                continue
            other += 1
            first, second = parse(values[0]), parse(again)
            assert first == second  # the same values (numbers compared as decimals)
            raw = json.loads(values[0])
            numbers += any(
                isinstance(v, float) and str(v) not in again.decode() for v in raw.values()
            )
            escaped += b"\\u" in again
            reordered += list(json.loads(again)) != list(raw)
    assert min(same, other, numbers, escaped, reordered) > 0, (
        same, other, numbers, escaped, reordered,
    )  # fmt: skip


def test_the_topics_change_nothing_in_the_orders_and_one_seed_gives_one_stream() -> None:
    """Orders are the same records with or without change topics; each topic is the same
    whichever other topics go out; one seed twice is the same stream; another seed publishes
    the same history (the catalog is shared) on another schedule."""
    plain = list(generate_records(Settings(seed=3, orders=2_000)))
    full = list(generate_records(Settings(seed=3, orders=2_000, **TOPICS)))
    assert [r for r in full if reference_stream(r.kind) is None] == plain
    assert full == list(generate_records(Settings(seed=3, orders=2_000, **TOPICS)))
    fx_only = list(generate_records(Settings(seed=3, orders=2_000, fx_topic="fx")))
    assert [r for r in fx_only if r.kind.startswith("fx:")] == [
        r for r in full if r.kind.startswith("fx:")
    ]
    other = list(generate_records(Settings(seed=4, orders=2_000, **TOPICS)))
    one, two = read(as_lines(full)), read(as_lines(other))
    assert one.versions == two.versions and one.rates == two.rates
    assert [r for r in full if reference_stream(r.kind)] != [
        r for r in other if reference_stream(r.kind)
    ]


def run(config: Settings, stop_after: int = 0) -> tuple[list[SimRecord], Any]:
    stop = threading.Event()
    sink = ListSink(stop if stop_after else None, stop_after)
    report = publish(
        config,
        stop=stop,
        faults=ScriptedFaults({}),
        sink_factory=lambda _: sink,
        progress_stream=io.StringIO(),
    )
    return sink.records, report


def test_endless_runs_resume_the_topics_exactly_and_continuations_start_with_a_snapshot(
    tmp_path: Path,
) -> None:
    """An endless run with topics stopped and started again continues the stream exactly,
    reference records included; one that continues after a bounded run first publishes the
    version in effect of every key so far and every rate (a snapshot); the summary counts all."""
    config = Settings(seed=6, orders=0, page_size=50, state_dir=tmp_path, topic="t", **TOPICS)
    first, _ = run(config, stop_after=4_000)
    second, report = run(config, stop_after=3_000)
    assert first + second == list(itertools.islice(generate_records(config), 7_000))
    sent = Counter(r.kind for r in second if reference_stream(r.kind))
    assert report.reference_by_kind == sent and sent["users:on_time"] > 0
    assert "records of user versions to 'u'" in report.summary()

    state = tmp_path / "after-bounded"
    bounded, _ = run(Settings(seed=7, orders=1_500, state_dir=state, topic="t", **TOPICS))
    continued, report = run(
        Settings(seed=7, orders=0, state_dir=state, topic="t", **TOPICS), stop_after=4_000
    )
    snapshot = list(itertools.takewhile(lambda r: r.kind.endswith(":snapshot"), continued))
    reading_before = read(as_lines(bounded))
    keys = {(s, k) for s, k in reading_before.versions}
    assert {(reference_stream(r.kind), (r.key or b"").decode()) for r in snapshot} >= keys
    assert json.loads(continued[len(snapshot)].value or b"{}").get("order_id") in (
        None,
        "o-s7-0001501",
    )
    assert report.reference_by_kind["users:snapshot"] >= len([k for s, k in keys if s == "users"])


def test_generate_tags_reference_records_with_their_topic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`generate --users-topic ...` writes the change topics' records with a "topic" first;
    order lines have none; --days 0 and a change topic named like --topic exit 2."""
    out = tmp_path / "stream.jsonl"
    args = ["generate", "--orders", "300", "--seed", "2", "--output", str(out)]
    done = run_sim(*args, "--users-topic", "cdc.users", "--fx-topic", "rates")
    assert done.returncode == 0, done.stderr
    docs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    topics = Counter(doc.get("topic") for doc in docs)
    assert set(topics) == {None, "cdc.users", "rates"} and topics["cdc.users"] > 50
    for doc in docs:
        if doc.get("topic") == "rates":
            assert list(doc) == ["topic", "kind", "key", "value"]
            assert set(json.loads(doc["value"])) == {"date", "currency", "rate"}
        elif doc.get("topic") is None:
            assert "order_id" in (doc.get("value") or "") or doc["kind"].startswith("malformed")
    for bad, mentions in ((["--days", "0"], "--days"), (["--users-topic", "orders"], "same")):
        with pytest.raises(SystemExit) as caught:
            main(["publish", "--bootstrap-servers", "127.0.0.1:9092", *bad])
        assert caught.value.code == 2
        err = capsys.readouterr().err
        assert mentions in err and len(err.strip().splitlines()) == 1


def test_rates_go_out_day_by_day_just_before_their_day(stream: Any) -> None:
    """Rates are not all published at once: nearly every on-time rate goes out after the orders
    of the day before its own (or of the weekend before a Monday) and before its day's."""
    records, _ = stream
    last_order_day: dt.date | None = None
    just_before = other = 0
    for record in records:
        if record.kind.startswith(("resend", "malformed")) or record.value is None:
            continue
        doc = parse(record.value)
        if record.kind == "fx:on_time" and last_order_day is not None:
            gap = (dt.date.fromisoformat(doc["date"]) - last_order_day).days
            just_before += gap == 1 or (gap in (2, 3) and last_order_day.weekday() >= 5 - gap)
            other += not (gap == 1 or (gap in (2, 3) and last_order_day.weekday() >= 5 - gap))
        elif reference_stream(record.kind) is None and doc.get("created_at") is not None:
            last_order_day = instant(doc["created_at"]).date()
    assert just_before > 50 and other <= 0.05 * just_before, (just_before, other)


def test_an_endless_stream_that_gains_change_topics_continues_with_a_snapshot(
    tmp_path: Path,
) -> None:
    """Topics added to an endless stream make another stream: the run continues after the last
    order sent (none again), and the change topics start with a snapshot of what is due."""
    plain = Settings(seed=8, orders=0, page_size=50, state_dir=tmp_path, topic="t")
    first, _ = run(plain, stop_after=2_000)
    second, _ = run(dataclasses.replace(plain, **TOPICS), stop_after=2_000)
    assert second[0].kind == "users:snapshot"

    def base_numbers(records: list[SimRecord]) -> list[int]:
        return [
            int((r.key or b"").rsplit(b"-", 1)[1])
            for r in records
            if r.key
            and r.key.startswith(b"o-")
            and not r.kind.startswith(("resend", "malformed"))
            and reference_stream(r.kind) is None
        ]

    assert base_numbers(second)[0] == max(base_numbers(first)) + 1
