"""Property: random fault sequences through both real exporters keep the books and deliver
exactly once.

Hypothesis draws a script of operations (export a LangChain call, backend down / up / slow /
failing, refuse one trace, force_flush, process stop = shutdown + a new exporter on the same
spool) and plays it against
- `SageMakerSpanExporter` on a moto server over real HTTP behind `testkit.fault_proxy.FaultProxy`
  (down = connections reset, slow = every answer 0.2 s late, failing = HTTP 500 / throttling on
  half the calls, refuse = 400 for one trace's document), read back through boto3 (S3 trace
  documents and the trial component's metric points);
- `AimSpanExporter` on a real local Aim repo (down = another process holds the repo's metadata
  DB exclusively, slow = it holds it for 0.3 s, refuse = the writer raises for one trace), read
  back through Aim's API (one latency point per span per run).

Checked after every flush: `accepted == written + waiting + dropped`, and a flush that returned
True left nothing waiting and dropped nothing (SageMaker: and every span so far is in S3).
Checked at the end (backend up): no span read back twice, nothing read back that was not
produced, and every produced span is either read back or counted as dropped, exactly: the sum
of `written` over the exporters equals what the backend holds.
"""

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faults.aim_rows import lock_repo, unlock_repo  # noqa: E402
from faults.app import App  # noqa: E402
from faults.harness import environ  # noqa: E402
from testkit.fault_proxy import FaultProxy  # noqa: E402

OPS = ["export", "export", "down", "up", "slow", "failing", "reject", "flush", "restart"]
scripts = st.lists(st.sampled_from(OPS), min_size=2, max_size=8)
EXAMPLES = 8
DELIVERY = dict(trace_grace_s=0.0, retry_timeout_s=0.5, retry_backoff_s=0.05, shutdown_timeout_s=8.0,
                spool_fsync=False)


class Script:
    """Plays one script against a backend adapter and keeps what the checks need."""

    def __init__(self, backend, spooled: bool, workdir: str) -> None:
        self.backend = backend
        self.spool = os.path.join(workdir, "spool") if spooled else None
        self.exporters = []
        self.produced: set[str] = set()  # root run ids of every call the app made
        self.spans_produced = 0
        self.dropped = 0  # summed over finished exporters
        self.written = 0
        self.rejected_root: str | None = None
        self._new_exporter()

    def _new_exporter(self) -> None:
        self.exp = self.backend.exporter(self.spool)
        self.app = App(self.exp)
        self.exporters.append(self.exp)

    def call(self) -> str:
        root = uuid.uuid4()
        before = self.app.produced
        self.app.chain.invoke(f"q{len(self.produced)}", config={"callbacks": [self.app.handler], "run_id": root})
        self.spans_produced += self.app.produced - before
        self.produced.add(str(root))
        return str(root)

    def flush(self) -> None:
        dropped_before = self.exp.stats.dropped
        ok = self.exp.force_flush(10_000)
        st_ = self.exp.stats
        assert st_.balanced(), st_
        if ok:
            assert st_.waiting == 0 and st_.dropped == dropped_before, ("flush said True", st_)
            self.backend.check_after_true_flush(self)

    def restart(self) -> None:
        """A process stop: shutdown (bounded), the old writer leaves its last call, a new exporter."""
        self.app.provider.shutdown()
        thread = self.exp.engine._writer_thread
        if thread is not None:
            thread.join(60)
        self._settle(self.exp)
        self._new_exporter()

    def _settle(self, exp) -> None:
        st_ = exp.stats
        assert st_.balanced(), st_
        if self.spool is None:
            assert st_.waiting == 0, st_  # without a spool a stopped exporter holds nothing
        self.dropped += st_.dropped
        self.written += st_.written

    def play(self, script: list[str]) -> None:
        for op in script:
            if op == "export":
                self.call()
            elif op == "reject":
                self.rejected_root = self.call()
                self.backend.reject(self.rejected_root)
            elif op == "flush":
                self.flush()
            elif op == "restart":
                self.restart()
            else:
                self.backend.fault(op)
        self.backend.fault("up")
        self.backend.reject(None)
        deadline_ok = False
        for _ in range(5):  # spooled spans wait out the outage probing; a flush probes at once
            if self.exp.force_flush(15_000) and not self.exp.stats.spool_pending:
                deadline_ok = True
                break
        self.app.provider.shutdown()
        self._settle(self.exp)
        final = self.exp.stats
        assert deadline_ok or self.spool is None, ("the spool did not drain with the backend up", final)
        assert final.waiting == 0, final
        found, records = self.backend.read_back(self)
        assert records == found, f"{records - found} span records read back twice"
        # Every span is counted once: written or dropped, never both, never neither (replayed
        # spans count in the exporter that wrote them, not in the one that left them waiting).
        assert self.written + self.dropped == self.spans_produced, (self.written, self.dropped, self.spans_produced)
        # What the exporters call written is in the backend; what is not there was counted as
        # dropped. (A dropped trace may have left part of itself: its document landed, its
        # metric call timed out.)
        assert self.written <= found <= self.spans_produced, (self.written, found, self.spans_produced)
        assert self.spans_produced - found <= self.dropped, (found, self.dropped, self.spans_produced)


