"""Every AWS request made during the tests goes through `aws_request_rules.check` (tests only).

`install()` wraps botocore's `BaseClient._make_api_call`, the one place every client method of
every boto3/botocore client (the exporter's, the SageMaker SDK's, a test's read-back) passes its
parameters through before they are serialised. A request that breaks a rule is

- recorded (operation, member path, value, rule), so the test that caused it fails
  (`conftest`'s autouse fixtures call `take_violations()` after each test), and
- answered like AWS would: a botocore `ClientError` with HTTP 400 `ValidationException`, raised
  before anything is sent, so the code under test meets the rejection end to end.

Subprocesses (`spanchain serve`, `spanchain demo`, benchmarks) get the same hook through
`aws_guard_site/sitecustomize.py`: `enable_for_subprocesses()` puts that directory on PYTHONPATH
and names a file in $PYTEST_AWS_REQUEST_VIOLATIONS where they append their violations as JSON lines.

Tests that want the API to reject something our rules would not (to test containment of a
rejection AWS could give for reasons we cannot foresee) add a predicate with `reject_also()`;
those rejections are expected and not reported as violations.
"""

from __future__ import annotations

import collections
import json
import os
import threading

from aws_request_rules import Violation, check

# Not SPANCHAIN_*, AWS_* or OTEL_*: the tests strip those from the environments of their children.
ENV_LOG = "PYTEST_AWS_REQUEST_VIOLATIONS"
SITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "aws_guard_site")

_lock = threading.Lock()
_violations: list[Violation] = []
_extra_rejections: list = []  # predicates (service, operation, params) -> reason or None
_checked = 0
# The last requests made in this process (service, operation, params), for tests that assert on
# what was sent where an emulator does not keep it (moto drops DisplayName, ExpectedBucketOwner).
sent: collections.deque = collections.deque(maxlen=20000)
_installed = False


def _service_name(client) -> str:
    return client.meta.service_model.service_name


def _rejection(operation: str, message: str):
    from botocore.exceptions import ClientError

    return ClientError(
        {
            "Error": {"Code": "ValidationException", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 400, "RetryAttempts": 0},
        },
        operation,
    )


def install() -> None:
    """Wrap botocore's client call path once per process."""
    global _installed
    if _installed:
        return
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def _make_api_call(self, operation_name, api_params):
        global _checked
        service = _service_name(self)
        found = check(service, operation_name, api_params)
        with _lock:
            _checked += 1
            sent.append((service, operation_name, api_params))
            extra = [p for p in _extra_rejections]
        if found:
            record(found)
            raise _rejection(operation_name, "; ".join(str(v) for v in found)[:2000])
        for predicate in extra:
            reason = predicate(service, operation_name, api_params)
            if reason:
                raise _rejection(operation_name, str(reason))
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = _make_api_call
    _installed = True


def record(found: list[Violation]) -> None:
    log = os.environ.get(ENV_LOG)
    with _lock:
        _violations.extend(found)
        if log:
            with open(log, "a", encoding="utf-8") as out:
                for v in found:
                    out.write(json.dumps({"text": str(v)}) + "\n")


_subprocess_checked = 0


def checked_requests() -> int:
    return _checked


def subprocess_checked_requests() -> int:
    return _subprocess_checked


def report_count_at_exit() -> None:
    """In a subprocess: add how many requests it checked to the shared log when it exits."""
    import atexit

    def write() -> None:
        log = os.environ.get(ENV_LOG)
        if log and _checked:
            with open(log, "a", encoding="utf-8") as out:
                out.write(json.dumps({"checked": _checked}) + "\n")

    atexit.register(write)


def reject_also(predicate) -> None:
    with _lock:
        _extra_rejections.append(predicate)


def clear_extra_rejections() -> None:
    with _lock:
        _extra_rejections.clear()


def take_violations() -> list[str]:
    """Violations recorded since the last call, in this process and in subprocesses."""
    with _lock:
        texts = [str(v) for v in _violations]
        _violations.clear()
    log = os.environ.get(ENV_LOG)
    if log and os.path.exists(log):
        # Subprocesses append to the same file; this process wrote its own lines there too.
        global _subprocess_checked
        with open(log, encoding="utf-8") as source:
            entries = [json.loads(line) for line in source if line.strip()]
        open(log, "w").close()
        lines = [e["text"] for e in entries if "text" in e]
        _subprocess_checked += sum(e.get("checked", 0) for e in entries)
        own = set(texts)
        texts += [t for t in lines if t not in own]
    return texts


def enable_for_subprocesses(log_path: str) -> None:
    os.environ[ENV_LOG] = log_path
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if SITE_DIR not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([SITE_DIR, *paths])
