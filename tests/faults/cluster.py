"""A private PostgreSQL cluster for fault tests: its own folder, its own port.

Fault tests stop, freeze and restart a server; they must never touch the shared one at
127.0.0.1:5432 that the rest of the suite (and other work on this machine) uses. This one
is made with initdb into a temporary folder, run by pg_ctl as the ``postgres`` user when
the tests run as root (PostgreSQL refuses to run as root), and removed afterwards.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from tests.helpers import ROOT

BIN = Path(sys.executable).parent


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found is not None:
        return found
    for version in ("17", "16", "15"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin/{name}")
        if candidate.exists():
            return str(candidate)
    msg = f"{name} not found: install PostgreSQL's server package"
    raise FileNotFoundError(msg)


class PrivateCluster:
    """initdb/pg_ctl in a folder of its own; stop, start, freeze and thaw only it."""

    def __init__(self, port: int) -> None:
        # Not under pytest's own temporary folder: that one is root's alone (0700).
        self.folder = Path(tempfile.mkdtemp(prefix="pg-fault-"))
        self.data = self.folder / "data"
        self.port = port
        self.log = self.folder / "postgres.log"
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its ``app`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/app"

    def _project(self, *command: str) -> str:
        # Our own commands (alembic, flask) on its app database, as an operator runs them.
        done = subprocess.run(
            command, cwd=ROOT, env={**os.environ, "DATABASE_URL": self.url},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def migrate(self) -> None:
        """Bring its app database to our head: the release step, alembic upgrade head."""
        self._project(str(BIN / "alembic"), "upgrade", "head")

    def api_key(self, name: str, scopes: Sequence[str]) -> str:
        """Create an API key with these scopes by the CLI; return its secret."""
        options = [arg for scope in scopes for arg in ("--scope", scope)]
        flask = str(BIN / "flask")
        return self._project(flask, "--app", "app", "api-keys", "create", name, *options).strip()

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        done = subprocess.run(
            [*prefix, *command], check=False, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")

    def create(self) -> None:
        """Make the cluster and its ``app`` database, and start it."""
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            _bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        settings = (
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{self.folder}'\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "max_connections = 200\n"
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(settings)
        self.start()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE app")

    @property
    def admin_dsn(self) -> str:
        """A libpq DSN of its ``postgres`` database."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (fast: active sessions are ended)."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def pids(self) -> list[int]:
        """The postmaster and every process it started."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
        ).stdout.split()
        return [postmaster, *(int(pid) for pid in children)]

    def freeze(self) -> None:
        """Stop every process of the server (SIGSTOP): it holds its sockets, answers nothing."""
        for pid in self.pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server go on (SIGCONT)."""
        for pid in self.pids():
            os.kill(pid, signal.SIGCONT)

    def backends(self, state: str | None = None) -> int:
        """Client backends of the ``app`` database (in one state, if given)."""
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = 'app'"
        if state is not None:
            query += f" AND state = '{state}'"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            row = conn.execute(query).fetchone()
            return int(row[0]) if row else 0

    def destroy(self) -> None:
        """Stop the server (immediately) and remove its folder."""
        with contextlib.suppress(OSError, ValueError):
            self.thaw()
        deadline = time.monotonic() + 30
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            try:
                self.stop("immediate")
            except RuntimeError:
                time.sleep(0.5)
        shutil.rmtree(self.folder, ignore_errors=True)


class StreamingReplica(PrivateCluster):
    """A hot standby of a private cluster, made by pg_basebackup, on a port of its own."""

    def __init__(self, primary: PrivateCluster, port: int) -> None:
        super().__init__(port)
        self.primary = primary

    def create(self, apply_delay: str = "0") -> None:
        """Copy the primary (it streams WAL from then on) and start; replay lags apply_delay."""
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            _bin("pg_basebackup"), "-D", str(self.data), "-h", "127.0.0.1",
            "-p", str(self.primary.port), "-U", "postgres", "-X", "stream", "-R", "--no-sync",
            # An immediate checkpoint: the default spreads it and held the copy 90 s.
            "--checkpoint=fast",
        )  # fmt: skip
        # The copied postgresql.conf names the primary's port and folder; later lines win.
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.folder}'\n"
                f"recovery_min_apply_delay = '{apply_delay}'\n"
                "hot_standby = on\n"
            )
        self.start()
