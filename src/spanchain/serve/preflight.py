"""Start-up checks for `spanchain serve`: say what will not work before the first span arrives.

Each exporter package may ship a `preflight` module with `problems(exporter) -> list[str]`
(spanchain_aim: repo writable or server reachable; spanchain_sagemaker: AWS credentials, region,
bucket); the OTLP exporter's endpoint is probed here. A check that itself fails is reported as
such, never stops serve: spans still queue and spool while a backend is missing.
"""

from __future__ import annotations

import importlib
import logging
from typing import Mapping

from opentelemetry.sdk.trace.export import SpanExporter

from spanchain.config.reachability import host_port, tcp_probe

logger = logging.getLogger("spanchain.serve")


def exporter_problems(exporter: SpanExporter) -> list[str]:
    endpoint = getattr(exporter, "_endpoint", None)
    if type(exporter).__module__.startswith("opentelemetry.exporter.otlp") and isinstance(endpoint, str):
        address = host_port(endpoint)
        reason = tcp_probe(*address) if address else None
        return [f"OTLP endpoint {endpoint} is not reachable ({reason})"] if reason else []
    package = type(exporter).__module__.split(".", 1)[0]
    try:
        module = importlib.import_module(f"{package}.preflight")
    except ImportError:
        return []
    return list(module.problems(exporter))


def check_exporters(exporters: Mapping[str, SpanExporter]) -> dict[str, list[str]]:
    """name → problems; each is logged as `<name> will not work: <problem>`."""
    found: dict[str, list[str]] = {}
    for name, exporter in exporters.items():
        try:
            problems = exporter_problems(exporter)
        except Exception as exc:  # a broken check must not stop serve
            logger.warning("%s: the start-up check itself failed: %r", name, exc)
            continue
        for problem in problems:
            logger.warning("%s will not work: %s", name, problem)
        if problems:
            found[name] = problems
    return found
