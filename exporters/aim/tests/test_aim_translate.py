"""Translate, render, sanitize and config: pure functions, no Aim involved."""

import json
import math

import pytest

from spanchain import semconv as sc
from spanchain_aim import render, translate as tr
from spanchain_aim.config import experiment_for, resolve_config
from spanchain_aim.sanitize import clean_text, looks_secret, param_value, scrub_url_credentials
from testkit.spans import agent_spans
from spanchain_aim.sysparams import safe_environment


def _by_name(records, name):
    return [r for r in records if r.name == name]


def test_model_span_becomes_rendered_texts_and_token_metrics():
    spans = agent_spans(1)
    llm = next(s for s in spans if s.attributes.get(sc.GEN_AI_INPUT_MESSAGES))
    records = tr.span_records(llm)
    ctx = {"run_type": "chat_model", "name": "FakeChat", "model": "fake-gpt"}
    (inp,) = _by_name(records, tr.LLM_INPUT)
    assert (inp.text, dict(inp.context), inp.order) == ("[user] What is 0 + 2?", ctx, llm.start_time)
    (out,) = _by_name(records, tr.LLM_OUTPUT)
    assert out.text == ('[assistant] → tool call calculator [call_0]: {"expression": "0 + 2"}\n'
                        "  (finish: tool_calls)")
    values = {r.name: r.value for r in records if isinstance(r, tr.MetricRecord)}
    assert values[tr.TOKENS_INPUT] == 12 and values[tr.TOKENS_OUTPUT] == 7 and values[tr.TOKENS_TOTAL] == 19
    assert values[tr.TIME_TO_FIRST_CHUNK] == 0.05 and values[tr.TOOL_CALLS] == 1
    assert values[tr.LATENCY] == pytest.approx((llm.end_time - llm.start_time) / 1e9)
    (action,) = _by_name(records, tr.AGENT_ACTION)
    assert action.context["tool"] == "calculator" and action.order == llm.events[0].timestamp


def test_translation_is_deterministic_so_retries_rewrite_the_same_points():
    spans = agent_spans(1)
    first = [r for s in spans for r in tr.span_records(s)] + tr.trace_records(spans, figure=False)
    again = [r for s in spans for r in tr.span_records(s)] + tr.trace_records(spans, figure=False)
    assert first == again
    def owners_per_sequence(records):
        out = {}
        for r in tr.in_step_order(records):
            out.setdefault((r.name, tuple(sorted(r.context.items()))), []).append(r.owner)
        return out

    assert owners_per_sequence(first) == owners_per_sequence(reversed(again))


def test_no_content_attributes_means_no_content_texts():
    spans = agent_spans(1, content=False)
    names = {r.name for s in spans for r in tr.span_records(s)}
    assert not names & {tr.LLM_INPUT, tr.LLM_OUTPUT, tr.CHAIN_INPUT, tr.CHAIN_OUTPUT, tr.TOOL_INPUT,
                        tr.TOOL_OUTPUT, tr.RETRIEVER_QUERY, tr.RETRIEVER_DOCUMENTS}
    assert tr.LATENCY in names and tr.TOKENS_TOTAL in names


def test_error_span_gives_error_text_and_metric():
    spans = agent_spans(1, fail_tool=True)
    tool = next(s for s in spans if s.attributes.get(sc.LC_RUN_TYPE) == "tool")
    records = tr.span_records(tool)
    (err,) = _by_name(records, tr.ERROR)
    assert err.text.startswith("ZeroDivisionError: division by zero") and "Traceback" in err.text
    assert [r.value for r in _by_name(records, tr.ERRORS)] == [1.0]
    trace = {r.name: r for r in tr.trace_records(spans, counters=True)}
    assert trace[tr.TRACE_ERRORS].value == 1.0 and trace["counter.errors"].value == 1.0
    assert not any(r.name.startswith(tr.COUNTER_PREFIX) for r in tr.trace_records(spans))


def test_trace_records_hold_tree_tokens_and_seed_counters():
    spans = agent_spans(1)
    records = {r.name: r for r in tr.trace_records(spans, counters=True)}
    tree = records[tr.TRACE].text.splitlines()
    assert tree[0].startswith("invoke_agent calc_agent  [chain]")
    assert tree[1].startswith("├─ chat fake-gpt  [chat_model]") and "tokens 12→7" in tree[1]
    assert records[tr.TRACE_TOKENS_TOTAL].value == 12 + 7 + 30 + 5
    assert records["counter.llm_starts"].value == 2 and records["counter.tool_ends"].value == 1
    assert records["counter.llm_streams"].value == 3
    assert all(dict(r.context) == {"name": "calc_agent"} for r in records.values())


