"""Property tests: arbitrary callback sequences and payloads against the handler, then the
finished spans through both exporters' translate functions.

Sequences include ends without starts, unknown and duplicate run ids, out-of-order events and
parents that ended first; payloads include huge, unicode (lone surrogates too), binary, NaN/inf
values and objects whose str()/repr() raise. Checked: no exception escapes a callback, every span
that started ends (at the latest when its TTL passes), span attributes are valid OTel values, and
what the translate functions would send to Aim and SageMaker obeys those backends' rules.
"""

import math
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faults.backend_rules import check_aim, check_sagemaker, valid_otel_value  # noqa: E402
from spanchain import OpenTelemetryCallbackHandler  # noqa: E402

RUN_IDS = [uuid.UUID(int=i + 1) for i in range(5)]
UNKNOWN = uuid.UUID(int=999)


class Nasty:
    """A payload whose every text conversion fails."""

    def __str__(self):
        raise RuntimeError("no str for you")

    __repr__ = __str__

    def __iter__(self):
        raise RuntimeError("no iteration either")


leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.just("x" * 200_000),  # huge
    st.just("\udc80\ud800 ☃ \x00"),  # surrogates, NUL
    st.builds(Nasty),
)
payload = st.recursive(
    leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), kids, max_size=4),
    ),
    max_leaves=12,
)
run_ref = st.one_of(st.sampled_from(RUN_IDS), st.just(UNKNOWN))
parent_ref = st.one_of(st.none(), st.sampled_from(RUN_IDS), st.just(UNKNOWN))
serialized = st.one_of(st.none(), st.dictionaries(st.sampled_from(["name", "id", "kwargs"]), payload, max_size=3))
names = st.one_of(st.none(), st.text(max_size=20), st.just(""), st.just("a.b/c d\n\t"))


def _messages(content):
    from langchain_core.messages import AIMessage, HumanMessage

    text = content if isinstance(content, str) else repr(type(content))
    return [[HumanMessage(content=text), AIMessage(content="ok")]]


def _llm_result(text, usage):
    from langchain_core.outputs import Generation, LLMResult

    return LLMResult(generations=[[Generation(text=text)]], llm_output={"token_usage": usage})


step = st.one_of(
    st.tuples(st.just("chain_start"), run_ref, parent_ref, serialized, payload, names),
    st.tuples(st.just("chain_end"), run_ref, payload),
    st.tuples(st.just("chain_error"), run_ref, st.text(max_size=20)),
    st.tuples(st.just("chat_start"), run_ref, parent_ref, serialized, st.text(max_size=50)),
    st.tuples(st.just("llm_start"), run_ref, parent_ref, serialized, st.lists(st.text(max_size=20), max_size=3)),
    st.tuples(st.just("token"), run_ref, st.text(max_size=5)),
    st.tuples(st.just("llm_end"), run_ref, st.text(max_size=20), payload),
    st.tuples(st.just("llm_end_garbage"), run_ref, payload),
    st.tuples(st.just("llm_error"), run_ref, st.text(max_size=20)),
    st.tuples(st.just("tool_start"), run_ref, parent_ref, serialized, st.text(max_size=30)),
    st.tuples(st.just("tool_end"), run_ref, payload),
    st.tuples(st.just("tool_error"), run_ref, st.text(max_size=20)),
    st.tuples(st.just("retriever_start"), run_ref, parent_ref, serialized, st.text(max_size=20)),
    st.tuples(st.just("retriever_end"), run_ref, payload),
    st.tuples(st.just("agent_action"), run_ref, payload),
    st.tuples(st.just("agent_finish"), run_ref, payload),
    st.tuples(st.just("retry"), run_ref, payload),
    st.tuples(st.just("text"), run_ref, st.text(max_size=20)),
    st.tuples(st.just("custom"), run_ref, st.text(max_size=10), payload),
)


