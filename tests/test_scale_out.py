"""Scale-out: three `spanchain serve` replicas behind a trace-id split (what a Collector's
`loadbalancing` exporter with `routing_key: traceID` does), writing to ONE `aim server` and ONE
SageMaker endpoint (a moto server), sharing one spool folder and one fixed run name. Everything is
read back from the backends: every trace exactly once, nothing collides."""

from __future__ import annotations

import collections
import json
import signal
import subprocess

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from spanchain import semconv as sc

from eco_support import make_spans, python_env, spanchain_cmd, wait_until

REPLICAS = 3
TRACES = 36
EXPERIMENT = "scale-out"


def _trace(i, root=None):
    root = root or f"trace-{i:03d}-root"
    return make_spans([
        (root, {sc.LC_RUN_ID: f"r{i}", sc.LC_RUN_TYPE: "chain", sc.LC_DESCENDANTS: 2}, None),
        (f"chat m{i}", {sc.LC_RUN_ID: f"r{i}m", sc.LC_PARENT_RUN_ID: f"r{i}", sc.LC_ROOT_RUN_ID: f"r{i}",
                        sc.LC_RUN_TYPE: "chat_model", sc.GEN_AI_USAGE_INPUT_TOKENS: i + 1,
                        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 1}, 0),
        (f"tool t{i}", {sc.LC_RUN_ID: f"r{i}t", sc.LC_PARENT_RUN_ID: f"r{i}", sc.LC_ROOT_RUN_ID: f"r{i}",
                        sc.LC_RUN_TYPE: "tool"}, 0),
    ], resource_attrs={"service.name": "shop"})


@pytest.fixture
def backends(tmp_path):
    from testkit.aim_server import AimServer
    from testkit.moto_server import start_emulator

    aim = AimServer(tmp_path / "aim-repo").start()
    moto = start_emulator()
    yield aim, moto
    moto.stop()
    aim.stop()


def _start_replicas(tmp_path, aim, moto):
    env = python_env(
        **moto.aws_env(),
        OTEL_EXPORTER_AIM_REPO=aim.uri, OTEL_EXPORTER_AIM_EXPERIMENT=EXPERIMENT,
        OTEL_EXPORTER_SAGEMAKER_EXPERIMENT=EXPERIMENT,
        # the same fixed run name everywhere, as one deployment's config would have it
        OTEL_EXPORTER_AIM_RUN_NAME="shop", OTEL_EXPORTER_SAGEMAKER_RUN_NAME="shop",
        SPANCHAIN_SERVE_SPOOL_DIR=str(tmp_path / "spool"),  # one folder for all replicas
    )
    replicas = []
    for n in range(REPLICAS):
        ready = tmp_path / f"port-{n}"
        log = open(tmp_path / f"serve-{n}.log", "w")
        proc = subprocess.Popen(
            spanchain_cmd("serve", "--exporters", "aim,sagemaker", "--port", "0", "--ready-file", str(ready),
                          "--drain-timeout", "60"),
            env=env, stdout=log, stderr=subprocess.STDOUT)
        replicas.append((proc, ready, tmp_path / f"serve-{n}.log"))
    for proc, ready, log in replicas:
        assert wait_until(lambda: ready.exists() and ready.read_text().strip(), 90), log.read_text()
    return replicas


def test_three_replicas_share_one_aim_server_and_one_sagemaker_without_collisions(tmp_path, backends):
    aim, moto = backends
    replicas = _start_replicas(tmp_path, aim, moto)
    try:
        clients = [OTLPSpanExporter(endpoint=f"http://127.0.0.1:{int(r[1].read_text())}/v1/traces") for r in replicas]
        batches = collections.defaultdict(list)
        trace_ids = {}
        for i in range(TRACES):
            spans = _trace(i)
            trace_id = spans[0].context.trace_id
            trace_ids[f"{trace_id:032x}"] = f"trace-{i:03d}-root"
            batches[trace_id % REPLICAS].append(spans)  # a trace's spans always reach one replica
        assert sorted(batches) == list(range(REPLICAS))  # every replica gets work
        for n, traces in batches.items():
            for start in range(0, len(traces), 5):
                chunk = [s for t in traces[start:start + 5] for s in t]
                assert clients[n].export(chunk) == SpanExportResult.SUCCESS
        # What happens without trace affinity: one trace's spans split over two replicas.
        split = _trace(999, root="split-root")  # [chat, tool, root] (children end first)
        split_id = f"{split[0].context.trace_id:032x}"
        assert clients[0].export([s for s in split if s.name != "chat m999"]) == SpanExportResult.SUCCESS
        assert clients[1].export([s for s in split if s.name == "chat m999"]) == SpanExportResult.SUCCESS
    finally:
        for proc, _, _ in replicas:
            proc.send_signal(signal.SIGTERM)
        for proc, _, log in replicas:
            assert proc.wait(120) == 0, log.read_text()
    for _, _, log in replicas:
        final = log.read_text().split("final:")[-1]
        assert "dropped 0" in final and "waiting 0" in final and "dropped 1" not in final, final

    # Aim: one session run per replica, every trace's tree in exactly one of them
    from spanchain_aim.readback import read_runs

    runs = read_runs(str(aim.repo))
    assert len(runs) == REPLICAS and len({r.hash for r in runs}) == REPLICAS
    names = [r.name for r in runs]
    assert len(set(names)) == REPLICAS and all(n.startswith("shop-") for n in names), names
    seen = collections.Counter()
    split_parts = collections.defaultdict(set)
    for run in runs:
        for (sequence, _), points in run.texts.items():
            if sequence == "trace":
                for _, text in points:
                    top = text.split("  ", 1)[0]
                    if top.startswith("trace-"):
                        seen[top] += 1
                    elif "split-root" in text or "chat m999" in text:
                        split_parts[run.hash].add("root" if "split-root" in text else "chat")
    assert seen == collections.Counter(trace_ids.values()), seen
    # the split trace: two partial trees in two runs (nothing lost, nothing joined)
    assert sorted(map(sorted, split_parts.values())) == [["chat"], ["root"]], split_parts

    # SageMaker: one run per replica (distinct names, trial components and S3 prefixes), every
    # trace document exactly once
    sm, s3 = moto.client("sagemaker"), moto.client("s3")
    components = sm.list_trial_components(ExperimentName=EXPERIMENT)["TrialComponentSummaries"]
    tc_names = sorted(c["TrialComponentName"] for c in components)
    assert len(tc_names) == REPLICAS and len(set(tc_names)) == REPLICAS, tc_names
    docs = collections.Counter()
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for obj in page.get("Contents", []):
                if "/traces/" in obj["Key"]:
                    body = s3.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read()
                    docs[json.loads(body)["trace_id"]] += 1
    assert docs.pop(split_id) == 2  # the split trace: one partial document in each replica's run
    assert docs == collections.Counter(trace_ids.keys())