def test_params_collect_models_request_parameters_and_names():
    spans = agent_spans(1)
    params = tr.run_params(spans)
    assert params["models"]["fake-gpt"]["temperature"] == 0.2
    assert params["models"]["fake-gpt"]["max_tokens"] == 256
    assert params["langchain"] == {"agents": ["calc_agent"], "retrievers": ["docs"], "tools": ["calculator"]}
    assert params["service"]["name"] == "synthetic-app"
    assert tr.trace_params(spans)["trace"]["root_name"] == "calc_agent"


def test_merge_params_is_idempotent_and_accumulates():
    current = {}
    changed = tr.merge_params(current, {"langchain": {"tools": ["a"]}, "models": {"m": {"t": 1}}})
    current.update(changed)
    assert tr.merge_params(current, {"langchain": {"tools": ["a"]}}) == {}
    more = tr.merge_params(current, {"langchain": {"tools": ["b"]}})
    assert more == {"langchain": {"tools": ["a", "b"]}}


def test_render_handles_foreign_and_broken_payloads():
    assert render.render_messages("not json") == "not json"
    assert render.render_messages(json.dumps([{"role": "user", "content": "hi"}])) == "[user] hi"
    two = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "line 1\nline 2"}]
    assert render.render_messages(json.dumps(two)) == "[system] be brief\n[user] line 1\n  line 2"
    assert render.render_payload(json.dumps({"question": "q", "n": 2})) == "question: q\nn: 2"
    assert render.render_payload(json.dumps("plain")) == "plain"
    assert render.render_documents(json.dumps([{"content": "x"}])) == "[1]\nx"


def test_secret_names_and_values_never_reach_params():
    for name in ("OPENAI_API_KEY", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD", "DB_PASSWD",
                 "GOOGLE_APPLICATION_CREDENTIALS", "openaiApiKey", "access_token", "SENTRY_DSN"):
        assert looks_secret(name), name
    for name in ("max_tokens", "temperature", "HOME", "PATH", "model_name"):
        assert not looks_secret(name), name
    env = safe_environment({"HOME": "/root", "MY_API_KEY": "sk-1", "DB_URL": "postgres://u:pw@h/db"})
    assert env == {"DB_URL": "postgres://<redacted>@h/db", "HOME": "/root"}
    assert param_value({"openai_api_key": "sk-1", "max_tokens": 5}) == {"openai_api_key": "<redacted>",
                                                                         "max_tokens": 5}
    assert scrub_url_credentials("see redis://a:pw@host/0") == "see redis://<redacted>@host/0"


def test_odd_values_become_storable():
    import datetime

    value = param_value({"when": datetime.date(2024, 1, 2), "nan": math.nan, "big": 2**70, "obj": object(),
                         "deep": [[[[[[[["x"]]]]]]]]})
    assert value["when"] == "2024-01-02" and value["nan"] == "nan" and value["big"] == str(2**70)
    assert value["obj"].startswith("<object object")
    text = clean_text("a\x00b" + "x" * 5000, 1000)
    assert text.startswith("ab") and len(text) == 1000 and "cut by spanchain" in text


def test_config_order_argument_then_env_then_default():
    env = {"OTEL_EXPORTER_AIM_REPO": "/env/repo", "OTEL_EXPORTER_AIM_RUN_PER": "trace",
           "OTEL_SERVICE_NAME": "shop"}
    cfg = resolve_config(env=env)
    assert (cfg.repo, cfg.run_per, cfg.experiment) == ("/env/repo", "trace", "shop")
    cfg = resolve_config("/arg", "exp", "session", env=env)
    assert (cfg.repo, cfg.run_per, cfg.experiment) == ("/arg", "session", "exp")
    cfg = resolve_config(env={})
    assert (cfg.repo, cfg.run_per, cfg.experiment, cfg.system_tracking_interval, cfg.log_system_params) == (
        ".", "session", None, None, False)
    assert experiment_for(cfg, "unknown_service:python") == "langchain"
    assert experiment_for(cfg, "svc") == "svc"
    # A typo in the environment falls back to the default; a bad argument is a programming error.
    assert resolve_config(env={"OTEL_EXPORTER_AIM_RUN_PER": "weekly"}).run_per == "session"
    with pytest.raises(ValueError):
        resolve_config(run_per="weekly", env={})



