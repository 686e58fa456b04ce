"""Lazy public names for a package: `import pkg` stays cheap, heavy modules load on first use.

Shared by `spanchain` and the exporter packages, whose top-level imports run during
OpenTelemetry's entry-point scans and must not pull in LangChain, Aim, boto3 or the SageMaker SDK.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_getattr(package: str, names: Mapping[str, str], namespace: dict) -> Callable[[str], Any]:
    """A module `__getattr__` resolving each name from `"module:attribute"`, cached in `namespace`."""

    def __getattr__(name: str) -> Any:
        target = names.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = target.split(":")
        value = getattr(importlib.import_module(module), attribute)
        namespace[name] = value
        return value

    return __getattr__
