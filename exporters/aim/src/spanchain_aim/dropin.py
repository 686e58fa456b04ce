"""`AimCallbackHandler`: a drop-in for langchain_community's handler of the same name.

Same constructor, attributes (`repo`, `experiment_name`, `system_tracking_interval`,
`log_system_params`, `_run`, `_run_hash`, the 13 counters, the `ignore_*` flags) and methods
(`setup`, `flush_tracker`, `get_custom_callback_meta`, `reset_callback_meta`, the callbacks).
Underneath it is spanchain's OpenTelemetry bridge with its own TracerProvider and an
`AimSpanExporter` in session mode, which fixes the seed's bugs:
- any chain input/output is recorded (the seed read only the keys "input"/"output", and
  crashed on anything that was not a dict of strings); chat messages, tool calls, retriever
  documents and errors (type, message, traceback) become Texts as well;
- token usage, latency and errors become metrics; counters are metric values, not sequence
  contexts (the seed made a new sequence per callback);
- runs nest: each LangChain run's tree is rendered as one Text per trace;
- `flush_tracker()` keeps the constructor's choices unless told otherwise, and the data is in
  Aim when it returns;
- Aim's side effects stay in Aim's hands only as asked: no terminal capture ever; system params
  leave out secret-looking environment variables.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from spanchain.bridge.handler import OpenTelemetryCallbackHandler
from spanchain.logonce import LogOnce
from spanchain.content.serialize import to_jsonable
from spanchain.export.traces import SEED_CALLBACK_COUNTERS, seed_counters

from spanchain_aim.exporter import AimSpanExporter

logger = logging.getLogger(__name__)

SEED_COUNTERS = tuple(seed_counters(()))
_UNSET: Any = object()
_HANDLER_OPTIONS = frozenset(inspect.signature(OpenTelemetryCallbackHandler.__init__).parameters) - {
    "self", "tracer_provider"}
_FLUSH_TIMEOUT_S = 60.0


def _counted(method_name: str):
    """The bridge's callback, after bumping the seed's counters; never raises."""
    parent = getattr(OpenTelemetryCallbackHandler, method_name)
    counters = SEED_CALLBACK_COUNTERS[method_name]

    @functools.wraps(parent)
    def callback(self: "AimCallbackHandler", *args: Any, **kwargs: Any) -> Any:
        with self._counter_lock:
            self.step += 1
            for name in counters:
                setattr(self, name, getattr(self, name) + 1)
        try:
            return parent(self, *args, **kwargs)
        except Exception as exc:  # e.g. a seed-style call without run_id
            self._handler_log.warning(f"{method_name}:{type(exc).__name__}",
                                      "%s failed (the app is unaffected): %r", method_name, exc)
            return None

    return callback


class _RunHandle:
    """What the seed exposed as `_run`: writes go through the exporter's one writer thread."""

    def __init__(self, handler: "AimCallbackHandler"):
        self._handler = handler

    @property
    def hash(self) -> str | None:
        return self._handler._run_hash

    def _session_run(self):
        return self._handler.exporter._writer.session_writer(None).run

    def track(self, value, name: str | None = None, step: int | None = None, epoch: int | None = None,
              *, context: dict | None = None) -> None:
        self._handler.exporter.call_on_writer(
            lambda: self._session_run().track(value, name=name, step=step, epoch=epoch, context=context))

    def set(self, key, value, strict: bool = True) -> None:
        self._handler.exporter.set_run_params({key: value})

    def __setitem__(self, key, value) -> None:
        self.set(key, value)

    def close(self) -> None:
        self._handler.exporter.close_session_run()


