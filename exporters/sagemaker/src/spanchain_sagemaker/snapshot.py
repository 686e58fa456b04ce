"""A SageMaker run written down as local files, read back through the API and S3.

The demo's emulator forgets everything when it stops; this keeps what a user would have looked at
in SageMaker Studio: the experiment, the run's trial component (parameters, metrics, status) and
every object under the run's S3 root (the trace documents `spanchain view` reads, the summary).

    <dest>/experiment.json      describe_experiment
    <dest>/run.json             describe_trial_component (parameters, metrics, status)
    <dest>/s3/<key below the run's root>   e.g. s3/traces/<trace id>.json, s3/summary.json
"""

from __future__ import annotations

import json
import os
from typing import Callable
from urllib.parse import urlsplit


def _json(path: str, doc) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, default=str, sort_keys=True)
        fh.write("\n")


def save_run(client: Callable[[str], object], location, dest: str) -> dict[str, int]:
    """Write `location` (a RunLocation) under `dest`; returns counts of what was saved.

    `client(service)` gives a boto3 client for the backend the run lives in."""
    os.makedirs(dest, exist_ok=True)
    sm = client("sagemaker")
    _json(os.path.join(dest, "experiment.json"), _strip(sm.describe_experiment(ExperimentName=location.experiment)))
    tc = _strip(sm.describe_trial_component(TrialComponentName=location.trial_component))
    _json(os.path.join(dest, "run.json"), tc)
    root = urlsplit(location.s3_root)
    bucket, prefix = root.netloc, root.path.lstrip("/")
    s3 = client("s3")
    files = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            relative = obj["Key"][len(prefix):].lstrip("/")
            target = os.path.normpath(os.path.join(dest, "s3", relative))
            if not target.startswith(os.path.join(os.path.normpath(dest), "s3")):
                continue  # a key with ../ must not write outside dest
            os.makedirs(os.path.dirname(target), exist_ok=True)
            s3.download_file(bucket, obj["Key"], target)
            files += 1
    return {"parameters": len(tc.get("Parameters", {})), "metrics": len(tc.get("Metrics", [])), "files": files}


def _strip(response: dict) -> dict:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}
