"""How a writer tells the delivery engine what kind of failure it met.

The engine retries every exception as transient unless it is one of these two, or a
standard-library error that can never heal by waiting (see `is_permanent`):

- `ConfigurationError`: a setting can never work (the repo path is a file, a bucket name the API
  rejects). The engine stops writing, reports it once with the setting's name and value, and
  never retries; with a spool, spans stay on disk for a process whose configuration works.
- `RejectedError`: the backend refused this one trace for good (a value it will never accept).
  The trace is dropped (counted and logged); other traces go on.
"""

from __future__ import annotations

import errno


class ConfigurationError(ValueError):
    """A setting that can never work; names the setting (argument or variable) and its value."""

    def __init__(self, setting: str, value: object, problem: str) -> None:
        self.setting = setting
        self.value = value
        self.problem = problem
        super().__init__(f"{setting}={value!r}: {problem}")


class RejectedError(Exception):
    """The backend refused one trace permanently; retrying would only repeat the refusal."""


# OS errors that describe the local filesystem, not a passing condition.
_PERMANENT_ERRNOS = {errno.ENOTDIR, errno.EISDIR, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG}


def is_configuration_error(exc: BaseException) -> bool:
    if isinstance(exc, ConfigurationError):
        return True
    return isinstance(exc, OSError) and exc.errno in _PERMANENT_ERRNOS


def retry_after_s(exc: BaseException) -> float | None:
    """A server's requested wait (Retry-After), when the writer attached one to the error."""
    value = getattr(exc, "retry_after", None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None
