"""`spanchain.configure()`: tracer provider, exporters and LangChain instrumentation in one call.

Everything follows the OpenTelemetry SDK environment specification, so the same variables drive
`spanchain run`, `opentelemetry-instrument` and `configure()`:

- exporters: argument, else OTEL_TRACES_EXPORTER (comma list, default `otlp`, `none` = no
  exporter). Names resolve through the `opentelemetry_traces_exporter` entry points, so `aim` and
  `sagemaker` (our exporter packages), `console`, `zipkin`... all work. `otlp` picks the transport
  from OTEL_EXPORTER_OTLP_TRACES_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL (default http/protobuf,
  the spec's recommended default);
- resource: OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES (arguments win);
- sampler: OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (argument wins);
- batching: one BatchSpanProcessor per exporter, which reads OTEL_BSP_* itself;
- OTEL_SDK_DISABLED=true: the SDK provider records nothing.

A TracerProvider the app already installed is used as it is: our processors are added to it and
its resource and sampler are left alone.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence, Union

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from spanchain.config import env as envvars
from spanchain.config.resolve import parse_bool
from spanchain.content import routing
from spanchain.config.reachability import guard_otlp

logger = logging.getLogger(__name__)

ENV_TRACES_EXPORTER = envvars.OTEL_TRACES_EXPORTER
ENV_OTLP_PROTOCOL = envvars.OTEL_EXPORTER_OTLP_PROTOCOL
ENV_OTLP_TRACES_PROTOCOL = envvars.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
ENV_SAMPLER = envvars.OTEL_TRACES_SAMPLER
ENV_SAMPLER_ARG = envvars.OTEL_TRACES_SAMPLER_ARG
ENV_OTLP_CONTENT = envvars.SPANCHAIN_OTLP_CONTENT
ENV_CONTENT_EXPORTERS = envvars.SPANCHAIN_CONTENT_EXPORTERS
ENV_INSTRUMENT = envvars.SPANCHAIN_INSTRUMENT
ENV_SUMMARY = envvars.SPANCHAIN_SUMMARY

DEFAULT_EXPORTERS = "otlp"
DEFAULT_OTLP_PROTOCOL = "http/protobuf"
EXPORTER_GROUP = "opentelemetry_traces_exporter"

# OTLP protocol (spec value) → entry point name of the Python exporter package that speaks it.
_OTLP_ENTRY_POINTS = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}
_OTLP_NAMES = {"otlp", "otlp_proto_http", "otlp_proto_grpc"}

ExporterSpec = Union[str, SpanExporter]


class ConfigError(ValueError):
    """A setting that cannot work; the message says which one and what would."""


@dataclass
class Setup:
    """What `configure()` set up; keep it to flush or shut down explicitly."""

    tracer_provider: Any
    exporters: dict[str, SpanExporter] = field(default_factory=dict)  # as built, before routing
    processors: list[SpanProcessor] = field(default_factory=list)
    owns_provider: bool = False  # True: we created the provider (and set it global if asked)
    content_exporters: frozenset[str] | None = None  # None: every exporter receives content
    instrumented: bool = False
    is_shut_down: bool = False
    guards: dict[str, SpanExporter] = field(default_factory=dict)  # OTLP reachability, by name
    exporters_note: str = ""  # how the exporters were chosen, for the exit summary
    summary: bool = False  # print where the spans went at exit
    summary_printed: bool = False

    def print_summary(self) -> None:
        """Where the spans went, on stderr (once)."""
        if self.summary_printed:
            return
        self.summary_printed = True
        from spanchain.config.summary import print_summary

        print_summary(self.exporters, self.guards, self.exporters_note)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Hand every finished span to the exporters, then have each exporter write it (bounded)."""
        deadline = time.monotonic() + timeout_millis / 1000.0

        def remaining_ms() -> int:
            return max(0, int((deadline - time.monotonic()) * 1000))

        ok = True
        for processor in self.processors:
            ok = processor.force_flush(remaining_ms()) is not False and ok
        # BatchSpanProcessor.force_flush only exports; our exporters write in the background.
        for processor in self.processors:
            exporter = getattr(processor, "span_exporter", None)
            if exporter is not None:
                ok = exporter.force_flush(remaining_ms()) is not False and ok
        return ok

    def shutdown(self) -> None:
        """Flush and stop our processors; the app's own provider keeps running. Afterwards
        `configure()` may be called again (it adds new exporters to the same global provider)."""
        global _global_setup
        self.is_shut_down = True
        with _lock:
            if _global_setup is self:
                _global_setup = None
        for processor in self.processors:
            try:
                processor.shutdown()
            except Exception as exc:
                logger.warning("spanchain: shutting down %r failed: %r", processor, exc)


