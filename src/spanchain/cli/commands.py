"""The `spanchain` command. Every subcommand imports its machinery only when it runs."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from typing import Sequence

from spanchain.config import env as envvars

BOOTSTRAP_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bootstrap")

DESCRIPTION = """\
Every LangChain run as an OpenTelemetry span, exported to Aim, SageMaker Experiments and any
OpenTelemetry collector. Configuration follows the OpenTelemetry environment variables
(OTEL_TRACES_EXPORTER, OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_*, ...); see docs/configuration.md.
"""

EPILOG = """\
examples:
  OTEL_TRACES_EXPORTER=aim,otlp spanchain run -- python app.py
  spanchain run --console -- python app.py          # print each trace as a tree
  spanchain serve --exporters aim,sagemaker --host 0.0.0.0
  spanchain view traces.jsonl                        # OTLP/JSON or span JSON lines
  spanchain view --listen 4318                       # live trees from any OTLP source
  spanchain demo                                     # the example app, instrumented
  spanchain ui                                       # Aim's web UI on the demo's Aim repo
  spanchain bench serve                              # spans/s through `serve` into Aim
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spanchain",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run a program with every LangChain run traced (no code changes)",
        description="Run COMMAND with spanchain configured from OTEL_* variables before the app starts. "
        "Options below set the matching variables for the child only.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  OTEL_SERVICE_NAME=shop OTEL_TRACES_EXPORTER=aim,sagemaker,otlp spanchain run -- python app.py",
    )
    run.add_argument("--exporters", help="sets OTEL_TRACES_EXPORTER, e.g. aim,sagemaker,otlp")
    run.add_argument("--service-name", help="sets OTEL_SERVICE_NAME")
    run.add_argument("--console", action="store_true", help="also print each trace as a tree (spanchain_console)")
    run.add_argument("--otlp-content", action="store_true", help="sets SPANCHAIN_OTLP_CONTENT=true (content to collectors too)")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- program and its arguments")

    serve = sub.add_parser(
        "serve",
        help="receive OTLP/HTTP traces and write them to Aim / SageMaker",
        description="An OTLP/HTTP receiver (protobuf, JSON, gzip) feeding spanchain's exporters. "
        "Point a collector's otlphttp exporter (or any OTLP SDK) at http://HOST:PORT.",
    )
    from_serve_app = importlib.import_module("spanchain.serve.app") if _serve_available() else None
    if from_serve_app is not None:
        from_serve_app.add_arguments(serve)

    view = sub.add_parser(
        "view",
        help="show span trees in the terminal, from files or a live OTLP stream",
        description="Print traces as trees with durations, tokens and errors.",
    )
    view.add_argument("files", nargs="*", help="OTLP/JSON or span JSON (lines) files; - for stdin")
    view.add_argument("--listen", metavar="[HOST:]PORT", help="receive OTLP/HTTP and print traces as they complete")
    view.add_argument("--format", choices=("tree", "json"), default="tree", help="output format (default tree)")

    demo = sub.add_parser("demo", help="run the instrumented example app", add_help=False)
    demo.add_argument("args", nargs=argparse.REMAINDER)
    ui = sub.add_parser("ui", help="open Aim's web UI (aim up) on the demo's Aim repo, or --repo DIR",
                        add_help=False)
    ui.add_argument("args", nargs=argparse.REMAINDER)
    bench = sub.add_parser("bench", help="benchmarks: core | aim | sagemaker | serve", add_help=False)
    bench.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _serve_available() -> bool:
    try:
        importlib.import_module("google.protobuf")
        importlib.import_module("opentelemetry.proto")
    except ImportError:
        return False
    return True


# --- run ---------------------------------------------------------------------------------------


def child_environment(args: argparse.Namespace, environ: dict | None = None) -> dict:
    """The child's environment: our bootstrap first on PYTHONPATH, options as OTEL_* variables."""
    env = dict(os.environ if environ is None else environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != BOOTSTRAP_DIR]
    env["PYTHONPATH"] = os.pathsep.join([BOOTSTRAP_DIR, *paths])
    if args.exporters:
        env[envvars.OTEL_TRACES_EXPORTER] = args.exporters
    if args.console:
        current = env.get(envvars.OTEL_TRACES_EXPORTER) or "otlp"
        names = [n.strip() for n in current.split(",") if n.strip() and n.strip() != "none"]
        if "spanchain_console" not in names:
            names.append("spanchain_console")
        env[envvars.OTEL_TRACES_EXPORTER] = ",".join(names)
    if args.service_name:
        env[envvars.OTEL_SERVICE_NAME] = args.service_name
    if args.otlp_content:
        env[envvars.SPANCHAIN_OTLP_CONTENT] = "true"
    return env


