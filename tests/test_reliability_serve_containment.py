"""`spanchain serve` never writes outside its configured Aim repo, spool, bucket and prefix
(issue 6, Security), and refuses requests without its bearer token, writing nothing for them.

Everything is real: `spanchain serve` runs as a subprocess with the Aim and SageMaker exporters,
SageMaker and S3 are a local moto server, requests are OTLP/HTTP over loopback. Span content
(service.name, span names, LangChain run ids and names, attribute keys and values) is made of
path-traversal and S3-key-looking strings; afterwards the whole temporary tree around the
configured directories (and serve's working directory inside it) must have changed only under
the Aim repo and the spool, every S3 object must be in the configured bucket under the
configured prefix, no other bucket may exist, and every SageMaker name must follow our rules.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import set_span_in_context

from spanchain import semconv as sc

from eco_support import python_env, spanchain_cmd, wait_until

spanchain_sagemaker = pytest.importorskip("spanchain_sagemaker")  # a dev dependency: always there
from spanchain_sagemaker import sanitize as names  # noqa: E402
from testkit.moto_server import start_emulator  # noqa: E402

TOKEN = "containment-" + uuid.uuid4().hex
BUCKET = "spanchain-containment"
PREFIX = "served/artifacts"
UNAUTHORIZED_MARKER = "unauthorizedmarker" + uuid.uuid4().hex[:8]

HOSTILE = [
    "../../etc/passwd",
    "../../../../../../../../tmp/spanchain-escape",
    "/etc/passwd",
    "/tmp/spanchain-escape-absolute",
    "..\\..\\..\\windows\\system32\\config",
    "C:\\Windows\\escape",
    "nul\x00byte/../../escape\x00.json",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%252f..%252fescape",
    "bucket/../other-bucket",
    "s3://other-bucket/../key",
    "other-bucket/" + "../" * 20 + "x",
    "~/.ssh/authorized_keys",
    "....//....//escape",
    ".",
    "..",
    "/",
    "\u202e\u2215..\u2215escape",  # right-to-left override, division slashes
    "x" * 5000,
    ("../" * 400) + "deep",
]

# SageMaker's own rules (botocore service model), which spanchain_sagemaker.sanitize enforces.
ENTITY_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}$")


def _spans(service: str, hostile: str) -> bytes:
    """One LangChain-shaped trace (chain → llm) whose every free-text field is `hostile`."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service, hostile: hostile}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(hostile)
    attributes = {
        sc.LC_RUN_ID: hostile,
        sc.LC_RUN_TYPE: "chain",
        sc.LC_NAME: hostile,
        sc.LC_METADATA_PREFIX + hostile: hostile,
        sc.LC_TAGS: [hostile, "/etc/shadow"],
        hostile: hostile,
        "gen_ai.request.model": hostile,
        "langchain.metadata.run_name": hostile,
        "langchain.metadata.experiment": hostile,
    }
    root = tracer.start_span(hostile, attributes=attributes)
    child = tracer.start_span(
        hostile + "/child",
        context=set_span_in_context(root),
        attributes={
            sc.LC_RUN_ID: hostile + "/../child",
            sc.LC_PARENT_RUN_ID: hostile,
            sc.LC_ROOT_RUN_ID: hostile,
            sc.LC_RUN_TYPE: "llm",
            sc.LC_NAME: hostile,
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": hostile,
            "gen_ai.usage.input_tokens": 3,
            hostile + ".tokens": 1,
        },
    )
    child.end()
    root.end()
    provider.shutdown()
    return encode_spans(memory.get_finished_spans()).SerializeToString()


