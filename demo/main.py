"""`spanchain demo`: the main job. An instrumented LangChain app exporting everywhere at once.

By default the spans go to:
- the terminal, as a tree (the console exporter);
- a local Aim repo (`./spanchain-demo/aim`, or --aim-repo / OTEL_EXPORTER_AIM_REPO);
- SageMaker Experiments: to AWS when credentials or an endpoint are configured, otherwise to a
  local moto server that the demo starts itself and labels as an emulator.
Then it prints where the data went and how to look at it. What it leaves behind in
./spanchain-demo: the Aim repo, `spans.jsonl` (every span, for `spanchain view`), and when the
emulator was used, `sagemaker/<experiment>/<run>/` (the run's parameters, metrics and trace
documents, read back before the emulator stopped).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable, Sequence

DEFAULT_DIR = "spanchain-demo"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spanchain demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--aim-repo", default=None, help="Aim repo path or aim://host:port (default: OTEL_EXPORTER_AIM_REPO, else ./spanchain-demo/aim)")
    p.add_argument("--experiment", default="spanchain-demo", help="Aim experiment / SageMaker experiment name")
    p.add_argument("--no-aim", action="store_true", help="do not export to Aim")
    p.add_argument("--no-sagemaker", action="store_true", help="do not export to SageMaker")
    p.add_argument("--emulator", action="store_true", help="always use a local SageMaker emulator, even if AWS is configured")
    p.add_argument("--no-tree", action="store_true", help="do not print the span tree")
    return p


def _aws_configured() -> bool:
    if os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER"):
        return True
    try:
        import boto3

        return boto3.Session().get_credentials() is not None
    except Exception:
        return False


class _Demo:
    def __init__(self, args: argparse.Namespace, out: Callable[[str], None]) -> None:
        self.args = args
        self.out = out
        self.exporters: dict[str, Any] = {}
        self.emulator = None
        self.cleanups: list[Callable[[], None]] = []
        self.memory = None  # every span, saved to spans.jsonl afterwards

    def build(self) -> None:
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from spanchain.export.console import ConsoleTreeExporter

        self.memory = InMemorySpanExporter()
        if not self.args.no_tree:
            self.exporters["console"] = ConsoleTreeExporter(output=sys.stdout)
        if not self.args.no_aim:
            self._add_aim()
        if not self.args.no_sagemaker:
            self._add_sagemaker()

    def _add_aim(self) -> None:
        try:
            from spanchain_aim import AimSpanExporter
        except ImportError:
            self.out("Aim: spanchain-aim is not installed (pip install spanchain-aim); skipped")
            return
        repo = self.args.aim_repo or os.environ.get("OTEL_EXPORTER_AIM_REPO") or os.path.join(DEFAULT_DIR, "aim")
        if "://" not in repo:
            os.makedirs(repo, exist_ok=True)
            repo = os.path.abspath(repo)
        self.exporters["aim"] = AimSpanExporter(repo=repo, experiment=self.args.experiment, run_per="session")

    def _add_sagemaker(self) -> None:
        try:
            from spanchain_sagemaker import SageMakerSpanExporter
        except ImportError:
            self.out("SageMaker: spanchain-sagemaker is not installed (pip install spanchain-sagemaker); skipped")
            return
        if self.args.emulator or not _aws_configured():
            from testkit.moto_server import start_emulator

            self.out("SageMaker: no AWS credentials or endpoint configured; starting a local emulator (moto)…")
            self.emulator = start_emulator()
            env = self.emulator.aws_env()
            previous = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            self.cleanups.append(lambda: _restore(previous))
        self.exporters["sagemaker"] = SageMakerSpanExporter(
            experiment_name=self.args.experiment, run_name=f"demo-{time.strftime('%Y%m%d-%H%M%S')}", run_per="session"
        )

    def run(self) -> int:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor

        from demo import app as demo_app
        from spanchain import OpenTelemetryCallbackHandler

        provider = TracerProvider(resource=Resource.create({"service.name": "spanchain-demo"}))
        for exporter in [*self.exporters.values(), self.memory]:
            # Our exporters queue in export(): a simple processor never waits on a backend.
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        handler = OpenTelemetryCallbackHandler(provider)
        self.out("Running the demo app (offline fake models: retriever, tool-calling agent, streamed answer, one failing step)…")
        started = time.monotonic()
        demo_app.session().invoke(
            "what does spanchain keep in aim and sagemaker",
            config={"callbacks": [handler], "tags": ["spanchain-demo"], "metadata": {"demo": True}},
        )
        elapsed = time.monotonic() - started
        self.out(f"  app finished in {elapsed * 1000:.0f} ms; flushing exporters…")
        try:
            provider.force_flush(30_000)
            # Span processors do not pass force_flush on to their exporters: ask ours directly,
            # so everything is written (and locations are known) before we report them.
            for exporter in self.exporters.values():
                exporter.force_flush(30_000)
            report = self._where()
        finally:
            provider.shutdown()  # before the emulator stops: exporters close their runs there
        # Read back only now: a session run is marked Completed when its exporter shuts down.
        sm = self.exporters.get("sagemaker")
        where = sm.location() if sm is not None else None
        if self.emulator and where is not None:
            report.append(self._emulator_readback(where))
            report.extend(self._save_emulated_run(where))
        report.extend(self._save_spans())
        self.out("")
        self.out("Where the data went:")
        for line in report:
            self.out("  " + line)
        return 0

    def _where(self) -> list[str]:
        lines: list[str] = []
        if "console" in self.exporters:
            lines.append("terminal: the span tree above")
        aim = self.exporters.get("aim")
        if aim is not None:
            hashes = aim.run_hashes or [h for h in [aim.session_run_hash()] if h]
            lines.append(f"Aim repo: {aim.config.repo}")
            lines.append(f"  run hash: {', '.join(hashes) if hashes else '(none written; see log)'}  experiment: {self.args.experiment}")
            lines.extend(_aim_next_steps(aim, hashes))
        sm = self.exporters.get("sagemaker")
        if sm is not None:
            where = sm.location()
            label = f"EMULATOR (moto at {self.emulator.endpoint_url}, gone when the demo ends; a copy is saved below)" if self.emulator else "AWS"
            lines.append(f"SageMaker Experiments [{label}]:")
            if where is None:
                lines.append("  (nothing written; see log)")
            else:
                lines.append(f"  experiment: {where.experiment}  run: {where.run}")
                lines.append(f"  trial component: {where.trial_component}  trial: {where.trial}")
                lines.append(f"  S3: {where.s3_root}  traces under {where.traces_prefix}")
                if where.summary:
                    lines.append(f"  summary: {where.summary}")
        return lines

    def _emulator_readback(self, where: Any) -> str:
        try:
            sm = self.emulator.client("sagemaker")
            tc = sm.describe_trial_component(TrialComponentName=where.trial_component)
            return f"  read back: {len(tc.get('Parameters', {}))} parameters, {len(tc.get('Metrics', []))} metrics, status {tc.get('Status', {}).get('PrimaryStatus')}"
        except Exception as exc:
            return f"  read back failed: {exc!r}"

    def _save_emulated_run(self, where: Any) -> list[str]:
        """The emulator forgets everything when it stops: write the run down under the demo dir."""
        from spanchain_sagemaker.snapshot import save_run

        dest = os.path.abspath(os.path.join(DEFAULT_DIR, "sagemaker", where.experiment, where.run))
        try:
            saved = save_run(self.emulator.client, where, dest)
        except Exception as exc:
            return [f"  saving the emulated run failed: {exc!r}"]
        return [
            f"  saved: {dest}  (experiment.json, run.json: {saved['parameters']} parameters, "
            f"{saved['metrics']} metrics; s3/: {saved['files']} files, trace documents under s3/traces)",
        ]

    def _save_spans(self) -> list[str]:
        """Every span as a JSON line, for `spanchain view` (and anything else reading JSON)."""
        import json

        from spanchain.export.traces import span_to_dict

        path = os.path.abspath(os.path.join(DEFAULT_DIR, "spans.jsonl"))
        spans = self.memory.get_finished_spans() if self.memory is not None else ()
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                for span in spans:
                    fh.write(json.dumps(span_to_dict(span)) + "\n")
        except OSError as exc:
            return [f"spans file: cannot write {path}: {exc.strerror or exc}"]
        # The workspace's own command: a virtualenv's bin/ is often not on PATH.
        spanchain = os.path.join(os.path.dirname(sys.executable), "spanchain")
        return [f"spans file: {path}  ({len(spans)} spans; view them: {spanchain} view {path})"]

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            cleanup()
        if self.emulator is not None:
            self.emulator.stop()


def _aim_next_steps(aim: Any, hashes: list[str]) -> list[str]:
    """How to look at the Aim run: a command that runs as printed, the run's page, queries."""
    if aim.config.is_remote:
        return [f"  open it:  {aim.aim_up_command()}"]
    from spanchain_aim import ui

    lines = [f"  open it:  {ui.spanchain_executable()} ui --repo {aim.config.repo}   (in this checkout: make ui)",
             f"            then {ui.base_url()}  → Runs, Metrics, Figures and Text explorers"]
    for run_hash in hashes[-1:]:
        lines.append(f"  this run: {ui.run_url(run_hash)}  (tabs Texts: the trace tree; Figures: its waterfall)")
    lines.append("  try in the explorers (Metrics: the toggle left of the query; Figures, Text: the pencil icon):")
    lines.extend(f"    {where:8} {query}" for where, query in ui.EXPLORER_QUERIES)
    return lines


def _restore(previous: dict[str, str | None]) -> None:
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(argv) if argv is not None else None)
    out = lambda line: print(line, flush=True)  # noqa: E731
    demo = _Demo(args, out)
    try:
        demo.build()
        return demo.run()
    finally:
        demo.close()


if __name__ == "__main__":
    raise SystemExit(main())