def test_timeouts_are_seconds_as_arguments_and_milliseconds_in_the_environment():
    """Like OpenTelemetry's OTEL_EXPORTER_*_TIMEOUT variables (and the SageMaker exporter's)."""
    env = {"OTEL_EXPORTER_AIM_TIMEOUT": "2500", "OTEL_EXPORTER_AIM_REMOTE_WRITE_TIMEOUT": "7000"}
    cfg = resolve_config(env=env)
    assert (cfg.shutdown_timeout_s, cfg.remote_write_timeout_s) == (2.5, 7.0)
    cfg = resolve_config(shutdown_timeout_s=4, remote_write_timeout_s=9, env=env)
    assert (cfg.shutdown_timeout_s, cfg.remote_write_timeout_s) == (4.0, 9.0)
    cfg = resolve_config(env={"OTEL_EXPORTER_AIM_TIMEOUT": "soon"})
    assert (cfg.shutdown_timeout_s, cfg.remote_write_timeout_s) == (10.0, 30.0)


def test_building_the_exporter_does_not_import_aim():
    import subprocess
    import sys

    code = ("import sys; from spanchain_aim import AimSpanExporter; e = AimSpanExporter(repo='unused'); "
            "from spanchain_aim.translate import span_records; "
            "print('aim' in sys.modules); e.shutdown()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


from hypothesis import given, settings, strategies as st  # noqa: E402

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(payload=st.one_of(st.text(max_size=200), _json_values.map(json.dumps)))
def test_renderers_never_raise_and_always_return_text(payload):
    for fn in (render.render_messages, render.render_payload, render.render_documents,
               render.render_instructions):
        assert isinstance(fn(payload), str)
    assert render.count_tool_calls(payload) >= 0


@settings(max_examples=150, deadline=None)
@given(value=_json_values | st.binary(max_size=20) | st.sets(st.integers(), max_size=5))
def test_param_values_are_always_storable(value):
    def storable(v, depth=0):
        assert depth < 20
        if isinstance(v, dict):
            return all(isinstance(k, str) and storable(x, depth + 1) for k, x in v.items())
        if isinstance(v, list):
            return all(storable(x, depth + 1) for x in v)
        if isinstance(v, int) and not isinstance(v, bool):
            return -(2**63) <= v < 2**63
        if isinstance(v, float):
            return math.isfinite(v)
        return v is None or isinstance(v, (bool, str))

    assert storable(param_value(value))


def test_dense_steps_number_each_sequence_and_keep_an_owners_step():
    from spanchain_aim.steps import DenseSteps

    steps = DenseSteps(max_traces=2)
    first = steps.for_trace("t1")
    assert [first.step("latency", o) for o in ("a", "b", "a")] == [0, 1, 0]
    assert steps.for_trace("t2").step("latency", "c") == 2  # the next trace goes on from there
    assert steps.for_trace("t2").step("tokens", "c") == 0  # every sequence counts on its own
    assert steps.for_trace("t1").step("latency", "b") == 1  # a rewrite lands where it landed
    assert steps.length("latency") == 3


def test_trace_figure_is_a_waterfall_with_one_bar_per_span():
    spans = agent_spans(1, fail_tool=True)
    (record,) = [r for r in tr.trace_records(spans) if isinstance(r, tr.FigureRecord)]
    from spanchain_aim.figure import plotly_figure

    figure = json.loads(plotly_figure(*record.figure).to_json())  # what aim.Figure stores
    (bars,) = figure["data"]
    assert bars["type"] == "bar" and bars["orientation"] == "h" and len(bars["x"]) == len(spans)
    ticks = figure["layout"]["yaxis"]["ticktext"]
    assert ticks[0] == "invoke_agent calc_agent" and ticks[1].endswith("└ chat fake-gpt")
    failed = [i for i, label in enumerate(bars["text"]) if "ERROR" in label]
    assert len(failed) == 1 and bars["marker"]["color"][failed[0]] == "#e45756"
    assert "tokens: 12 in → 7 out" in bars["hovertext"][1]
    assert "1 error" in figure["layout"]["title"]["text"]
    assert not [r for r in tr.trace_records(spans, figure=False) if isinstance(r, tr.FigureRecord)]


def test_run_names_say_experiment_root_and_start():
    spans = agent_spans(1)
    name = tr.trace_run_name("support-bot", spans)
    assert name.startswith("support-bot · calc_agent · 20") and name.endswith(" UTC")
    assert tr.session_run_name("svc", 0).startswith("svc · session · ")
    assert "5 spans" in tr.trace_run_description(spans)
