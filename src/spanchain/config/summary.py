"""Where the spans went: a few lines on stderr when a traced program exits.

One line per exporter: its counts (written / waiting / dropped) and where to look (the Aim repo,
run hashes and the command to open them; the SageMaker experiment and run; the OTLP endpoint).
Everything is read through getattr, so any exporter works and missing details are left out.
Turn it off with SPANCHAIN_SUMMARY=false (or `configure(summary=False)`).
"""

from __future__ import annotations

import sys
from typing import IO, Any, Mapping

from spanchain.config import env as envvars

ENV_SUMMARY = envvars.SPANCHAIN_SUMMARY
COUNTS = ("written", "waiting", "dropped")


def span_counts(stats: Any) -> dict[str, int] | None:
    """written / waiting / dropped from an exporter's `stats`; None when it keeps none.

    Exporters' stats carry these as ints; older ones only had `accepted`, `written` and several
    `dropped_*` counters, from which the other two follow."""
    if stats is None:
        return None
    out: dict[str, int] = {}
    for name in COUNTS:
        value = getattr(stats, name, None)
        if isinstance(value, int):
            out[name] = value
    return out if "written" in out else None


def _where(name: str, exporter: Any, guard: Any) -> str:
    """Where this exporter's data can be looked at, or ''."""
    parts: list[str] = []
    hashes = getattr(exporter, "run_hashes", None)
    config = getattr(exporter, "config", None)
    if isinstance(hashes, list) and config is not None and hasattr(exporter, "aim_up_command"):
        parts.append(f"repo {getattr(config, 'repo', '?')}")
        if hashes:
            shown = hashes[-3:]
            more = f" (+{len(hashes) - len(shown)} more)" if len(hashes) > len(shown) else ""
            parts.append(f"run{'s' if len(hashes) > 1 else ''} {', '.join(shown)}{more}")
        parts.append(f"open: {exporter.aim_up_command()}")
    location = getattr(exporter, "location", None)
    if callable(location):
        try:
            where = location()
        except Exception:
            where = None
        if where is not None:
            parts.append(f"experiment {where.experiment}, run {where.run}")
            if getattr(exporter, "backend_is_emulated", None):
                parts.append("(an emulator)")
    if guard is not None:
        parts.append(getattr(guard, "endpoint", ""))
        if getattr(guard, "unreachable", None):
            parts.append("(unreachable)")
    return " · ".join(p for p in parts if p)


def exporter_line(name: str, exporter: Any, guard: Any = None, width: int = 10) -> str:
    counts = span_counts(getattr(exporter, "stats", None))
    if counts is None and guard is not None:
        counts = {"written": guard.written, "waiting": 0, "dropped": guard.dropped}
    numbers = ", ".join(f"{k} {counts[k]}" for k in COUNTS if k in counts) if counts else "no counts kept"
    where = _where(name, exporter, guard)
    return f"  {name:<{width}} {numbers}" + (f" · {where}" if where else "")


def spans_seen(exporters: Mapping[str, Any], guards: Mapping[str, Any] | None = None) -> int:
    """Spans any exporter was handed; a process that traced nothing (a helper subprocess that
    inherited the environment) prints no summary."""
    total = 0
    for name, exporter in exporters.items():
        counts = span_counts(getattr(exporter, "stats", None))
        if counts is not None:
            total += sum(counts.values())
    for guard in (guards or {}).values():
        total += guard.written + guard.dropped
    return total


def render(exporters: Mapping[str, Any], guards: Mapping[str, Any] | None = None, note: str = "") -> str:
    if any(getattr(g, "warned", False) for g in (guards or {}).values()):
        note = ""  # the unreachable-endpoint warning already said it
    lines = ["spanchain: where the spans went" + (f" ({note})" if note else "")]
    width = max([10, *(len(name) for name in exporters)])
    for name, exporter in exporters.items():
        try:
            lines.append(exporter_line(name, exporter, (guards or {}).get(name), width))
        except Exception as exc:  # a summary must never fail the exit
            lines.append(f"  {name:<10} (no summary: {exc!r})")
    return "\n".join(lines) + "\n"


def print_summary(exporters: Mapping[str, Any], guards: Mapping[str, Any] | None = None,
                  note: str = "", out: IO[str] | None = None) -> None:
    if not spans_seen(exporters, guards):
        return
    stream = out or sys.stderr
    try:
        stream.write(render(exporters, guards, note))
        stream.flush()
    except (OSError, ValueError):  # stderr closed at exit: nothing to say it on
        pass
