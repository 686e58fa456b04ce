"""System params for a run when the user asks for them, without secrets.

Aim's own `log_system_params=True` records every environment variable except four name
patterns; CREDENTIAL, AUTH, DSN or PGPASSWORD-style names and URLs with passwords get through.
We therefore never let Aim collect them and record our own filtered version instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

from spanchain_aim.sanitize import REDACTED, looks_secret, scrub_url_credentials

_GIT_TIMEOUT_S = 2.0


def safe_environment(environ=None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    return {
        name: scrub_url_credentials(value)
        for name, value in sorted(environ.items())
        if not looks_secret(name)
    }


def installed_packages() -> dict[str, str]:
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            packages[name.lower()] = dist.version
    return dict(sorted(packages.items()))


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(("git", *args), capture_output=True, text=True, timeout=_GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info() -> dict[str, str]:
    info = {}
    for key, args in (("branch", ("rev-parse", "--abbrev-ref", "HEAD")),
                      ("commit", ("rev-parse", "HEAD")),
                      ("remote_origin_url", ("config", "--get", "remote.origin.url"))):
        value = _git(*args)
        if value:
            info[key] = scrub_url_credentials(value)
    return info


def system_params() -> dict:
    """The same shape Aim's UI shows under `__system_params`, with secrets left out."""
    return {
        "packages": installed_packages(),
        "env_variables": safe_environment(),
        "git_info": git_info(),
        "executable": sys.executable,
        "arguments": [REDACTED if looks_secret(a.split("=", 1)[0]) and "=" in a else a for a in sys.argv],
    }
