"""Names and values the SageMaker APIs accept, enforced here because neither botocore nor the
emulator checks them (only the real service rejects a bad request, with a ValidationException).

Every rule below comes from the botocore service models (sagemaker, sagemaker-metrics) and the
SageMaker SDK's Run (see docs/sagemaker.md, "Names and limits"). All functions are pure.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from numbers import Number

# Experiment, trial and trial-component names (and DisplayName): [a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}.
# BatchPutMetrics additionally wants the trial-component name lowercase, and the SDK's Run
# lower-cases experiment and run names and caps each at 59 so that "<exp>-<run>" fits in 120.
MAX_ENTITY_NAME = 120
MAX_NAME_PART = 59
TRIAL_NAME_TEMPLATE = "Default-Run-Group-{}"  # the SDK's run group: one trial per experiment
HASH_LEN = 8

MAX_PARAMETERS = 300  # per UpdateTrialComponent request; we keep the whole run under it
MAX_PARAMETER_KEY = 320
MAX_PARAMETER_STRING = 2500
MAX_METRIC_NAME = 255
MAX_METRICS_PER_BATCH = 10
MAX_STATUS_MESSAGE = 1024
MAX_ARTIFACT_KEY = 128
MAX_ARTIFACT_VALUE = 2048
MAX_MEDIA_TYPE = 64
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256

# BatchPutMetrics accepts timestamps in [now - 14 days, now + 2 hours]; keep a margin on both
# sides so a point computed now is still inside the window when a retry sends it later.
METRIC_WINDOW_PAST_S = 14 * 24 * 3600
METRIC_WINDOW_FUTURE_S = 2 * 3600
METRIC_WINDOW_MARGIN_S = 3600

_NOT_NAME_CHAR = re.compile(r"[^a-z0-9]+")
_MEDIA_TYPE = re.compile(r"^[-\w]+/[-\w+]+$")
_TAG_DISALLOWED = re.compile(r"[^\w\s.:/=+\-@]", re.UNICODE)


def stable_hash(text: str, length: int = HASH_LEN) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def _cut_with_hash(name: str, original: str, max_len: int) -> str:
    """Cut `name` to `max_len`, keeping it unique by ending it with a hash of the original."""
    if len(name) <= max_len:
        return name
    suffix = stable_hash(original)
    head = name[: max_len - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}" if head else suffix


def entity_name_part(value: object, fallback: str = "x", max_len: int = MAX_NAME_PART) -> str:
    """An experiment or run name: lowercase [a-z0-9-], no leading/trailing or doubled '-', at
    most `max_len` characters (cut names end with a stable hash of the original, so two long
    names that differ only at the end stay different)."""
    original = str(value) if value is not None else ""
    name = _NOT_NAME_CHAR.sub("-", _ascii_fold(original).lower()).strip("-")
    # Distinct originals can collapse to one name ("My Run" / "my_run"), as with the SDK's own
    # lower-casing; only cut names get a hash, so a name the user typed stays readable.
    name = name or fallback
    return _cut_with_hash(name, original, max_len)


def _ascii_fold(text: str) -> str:
    """"Ünïcode" → "Unicode": keep the letters of accented names instead of dashes."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def trial_component_name(experiment: str, run: str) -> str:
    """The SDK's layout: "<experiment>-<run>", both already sanitized parts."""
    return f"{experiment}-{run}"[:MAX_ENTITY_NAME].rstrip("-")


def trial_name(experiment: str) -> str:
    """The SDK's run group for an experiment, so `list_runs`/Studio group our runs with theirs."""
    name = TRIAL_NAME_TEMPLATE.format(experiment)
    return _cut_with_hash(name, name, MAX_ENTITY_NAME)


def display_name(value: object, fallback: str = "run") -> str:
    """DisplayName follows the entity pattern too but may keep case."""
    original = str(value) if value is not None else ""
    name = re.sub(r"[^a-zA-Z0-9]+", "-", original).strip("-") or fallback
    return _cut_with_hash(name, original, MAX_ENTITY_NAME)


