"""The public names are a contract: adding or removing one is a deliberate change of this test."""

import spanchain
import spanchain.export
import spanchain_aim
import spanchain_sagemaker


def test_the_export_plugin_api_is_exactly_these_names():
    assert sorted(spanchain.export.__all__) == [
        "ConfigurationError",
        "DROP_REASONS",
        "DeliveryEngine",
        "DeliverySettings",
        "EngineSpanExporter",
        "ExportStats",
        "RejectedError",
        "Trace",
        "TraceAssembler",
        "TraceWriter",
    ]
    for name in spanchain.export.__all__:
        assert getattr(spanchain.export, name) is not None


def test_package_entry_points_export_what_their_docs_promise():
    assert set(spanchain_aim.__all__) == {"AimSpanExporter", "AimCallbackHandler"}
    assert {"SageMakerSpanExporter", "SageMakerCallbackHandler"} <= set(spanchain_sagemaker.__all__)
    for module in (spanchain, spanchain_aim, spanchain_sagemaker):
        for name in module.__all__:
            assert getattr(module, name) is not None, (module.__name__, name)
    assert sorted(spanchain.__all__) == sorted(
        ["OpenTelemetryCallbackHandler", "instrument", "uninstrument", "configure", "__version__"])