_lock = threading.Lock()
_global_setup: Setup | None = None


# --- small parsers ---------------------------------------------------------------------------


def env_flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return parse_bool(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected true or false") from None


def split_names(value: str | Iterable[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        name = str(item).strip()
        if name and name not in out:
            out.append(name)
    return out


def _load_entry_point(group: str, name: str):
    from importlib.metadata import entry_points

    found = list(entry_points(group=group, name=name))
    if not found:
        if group == EXPORTER_GROUP:
            raise ConfigError(unknown_exporters_problem([name])[1] or f"exporter {name!r} is not installed")
        available = sorted({ep.name for ep in entry_points(group=group)})
        raise ConfigError(f"no {group} entry point named {name!r}; installed: {', '.join(available) or 'none'}")
    return found[0].load()


def installed_exporter_names() -> list[str]:
    """Every name OTEL_TRACES_EXPORTER accepts here: the entry points, `otlp` (our alias for the
    OTLP package the protocol picks) and `none`."""
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group=EXPORTER_GROUP)}
    if names & set(_OTLP_ENTRY_POINTS.values()):
        names.add("otlp")
    return sorted(names) + ["none"]


def unknown_exporter_names(names: Iterable[str]) -> list[str]:
    """The names no installed exporter answers to (`none` and `otlp` count as known when the
    OTLP package is there)."""
    installed = set(installed_exporter_names())
    return [n for n in names if n.lower() != "none" and n not in installed]


# Names whose exporter ships in a package of its own: what to install when it is missing.
_PACKAGE_FOR = {
    "aim": "spanchain-aim (spanchain[aim])",
    "sagemaker": "spanchain-sagemaker (spanchain[sagemaker])",
    "otlp": "spanchain[otel]",
}


def unknown_exporter_message(name: str, installed: Sequence[str]) -> str:
    """`unknown exporter 'consol' (did you mean 'console'?)`."""
    import difflib

    close = difflib.get_close_matches(name.lower(), list(installed), n=1, cutoff=0.6)
    return f"unknown exporter {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def unknown_exporters_problem(names: Iterable[str]) -> tuple[list[str], str | None]:
    """(the unknown names, one message naming each with a suggestion) — ([], None) when all work."""
    unknown = unknown_exporter_names(names)
    if not unknown:
        return [], None
    installed = installed_exporter_names()
    message = ", ".join(unknown_exporter_message(n, installed) for n in unknown)
    message += f"; installed: {', '.join(installed)}"
    for name in unknown:
        if name in _PACKAGE_FOR:
            message += f"; for {name}, install {_PACKAGE_FOR[name]}"
    return unknown, message


def otlp_entry_point() -> str:
    protocol = (
        os.environ.get(ENV_OTLP_TRACES_PROTOCOL) or os.environ.get(ENV_OTLP_PROTOCOL) or DEFAULT_OTLP_PROTOCOL
    ).strip()
    if protocol not in _OTLP_ENTRY_POINTS:
        raise ConfigError(
            f"OTLP protocol {protocol!r} is not available in Python; use http/protobuf or grpc"
        )
    return _OTLP_ENTRY_POINTS[protocol]


def build_exporter(name: str) -> SpanExporter:
    """One exporter from its OTEL_TRACES_EXPORTER name; its own env vars configure it."""
    entry = otlp_entry_point() if name == "otlp" else name
    try:
        cls = _load_entry_point(EXPORTER_GROUP, entry)
    except ConfigError:
        if name == "otlp" or entry.startswith("otlp_proto"):
            raise ConfigError(
                f"exporter {name!r} needs the OTLP exporter package: pip install 'spanchain[otel]'"
                + (" (grpc: opentelemetry-exporter-otlp-proto-grpc)" if entry == "otlp_proto_grpc" else "")
            ) from None
        raise
    exporter = cls()
    if not isinstance(exporter, SpanExporter):
        raise ConfigError(f"exporter {name!r} ({cls!r}) is not an OpenTelemetry SpanExporter")
    return exporter


def exporter_name(exporter: SpanExporter) -> str:
    """The OTEL_TRACES_EXPORTER name an exporter instance corresponds to (for content routing)."""
    module = type(exporter).__module__
    if module.startswith("spanchain_aim"):
        return "aim"
    if module.startswith("spanchain_sagemaker"):
        return "sagemaker"
    if module.startswith("spanchain.export.console"):
        return "spanchain_console"
    if module.startswith("opentelemetry.exporter.otlp"):
        return "otlp"
    if module.startswith("opentelemetry.sdk.trace.export") and type(exporter).__name__ == "ConsoleSpanExporter":
        return "console"
    return type(exporter).__name__


def resolve_exporters(exporters: ExporterSpec | Sequence[ExporterSpec] | Mapping[str, SpanExporter] | None) -> dict[str, SpanExporter]:
    """Argument, else OTEL_TRACES_EXPORTER, else `otlp`; `none` means no exporter."""
    if isinstance(exporters, Mapping):
        return dict(exporters)
    source = "exporters"
    if exporters is None:
        raw = os.environ.get(ENV_TRACES_EXPORTER)
        source = f"{ENV_TRACES_EXPORTER}={raw}" if raw else f"the default exporter {DEFAULT_EXPORTERS!r}"
        exporters = raw or DEFAULT_EXPORTERS
    if isinstance(exporters, (str, SpanExporter)):
        exporters = [exporters] if isinstance(exporters, SpanExporter) else split_names(exporters)
    # Every name checked before anything is built: all typos reported at once, with suggestions.
    named = [n for spec in exporters if not isinstance(spec, SpanExporter) for n in split_names(str(spec))]
    _, problem = unknown_exporters_problem(named)
    if problem:
        raise ConfigError(f"{source}: {problem}")
    built: dict[str, SpanExporter] = {}
    made_here: list[SpanExporter] = []
    try:
        for spec in exporters:
            if isinstance(spec, SpanExporter):
                name = exporter_name(spec)
                key, n = name, 2
                while key in built:
                    key, n = f"{name}#{n}", n + 1
                built[key] = spec
                continue
            for name in split_names(str(spec)):
                if name.lower() == "none" or name in built:
                    continue
                built[name] = build_exporter(name)
                made_here.append(built[name])
    except Exception:
        for exporter in made_here:  # do not leave writer threads or open repos behind
            try:
                exporter.shutdown()
            except Exception:
                pass
        raise
    return built


_NAMED_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


def resolve_sampler(sampler: Sampler | str | None, sampler_arg: str | float | None = None) -> Sampler | None:
    """A Sampler from an argument; None leaves OTEL_TRACES_SAMPLER to the SDK (spec behaviour)."""
    if sampler is None or isinstance(sampler, Sampler):
        return sampler
    from opentelemetry.sdk.trace import sampling

    name = sampler.strip().lower()
    if name not in _NAMED_SAMPLERS:
        factory = _load_entry_point("opentelemetry_traces_sampler", name)
        return factory(sampler_arg)
    ratio = 1.0
    if "traceidratio" in name:
        try:
            ratio = float(sampler_arg if sampler_arg is not None else 1.0)
        except (TypeError, ValueError):
            raise ConfigError(f"sampler {name}: ratio {sampler_arg!r} is not a number") from None
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"sampler {name}: ratio {ratio} must be between 0 and 1")
    root = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(ratio),
    }[name.replace("parentbased_", "")]
    return sampling.ParentBased(root) if name.startswith("parentbased_") else root


