"""`spanchain ui`: Aim's web UI (`aim up`) on a repo the exporter wrote, with this install's aim.

`aim` is installed next to the Python that runs spanchain (a virtualenv's bin/), which is often
not on PATH, so a bare `aim up` says "command not found". The executable is looked up next to
sys.executable first, then on PATH.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from typing import Sequence

from spanchain.config import env as envvars

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 43800  # aim up's own default
DEFAULT_REPO = os.path.join("spanchain-demo", "aim")  # where `spanchain demo` writes

# Ready-made queries for the explorers (AimQL), shown by the demo and the docs.
EXPLORER_QUERIES = (
    ("Metrics", 'metric.name == "latency_s" and metric.context.run_type == "chat_model"'),
    ("Figures", 'figures.name == "trace.waterfall"'),
    ("Text", 'texts.name in ["llm.input", "llm.output"]'),
)


def aim_executable() -> str:
    """The `aim` command of this installation: beside sys.executable, else on PATH."""
    name = "aim.exe" if os.name == "nt" else "aim"
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("aim")
    if found:
        return found
    raise FileNotFoundError(f"no aim executable next to {sys.executable} or on PATH (pip install spanchain-aim)")


def spanchain_executable() -> str:
    """The `spanchain` command of this installation (for printing a next step that runs)."""
    beside = os.path.join(os.path.dirname(sys.executable), "spanchain")
    return beside if os.path.isfile(beside) else "spanchain"


def up_command(repo: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> list[str]:
    """argv of `aim up` serving `repo` (a directory; Aim keeps its data in repo/.aim)."""
    return [aim_executable(), "up", "--host", host, "--port", str(port), "--repo", str(repo)]


def base_url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    return f"http://{host}:{port}"


def run_url(run_hash: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """A run's own page in Aim's UI (Overview, Params, Metrics, Texts, Figures... tabs)."""
    return f"{base_url(host, port)}/runs/{run_hash}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spanchain ui", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=None,
                        help=f"Aim repo directory (default: OTEL_EXPORTER_AIM_REPO, else ./{DEFAULT_REPO})")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(list(argv) if argv is not None else None)
    repo = args.repo or os.environ.get(envvars.OTEL_EXPORTER_AIM_REPO) or DEFAULT_REPO
    if "://" in repo:
        print(f"spanchain ui: {repo} is an aim server; run `aim up --repo DIR` where its repo lives", file=sys.stderr)
        return 2
    if not os.path.isdir(os.path.join(repo, ".aim")):
        print(f"spanchain ui: no Aim repo at {repo} (run `spanchain demo` first, or pass --repo)", file=sys.stderr)
        return 2
    try:
        command = up_command(os.path.abspath(repo), args.host, args.port)
    except FileNotFoundError as exc:
        print(f"spanchain ui: {exc}", file=sys.stderr)
        return 2
    print(f"Aim UI on {os.path.abspath(repo)}: {base_url(args.host, args.port)}  (Ctrl-C stops it)", flush=True)
    if os.name == "posix":
        # Become `aim up`: signals (Ctrl-C, a supervisor's SIGTERM) then reach Aim itself.
        os.execv(command[0], command)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
