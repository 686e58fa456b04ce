"""What will not work with this exporter's Aim repo, checked before spans arrive (`spanchain serve`).

Local repo: its folder (or the nearest existing parent, where it would be created) must be a
writable directory. `aim://host:port`: something must accept connections there.
"""

from __future__ import annotations

import os

from spanchain.config.reachability import host_port, tcp_probe


def _writable_dir_problem(path: str) -> str | None:
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        return f"Aim repo {path} is not writable ({probe} is not a directory)"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"Aim repo {path} is not writable (no write permission on {probe})"
    return None


def problems(exporter) -> list[str]:
    repo = str(exporter.config.repo)
    if exporter.config.is_remote:
        address = host_port(repo.replace("aim://", "http://", 1))
        reason = tcp_probe(*address) if address else "not a host:port address"
        return [f"aim server {repo} is not reachable ({reason})"] if reason else []
    problem = _writable_dir_problem(repo)
    return [problem] if problem else []
