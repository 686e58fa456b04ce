"""A new user's first hour: typos in exporter names, where the data went, an OTLP endpoint
that is not there, and the console tree. Each runs the real command in a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from spanchain.cli.commands import BOOTSTRAP_DIR

from eco_support import EXAMPLE_APP, free_port, python_env, spanchain_cmd

APP = "print('APP RAN')"


def _run(*args, timeout=120, **env):
    return subprocess.run(list(args), env=python_env(**env), capture_output=True, text=True, timeout=timeout)


# --- exporter names are checked before the app starts ----------------------------------------


def test_run_refuses_an_unknown_exporter_before_the_app_starts():
    proc = _run(*spanchain_cmd("run", "--exporters", "aimm", "--", sys.executable, "-c", APP))
    assert proc.returncode == 2, proc.stderr
    assert "APP RAN" not in proc.stdout
    assert "unknown exporter 'aimm'" in proc.stderr and "did you mean 'aim'" in proc.stderr
    installed = re.search(r"installed: (.*)", proc.stderr).group(1)
    for name in ("aim", "sagemaker", "otlp", "console", "spanchain_console", "none"):
        assert re.search(rf"\b{name}\b", installed), installed
    # the same check for the variable
    proc = _run(*spanchain_cmd("run", "--", sys.executable, "-c", APP), OTEL_TRACES_EXPORTER="aim,consol")
    assert proc.returncode == 2 and "APP RAN" not in proc.stdout
    assert "OTEL_TRACES_EXPORTER" in proc.stderr and "did you mean 'console'" in proc.stderr


def test_zero_code_keeps_the_valid_exporters_when_one_name_is_wrong(tmp_path):
    """Inside the app (opentelemetry-instrument, or a sitecustomize already on the path) there is
    no parent to refuse: the valid exporters keep working and one error names the typo."""
    trees = tmp_path / "trees.txt"
    proc = _run(sys.executable, str(EXAMPLE_APP), PYTHONPATH=BOOTSTRAP_DIR,
                OTEL_TRACES_EXPORTER="spanchain_console,consol", SPANCHAIN_CONSOLE_OUTPUT=str(trees),
                SPANCHAIN_SUMMARY="false")
    assert proc.returncode == 0, proc.stderr
    assert "tracing is OFF" not in proc.stderr
    assert proc.stderr.count("did you mean 'console'") == 1
    assert "tracing continues with spanchain_console" in proc.stderr
    assert trees.read_text().count("invoke_workflow answer_question  9 spans") == 2  # both chains


def test_configure_names_the_typo_and_suggests():
    from opentelemetry.sdk.trace import TracerProvider

    import spanchain
    from spanchain.config.configure import ConfigError

    with pytest.raises(ConfigError) as err:
        spanchain.configure("consol", tracer_provider=TracerProvider(), instrument=False)
    assert "did you mean 'console'" in str(err.value) and "otlp" in str(err.value)


# --- where the data went ----------------------------------------------------------------------


def test_run_ends_with_where_the_data_went(tmp_path):
    repo = tmp_path / "aim"
    proc = _run(*spanchain_cmd("run", "--exporters", "aim", "--", sys.executable, str(EXAMPLE_APP)),
                OTEL_EXPORTER_AIM_REPO=str(repo))
    assert proc.returncode == 0, proc.stderr
    assert "tool failed as expected" in proc.stdout and "spanchain:" not in proc.stdout
    text = proc.stderr
    assert "spanchain: where the spans went" in text
    line = next(l for l in text.splitlines() if l.strip().startswith("aim "))
    assert "written 21" in line and "dropped 0" in line and "waiting 0" in line
    assert f"aim up --repo {repo}" in text
    hashes = re.search(r"runs? ([0-9a-f]{24}(?:, [0-9a-f]{24})*)", text).group(1).split(", ")
    from spanchain_aim.readback import read_runs

    assert {r.hash for r in read_runs(str(repo))} == set(hashes)
    assert len(text.strip().splitlines()) <= 6, text  # short


def test_summary_can_be_turned_off(tmp_path):
    proc = _run(*spanchain_cmd("run", "--exporters", "spanchain_console", "--", sys.executable, str(EXAMPLE_APP)),
                SPANCHAIN_SUMMARY="false", SPANCHAIN_CONSOLE_OUTPUT=str(tmp_path / "t.txt"))
    assert proc.returncode == 0 and "where the spans went" not in proc.stderr


def test_configure_in_code_prints_the_summary_at_exit(tmp_path):
    code = (
        "import runpy, spanchain; spanchain.configure('spanchain_console');"
        f"runpy.run_path({str(EXAMPLE_APP)!r}, run_name='__main__')"
    )
    proc = _run(sys.executable, "-c", code, SPANCHAIN_CONSOLE_OUTPUT=str(tmp_path / "t.txt"))
    assert proc.returncode == 0, proc.stderr
    assert "where the spans went" in proc.stderr and "written 21" in proc.stderr


def test_unreachable_otlp_endpoint_is_one_warning_and_does_not_slow_the_app():
    port = free_port()
    started = time.monotonic()
    proc = _run(*spanchain_cmd("run", "--exporters", "otlp", "--", sys.executable, str(EXAMPLE_APP)),
                OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}")
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    text = proc.stderr
    assert "Transient error" not in text and "Failed to export" not in text, text
    assert text.count("not reachable") == 1, text
    assert f"127.0.0.1:{port}" in text
    assert re.search(r"otlp .*dropped 21", text), text
    assert elapsed < 6, elapsed  # the SDK's retries took 10 s or more


def test_default_exporter_is_said_once_when_the_variable_is_unset():
    port = free_port()
    proc = _run(*spanchain_cmd("run", "--", sys.executable, "-c", "import spanchain"),
                OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("OTEL_TRACES_EXPORTER is not set") == 1, proc.stderr


# --- the console tree -------------------------------------------------------------------------


def test_console_tree_goes_to_stderr_and_shows_unknown_tokens_as_unknown(tmp_path):
    code = (
        "from langchain_core.language_models.fake_chat_models import FakeListChatModel\n"
        "print(FakeListChatModel(responses=['yo']).invoke('hi').content)\n"
    )
    proc = _run(*spanchain_cmd("run", "--console", "--exporters", "none", "--", sys.executable, "-c", code),
                SPANCHAIN_SUMMARY="false")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "yo\n"  # the app's stdout is the app's
    header = next(l for l in proc.stderr.splitlines() if l.startswith("── trace "))
    assert "  1 span  " in header, header
    assert "tokens 0→0" not in proc.stderr and "tokens unknown" in header, proc.stderr
    model_line = next(l for l in proc.stderr.splitlines() if "[chat_model]" in l)
    assert "tokens unknown" in model_line


def test_a_collector_started_later_is_picked_up():
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from spanchain.config.reachability import ReachabilityGuard
    from spanchain.serve.app import start
    from spanchain.serve.server import ServeOptions

    from eco_support import make_spans

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/traces"
    guard = ReachabilityGuard(OTLPSpanExporter(endpoint=url), url, recheck_s=0.2)
    started = time.monotonic()
    assert guard.export(make_spans([("early", {}, None)])) == SpanExportResult.FAILURE
    assert time.monotonic() - started < 2 and guard.dropped == 1 and guard.unreachable == "connection refused"
    mem = InMemorySpanExporter()
    receiver = start({"mem": mem}, ServeOptions(port=port))
    try:
        time.sleep(0.3)
        assert guard.export(make_spans([("late", {}, None)])) == SpanExportResult.SUCCESS
        assert guard.written == 1 and guard.unreachable is None
        assert receiver.pipeline.flush(5) and [s.name for s in mem.get_finished_spans()] == ["late"]
    finally:
        receiver.stop(5)
        guard.shutdown()
