"""PgBouncer and HAProxy from the distribution, each a process of its own in a temporary
folder on its own loopback port, started and stopped (by pid) only by the tests."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

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


class HAProxy:
    """HAProxy 2.6 in front of the service replicas: health checks on /readyz, retries of a
    request whose connection failed, and a runtime socket to drain a replica."""

    def __init__(self, folder: Path, backends: dict[str, int]) -> None:
        self.port = free_port()
        self.socket = folder / "admin.sock"
        folder.mkdir(parents=True)
        servers = "".join(
            f"    server {name} 127.0.0.1:{port} check inter 250ms fall 2 rise 1\n"
            for name, port in backends.items()
        )
        (folder / "haproxy.cfg").write_text(
            "global\n"
            f"    stats socket {self.socket} level admin\n"
            "defaults\n"
            "    mode http\n"
            "    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n"
            "    retries 3\n"
            # A failed connection (any request), or a replica gone before it answered (safe
            # requests only, below): another replica.
            "    retry-on conn-failure empty-response response-timeout\n"
            "    option redispatch\n"
            f"frontend api\n    bind 127.0.0.1:{self.port}\n"
            # Only a safe request is sent again once the server may have seen it: a POST
            # retried after its replica died having committed it was a 409 in one run.
            "    acl safe method GET HEAD OPTIONS\n"
            "    http-request disable-l7-retry unless safe\n"
            "    default_backend replicas\n"
            "backend replicas\n"
            "    balance roundrobin\n"
            "    option httpchk GET /readyz\n"
            "    http-check expect status 200\n"
            f"{servers}"
        )
        self.log = folder / "haproxy.log"
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                ["haproxy", "-db", "-f", str(folder / "haproxy.cfg")],
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

    def state(self, server: str) -> str:
        """The server's operational state as HAProxy sees it: UP, DOWN, MAINT..."""
        for row in self.command("show servers state replicas").splitlines()[2:]:
            fields = row.split()
            if len(fields) > 5 and fields[3] == server:
                # srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping.
                return {"0": "DOWN", "1": "STARTING", "2": "UP", "3": "STOPPING"}[fields[5]]
        return "UNKNOWN"

    def wait_until(self, server: str, state: str, seconds: float = 20) -> None:
        """Wait until HAProxy's health checks put the server in this state."""
        deadline = time.monotonic() + seconds
        while self.state(server) != state:
            if time.monotonic() > deadline:
                msg = f"{server} never became {state}: {self.command('show stat')}"
                raise RuntimeError(msg)
            time.sleep(0.05)

    def sessions(self, server: str) -> int:
        """Requests the server has in flight now (HAProxy's current sessions)."""
        for row in self.command("show stat").splitlines():
            fields = row.split(",")
            if len(fields) > 4 and fields[0] == "replicas" and fields[1] == server:
                return int(fields[4] or 0)
        return 0

    def stop(self) -> None:
        """Stop it, by its pid."""
        stop(self.process)
