"""`SageMakerTraceWriter`: whole traces into SageMaker Experiments runs, on the engine's thread.

Each trace the delivery engine hands over is written as:
- its span tree as JSON in S3 under the run's artifact prefix (`.../traces/<root run id>.json`);
- one metric point per metric name at the trace's step (BatchPutMetrics, 10 per call);
- run parameters, sent again only when they changed (UpdateTrialComponent).

run_per="session" (default): one run per exporter; a trace's step is its index in the order the
exporter first wrote it, remembered per trace, so a retried or re-sent trace overwrites its own
points instead of taking a new step. run_per="trace": one run per trace, step 0.
A user-supplied `Run` is only read for its names, session and artifact location: we never call
its `log_*` methods (the SDK keeps its current run process-wide) and never change its status.
Queueing, retries, the spool and trace assembly are the engine's (spanchain.export).
"""

from __future__ import annotations

import collections
import re
import concurrent.futures
import datetime as dt
import functools
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan

from spanchain.config import env as envvars
from spanchain.export import ConfigurationError, RejectedError, Trace, TraceWriter
from spanchain.logonce import LogOnce
from spanchain.export.traces import trace_to_json

from spanchain_sagemaker import sanitize as names
from spanchain_sagemaker.config import (
    RUN_PER_SESSION,
    RUN_PER_TRACE,
    Settings,
    default_session_run_name,
)
from spanchain_sagemaker.sdk_objects import (
    is_emulated,
    read_user_run,
    run_session,
    session_parts,
    session_storage,
)
from spanchain_sagemaker.summary import SessionSummary
from spanchain_sagemaker.translate import (
    DEFAULT_RESOURCE_PARAMETERS,
    ParameterSet,
    TraceFacts,
    trace_facts,
    trace_metrics,
    trace_parameters,
)

logger = logging.getLogger(__name__)

TRACES_ARTIFACT = "spanchain-traces"  # output artifact: the S3 prefix holding every trace's JSON
SUMMARY_ARTIFACT = "spanchain-summary"  # output artifact: the session summary JSON
TRACE_ARTIFACT = "spanchain-trace"  # output artifact of a one-trace run: that trace's JSON
FILES_ARTIFACT = "spanchain-files"  # output artifact: the S3 prefix of files added by add_file()
INPUT_FILES_ARTIFACT = "spanchain-input-files"  # the same for files added with is_output=False
_MAX_PENDING_FILE_BYTES = 64 * 1024 * 1024
_MAX_REMEMBERED_STEPS = 100_000
_MAX_PARTIAL_TRACES = 256

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class RunLocation:
    """Where a run's data can be found (printed by `spanchain demo`)."""

    experiment: str
    run: str
    trial_component: str
    trial: str
    s3_root: str
    traces_prefix: str
    summary: str | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def describe(self) -> list[str]:
        """Readable lines for a terminal (the demo and `spanchain serve` print these)."""
        lines = [
            f"experiment: {self.experiment}  run: {self.run}",
            f"trial component: {self.trial_component}  run group (trial): {self.trial}",
            f"S3: {self.s3_root}  (one JSON per trace under {self.traces_prefix})",
        ]
        if self.summary:
            lines.append(f"summary: {self.summary}")
        return lines


def _files_folder(is_output: bool) -> str:
    return "files" if is_output else "input-files"


def _within_budget(method):
    """Run a writer-thread entry point inside one time budget (see aws.Deadline)."""

    @functools.wraps(method)
    def bounded(self, *args):
        with self._deadline.window():
            return method(self, *args)

    return bounded


def _utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc)


