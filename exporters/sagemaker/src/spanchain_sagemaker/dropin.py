"""`SageMakerCallbackHandler`: a drop-in for langchain_community's handler of the same name.

Same constructor (`SageMakerCallbackHandler(run)`), attributes (`run`, `metrics` with the 13
counters, `temp_dir`) and methods (`jsonf`, `flush_tracker`, the callbacks). Underneath it is
spanchain's OpenTelemetry bridge with its own TracerProvider and a `SageMakerSpanExporter` that
writes into the given run, which fixes the seed's bugs:
- generated text is saved (it is on the model span, in the trace JSON);
- `serialized=None` and non-dict chain inputs/outputs are handled by the bridge;
- one JSON document per trace instead of one artifact per callback or token, registered as a fixed
  handful of artifacts, so the SDK's 30-artifact cap is never reached;
- `flush_tracker()` delivers everything into the run before the user's `with Run(...)` ends, and
  the handler keeps working afterwards.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import shutil
import tempfile
import threading
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanchain.bridge.handler import OpenTelemetryCallbackHandler
from spanchain.logonce import LogOnce
from spanchain.content.serialize import to_json
from spanchain.export.traces import seed_counters

from spanchain_sagemaker.exporter import SageMakerSpanExporter
from spanchain_sagemaker.sanitize import MAX_PARAMETERS

logger = logging.getLogger(__name__)

# The seed's 13 counters, in its order (the core derives the same names from spans).
SEED_COUNTERS = tuple(seed_counters(()))
_HANDLER_OPTIONS = frozenset(
    inspect.signature(OpenTelemetryCallbackHandler.__init__).parameters
) - {"self", "tracer_provider"}


def _to_json_text(data: Any) -> str:
    if isinstance(data, str):
        return json.dumps(data, ensure_ascii=False)  # a JSON string, as the seed's json.dump wrote
    return to_json(data)  # never raises: odd objects, cycles, NaN become JSON-safe text


def _counting(method_name: str, *counters: str):
    """A callback that bumps the seed's counters, then records the run through the bridge.

    Seed-style calls without `run_id` (or any other surprise) are logged, never raised.
    """
    parent = getattr(OpenTelemetryCallbackHandler, method_name)

    @functools.wraps(parent)
    def callback(self: "SageMakerCallbackHandler", *args: Any, **kwargs: Any) -> Any:
        self._count(*counters)
        try:
            return parent(self, *args, **kwargs)
        except Exception as exc:
            self._handler_log.warning(
                f"{method_name}:{type(exc).__name__}", "%s failed (the app is unaffected): %r", method_name, exc
            )
            return None

    return callback


class SageMakerCallbackHandler(OpenTelemetryCallbackHandler):
    """Callback handler that records LangChain runs into a SageMaker Experiments `Run`.

    Args:
        run: the `sagemaker.core.experiments.run.Run` (or legacy `sagemaker.experiments.run.Run`)
            the user opened with `with Run(...) as run:`.
        **options: OpenTelemetryCallbackHandler options (capture_content, redact, ...) and
            SageMakerSpanExporter options (artifact_bucket, artifact_prefix, max_attempts, ...).
    """

    def __init__(self, run: Any, **options: Any) -> None:
        handler_options = {k: options.pop(k) for k in list(options) if k in _HANDLER_OPTIONS}
        self.run = run
        self.metrics: dict[str, int] = dict.fromkeys(SEED_COUNTERS, 0)
        self._counter_lock = threading.Lock()
        self._temp_dir: str | None = None
        self._dropped_seen = 0  # exporter drops already reported by a flush_tracker()
        self._handler_log = LogOnce(logger)
        # Our own provider: the app's global one (if any) is not ours to configure, and the run's
        # spans must reach this run only. export() only enqueues, so a simple processor is fine.
        self.exporter = SageMakerSpanExporter(run=run, **options)
        experiment = str(getattr(run, "experiment_name", "") or "langchain")
        self.tracer_provider = TracerProvider(
            resource=Resource.create({"service.name": experiment})
        )
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        super().__init__(tracer_provider=self.tracer_provider, **handler_options)

    # --- the seed's attributes and helpers ------------------------------------------------------
    @property
    def temp_dir(self) -> str:
        """A local scratch folder, as in the seed; re-created if a flush removed it."""
        if self._temp_dir is None or not os.path.isdir(self._temp_dir):
            self._temp_dir = tempfile.mkdtemp(prefix="spanchain-sagemaker-")
        return self._temp_dir

    def _count(self, *names: str) -> None:
        with self._counter_lock:
            self.metrics["step"] += 1
            for name in names:
                self.metrics[name] += 1

    def _reset(self) -> None:
        with self._counter_lock:
            for name in self.metrics:
                self.metrics[name] = 0

    def jsonf(self, data: Any, data_dir: str, filename: str, is_output: bool | None = True) -> None:
        """Save `data` as `<data_dir>/<filename>.json` and into the run's S3 folder.

        Unlike the seed, files do not become one run artifact each: they share the run's
        `spanchain-files` (or `spanchain-input-files`) folder artifact, so there is no limit on
        how many you save. The upload happens on the exporter's thread; `flush_tracker()`
        waits for it. Never raises.
        """
        try:
            body = _to_json_text(data).encode("utf-8", "surrogatepass")
            directory = data_dir or self.temp_dir
            try:
                os.makedirs(directory, exist_ok=True)
                with open(os.path.join(directory, f"{filename}.json"), "wb") as handle:
                    handle.write(body)
            except OSError as exc:
                self._handler_log.warning("jsonf-local", "jsonf: local copy not written: %r", exc)
            self.exporter.add_file(f"{filename}.json", body, is_output=bool(is_output))
        except Exception as exc:
            self._handler_log.warning("jsonf", "jsonf failed (the app is unaffected): %r", exc)

    def flush_tracker(self, timeout_s: float = 60.0) -> bool:
        """Deliver every recorded run into SageMaker now; reset the counters (as the seed does).

        Call it inside the `with Run(...)` block. Returns True when everything was delivered
        within `timeout_s`. Runs still open are delivered as they are, and completed later.
        """
        delivered = False
        try:
            delivered = self.exporter.force_flush(int(timeout_s * 1000))
            dropped = self.exporter.dropped_total()
            delivered = delivered and self.exporter.undelivered() == 0 and dropped == self._dropped_seen
            self._dropped_seen = dropped
            self._keep_through_run_exit()
        except Exception as exc:
            self._handler_log.warning("flush", "flush_tracker failed (the app is unaffected): %r", exc)
        self._reset()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
        return delivered

    def close(self, timeout_s: float = 30.0) -> None:
        """Deliver what is left and stop the exporter's thread (also done at process exit)."""
        try:
            self.exporter.force_flush(int(timeout_s * 1000))
            self.tracer_provider.shutdown()
        except Exception as exc:
            self._handler_log.warning("close", "close failed (the app is unaffected): %r", exc)

    def _keep_through_run_exit(self) -> None:
        """Against an emulator, tell the user's Run object what we wrote (user thread, in `with`).

        When the `with` block ends, the SDK saves the Run's own parameters and artifacts.
        SageMaker merges them with ours (same key: replaced); moto replaces ours wholesale.
        Recording ours in the Run object makes the emulator end like AWS. Never done against
        AWS, where it is unnecessary and could push the SDK's save past the 300-parameter limit.
        """
        run = self.run
        if not self.exporter.backend_is_emulated:
            return
        if not (getattr(run, "_inside_init_context", False) or getattr(run, "_inside_load_context", False)):
            return
        sent = self.exporter.sent_run_fields()
        if sent is None:
            return
        parameters, outputs, inputs = sent
        existing = getattr(getattr(run, "_trial_component", None), "parameters", None) or {}
        room = max(0, MAX_PARAMETERS - len(existing))
        values = {
            key: value.get("NumberValue", value.get("StringValue"))
            for key, value in parameters.items()
            if key not in existing
        }
        if values and room:
            run.log_parameters(dict(list(values.items())[:room]))
        for is_output, artifacts in ((True, outputs), (False, inputs)):
            for name, artifact in artifacts.items():
                run.log_artifact(name, artifact["Value"], artifact.get("MediaType"), is_output=is_output)

    # --- callbacks: count like the seed, record through the bridge ----------------------------
    on_llm_start = _counting("on_llm_start", "llm_starts", "starts")
    # The seed had no chat hook (LangChain fell back to on_llm_start): count it the same way.
    on_chat_model_start = _counting("on_chat_model_start", "llm_starts", "starts")
    on_llm_new_token = _counting("on_llm_new_token", "llm_streams")
    on_llm_end = _counting("on_llm_end", "llm_ends", "ends")
    on_llm_error = _counting("on_llm_error", "errors")
    on_chain_start = _counting("on_chain_start", "chain_starts", "starts")
    on_chain_end = _counting("on_chain_end", "chain_ends", "ends")
    on_chain_error = _counting("on_chain_error", "errors")
    on_tool_start = _counting("on_tool_start", "tool_starts", "starts")
    on_tool_end = _counting("on_tool_end", "tool_ends", "ends")
    on_tool_error = _counting("on_tool_error", "errors")
    on_text = _counting("on_text", "text_ctr")
    # The seed also bumped tool_starts on an agent action, counting each tool twice.
    on_agent_action = _counting("on_agent_action", "starts")
    on_agent_finish = _counting("on_agent_finish", "agent_ends", "ends")
