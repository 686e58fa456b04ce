"""LangChain callback payloads → span attributes (gen_ai.* and langchain.*).

Pure functions over what a callback receives; no OpenTelemetry calls here. Content-bearing values
are returned raw and rendered by the handler through the content policy, so nothing is
serialized unless the span records and content capture is on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from spanchain import semconv as sc
from spanchain.content.messages import _attr
from spanchain.content.serialize import to_json

# LangChain's ls_provider values → gen_ai.provider.name well-known values.
_PROVIDERS = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azureopenai": "azure.ai.openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "google_genai": "gcp.gen_ai",
    "google_vertexai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "google": "gcp.gemini",
    "cohere": "cohere",
    "mistral": "mistral_ai",
    "mistralai": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "perplexity": "perplexity",
    "ibm": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
}

_MODEL_KEYS = ("model", "model_name", "model_id", "deployment_name", "azure_deployment", "repo_id")


def mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is a mapping, else an empty one: callback payloads are not always what
    their type hints say."""
    return value if _is_mapping(value) else _EMPTY


_EMPTY: Mapping[str, Any] = MappingProxyType({})  # read-only: shared by every caller


def _is_mapping(value: Any) -> bool:
    cls = type(value)
    if cls is dict:
        return True
    known = _MAPPING_CLASSES.get(cls)
    if known is None:  # an ABC check costs ~0.4 µs; payload classes are few, so decide once each
        known = isinstance(value, Mapping)
        if len(_MAPPING_CLASSES) < 4096:
            _MAPPING_CLASSES[cls] = known
    return known


_MAPPING_CLASSES: dict[type, bool] = {}


def provider_name(metadata: Mapping[str, Any] | None, serialized: Mapping[str, Any] | None) -> str:
    raw = mapping(metadata).get("ls_provider")
    serialized = mapping(serialized)
    if not raw and serialized:
        ident = serialized.get("id")
        ident = ident if isinstance(ident, (list, tuple)) else []
        if len(ident) > 1 and isinstance(ident[0], str) and ident[0].startswith("langchain_"):
            raw = ident[0][len("langchain_") :]
    if not raw:
        return "langchain"
    raw = str(raw).lower()
    return _PROVIDERS.get(raw, raw)


def model_name(
    invocation_params: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    serialized: Mapping[str, Any] | None,
) -> str:
    params = mapping(invocation_params)
    serialized = mapping(serialized)
    if not params.keys().isdisjoint(_MODEL_KEYS):
        for key in _MODEL_KEYS:
            value = params.get(key)
            if isinstance(value, str) and value:
                return value
    value = mapping(metadata).get("ls_model_name")
    if isinstance(value, str) and value:
        return value
    if serialized:
        kwargs = mapping(serialized.get("kwargs"))
        for key in _MODEL_KEYS:
            value = kwargs.get(key)
            if isinstance(value, str) and value:
                return value
        name = serialized.get("name")
        if isinstance(name, str) and name:
            return name
        ident = serialized.get("id")
        if isinstance(ident, (list, tuple)) and ident:
            return str(ident[-1])
    kind = params.get("_type")
    return str(kind) if kind else "unknown"


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            return value
    return None


_REQUEST_PARAMS = (
    (sc.GEN_AI_REQUEST_TEMPERATURE, float, ("temperature",), "ls_temperature"),
    (
        sc.GEN_AI_REQUEST_MAX_TOKENS,
        int,
        ("max_tokens", "max_output_tokens", "max_new_tokens", "max_completion_tokens"),
        "ls_max_tokens",
    ),
    (sc.GEN_AI_REQUEST_TOP_P, float, ("top_p",), None),
    (sc.GEN_AI_REQUEST_TOP_K, int, ("top_k",), None),
    (sc.GEN_AI_REQUEST_FREQUENCY_PENALTY, float, ("frequency_penalty",), None),
    (sc.GEN_AI_REQUEST_PRESENCE_PENALTY, float, ("presence_penalty",), None),
    (sc.GEN_AI_REQUEST_SEED, int, ("seed",), None),
    (sc.GEN_AI_REQUEST_CHOICE_COUNT, int, ("n",), None),
)
_STOP_KEYS = ("stop", "stop_sequences")
_STREAM_KEYS = ("stream", "streaming")
_REQUEST_KEYS = frozenset(k for _, _, keys, _ in _REQUEST_PARAMS for k in keys) | {*_STOP_KEYS, *_STREAM_KEYS}
_REQUEST_META_KEYS = frozenset(m for *_, m in _REQUEST_PARAMS if m) | {"ls_stop"}


