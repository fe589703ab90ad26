"""The worker's own metrics registry: it is one process, never the server's multiprocess
metrics. Each duty (app/worker/sealing.py, app/worker/webhooks.py) adds its own series."""

from prometheus_client import CollectorRegistry

REGISTRY = CollectorRegistry()