def _post(url: str, body: bytes, token: str | None = TOKEN, scheme: str = "Bearer") -> int:
    headers = {"Content-Type": "application/x-protobuf"}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def _tree(root: Path) -> dict[str, tuple]:
    """Every path below `root` with what identifies its content (type, size, mtime). A directory
    is identified by its type only: what is added to or removed from it shows as its own path."""
    snapshot = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames:
            snapshot[os.path.relpath(os.path.join(directory, name), root)] = ("dir",)
        for name in filenames:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            snapshot[os.path.relpath(path, root)] = (st.st_mode >> 12, st.st_size, st.st_mtime_ns)
    return snapshot


def _changed(before: dict, after: dict) -> set[str]:
    return {p for p in set(before) | set(after) if before.get(p) != after.get(p)}


def _inside(path: str, *allowed: str) -> bool:
    return any(path == a or path.startswith(a + os.sep) for a in allowed)


def _outside_world() -> tuple[set[str], dict[str, tuple]]:
    """Outside the temporary tree (other processes change /tmp, so it is looked at by name):
    entries a hostile name could have created in /, /etc, /tmp, ~ and the test's cwd, and the
    state of the files an absolute path in the spans points at."""
    suspicious = set()
    for directory in ("/", "/etc", "/tmp", os.path.expanduser("~"), os.getcwd()):
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        suspicious |= {os.path.join(directory, e) for e in entries if "escape" in e or "other-bucket" in e}
    files = {}
    for path in ("/etc/passwd", "/etc/shadow", "/etc/hosts"):
        try:
            st = os.stat(path)
            files[path] = (st.st_size, st.st_mtime_ns)
        except OSError:
            pass
    return suspicious, files


@pytest.fixture(scope="module")
def emulator():
    emu = start_emulator()
    yield emu
    emu.stop()


