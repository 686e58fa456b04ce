"""SageMaker Experiments exporter for spanchain.

- `SageMakerSpanExporter`: an OpenTelemetry SpanExporter writing LangChain spans into SageMaker
  Experiments runs (parameters, metrics, S3 artifacts). Entry point `sagemaker` in the
  `opentelemetry_traces_exporter` group.
- `SageMakerCallbackHandler`: drop-in replacement for langchain_community's handler of that name.

Imports are lazy so `import spanchain_sagemaker` stays cheap and never loads boto3 or the
SageMaker SDK (which configures logging at import time).
"""

from typing import TYPE_CHECKING

__all__ = ["SageMakerSpanExporter", "SageMakerCallbackHandler"]

if TYPE_CHECKING:  # pragma: no cover
    from spanchain_sagemaker.exporter import SageMakerSpanExporter
    from spanchain_sagemaker.handler import SageMakerCallbackHandler


def __getattr__(name: str):
    if name == "SageMakerSpanExporter":
        from spanchain_sagemaker.exporter import SageMakerSpanExporter

        return SageMakerSpanExporter
    if name == "SageMakerCallbackHandler":
        from spanchain_sagemaker.handler import SageMakerCallbackHandler

        return SageMakerCallbackHandler
    raise AttributeError(f"module 'spanchain_sagemaker' has no attribute {name!r}")
