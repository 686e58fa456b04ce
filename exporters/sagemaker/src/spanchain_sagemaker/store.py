"""The write side: SageMaker Experiments entities, metrics and S3 objects, through `AwsApi`.

Runs are laid out exactly as the SageMaker SDK's `Run` lays them out, so `load_run`, `list_runs`
and SageMaker Studio treat ours as theirs:
- experiment `<exp>`; run group (trial) `Default-Run-Group-<exp>`;
- trial component `<exp>-<run>`, tagged `sagemaker:trial-component-source=run`, associated with
  the run group;
- files under `s3://<bucket>/<prefix>/<trial component>/`.

Control-plane calls happen once per run: experiments, trials and runs already ensured are
remembered. Entity creation (experiment, trial, session run) runs on the exporter's writer thread before
any concurrent per-trace writes start.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Sequence

from spanchain.logonce import LogOnce

from spanchain_sagemaker import sanitize as names
from spanchain_sagemaker.aws import AwsApi, error_code, is_already_exists, is_not_found
from spanchain_sagemaker.translate import MetricPoint, metric_batches

logger = logging.getLogger(__name__)

RUN_TC_TAG = {"Key": "sagemaker:trial-component-source", "Value": "run"}
RETRYABLE_METRIC_ERRORS = frozenset({"CONFLICT_ERROR", "INTERNAL_ERROR"})


class MetricsIncomplete(RuntimeError):
    """Some metric points still failed with a retryable code after our retries."""


def is_rejected(exc: BaseException) -> bool:
    """The API refused the request for its content (HTTP 400 ValidationException): sending it
    again cannot help, sending it without the offending value can."""
    return error_code(exc) == "ValidationException" and not (is_already_exists(exc) or is_not_found(exc))


@dataclass(frozen=True)
class RunRef:
    """Where one run lives: SageMaker names and the S3 location of its files."""

    experiment: str
    run: str
    trial_component: str
    trial: str
    bucket: str
    prefix: str  # the artifact prefix, without the trial component

    @property
    def s3_root_key(self) -> str:
        return f"{self.prefix}/{self.trial_component}" if self.prefix else self.trial_component

    def s3_key(self, *parts: str) -> str:
        return "/".join([self.s3_root_key, *parts])

    def s3_uri(self, *parts: str) -> str:
        return f"s3://{self.bucket}/{self.s3_key(*parts)}"


class ExperimentsStore:
    """Called from the exporter's writer thread, and for independent per-trace writes
    (put_object, put_metrics, ensure_run of a one-trace run) from its small I/O pool."""

    def __init__(self, api: AwsApi, create_bucket: bool = True, retag_runs: bool = False) -> None:
        self.api = api
        # Emulators (moto) ignore Tags on CreateTrialComponent; without the run tag `list_runs`
        # skips the run, so against them the tag is applied again with AddTags.
        self._retag_runs = retag_runs
        self._create_bucket = create_bucket
        self._experiments: set[str] = set()
        self._trials: set[str] = set()
        self._runs: set[str] = set()
        self._buckets: set[str] = set()
        self._default_bucket: str | None = None
        # Buckets we derived from the account (the SDK's predictable default name): every call
        # says which account must own them, so a bucket someone else created under that name is
        # never written to (the SDK does the same).
        self._expected_owner: dict[str, str] = {}
        # Parameter keys the API rejected: left out of every later request of this exporter.
        self.rejected_parameters: set[str] = set()
        self._counts_lock = threading.Lock()
        self.metric_points_sent = 0
        self.metric_points_dropped: collections.Counter[str] = collections.Counter()
        self._log = LogOnce(logger)

    # --- control plane (once per entity) ----------------------------------------------------
    def ensure_experiment(self, experiment: str) -> None:
        if experiment in self._experiments:
            return
        try:
            self.api.call(
                "sagemaker",
                "CreateExperiment",
                ExperimentName=experiment,
                DisplayName=names.display_name(experiment),
                Description="LangChain traces exported by spanchain",
            )
        except Exception as exc:
            if not is_already_exists(exc):
                raise
        self._experiments.add(experiment)

    def ensure_trial(self, experiment: str) -> str:
        trial = names.trial_name(experiment)
        if trial in self._trials:
            return trial
        self.ensure_experiment(experiment)
        # Describe first: creating an existing trial is an error on AWS, and an emulator that
        # overwrites instead would forget which runs belong to it.
        try:
            self.api.call("sagemaker", "DescribeTrial", TrialName=trial)
        except Exception as exc:
            if not is_not_found(exc):
                raise
            try:
                self.api.call(
                    "sagemaker", "CreateTrial", TrialName=trial, ExperimentName=experiment
                )
            except Exception as create_exc:
                if not is_already_exists(create_exc):
                    raise
        self._trials.add(trial)
        return trial

    def is_known_run(self, ref: RunRef) -> bool:
        return ref.trial_component in self._runs

    def adopt_run(self, ref: RunRef) -> None:
        """A run someone else created (a user's `Run`): never create or associate it."""
        self._runs.add(ref.trial_component)

    def ensure_run(
        self, ref: RunRef, display_name: str, describe_first: bool = True, **create_fields
    ) -> bool:
        """Create the run's trial component if needed; True when this call created it.

        `create_fields` (Status, StartTime, EndTime, Parameters, OutputArtifacts) go into the
        create call, so a one-trace run costs a single write when it is new.
        """
        if ref.trial_component in self._runs:
            return False
        self.ensure_trial(ref.experiment)
        created = False
        arn = None
        if describe_first:
            try:
                arn = self.api.call(
                    "sagemaker", "DescribeTrialComponent", TrialComponentName=ref.trial_component
                )["TrialComponentArn"]
            except Exception as exc:
                if not is_not_found(exc):
                    raise
        late_parameters = None
        if arn is None:
            tags = [RUN_TC_TAG]
            create_fields = dict(create_fields)
            if "Parameters" in create_fields:
                create_fields["Parameters"] = self._without_rejected(create_fields["Parameters"])
            while True:
                try:
                    arn = self.api.call(
                        "sagemaker",
                        "CreateTrialComponent",
                        TrialComponentName=ref.trial_component,
                        DisplayName=names.display_name(display_name),
                        Tags=tags,
                        **create_fields,
                    )["TrialComponentArn"]
                    created = True
                    break
                except Exception as exc:
                    if is_already_exists(exc):
                        break
                    # Rejected for a value: create the run without the fields that carry free
                    # values (parameters go in afterwards, key by key if need be), so one bad
                    # value never costs the run, its status or its trace.
                    if not is_rejected(exc) or not (set(create_fields) & {"Parameters", "Status"}):
                        raise
                    if "Parameters" in create_fields:
                        late_parameters = create_fields.pop("Parameters")
                    else:
                        status = create_fields.pop("Status")
                        if status.get("Message"):
                            create_fields["Status"] = {"PrimaryStatus": status["PrimaryStatus"]}
                    self._log.warning(
                        "create-rejected",
                        "sagemaker exporter: CreateTrialComponent rejected (%r); creating the run without the rejected fields",
                        exc,
                    )
        if arn and created and self._retag_runs:
            self.api.call("sagemaker", "AddTags", ResourceArn=arn, Tags=[RUN_TC_TAG])
        try:
            self.api.call(
                "sagemaker",
                "AssociateTrialComponent",
                TrialComponentName=ref.trial_component,
                TrialName=ref.trial,
            )
        except Exception as exc:
            if not (is_already_exists(exc) or "already" in str(exc).lower()):
                raise
        self._runs.add(ref.trial_component)
        if late_parameters:
            self.update_parameters(ref, late_parameters)
        return created

    def update_run_contained(self, ref: RunRef, parameters: dict, **fields) -> None:
        """UpdateTrialComponent with parameters and other fields (artifacts, status) together;
        when the API rejects the request for a value, the other fields are sent on their own and
        the parameters without the keys it rejects (`update_parameters`)."""
        parameters = self._without_rejected(parameters)
        try:
            self.update_run(ref, **({"Parameters": parameters} if parameters else {}), **fields)
        except Exception as exc:
            if not is_rejected(exc) or not parameters:
                raise
            if fields:
                self.update_run(ref, **fields)
            self.update_parameters(ref, parameters)

    def update_parameters(self, ref: RunRef, parameters: dict) -> None:
        """Send `parameters`; keys the API rejects are found by halving the set (a handful of
        extra calls, only after a rejection), left out, counted and logged once each. The last
        request carries every accepted key, so a service that replaces the map instead of
        merging it (an emulator) ends with the same parameters as one that merges."""
        parameters = self._without_rejected(parameters)
        if not parameters:
            return
        try:
            self.update_run(ref, Parameters=parameters)
            return
        except Exception as exc:
            if not is_rejected(exc):
                raise
        self._find_rejected(ref, dict(parameters))
        accepted = self._without_rejected(parameters)
        if accepted:
            self.update_run(ref, Parameters=accepted)

    def _find_rejected(self, ref: RunRef, parameters: dict) -> None:
        if len(parameters) == 1:
            (key,) = parameters
            with self._counts_lock:
                self.rejected_parameters.add(key)
            self._log.warning(
                f"param-rejected:{key}", "sagemaker exporter: SageMaker rejected parameter %r; it is left out", key
            )
            return
        items = list(parameters.items())
        for half in (dict(items[: len(items) // 2]), dict(items[len(items) // 2 :])):
            try:
                self.update_run(ref, Parameters=half)
            except Exception as exc:
                if not is_rejected(exc):
                    raise
                self._find_rejected(ref, half)

    def _without_rejected(self, parameters: dict) -> dict:
        if not self.rejected_parameters:
            return parameters
        return {k: v for k, v in parameters.items() if k not in self.rejected_parameters}

    def update_run(self, ref: RunRef, **fields) -> None:
        if not fields:
            return
        try:
            self.api.call(
                "sagemaker", "UpdateTrialComponent", TrialComponentName=ref.trial_component, **fields
            )
        except Exception as exc:
            if is_not_found(exc):
                self.forget_all()  # deleted behind our back: ensure everything again next time
            raise

    def forget_all(self) -> None:
        """Drop what we believe exists (an emulator restarted, a bucket or run was deleted), so
        the retry of the failed write re-creates it instead of failing forever."""
        self._experiments.clear()
        self._trials.clear()
        self._runs.clear()
        self._buckets.clear()

    # --- data plane ---------------------------------------------------------------------------
    def put_metrics(
        self,
        ref: RunRef,
        points: Sequence[MetricPoint],
        retry_attempts: int = 3,
        retry_backoff_s: float = 0.2,
    ) -> None:
        """BatchPutMetrics in batches of 10; per-item errors retried or dropped by code."""
        for batch in metric_batches(points, now_s=time.time()):
            pending = batch
            for attempt in range(retry_attempts + 1):
                try:
                    response = self.api.call(
                        "sagemaker-metrics",
                        "BatchPutMetrics",
                        TrialComponentName=ref.trial_component,
                        MetricData=pending,
                    )
                except Exception as exc:
                    if not is_rejected(exc):
                        raise
                    # The whole batch refused for one point's value: send the points one by one
                    # and drop only those refused on their own.
                    response = {"Errors": self._put_points_alone(ref, pending)}
                retry: list[dict] = []
                failed_indexes = set()
                for error in response.get("Errors") or []:
                    index = error.get("MetricIndex")
                    code = str(error.get("Code") or "UNKNOWN")
                    if not isinstance(index, int) or not 0 <= index < len(pending):
                        continue
                    failed_indexes.add(index)
                    if code in RETRYABLE_METRIC_ERRORS:
                        retry.append(pending[index])
                    else:
                        with self._counts_lock:
                            self.metric_points_dropped[code] += 1
                        self._log.warning(
                            f"metric-drop:{code}",
                            "sagemaker exporter: dropped metric %r (%s)",
                            pending[index].get("MetricName"),
                            code,
                        )
                with self._counts_lock:
                    self.metric_points_sent += len(pending) - len(failed_indexes)
                if not retry:
                    break
                if attempt == retry_attempts:
                    raise MetricsIncomplete(
                        f"{len(retry)} metric points still failing on {ref.trial_component}"
                    )
                pending = retry
                self.api.pause(random.uniform(0, retry_backoff_s * (2**attempt)), "BatchPutMetrics")

    def _put_points_alone(self, ref: RunRef, points: list[dict]) -> list[dict]:
        errors = []
        for index, point in enumerate(points):
            try:
                response = self.api.call(
                    "sagemaker-metrics", "BatchPutMetrics", TrialComponentName=ref.trial_component, MetricData=[point]
                )
            except Exception as exc:
                if not is_rejected(exc):
                    raise
                errors.append({"Code": "REJECTED", "MetricIndex": index})
                continue
            errors.extend({**e, "MetricIndex": index} for e in response.get("Errors") or [])
        return errors

    def _owner(self, bucket: str) -> dict:
        owner = self._expected_owner.get(bucket)
        return {"ExpectedBucketOwner": owner} if owner else {}

    def put_object(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.ensure_bucket(bucket)
        try:
            self.api.call(
                "s3", "PutObject", Bucket=bucket, Key=key, Body=body, ContentType=content_type, **self._owner(bucket)
            )
        except Exception as exc:
            if error_code(exc) == "NoSuchBucket":
                # Our bucket vanished: the account was reset or cleaned up. Re-verify everything.
                self.forget_all()
            raise

    def get_object(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes, or None when it (or its bucket) does not exist."""
        try:
            response = self.api.call("s3", "GetObject", Bucket=bucket, Key=key, **self._owner(bucket))
        except Exception as exc:
            if is_not_found(exc) or error_code(exc) == "NoSuchKey":
                return None
            raise
        return response["Body"].read()

    # --- buckets ------------------------------------------------------------------------------
    def default_bucket(self) -> str:
        """The SDK's default bucket name: sagemaker-<region>-<account id>."""
        if self._default_bucket is None:
            account = self.api.call("sts", "GetCallerIdentity")["Account"]
            self._default_bucket = f"sagemaker-{self.api.region}-{account}"
            self._expected_owner[self._default_bucket] = str(account)
        return self._default_bucket

    def ensure_bucket(self, bucket: str) -> None:
        if bucket in self._buckets:
            return
        if self._create_bucket:
            try:
                self.api.call("s3", "HeadBucket", Bucket=bucket, **self._owner(bucket))
            except Exception as exc:
                if not is_not_found(exc):
                    raise
                params: dict = {"Bucket": bucket}
                if self.api.region != "us-east-1":
                    params["CreateBucketConfiguration"] = {"LocationConstraint": self.api.region}
                try:
                    self.api.call("s3", "CreateBucket", **params)
                except Exception as create_exc:
                    if "BucketAlreadyOwnedByYou" not in str(create_exc):
                        raise
        self._buckets.add(bucket)
