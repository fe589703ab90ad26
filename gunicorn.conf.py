"""Gunicorn settings for production; every value can be overridden from the environment."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM (docker stop), in-flight requests get this long to finish.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# Room for every URL the API documents (a full cursor and filters of multibyte text).
limit_request_line = 8190
accesslog = "-"
errorlog = "-"
# One JSON object per request, with the request id and the calling key's prefix.
logger_class = "app.accesslog.JsonAccessLogger"
# No control socket: it would live in $HOME, which a container's service user lacks.
control_socket_disable = True
# Heartbeat files in shared memory, not on a container's possibly slow overlay filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