def _apply(h, op):
    kind, run_id, *rest = op
    if kind == "chain_start":
        parent, ser, inputs, name = rest
        h.on_chain_start(ser, inputs, run_id=run_id, parent_run_id=parent, name=name, tags=["t", 3], metadata={"k": inputs})
    elif kind == "chain_end":
        h.on_chain_end(rest[0], run_id=run_id)
    elif kind == "chain_error":
        h.on_chain_error(ValueError(rest[0]), run_id=run_id)
    elif kind == "chat_start":
        parent, ser, text = rest
        h.on_chat_model_start(ser, _messages(text), run_id=run_id, parent_run_id=parent,
                              invocation_params={"model": text, "temperature": math.nan})
    elif kind == "llm_start":
        parent, ser, prompts = rest
        h.on_llm_start(ser, prompts, run_id=run_id, parent_run_id=parent, invocation_params={"max_tokens": 2**70})
    elif kind == "token":
        h.on_llm_new_token(rest[0], run_id=run_id)
    elif kind == "llm_end":
        text, usage = rest
        h.on_llm_end(_llm_result(text, usage), run_id=run_id)
    elif kind == "llm_end_garbage":
        h.on_llm_end(rest[0], run_id=run_id)
    elif kind == "llm_error":
        h.on_llm_error(RuntimeError(rest[0]), run_id=run_id)
    elif kind == "tool_start":
        parent, ser, text = rest
        h.on_tool_start(ser, text, run_id=run_id, parent_run_id=parent, inputs={"q": text})
    elif kind == "tool_end":
        h.on_tool_end(rest[0], run_id=run_id)
    elif kind == "tool_error":
        h.on_tool_error(KeyError(rest[0]), run_id=run_id)
    elif kind == "retriever_start":
        parent, ser, query = rest
        h.on_retriever_start(ser, query, run_id=run_id, parent_run_id=parent)
    elif kind == "retriever_end":
        h.on_retriever_end(rest[0], run_id=run_id)
    elif kind == "agent_action":
        h.on_agent_action(rest[0], run_id=run_id)
    elif kind == "agent_finish":
        h.on_agent_finish(rest[0], run_id=run_id)
    elif kind == "retry":
        h.on_retry(rest[0], run_id=run_id)
    elif kind == "text":
        h.on_text(rest[0], run_id=run_id)
    elif kind == "custom":
        h.on_custom_event(rest[0], rest[1], run_id=run_id)


class _Lifecycle(SpanProcessor):
    def __init__(self):
        self.started = set()
        self.ended = set()

    def on_start(self, span, parent_context=None):
        self.started.add(span.context.span_id)

    def on_end(self, span):
        self.ended.add(span.context.span_id)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(step, max_size=25))
def test_any_callback_sequence_is_safe_and_every_span_ends(program):
    mem = InMemorySpanExporter()
    life = _Lifecycle()
    tp = TracerProvider()
    tp.add_span_processor(life)
    tp.add_span_processor(SimpleSpanProcessor(mem))
    h = OpenTelemetryCallbackHandler(tracer_provider=tp, run_ttl_s=60)
    for op in program:
        _apply(h, op)  # must never raise
    # Time passes beyond the TTL: the registry ends whatever never got its end callback.
    real = h._registry._clock
    h._registry._clock = lambda: real() + 3600
    h.sweep()
    assert h.open_runs == 0
    assert life.started == life.ended
    assert not trace.get_current_span().get_span_context().is_valid
    spans = mem.get_finished_spans()
    for span in spans:
        assert isinstance(span.name, str)
        for key, value in span.attributes.items():
            assert isinstance(key, str) and valid_otel_value(value), (key, value)
    groups = {}
    from spanchain.export.traces import group_key

    for span in spans:
        groups.setdefault(group_key(span), []).append(span)
    from spanchain.content.redaction import default_redactor

    for group in groups.values():
        # What the exporter base hands to `_write`: redacted, valid unicode.
        group = [default_redactor().span(s) for s in group]
        check_sagemaker(group)
        check_aim(group)