def _sdk_provider_already_set():
    """The app's provider if it installed one, else None (the API's proxy means: nobody did)."""
    current = trace.get_tracer_provider()
    if isinstance(current, trace.ProxyTracerProvider):
        return None
    return current


# --- the one call ----------------------------------------------------------------------------


def configure(
    exporters: ExporterSpec | Sequence[ExporterSpec] | Mapping[str, SpanExporter] | None = None,
    *,
    service_name: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    sampler: Sampler | str | None = None,
    sampler_arg: str | float | None = None,
    tracer_provider: Any = None,
    otlp_content: bool | None = None,
    content_exporters: Iterable[str] | None = None,
    instrument: bool | None = None,
    summary: bool | None = None,
    **instrument_options: Any,
) -> Setup:
    """Set up tracing for LangChain in one call and return what was set up.

    - exporters: names (`"aim,otlp"`, `["aim", "sagemaker"]`), SpanExporter instances, or a
      name → instance mapping. Default: OTEL_TRACES_EXPORTER, else `otlp`.
    - service_name / resource_attributes: only used when we create the provider.
    - sampler: a Sampler or an OTEL_TRACES_SAMPLER name (+ sampler_arg); only when we create it.
    - tracer_provider: use this provider instead of the global one (nothing is set global).
    - otlp_content / content_exporters: content routing, see `spanchain.content.routing`.
    - instrument: add the LangChain callback handler to every run (default: SPANCHAIN_INSTRUMENT,
      else true); extra keyword arguments go to `spanchain.instrument()`.
    - summary: print where the spans went (counts, Aim runs, SageMaker run, OTLP endpoint) on
      stderr at exit (default: SPANCHAIN_SUMMARY, else true).

    Calling it again for the global provider returns the first Setup (and warns when the second
    call asked for something different); `Setup.shutdown()` then configure again to change it.
    """
    global _global_setup
    with _lock:
        if tracer_provider is None and _global_setup is not None:
            logger.warning("spanchain.configure(): already configured; returning the existing setup")
            return _global_setup

        allowed = routing.content_exporter_names(
            split_names(os.environ[ENV_CONTENT_EXPORTERS])
            if content_exporters is None and os.environ.get(ENV_CONTENT_EXPORTERS)
            else content_exporters,
            env_flag(ENV_OTLP_CONTENT) if otlp_content is None else bool(otlp_content),
        )
        want_summary = env_flag(ENV_SUMMARY, True) if summary is None else bool(summary)  # before building
        built = resolve_exporters(exporters)
        sampler_obj = resolve_sampler(sampler, sampler_arg)

        provider = tracer_provider
        owns = False
        if provider is None:
            provider = _sdk_provider_already_set()
            if provider is not None and (service_name or resource_attributes or sampler is not None):
                logger.warning(
                    "spanchain.configure(): the app already set a TracerProvider; its resource and "
                    "sampler are kept, service_name/resource_attributes/sampler are ignored"
                )
        if provider is None:
            provider = _new_provider(service_name, resource_attributes, sampler_obj)
            owns = True

        setup = Setup(tracer_provider=provider, owns_provider=owns, content_exporters=allowed)
        setup.summary = want_summary
        if exporters is None and not os.environ.get(ENV_TRACES_EXPORTER):
            setup.exporters_note = f"OTEL_TRACES_EXPORTER is not set, so the OpenTelemetry default {DEFAULT_EXPORTERS!r} is used"
        add = getattr(provider, "add_span_processor", None)
        if add is None:
            logger.warning(
                "spanchain.configure(): the installed TracerProvider %r cannot take span processors; "
                "spans go wherever it sends them",
                type(provider).__name__,
            )
        else:
            for name, exporter in built.items():
                target = exporter
                if exporter_name(exporter) == "otlp":
                    target = guard_otlp(exporter, setup.exporters_note)
                    if target is not exporter:
                        setup.guards[name] = target
                processor = BatchSpanProcessor(routing.route(name, target, allowed))
                add(processor)
                setup.processors.append(processor)
                setup.exporters[name] = exporter
        if owns and tracer_provider is None:
            trace.set_tracer_provider(provider)

        want_instrument = env_flag(ENV_INSTRUMENT, True) if instrument is None else instrument
        if want_instrument:
            setup.instrumented = _instrument(None if tracer_provider is None else provider, instrument_options)
        if tracer_provider is None:
            _global_setup = setup
            if setup.processors or setup.summary:
                _flush_before_interpreter_shutdown(setup)
        return setup


