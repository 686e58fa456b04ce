"""Test and chaos helpers: a real `aim server` on a free loopback port.

`aim server` forks a uvicorn worker; both run in a session of their own so that stop(), kill()
and pause() reach the whole group (killing only the parent leaves the worker serving).
Used by this package's tests and by the reliability suite (kill, pause, restart the server).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from testkit.ports import free_port  # noqa: F401  (re-exported for callers)




def _aim_cli() -> list[str]:
    exe = Path(sys.executable).with_name("aim")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("aim")
    if found:
        return [found]
    return [sys.executable, "-m", "aim.cli.cli"]


class AimServer:
    """`aim server --repo <repo> --host 127.0.0.1 --port <free>`; `uri` is its aim:// address."""

    def __init__(self, repo: str | os.PathLike, port: int | None = None, startup_timeout_s: float = 60.0):
        self.repo = Path(repo)
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen | None = None
        self.log_path = self.repo.parent / f"aim-server-{self.port}.log"

    @property
    def uri(self) -> str:
        return f"aim://127.0.0.1:{self.port}"

    def start(self) -> "AimServer":
        self.repo.mkdir(parents=True, exist_ok=True)  # `--yes` lets the server init the repo
        log = open(self.log_path, "ab")
        env = {**os.environ, "AIM_LOG_LEVEL": "error"}
        self.process = subprocess.Popen(
            [*_aim_cli(), "server", "--repo", str(self.repo), "--host", "127.0.0.1",
             "--port", str(self.port), "--yes"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, env=env,
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"aim server exited early: {self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                if self._http_ok():
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"aim server did not start within {self.startup_timeout_s}s")

    def _http_ok(self) -> bool:
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/tracking/client/", timeout=1)
        except urllib.error.HTTPError:
            return True  # the app answers: the route may differ between versions, the server is up
        except (OSError, ValueError):
            return False
        return True

    def _signal(self, sig: int) -> None:
        # The group outlives the parent while the uvicorn worker lives, so signal it regardless.
        if self.process is not None:
            try:
                os.killpg(self.process.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def pause(self) -> None:
        """Freeze the server (it accepts connections but never answers): a hung backend."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """Die abruptly, like a crashed server."""
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None:
            return
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pass
        self._signal(signal.SIGKILL)
        try:
            self.process.wait(1)
        except subprocess.TimeoutExpired:
            pass

    def restart(self) -> "AimServer":
        self.stop()
        return self.start()

    def __enter__(self) -> "AimServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
