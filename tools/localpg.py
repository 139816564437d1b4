"""A real local PostgreSQL server for a DuckLake catalog, without Docker.

It uses the server binaries of the machine (Debian's `postgresql` package puts them in
/usr/lib/postgresql/VERSION/bin), listens on 127.0.0.1 only, and trusts loopback: user
`postgres`, no password. The cluster lives outside git, in the server user's cache directory.
When run as root, the server runs as the `postgres` OS user, because initdb refuses root.

    python -m tools.localpg up      # idempotent; waits until it accepts connections
    python -m tools.localpg down    # stops the server; no postgres process is left
    python -m tools.localpg status
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.localkafka import free_port, pid_alive, port_in_use

DEFAULT_PORT = 5432
SERVER_USER = "postgres"
TOOLS = ("initdb", "pg_ctl", "pg_isready")
DEBIAN_ROOT = Path("/usr/lib/postgresql")

# Appended to the cluster's postgresql.conf at initdb time. A DuckLake member holds several
# catalog connections, so the stock 100 leaves little room for N members plus readers.
SETTINGS = """
# orders-pipeline (tools/localpg.py)
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
max_connections = 300
logging_collector = off
"""

# Only for throw-away test clusters. A server crash or restart keeps every commit (the WAL is in
# the OS cache); only a machine crash could lose data. DROP DATABASE forces a checkpoint, which
# took seconds here with fsync on (docs/performance.md). Not synchronous_commit = off: a
# restart in immediate mode then lost a commit acknowledged just before (measured,
# tests/integration/test_lake_attach.py).
FAST_SETTINGS = """
fsync = off
full_page_writes = off
"""

HBA = """\
# orders-pipeline (tools/localpg.py): loopback only, no password.
local all all trust
host  all all 127.0.0.1/32 trust
"""


class LocalPostgresError(Exception):
    """A failure to report as one readable line (plus, at most, a log tail)."""

    exit_code = 1


class MissingToolError(LocalPostgresError):
    exit_code = 2


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def find_bin_dir(root: Path | None = None) -> Path:
    """The directory holding initdb, pg_ctl and pg_isready: the newest Debian one, else PATH."""
    root = DEBIAN_ROOT if root is None else root
    candidates = sorted(root.glob("*/bin"), key=_version_key, reverse=True)
    for bin_dir in candidates:
        if all((bin_dir / tool).is_file() for tool in TOOLS):
            return bin_dir
    found = [shutil.which(tool) for tool in TOOLS]
    if all(found):
        return Path(str(found[0])).resolve().parent
    raise MissingToolError(
        "the PostgreSQL server binaries (initdb, pg_ctl) are not in /usr/lib/postgresql/*/bin "
        "or on PATH; install the `postgresql` package (e.g. apt-get install postgresql)"
    )


def server_user() -> str | None:
    """The OS user to run the server as: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise MissingToolError(
            f"as root, the server must run as the `{SERVER_USER}` OS user (initdb refuses root), "
            "but there is none; install the `postgresql` package, which creates it"
        ) from None
    return SERVER_USER


def cache_dir() -> Path:
    """The cache of the user who runs the server (root's home is closed to `postgres`)."""
    if explicit := os.environ.get("ORDERS_PIPELINE_CACHE"):
        return Path(explicit)
    user = server_user()
    if user is not None:
        return Path(pwd.getpwnam(user).pw_dir) / ".cache" / "orders-pipeline"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "orders-pipeline"


