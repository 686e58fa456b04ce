"""boto3 clients for SageMaker, SageMaker Metrics and S3, and one guarded way to call them.

Clients use botocore's adaptive retry mode (client-side rate limiting plus retries on throttling
and 5xx). `AwsApi.call` adds our own jittered backoff on top for throttling and 5xx that outlast
the client's retries, counts every call per operation (the benchmark reports these), and gives
up early when the exporter is shutting down.

Every wait is bounded by a `Deadline` (one batch's time budget, the exporter opens it): our
backoff sleeps, botocore's retry sleeps (a retry whose sleep would not fit is not made) and each
HTTP attempt's read timeout (cut to what is left) all end by it, after which calls fail at once
with `BudgetExhausted`.
"""

from __future__ import annotations

import collections
import contextlib
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestThrottled",
        "PriorRequestNotComplete",
    }
)


class BudgetExhausted(RuntimeError):
    """The batch's time budget ran out; the call was not made, or not retried."""


class Deadline:
    """One time budget shared by the writer thread and its I/O pool.

    `window()` opens it (a no-op when one is already open, so nested entry points share the
    outer budget); `remaining()` is None outside a window.
    """

    def __init__(self, budget_s: float | None) -> None:
        self.budget_s = budget_s
        self._at: float | None = None

    @contextlib.contextmanager
    def window(self):
        if self.budget_s is None or self._at is not None:
            yield
            return
        self._at = time.monotonic() + self.budget_s
        try:
            yield
        finally:
            self._at = None

    def remaining(self) -> float | None:
        at = self._at
        return None if at is None else at - time.monotonic()

    def check(self, what: str, cause: BaseException | None = None) -> None:
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise BudgetExhausted(
                f"{what}: the {self.budget_s:g} s budget for this batch ran out"
                + (f" (last error: {cause!r})" if cause is not None else "")
            ) from cause


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


def error_status(exc: BaseException) -> int:
    response = getattr(exc, "response", None) or {}
    try:
        return int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    except (TypeError, ValueError):
        return 0


