"""A producer built on Kafka's own Java client (``tests/java/InteropProducer.java``), compiled
at test time against the jars the local broker already resolved into the Maven cache.

Records go to it as ``KEY<TAB>VALUE`` lines (base64, ``-`` for null) on stdin, so that any
stream of the suite (the simulator's, ``tests/corpus.py``'s) can be fed to it unchanged.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.corpus import Record
from tools.localkafka import classpath

SOURCE = Path(__file__).resolve().parent / "java" / "InteropProducer.java"
MAIN_CLASS = "InteropProducer"
# The client and the codec libraries it loads by reflection (snappy, lz4, zstd), plus its
# logging API. All are dependencies of the broker, so the broker's classpath has them.
CLIENT_JARS = ("kafka-clients-", "snappy-java-", "lz4-java-", "zstd-jni-", "slf4j-api-")
CODECS = ("gzip", "snappy", "lz4", "zstd")


class JavaUnavailableError(Exception):
    """No JDK compiler on PATH (the tests that need one skip)."""


def client_classpath() -> list[str]:
    """The client's jars out of the broker's resolved classpath; fail naming a missing one."""
    jars = classpath().split(os.pathsep)
    chosen = []
    for prefix in CLIENT_JARS:
        found = [jar for jar in jars if Path(jar).name.startswith(prefix)]
        if not found:
            raise FileNotFoundError(f"no {prefix}*.jar in the broker's classpath")
        chosen.append(found[0])
    return chosen


def encode_line(key: bytes | None, value: bytes | None) -> str:
    def field(data: bytes | None) -> str:
        return "-" if data is None else base64.b64encode(data).decode("ascii")

    return f"{field(key)}\t{field(value)}\n"


@dataclass(frozen=True)
class JavaProducer:
    """The compiled producer: ``command`` runs it; ``publish`` feeds it a stream."""

    classes: Path
    jars: tuple[str, ...]

    @classmethod
    def build(cls, workdir: Path) -> JavaProducer:
        javac = shutil.which("javac")
        if javac is None:
            raise JavaUnavailableError("javac (a JDK 17+) is required for the Java producer")
        jars = client_classpath()
        workdir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [javac, "-d", str(workdir), "-cp", os.pathsep.join(jars), str(SOURCE)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"javac failed: {done.stderr.strip()[-2000:]}")
        return cls(workdir, tuple(jars))

    def command(self, bootstrap: str, topic: str, *flags: str) -> list[str]:
        cp = os.pathsep.join([str(self.classes), *self.jars])
        return [
            "java", "-cp", cp, MAIN_CLASS, "--bootstrap", bootstrap, "--topic", topic, *flags
        ]  # fmt: skip

    def start(self, bootstrap: str, topic: str, *flags: str) -> subprocess.Popen[str]:
        """Start it with stdin open: write ``encode_line`` lines, then close stdin."""
        return subprocess.Popen(
            self.command(bootstrap, topic, *flags),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def publish(
        self,
        bootstrap: str,
        topic: str,
        records: Iterable[Record],
        *flags: str,
        timeout: float = 300,
    ) -> dict[str, Any]:
        """Send every record and return the producer's summary (exit 0 asserted)."""
        lines = "".join(encode_line(key, value) for key, value in records)
        done = subprocess.run(
            self.command(bootstrap, topic, *flags),
            input=lines,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return summary
