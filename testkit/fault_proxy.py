"""A fault-injecting HTTP proxy on loopback, in front of an AWS emulator (moto): the one the tests
and the fault suite (`make chaos`) put between an exporter and its backend.

Every request is forwarded to `target` (body and end-to-end headers as they came, the client's
Host included, so a request's signature still matches) unless a fault is due. Two ways to ask
for faults, used alone or together:

Random faults, for a share of all requests: `set(mode, ratio, slow_s)`.
- "throttle": AWS throttling answers (JSON protocol: 400 ThrottlingException; REST/S3: 503 SlowDown)
- "error500": 500 InternalFailure
- "slow": wait `slow_s` before forwarding (beyond the client's read timeout)
- "reset": close the connection without an answer (a crashed or restarting server)
`ratio` is the share of requests that get the fault (the rest pass), drawn from an RNG seeded
with `seed`, so a run is repeatable. `reject_path`: requests whose path contains this text are
refused with 400 whatever the mode (a backend that refuses one object, e.g. one trace's
document, while the rest go through).

Counted faults, for chosen operations (the X-Amz-Target's operation, or "BatchPutMetrics"):
- `throttle[op] = n`: the next n requests of `op` get the throttling answer.
- `metric_conflicts = n`: the next n forwarded BatchPutMetrics answers report their first point
  as CONFLICT_ERROR (the request is still forwarded, so the other points are stored).

What came: `requests` and `faults` count requests and injected faults; `seen` lists each
request's operation (its HTTP method where it names none).

The proxy serves from construction until `stop()` (or the end of a `with` block).
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from testkit.loopback import serve_on_loopback, stop

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
# The proxy's own send_response sets Server and Date, and the length may change: copying the
# target's would send them twice.
_NOT_COPIED_BACK = _HOP_BY_HOP | {"content-length", "server", "date"}
METRICS_OPERATION = "BatchPutMetrics"  # sagemaker-metrics (REST-JSON) names it in the path only
FORWARD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class _Decision:
    fault: str  # "pass", "slow", "reset", "throttle", "error500" or "reject"
    slow_s: float = 0.0
    metric_conflict: bool = False


class FaultProxy:
    """Serves on a free loopback port (`url`) from construction; see the module docstring."""

    def __init__(self, target: str, *, seed: int = 7) -> None:
        parts = urlsplit(target)
        self.target_host = parts.hostname or "127.0.0.1"
        self.target_port = parts.port or 80
        # Random faults (see the module docstring).
        self.mode = "pass"
        self.ratio = 1.0
        self.slow_s = 0.0
        self.reject_path: str | None = None
        # Counted faults.
        self.throttle: dict[str, int] = {}
        self.metric_conflicts = 0
        # What came.
        self.requests = 0
        self.faults = 0
        self.seen: list[str] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server, self.url = serve_on_loopback(_handler_for(self))
        self.port = self._server.server_address[1]

    def set(self, mode: str, ratio: float = 1.0, slow_s: float = 0.0) -> None:
        with self._lock:
            self.mode, self.ratio, self.slow_s = mode, ratio, slow_s

    def _decide(self, operation: str, method: str, path: str) -> _Decision:
        with self._lock:
            self.requests += 1
            self.seen.append(operation or method)
            if self.reject_path and self.reject_path in path:
                fault = "reject"
            elif self.throttle.get(operation, 0) > 0:
                self.throttle[operation] -= 1
                fault = "throttle"
            elif self.mode == "pass" or self._rng.random() >= self.ratio:
                fault = "pass"  # the RNG is drawn only while a random fault is set: repeatable runs
            else:
                fault = self.mode
            conflict = fault in ("pass", "slow") and operation == METRICS_OPERATION and self.metric_conflicts > 0
            if conflict:
                self.metric_conflicts -= 1
            if fault != "pass" or conflict:
                self.faults += 1
            return _Decision(fault, self.slow_s if fault == "slow" else 0.0, conflict)

    def stop(self) -> None:
        stop(self._server)

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _operation(headers, path: str) -> str:
    target = headers.get("X-Amz-Target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    return METRICS_OPERATION if METRICS_OPERATION in path else ""


def _fault_answer(fault: str, json_protocol: bool, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) of an injected error, shaped as the request's protocol."""
    if fault == "throttle":
        status, code, message = (400, "ThrottlingException", "Rate exceeded") if json_protocol else (
            503, "SlowDown", "Please reduce your request rate.")
    elif fault == "reject":
        status, code, message = (400, "ValidationException", "injected refusal") if json_protocol else (
            400, "InvalidArgument", "injected refusal")
    else:
        status, code, message = 500, "InternalFailure", "injected server error"
    if json_protocol or f"/{METRICS_OPERATION}" in path:
        ctype, payload = "application/x-amz-json-1.1", json.dumps({"__type": code, "message": message}).encode()
    else:
        ctype, payload = "application/xml", f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
    return status, [("Content-Type", ctype), ("x-amzn-ErrorType", code)], payload


def _with_metric_conflict(data: bytes) -> bytes:
    """A BatchPutMetrics answer that reports its first point as CONFLICT_ERROR."""
    doc = json.loads(data or b"{}")
    doc["Errors"] = [{"Code": "CONFLICT_ERROR", "MetricIndex": 0}]
    return json.dumps(doc).encode()


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the clients' connection pools expect

        def log_message(self, *args):  # quiet
            pass

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            decision = proxy._decide(_operation(self.headers, self.path), self.command, self.path)
            if decision.fault == "reset":
                self._drop()
                return
            if decision.fault in ("throttle", "error500", "reject"):
                json_protocol = bool(self.headers.get("X-Amz-Target"))
                self._answer(*_fault_answer(decision.fault, json_protocol, self.path))
                return
            if decision.fault == "slow":
                time.sleep(decision.slow_s)
            self._forward(body, decision.metric_conflict)

        def _forward(self, body: bytes, metric_conflict: bool):
            conn = http.client.HTTPConnection(proxy.target_host, proxy.target_port, timeout=FORWARD_TIMEOUT_S)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                conn.request(self.command, self.path,
                             body=body if body or self.command in ("POST", "PUT") else None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                self.close_connection = True  # target down: the client sees a dropped connection
                return
            finally:
                conn.close()
            if metric_conflict and resp.status == 200:
                data = _with_metric_conflict(data)
            headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _NOT_COPIED_BACK]
            self._answer(resp.status, headers, data, resp.reason)

        def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes, reason: str | None = None):
            try:
                self.send_response(status, reason)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            except OSError:
                self.close_connection = True  # the client gave up (its read timeout, a slow answer)

        def _drop(self):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    return Handler
