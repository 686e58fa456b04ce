"""Property tests: arbitrary finished spans, including ones no handler of ours would make (spans
from other instrumentations or received by `spanchain serve`), through both exporters' translate
functions. Whatever the names and attribute values, only valid names and values come out, and
nothing raises."""

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faults.backend_rules import check_aim, check_sagemaker  # noqa: E402
from spanchain import semconv as sc  # noqa: E402
from spanchain.content.redaction import default_redactor  # noqa: E402

# Every attribute name the exporters read, plus arbitrary ones.
KNOWN_KEYS = sorted(v for k, v in vars(sc).items() if k.isupper() and isinstance(v, str) and "." in v)
keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=30))
scalars = st.one_of(
    st.text(max_size=40),
    st.just("x" * 100_000),
    st.just("\udcff\ud800 ☃"),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
)
values = st.one_of(scalars, st.lists(st.text(max_size=10), max_size=4).map(tuple),
                   st.lists(st.floats(allow_nan=True), max_size=3).map(tuple))
attrs = st.dictionaries(keys, values, max_size=12)


@st.composite
def traces(draw):
    """1–6 spans in one trace, LangChain ids consistent or not, times in any order."""
    n = draw(st.integers(1, 6))
    trace_id = draw(st.integers(1, 2**128 - 1))
    spans = []
    for i in range(n):
        parent = SpanContext(trace_id, i, False) if i and draw(st.booleans()) else None
        a = draw(attrs)
        if draw(st.booleans()):
            a[sc.LC_RUN_ID] = f"run-{i}"
            a[sc.LC_ROOT_RUN_ID] = "run-0"
            if i:
                a[sc.LC_PARENT_RUN_ID] = f"run-{draw(st.integers(0, i - 1))}"
        start = draw(st.one_of(st.none(), st.integers(0, 2**63 - 1)))
        end = draw(st.one_of(st.none(), st.integers(0, 2**63 - 1)))
        status = draw(st.sampled_from([Status(StatusCode.UNSET), Status(StatusCode.OK),
                                       Status(StatusCode.ERROR, draw(st.text(max_size=3000)))]))
        events = [Event(draw(st.sampled_from([sc.EVENT_TEXT, sc.EVENT_AGENT_ACTION, sc.EVENT_AGENT_FINISH, "x"])),
                        draw(attrs), draw(st.integers(0, 2**62)))
                  for _ in range(draw(st.integers(0, 2)))]
        spans.append(ReadableSpan(
            name=draw(st.text(max_size=60)),
            context=SpanContext(trace_id, i + 1, False, TraceFlags(1)),
            parent=parent,
            attributes=a,
            events=events,
            status=status,
            start_time=start,
            end_time=end,
            resource=Resource({"service.name": draw(st.text(max_size=40))}),
        ))
    return spans


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(traces())
def test_any_spans_translate_to_valid_backend_records(spans):
    spans = [default_redactor().span(s) for s in spans]  # what the exporter base hands to _write
    check_sagemaker(spans)
    check_aim(spans)
