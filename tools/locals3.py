"""A real local S3-compatible server (SeaweedFS, Apache-2.0), without Docker.

SeaweedFS is built once per machine from its Go module (the Go module proxy; `go install`
refuses the module because of its replace directives): `go mod download` of the pinned
version, a writable copy of the module, `go build ./weed` in it (a few minutes, one binary of
about 230 MB), cached outside git. The server (master, volume server, filer and S3 gateway in
one process) listens on 127.0.0.1 only, on free ports apart from S3's, and keeps its data in a
directory outside git. It serves anonymously, or with one access key when S3_ACCESS_KEY and
S3_SECRET_KEY are set (then anonymous requests are refused).

    python -m tools.locals3 up             # idempotent; builds on first use; waits for S3
    python -m tools.locals3 bucket NAME    # create a bucket (idempotent)
    python -m tools.locals3 down           # stops the server; no weed process is left
    python -m tools.locals3 status
    python -m tools.locals3 build          # only build (CI does it ahead)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tools.localkafka import cache_dir, free_ports, pid_alive, port_in_use

MODULE = "github.com/seaweedfs/seaweedfs"
VERSION = "v0.0.0-20261109003541-7506e5f91cd6"
MIN_GO = (1, 26, 6)  # the module's go.mod
DEFAULT_PORT = 8333
BUILD_TIMEOUT = 3600.0
LISTENERS = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3_grpc")


class LocalS3Error(Exception):
    """A failure to report as one readable line (plus, at most, a log tail)."""

    exit_code = 1


class MissingToolError(LocalS3Error):
    exit_code = 2


def binary_path() -> Path:
    return cache_dir() / "seaweedfs" / VERSION / "weed"


def check_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise MissingToolError(
            f"Go {'.'.join(map(str, MIN_GO))}+ is needed once to build SeaweedFS (the local S3 "
            "server), but no `go` is on PATH"
        )
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    match = re.match(r"go(\d+)\.(\d+)(?:\.(\d+))?", out.stdout.strip())
    if match is None:
        raise MissingToolError(f"cannot read the Go version from {out.stdout.strip()[:80]!r}")
    found = tuple(int(part or 0) for part in match.groups())
    if found < MIN_GO and not os.environ.get("GOTOOLCHAIN"):
        raise MissingToolError(
            f"SeaweedFS {VERSION} needs Go {'.'.join(map(str, MIN_GO))}+, found "
            f"{out.stdout.strip()}; install a newer Go or set GOTOOLCHAIN"
        )
    return go


def build(quiet: bool = False) -> Path:
    """The weed binary: built from the module proxy once per machine (under a lock, so two
    processes never build it at once), then reused."""
    target = binary_path()
    if target.is_file():
        return target
    go = check_go()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():  # built by another process while this one waited
            return target
        if not quiet:
            print(
                f"locals3: building SeaweedFS {VERSION} from the Go module proxy "
                "(once per machine; a few minutes) ...",
                file=sys.stderr,
                flush=True,
            )
        _build(go, target)
    return target


def _build(go: str, target: Path) -> None:
    def run(*args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(
            [go, *args], capture_output=True, text=True, cwd=cwd, check=False,
            timeout=BUILD_TIMEOUT,
        )  # fmt: skip
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise LocalS3Error(f"`go {' '.join(args[:2])}` failed for SeaweedFS:\n{tail}")
        return proc.stdout

    info = json.loads(run("mod", "download", "-json", f"{MODULE}@{VERSION}"))
    with tempfile.TemporaryDirectory(prefix="weed-build-", dir=target.parent) as scratch:
        # The module cache is read-only; the build works in a copy.
        source = Path(scratch) / "src"
        shutil.copytree(info["Dir"], source)
        for path in (source, *source.rglob("*")):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o200)
        built = Path(scratch) / "weed"
        run("build", "-buildvcs=false", "-trimpath", "-o", str(built), "./weed", cwd=source)
        built.replace(target)


@dataclass(frozen=True)
class Credentials:
    """The one access key the server accepts (anonymous requests are then refused)."""

    access_key: str
    secret_key: str = field(repr=False)


@dataclass(frozen=True)
class LocalS3:
    """One server: its S3 port, the ports of its other listeners, and its data directory."""

    port: int
    ports: dict[str, int]
    data_dir: Path
    credentials: Credentials | None = None
    public_bucket: str | None = None  # with credentials: one bucket anonymous requests may use

    @classmethod
    def default(cls) -> LocalS3:
        port = int(os.environ.get("S3_PORT", DEFAULT_PORT))
        key, secret = os.environ.get("S3_ACCESS_KEY"), os.environ.get("S3_SECRET_KEY")
        if bool(key) != bool(secret):
            raise LocalS3Error("set both S3_ACCESS_KEY and S3_SECRET_KEY, or neither")
        credentials = Credentials(key, secret) if key and secret else None
        return cls.at(cache_dir() / f"s3-{port}", port, credentials)

    @classmethod
    def ephemeral(
        cls,
        data_dir: Path,
        credentials: Credentials | None = None,
        public_bucket: str | None = None,
    ) -> LocalS3:
        port = free_ports(1)[0]
        return cls.at(data_dir, port, credentials, public_bucket)

    @classmethod
    def at(
        cls,
        data_dir: Path,
        port: int,
        credentials: Credentials | None,
        public_bucket: str | None = None,
    ) -> LocalS3:
        """The server of ``data_dir``: the ports it used before (a master restarted on other
        ports would wait for its old raft peer), else free ones."""
        try:
            saved = json.loads((data_dir / "ports.json").read_text())
        except (OSError, ValueError):
            saved = {}
        if saved.get("s3") != port or set(saved) != {"s3", *LISTENERS}:
            saved = {"s3": port, **dict(zip(LISTENERS, free_ports(len(LISTENERS)), strict=True))}
        others = {name: int(saved[name]) for name in LISTENERS}
        return cls(port, others, data_dir, credentials, public_bucket)

    @property
    def endpoint(self) -> str:
        """``host:port``, the form of ORDERS_S3_ENDPOINT."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "weed.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "weed.pid"

    def env(self) -> dict[str, str]:
        """The consumer's environment for this server (its secret key included)."""
        env = {
            "ORDERS_S3_ENDPOINT": self.endpoint,
            "ORDERS_S3_USE_SSL": "false",
            "ORDERS_S3_URL_STYLE": "path",
        }
        if self.credentials is not None:
            env["AWS_ACCESS_KEY_ID"] = self.credentials.access_key
            env["AWS_SECRET_ACCESS_KEY"] = self.credentials.secret_key
        return env

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def _write_config(self) -> list[str]:
        """The data directory, the saved ports, and the identities file when keyed."""
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        (self.data_dir / "ports.json").write_text(json.dumps({"s3": self.port, **self.ports}))
        config = self.data_dir / "s3.json"
        config.unlink(missing_ok=True)
        if self.credentials is None:
            return []
        identity = {
            "name": "orders",
            "credentials": [
                {
                    "accessKey": self.credentials.access_key,
                    "secretKey": self.credentials.secret_key,
                }
            ],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        identities = [identity]
        if self.public_bucket:
            scoped = [f"{action}:{self.public_bucket}" for action in ("Read", "List", "Write")]
            identities.append({"name": "anonymous", "actions": scoped})
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"identities": identities}, out)
        return [f"-s3.config={config}"]

    def command(self, weed: Path) -> list[str]:
        p, d = self.ports, self.data_dir
        return [
            str(weed), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={d / 'data'}",
            # Without these two, a second bucket got "No writable volumes and no free volumes
            # left" (each bucket is a collection with volumes of its own, 30 GB by default).
            "-volume.max=200", "-master.volumeSizeLimitMB=64",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            "-volume.preStopSeconds=0",  # stop at once (the default waits 10 s)
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={d / 'filer.sock'}",
            "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={p['s3_grpc']}",
            f"-s3.localSocket={d / 's3.sock'}",
            # Off: the Iceberg and Lance catalogs (fixed ports 8181, 9101), telemetry to the
            # project's server, and creating a missing bucket on the first write (real S3
            # answers NoSuchBucket, and so must the tests' server).
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
            "-s3.autoCreateBucket=false",
            *self._write_config(),
        ]  # fmt: skip

    def start(self, timeout: float = 120.0) -> None:
        """Start the server unless it already runs; return once S3 answers and a bucket can be
        created (the filer is up)."""
        weed = build()
        if self.pid() is not None:
            self.wait_ready(timeout)
            return
        for name, port in {"s3": self.port, **self.ports}.items():
            if port_in_use(port):
                hint = "set S3_PORT to use another one" if name == "s3" else "run again"
                raise LocalS3Error(
                    f"port {port} ({name}) is already taken by another process; {hint}"
                )
        command = self.command(weed)
        with open(self.log_file, "ab") as out:
            proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self.data_dir,
            )  # fmt: skip
        self.pid_file.write_text(str(proc.pid))
        try:
            self.wait_ready(timeout, proc=proc)
        except LocalS3Error:
            self.stop()
            raise

    def wait_ready(self, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if proc is not None and proc.poll() is not None:
                raise LocalS3Error(
                    f"weed exited with code {proc.returncode} during start-up; "
                    f"last lines of {self.log_file}:\n{self.log_tail()}"
                )
            if self._answers() and self._shell("s3.bucket.list", timeout=20)[0] == 0:
                return
            if time.monotonic() > deadline:
                raise LocalS3Error(
                    f"SeaweedFS on {self.url} was not ready within {timeout:.0f}s; "
                    f"last lines of {self.log_file}:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _shell(self, command: str, timeout: float = 60) -> tuple[int, str]:
        """One `weed shell` command against this server (it speaks to the master and filer
        directly, so it needs no S3 credentials)."""
        try:
            proc = subprocess.run(
                # host:port.grpcPort: without it the shell dials gRPC on port + 10000
                [str(binary_path()), "shell", f"-master={self._address('master')}",
                 f"-filer={self._address('filer')}", "-connectTimeout=10s"],
                input=command + "\n", capture_output=True, text=True, timeout=timeout,
                check=False, cwd=self.data_dir,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return 1, f"`weed shell` did not finish {command!r} within {timeout:.0f}s"
        return proc.returncode, (proc.stdout + proc.stderr).strip()

    def _address(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}.{self.ports[name + '_grpc']}"

    def create_bucket(self, name: str) -> None:
        """Create a bucket unless it exists (through the filer, as an administrator would)."""
        code, out = self._shell("s3.bucket.list")
        if code == 0 and re.search(rf"^\s*{re.escape(name)}\b", out, re.MULTILINE):
            return
        code, out = self._shell(f"s3.bucket.create -name {name}")
        if code != 0 and "already exists" not in out:
            raise LocalS3Error(f"cannot create the bucket {name!r}: {out[-400:]}")

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no server log yet)"
        return "\n".join(text.splitlines()[-lines:]) or "(no server log yet)"

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the server (SIGTERM, then SIGKILL). Return whether one was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        self._signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            self.kill()
        self.pid_file.unlink(missing_ok=True)
        self._remove_sockets()
        return True

    def kill(self) -> None:
        """SIGKILL the server, keeping its data directory (for outage tests)."""
        pid = self.pid()
        if pid is not None:
            self._signal_group(pid, signal.SIGKILL)
            while pid_alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        """weed leaves a Unix socket per gRPC port in /tmp (a path it does not let us choose)."""
        for name in ("master", "volume", "filer", "s3"):
            Path(f"/tmp/seaweedfs-{name}-grpc-{self.ports[name + '_grpc']}.sock").unlink(
                missing_ok=True
            )

    def restart(self, timeout: float = 120.0) -> None:
        self.stop()
        self.start(timeout)

    def remove(self) -> None:
        """Kill the server (its data are going anyway) and delete its data directory."""
        self.kill()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    @staticmethod
    def _signal_group(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.locals3",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "status", "build", "bucket"])
    parser.add_argument("name", nargs="?", help="the bucket (for `bucket`)")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the server (default 120)"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            print(f"locals3: SeaweedFS is at {build()}")
            return 0
        server = LocalS3.default()
        if args.command == "up":
            already = server.pid() is not None
            server.start(args.timeout)
            state = "already running" if already else "started"
            print(f"locals3: server {state}: S3 at {server.url}, {_who(server)} "
                  f"(data: {server.data_dir})")  # fmt: skip
        elif args.command == "bucket":
            if not args.name:
                raise MissingToolError("name the bucket: python -m tools.locals3 bucket NAME")
            if server.pid() is None:
                raise LocalS3Error("no server running: start it first (make s3-up)")
            server.create_bucket(args.name)
            print(f"locals3: bucket {args.name} is there (s3://{args.name}/)")
        elif args.command == "down":
            was_running = server.stop()
            print("locals3: server stopped" if was_running else "locals3: no server running")
        else:
            pid = server.pid()
            print(f"locals3: running: S3 at {server.url}, pid {pid}" if pid
                  else "locals3: not running")  # fmt: skip
            return 0 if pid else 1
    except LocalS3Error as exc:
        print(f"locals3: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def _who(server: LocalS3) -> str:
    if server.credentials is None:
        return "anonymous access"
    return f"access key {server.credentials.access_key} only"


if __name__ == "__main__":
    sys.exit(main())
