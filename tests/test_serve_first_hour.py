"""`spanchain serve` as a new user meets it: what will not work is said at start-up, the final
counts say what each exporter really did, and library log noise stays out unless asked for."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from eco_support import make_spans, python_env, spanchain_cmd, wait_until


def _no_aws_env(tmp_path, **extra):
    env = {k: v for k, v in python_env().items() if not k.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no-aws")
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # no instance-role lookup on this machine
    env.update(extra)
    return env


def _serve(tmp_path, env, *args):
    ready = tmp_path / "port"
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(spanchain_cmd("serve", "--port", "0", "--ready-file", str(ready), *args),
                            env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    assert wait_until(lambda: ready.exists() and ready.read_text().strip(), 60), (tmp_path / "serve.log").read_text()
    return proc, int(ready.read_text()), tmp_path / "serve.log"


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


def _spans(n=5):
    return make_spans([("root", {}, None)] + [(f"child {i}", {}, 0) for i in range(n - 1)])


def test_serve_says_what_will_not_work_and_what_each_exporter_did(tmp_path):
    env = _no_aws_env(tmp_path, OTEL_EXPORTER_AIM_REPO=str(tmp_path / "aim"),
                      SPANCHAIN_SERVE_SPOOL_DIR=str(tmp_path / "spool"))
    proc, port, log = _serve(tmp_path, env, "--exporters", "aim,sagemaker", "--drain-timeout", "5")
    try:
        started = log.read_text()
        # said at start-up, before any span arrives
        assert re.search(r"sagemaker will not work: no AWS credentials", started), started
        assert "aim will not work" not in started
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")
        assert exporter.export(_spans(5)) == SpanExportResult.SUCCESS
        time.sleep(1.0)
    finally:
        _stop(proc)
    text = log.read_text()
    final = text[text.index("final:"):]
    assert "exported 5" not in final
    assert re.search(r"aim\s+written 5, waiting 0, dropped 0", final), final
    assert re.search(r"sagemaker\s+written 0, waiting 5", final), final  # spooled, not sent
    assert "aim.sdk.reporter" not in text  # Aim's INFO lines stay out by default


def test_serve_checks_the_aim_repo_and_shows_library_logs_when_asked(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    env = _no_aws_env(tmp_path, OTEL_EXPORTER_AIM_REPO=str(blocked / "aim"), SPANCHAIN_SERVE_SPOOL_DIR="off")
    proc, port, log = _serve(tmp_path, env, "--exporters", "aim", "--log-level", "debug", "--drain-timeout", "2")
    try:
        assert re.search(r"aim will not work: .*not writable", log.read_text()), log.read_text()
    finally:
        _stop(proc)
    good = tmp_path / "ok"
    good.mkdir()
    env["OTEL_EXPORTER_AIM_REPO"] = str(good / "aim")
    proc, port, log = _serve(good, env, "--exporters", "aim", "--log-level", "debug", "--drain-timeout", "5")
    try:
        assert OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces").export(_spans(3)) == SpanExportResult.SUCCESS
        time.sleep(1.0)
    finally:
        _stop(proc)
    assert "aim.sdk.reporter" in log.read_text()  # asked for: debug shows library logs