class AimCallbackHandler(OpenTelemetryCallbackHandler):
    """Callback handler that logs LangChain runs to Aim.

    Args:
        repo: Aim repo path or `aim://host:port`; default OTEL_EXPORTER_AIM_REPO, else ".".
        experiment_name: the run's experiment; default as AimSpanExporter ("langchain").
        system_tracking_interval: seconds between Aim's system-metric samples; None: off.
        log_system_params: record packages, git info, executable, argv and environment
            variables (never those whose names look secret).
        **options: OpenTelemetryCallbackHandler options (capture_content, redact, ...) and
            AimSpanExporter options (max_text_chars, ...).
    """

    def __init__(self, repo: str | None = None, experiment_name: str | None = None,
                 system_tracking_interval: int | None = 10, log_system_params: bool = True,
                 **options: Any) -> None:
        handler_options = {k: options.pop(k) for k in list(options) if k in _HANDLER_OPTIONS}
        self.repo = repo
        self.experiment_name = experiment_name
        self.system_tracking_interval = system_tracking_interval
        self.log_system_params = log_system_params
        self._counter_lock = threading.Lock()
        self._handler_log = LogOnce(logger)
        self.ignore_llm_ = False
        self.ignore_chain_ = False
        self.ignore_agent_ = False
        self.ignore_retriever_ = False
        self.always_verbose_ = False
        self.action_records: list = []
        self.reset_callback_meta()
        options.setdefault("seed_counters", True)  # the seed's counters, as `counter.*` metrics
        self.exporter = AimSpanExporter(repo=repo, experiment=experiment_name, run_per="session",
                                        system_tracking_interval=system_tracking_interval,
                                        log_system_params=log_system_params, **options)
        self.tracer_provider = TracerProvider(
            resource=Resource.create({"service.name": experiment_name or "langchain"}))
        # export() only enqueues, so a simple processor never blocks the app on Aim.
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        super().__init__(tracer_provider=self.tracer_provider, **handler_options)
        self._run = _RunHandle(self)

    # --- the seed's attributes -----------------------------------------------------------------
    @property
    def _run_hash(self) -> str | None:
        """The current Aim run's hash (the run is opened on first use, like the seed's)."""
        return self.exporter.session_run_hash()

    @property
    def ignore_llm(self) -> bool:
        return self.ignore_llm_

    @property
    def ignore_chain(self) -> bool:
        return self.ignore_chain_

    @property
    def ignore_agent(self) -> bool:
        return self.ignore_agent_

    @property
    def ignore_retriever(self) -> bool:
        return self.ignore_retriever_

    @property
    def always_verbose(self) -> bool:
        return self.always_verbose_

    def get_custom_callback_meta(self) -> dict[str, Any]:
        with self._counter_lock:
            return {name: getattr(self, name) for name in SEED_COUNTERS}

    def reset_callback_meta(self) -> None:
        """Zero the 13 counters. Unlike the seed, the ignore_* flags you set stay as they are."""
        with self._counter_lock:
            for name in SEED_COUNTERS:
                setattr(self, name, 0)

    # --- the seed's methods ---------------------------------------------------------------------
    def setup(self, **kwargs: Any) -> None:
        """Set params on the current run (values sanitized, secret-looking keys redacted)."""
        try:
            if kwargs:
                self.exporter.set_run_params(kwargs)
            else:
                self.exporter.session_run_hash()
        except Exception as exc:
            self._handler_log.warning("setup", "setup failed (the app is unaffected): %r", exc)

    def flush_tracker(self, repo: str | None = None, experiment_name: str | None = None,
                      system_tracking_interval: Any = _UNSET, log_system_params: Any = _UNSET,
                      langchain_asset: Any = None, reset: bool = True, finish: bool = False) -> bool:
        """Write everything recorded so far into the Aim run; then close it and/or start anew.

        `langchain_asset` (an LLM, chain, agent...) is recorded as run params. With `reset`
        (default) the run is closed and the next events go to a new run that uses the given
        repo/experiment/system settings, and otherwise the constructor's. With `finish` the
        run is closed; later events open a new run with the current settings. Returns True
        when everything recorded so far is in Aim (the seed returned None).
        """
        delivered = False
        try:
            delivered = self.tracer_provider.force_flush(int(_FLUSH_TIMEOUT_S * 1000))
            params: dict[str, Any] = {"callback_meta": self.get_custom_callback_meta()}
            if langchain_asset is not None:
                params.update(_asset_params(langchain_asset))
            delivered = self.exporter.set_run_params(params, timeout_s=_FLUSH_TIMEOUT_S) and delivered
            if not (reset or finish):
                return delivered
            self.reset_callback_meta()
            if not reset:
                return self.exporter.close_session_run(timeout_s=_FLUSH_TIMEOUT_S) and delivered
            self.repo = repo or self.repo
            self.experiment_name = experiment_name or self.experiment_name
            if system_tracking_interval is not _UNSET:
                self.system_tracking_interval = system_tracking_interval
            if log_system_params is not _UNSET:
                self.log_system_params = log_system_params
            self.exporter.start_new_session_run(
                _FLUSH_TIMEOUT_S, repo=self.repo, experiment=self.experiment_name,
                system_tracking_interval=self.system_tracking_interval or 0,
                log_system_params=bool(self.log_system_params), open_now=False)
        except Exception as exc:
            self._handler_log.warning("flush", "flush_tracker failed (the app is unaffected): %r", exc)
            return False
        return delivered


def _asset_params(asset: Any) -> dict[str, Any]:
    """A LangChain object as params: its fields (as the seed's `asset.dict()`), plus its type."""
    fields = to_jsonable(asset, 0, set())
    params = dict(fields) if isinstance(fields, dict) else {"langchain_asset": fields}
    params.setdefault("langchain_asset_type", type(asset).__name__)
    return params


for _name in SEED_CALLBACK_COUNTERS:
    setattr(AimCallbackHandler, _name, _counted(_name))
del _name
