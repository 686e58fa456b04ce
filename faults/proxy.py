"""A fault-injecting HTTP proxy for loopback use in front of the SageMaker emulator (moto).

Every request is forwarded to `target` unless the current fault says otherwise:
- "throttle": AWS throttling answers (JSON protocol: 400 ThrottlingException; REST/S3: 503 SlowDown)
- "error500": 500 InternalFailure
- "slow": wait `slow_s` before forwarding (beyond the client's read timeout)
- "reset": close the connection without an answer (a crashed or restarting server)
`ratio` is the share of requests that get the fault (the rest pass), drawn from a seeded RNG so a
run is repeatable. Counters say how many requests came and how many got a fault.
`reject_path`: requests whose path contains this text are refused with 400 whatever the mode
(a backend that refuses one object, e.g. one trace's document, while the rest go through).
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class FaultProxy:
    def __init__(self, target: str, *, seed: int = 7) -> None:
        parts = urlsplit(target)
        self.target_host = parts.hostname or "127.0.0.1"
        self.target_port = parts.port or 80
        self.mode = "pass"
        self.ratio = 1.0
        self.slow_s = 0.0
        self.reject_path: str | None = None
        self.requests = 0
        self.faults = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._draw(self.path)
                if fault == "reset":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if fault == "slow":
                    time.sleep(proxy.slow_s)
                elif fault in ("throttle", "error500", "reject"):
                    self._answer_fault(fault)
                    return
                self._forward(body)

            def _answer_fault(self, fault):
                json_protocol = bool(self.headers.get("X-Amz-Target"))
                if fault == "throttle":
                    status, code, message = (400, "ThrottlingException", "Rate exceeded") if json_protocol else (
                        503, "SlowDown", "Please reduce your request rate.")
                elif fault == "reject":
                    status, code, message = (400, "ValidationException", "injected refusal") if json_protocol else (
                        400, "InvalidArgument", "injected refusal")
                else:
                    status, code, message = 500, "InternalFailure", "injected server error"
                if json_protocol or "/BatchPutMetrics" in self.path:
                    payload = ('{"__type":"%s","message":"%s"}' % (code, message)).encode()
                    ctype = "application/x-amz-json-1.1"
                else:
                    payload = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
                    ctype = "application/xml"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("x-amzn-ErrorType", code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _forward(self, body):
                conn = http.client.HTTPConnection(proxy.target_host, proxy.target_port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    conn.request(self.command, self.path, body=body if body or self.command in ("POST", "PUT") else None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError:
                    self.close_connection = True  # target down: the client sees a dropped connection
                    return
                finally:
                    conn.close()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    def _draw(self, path: str = "") -> str:
        with self._lock:
            self.requests += 1
            if self.reject_path and self.reject_path in path:
                self.faults += 1
                return "reject"
            if self.mode == "pass" or self._rng.random() >= self.ratio:
                return "pass"
            self.faults += 1
            return self.mode

    def set(self, mode: str, ratio: float = 1.0, slow_s: float = 0.0) -> None:
        with self._lock:
            self.mode, self.ratio, self.slow_s = mode, ratio, slow_s

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