def metric_name(value: object) -> str:
    """Metric names are free text of 1..255 characters."""
    name = str(value) if value is not None else ""
    name = name.strip() or "metric"
    return _cut_with_hash(name, name, MAX_METRIC_NAME)


def parameter_key(value: object) -> str:
    key = str(value).strip() if value is not None else ""
    key = key or "parameter"
    return _cut_with_hash(key, key, MAX_PARAMETER_KEY)


def parameter_value(value: object) -> dict | None:
    """The API's {NumberValue|StringValue} for one parameter; None when it cannot be sent.

    Booleans become "true"/"false" (the SDK would send 1.0), NaN and infinities are dropped,
    lists and dicts are JSON, everything else is str(); strings are cut to 2500 characters.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return {"StringValue": "true" if value else "false"}
    if isinstance(value, Number) and not isinstance(value, complex):
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            return None
        if math.isnan(number) or math.isinf(number):
            return None
        return {"NumberValue": number}
    if isinstance(value, (list, tuple, dict)):
        try:
            text = json.dumps(_plain(value), default=_safe_str, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError, RecursionError):
            text = _safe_str(value)
    elif isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    else:
        try:
            text = str(value)
        except Exception:
            return None
    return {"StringValue": truncate(text, MAX_PARAMETER_STRING)}


def _safe_str(value: object) -> str:
    for render in (str, repr):
        try:
            return render(value)
        except Exception:
            continue
    return f"<{type(value).__name__}>"


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def truncate(text: str, max_len: int, marker: str = "…") -> str:
    if len(text) <= max_len:
        return text
    return text[: max_len - len(marker)] + marker


def metric_value(value: object) -> float | None:
    """A finite float, or None (the API takes doubles; NaN/inf are not metrics)."""
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    if math.isnan(number) or math.isinf(number):
        return None
    return number


def metric_step(value: object) -> int:
    """Steps are integers >= 0."""
    try:
        step = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0
    return max(0, step)


def clamp_metric_timestamp(timestamp_s: float, now_s: float) -> float:
    """Keep a metric timestamp inside BatchPutMetrics' accepted window (with a margin)."""
    earliest = now_s - METRIC_WINDOW_PAST_S + METRIC_WINDOW_MARGIN_S
    latest = now_s + METRIC_WINDOW_FUTURE_S - METRIC_WINDOW_MARGIN_S
    if not math.isfinite(timestamp_s):
        return now_s
    return min(max(timestamp_s, earliest), latest)


def status_message(value: object) -> str:
    return truncate(str(value) if value is not None else "", MAX_STATUS_MESSAGE)


def artifact_key(value: object) -> str:
    key = str(value).strip() if value is not None else ""
    key = key or "artifact"
    return _cut_with_hash(key, key, MAX_ARTIFACT_KEY)


def artifact_value(value: str) -> str:
    # An S3 URI cut in the middle would point elsewhere; callers keep URIs short, this is a guard.
    return truncate(value, MAX_ARTIFACT_VALUE)


def media_type(value: str | None, default: str = "application/json") -> str:
    if value and len(value) <= MAX_MEDIA_TYPE and _MEDIA_TYPE.match(value):
        return value
    return default


def tag(key: object, value: object) -> dict[str, str]:
    k = _TAG_DISALLOWED.sub("_", str(key))[:MAX_TAG_KEY] or "tag"
    v = _TAG_DISALLOWED.sub("_", str(value))[:MAX_TAG_VALUE]
    return {"Key": k, "Value": v}


def s3_key_part(value: object, max_len: int = 200) -> str:
    """A path segment safe in S3 keys and URLs: [A-Za-z0-9._-]."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-.") or "x"
    return _cut_with_hash(text, str(value), max_len)


def s3_prefix(value: object) -> str:
    """A key prefix: segments sanitized, no leading/trailing slash (empty allowed)."""
    parts = [s3_key_part(p) for p in str(value or "").split("/") if p.strip()]
    return "/".join(parts)
