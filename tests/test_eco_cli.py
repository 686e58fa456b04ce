"""The `spanchain` command: help, run, view (files and a live OTLP stream)."""

import json
import signal
import subprocess
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from spanchain import semconv as sc
from spanchain.export.traces import span_to_dict, trace_to_json

from eco_support import free_port, make_spans, python_env, spanchain_cmd, wait_for_port


def run(*args, **kw):
    return subprocess.run(spanchain_cmd(*args), env=python_env(), capture_output=True, text=True, timeout=60, **kw)


def test_help_lists_every_command():
    proc = run("--help")
    assert proc.returncode == 0
    for command in ("run", "serve", "view", "demo", "bench"):
        assert f"    {command} " in proc.stdout
    serve_help = run("serve", "--help").stdout
    for option in ("--exporters", "--token", "--max-request-bytes", "--max-decompressed-bytes", "--queue-spans"):
        assert option in serve_help


def test_run_without_a_command_and_with_a_missing_one():
    proc = run("run")
    assert proc.returncode == 2 and "nothing to run" in proc.stderr
    proc = run("run", "--", "no-such-program-xyz")
    assert proc.returncode == 127 and "cannot run 'no-such-program-xyz'" in proc.stderr


def test_run_passes_exit_code_and_options_as_otel_variables():
    code = "import os, sys; print(os.environ['OTEL_TRACES_EXPORTER'], os.environ['OTEL_SERVICE_NAME']); sys.exit(7)"
    proc = run("run", "--exporters", "none", "--console", "--service-name", "shop", "--", sys.executable, "-c", code)
    assert proc.returncode == 7
    assert proc.stdout.split() == ["spanchain_console", "shop"]


def _llm_spans():
    return make_spans(
        [
            ("answer", {sc.LC_RUN_ID: "r0", sc.LC_RUN_TYPE: "chain", sc.LC_DESCENDANTS: 1}, None),
            ("chat m", {sc.LC_RUN_ID: "r1", sc.LC_PARENT_RUN_ID: "r0", sc.LC_ROOT_RUN_ID: "r0",
                        sc.LC_RUN_TYPE: "chat_model", sc.GEN_AI_USAGE_INPUT_TOKENS: 5,
                        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 2}, 0),
        ]
    )


def test_view_reads_span_lines_trace_documents_and_otlp_json(tmp_path):
    from google.protobuf import json_format
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    lines = tmp_path / "spans.jsonl"
    lines.write_text("\n".join(json.dumps(span_to_dict(s)) for s in _llm_spans()) + "\n")
    doc = tmp_path / "trace.json"
    doc.write_text(trace_to_json(_llm_spans()))
    otlp_json = json_format.MessageToDict(encode_spans(_llm_spans()))
    for rs in otlp_json["resourceSpans"]:  # OTLP/JSON ids are hex
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                import base64

                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    otlp = tmp_path / "otlp.json"
    otlp.write_text(json.dumps(otlp_json))
    proc = run("view", str(lines), str(doc), str(otlp))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("── trace ") == 3
    assert proc.stdout.count("└─ chat m  [chat_model]") == 3 and "tokens 5→2" in proc.stdout
    assert "6 spans in 3 traces" in proc.stderr
    as_json = run("view", "--format", "json", str(lines))
    assert json.loads(as_json.stdout)["summary"]["input_tokens"] == 5


def test_view_rejects_what_it_cannot_read(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    proc = run("view", str(bad))
    assert proc.returncode == 2 and "not an OTLP export request" in proc.stderr
    proc = run("view", str(tmp_path / "missing.json"))
    assert proc.returncode == 2 and "cannot read" in proc.stderr


def test_view_listen_prints_trees_from_an_otlp_stream():
    port = free_port()
    proc = subprocess.Popen(spanchain_cmd("view", "--listen", str(port)), env=python_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_port(port, 20)
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")
        assert exporter.export(_llm_spans()) == SpanExportResult.SUCCESS
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "answer  [chain]" in out and "└─ chat m  [chat_model]" in out


def test_run_keeps_an_existing_sitecustomize_working(tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import os\nos.environ['USER_SITECUSTOMIZE_RAN'] = 'yes'\n")
    code = ("import os, sys, spanchain.config.configure as c; "
            "print(os.environ.get('USER_SITECUSTOMIZE_RAN'), c.current_setup() is not None, sorted(c.current_setup().exporters))")
    env = python_env(OTEL_TRACES_EXPORTER="spanchain_console")
    env["PYTHONPATH"] = str(tmp_path) + ":" + env["PYTHONPATH"]
    proc = subprocess.run(spanchain_cmd("run", "--", sys.executable, "-c", code), env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["yes", "True", "['spanchain_console']"]


def test_view_reads_the_sdk_console_exporters_output_mixed_with_app_output(tmp_path):
    from eco_support import EXAMPLE_APP

    proc = subprocess.run(spanchain_cmd("run", "--", sys.executable, str(EXAMPLE_APP)),
                          env=python_env(OTEL_TRACES_EXPORTER="console"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    captured = tmp_path / "stdout.txt"
    captured.write_text(proc.stdout)  # the app's own prints, then pretty-printed spans
    view = run("view", str(captured))
    assert view.returncode == 0, view.stderr
    assert view.stdout.count("── trace ") == 5 and "21 spans in 5 traces" in view.stderr
    assert "└─ StrOutputParser  [parser]" in view.stdout and "tokens 12→7" in view.stdout
    assert "ERROR" in view.stdout


def test_serve_options_come_from_arguments_then_environment_then_defaults(monkeypatch):
    from spanchain.cli.commands import _build_parser
    from spanchain.serve.app import options_from

    parse = lambda *a: options_from(_build_parser().parse_args(["serve", *a]))  # noqa: E731
    defaults = parse()
    assert (defaults.host, defaults.port, defaults.max_connections, defaults.bearer_token) == ("127.0.0.1", 4318, 64, None)
    monkeypatch.setenv("SPANCHAIN_SERVE_PORT", "9999")
    monkeypatch.setenv("SPANCHAIN_SERVE_MAX_CONNECTIONS", "8")
    monkeypatch.setenv("SPANCHAIN_SERVE_TOKEN", "from-env")
    env = parse()
    assert (env.port, env.max_connections, env.bearer_token) == (9999, 8, "from-env")
    args = parse("--port", "7777", "--max-connections", "2", "--token", "from-arg")
    assert (args.port, args.max_connections, args.bearer_token) == (7777, 2, "from-arg")


def test_view_reads_trace_documents_with_one_resource_and_json_values(tmp_path):
    """Trace documents hold the resource once and inputs/outputs as JSON values; `view` reads them."""
    import json as _json

    from spanchain.cli.view import load_spans

    spans = _llm_spans()
    text = trace_to_json(spans)
    doc = _json.loads(text)
    assert "resource" in doc and all("resource" not in s for s in doc["spans"])
    loaded = load_spans([text])
    assert len(loaded) == len(spans)
    assert {tuple(sorted(s.resource.attributes.items())) for s in loaded} == {
        tuple(sorted(spans[0].resource.attributes.items()))
    }
    for original, back in zip(sorted(spans, key=lambda s: s.context.span_id), sorted(loaded, key=lambda s: s.context.span_id)):
        for key, value in (original.attributes or {}).items():
            if isinstance(value, str) and value[:1] in "[{":
                assert _json.loads(back.attributes[key]) == _json.loads(value)