def _trace_display_name(facts: TraceFacts) -> str:
    """`<root name>-<UTC start>-<last 8 hex of the root run id>`: LangChain's run ids are
    UUIDv7, whose first digits are a timestamp shared by traces started close together; the last
    ones are random, and the start time tells a reader when the trace ran."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(facts.start_ns / 1e9)) if facts.start_ns else ""
    tail = "".join(ch for ch in facts.key if ch in "0123456789abcdefABCDEF")[-8:] or names.stable_hash(facts.key)
    return names.display_name(facts.root_name, suffix="-".join(p for p in (stamp, tail) if p))


class SageMakerTraceWriter(TraceWriter):
    """The SageMaker backend: see the module docstring. Built by `SageMakerSpanExporter`."""

    def __init__(
        self,
        settings: Settings,
        *,
        run: Any = None,
        sagemaker_session: Any = None,
        boto_session: Any = None,
        max_attempts: int = 8,
        backoff_attempts: int = 4,
        backoff_base_s: float = 0.5,
        summary_interval_s: float = 10.0,
        create_bucket: bool = True,
        max_concurrency: int = 4,
        bucket_setting: str = envvars.OTEL_EXPORTER_SAGEMAKER_BUCKET,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self._log = LogOnce(logger)
        self.settings = settings
        self._bucket_setting = bucket_setting
        self._should_stop = should_stop
        # One batch's time budget (every call, retry and wait of one write, tick, flush or close).
        from spanchain_sagemaker.aws import Deadline

        self._deadline = Deadline(settings.timeout_s)
        self._boto_session = boto_session
        self._max_attempts = int(max_attempts)
        self._backoff_attempts = int(backoff_attempts)
        self._backoff_base_s = float(backoff_base_s)
        self._summary_interval_s = float(summary_interval_s)
        self._create_bucket = bool(create_bucket)
        # Independent per-trace writes (S3 object, metric batches) in flight at once.
        self._max_concurrency = max(1, int(max_concurrency))
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._sagemaker_session = sagemaker_session
        self._user_run = run
        self._user_run_fields: dict | None = None
        if run is not None:
            try:
                self._user_run_fields = read_user_run(run, settings)
                self._sagemaker_session = sagemaker_session or run_session(run)
                settings.run_per = RUN_PER_SESSION  # a given run holds every trace
            except Exception as exc:
                # Not a SageMaker Run: keep the app running and write to a run of our own.
                logger.error("sagemaker exporter: cannot use %r as a Run (%r); creating runs instead", run, exc)
        self._session_run_name = settings.run_name or default_session_run_name()
        self._use_session_storage(run)
        self._resource_keys = tuple(dict.fromkeys((*DEFAULT_RESOURCE_PARAMETERS, *settings.resource_parameters)))
        self.parameters_rejected = 0  # parameter keys SageMaker rejected (left out since)

        self._store = None  # built lazily on the writer thread (no I/O in the constructor)
        self._emulated: bool | None = None
        self._api = None
        self._steps: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._next_step = 0

        self._session_ref = None
        self._session_params: ParameterSet | None = None
        self._params_sent: dict | None = None
        self._artifacts_sent: dict | None = None
        self._session_started = False
        self._resumed = False
        self._session_end_ns = 0
        self._summary = SessionSummary()
        self._summary_written_at = 0.0
        self.locations: collections.deque[RunLocation] = collections.deque(maxlen=100)
        self._files_lock = threading.Lock()
        self._pending_files: collections.deque[tuple[str, bytes, bool]] = collections.deque()
        self._pending_file_bytes = 0
        self._file_directions: set[bool] = set()  # which files folders exist (output/input)
        self.files_dropped = 0

    def _use_session_storage(self, run) -> None:
        """The user's SageMaker Session decides the bucket (its `default_bucket`) and the prefix
        before ours (its `default_bucket_prefix`), as the SDK's own uploads do; an explicit
        bucket or prefix (argument or environment) wins."""
        if run is not None and self._user_run_fields is not None:
            return  # a Run's own uploader settings were read already
        bucket, prefix = session_storage(self._sagemaker_session)
        if self.settings.bucket is None and bucket:
            self.settings.bucket = bucket
        if prefix and not self.settings.prefix_explicit:
            self.settings.prefix = names.s3_prefix(f"{prefix}/{self.settings.prefix}")

    # --- TraceWriter ------------------------------------------------------------------------
    def preflight(self) -> None:
        bucket = self.settings.bucket
        if bucket and not _BUCKET_RE.match(bucket):
            raise ConfigurationError(self._bucket_setting, bucket,
                                     "not a valid S3 bucket name (3-63 characters: a-z, 0-9, '.', '-')")

    @_within_budget
    def write_traces(self, traces: Sequence[Trace]) -> list[BaseException | None]:
        try:
            outcomes = self._deliver_wave([t.spans for t in traces])
        except Exception as exc:
            outcomes = [exc] * len(traces)
        return [_classified(exc) for exc in outcomes]

    def write_trace(self, trace: Trace) -> None:
        exc = self.write_traces([trace])[0]
        if exc is not None:
            raise exc

    @_within_budget
    def tick(self) -> None:
        if self.settings.run_per == RUN_PER_SESSION:
            self._upload_files()
        self._write_summary_if_due()

    @_within_budget
    def flush(self) -> None:
        if self.settings.run_per == RUN_PER_SESSION:
            self._upload_files()
        self._write_session_extras()

    @_within_budget
    def close(self) -> None:
        try:
            self._close_session_run()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=False)

    # --- files (add_file queues from any thread; uploads happen on the writer thread) -------
    def add_file(self, name: str, body: bytes, is_output: bool = True) -> bool:
        """Queue a file for the session run's S3 folder (`files/` or `input-files/`).

        Never blocks: the writer thread uploads it on its next tick or flush. All files share one
        folder artifact per direction, so any number of them stays under the SDK's 30-artifact
        cap. Returns False (and counts `files_dropped`) when too much is already waiting.
        """
        with self._files_lock:
            if self._pending_file_bytes + len(body) > _MAX_PENDING_FILE_BYTES:
                self.files_dropped += 1
                return False
            self._pending_files.append((str(name), bytes(body), bool(is_output)))
            self._pending_file_bytes += len(body)
        return True

    def file_uri(self, name: str, is_output: bool = True) -> str | None:
        """Where `add_file(name, ...)` lands, once the session run is known."""
        ref = self._session_ref
        if ref is None:
            return None
        return ref.s3_uri(_files_folder(is_output), f"{names.s3_key_part(name)}")

    def sent_run_fields(self) -> tuple[dict, dict, dict] | None:
        """(parameters, output artifacts, input artifacts) last written to the session run."""
        if self._params_sent is None or self._artifacts_sent is None:
            return None
        outputs, inputs = self._artifacts_sent
        return dict(self._params_sent), dict(outputs), dict(inputs)

    def _upload_files(self) -> None:
        with self._files_lock:
            if not self._pending_files:
                return
        store = self._backend()
        ref = self._ensure_session_run(store)
        while True:
            with self._files_lock:
                if not self._pending_files:
                    break
                name, body, is_output = self._pending_files[0]
            content_type = "application/json" if name.endswith(".json") else "application/octet-stream"
            store.put_object(
                ref.bucket, ref.s3_key(_files_folder(is_output), names.s3_key_part(name)), body, content_type
            )
            with self._files_lock:
                self._pending_files.popleft()
                self._pending_file_bytes -= len(body)
                self._file_directions.add(is_output)
        self._sync_session_run(store, ref)


    def _write_summary_if_due(self) -> None:
        if self._store is not None and time.monotonic() - self._summary_written_at >= self._summary_interval_s:
            self._write_session_extras()

    def _close_session_run(self) -> None:
        if self._session_ref is None or self._store is None:
            return
        self._write_session_extras()
        if self._user_run_fields is None and self._session_started:
            self._store.update_run(
                self._session_ref,
                Status={"PrimaryStatus": "Completed"},
                EndTime=_utc(self._session_end_ns or time.time_ns()),
            )

    # --- backend ------------------------------------------------------------------------------
    def _backend(self):
        if self._store is None:
            from spanchain_sagemaker.aws import AwsApi, ClientSettings, build_clients
            from spanchain_sagemaker.store import ExperimentsStore

            boto_session, endpoints = session_parts(self._sagemaker_session, self._boto_session)
            timeouts = {
                "connect_timeout_s": self.settings.connect_timeout_s,
                "read_timeout_s": self.settings.read_timeout_s,
            }  # unset: ClientSettings' documented defaults
            client_settings = ClientSettings(
                max_attempts=self._max_attempts, **{k: v for k, v in timeouts.items() if v is not None}
            )
            clients = build_clients(boto_session, endpoints, client_settings)
            self._emulated = is_emulated(clients["sagemaker"])
            self._api = AwsApi(
                clients,
                should_stop=self._should_stop,
                backoff_attempts=self._backoff_attempts,
                backoff_base_s=self._backoff_base_s,
                deadline=self._deadline,
            )
            self._store = ExperimentsStore(
                self._api,
                create_bucket=self._create_bucket,
                retag_runs=self._emulated,
            )
        return self._store

    def _bucket(self) -> str:
        return self.settings.bucket or self._backend().default_bucket()

    def _experiment(self, spans: Sequence[ReadableSpan]) -> str:
        if self.settings.experiment:
            return self.settings.experiment
        for span in spans:
            service = (span.resource.attributes or {}).get("service.name") if span.resource else None
            if service and not str(service).startswith("unknown_service"):
                self.settings.experiment = names.entity_name_part(service)
                return self.settings.experiment
        self.settings.experiment = "spanchain"
        return self.settings.experiment

    def _run_ref(self, experiment: str, run_name: str):
        from spanchain_sagemaker.store import RunRef

        run = names.entity_name_part(run_name, fallback="run")
        return RunRef(
            experiment=experiment,
            run=run,
            trial_component=names.trial_component_name(experiment, run),
            trial=names.trial_name(experiment),
            bucket=self._bucket(),
            prefix=self.settings.prefix,
        )

    def _location(self, ref, summary: bool) -> RunLocation:
        return RunLocation(
            experiment=ref.experiment,
            run=ref.run,
            trial_component=ref.trial_component,
            trial=ref.trial,
            s3_root=ref.s3_uri(""),
            traces_prefix=ref.s3_uri("traces", ""),
            summary=ref.s3_uri("summary.json") if summary else None,
        )

    # --- writing one trace --------------------------------------------------------------------

    # --- writing one trace --------------------------------------------------------------------
    def _deliver_wave(self, wave: list[list[ReadableSpan]]) -> list[BaseException | None]:
        """Write these traces; one outcome per trace (None: written).

        Everything that decides a name, a step or a run happens here, in order, on the writer
        thread; only the independent per-trace S3 and metric writes fan out to the pool. A
        failure before the fan-out (the run, the bucket) raises: every trace failed.
        """
        store = self._backend()
        jobs = [(group, trace_facts(group)) for group in wave]
        if self.settings.run_per == RUN_PER_TRACE:
            experiment = self._experiment(jobs[0][0])
            store.ensure_trial(experiment)
            store.ensure_bucket(self._bucket())
            work = [lambda g=g, f=f: self._deliver_trace_run(store, experiment, f, g) for g, f in jobs]
        else:
            ref = self._ensure_session_run(store, jobs[0][0], min(f.start_ns for _, f in jobs))
            store.ensure_bucket(ref.bucket)
            steps = [self._step_for(f.key) for _, f in jobs]
            work = [
                lambda g=g, f=f, step=step: self._write_session_trace(store, ref, f, g, step)
                for (g, f), step in zip(jobs, steps)
            ]
        outcomes = self._run_concurrently(work)
        if self.settings.run_per == RUN_PER_SESSION and any(exc is None for exc in outcomes):
            for (group, facts), step, exc in zip(jobs, steps, outcomes):
                if exc is None:
                    self._session_params.add_trace(group)
                    self._session_end_ns = max(self._session_end_ns, facts.end_ns)
                    uri = f"s3://{ref.bucket}/{self._trace_key(ref, facts)}"
                    self._summary.add(facts, step, uri, group)
            self._sync_session_run(store, ref)
        return outcomes

    def _run_concurrently(self, work: list) -> list[BaseException | None]:
        def attempt(fn) -> BaseException | None:
            try:
                fn()
                return None
            except Exception as exc:
                return exc

        if len(work) == 1 or self._max_concurrency <= 1:
            return [attempt(fn) for fn in work]
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._max_concurrency, thread_name_prefix="spanchain-sagemaker-io"
            )
        return list(self._pool.map(attempt, work))

    def _trace_document(self, spans, facts: TraceFacts) -> bytes:
        return trace_to_json(spans).encode("utf-8", "surrogatepass")

    def _trace_key(self, ref, facts: TraceFacts) -> str:
        return ref.s3_key("traces", f"{names.s3_key_part(facts.key)}.json")

    def _write_session_trace(self, store, ref, facts: TraceFacts, spans, step: int) -> None:
        """One trace into the session run: its JSON, then its metric points (pool thread)."""
        key = self._trace_key(ref, facts)
        store.put_object(ref.bucket, key, self._trace_document(spans, facts), "application/json")
        store.put_metrics(ref, trace_metrics(spans, step))

    def _ensure_session_run(self, store, spans=(), start_ns: int = 0):
        user_run = self._user_run_fields
        if self._session_ref is None:
            if user_run is not None:
                from spanchain_sagemaker.store import RunRef

                fields = dict(user_run, bucket=user_run["bucket"] or self._bucket())
                self._session_ref = RunRef(prefix=self.settings.prefix, **fields)
            else:
                self._session_ref = self._run_ref(self._experiment(spans), self._session_run_name)
        ref = self._session_ref
        if self._session_params is None:
            fixed = {"spanchain.run_per": self.settings.run_per}
            if user_run is not None:
                fixed = {"spanchain.exporter": "sagemaker"}
            self._session_params = ParameterSet(fixed, resource_keys=self._resource_keys)
        if not store.is_known_run(ref):  # first trace, or the store forgot it (see forget_all)
            if user_run is not None:
                store.adopt_run(ref)
                existed = True
            else:
                existed = not store.ensure_run(
                    ref,
                    display_name=ref.run,
                    Status={"PrimaryStatus": "InProgress", "Message": "receiving LangChain traces"},
                    StartTime=_utc(start_ns or time.time_ns()),
                )
            if not existed:  # a new (or re-created) run has none of our parameters yet
                self._params_sent = self._artifacts_sent = None
            elif not self._resumed:
                self._resume(store, ref)
                self._resumed = True
        if not self._session_started:
            self.locations.append(self._location(ref, summary=True))
        self._session_started = True
        return ref

    def _resume(self, store, ref) -> None:
        """Continue a run an earlier process wrote (a fixed run name, a loaded Run): its
        summary.json gives back each recent trace's step and the next free step, so a replayed
        trace keeps its step and new traces do not overwrite old points."""
        try:
            body = store.get_object(ref.bucket, ref.s3_key("summary.json"))
            if body is None:
                return
            doc = json.loads(body)
            steps = self._summary.restore(doc)
        except Exception as exc:
            self._log.warning("resume", "sagemaker exporter: could not read the run's summary.json: %r", exc)
            return
        for key, step in steps.items():
            self._steps[key] = step
        self._next_step = max([self._next_step, int(doc.get("next_step") or 0), *(s + 1 for s in steps.values())])

    def _session_artifacts(self, ref) -> tuple[dict, dict]:
        """(output artifacts, input artifacts): a fixed handful, never near the 30 cap."""
        outputs = {
            TRACES_ARTIFACT: {
                "Value": names.artifact_value(ref.s3_uri("traces", "")),
                "MediaType": "application/x-directory",
            },
            SUMMARY_ARTIFACT: {
                "Value": names.artifact_value(ref.s3_uri("summary.json")),
                "MediaType": "application/json",
            },
        }
        inputs = {}
        for is_output in self._file_directions:
            target = outputs if is_output else inputs
            target[FILES_ARTIFACT if is_output else INPUT_FILES_ARTIFACT] = {
                "Value": names.artifact_value(ref.s3_uri(_files_folder(is_output), "")),
                "MediaType": "application/x-directory",
            }
        return outputs, inputs

    def _sync_session_run(self, store, ref) -> None:
        """UpdateTrialComponent only when parameters or artifacts changed since the last one."""
        params = self._session_params.to_api()
        outputs, inputs = self._session_artifacts(ref)
        if params != self._params_sent or (outputs, inputs) != self._artifacts_sent:
            # Emulators replace rather than merge these maps, so always send the full set. A
            # rejected value costs only its own key: the artifacts and the other parameters
            # are then sent apart (store.update_run_contained).
            fields = {"OutputArtifacts": outputs}
            if inputs:
                fields["InputArtifacts"] = inputs
            store.update_run_contained(ref, params, **fields)
            self.parameters_rejected = len(store.rejected_parameters)
            self._params_sent, self._artifacts_sent = params, (outputs, inputs)

    def _write_session_extras(self) -> None:
        if self._session_ref is None or self._store is None or not self._summary.dirty:
            return
        ref = self._session_ref
        document = self._summary.document(ref, self.settings.run_per, self._session_params, self._next_step)
        self._store.put_object(
            ref.bucket, ref.s3_key("summary.json"), document, "application/json"
        )
        self._summary.dirty = False
        self._summary_written_at = time.monotonic()
        self._sync_session_run(self._store, ref)

    def _step_for(self, key: str) -> int:
        step = self._steps.get(key)
        if step is None:
            step = self._next_step
            self._next_step += 1
            self._steps[key] = step
            if len(self._steps) > _MAX_REMEMBERED_STEPS:
                self._steps.popitem(last=False)
        return step

    def _deliver_trace_run(self, store, experiment: str, facts: TraceFacts, spans) -> None:
        """One trace as its own run (pool thread): JSON, the run with everything, metrics."""
        prefix = self.settings.run_name or "trace"
        ref = self._run_ref(experiment, f"{names.entity_name_part(prefix)}-{facts.key}")
        key = self._trace_key(ref, facts)
        store.put_object(ref.bucket, key, self._trace_document(spans, facts), "application/json")
        params = ParameterSet(
            {"spanchain.run_per": RUN_PER_TRACE, **trace_parameters(facts)}, resource_keys=self._resource_keys
        )
        params.add_trace(spans)
        status = {"PrimaryStatus": "Failed" if facts.failed else "Completed"}
        if facts.failed:
            status["Message"] = facts.error_message
        fields = {
            "Status": status,
            "StartTime": _utc(facts.start_ns),
            "EndTime": _utc(facts.end_ns),
            "Parameters": params.to_api(),
            "OutputArtifacts": {
                TRACE_ARTIFACT: {
                    "Value": names.artifact_value(f"s3://{ref.bucket}/{key}"),
                    "MediaType": "application/json",
                }
            },
        }
        if not store.ensure_run(ref, display_name=_trace_display_name(facts), describe_first=False, **fields):
            params_api = fields.pop("Parameters")  # existed (retry, replay): bring it up to date
            store.update_run_contained(ref, params_api, **fields)
        self.parameters_rejected = len(store.rejected_parameters)
        store.put_metrics(ref, trace_metrics(spans, step=0))
        self.locations.append(self._location(ref, summary=False))  # deque.append: thread-safe


def _classified(exc: BaseException | None) -> BaseException | None:
    """What a failure means for delivery: credentials that are missing never appear by waiting;
    a request the API validated and refused will be refused again."""
    if exc is None:
        return None
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return ConfigurationError("AWS credentials", "(none found)",
                                  f"{exc}; set AWS_PROFILE / AWS_ACCESS_KEY_ID or pass boto_session")
    if name == "ParamValidationError":
        return RejectedError(f"SageMaker request refused before sending: {exc}")
    code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    if code in ("ValidationException", "InvalidParameterValue"):
        return RejectedError(f"SageMaker refused a value: {exc}")
    return exc
