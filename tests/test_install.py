"""The README's install lines, run as a new user would: wheels from `make dist` installed into a
fresh virtualenv (the extras resolve because the three wheels sit side by side), and a checkout
installed by path. Dependencies come from PyPI through the shared uv cache, so this stays fast."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
UV = ROOT / ".tools" / "bin" / "uv"


def _env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "SPANCHAIN_", "VIRTUAL_ENV", "PYTHONPATH", "UV_PROJECT"))}
    env["UV_COMPILE_BYTECODE"] = "0"  # only `--help` runs in the new environment
    return env


def _sh(*cmd, cwd=None, timeout=600):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _fresh_venv(path: pathlib.Path) -> pathlib.Path:
    _sh(UV, "venv", "--python", sys.executable, path)
    return path / "bin" / "python"


def test_make_dist_wheels_install_with_every_extra_into_a_new_virtualenv(tmp_path):
    dist = tmp_path / "dist"
    _sh("make", "dist", f"DIST={dist}", cwd=ROOT)
    wheels = sorted(p.name.split("-")[0] for p in dist.glob("*.whl"))
    assert wheels == ["spanchain", "spanchain_aim", "spanchain_sagemaker"]
    python = _fresh_venv(tmp_path / "venv")
    # the documented line, with uv's pip front end (same resolution, shared cache)
    _sh(UV, "pip", "install", "--python", python, "--find-links", dist, "spanchain[otel,aim,sagemaker]")
    bin_dir = python.parent
    help_text = _sh(bin_dir / "spanchain", "--help").stdout
    assert "serve" in help_text and "run" in help_text
    names = _sh(python, "-c", "from spanchain.config.configure import installed_exporter_names as n; print(n())").stdout
    for name in ("aim", "sagemaker", "otlp", "spanchain_console"):
        assert f"'{name}'" in names, names
    # installed from the wheels, not from this checkout
    where = _sh(python, "-c", "import spanchain_aim; print(spanchain_aim.__file__)").stdout
    assert str(tmp_path / "venv") in where


def test_checkout_installs_by_path(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".tools", "dist", "site", ".git", "__pycache__", "*.aim", "spanchain-demo"))
    python = _fresh_venv(tmp_path / "venv")
    _sh(UV, "pip", "install", "--python", python, "./", "./exporters/aim", "./exporters/sagemaker", cwd=src)
    assert "serve" in _sh(python.parent / "spanchain", "--help").stdout