def request_attributes(
    invocation_params: Mapping[str, Any] | None, metadata: Mapping[str, Any] | None
) -> dict[str, Any]:
    params = mapping(invocation_params)
    meta = mapping(metadata)
    out: dict[str, Any] = {}
    for key in params:  # a handful of keys; LangChain sends "stop": None when no stop is set
        if key in _REQUEST_KEYS and params[key] is not None:
            break
    else:
        if meta.keys().isdisjoint(_REQUEST_META_KEYS):
            return out  # no request parameter set: skip the walk
    for attr, cast, keys, meta_key in _REQUEST_PARAMS:
        value = _first(params, *keys)
        if value is None and meta_key:
            value = meta.get(meta_key)
        if value is None or isinstance(value, bool):
            continue
        try:
            out[attr] = cast(value)
        except (TypeError, ValueError):
            continue
    if out.get(sc.GEN_AI_REQUEST_CHOICE_COUNT) == 1:
        del out[sc.GEN_AI_REQUEST_CHOICE_COUNT]  # the spec records it only when != 1
    stop = _first(params, *_STOP_KEYS)
    if stop is None:
        stop = meta.get("ls_stop")
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, (list, tuple)) and stop:
        out[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = [str(s) for s in stop]
    stream = _first(params, *_STREAM_KEYS)
    if isinstance(stream, bool):
        out[sc.GEN_AI_REQUEST_STREAM] = stream
    return out


# --- responses ---------------------------------------------------------------------------------


def _get(obj: Any, key: str) -> Any:
    if _is_mapping(obj):
        return obj.get(key)
    return _attr(obj, key)


def _usage_from_metadata(generations: Iterable[Any]) -> dict[str, int] | None:
    totals: dict[str, int] = {}
    found = False
    for gen in generations:
        usage = _get(_get(gen, "message"), "usage_metadata")
        if not usage:
            continue
        found = True
        _add_tokens(totals, sc.GEN_AI_USAGE_INPUT_TOKENS, usage.get("input_tokens"))
        _add_tokens(totals, sc.GEN_AI_USAGE_OUTPUT_TOKENS, usage.get("output_tokens"))
        details = usage.get("input_token_details")
        if details:
            _add_tokens(totals, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, details.get("cache_read"))
            _add_tokens(totals, sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, details.get("cache_creation"))
        details = usage.get("output_token_details")
        if details:
            _add_tokens(totals, sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, details.get("reasoning"))
    return totals if found else None


def _add_tokens(totals: dict[str, int], attr: str, value: Any) -> None:
    cls = type(value)
    if cls is int or cls is float or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        totals[attr] = totals.get(attr, 0) + int(value)


def _usage_from_llm_output(llm_output: Mapping[str, Any] | None) -> dict[str, int] | None:
    if not llm_output:
        return None
    usage = llm_output.get("token_usage") or llm_output.get("usage")
    if not isinstance(usage, Mapping):
        return None
    out: dict[str, int] = {}
    inp = _first(usage, "prompt_tokens", "input_tokens")
    outp = _first(usage, "completion_tokens", "output_tokens")
    if isinstance(inp, (int, float)):
        out[sc.GEN_AI_USAGE_INPUT_TOKENS] = int(inp)
    if isinstance(outp, (int, float)):
        out[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = int(outp)
    details = usage.get("prompt_tokens_details") or {}
    if isinstance(details, Mapping) and isinstance(details.get("cached_tokens"), int):
        out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = details["cached_tokens"]
    details = usage.get("completion_tokens_details") or {}
    if isinstance(details, Mapping) and isinstance(details.get("reasoning_tokens"), int):
        out[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = details["reasoning_tokens"]
    return out or None


def response_attributes(
    response: Any, with_messages: bool = True
) -> tuple[dict[str, Any], list[tuple[Any, Any, str | None]]]:
    """(non-content attributes, output messages) from an LLMResult. The messages, for the content
    renderer (`ChatOutput`), are (message or None, text when no message, finish reason); none
    (an empty list) unless `with_messages`, i.e. when content is not captured.

    Token usage comes from one source only: the messages' `usage_metadata` summed over every
    generation, else `llm_output`'s token usage. Never both, so nothing is double counted.
    """
    out: dict[str, Any] = {}
    generations = [g for batch in (_get(response, "generations") or []) for g in (batch or [])]
    llm_output = _get(response, "llm_output") or {}
    usage = _usage_from_metadata(generations)
    if usage is not None:
        out.update(usage)
        out[sc.LC_USAGE_SOURCE] = "usage_metadata"
    else:
        usage = _usage_from_llm_output(llm_output if isinstance(llm_output, Mapping) else None)
        if usage is not None:
            out.update(usage)
            out[sc.LC_USAGE_SOURCE] = "llm_output"
    finish_reasons: list[str] = []
    messages: list[tuple[Any, Any, str | None]] = []
    response_model = None
    response_id = None
    for gen in generations:
        info = _get(gen, "generation_info") or {}
        message = _get(gen, "message")
        meta = _get(message, "response_metadata") or {}
        reason = _first(meta, "finish_reason", "stop_reason") or _first(
            info, "finish_reason", "stop_reason"
        )
        if reason is not None:
            finish_reasons.append(str(reason))
        response_model = response_model or _first(meta, "model_name", "model") or _first(
            info, "model_name", "model"
        )
        response_id = response_id or _first(meta, "id")
        if with_messages:
            messages.append(
                (message, _get(gen, "text") if message is None else None, None if reason is None else str(reason))
            )
    if isinstance(llm_output, Mapping):
        response_model = response_model or _first(llm_output, "model_name", "model")
        response_id = response_id or llm_output.get("id")
    if finish_reasons:
        out[sc.GEN_AI_RESPONSE_FINISH_REASONS] = finish_reasons
    if response_model:
        out[sc.GEN_AI_RESPONSE_MODEL] = str(response_model)
    if response_id:
        out[sc.GEN_AI_RESPONSE_ID] = str(response_id)
    return out, messages


# --- run identity ---------------------------------------------------------------------------------


def _scalar(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return to_json(value)


# Key sets (in order) of metadata that records nothing: only LangChain's ls_* hints and
# lc_versions, what every model call carries. Decided once per key set.
_NOTHING_TO_RECORD: set[tuple[Any, ...]] = set()


def metadata_attributes(metadata: Mapping[str, Any] | None, limit: int = 64) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not metadata or not _is_mapping(metadata):
        return out
    keys = tuple(metadata)
    if keys in _NOTHING_TO_RECORD:
        return out
    if len(_NOTHING_TO_RECORD) < 1024 and all(
        type(k) is str and (k.startswith("ls_") or k == "lc_versions") for k in keys
    ):
        _NOTHING_TO_RECORD.add(keys)
        return out
    for i, (key, value) in enumerate(metadata.items()):
        if i >= limit:
            break
        # ls_* are LangChain's hints about the model (provider, name, temperature...), already
        # recorded as gen_ai.* attributes; lc_versions is noise on every span.
        if type(key) is not str:
            key = str(key)
        if value is None or key.startswith("ls_") or key == "lc_versions":
            continue
        out[sc.LC_METADATA_PREFIX + key] = _scalar(value)
    return out


def run_name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any], fallback: str) -> str:
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    serialized = mapping(serialized)
    if serialized:
        value = serialized.get("name")
        if isinstance(value, str) and value:
            return value
        ident = serialized.get("id")
        if isinstance(ident, (list, tuple)) and ident:
            return str(ident[-1])
    return fallback


def conversation_id(metadata: Mapping[str, Any] | None) -> str | None:
    if not metadata or not _is_mapping(metadata):
        return None
    for key in ("thread_id", "session_id", "conversation_id"):
        value = metadata.get(key)
        if isinstance(value, (str, int)) and value != "":
            return str(value)
    return None


def documents_payload(documents: Sequence[Any]) -> list[dict]:
    out = []
    for doc in as_list(documents):
        out.append(
            {
                "id": _get(doc, "id"),
                "content": _get(doc, "page_content"),
                "metadata": _get(doc, "metadata") or {},
            }
        )
    return out


def as_list(value: Any) -> list[Any]:
    """A list of the items of `value`, whatever LangChain (or a buggy retriever) handed us."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (str, bytes, Mapping)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]
