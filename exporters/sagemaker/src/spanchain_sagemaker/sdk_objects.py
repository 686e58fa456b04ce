"""Reading a user's SageMaker SDK objects (a `Run`, a `Session`): attributes only, no SDK calls.

Works with `sagemaker.core.experiments.run.Run` and the legacy `sagemaker.experiments.run.Run`
(same attribute names) without importing either, so the SDK's import-time side effects never
happen because of us.
"""

from __future__ import annotations

from typing import Any

from spanchain_sagemaker import sanitize as names
from spanchain_sagemaker.config import Settings



def run_session(run: Any):
    component = getattr(run, "_trial_component", None)
    return getattr(component, "sagemaker_session", None) or getattr(run, "sagemaker_session", None)


def read_user_run(run: Any, settings: Settings) -> dict:
    """RunRef fields of a user's Run; "bucket" may be None (resolved on the writer thread)."""
    component = getattr(run, "_trial_component", None)
    experiment = str(getattr(run, "experiment_name"))
    run_name = str(getattr(run, "run_name", "") or "")
    tc_name = getattr(component, "trial_component_name", None) or f"{experiment}-{run_name}"
    trial = getattr(run, "run_group_name", None) or names.trial_name(experiment)
    uploader = getattr(run, "_artifact_uploader", None)
    bucket = settings.bucket or getattr(uploader, "artifact_bucket", None)
    if not bucket:
        session = run_session(run)
        bucket = getattr(session, "_default_bucket", None) or getattr(
            session, "_default_bucket_name_override", None
        )
    prefix = getattr(uploader, "artifact_prefix", None)
    if prefix is not None and not settings.prefix_explicit:
        settings.prefix = names.s3_prefix(prefix)
    settings.experiment = experiment
    return {
        "experiment": experiment,
        "run": run_name,
        "trial_component": str(tc_name),
        "trial": str(trial),
        "bucket": bucket or None,
    }


def session_storage(sagemaker_session: Any) -> tuple[str | None, str | None]:
    """(default bucket, default bucket prefix) a user's SageMaker Session was given, read by
    attribute: `Session(default_bucket=..., default_bucket_prefix=...)` or its resolved
    `default_bucket()`. None where the session leaves it to the SDK's derived default (we derive
    the same name ourselves, without the SDK's calls)."""
    if sagemaker_session is None:
        return None, None
    bucket = getattr(sagemaker_session, "_default_bucket", None) or getattr(
        sagemaker_session, "_default_bucket_name_override", None
    )
    prefix = getattr(sagemaker_session, "default_bucket_prefix", None)
    return (str(bucket) if bucket else None), (str(prefix) if prefix else None)


def session_parts(sagemaker_session: Any, boto_session: Any):
    """(boto3 Session, {service: endpoint}) from a SageMaker SDK Session, read by attribute."""
    endpoints: dict[str, str] = {}
    if sagemaker_session is None:
        return boto_session, endpoints
    boto_session = boto_session or getattr(sagemaker_session, "boto_session", None)
    for service, attribute in (
        ("sagemaker", "sagemaker_client"),
        ("sagemaker-metrics", "sagemaker_metrics_client"),
        ("s3", "s3_client"),
    ):
        client = getattr(sagemaker_session, attribute, None)
        url = getattr(getattr(client, "meta", None), "endpoint_url", None)
        if url:
            endpoints[service] = url
    # One custom endpoint (an emulator) serves every service; never let STS go elsewhere.
    custom = [u for u in endpoints.values() if "amazonaws.com" not in u]
    if custom:
        for service in ("sagemaker", "sagemaker-metrics", "s3", "sts"):
            if "amazonaws.com" in endpoints.get(service, "amazonaws.com"):
                endpoints[service] = custom[0]
    return boto_session, endpoints


def is_emulated(client) -> bool:
    url = getattr(client.meta, "endpoint_url", "") or ""
    return "amazonaws.com" not in url and "amazonaws.com.cn" not in url
