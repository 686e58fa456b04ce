"""The OTLP/HTTP trace receiver of `spanchain serve` (standard library HTTP server).

POST /v1/traces   protobuf or JSON, optionally gzip; answers as OTLP/HTTP specifies:
                  200 (+ partial success), 400 bad payload (google.rpc.Status with the reason),
                  401 bad/missing bearer token, 411 no Content-Length, 413 too large,
                  415 wrong media type, 429 queue full / 503 shutting down (both with Retry-After)
GET  /health      200 {"status": "ok", ...counters} while accepting, 503 while draining

Limits are checked before the body is read (Content-Length) and while it is inflated (so a
gzip bomb stops at the decompressed-size limit); at most `max_connections` requests are handled
at once, the rest get 503 straight away.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from spanchain.logonce import LogOnce
from spanchain.otlp import decode as otlp
from spanchain.serve.pipeline import Offer, Pipeline

logger = logging.getLogger(__name__)
_log = LogOnce(logger)

# google.rpc.Code values used in error bodies.
_INVALID_ARGUMENT = 3
_RESOURCE_EXHAUSTED = 8
_UNAUTHENTICATED = 16
_UNAVAILABLE = 14

# How long we keep reading from a connection we refused before closing it, and how much.
BUSY_DRAIN_S = 0.5
DISCARD_MAX_BYTES = 4 * 1024 * 1024


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 4318
    path: str = "/v1/traces"
    max_request_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    max_connections: int = 64
    bearer_token: str | None = None
    retry_after_s: int = 2
    read_timeout_s: float = 30.0


@dataclass
class ReceiverStats:
    requests: int = 0
    received_spans: int = 0
    rejected_spans: int = 0
    bad_requests: int = 0
    unauthorized: int = 0
    too_large: int = 0
    overloaded: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def bump(self, name: str, n: int = 1) -> None:
        with self._lock:  # handler threads update these concurrently
            setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, receiver: "OtlpReceiver", address) -> None:
        self.receiver = receiver
        self._slots = threading.BoundedSemaphore(receiver.options.max_connections)
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        # Bound the number of handler threads: past the limit, answer 503 on this thread.
        if not self._slots.acquire(blocking=False):
            self.receiver.stats.bump("overloaded", 1)
            self._reject_busy(request)
            return
        super().process_request(request, client_address)

    def _reject_busy(self, request) -> None:
        """503 + Retry-After, then read what the client is still sending (briefly), so that it
        gets the answer instead of a connection reset for writing into a closed socket."""
        answer = (
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: "
            + str(self.receiver.options.retry_after_s).encode()
            + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        deadline = time.monotonic() + BUSY_DRAIN_S
        try:
            request.settimeout(BUSY_DRAIN_S)
            request.sendall(answer)
            request.shutdown(socket.SHUT_WR)
            while time.monotonic() < deadline and request.recv(65536):
                pass
        except OSError:
            pass
        self.shutdown_request(request)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: collectors reuse connections
    server_version = "spanchain-serve"
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.receiver.options.read_timeout_s
        super().setup()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - base class signature
        logger.debug("serve: " + format, *args)

    # --- responses ---------------------------------------------------------------------------
    def _send(self, code: int, body: bytes = b"", content_type: str = "text/plain", headers: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, code: int, rpc_code: int, message: str, kind: str = otlp.JSON, headers: dict | None = None) -> None:
        body, content_type = otlp.encode_error(kind, rpc_code, message)
        self._send(code, body, content_type, headers)

    def _retry_after(self) -> dict:
        return {"Retry-After": str(self.server.receiver.options.retry_after_s)}

    # --- routes ------------------------------------------------------------------------------
    def do_GET(self) -> None:
        receiver = self.server.receiver
        if self.path.split("?", 1)[0] not in ("/health", "/healthz", "/"):
            self._send(404, b"not found\n")
            return
        health = receiver.health()
        body = json.dumps(health).encode()
        self._send(200 if health["status"] == "ok" else 503, body, "application/json")

    def do_POST(self) -> None:
        try:
            self._unread = max(0, int(self.headers.get("Content-Length") or 0))
        except ValueError:
            self._unread = 0
        try:
            self._post()
        except Exception as exc:  # a bug here must cost one request, never the receiver
            _log.error(f"post:{type(exc).__name__}", "serve: request failed: %r", exc)
            self.close_connection = True
            try:
                self._error(500, 13, "internal error; see the receiver's log")
            except OSError:
                pass
        if self.close_connection and self._unread:
            self._discard_unread()

    def _discard_unread(self) -> None:
        """After refusing a request without reading its body: read (and drop) a bounded part of it,
        so a client still sending gets our answer rather than a reset connection."""
        deadline = time.monotonic() + BUSY_DRAIN_S
        left = min(self._unread, DISCARD_MAX_BYTES)
        try:
            self.connection.settimeout(BUSY_DRAIN_S)
            while left > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
        except (OSError, ValueError):
            pass

    def _post(self) -> None:
        receiver = self.server.receiver
        stats = receiver.stats
        options = receiver.options
        stats.bump("requests", 1)
        try:
            kind = otlp.media_type(self.headers.get("Content-Type"))
        except otlp.OtlpDecodeError as exc:
            kind = None
            reason = str(exc)
        if self.path.split("?", 1)[0] != options.path:
            self.close_connection = True
            self._error(404, 5, f"unknown path {self.path!r}; traces go to {options.path}", kind or otlp.JSON)
            return
        if options.bearer_token and not self._authorized(options.bearer_token):
            stats.bump("unauthorized", 1)
            self.close_connection = True  # the body was not read
            self._error(401, _UNAUTHENTICATED, "missing or wrong bearer token", kind or otlp.JSON,
                        {"WWW-Authenticate": 'Bearer realm="spanchain"'})
            return
        if kind is None:
            stats.bump("bad_requests", 1)
            self.close_connection = True
            self._error(415, _INVALID_ARGUMENT, reason)
            return
        length = self._content_length()
        if length is None:
            return
        if length > options.max_request_bytes:
            stats.bump("too_large", 1)
            self.close_connection = True
            self._error(413, _INVALID_ARGUMENT,
                        f"request body is {length} bytes, limit is {options.max_request_bytes}", kind)
            return
        # Cheap check first: a full queue refuses before we spend time reading and decoding.
        early = receiver.pipeline.pressure()
        if early is not Offer.ACCEPTED:
            self.close_connection = True
            self._refuse(early, kind)
            return
        try:
            body = self.rfile.read(length)
            self._unread = 0
        except (socket.timeout, OSError):
            self.close_connection = True
            return
        if len(body) < length:
            self.close_connection = True
            return
        try:
            batch = otlp.decode(body, self.headers.get("Content-Type"),
                                self.headers.get("Content-Encoding"), options.max_decompressed_bytes)
        except otlp.PayloadTooLarge as exc:
            stats.bump("too_large", 1)
            self._error(413, _INVALID_ARGUMENT, str(exc), kind)
            return
        except otlp.OtlpDecodeError as exc:
            stats.bump("bad_requests", 1)
            self._error(400, _INVALID_ARGUMENT, str(exc), kind)
            return
        stats.bump("rejected_spans", batch.rejected)
        if batch.spans:
            verdict = receiver.pipeline.offer(batch.spans)
            if verdict is not Offer.ACCEPTED:
                self._refuse(verdict, kind)
                return
            stats.bump("received_spans", len(batch.spans))
        self._send(200, otlp.encode_response(kind, batch), kind)

    def do_PUT(self) -> None:
        self.close_connection = True
        self._send(405, b"use POST\n", headers={"Allow": "POST, GET"})

    do_DELETE = do_PATCH = do_PUT

    # --- helpers -----------------------------------------------------------------------------
    def _authorized(self, token: str) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())

    def _content_length(self) -> int | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._error(411, _INVALID_ARGUMENT, "chunked bodies are not accepted; send Content-Length")
            return None
        raw = self.headers.get("Content-Length")
        try:
            length = int(raw) if raw is not None else -1
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._error(411, _INVALID_ARGUMENT, "Content-Length is required")
            return None
        return length

    def _refuse(self, verdict: Offer, kind: str) -> None:
        if verdict is Offer.FULL:
            self.server.receiver.stats.bump("overloaded", 1)
            self._error(429, _RESOURCE_EXHAUSTED, "queue full; retry later", kind, self._retry_after())
        else:
            self._error(503, _UNAVAILABLE, "shutting down; retry later", kind, self._retry_after())


class OtlpReceiver:
    """An OTLP/HTTP receiver feeding a Pipeline; `port=0` picks a free port (see `.port`)."""

    def __init__(self, pipeline: Pipeline, options: ServeOptions | None = None) -> None:
        self.pipeline = pipeline
        self.options = options or ServeOptions()
        self.stats = ReceiverStats()
        self._server = _Server(self, (self.options.host, self.options.port))
        self._thread: threading.Thread | None = None
        self._draining = False

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = self.options.host if self.options.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.port}{self.options.path}"

    def start(self) -> "OtlpReceiver":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="spanchain-serve-http", daemon=True)
        self._thread.start()
        return self

    def health(self) -> dict:
        return {
            "status": "draining" if self._draining else "ok",
            "queued_spans": self.pipeline.queued_spans,
            "receiver": self.stats.as_dict(),
            "pipeline": self.pipeline.stats.as_dict(),
            "exporters": {
                name: getattr(getattr(exp, "stats", None), "as_dict", lambda: {})()
                for name, exp in self.pipeline.exporters.items()
            },
        }

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Graceful: refuse new work (503), deliver and flush what was accepted, then close."""
        self._draining = True
        ok = self.pipeline.shutdown(timeout_s)
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout_s)
        return ok
