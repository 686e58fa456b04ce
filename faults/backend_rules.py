"""What Aim and SageMaker accept, as checks over what our translate functions would send them.

Shared by the property tests: the translate functions must only ever produce names and values
these rules allow (the emulator and Aim's local repo accept far more than the real services).
"""

import math
import re
import time

# botocore's ExperimentEntityName; BatchPutMetrics also wants the trial component lower-case.
ENTITY_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}$")

_VALID_SCALARS = (str, bool, int, float)


def valid_otel_value(v):
    if isinstance(v, _VALID_SCALARS):
        return True
    if isinstance(v, tuple):
        kinds = {type(x) for x in v}
        return len(kinds) <= 1 and all(isinstance(x, _VALID_SCALARS) for x in v)
    return False


def _utf8(text):
    text.encode("utf-8")  # Aim stores text as UTF-8, botocore sends JSON: both need this
    return True


def check_sagemaker(spans):
    from spanchain_sagemaker import sanitize as N
    from spanchain_sagemaker.translate import ParameterSet, metric_batches, trace_facts, trace_metrics

    facts = trace_facts(spans)
    assert len(facts.error_message) <= N.MAX_STATUS_MESSAGE
    points = trace_metrics(spans, step=7)
    for batch in metric_batches(points, now_s=time.time()):
        assert 1 <= len(batch) <= N.MAX_METRICS_PER_BATCH
        for m in batch:
            assert 1 <= len(m["MetricName"]) <= N.MAX_METRIC_NAME and _utf8(m["MetricName"])
            assert isinstance(m["Value"], float) and math.isfinite(m["Value"])
            assert isinstance(m["Step"], int) and m["Step"] >= 0
    params = ParameterSet({"fixed": "x"})
    params.add_trace(spans)
    api = params.to_api()
    assert len(api) <= N.MAX_PARAMETERS
    for key, value in api.items():
        assert 1 <= len(key) <= N.MAX_PARAMETER_KEY and _utf8(key)
        if "StringValue" in value:
            assert len(value["StringValue"]) <= N.MAX_PARAMETER_STRING and _utf8(value["StringValue"])
        else:
            assert math.isfinite(value["NumberValue"])
    run = N.entity_name_part(facts.root_name)
    component = N.trial_component_name(N.entity_name_part("experiment"), run)
    assert ENTITY_NAME.match(run) and ENTITY_NAME.match(component) and component == component.lower()
    assert ENTITY_NAME.match(N.display_name(facts.root_name))


def _aim_value_ok(v, depth=0):
    if v is None or isinstance(v, (bool, int, float, bytes)):
        return True
    if isinstance(v, str):
        return _utf8(v)
    if isinstance(v, (list, tuple)):
        return all(_aim_value_ok(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _utf8(k) and _aim_value_ok(x, depth + 1) for k, x in v.items())
    return False


def check_aim(spans):
    import json

    from spanchain_aim.figure import plotly_figure

    from spanchain_aim.translate import (TEXT_SEQUENCES, TRACE_FIGURE, FigureRecord, MetricRecord, TextRecord,
                                         run_params, trace_params, trace_records)

    for rec in trace_records(spans, counters=True):
        assert isinstance(rec.order, int) and rec.order >= 0  # the writer numbers points in this order
        assert all(isinstance(k, str) and isinstance(v, str) and _utf8(v) for k, v in rec.context.items())
        if isinstance(rec, TextRecord):
            assert rec.name in TEXT_SEQUENCES and isinstance(rec.text, str) and _utf8(rec.text)
        elif isinstance(rec, FigureRecord):
            (bars,) = json.loads(plotly_figure(*rec.figure).to_json())["data"]  # as aim.Figure stores it
            assert rec.name == TRACE_FIGURE and len(bars["x"]) == len(spans)
        else:
            assert isinstance(rec, MetricRecord) and isinstance(rec.value, float) and _utf8(rec.name)
            assert math.isfinite(rec.value)
    assert _aim_value_ok(run_params(spans)) and _aim_value_ok(trace_params(spans))
