"""`spanchain bench core --split`: where a handler's time goes, measured inside the app's runs.

The main table says how much an app slows down; this says why. The floor handler and spanchain
run the same workloads, interleaved, with timers around each handler's callbacks, around the
OpenTelemetry SDK calls made from them (start_span, end, set_attributes, add_event, ...) and
around spanchain's content work (converting payloads such as messages, rendering them to text). Time inside the SDK is what any bridge pays for the spans
it makes; the floor handler pays almost nothing else, so "spanchain's SDK time / the floor's
callback time" is the least spanchain could cost relative to the floor while keeping its spans
and attributes, whatever its own code did.

Timers add their own cost (about a tenth of a microsecond each), wall time is used because the
split is within one thread, and the garbage collector is paused while timing (a collection would
land in whichever callback happened to allocate): read the figures as shares, the main table
for overheads.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import gc
import random
import time
from collections import Counter
from contextlib import ExitStack
from typing import Any, Callable, Sequence

_CALLBACKS = (
    "on_chain_start", "on_chain_end", "on_chain_error",
    "on_chat_model_start", "on_llm_start", "on_llm_new_token", "on_llm_end", "on_llm_error",
    "on_tool_start", "on_tool_end", "on_tool_error",
    "on_retriever_start", "on_retriever_end", "on_retriever_error",
)


# Turning LangChain payloads (generations, prompts, documents) into what content attributes hold,
# before rendering (a chat model's messages are converted inside the policy's render, timed as
# content already); `response_attributes` also reads usage and finish reasons, a small part.
_PAYLOAD_CONVERSIONS = (
    ("spanchain.bridge.attributes", "response_attributes"),
    ("spanchain.bridge.attributes", "documents_payload"),
    ("spanchain.bridge.handler", "prompt_messages"),
)


class _Meter:
    """Nanoseconds per (handler, part); only the outermost timed call of a part counts."""

    def __init__(self) -> None:
        self.ns: Counter = Counter()
        self.handler = ""
        self._depth: Counter = Counter()

    def timed(self, part: str, fn: Callable) -> Callable:
        meter = self

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if meter._depth[part] or not meter.handler:
                return fn(*args, **kwargs)  # nested (record_exception -> add_event) or untimed
            meter._depth[part] += 1
            started = time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                meter.ns[(meter.handler, part)] += time.perf_counter_ns() - started
                meter._depth[part] -= 1

        return wrapper

    def callbacks(self, handler: Any, label: str) -> None:
        """Time every callback of `handler` (instance attributes shadow its methods)."""
        meter = self
        for name in _CALLBACKS:
            method = getattr(handler, name, None)
            if method is None:
                continue

            def wrapper(*args: Any, __method: Callable = method, **kwargs: Any) -> Any:
                meter.handler = label
                started = time.perf_counter_ns()
                try:
                    return __method(*args, **kwargs)
                finally:
                    meter.ns[(label, "callbacks")] += time.perf_counter_ns() - started
                    meter.handler = ""

            setattr(handler, name, wrapper)


def _patch(stack: ExitStack, owner: Any, name: str, meter: _Meter, part: str) -> None:
    original = owner.__dict__[name]
    setattr(owner, name, meter.timed(part, original))
    stack.callback(setattr, owner, name, original)


def measure(workloads: Sequence[Any], provider: Any, invocations: int, seed: int = 1) -> list[dict]:
    """Per workload: µs per invocation in the floor's callbacks, and in spanchain's split into
    SDK calls, content rendering and the rest (its own code)."""
    from opentelemetry.sdk import trace as sdk

    from benchmarks.core import _floor_handler
    from spanchain.content.policy import ContentPolicy
    from spanchain.bridge.handler import OpenTelemetryCallbackHandler

    meter = _Meter()
    rows = []
    rng = random.Random(seed)
    loop = asyncio.new_event_loop()
    try:
        with ExitStack() as stack:
            _patch(stack, sdk.Tracer, "start_span", meter, "sdk")
            for name in ("end", "set_attributes", "set_attribute", "add_event", "record_exception", "set_status", "update_name"):
                _patch(stack, sdk.Span, name, meter, "sdk")
            _patch(stack, ContentPolicy, "render", meter, "content")
            for module, name in _PAYLOAD_CONVERSIONS:
                _patch(stack, importlib.import_module(module), name, meter, "content")
            for w in workloads:
                floor = _floor_handler(provider)
                ours = OpenTelemetryCallbackHandler(tracer_provider=provider)
                meter.callbacks(floor, "floor")
                meter.callbacks(ours, "spanchain")
                configs = [("floor", {"callbacks": [floor]}), ("spanchain", {"callbacks": [ours]})]
                for _ in range(3):  # warm up, untimed
                    for _, config in configs:
                        _run(w, config, loop)
                meter.ns.clear()
                gc.collect()
                gc.disable()  # a collection lands in whichever callback allocates at that moment
                try:
                    for _ in range(invocations):
                        rng.shuffle(configs)
                        for _, config in configs:
                            _run(w, config, loop)
                finally:
                    gc.enable()
                us = {key: ns / invocations / 1000 for key, ns in meter.ns.items()}
                total = us.get(("spanchain", "callbacks"), 0.0)
                sdk_us = us.get(("spanchain", "sdk"), 0.0)
                content = us.get(("spanchain", "content"), 0.0)
                floor_total = us.get(("floor", "callbacks"), 0.0)
                rows.append(
                    {
                        "workload": w.key,
                        "invocations": invocations,
                        "floor_callbacks_us": round(floor_total, 1),
                        "floor_sdk_us": round(us.get(("floor", "sdk"), 0.0), 1),
                        "spanchain_callbacks_us": round(total, 1),
                        "spanchain_sdk_us": round(sdk_us, 1),
                        "spanchain_content_us": round(content, 1),
                        "spanchain_own_us": round(total - sdk_us - content, 1),
                        "sdk_only_ratio": round(sdk_us / floor_total, 2) if floor_total else float("nan"),
                    }
                )
    finally:
        loop.close()
    return rows


def _run(workload: Any, config: dict, loop: asyncio.AbstractEventLoop) -> None:
    if workload.is_async:
        loop.run_until_complete(workload.run(config))
    else:
        workload.run(config)


def format_split(rows: Sequence[dict]) -> str:
    lines = [
        "where the time goes (--split): wall µs per invocation inside the handlers' callbacks, timers on,",
        "variants interleaved; spanchain's time = SDK calls + content (payload conversion, rendering) + its own code",
        f"  {'workload':<11}{'floor (of it SDK)':>20}{'spanchain':>11}{'= SDK':>9}{'+ content':>11}{'+ own':>8}"
        f"{'SDK alone / floor':>19}",
    ]
    for r in rows:
        floor = f"{r['floor_callbacks_us']:.1f} ({r['floor_sdk_us']:.1f})"
        lines.append(
            f"  {r['workload']:<11}{floor:>20}{r['spanchain_callbacks_us']:>11.1f}{r['spanchain_sdk_us']:>9.1f}"
            f"{r['spanchain_content_us']:>11.1f}{r['spanchain_own_us']:>8.1f}{r['sdk_only_ratio']:>18.2f}x"
        )
    lines.append(
        "SDK alone / floor: spanchain's SDK calls (its spans, attributes and events, nothing else) over the floor "
        "handler's whole callback time: the least spanchain could cost relative to the floor with the same spans."
    )
    return "\n".join(lines)
