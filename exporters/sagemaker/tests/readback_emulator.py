"""A thin HTTP layer in front of moto that answers the SageMaker SDK's read-back calls as AWS does
(tests only).

moto is enough for writing runs but answers four of the calls that SDK v3's `load_run`,
`list_runs` and `ExperimentAnalytics(...).dataframe()` make differently from AWS. This layer
forwards every request to moto unchanged except these, which it answers the way AWS documents:

1. `CreateExperiment`, `CreateTrial`, `CreateTrialComponent` of a name that exists: AWS refuses
   (400 ValidationException "Cannot create already existing ..."), the SDK then loads the entity;
   moto silently replaces it, wiping a run's parameters and metrics. Here: the refusal.
2. `CreateTrialComponent` with `Tags`: AWS keeps them; moto drops them. Here: moto's AddTags is
   called after the create, so the SDK's `sagemaker:trial-component-source=run` tag is there.
3. `ListTrialComponents(ExperimentName=...)`: moto ignores the filter and lists every run of the
   account. Here: the runs of the experiment's trials (moto's ListTrials + ListTrialComponents by
   trial name), in one page.
4. `Search` of `ExperimentTrialComponent`: moto rejects the filter `Parents.ExperimentName`
   ("Unknown property name"), returns one empty object per metric and no `Parents`. Here: that
   filter is answered as one search per trial of the experiment, and every result carries the
   metric summaries and parents of moto's DescribeTrialComponent (which computes them correctly).

Everything else (S3, BatchPutMetrics, Describe*, Update*, ...) is moto's own answer.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from testkit.loopback import serve_on_loopback, stop

JSON_TYPE = "application/x-amz-json-1.1"
_DESCRIBE = {
    "CreateExperiment": ("DescribeExperiment", "ExperimentName", "experiment"),
    "CreateTrial": ("DescribeTrial", "TrialName", "trial"),
    "CreateTrialComponent": ("DescribeTrialComponent", "TrialComponentName", "trial component"),
}


class ReadBackEmulator:
    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.answered: dict[str, int] = {}  # operation -> requests this layer answered itself
        self._answered_lock = threading.Lock()  # handler threads count concurrently
        layer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self._handle()

            do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                target = self.headers.get("X-Amz-Target", "")
                if target.startswith("SageMaker."):
                    operation = target.split(".", 1)[1]
                    answer = getattr(layer, f"_{operation}", None)
                    if answer is not None:
                        status, doc = answer(json.loads(body or b"{}"), headers)
                        if status is not None:
                            with layer._answered_lock:
                                layer.answered[operation] = layer.answered.get(operation, 0) + 1
                            self._reply(status, [("Content-Type", JSON_TYPE)], json.dumps(doc).encode())
                            return
                status, reply_headers, data = layer._forward(self.command, self.path, body, headers)
                self._reply(status, reply_headers, data)

            def _reply(self, status, reply_headers, data):
                self.send_response(status)
                for key, value in reply_headers:
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

        self.server, self.url = serve_on_loopback(Handler)

    def close(self) -> None:
        stop(self.server)

    # --- talking to moto ----------------------------------------------------------------------
    def _forward(self, method, path, body, headers):
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers={**headers, "Host": self.upstream.netloc})
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def _call(self, operation: str, payload: dict, headers: dict) -> tuple[int, dict]:
        headers = {**headers, "X-Amz-Target": f"SageMaker.{operation}", "Content-Type": JSON_TYPE}
        status, _, data = self._forward("POST", "/", json.dumps(payload).encode(), headers)
        try:
            return status, json.loads(data or b"{}")
        except ValueError:  # moto answers some misses (DescribeExperiment) with a raw 500 page
            return status if status != 200 else 500, {}

    # --- 1 and 2: creates ---------------------------------------------------------------------
    def _create(self, operation: str, payload: dict, headers: dict):
        describe, key, what = _DESCRIBE[operation]
        status, found = self._call(describe, {key: payload.get(key)}, headers)
        if status == 200:
            arn = next((v for k, v in found.items() if k.endswith("Arn")), payload.get(key))
            return 400, {"__type": "ValidationException", "message": f'Cannot create already existing {what} "{arn}".'}
        status, created = self._call(operation, payload, headers)
        arn = next((v for k, v in created.items() if k.endswith("Arn")), None)
        if status == 200 and arn and payload.get("Tags"):
            self._call("AddTags", {"ResourceArn": arn, "Tags": payload["Tags"]}, headers)
        return status, created

    def _CreateExperiment(self, payload, headers):
        return self._create("CreateExperiment", payload, headers)

    def _CreateTrial(self, payload, headers):
        return self._create("CreateTrial", payload, headers)

    def _CreateTrialComponent(self, payload, headers):
        return self._create("CreateTrialComponent", payload, headers)

    # --- 3: ListTrialComponents by experiment -----------------------------------------------------
    def _trials_of(self, experiment: str, headers: dict) -> list[str]:
        _, listed = self._call("ListTrials", {"ExperimentName": experiment}, headers)
        return [t["TrialName"] for t in listed.get("TrialSummaries", [])]

    def _ListTrialComponents(self, payload, headers):
        experiment = payload.get("ExperimentName")
        if not experiment:
            return None, None  # moto's own answer
        summaries, seen = [], set()
        for trial in self._trials_of(experiment, headers):
            _, listed = self._call("ListTrialComponents", {"TrialName": trial}, headers)
            for summary in listed.get("TrialComponentSummaries", []):
                if summary["TrialComponentName"] not in seen:
                    seen.add(summary["TrialComponentName"])
                    summaries.append(summary)
        return 200, {"TrialComponentSummaries": summaries}

    # --- 4: Search ------------------------------------------------------------------------------
    def _Search(self, payload, headers):
        if payload.get("Resource") != "ExperimentTrialComponent":
            return None, None
        expression = dict(payload.get("SearchExpression") or {})
        filters = list(expression.get("Filters") or [])
        by_experiment = [f for f in filters if f.get("Name") == "Parents.ExperimentName"]
        rest = [f for f in filters if f.get("Name") != "Parents.ExperimentName"]
        if by_experiment:
            searches = [
                {**expression, "Filters": rest + [{"Name": "Parents.TrialName", "Operator": "Equals", "Value": trial}]}
                for trial in self._trials_of(by_experiment[0]["Value"], headers)
            ]
        else:
            searches = [expression]
        results, seen = [], set()
        for search in searches:
            status, found = self._call("Search", {**payload, "SearchExpression": search}, headers)
            if status != 200:
                return status, found
            for result in found.get("Results", []):
                component = result.get("TrialComponent") or {}
                name = component.get("TrialComponentName")
                if name in seen:
                    continue
                seen.add(name)
                results.append({"TrialComponent": self._complete(component, headers)})
        return 200, {"Results": results}

    def _complete(self, component: dict, headers: dict) -> dict:
        """A search result as AWS gives it: metric summaries and parents filled in."""
        _, described = self._call("DescribeTrialComponent", {"TrialComponentName": component["TrialComponentName"]}, headers)
        component = dict(component)
        component["Metrics"] = described.get("Metrics", [])
        if not component.get("Parents"):
            parents = []
            _, trials = self._call("ListTrials", {"TrialComponentName": component["TrialComponentName"]}, headers)
            for trial in trials.get("TrialSummaries", []):
                _, detail = self._call("DescribeTrial", {"TrialName": trial["TrialName"]}, headers)
                parents.append({"TrialName": trial["TrialName"], "ExperimentName": detail.get("ExperimentName")})
            component["Parents"] = parents
        return component
