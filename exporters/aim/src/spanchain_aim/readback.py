"""Read an Aim repo back through Aim's own API: runs, params, Text and metric sequences.

Used by the tests, the demo and anyone checking what the exporter wrote. Aim 3.28+ keeps its
read index up to date only inside `aim up`, so a plain read of a fresh repo sees runs without
params or sequences. Each run is therefore indexed (Aim's RepoIndexManager) before it is read.
Read only closed runs (after the exporter's shutdown or flush_tracker).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


def _ctx_key(context: dict) -> tuple:
    return tuple(sorted(context.items()))


@dataclass
class RunSnapshot:
    hash: str
    experiment: str | None
    name: str | None
    params: dict[str, Any]
    created: float = 0.0
    texts: dict[tuple[str, tuple], list[tuple[int, str]]] = field(default_factory=dict)
    metrics: dict[tuple[str, tuple], list[tuple[int, float]]] = field(default_factory=dict)
    description: str | None = None
    # (name, context) → [(step, plotly figure as a dict)]
    figures: dict[tuple[str, tuple], list[tuple[int, dict]]] = field(default_factory=dict)

    def figure_steps(self, sequence: str, /, **context: str) -> list[tuple[int, dict]]:
        return self._select(self.figures, sequence, context)

    def text_steps(self, sequence: str, /, **context: str) -> list[tuple[int, str]]:
        """(step, text) of one Text sequence; with no context given, all contexts merged."""
        return self._select(self.texts, sequence, context)

    def texts_of(self, sequence: str, /, **context: str) -> list[str]:
        return [t for _, t in self.text_steps(sequence, **context)]

    def metric_steps(self, sequence: str, /, **context: str) -> list[tuple[int, float]]:
        return self._select(self.metrics, sequence, context)

    def metric_values(self, sequence: str, /, **context: str) -> list[float]:
        return [v for _, v in self.metric_steps(sequence, **context)]

    def span_keys(self) -> set[tuple[str, tuple, int]]:
        """One (run, context, step) per span written: every finished span records its latency
        once per run, at the step it keeps however often its trace is rewritten into that run
        (a trace written in parts also leaves its partial tree Texts, so counting tree lines
        would count some spans twice). A span written into two runs counts in each."""
        return {(self.hash, ctx, step) for (name, ctx), points in self.metrics.items() if name == "latency_s"
                for step, _ in points}

    def contexts(self, sequence: str) -> list[dict]:
        return [dict(ctx) for (n, ctx) in list(self.texts) + list(self.metrics) if n == sequence]

    @staticmethod
    def _select(store, name, context):
        points = []
        for (seq, ctx), values in store.items():
            if seq != name:
                continue
            if context and not set(context.items()) <= set(ctx):
                continue
            points.extend(values)
        return sorted(points, key=lambda p: p[0])


def _open_repo(repo_path: str):
    from aim import Repo

    return Repo.from_path(str(repo_path))


def index_runs(repo, run_hashes) -> None:
    """Bring Aim's read index up to date for these runs (what `aim up` does in the background)."""
    from aim.sdk.index_manager import RepoIndexManager

    manager = RepoIndexManager.get_index_manager(repo)
    for run_hash in run_hashes:
        manager.index(run_hash)
    repo.container_pool.clear()


def _snapshot(run) -> RunSnapshot:
    from aim.sdk.sequences.figure_sequence import Figures
    from aim.sdk.sequences.metric import Metric
    from aim.sdk.sequences.text_sequence import Texts

    params = run.get(..., default={}, strict=True) or {}
    snap = RunSnapshot(run.hash, run.experiment, run.name, dict(params), float(run.creation_time or 0),
                       description=run.description)
    for name, context, _ in run.iter_sequence_info_by_type(Texts.allowed_dtypes()):
        seq = run.get_text_sequence(name, context)
        steps, (values, *_rest) = seq.data.items_list()
        snap.texts[(name, _ctx_key(context.to_dict()))] = [
            (int(s), v.data) for s, v in zip(steps, values)
        ]
    for name, context, _ in run.iter_sequence_info_by_type(Metric.allowed_dtypes()):
        seq = run.get_metric(name, context)
        steps, (values, *_rest) = seq.data.items_list()
        snap.metrics[(name, _ctx_key(context.to_dict()))] = [
            (int(s), float(v)) for s, v in zip(steps, values)
        ]
    for name, context, _ in run.iter_sequence_info_by_type(Figures.allowed_dtypes()):
        seq = run.get_figure_sequence(name, context)
        steps, (values, *_rest) = seq.data.items_list()
        snap.figures[(name, _ctx_key(context.to_dict()))] = [
            (int(s), json.loads(v.data)) for s, v in zip(steps, values)
        ]
    return snap


def read_runs(repo_path: str, run_hashes=None) -> list[RunSnapshot]:
    """Snapshots of the given runs (default: every run in the repo), oldest first."""
    repo = _open_repo(repo_path)
    hashes = list(run_hashes) if run_hashes is not None else repo.list_all_runs()
    index_runs(repo, hashes)
    snaps = []
    for run_hash in hashes:
        run = repo.get_run(run_hash)
        if run is not None:
            snaps.append(_snapshot(run))
    snaps.sort(key=lambda s: (s.created, s.hash))
    repo.container_pool.clear()
    return snaps


def read_run(repo_path: str, run_hash: str) -> RunSnapshot:
    found = read_runs(repo_path, [run_hash])
    if not found:
        raise LookupError(f"no Aim run {run_hash} in {repo_path}")
    return found[0]
