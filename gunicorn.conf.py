"""Gunicorn settings for production; every value can be overridden from the environment."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
accesslog = "-"
errorlog = "-"
# One JSON object per request; the request id ties it to the app's own log lines.
access_log_format = (
    '{"time": "%(t)s", "request_id": "%({x-request-id}o)s", "remote": "%(h)s", '
    '"api_key": "%({app.api_key}e)s", "method": "%(m)s", "path": "%(U)s", "query": "%(q)s", '
    '"status": %(s)s, '
    '"bytes": %(B)s, "duration_us": %(D)s, "user_agent": "%(a)s"}'
)
