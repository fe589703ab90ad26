"""PgBouncer and HAProxy from the distribution, each a process of its own in a temporary
folder on its own loopback port, started and stopped (by pid) only by the tests."""

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.cluster.drive import RuntimeAPI
from tests.helpers import free_port, stop

WAIT_S = 15


def _wait_for_port(port: int, process: "subprocess.Popen[bytes]", log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            msg = f"{log.name} did not start:\n{log.read_text(errors='replace')[-3000:]}"
            raise RuntimeError(msg)
        time.sleep(0.05)


class PgBouncer:
    """PgBouncer 1.18 in transaction mode in front of one PostgreSQL server's ``app``."""

    def __init__(self, folder: Path, server_port: int, pool_size: int) -> None:
        self.port = free_port()
        folder.mkdir(parents=True)
        (folder / "userlist.txt").write_text('"postgres" ""\n')
        (folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"app = host=127.0.0.1 port={server_port} dbname=app user=postgres\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {folder / 'userlist.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\n"
            "max_client_conn = 1000\nmax_db_connections = 0\n"
            f"logfile = {folder / 'pgbouncer.log'}\npidfile = {folder / 'pgbouncer.pid'}\n"
        )
        self.log = folder / "pgbouncer.log"
        self.log.touch()
        # PgBouncer refuses to run as root: it runs as postgres then, which must read these.
        as_root = os.geteuid() == 0
        if as_root:
            for path in (folder, *folder.iterdir()):
                shutil.chown(path, "postgres", "postgres")
        user = ["-u", "postgres"] if as_root else []
        self.process = subprocess.Popen(
            ["pgbouncer", *user, str(folder / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        _wait_for_port(self.port, self.process, self.log)

    @property
    def url(self) -> str:
        """Its ``app`` database as a DATABASE_URL."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/app"

    def stop(self) -> None:
        """Stop it, by its pid."""
        stop(self.process)


class HAProxy(RuntimeAPI):
    """HAProxy 2.6 with the scaled profile's config (docker/cluster/haproxy.cfg) in front of
    three service replicas, s1 to s3: health checks on /readyz, retries of a request whose
    connection failed, and a runtime socket to drain a replica."""

    CONFIG = Path(__file__).parents[2] / "docker" / "cluster" / "haproxy.cfg"

    def __init__(self, folder: Path, ports: Sequence[int]) -> None:
        self.port = free_port()
        self.socket = folder / "admin.sock"
        folder.mkdir(parents=True)
        env = {
            "HAPROXY_BIND": f"127.0.0.1:{self.port}",
            "HAPROXY_ADMIN_SOCKET": str(self.socket),
            **{f"API_{n}": f"127.0.0.1:{port}" for n, port in enumerate(ports, 1)},
        }
        self.log = folder / "haproxy.log"
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                ["haproxy", "-db", "-f", str(self.CONFIG)],
                env={**os.environ, **env},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        _wait_for_port(self.port, self.process, self.log)

    @property
    def url(self) -> str:
        """Where clients send their requests."""
        return f"http://127.0.0.1:{self.port}"

    def command(self, line: str) -> str:
        """Send one runtime-API command; return its answer."""
        with socket.socket(socket.AF_UNIX) as admin:
            admin.connect(str(self.socket))
            admin.sendall(line.encode() + b"\n")
            answer = b""
            while chunk := admin.recv(65536):
                answer += chunk
        return answer.decode()

    def stop(self) -> None:
        """Stop it, by its pid."""
        stop(self.process)
