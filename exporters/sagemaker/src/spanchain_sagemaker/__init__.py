"""SageMaker Experiments exporter for spanchain.

- `SageMakerSpanExporter`: an OpenTelemetry SpanExporter writing LangChain spans into SageMaker
  Experiments runs (parameters, metrics, S3 artifacts). Entry point `sagemaker` in the
  `opentelemetry_traces_exporter` group.
- `SageMakerCallbackHandler`: drop-in replacement for langchain_community's handler of that name.

Imports are lazy so `import spanchain_sagemaker` stays cheap and never loads boto3 or the
SageMaker SDK (which configures logging at import time).
"""

from typing import TYPE_CHECKING

from spanchain.lazy import lazy_getattr

__all__ = ["SageMakerSpanExporter", "SageMakerCallbackHandler"]

if TYPE_CHECKING:  # pragma: no cover
    from spanchain_sagemaker.exporter import SageMakerSpanExporter
    from spanchain_sagemaker.dropin import SageMakerCallbackHandler


__getattr__ = lazy_getattr(
    "spanchain_sagemaker",
    {
        "SageMakerSpanExporter": "spanchain_sagemaker.exporter:SageMakerSpanExporter",
        "SageMakerCallbackHandler": "spanchain_sagemaker.dropin:SageMakerCallbackHandler",
    },
    globals(),
)