@dataclass(frozen=True)
class LocalPostgres:
    """One cluster: its port and its own data directory (PGDATA, with server.log in it)."""

    port: int
    data_dir: Path
    fast: bool = False

    @classmethod
    def default(cls) -> LocalPostgres:
        port = int(os.environ.get("POSTGRES_PORT", DEFAULT_PORT))
        return cls(port, cache_dir() / f"postgres-{port}")

    @classmethod
    def ephemeral(cls) -> LocalPostgres:
        """A test cluster: a free port, a fresh directory under the system temp dir (reachable by
        `postgres`, unlike root's home or pytest's 0700 tmp), no fsync."""
        return cls(free_port(), Path(tempfile.mkdtemp(prefix="orders-pg-")), fast=True)

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def pid(self) -> int | None:
        """The postmaster's pid, from postmaster.pid, if that process is alive."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first.strip())
        except (FileNotFoundError, PermissionError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def _run(self, bin_dir: Path, *args: str, timeout: float = 120.0) -> str:
        proc = subprocess.run(
            [str(bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.data_dir,
            user=server_user(),
            start_new_session=True,
        )
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).strip().splitlines()
            raise LocalPostgresError(f"{args[0]} failed: {' / '.join(out[-3:]) or proc.returncode}")
        return proc.stdout

    def _init(self, bin_dir: Path) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = server_user()
        if user is not None:
            shutil.chown(self.data_dir, user, user)
        if (self.data_dir / "PG_VERSION").exists():
            return
        try:
            self._run(
                bin_dir, "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--no-locale", "--no-instructions",
            )  # fmt: skip
        except LocalPostgresError as exc:
            if user is not None and "ermission denied" in str(exc):
                raise LocalPostgresError(
                    f"the `{user}` OS user cannot reach {self.data_dir}; "
                    "set ORDERS_PIPELINE_CACHE to a directory it can enter"
                ) from None
            raise
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as out:
            out.write(SETTINGS.format(port=self.port, socket_dir=self.data_dir))
            out.write(FAST_SETTINGS if self.fast else "")
        (self.data_dir / "pg_hba.conf").write_text(HBA)

    def start(self, timeout: float = 60.0) -> None:
        """Start the server unless it already runs; return once it accepts connections."""
        bin_dir = find_bin_dir()
        if self.pid() is not None:
            self.wait_ready(timeout)
            return
        if port_in_use(self.port):
            raise LocalPostgresError(
                f"port {self.port} is already taken by another process; "
                "set POSTGRES_PORT to use another one"
            )
        self._init(bin_dir)
        try:
            self._run(
                bin_dir, "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file),
                "-w", "-t", str(int(timeout)), timeout=timeout + 10,
            )  # fmt: skip
        except LocalPostgresError as exc:
            raise LocalPostgresError(
                f"{exc}; last lines of {self.log_file}:\n{self.log_tail()}"
            ) from None
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        bin_dir = find_bin_dir()
        deadline = time.monotonic() + timeout
        args = ("pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres")
        while True:
            try:
                self._run(bin_dir, *args, timeout=10)
                return
            except (LocalPostgresError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise LocalPostgresError(
                        f"PostgreSQL on 127.0.0.1:{self.port} did not accept connections "
                        f"within {timeout:.0f}s; last lines of {self.log_file}:\n{self.log_tail()}"
                    ) from None
            time.sleep(0.2)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no server log yet)"
        return "\n".join(text.splitlines()[-lines:]) or "(no server log yet)"

    def stop(self, timeout: float = 30.0, mode: str = "fast") -> bool:
        """Stop the server (pg_ctl stop -m MODE, then SIGKILL). Return whether one was running."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            self._run(
                find_bin_dir(), "pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode,
                "-w", "-t", str(int(timeout)), timeout=timeout + 10,
            )  # fmt: skip
        except (LocalPostgresError, subprocess.TimeoutExpired):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        return True

    def restart(self, timeout: float = 60.0, mode: str = "fast") -> None:
        """Stop and start again on the same data (for outage tests)."""
        self.stop(timeout, mode)
        self.start(timeout)

    def remove(self) -> None:
        """Stop the server and delete its data directory."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.localpg",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the server (default 60)"
    )
    args = parser.parse_args(argv)
    try:
        server = LocalPostgres.default()
        if args.command == "up":
            already = server.pid() is not None
            server.start(args.timeout)
            state = "already running" if already else "started"
            print(f"localpg: server {state}: {server.conninfo} (data: {server.data_dir})")
        elif args.command == "down":
            was_running = server.stop(args.timeout)
            print("localpg: server stopped" if was_running else "localpg: no server running")
        else:
            pid = server.pid()
            print(
                f"localpg: running: {server.conninfo}, pid {pid}" if pid else "localpg: not running"
            )
            return 0 if pid else 1
    except LocalPostgresError as exc:
        print(f"localpg: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