def exporter_name_problem(env: dict) -> str | None:
    """Why the child's OTEL_TRACES_EXPORTER cannot work as written, or None.

    `spanchain run` stops here rather than start the app with part of its tracing missing: the
    user is at the terminal and can fix the name now. (Inside an app started another way, the
    valid exporters keep working and the typo is logged; see config.configure_from_environment.)"""
    from spanchain.config.configure import ENV_TRACES_EXPORTER, split_names, unknown_exporters_problem

    raw = env.get(ENV_TRACES_EXPORTER) or ""
    _, reasons = unknown_exporters_problem(split_names(raw))
    if reasons is None:
        return None
    return f"{ENV_TRACES_EXPORTER}={raw}: {reasons}. Not starting the app: fix the name (or pass --exporters)."


def _cmd_run(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print("spanchain run: nothing to run; usage: spanchain run [options] -- python app.py", file=sys.stderr)
        return 2
    env = child_environment(args)
    problem = exporter_name_problem(env)
    if problem:
        print(f"spanchain run: {problem}", file=sys.stderr)
        return 2
    try:
        # exec: the app becomes this process, so signals and exit codes are its own.
        os.execvpe(cmd[0], cmd, env)
    except OSError as exc:
        print(f"spanchain run: cannot run {cmd[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    return 0  # not reached


# --- view --------------------------------------------------------------------------------------


def _parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise SystemExit(f"spanchain view: --listen expects [HOST:]PORT, got {value!r}") from None


def _cmd_view(args: argparse.Namespace) -> int:
    from spanchain.cli.view import ViewError, view_files

    if args.listen:
        return _view_listen(*_parse_listen(args.listen))
    if not args.files:
        print("spanchain view: give files (or - for stdin), or --listen [HOST:]PORT", file=sys.stderr)
        return 2
    try:
        return view_files(args.files, args.format)
    except ViewError as exc:
        print(f"spanchain view: {exc}", file=sys.stderr)
        return 2


def _view_listen(host: str, port: int) -> int:
    import signal
    import threading

    from spanchain.export.console import ConsoleTreeExporter
    from spanchain.serve.app import start
    from spanchain.serve.server import ServeOptions

    try:
        receiver = start({"console": ConsoleTreeExporter(sys.stdout)}, ServeOptions(host=host, port=port))
    except OSError as exc:
        print(f"spanchain view: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 2
    print(f"spanchain view: listening on {receiver.url} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    receiver.stop(10.0)
    return 0


# --- delegated commands ------------------------------------------------------------------------


def _delegate(module: str, argv: Sequence[str], what: str) -> int:
    # The demo and the benchmarks live in a checkout (demo/, benchmarks/), not in the package.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        if exc.name != module:
            raise
        print(f"spanchain {what}: not available in this installation ({module} is missing)", file=sys.stderr)
        return 2
    return int(mod.main(list(argv)) or 0)


def _cmd_bench(argv: Sequence[str]) -> int:
    if argv and argv[0] == "serve" and importlib.util.find_spec("benchmarks") is None:
        return _delegate("benchmarks.serve", argv[1:], "bench serve")
    return _delegate("benchmarks", argv, "bench")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser()
    # demo, ui and bench own their options: pass everything after the subcommand through untouched.
    if argv and argv[0] in ("demo", "bench", "ui"):
        if argv[0] == "demo":
            return _delegate("demo.main", argv[1:], "demo")
        if argv[0] == "ui":
            return _delegate("spanchain_aim.ui", argv[1:], "ui")
        return _cmd_bench(argv[1:])
    args = parser.parse_args(argv)
    if args.version:
        from spanchain.version import __version__

        print(f"spanchain {__version__}")
        return 0
    if args.command == "run":
        return _cmd_run(args)
    if args.command == "serve":
        if not _serve_available():
            print("spanchain serve: needs protobuf support: pip install 'spanchain[otel]'", file=sys.stderr)
            return 2
        from spanchain.serve.app import main as serve_main

        return serve_main(args)
    if args.command == "view":
        return _cmd_view(args)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
