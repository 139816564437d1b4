"""A real single-node Apache Kafka (KRaft, broker and controller in one JVM), without Docker.

The jars come from Maven Central through ``tools/kafka/pom.xml`` and are resolved once into
the local Maven repository; the resulting classpath is cached outside git. Broker data and
logs live in a data directory outside git as well.

    python -m tools.localkafka up      # idempotent; waits for a metadata answer
    python -m tools.localkafka down    # stops the broker; no java process is left
    python -m tools.localkafka status
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
MIN_JAVA = 17
DEFAULT_PORT = 9092

BROKER_SETTINGS = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    # A consumer joins at once instead of waiting for others that will never come.
    "group.initial.rebalance.delay.ms": "0",
    "num.partitions": "3",
    "auto.create.topics.enable": "false",
    "log.retention.hours": "-1",
}

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = warn
"""


def new_cluster_id() -> str:
    """A KRaft cluster id. One starting with '-' would be read as an option by the storage
    tool (Kafka's own ``Uuid.randomUuid`` draws again in that case, and so does this)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class LocalKafkaError(Exception):
    """A failure to report as one readable line (plus, at most, a log tail)."""

    exit_code = 1


class MissingToolError(LocalKafkaError):
    exit_code = 2


def cache_dir() -> Path:
    if explicit := os.environ.get("ORDERS_PIPELINE_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "orders-pipeline"


def check_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise MissingToolError(
            f"java {MIN_JAVA}+ is required for the local Kafka broker, but no `java` is on PATH"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match is None:
        raise MissingToolError(f"cannot read the java version from: {out.strip()[:120]!r}")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise MissingToolError(
            f"java {MIN_JAVA}+ is required for the local Kafka broker; found java {major}"
        )
    return java


def classpath() -> str:
    """Resolve the broker jars once (Maven Central) and return the java classpath."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    cp_file = cache_dir() / f"kafka-classpath-{digest}.txt"
    if cp_file.exists():
        cached = cp_file.read_text().strip()
        if cached and all(Path(jar).exists() for jar in cached.split(os.pathsep)):
            return cached
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingToolError(
            "Maven (`mvn`) is required once to fetch the Kafka jars, but it is not on PATH"
        )
    cp_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cp_file.with_suffix(".tmp")
    print(f"localkafka: resolving Kafka jars with Maven ({POM.name}) ...", file=sys.stderr)
    proc = subprocess.run(
        [mvn, "-q", "-B", "-f", str(POM), "dependency:build-classpath", f"-Dmdep.outputFile={tmp}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not tmp.exists():
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise LocalKafkaError(f"Maven could not resolve the Kafka jars:\n{tail}")
    tmp.replace(cp_file)
    return cp_file.read_text().strip()


def free_ports(count: int) -> list[int]:
    """Distinct free ports: all sockets stay bound until every port is chosen."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port() -> int:
    return free_ports(1)[0]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    # A zombie has exited; only its parent has not reaped it yet.
    return not (stat.exists() and stat.read_text().split(") ", 1)[-1].startswith("Z"))


def descendant_pids(pid: int) -> list[int]:
    """``pid`` and every process below it, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


@dataclass(frozen=True)
class LocalKafka:
    """One broker: its ports and its own data directory (server.properties, data, log, pid)."""

    port: int
    controller_port: int
    data_dir: Path

    @classmethod
    def default(cls) -> LocalKafka:
        port = int(os.environ.get("KAFKA_PORT", DEFAULT_PORT))
        controller = int(os.environ.get("KAFKA_CONTROLLER_PORT", port + 1))
        return cls(port, controller, cache_dir() / f"broker-{port}")

    @classmethod
    def ephemeral(cls, data_dir: Path) -> LocalKafka:
        port, controller = free_ports(2)
        return cls(port, controller, data_dir)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        settings = {
            **BROKER_SETTINGS,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "log.dirs": str(self.data_dir / "kraft"),
        }
        props = self.data_dir / "server.properties"
        props.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        (self.data_dir / "log4j2.properties").write_text(LOG4J2.format(log=self.log_file))
        return props

    def start(self, timeout: float = 90.0) -> None:
        """Start the broker unless it already runs; return once it answers a metadata request."""
        if self.pid() is not None:
            self.wait_ready(timeout)
            return
        if port_in_use(self.port):
            raise LocalKafkaError(
                f"port {self.port} is already taken by another process; "
                "set KAFKA_PORT to use another one"
            )
        java = check_java()
        cp = classpath()
        props = self._write_config()
        if not (self.data_dir / "kraft" / "meta.properties").exists():
            cluster_id = new_cluster_id()
            fmt = subprocess.run(
                [
                    java,
                    "-cp",
                    cp,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(props),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if fmt.returncode != 0:
                raise LocalKafkaError(f"formatting the KRaft storage failed: {fmt.stderr.strip()}")
        cmd = [
            java,
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            cp,
            "kafka.Kafka",
            str(props),
        ]
        with open(self.data_dir / "broker.out", "ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.data_dir,
            )
        self.pid_file.write_text(str(proc.pid))
        try:
            self.wait_ready(timeout, proc=proc)
        except LocalKafkaError:
            self.stop()
            raise

    def wait_ready(self, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        deadline = time.monotonic() + timeout
        while True:
            if proc is not None and proc.poll() is not None:
                raise LocalKafkaError(
                    f"the Kafka broker exited with code {proc.returncode} during start-up; "
                    f"last lines of {self.log_file}:\n{self.log_tail()}"
                )
            with contextlib.suppress(Exception):
                if admin.list_topics(timeout=2).brokers:
                    return
            if time.monotonic() > deadline:
                raise LocalKafkaError(
                    f"the Kafka broker on {self.bootstrap} did not answer a metadata request "
                    f"within {timeout:.0f}s; last lines of {self.log_file}:\n{self.log_tail()}"
                )
            time.sleep(0.3)

    def log_tail(self, lines: int = 25) -> str:
        texts = []
        for path in (self.log_file, self.data_dir / "broker.out"):
            if path.exists():
                texts.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(texts[-lines:]) or "(no broker log yet)"

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL). Return whether one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        self._signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            self._signal_group(pid, signal.SIGKILL)
            while pid_alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL the broker, keeping its data directory (for crash tests)."""
        pid = self.pid()
        if pid is not None:
            self._signal_group(pid, signal.SIGKILL)
            while pid_alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.localkafka",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "status", "fetch"])
    parser.add_argument(
        "--timeout",
        type=float,
        default=90.0,
        help="seconds to wait for the broker to answer (default 90)",
    )
    args = parser.parse_args(argv)
    broker = LocalKafka.default()
    try:
        if args.command == "fetch":
            check_java()
            classpath()
            print("localkafka: Kafka jars are in the local Maven repository")
        elif args.command == "up":
            already = broker.pid() is not None
            broker.start(args.timeout)
            state = "already running" if already else "started"
            print(f"localkafka: broker {state} on {broker.bootstrap} (data: {broker.data_dir})")
        elif args.command == "down":
            was_running = broker.stop()
            print("localkafka: broker stopped" if was_running else "localkafka: no broker running")
        else:
            pid = broker.pid()
            print(
                f"localkafka: running on {broker.bootstrap}, pid {pid}"
                if pid
                else "localkafka: not running"
            )
            return 0 if pid else 1
    except LocalKafkaError as exc:
        print(f"localkafka: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