def is_transient(exc: BaseException) -> bool:
    """Worth retrying later: throttling, 5xx, connection trouble."""
    from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError, ReadTimeoutError

    if isinstance(exc, BudgetExhausted):
        return False  # retrying cannot help before the next batch's budget
    # HTTPClientError covers ConnectionClosedError (the server reset the connection mid-request),
    # which is not a botocore ConnectionError.
    if isinstance(exc, (BotoConnectionError, HTTPClientError, ReadTimeoutError, ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, ClientError):
        return error_code(exc) in THROTTLING_CODES or error_status(exc) >= 500
    return False


def _error_message(exc: BaseException) -> str:
    # Connection errors carry `response = None`: never let classifying an error raise.
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Message", "")).lower()


def is_already_exists(exc: BaseException) -> bool:
    code = error_code(exc)
    message = _error_message(exc)
    return code in ("ResourceInUse", "ResourceInUseException") or (
        code == "ValidationException" and "already exist" in message
    )


def is_not_found(exc: BaseException) -> bool:
    code = error_code(exc)
    message = _error_message(exc)
    return code in ("ResourceNotFound", "ResourceNotFoundException", "NoSuchBucket", "404") or (
        code == "ValidationException" and ("could not find" in message or "not exist" in message)
    )


@dataclass
class ClientSettings:
    max_attempts: int = 8
    connect_timeout_s: float = 5.0  # config.DEFAULT_CONNECT_TIMEOUT_S
    read_timeout_s: float = 15.0  # config.DEFAULT_READ_TIMEOUT_S


_BOTOCORE_MAX_BACKOFF_S = 20.0  # botocore.retries.standard's MAX_BACKOFF
SERVICES = ("sagemaker", "sagemaker-metrics", "s3", "sts")


def build_clients(boto_session=None, endpoints: dict[str, str] | None = None, settings=None):
    """{service: client} for SERVICES from a boto3 Session (default: a new one).

    `endpoints` overrides per service (taken from a user's SageMaker Session whose clients point
    at a custom endpoint); otherwise boto3 applies AWS_ENDPOINT_URL[_<SERVICE>] itself.
    """
    import boto3
    from botocore.config import Config

    settings = settings or ClientSettings()
    session = boto_session or boto3.Session()
    config = Config(
        retries={"mode": "adaptive", "max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        user_agent_extra="spanchain-sagemaker",
    )
    endpoints = endpoints or {}
    region = session.region_name or "us-east-1"

    def make(service: str):
        kwargs: dict[str, Any] = {"config": config, "region_name": region}
        if endpoints.get(service):
            kwargs["endpoint_url"] = endpoints[service]
        return session.client(service, **kwargs)

    return {service: make(service) for service in SERVICES}


class AwsApi:
    """The clients behind one `call()` that counts, backs off and never hides an error."""

    def __init__(
        self,
        clients: dict,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        backoff_attempts: int = 4,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 20.0,
        deadline: Deadline | None = None,
    ) -> None:
        self.clients = clients
        self.deadline = deadline or Deadline(None)
        for client in clients.values():
            self._bound_client(client)
        self._should_stop = should_stop
        self._backoff_attempts = max(1, backoff_attempts)
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()  # per operation
        self.http_attempts: collections.Counter[str] = collections.Counter()  # incl. retries
        self.throttled = 0
        self._wait = threading.Event()

    @property
    def region(self) -> str:
        return self.clients["sagemaker"].meta.region_name

    def call(self, service: str, operation: str, **params) -> dict:
        client = self.clients[service]
        method = getattr(client, _snake(operation))
        attempt = 0
        last_exc: BaseException | None = None
        while True:
            self.deadline.check(operation, last_exc)
            with self._lock:
                self.calls[operation] += 1
            try:
                response = method(**params)
                retries = int((response.get("ResponseMetadata") or {}).get("RetryAttempts") or 0)
                with self._lock:
                    self.http_attempts[operation] += 1 + retries
                return response
            except Exception as exc:
                retries = int(((getattr(exc, "response", None) or {}).get("ResponseMetadata") or {}).get("RetryAttempts") or 0)
                with self._lock:
                    self.http_attempts[operation] += 1 + retries
                    if error_code(exc) in THROTTLING_CODES:
                        self.throttled += 1
                attempt += 1
                if not is_transient(exc) or attempt >= self._backoff_attempts or self._should_stop():
                    raise
                last_exc = exc
                cap = min(self._backoff_max_s, self._backoff_base_s * (2**attempt))
                self.pause(random.uniform(cap / 2, cap), operation, exc)

    def pause(self, seconds: float, what: str = "backoff", cause: BaseException | None = None) -> None:
        """Sleep before a retry; BudgetExhausted at once if the sleep would outlast the budget."""
        remaining = self.deadline.remaining()
        if remaining is not None and seconds >= remaining:
            raise BudgetExhausted(
                f"{what}: a {seconds:.2f} s retry wait does not fit the {remaining:.2f} s left of "
                f"the {self.deadline.budget_s:g} s budget (last error: {cause!r})"
            ) from cause
        self._sleep(seconds)

    # --- botocore's own retries and timeouts under the deadline ----------------------------
    def _bound_client(self, client) -> None:
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is None:
            return
        service = client.meta.service_model.service_id.hyphenize()
        read_timeout = client.meta.config.read_timeout
        # Last on before-send: after the adaptive rate limiter's wait for a send token.
        events.register_last(
            "before-send", lambda request, **_: self._before_send(request, read_timeout)
        )
        # First on the service's needs-retry: only a first non-None answer counts, and False
        # vetoes the retry botocore's handler would otherwise sleep for.
        events.register_first(f"needs-retry.{service}", self._needs_retry)

    def _before_send(self, request, read_timeout: float):
        remaining = self.deadline.remaining()
        if remaining is None:
            return None
        self.deadline.check("send")
        context = getattr(request, "context", None)
        if context is not None:
            # botocore's per-request read timeout (urllib3 Timeout.read): never past the deadline.
            context["read_timeout"] = max(0.001, min(read_timeout, remaining))
        return None

    def _needs_retry(self, attempts: int = 1, **_) -> bool | None:
        remaining = self.deadline.remaining()
        if remaining is None:
            return None
        # botocore's standard backoff before attempt i+1 sleeps at most min(2**(i-1), 20) s.
        longest_sleep = min(2.0 ** max(0, attempts - 1), _BOTOCORE_MAX_BACKOFF_S)
        return False if remaining <= longest_sleep else None

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._should_stop():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wait.wait(min(remaining, 0.1))

    def stats(self) -> dict:
        with self._lock:
            return {
                "calls": dict(self.calls),
                "http_attempts": dict(self.http_attempts),
                "throttled": self.throttled,
            }


def _snake(operation: str) -> str:
    out = []
    for i, ch in enumerate(operation):
        if ch.isupper() and i and not operation[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
