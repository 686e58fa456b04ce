"""An OTLP endpoint that is not there: one clear warning instead of the SDK's retry noise.

The OpenTelemetry OTLP exporter retries a refused connection with backoff for up to its timeout
(10 s), logging a "Transient error" line per attempt and "Failed to export spans batch" at the end,
and the app's exit waits for all of it. `ReachabilityGuard` wraps that exporter: a background
probe opens a TCP connection to the endpoint's port (short timeout) when tracing starts, and again
after a failed export; while the port does not answer, batches are counted as dropped without
calling the exporter, and the port is probed again at most every `recheck_s` seconds, so a
collector started later is picked up. One warning says what happened; while the endpoint is down,
the SDK's repeated retry lines are filtered out of its logger.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Callable, Sequence
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger("spanchain")

PROBE_TIMEOUT_S = 0.5
RECHECK_S = 1.0
OTLP_LOGGER = "opentelemetry.exporter.otlp"


def tcp_probe(host: str, port: int, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when something accepts connections on host:port, else why not (short, readable)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except socket.timeout:
        return f"no answer within {timeout_s:g} s"
    except ConnectionRefusedError:
        return "connection refused"
    except socket.gaierror as exc:
        return f"cannot resolve {host!r} ({exc.strerror or exc})"
    except OSError as exc:
        return exc.strerror or str(exc)


def host_port(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url if "://" in url else "http://" + url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname else None


_guards: "list[ReachabilityGuard]" = []


class _RepeatFilter(logging.Filter):
    """Drops the OTLP exporter's per-attempt retry lines while a guard has reported the endpoint
    down (it said so once); other failures (a collector answering 500) still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if not (message.startswith("Transient error") or message.startswith("Failed to export")):
            return True
        return not any(g.unreachable for g in _guards)


_filter_installed = False


def quiet_otlp_retry_lines() -> None:
    global _filter_installed
    if not _filter_installed:
        _filter_installed = True
        for name in (OTLP_LOGGER, OTLP_LOGGER + ".proto.http.trace_exporter", OTLP_LOGGER + ".proto.grpc.exporter"):
            logging.getLogger(name).addFilter(_RepeatFilter())


class ReachabilityGuard(SpanExporter):
    """Calls `inner` only while its endpoint's port answers; counts what it wrote and dropped."""

    def __init__(
        self,
        inner: SpanExporter,
        endpoint: str,
        *,
        note: str = "",
        probe: Callable[[str, int], str | None] = tcp_probe,
        recheck_s: float = RECHECK_S,
    ) -> None:
        self.inner = inner
        self.endpoint = endpoint
        self.note = note  # extra words for the warning (e.g. why otlp was chosen)
        self.written = 0
        self.dropped = 0
        self.unreachable: str | None = None  # the reason, while the port does not answer
        self._address = host_port(endpoint)
        self._probe = probe
        self._recheck_s = recheck_s
        self._next_check = 0.0
        self.warned = False
        self._probed = threading.Event()
        quiet_otlp_retry_lines()
        _guards.append(self)
        threading.Thread(target=self._check, name="spanchain-otlp-probe", daemon=True).start()

    def _check(self) -> None:
        try:
            reason = self._probe(*self._address) if self._address else None
        except Exception as exc:  # a probe must never stop exporting
            reason = None
            logger.debug("spanchain: OTLP probe failed: %r", exc)
        self.unreachable = reason
        self._next_check = time.monotonic() + self._recheck_s
        self._probed.set()
        if reason and not self.warned:
            self.warned = True
            logger.warning(
                "spanchain: OTLP endpoint %s is not reachable (%s); spans for otlp are dropped until "
                "it answers. Start a collector there, set OTEL_EXPORTER_OTLP_ENDPOINT, or leave otlp "
                "out of OTEL_TRACES_EXPORTER.%s",
                self.endpoint, reason, f" {self.note}" if self.note else "",
            )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._probed.wait(PROBE_TIMEOUT_S * 2)  # runs on the processor's thread, not the app's
        if self.unreachable and time.monotonic() >= self._next_check:
            self._check()
        if self.unreachable:
            self.dropped += len(spans)
            return SpanExportResult.FAILURE
        result = self.inner.export(spans)
        if result == SpanExportResult.SUCCESS:
            self.written += len(spans)
        else:
            self.dropped += len(spans)
            self._check()  # gone away mid-run? then say so once and stop trying for a while
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        if self in _guards:
            _guards.remove(self)
        self.inner.shutdown()


def guard_otlp(exporter: SpanExporter, note: str = "") -> SpanExporter:
    """Wrap an OTLP exporter (anything with an http(s) `_endpoint`); others are returned as is."""
    endpoint = getattr(exporter, "_endpoint", None)
    if not isinstance(endpoint, str) or not endpoint or host_port(endpoint) is None:
        return exporter
    return ReachabilityGuard(exporter, endpoint, note=note)
