"""GenAI client metrics, named as the OpenTelemetry GenAI conventions name them.

Recorded only when a MeterProvider is configured (passed in, or set globally); otherwise the
handler pays nothing for them.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from spanchain import semconv as sc
from spanchain.version import __version__

_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
_MODEL_OPERATIONS = (sc.OP_CHAT, sc.OP_TEXT_COMPLETION)


_RECHECK_S = 5.0  # how often to look for a MeterProvider set after the handler was made


class GenAIMetrics:
    def __init__(self, meter_provider: Any = None) -> None:
        self._explicit = meter_provider
        self._ready = False
        self._next_check = 0.0
        self._duration = self._tokens = self._ttfc = None

    def _instruments(self) -> bool:
        if self._ready:
            return True
        now = time.monotonic()
        if now < self._next_check:
            return False  # checked recently: no provider, and this runs once per LangChain run
        self._next_check = now + _RECHECK_S
        from opentelemetry import metrics
        from opentelemetry.metrics import _internal as metrics_internal

        provider = self._explicit or metrics.get_meter_provider()
        if isinstance(provider, metrics_internal._ProxyMeterProvider):
            return False  # nothing configured yet
        meter = metrics.get_meter(sc.INSTRUMENTATION_SCOPE, __version__, meter_provider=provider)
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(_TOKEN_BUCKETS),
        )
        self._ttfc = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self._ready = True
        return True

    def record(self, state: Any, error_type: Optional[str]) -> None:
        """Record a finished run's duration (and, for model calls, tokens and time to first chunk)."""
        if not self._instruments():
            return
        duration_s = time.monotonic() - state.started
        attrs: dict[str, Any] = {sc.GEN_AI_OPERATION_NAME: state.operation}
        if state.operation in _MODEL_OPERATIONS:
            attrs[sc.GEN_AI_PROVIDER_NAME] = state.provider
            attrs[sc.GEN_AI_REQUEST_MODEL] = state.model
        if error_type:
            attrs[sc.ERROR_TYPE] = error_type
        self._duration.record(duration_s, attrs)
        if state.operation not in _MODEL_OPERATIONS:
            return
        if state.input_tokens:
            self._tokens.record(state.input_tokens, {**attrs, "gen_ai.token.type": "input"})
        if state.output_tokens:
            self._tokens.record(state.output_tokens, {**attrs, "gen_ai.token.type": "output"})
        if state.first_chunk_at is not None:
            self._ttfc.record(state.first_chunk_at - state.started, attrs)
