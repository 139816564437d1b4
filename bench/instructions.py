"""``make bench-parse``: CPU instructions per record of the parse, counted by callgrind.

The parse (``consumer.core.transform.parse_values``, what a parsing worker runs) is the larger
half of the pipeline's CPU, and on a shared 2-core machine its time per record swings by a
factor of two or more between sessions, the same code (docs/performance.md). valgrind counts
instructions instead, which repeat between runs: the measure to compare two versions of the
parser with. It reads one batch of the
bench topic (``make bench`` fills it; the start of partition 0), runs the parse under callgrind
once with and once without that batch, and divides the difference by the batch's records.
Polars runs on one thread there, so that its thread pool adds nothing to count.
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from confluent_kafka import TopicPartition

from bench import measure
from bench.__main__ import ROOT, fill
from consumer.core.transform import parse_values
from tools import provenance


def sample(bootstrap: str, topic: str, records: int) -> list[bytes | None]:
    """The first ``records`` values of partition 0 of ``topic``: the same batch on every run (a
    subscription interleaves the partitions as fetches happen to arrive)."""
    consumer = measure.reader(bootstrap, "parse")
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes | None] = []
    try:
        while len(values) < records:
            batch = consumer.consume(min(10_000, records - len(values)), 5.0)
            if not batch:
                raise RuntimeError(f"topic {topic} ended after {len(values):,} records")
            values.extend(m.value() for m in batch if m.error() is None)
    finally:
        consumer.close()
    return values[:records]


def counted(values_file: Path, parses: int, out: Path) -> int:
    """Instructions of one process that loads the batch and parses it ``parses`` times."""
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.instructions",
            "--parse",
            str(values_file),
            str(parses),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "POLARS_MAX_THREADS": "1", "PYTHONPATH": str(ROOT)},
        check=True,
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def parse_in_this_process(values_file: Path, parses: int) -> None:
    values = pickle.loads(values_file.read_bytes())
    parse_values(values[:100])  # the first call's one-time costs count in both runs
    gc.collect()
    gc.disable()  # as in a parsing worker, which collects once per batch
    for _ in range(parses):
        parse_values(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument(
        "--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--orders", type=int, default=1_000_000, help="the bench topic's size")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--records", type=int, default=20_000, help="one default batch")
    parser.add_argument("--parse", nargs=2, metavar=("FILE", "TIMES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parse:
        parse_in_this_process(Path(args.parse[0]), int(args.parse[1]))
        return 0
    if shutil.which("valgrind") is None:
        print("bench-parse: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    topic, _ = fill(args.bootstrap_servers, args.orders, args.seed)
    values = sample(args.bootstrap_servers, topic, args.records)
    with tempfile.TemporaryDirectory() as tmp:
        values_file = Path(tmp) / "values.pickle"
        values_file.write_bytes(pickle.dumps(values))
        print(f"counting instructions of parse_values on {len(values):,} records ...", flush=True)
        base = counted(values_file, 0, Path(tmp) / "base.out")
        full = counted(values_file, 1, Path(tmp) / "full.out")
    per_record = (full - base) / len(values)
    print(
        f"parse_values: {per_record:,.0f} instructions per record "
        f"({len(values):,} records of {topic}; callgrind, POLARS_MAX_THREADS=1)"
    )
    words = ["python", "-m", "bench.instructions", *(sys.argv[1:] if argv is None else argv)]
    print(provenance.caption(provenance.command_line(words)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
