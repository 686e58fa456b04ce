"""`spanchain serve`: run the OTLP receiver in front of exporters built by name, until SIGTERM.

Settings: command-line option, else environment variable, else default (see docs/configuration.md):

  --exporters        SPANCHAIN_SERVE_EXPORTERS        aim,sagemaker
  --host             SPANCHAIN_SERVE_HOST             127.0.0.1   (0.0.0.0 in a container)
  --port             SPANCHAIN_SERVE_PORT             4318
  --token            SPANCHAIN_SERVE_TOKEN            (none: no authentication)
  --max-request-bytes       SPANCHAIN_SERVE_MAX_REQUEST_BYTES       16 MiB
  --max-decompressed-bytes  SPANCHAIN_SERVE_MAX_DECOMPRESSED_BYTES  64 MiB
  --queue-spans      SPANCHAIN_SERVE_QUEUE_SPANS      20000
  --max-connections  SPANCHAIN_SERVE_MAX_CONNECTIONS  64
  --no-translate     SPANCHAIN_SERVE_TRANSLATE=false
  --log-level        SPANCHAIN_SERVE_LOG_LEVEL        info  (debug also shows the libraries' logs)
  --replica          SPANCHAIN_SERVE_REPLICA          <hostname>-<pid>

Several replicas may share one Aim server and one SageMaker experiment (behind a Collector's
`loadbalancing` exporter, routing by trace id): each process writes its own session runs, a run
name fixed in OTEL_EXPORTER_AIM_RUN_NAME / OTEL_EXPORTER_SAGEMAKER_RUN_NAME gets `-<replica>`
appended, and the spool gives each process its own locked lane. See docs/collectors.md.

Exporter names are OTEL_TRACES_EXPORTER names (entry points: aim, sagemaker, otlp, console, ...)
or `package.module:Class` for an exporter of your own.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from typing import Mapping, Sequence

from opentelemetry.sdk.trace.export import SpanExporter

from spanchain.config import env as envvars
from spanchain.content import routing
from spanchain.config.configure import ConfigError, build_exporter, env_flag, split_names

logger = logging.getLogger("spanchain.serve")

DEFAULT_EXPORTERS = "aim,sagemaker"
LOG_LEVELS = ("debug", "info", "warning", "error")


def setup_logging(level_name: str) -> None:
    """serve's own lines at `level_name`; other libraries (Aim's reporter, botocore...) only say
    warnings unless debug is asked for."""
    if level_name not in LOG_LEVELS:
        raise ConfigError(f"log level {level_name!r}: use one of {', '.join(LOG_LEVELS)}")
    level = getattr(logging, level_name.upper())
    logging.basicConfig(level=logging.DEBUG if level == logging.DEBUG else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("spanchain").setLevel(level)


def build_named_exporters(names: Sequence[str]) -> dict[str, SpanExporter]:
    exporters: dict[str, SpanExporter] = {}
    for name in names:
        if ":" in name:
            module, _, attr = name.partition(":")
            try:
                factory = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise ConfigError(f"exporter {name!r}: cannot import it ({exc})") from None
            exporter = factory()
            if not isinstance(exporter, SpanExporter):
                raise ConfigError(f"exporter {name!r} is not an OpenTelemetry SpanExporter")
            exporters[name] = exporter
        else:
            exporters[name] = build_exporter(name)
    return exporters


def routed(exporters: Mapping[str, SpanExporter]) -> dict[str, SpanExporter]:
    """Same content routing as in the app: no prompts to a shared collector unless allowed."""
    allowed = routing.content_exporter_names(
        split_names(os.environ[envvars.SPANCHAIN_CONTENT_EXPORTERS]) if os.environ.get(envvars.SPANCHAIN_CONTENT_EXPORTERS) else None,
        env_flag(envvars.SPANCHAIN_OTLP_CONTENT),
    )
    return {name: routing.route(name, exp, allowed) for name, exp in exporters.items()}


def _env(name: str, default):
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    if isinstance(default, bool):
        return env_flag(name, default)
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: expected an integer") from None
    return raw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exporters", help=f"comma list of exporter names (env SPANCHAIN_SERVE_EXPORTERS, default {DEFAULT_EXPORTERS})")
    parser.add_argument("--host", help="address to bind (env SPANCHAIN_SERVE_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (env SPANCHAIN_SERVE_PORT, default 4318; 0 = any free port)")
    parser.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (env SPANCHAIN_SERVE_TOKEN)")
    parser.add_argument("--max-request-bytes", type=int, help="largest request body (default 16777216)")
    parser.add_argument("--max-decompressed-bytes", type=int, help="largest body after gzip (default 67108864)")
    parser.add_argument("--queue-spans", type=int, help="spans held before answering 429 (default 20000)")
    parser.add_argument("--max-connections", type=int, help="requests handled at once; more get 503 (default 64)")
    parser.add_argument("--no-translate", action="store_true", help="do not translate OpenInference/OpenLLMetry/gen_ai spans")
    parser.add_argument("--drain-timeout", type=float, default=30.0, help="seconds to flush on shutdown (default 30)")
    parser.add_argument("--ready-file", help="write the bound port here once listening (for scripts)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, type=str.lower,
                        help="serve's own log level (env SPANCHAIN_SERVE_LOG_LEVEL, default info); debug also "
                        "shows the libraries' logs (Aim, boto3, ...), which otherwise only log warnings")
    parser.add_argument("--replica", help="this process's name among several serve replicas, appended to fixed "
                        "run names (env SPANCHAIN_SERVE_REPLICA, default <hostname>-<pid>)")
    parser.add_argument("--spool-dir", help="durable spool for spans a backend cannot take yet (env "
                        "SPANCHAIN_SERVE_SPOOL_DIR, default $XDG_STATE_HOME/spanchain/serve-spool; 'off' disables)")


RUN_NAME_VARIABLES = (envvars.OTEL_EXPORTER_AIM_RUN_NAME, envvars.OTEL_EXPORTER_SAGEMAKER_RUN_NAME)


def replica_name(args: argparse.Namespace) -> str:
    """A name no other live replica has: hostnames differ between containers, pids on one host."""
    import re
    import socket

    chosen = getattr(args, "replica", None) or os.environ.get(envvars.SPANCHAIN_SERVE_REPLICA)
    raw = chosen or f"{socket.gethostname().split('.', 1)[0]}-{os.getpid()}"
    return re.sub(r"[^A-Za-z0-9-]+", "-", raw).strip("-") or str(os.getpid())


def apply_replica_run_names(replica: str) -> None:
    """Replicas share one configuration: a fixed session run name would send every replica's
    spans into the same SageMaker run (metric steps and summary.json overwriting each other) and
    give Aim runs names nobody can tell apart. Each replica appends its own name."""
    for variable in RUN_NAME_VARIABLES:
        name = os.environ.get(variable)
        if name and name.strip() and not name.endswith(f"-{replica}"):
            os.environ[variable] = f"{name.strip()}-{replica}"


def default_spool_dir() -> str:
    state = os.environ.get(envvars.XDG_STATE_HOME) or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "spanchain", "serve-spool")


def apply_spool_default(args: argparse.Namespace) -> str | None:
    """serve spools by default (a collector's spans must survive a backend outage or a restart
    of serve): the exporters it builds read SPANCHAIN_SPOOL_DIR; their own
    OTEL_EXPORTER_*_SPOOL_DIR still wins. Returns the directory, or None when turned off."""
    chosen = getattr(args, "spool_dir", None) or os.environ.get(envvars.SPANCHAIN_SERVE_SPOOL_DIR)
    value = chosen or os.environ.get(envvars.SPANCHAIN_SPOOL_DIR) or default_spool_dir()
    if value.strip().lower() in ("off", "none", "false", "0"):
        os.environ.pop(envvars.SPANCHAIN_SPOOL_DIR, None)
        return None
    os.environ[envvars.SPANCHAIN_SPOOL_DIR] = value
    return value


def options_from(args: argparse.Namespace):
    from spanchain.serve.server import ServeOptions

    d = ServeOptions()
    return ServeOptions(
        host=args.host or _env(envvars.SPANCHAIN_SERVE_HOST, d.host),
        port=args.port if args.port is not None else _env(envvars.SPANCHAIN_SERVE_PORT, d.port),
        bearer_token=args.token or _env(envvars.SPANCHAIN_SERVE_TOKEN, None),
        max_request_bytes=args.max_request_bytes or _env(envvars.SPANCHAIN_SERVE_MAX_REQUEST_BYTES, d.max_request_bytes),
        max_decompressed_bytes=args.max_decompressed_bytes
        or _env(envvars.SPANCHAIN_SERVE_MAX_DECOMPRESSED_BYTES, d.max_decompressed_bytes),
        max_connections=args.max_connections or _env(envvars.SPANCHAIN_SERVE_MAX_CONNECTIONS, d.max_connections),
    )


def start(exporters: Mapping[str, SpanExporter], options=None, *, queue_spans: int = 20_000, translate: bool = True):
    """A started receiver + pipeline (library use and tests); call `.stop()` to drain."""
    from spanchain.serve.pipeline import Pipeline
    from spanchain.serve.server import OtlpReceiver

    pipeline = Pipeline(exporters, max_queue_spans=queue_spans, translate=translate)
    try:
        return OtlpReceiver(pipeline, options).start()
    except OSError:
        pipeline.shutdown(1.0)
        raise


def main(args: argparse.Namespace) -> int:
    try:
        setup_logging((args.log_level or _env(envvars.SPANCHAIN_SERVE_LOG_LEVEL, "info")).strip().lower())
        names = split_names(args.exporters or _env(envvars.SPANCHAIN_SERVE_EXPORTERS, DEFAULT_EXPORTERS))
        options = options_from(args)
        queue_spans = args.queue_spans or _env(envvars.SPANCHAIN_SERVE_QUEUE_SPANS, 20_000)
        translate = not args.no_translate and _env(envvars.SPANCHAIN_SERVE_TRANSLATE, True)
        spool = apply_spool_default(args)
        replica = replica_name(args)
        apply_replica_run_names(replica)
        built = build_named_exporters(names)
        exporters = routed(built)
    except ConfigError as exc:
        print(f"spanchain serve: {exc}", file=sys.stderr)
        return 2
    from spanchain.serve.preflight import check_exporters

    check_exporters(built)
    try:
        receiver = start(exporters, options, queue_spans=queue_spans, translate=translate)
    except OSError as exc:
        print(f"spanchain serve: cannot listen on {options.host}:{options.port}: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logger.info("listening on %s → %s%s; spool: %s; replica %s", receiver.url, ", ".join(names),
                " (bearer token required)" if options.bearer_token else "", spool or "off", replica)
    if args.ready_file:
        with open(args.ready_file, "w") as fh:
            fh.write(str(receiver.port))
    _report_until(stop, receiver, exporters=built)
    logger.info("draining (up to %.0fs)…", args.drain_timeout)
    ok = receiver.stop(args.drain_timeout)
    _log_progress(receiver, final=True, exporters=built)
    return 0 if ok else 1


def _log_progress(receiver, final: bool = False, exporters: Mapping[str, SpanExporter] | None = None) -> None:
    """Received / queued / refused here, then what each exporter really did with the spans
    (written, still waiting e.g. in its spool, dropped): handing a span to an exporter is not
    the same as the backend having it."""
    from spanchain.config.summary import exporter_line

    r = receiver.stats
    lines = [
        "%sreceived %d spans in %d requests, queued %d, rejected %d, refused %d (429/503)" % (
            "final: " if final else "",
            r.received_spans, r.requests, receiver.pipeline.queued_spans, r.rejected_spans, r.overloaded,
        )
    ]
    for name, exporter in (exporters or {}).items():
        lines.append(exporter_line(name, exporter))
    failures = receiver.pipeline.stats.export_failures
    if failures:
        lines.append(f"  exporters that refused spans: {failures}")
    logger.info("\n".join(lines))


def _report_until(stop: threading.Event, receiver, every_s: float = 10.0, exporters=None) -> None:
    """Progress on long runs: a line every `every_s` seconds while spans keep arriving."""
    last = -1
    while not stop.wait(every_s):
        if receiver.stats.received_spans != last:
            last = receiver.stats.received_spans
            _log_progress(receiver, exporters=exporters)
