"""Fixtures for the Aim exporter tests: one real Aim repo and one real `aim server` per session.

Creating an Aim repo costs seconds (SQLite migrations), so tests share one and tell their runs
apart by the hashes their exporter reports.
"""

import gc

import pytest

from testkit.aim_server import AimServer


@pytest.fixture(scope="session")
def aim_repo(tmp_path_factory):
    from aim import Repo

    path = tmp_path_factory.mktemp("aim-repo")
    Repo.from_path(str(path), init=True)
    return str(path)


@pytest.fixture(scope="session")
def aim_server(tmp_path_factory):
    server = AimServer(tmp_path_factory.mktemp("aim-server") / "repo").start()
    yield server
    gc.collect()  # Aim's remote objects release themselves on the server while it still runs
    server.stop()


@pytest.fixture
def fresh_aim_server(tmp_path):
    """A server of its own, for tests that pause or kill it."""
    server = AimServer(tmp_path / "repo").start()
    yield server
    gc.collect()  # Aim's remote objects release themselves on the server while it still runs
    server.stop()
