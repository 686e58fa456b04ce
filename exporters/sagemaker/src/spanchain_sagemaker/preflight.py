"""What will not work with this exporter's AWS set-up, checked before spans arrive (`spanchain serve`).

Credentials through boto3's own chain (AWS_* variables, ~/.aws files, SSO, container or instance
role), a region unless an endpoint is given, and, when a bucket is configured, that it answers.
Each check is bounded: one attempt with short timeouts.
"""

from __future__ import annotations

import os

CHECK_TIMEOUT_S = 3.0


def _endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER") or os.environ.get("AWS_ENDPOINT_URL")


def problems(exporter) -> list[str]:
    import boto3
    from botocore.config import Config

    session = boto3.Session()
    if session.get_credentials() is None:
        return [
            "no AWS credentials found (boto3 looked at AWS_* variables, ~/.aws, SSO and instance "
            "roles); nothing reaches SageMaker until there are"
        ]
    found: list[str] = []
    if not session.region_name and not _endpoint():
        found.append("no AWS region (set AWS_REGION); SageMaker calls will fail")
        return found
    bucket = getattr(getattr(exporter, "settings", None), "bucket", None)
    if bucket:
        config = Config(connect_timeout=CHECK_TIMEOUT_S, read_timeout=CHECK_TIMEOUT_S, retries={"max_attempts": 1})
        try:
            session.client("s3", config=config).head_bucket(Bucket=bucket)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
            reason = {"404": "does not exist", "NoSuchBucket": "does not exist", "403": "access denied"}.get(
                str(code), f"{type(exc).__name__}: {exc}"
            )
            found.append(f"S3 bucket {bucket!r}: {reason}; trace documents cannot be uploaded")
    return found
