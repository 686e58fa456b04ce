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


# --- the one sanitising layer for text sent to SageMaker -----------------------------------------
# Free-text members (`.*`, `.+`: status messages, parameter keys and values, metric names, artifact
# keys and values) are matched by the service's Java regexes, whose `.` stops at every line
# terminator below; lengths are checked in UTF-16 code units (an emoji counts 2), which is never
# fewer than code points, so cutting by UTF-16 units satisfies either count.
LINE_TERMINATORS = re.compile("\r\n|[\n\r\u0085\u2028\u2029]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_ESCAPES = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def utf16_len(text: str) -> int:
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def cut_utf16(text: str, max_units: int) -> str:
    """The longest prefix of `text` of at most `max_units` UTF-16 code units (never half a pair)."""
    if len(text) * 2 <= max_units or utf16_len(text) <= max_units:
        return text
    units = 0
    for index, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > max_units:
            return text[:index]
    return text


def api_text(value: object, max_units: int, marker: str = "…") -> str:
    """Text a `.*` member accepts: line terminators become spaces, lone surrogates U+FFFD, and
    the result is cut (ending with `marker`) to `max_units` UTF-16 units."""
    text = value if isinstance(value, str) else _safe_str(value)
    text = LINE_TERMINATORS.sub(" ", text)
    text = _LONE_SURROGATE.sub("\ufffd", text)
    if utf16_len(text) <= max_units:
        return text
    return cut_utf16(text, max_units - utf16_len(marker)) + marker


def json_text(value: object) -> str:
    """JSON for a string member: non-ASCII kept readable, but the line separators Python's
    encoder leaves raw (U+0085, U+2028, U+2029) escaped, so the text stays one line and valid JSON."""
    text = json.dumps(value, default=_safe_str, ensure_ascii=False, sort_keys=True, allow_nan=False)
    for raw, escaped in _JSON_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def stable_hash(text: str, length: int = HASH_LEN) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def _cut_with_hash(name: str, original: str, max_len: int) -> str:
    """Cut `name` to `max_len` (UTF-16 units), keeping it unique by ending it with a hash of
    the original."""
    if utf16_len(name) <= max_len:
        return name
    suffix = stable_hash(original)
    head = cut_utf16(name, max_len - len(suffix) - 1).rstrip("-")
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


def display_name(value: object, fallback: str = "run", suffix: str = "") -> str:
    """DisplayName follows the entity pattern too but may keep case. `suffix` (already in
    [a-zA-Z0-9-]) is kept whole: the head is cut, never the part that tells runs apart."""
    original = str(value) if value is not None else ""
    name = re.sub(r"[^a-zA-Z0-9]+", "-", _ascii_fold(original)).strip("-") or fallback
    if suffix:
        head = _cut_with_hash(name, original, MAX_ENTITY_NAME - len(suffix) - 1)
        return f"{head}-{suffix}"[:MAX_ENTITY_NAME].strip("-")
    return _cut_with_hash(name, original, MAX_ENTITY_NAME)


def _free_text_name(value: object, fallback: str, max_len: int) -> str:
    """A one-line, non-empty name of at most `max_len` UTF-16 units (cut names end with a hash)."""
    text = value if isinstance(value, str) else ("" if value is None else _safe_str(value))
    name = _LONE_SURROGATE.sub("\ufffd", LINE_TERMINATORS.sub(" ", text)).strip() or fallback
    return _cut_with_hash(name, text, max_len)


def metric_name(value: object) -> str:
    """Metric names are one line of 1..255 characters (`.+`)."""
    return _free_text_name(value, "metric", MAX_METRIC_NAME)


def parameter_key(value: object) -> str:
    return _free_text_name(value, "parameter", MAX_PARAMETER_KEY)


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
            text = json_text(_plain(value))
        except (TypeError, ValueError, RecursionError):
            text = _safe_str(value)
    elif isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    else:
        try:
            text = str(value)
        except Exception:
            return None
    return {"StringValue": api_text(text, MAX_PARAMETER_STRING)}


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
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)  # JSON has no NaN/inf
    return value


def truncate(text: str, max_len: int, marker: str = "…") -> str:
    """Cut to `max_len` UTF-16 units (the count the service applies), ending with `marker`."""
    if utf16_len(text) <= max_len:
        return text
    return cut_utf16(text, max_len - utf16_len(marker)) + marker


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
    return api_text("" if value is None else value, MAX_STATUS_MESSAGE)


def artifact_key(value: object) -> str:
    return _free_text_name(value, "artifact", MAX_ARTIFACT_KEY)


def artifact_value(value: str) -> str:
    # An S3 URI cut in the middle would point elsewhere; callers keep URIs short, this is a guard.
    return api_text(value, MAX_ARTIFACT_VALUE)


def media_type(value: str | None, default: str = "application/json") -> str:
    if value and len(value) <= MAX_MEDIA_TYPE and _MEDIA_TYPE.match(value):
        return value
    return default


def _tag_text(value: object, max_len: int) -> str:
    """Tags match [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*: letters, separators, numbers and a few marks."""
    text = "".join(
        ch if ch in "_.:/=+-@" or unicodedata.category(ch)[0] in "LNZ" and ch not in "\u2028\u2029" else "_"
        for ch in _safe_str(value)
    )
    return cut_utf16(text, max_len)


def tag(key: object, value: object) -> dict[str, str]:
    return {"Key": _tag_text(key, MAX_TAG_KEY) or "tag", "Value": _tag_text(value, MAX_TAG_VALUE)}


def s3_key_part(value: object, max_len: int = 200) -> str:
    """A path segment safe in S3 keys and URLs: [A-Za-z0-9._-]."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-.") or "x"
    return _cut_with_hash(text, str(value), max_len)


# S3 keys are at most 1,024 UTF-8 bytes. Ours are <prefix>/<trial component (120)>/<folder>/
# <part (200)>[.json]: a prefix of at most 512 keeps every key under the limit.
MAX_S3_PREFIX = 512


def s3_prefix(value: object, max_len: int = MAX_S3_PREFIX) -> str:
    """A key prefix: segments sanitized, no leading/trailing slash (empty allowed), at most
    `max_len` characters (ASCII after sanitising; a cut prefix ends with a hash)."""
    parts = [s3_key_part(p) for p in str(value or "").split("/") if p.strip()]
    prefix = "/".join(parts)
    return _cut_with_hash(prefix, prefix, max_len).strip("/")
