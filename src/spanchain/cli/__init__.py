"""The `spanchain` command (`python -m spanchain.cli` works too)."""

from spanchain.cli.commands import main

__all__ = ["main"]