def test_serve_writes_only_inside_its_repo_spool_bucket_and_prefix(tmp_path, emulator):
    # Three levels of directories above the configured ones are watched, so relative traversal
    # from any of them lands inside the snapshot.
    top = tmp_path
    base = top / "a" / "b" / "c"
    aim_repo, spool, cwd, home, state = (base / d for d in ("aim", "spool", "cwd", "home", "state"))
    for d in (cwd, home, state):
        d.mkdir(parents=True)
    ready = top / "port"
    env = python_env(
        **emulator.aws_env(),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        HOME=str(home),
        XDG_STATE_HOME=str(state),
        OTEL_EXPORTER_AIM_REPO=str(aim_repo),
        OTEL_EXPORTER_AIM_RUN_PER="trace",
        OTEL_EXPORTER_SAGEMAKER_BUCKET=BUCKET,
        OTEL_EXPORTER_SAGEMAKER_PREFIX=PREFIX,
        OTEL_EXPORTER_SAGEMAKER_RUN_PER="trace",
        OTEL_EXPORTER_SAGEMAKER_TIMEOUT="20000",
    )
    env.pop("AWS_PROFILE", None)
    before_world = _outside_world()
    before = _tree(top)
    proc = subprocess.Popen(
        spanchain_cmd(
            "serve", "--exporters", "aim,sagemaker", "--port", "0", "--token", TOKEN,
            "--spool-dir", str(spool), "--ready-file", str(ready), "--drain-timeout", "60",
        ),
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        assert wait_until(lambda: ready.exists() and ready.read_text().strip(), 60), (
            proc.stdout.read1().decode() if proc.poll() is not None else "serve not ready"
        )
        url = f"http://127.0.0.1:{ready.read_text().strip()}/v1/traces"
        time.sleep(1.0)  # let start-up writes (spool lanes, the Aim repo) settle
        started = _tree(top)

        # Without the token (missing, wrong, wrong scheme): 401, and nothing is written.
        refused = _spans(UNAUTHORIZED_MARKER, UNAUTHORIZED_MARKER)
        assert _post(url, refused, token=None) == 401
        assert _post(url, refused, token="wrong-" + TOKEN) == 401
        assert _post(url, refused, token=TOKEN, scheme="Basic") == 401
        assert _post(url, refused, token=TOKEN + "x") == 401
        time.sleep(1.5)
        changed = _changed(started, _tree(top))
        assert not changed, f"unauthenticated requests changed files: {sorted(changed)[:20]}"

        # With it: hostile content everywhere, each accepted.
        for hostile in HOSTILE:
            assert _post(url, _spans(hostile, hostile)) == 200
        # Hostile request paths are answered 404 and never reach an exporter.
        for path in ("/v1/traces/../../etc/passwd", "/v1/traces/..%2f..%2fescape", "/../../v1/traces"):
            assert _post(url.replace("/v1/traces", path), _spans("path", "path")) == 404

        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=120)[0].decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    received = 2 * len(HOSTILE)
    assert f"final: received {received} spans in" in output, output

    # 1. Files: only under the Aim repo and the spool (serve's cwd, HOME, XDG_STATE_HOME and the
    # three parent levels included), and nothing in /, /etc, /tmp, ~ or the test's cwd.
    allowed = (os.path.relpath(aim_repo, top), os.path.relpath(spool, top))
    changed = _changed(before, _tree(top))
    escaped = sorted(p for p in changed if not _inside(p, *allowed) and p != "port")
    assert not escaped, f"serve wrote outside its repo and spool: {escaped[:20]}"
    assert any(_inside(p, allowed[0]) for p in changed) and any(_inside(p, allowed[1]) for p in changed)
    assert _outside_world() == before_world, "files outside the temporary tree changed"

    # 2. S3: one bucket, ours; every key under the prefix, no traversal segment in any key.
    s3 = emulator.client("s3")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == [BUCKET]
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])]
    for key in keys:
        assert key.startswith(PREFIX + "/"), key
        segments = key.split("/")
        assert ".." not in segments and "." not in segments and "" not in segments, key
        assert all(re.fullmatch(r"[A-Za-z0-9._-]+", s) for s in segments), key
        assert "\x00" not in key and "\\" not in key and "%" not in key, key

    # Every trace arrived (containment is not "it failed to write"): one document per distinct
    # sanitized root run id (hostile ids that sanitize alike share one).
    expected = {names.s3_key_part(h) for h in HOSTILE}
    written = {k.rsplit("/", 1)[-1][: -len(".json")] for k in keys if "/traces/" in k}
    assert written == expected, (sorted(expected - written), output[-3000:])

    # 3. SageMaker: every name follows the API's rules (and ours: lower-case entity names, the
    # trial component is "<experiment>-<run>", artifacts point into our bucket and prefix).
    sm = emulator.client("sagemaker")
    experiments = [e["ExperimentName"] for e in sm.list_experiments()["ExperimentSummaries"]]
    trials = [t["TrialName"] for t in sm.list_trials()["TrialSummaries"]]
    components = [c["TrialComponentName"] for c in sm.list_trial_components(MaxResults=100)["TrialComponentSummaries"]]
    assert experiments and trials and components
    for name in experiments + trials + components:
        assert ENTITY_NAME.match(name), name
    for name in experiments + components:
        assert name == name.lower() and len(name) <= names.MAX_ENTITY_NAME, name
    for name in experiments:
        assert names.entity_name_part(name) == name  # already sanitized: a fixed point
    for component in components:
        described = sm.describe_trial_component(TrialComponentName=component)
        assert ENTITY_NAME.match(described.get("DisplayName") or component), described.get("DisplayName")
        for artifact in (described.get("OutputArtifacts") or {}).values():
            assert artifact["Value"].startswith(f"s3://{BUCKET}/{PREFIX}/"), artifact["Value"]

    # 4. The refused requests left no trace anywhere.
    assert not [n for n in experiments + trials + components if UNAUTHORIZED_MARKER in n]
    for key in keys:
        assert UNAUTHORIZED_MARKER.encode() not in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    for directory, _, filenames in os.walk(top):
        for filename in filenames:
            assert UNAUTHORIZED_MARKER.encode() not in Path(directory, filename).read_bytes(), filename
