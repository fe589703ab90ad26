"""The production server: granian reads requests, our threads run the Flask app on whole ones.

Run it with ``python -m app.server`` (app/server/__main__.py). Why this shape (each measured
on 2 cores, loopback):

- A thread-per-connection server (gunicorn gthread) reads headers and bodies on its app
  threads: 8 clients sending a header line every 2 s made ``/healthz`` take 22 s, and 8
  uploads stalled mid-body held 8 threads and their transactions with no timeout at all.
- granian (Rust) reads headers off the Python threads, with a timeout; its ASGI interface
  serves ``app.server.bridge.WSGIBridge``, which reads each body whole before the app sees it.
"""

import atexit
import ctypes
import importlib.util
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from app.config import METRICS_DIR_VARIABLE, Settings
from app.server.access import access_log
from app.server.bridge import WSGIBridge
from app.server.turns import TurnRules
from app.server.types import BodyLimit, WSGIApp
from app.telemetry.logs import (
    AccessJsonFormatter,
    AccessTextFormatter,
    configure_logging,
    granian_log_config,
)

log = logging.getLogger(__name__)


# The master's pid, for its workers: a worker whose master is gone must not serve on.
MASTER_PID_VARIABLE = "APP_SERVER_MASTER_PID"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def asgi_app() -> WSGIBridge:
    """Build the app in this worker process (after granian forked it) behind the bridge."""
    _bind_to_master()  # first: importing the app alone takes about a second
    from app import create_app  # noqa: PLC0415 - built per worker, not at import

    settings = Settings()
    try:
        app = create_app(settings, serving=True)
    except Exception:
        # A record (one JSON line in JSON), then a quiet exit: multiprocessing would print
        # the traceback as bare lines, and granian respawns the worker or gives up either way.
        log.critical("this worker could not build the app", exc_info=True)
        raise SystemExit(1) from None
    from app.web.admission import body_limit, turn_rules  # noqa: PLC0415 - with the app

    return bridged(app, settings, body_limit(app), turn_rules(app))


def _bind_to_master() -> None:
    # A forked worker inherits the master's signal handlers, which only set a flag on the
    # master's object: a SIGTERM while this worker was still building the app was swallowed,
    # the worker went on to serve, and outlived the master (an orphan answering on the port
    # an hour later, three times in one afternoon). Until granian installs the worker's own
    # handlers (after this factory returns), a SIGTERM or SIGINT ends it as it would any
    # process.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    master = os.environ.get(MASTER_PID_VARIABLE)
    if master is None or not sys.platform.startswith("linux"):
        return
    # And whatever ends the master (a SIGKILL, a crash), the kernel ends its workers: a
    # worker without its master has nobody to stop it. Workers are forked by the master's
    # main thread, whose end is what the kernel watches.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(master):  # the master was gone before the line above
        os._exit(1)


def bridged(
    app: WSGIApp,
    settings: Settings,
    admit: BodyLimit | None = None,
    turns: TurnRules | None = None,
) -> WSGIBridge:
    """Put a WSGI app behind the bridge, with the JSON access log on stderr."""
    # In the format of every other line: one JSON object a line, or our text line.
    handler = logging.StreamHandler(sys.stderr)
    # In JSON it gains the time, level and logger every other line has.
    json_lines = settings.LOG_FORMAT == "json"
    handler.setFormatter(AccessJsonFormatter() if json_lines else AccessTextFormatter())
    access_log.addHandler(handler)
    access_log.propagate = False
    access_log.setLevel(logging.INFO)
    return WSGIBridge(app, settings, admit, turns)


def _connections_per_process(settings: Settings) -> int:
    # Each connection is a file descriptor: raise the soft limit to the hard one (workers
    # inherit it), and never promise granian more connections than the processes can open.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Room in each process for its database connections, logs and the like.
    room = hard // settings.WEB_CONCURRENCY - 256
    if room < settings.MAX_CONNECTIONS:
        log.warning(
            "MAX_CONNECTIONS=%d a process is more than %d open files allow %d processes: %d each",
            settings.MAX_CONNECTIONS,
            hard,
            settings.WEB_CONCURRENCY,
            max(room, 16),
        )
    return max(16, min(settings.MAX_CONNECTIONS, room))


def _fresh_metrics_folder() -> None:
    # Each worker writes its metrics to files here, which /metrics adds up (app.telemetry.metrics).
    # Set before any worker is forked and before prometheus_client is imported, which reads
    # it once; emptied at each start, as prometheus_client's multiprocess mode requires.
    folder = os.environ.get(METRICS_DIR_VARIABLE)
    if folder is None:
        folder = os.environ[METRICS_DIR_VARIABLE] = tempfile.mkdtemp(prefix="app-metrics-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for old in Path(folder).glob("*.db"):
        old.unlink()


def main(factory: str = "app.server.serve:asgi_app") -> None:
    """Serve with granian: workers, threads, port and timeouts from Settings.

    ``factory`` builds the ASGI app in each worker; bench/ serves other WSGI apps this way.
    """
    from granian import Granian  # noqa: PLC0415 - only the server process needs it
    from granian.constants import HTTPModes, Interfaces, Loops  # noqa: PLC0415
    from granian.http import HTTP1Settings  # noqa: PLC0415

    settings = Settings()
    _fresh_metrics_folder()
    os.environ[MASTER_PID_VARIABLE] = str(os.getpid())
    # The workers fork from here with this root handler; granian's own loggers use it too.
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    # What the operator reads first, once (not once a worker): lazily, as the workers build
    # the app, since it reads the database (app.startup says what it holds).
    from app.startup import report  # noqa: PLC0415

    for line in report(settings):
        log.info("%s", line)
    Granian(
        factory,
        factory=True,
        address=settings.HOST,
        port=settings.PORT,
        interface=Interfaces.ASGI,
        # Named, not "auto" (which takes whatever is installed): uvloop ran the bridge's
        # event loop for ~40-50 us less CPU a request than asyncio's (275 against 316 us on
        # a no-op view, 1,063 against 1,110 on GET /users/{id}; 2 x 4, medians of 4
        # interleaved rounds of 4 s timed with bench/run.py's serve() and wrk()).
        loop=Loops.uvloop if importlib.util.find_spec("uvloop") else Loops.asyncio,
        workers=settings.WEB_CONCURRENCY,
        backlog=1024,
        # HTTP/1 only: with "auto" (sniffing for HTTP/2) no timer runs before a client's
        # first byte, and 3,000 silent connections stayed open for ever.
        http=HTTPModes.http1,
        # A client gets this long (ms) to send its request line and headers.
        http1_settings=HTTP1Settings(header_read_timeout=settings.HEADER_READ_TIMEOUT * 1000),
        backpressure=_connections_per_process(settings),
        respawn_failed_workers=True,
        workers_kill_timeout=settings.GRACEFUL_TIMEOUT,
        log_access=False,  # ours has the request id and the key prefix
        # At the default sizing its warning of more workers than CPUs is dropped: app.startup's
        # first line says why that sizing is meant. A WEB_CONCURRENCY set by hand keeps it.
        log_dictconfig=granian_log_config(
            quiet_workers_warning="WEB_CONCURRENCY" not in settings.model_fields_set
        ),
        working_dir=Path.cwd(),
    ).serve()