EXIT_FLUSH_TIMEOUT_MS = 30_000


def _flush_before_interpreter_shutdown(setup: Setup) -> None:
    """Flush at exit while thread pools still work.

    Python shuts concurrent.futures pools down *before* atexit handlers run (where the SDK flushes
    its providers), and exporters whose clients use them (boto3's S3 uploads) then fail with
    "cannot schedule new futures after interpreter shutdown". Threading's exit hooks run in
    reverse order of registration, so registering ours after importing concurrent.futures.thread
    makes it run first. Bounded by EXIT_FLUSH_TIMEOUT_MS.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        return
    try:
        import concurrent.futures.thread  # noqa: F401 - its hook must be registered before ours

        register(lambda: _safe_exit_flush(setup))
    except Exception as exc:  # not worth failing set-up for: the SDK's atexit flush remains
        logger.debug("spanchain: no early exit flush: %r", exc)


def _safe_exit_flush(setup: Setup) -> None:
    if not setup.is_shut_down:
        try:
            setup.force_flush(EXIT_FLUSH_TIMEOUT_MS)
        except Exception as exc:
            logger.warning("spanchain: flushing at exit failed: %r", exc)
    if setup.summary:
        setup.print_summary()


def _new_provider(service_name, resource_attributes, sampler) -> TracerProvider:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    attrs = dict(resource_attributes or {})
    if service_name:
        attrs[SERVICE_NAME] = service_name
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; explicit values win.
    return TracerProvider(resource=Resource.create(attrs), sampler=sampler)


def _instrument(provider, options: Mapping[str, Any]) -> bool:
    try:
        import spanchain

        instrument = spanchain.instrument  # the lead's hook into LangChain's callback config
    except (ImportError, AttributeError) as exc:
        logger.warning("spanchain: LangChain instrumentation unavailable (%r); no spans are recorded", exc)
        return False
    instrument(tracer_provider=provider, **dict(options))
    return True


def configure_from_environment(*, instrument: bool | None = None) -> Setup | None:
    """Zero-code entry (`spanchain run`, `opentelemetry-instrument`): never raises into the app.

    A name in OTEL_TRACES_EXPORTER that no installed exporter answers to is reported once (with
    a suggestion) and left out: the valid exporters keep working, since nobody is there to fix
    the name before the app runs. (`spanchain run` checks the names before starting the app.)"""
    try:
        exporters = None
        raw = os.environ.get(ENV_TRACES_EXPORTER)
        names = split_names(raw or "")
        unknown, problem = unknown_exporters_problem(names)
        if problem:
            exporters = [n for n in names if n not in unknown and n.lower() != "none"]
            logger.error(
                "spanchain: %s=%s: %s; tracing continues with %s", ENV_TRACES_EXPORTER, raw, problem,
                ", ".join(exporters) if exporters else "no exporter left (tracing is OFF)",
            )
        return configure(exporters, instrument=instrument)
    except Exception as exc:
        logger.error("spanchain: tracing is OFF, configuration failed: %s", exc)
        return None


def current_setup() -> Setup | None:
    return _global_setup


def _reset_for_tests() -> None:
    global _global_setup
    _global_setup = None


class SpanchainConfigurator:
    """`opentelemetry_configurator` entry point: what `opentelemetry-instrument` runs first.

    It builds the provider and exporters from OTEL_* like the SDK's own configurator, plus content
    routing. LangChain itself is instrumented by our `opentelemetry_instrumentor` entry point, which
    opentelemetry-instrument loads next, so this does not instrument.
    """

    def configure(self, **_kwargs: Any) -> None:
        configure_from_environment(instrument=False)