# --- SageMaker on moto behind the fault proxy ----------------------------------------------------


class SageMakerBackend:
    BUCKET = "spanchain-faults"  # faults.sagemaker_rows.found_spans reads this bucket

    def __init__(self, emu, proxy: FaultProxy) -> None:
        self.emu = emu
        self.proxy = proxy
        self.experiment = f"prop-{uuid.uuid4().hex[:8]}"

    def exporter(self, spool):
        from spanchain_sagemaker import SageMakerSpanExporter

        return SageMakerSpanExporter(experiment_name=self.experiment, run_name="r", artifact_bucket=self.BUCKET,
                                     spool_dir=spool, max_attempts=1, backoff_attempts=1, timeout_s=3.0,
                                     connect_timeout_s=1.0, read_timeout_s=2.0, **DELIVERY)

    def fault(self, op: str) -> None:
        modes = {"down": ("reset", 1.0), "up": ("pass", 1.0), "slow": ("slow", 1.0),
                 "failing": ("error500" if uuid.uuid4().int % 2 else "throttle", 0.5)}
        mode, ratio = modes[op]
        self.proxy.set(mode, ratio, slow_s=0.2)

    def reject(self, root: str | None) -> None:
        self.proxy.reject_path = f"/traces/{root}" if root else None

    def _prefix(self) -> str:
        return f"trial-component-artifacts/{self.experiment}-r/"

    def read_back(self, script: Script) -> tuple[int, int]:
        from faults.sagemaker_rows import found_spans

        with environ(AWS_ENDPOINT_URL=self.emu.endpoint_url):
            spans, records = found_spans(self.emu, self._prefix())
            traces = len({k for k in self._trace_keys()})
            written = sum(exp.stats.traces_written for exp in script.exporters)
            if traces:
                # One metric point per trace, at the trace's step: a trace sent twice at two
                # steps would show here even though its S3 document is overwritten in place.
                # (A dropped trace may have its document but not its points.)
                desc = self.emu.client("sagemaker").describe_trial_component(TrialComponentName=f"{self.experiment}-r")
                counts = {m["MetricName"]: m["Count"] for m in desc.get("Metrics", []) if "MetricName" in m}
                points = counts.get("trace.spans", 0)
                assert written <= points <= traces, (written, points, traces)
        return len(spans), records

    def _trace_keys(self) -> list[str]:
        s3 = self.emu.client("s3")
        try:
            listed = s3.list_objects_v2(Bucket=self.BUCKET, Prefix=self._prefix() + "traces/")
        except s3.exceptions.NoSuchBucket:
            return []
        return [o["Key"] for o in listed.get("Contents", [])]

    def check_after_true_flush(self, script: Script) -> None:
        if script.dropped or script.exp.stats.dropped:
            return
        if script.spool is None and len(script.exporters) > 1:
            return  # an earlier exporter's shutdown may have dropped (counted) spans
        with environ(AWS_ENDPOINT_URL=self.emu.endpoint_url):
            keys = " ".join(self._trace_keys())
        missing = [root for root in script.produced if f"/traces/{root}" not in keys]
        assert not missing, f"flush said True but {len(missing)} traces are not in S3"


