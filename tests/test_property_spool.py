"""Property tests: the span codec is lossless for any attribute value, and the spool matches a
simple model through any sequence of appends, acknowledgements, restarts and torn writes."""

import math
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from spanchain.spool.codec import decode_spans, encode_spans
from spanchain.spool.log import Spool

scalars = st.one_of(
    st.text(),  # includes lone surrogates and NUL
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=64),
)
values = st.one_of(
    scalars,
    st.lists(st.text(max_size=8), max_size=4).map(tuple),
    st.lists(st.integers(-1000, 1000), max_size=4).map(tuple),
    st.lists(st.floats(allow_nan=True), max_size=4).map(tuple),
)


def _norm(v):
    if isinstance(v, float) and math.isnan(v):
        return ("nan",)
    if isinstance(v, tuple):
        return tuple(_norm(x) for x in v)
    return (type(v).__name__, v)


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(max_size=50),
    attrs=st.dictionaries(st.text(max_size=20), values, max_size=8),
    trace_id=st.integers(1, 2**128 - 1),
    span_id=st.integers(1, 2**64 - 1),
    start=st.integers(0, 2**63 - 1),
)
def test_codec_round_trips_any_attribute_value(name, attrs, trace_id, span_id, start):
    span = ReadableSpan(
        name=name,
        context=SpanContext(trace_id, span_id, False, TraceFlags(1)),
        attributes=attrs,
        start_time=start,
        end_time=start,
    )
    (back,) = decode_spans(encode_spans([span]))
    assert back.name == name and back.context == span.context and back.start_time == start
    assert {k: _norm(v) for k, v in back.attributes.items()} == {k: _norm(v) for k, v in attrs.items()}


ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.binary(min_size=0, max_size=300)),
        st.tuples(st.just("ack"), st.integers(0, 50)),
        st.tuples(st.just("reopen"), st.none()),
        st.tuples(st.just("tear"), st.integers(1, 40)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_spool_matches_a_model_through_restarts_and_torn_writes(program):
    with tempfile.TemporaryDirectory() as tmp:
        sp = Spool(tmp, segment_bytes=1024, max_bytes=1 << 20, fsync=False).open()
        model: dict[int, bytes] = {}
        for op, arg in program:
            if op == "append":
                model[sp.append(arg, 1)] = arg
            elif op == "ack" and model:
                seq = sorted(model)[arg % len(model)]
                sp.ack(seq)
                del model[seq]
            elif op == "reopen":
                sp.close()
                sp = Spool(tmp, segment_bytes=1024, max_bytes=1 << 20, fsync=False).open()
            elif op == "tear":
                # A crash in the middle of writing one more record: garbage after the last one.
                sp.close()
                segs = sorted(Path(sp.lane_dir).glob("seg-*.spool"))
                if segs:
                    with open(segs[-1], "ab") as f:
                        f.write(os.urandom(arg))
                sp = Spool(tmp, segment_bytes=1024, max_bytes=1 << 20, fsync=False).open()
            pending = sp.pending()
            assert [e.seq for e in pending] == sorted(model)
            assert [sp.read(e) for e in pending] == [model[s] for s in sorted(model)]
        sp.close()
