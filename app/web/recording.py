"""The pipeline's records of each request: its time and count in the metrics, its id echoed."""

import time

from flask import Request, Response
from prometheus_client import Counter, Histogram

from app.context import current_g, current_request
from app.telemetry.metrics import IN_FLIGHT, LATENCY, REQUESTS
from app.telemetry.request_ids import REQUEST_ID_HEADER, current_request_id

# Every label value comes from a fixed set, whatever a client sends: a request matching no
# route is one value, not one per path a scanner tries, and a method outside RFC 9110's
# (and PATCH) is OTHER. 10,000 invented methods once grew /metrics from 13.6 KB to 15.9 MB
# and a scrape from 11 ms to 3.6 s, until a restart.
UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
OTHER_METHOD = "OTHER"
# Each label set's children, looked up once: labels() takes a lock and checks and joins its
# values at every call (two calls a request). Bounded as the label values are.
_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def start_timing() -> None:
    """Count the request in flight and note when it started."""
    current_g().metrics_started = time.perf_counter()
    IN_FLIGHT.inc()


def record_answer(response: Response) -> Response:
    """Count and time the answered request by route template, method and status."""
    started: float | None = current_g().pop("metrics_started", None)
    if started is not None:
        IN_FLIGHT.dec()
        req: Request = current_request()  # once
        rule = req.url_rule
        method = req.method
        labels = (
            rule.rule if rule is not None else UNMATCHED,
            method if method in METHODS else OTHER_METHOD,
            response.status_code,
        )
        children = _children.get(labels)
        if children is None:
            children = _children[labels] = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
        children[0].inc()
        children[1].observe(time.perf_counter() - started)
    return response


def record_unanswered(_error: BaseException | None) -> None:
    """Take a request that raised past the error handlers (no response) out of flight."""
    if current_g().pop("metrics_started", None) is not None:
        IN_FLIGHT.dec()


def echo_request_id(response: Response) -> Response:
    """Echo the client's sane X-Request-ID, or the one assigned, on every response."""
    response.headers.add(REQUEST_ID_HEADER, current_request_id())  # only ours writes it
    return response
