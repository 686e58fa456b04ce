"""A local SageMaker + S3 emulator: moto's server in a subprocess on a free loopback port.

Used by the tests, `spanchain demo` (when no AWS is configured), the benchmark and the fault
suite. The emulator speaks the real AWS wire protocols over HTTP, so the exporter under test runs
exactly the code it runs against AWS; only the endpoint differs.

    with start_emulator() as emu:
        os.environ.update(emu.aws_env())   # or pass emu.endpoint_url to a client
        ...
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from testkit.ports import free_port

EMULATOR_REGION = "us-east-1"
# moto accepts any credentials; these only keep botocore from searching for real ones.
EMULATOR_ACCESS_KEY = "spanchain-emulator"
EMULATOR_SECRET_KEY = "spanchain-emulator"


free_loopback_port = free_port  # the name its callers know


@dataclass
class Emulator:
    """A running moto server. `stop()` is idempotent and bounded."""

    endpoint_url: str
    port: int
    process: subprocess.Popen = field(repr=False)
    region: str = EMULATOR_REGION

    def aws_env(self) -> dict[str, str]:
        """Environment variables that point boto3 (and our exporter) at this emulator only."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": EMULATOR_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": EMULATOR_SECRET_KEY,
        }

    def client(self, service: str):
        """A boto3 client for `service` talking to this emulator (tests and the demo read back)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=EMULATOR_ACCESS_KEY,
            aws_secret_access_key=EMULATOR_SECRET_KEY,
        )

    def reset(self) -> None:
        """Forget every resource (moto's reset API); for tests that need a clean account."""
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset", method="POST", data=b""
        )
        urllib.request.urlopen(request, timeout=10).close()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout_s)

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_emulator(
    port: int | None = None, startup_timeout_s: float = 30.0, log_path: str | None = None
) -> Emulator:
    """Start `python -m moto.server` on 127.0.0.1 and wait (bounded) until it answers.

    Raises RuntimeError when moto is not installed or does not come up in time; the caller
    (demo, tests) decides what that means for it.
    """
    attempts = 1 if port else 3  # a free port can be taken between probe and bind: retry
    last_error = "not started"
    for _ in range(attempts):
        chosen = port or free_loopback_port()
        url = f"http://127.0.0.1:{chosen}"
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        env = dict(os.environ)
        # The emulator must never forward to real AWS, whatever the parent's environment says.
        env.pop("AWS_ENDPOINT_URL", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(chosen)],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        if log is not subprocess.DEVNULL:
            log.close()
        emulator = Emulator(endpoint_url=url, port=chosen, process=process)
        deadline = time.monotonic() + startup_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                last_error = f"moto server exited with code {process.returncode}"
                break
            if _healthy(url):
                return emulator
            time.sleep(0.1)
        else:
            last_error = f"moto server not healthy after {startup_timeout_s:.0f}s"
        emulator.stop()
    raise RuntimeError(f"could not start the SageMaker emulator: {last_error}")
