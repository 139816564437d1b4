"""Reproducibility: the seed alone decides the stream, byte for byte; seeds never share an id."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from producer_sim.api import OrdersApi, RandomFaults, fetch_pages
from producer_sim.config import Settings
from producer_sim.events import generate_records
from producer_sim.reference import generate_reference, write_reference

DIGEST_SETTINGS = {
    "seed": 9, "orders": 2000, "users_topic": "u", "products_topic": "p", "fx_topic": "fx",
}  # fmt: skip
DIGEST_SCRIPT = f"""
import hashlib, sys
from producer_sim.config import Settings
from producer_sim.events import generate_records
digest = hashlib.sha256()
for record in generate_records(Settings(**{DIGEST_SETTINGS!r})):
    digest.update(repr(record).encode())
print(digest.hexdigest())
"""


def csv_bytes(orders: int, directory: Path) -> tuple[bytes, bytes]:
    write_reference(generate_reference(orders), directory)
    return (directory / "users.csv").read_bytes(), (directory / "products.csv").read_bytes()


def test_same_seed_gives_identical_records_and_csv_bytes(tmp_path: Path) -> None:
    """Two generations with one seed agree on every key, value, kind and CSV byte."""
    settings = Settings(seed=123, orders=3_000)
    first = list(generate_records(settings))
    second = list(generate_records(settings))
    assert first == second
    assert csv_bytes(3_000, tmp_path / "a") == csv_bytes(3_000, tmp_path / "b")


def ids_in(records: list[bytes | None]) -> set[str]:
    """Every order_id a value carries (malformed ones included), read from the JSON."""
    found = set()
    for value in records:
        try:
            doc = json.loads(value or b"")
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("order_id"), str) and doc["order_id"]:
            found.add(doc["order_id"])
    return found


def test_another_seed_gives_another_stream_with_no_shared_id(tmp_path: Path) -> None:
    """Seeds 1, 2 and -1: other values, no order_id or key in common; the CSVs are shared."""
    streams = [list(generate_records(Settings(seed=seed, orders=2_000))) for seed in (1, 2, -1)]
    values = [[r.value for r in stream] for stream in streams]
    keys = [{r.key for r in stream if r.key is not None} for stream in streams]
    ids = [ids_in(v) for v in values]
    assert values[0] != values[1] and all(len(found) > 2_000 for found in ids)
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert not ids[a] & ids[b] and not keys[a] & keys[b]
    # One catalog for every seed: the CSVs of two seeds are the same bytes.
    assert csv_bytes(2_000, tmp_path / "one") == csv_bytes(2_000, tmp_path / "two")


def test_a_short_run_is_the_start_of_a_longer_one_at_the_same_pace(tmp_path: Path) -> None:
    """1,000 orders over 5.6 days are the start of 5,000 over 28 (one gap between orders), an
    endless run is the start of a run at its pace (2.5 s an order); CSVs of one --days are
    prefixes of a longer run's."""
    short = list(generate_records(Settings(seed=8, orders=1_000, days=5.6)))
    long = list(generate_records(Settings(seed=8, orders=5_000, days=28)))
    assert not Counter(short) - Counter(long)  # every short record is in the long run
    base = [r for r in long if not r.kind.startswith(("resend", "malformed"))]
    assert [r for r in short if r in base] == base[:1_000]
    paced = list(generate_records(Settings(seed=8, orders=3_456, days=0.1)))
    endless = list(itertools.islice(generate_records(Settings(seed=8, orders=0)), len(paced)))
    assert paced[: len(paced) - 200] == endless[: len(paced) - 200]
    other_pace = list(generate_records(Settings(seed=8, orders=1_000, days=28)))
    assert other_pace[0] != short[0]  # another pace places order 1 at another instant
    small, large = csv_bytes(1_000, tmp_path / "small"), csv_bytes(5_000, tmp_path / "large")
    for few, many in zip(small, large, strict=True):
        assert many.startswith(few) and len(many) > len(few)


def test_stream_does_not_depend_on_the_interpreter_hash_seed() -> None:
    """Fresh interpreters with different PYTHONHASHSEED values produce the same stream, change
    topics included."""
    digests = set()
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", DIGEST_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        digests.add(out.stdout.strip())
    in_process = hashlib.sha256()
    for record in generate_records(Settings(**DIGEST_SETTINGS)):  # type: ignore[arg-type]
        in_process.update(repr(record).encode())
    assert digests == {in_process.hexdigest()}


def test_api_failures_do_not_change_the_content() -> None:
    """Pages read through a flaky API with retries hold exactly the failure-free stream."""
    settings = Settings(seed=5, orders=4_000)
    api = OrdersApi(generate_records(settings), 250, RandomFaults(0.4, seed=5))
    pages = fetch_pages(api, attempts=30, base_delay=0, max_delay=0, stop=threading.Event())
    fetched = [record for page in pages for record in page.records]
    assert fetched == list(generate_records(settings))