@pytest.fixture(scope="module")
def moto_behind_proxy():
    from testkit.moto_server import start_emulator

    emu = start_emulator()
    proxy = FaultProxy(emu.endpoint_url)
    env = {**emu.aws_env(), "AWS_ENDPOINT_URL": proxy.url, "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_PROFILE": None}
    with environ(**env):
        yield emu, proxy
    proxy.stop()
    emu.stop()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(script=scripts, spooled=st.booleans())
def test_sagemaker_random_faults_keep_the_books_and_deliver_exactly_once(moto_behind_proxy, script, spooled):
    emu, proxy = moto_behind_proxy
    proxy.set("pass")
    proxy.reject_path = None
    with tempfile.TemporaryDirectory() as work:
        Script(SageMakerBackend(emu, proxy), spooled, work).play(script)


# --- Aim on a local repo -------------------------------------------------------------------------

class AimBackend:
    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.experiment = f"prop-{uuid.uuid4().hex[:8]}"
        self.holder: subprocess.Popen | None = None
        self.brief_holders: list[subprocess.Popen] = []
        self.rejected: str | None = None

    def exporter(self, spool):
        from spanchain_aim import AimSpanExporter

        exp = AimSpanExporter(repo=self.repo, experiment=self.experiment, spool_dir=spool, **DELIVERY)
        write = exp._writer.write_trace

        def refusing(trace):  # a value the backend will not take, in this one trace
            if self.rejected and self.rejected == trace.key:
                raise ValueError("aim refuses this trace")
            return write(trace)

        exp._writer.write_trace = refusing
        return exp

    def fault(self, op: str) -> None:
        if op == "down" and self.holder is None:
            self.holder = lock_repo(self.repo)
        elif op == "up" and self.holder is not None:
            unlock_repo(self.holder)
            self.holder = None
        elif op in ("slow", "failing") and self.holder is None:
            # Released by itself: the next writes wait, or fail and are retried.
            self.brief_holders.append(lock_repo(self.repo, 0.3))
        if op == "up":
            for holder in self.brief_holders:
                holder.wait(30)
            self.brief_holders.clear()

    def reject(self, root: str | None) -> None:
        self.rejected = root

    def read_back(self, script: Script) -> tuple[int, int]:
        from faults.aim_rows import found_spans

        hashes = {h for exp in script.exporters for h in exp.run_hashes}
        found, records, broken = found_spans(self.repo, hashes)
        assert not broken, f"{broken} runs Aim cannot read back"
        return found, records

    def check_after_true_flush(self, script: Script) -> None:
        pass  # reading a repo back indexes it: done once, at the end


@pytest.fixture(scope="module")
def aim_repo_for_properties():
    from aim import Repo

    from faults.aim_rows import workdir

    # Removed at exit, not now: Aim's finalizers of the runs may still flush into it until then.
    repo = os.path.join(workdir(), "repo")
    Repo.from_path(repo, init=True)
    return repo


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(script=scripts, spooled=st.booleans())
def test_aim_random_faults_keep_the_books_and_deliver_exactly_once(aim_repo_for_properties, script, spooled):
    backend = AimBackend(aim_repo_for_properties)
    try:
        with tempfile.TemporaryDirectory() as work:
            Script(backend, spooled, work).play(script)
    finally:
        backend.fault("up")
